/**
 * The `--report` file and the exit code of a run, both derived from a {@link CopyResult}. The format is documented
 * in the README ("The report"); every field of version 1 keeps its name and type in version 2.
 */
import { randomBytes } from 'node:crypto';
import { rename, unlink, writeFile } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';
import { type ErrorCode, ExitCode, type ExitCodeValue, MirrorError } from '../errors/index.js';
import type { TargetEndpoint } from '../reference/destination.js';
import type { ConflictPolicy } from './conflicts.js';
import type { ChildManifest, CopyResult, ImageConflict, ImageOutcome } from './result.js';

/**
 * REPORT_VERSION is the version of the report format. 2 added, to everything version 1 has: `endpoint` and
 * `mappingOptions` at the top, `mapping` and `conflict` per image, the status `skipped-conflict` and the summary
 * count `skippedConflict`.
 */
export const REPORT_VERSION = 2;

/** ReportSourceRef is a source reference as data. */
export type ReportSourceRef = { registry: string; repository: string; tag: string | null; digest: string | null };

/** ReportDestinationRef is a destination reference as data; `registry` is null in an OCI layout. */
export type ReportDestinationRef = { registry: string | null; repository: string; tag: string | null };

/** ReportImage is one image of the report. */
export type ReportImage = {
  /** The source name as the bundle gives it (display string, as in version 1). */
  source: string;
  /** The full destination reference (display string, as in version 1), when the image could be mapped. */
  destination?: string | undefined;
  digest?: string | undefined;
  mediaType?: string | undefined;
  status: ImageOutcome['status'];
  error?: string | undefined;
  errorCode?: ErrorCode | undefined;
  converted?: string | undefined;
  /** Where the image came from and where it goes, as data; absent when the image has no usable name. */
  mapping?: { source: ReportSourceRef; destination: ReportDestinationRef | null } | undefined;
  /** Set when another image of the run claims the same destination reference with a different digest. */
  conflict?: ImageConflict | undefined;
  children: ChildManifest[];
};

/** Report is the whole `--report` document (and the body of `--json`). */
export type Report = {
  version: number;
  /** The bundle, for display. */
  source?: string | undefined;
  /** The target as the user would write it, for display. */
  target?: string | undefined;
  /** The target as data: where every destination below lives (`mirror config` reads it). */
  endpoint?: TargetEndpoint | undefined;
  /** How source references were mapped under the endpoint. */
  mappingOptions?: { keepRegistryHost: boolean; onConflict: ConflictPolicy } | undefined;
  dryRun: boolean;
  summary: Record<string, number>;
  images: ReportImage[];
};

/** ReportInput is a run's result with what the push adds to it. */
export type ReportInput = CopyResult & {
  source?: string | undefined;
  target?: string | undefined;
  endpoint?: TargetEndpoint | undefined;
  mapping?: { keepRegistryHost: boolean; onConflict: ConflictPolicy } | undefined;
  dryRun?: boolean | undefined;
};

/** buildReport gives the JSON report of a run: source -> destination (as text and as data), digest, media type, children, status. */
export function buildReport(result: ReportInput): Report {
  const registry = result.endpoint?.kind === 'registry' ? result.endpoint.host : null;
  return {
    version: REPORT_VERSION,
    source: result.source,
    target: result.target,
    endpoint: result.endpoint,
    mappingOptions: result.mapping,
    dryRun: result.dryRun ?? false,
    summary: summarize(result),
    images: result.images.map((i) => ({
      source: i.source,
      destination: i.destination,
      digest: i.digest,
      mediaType: i.mediaType,
      status: i.status,
      ...(i.error ? { error: i.error, errorCode: i.errorCode } : {}),
      ...(i.converted ? { converted: i.converted } : {}),
      ...(i.sourceReference ? { mapping: mappingOf(i, registry) } : {}),
      ...(i.conflict ? { conflict: i.conflict } : {}),
      children: i.children,
    })),
  };
}

/** mappingOf gives an image's source and destination references as data. */
function mappingOf(i: ImageOutcome, registry: string | null): NonNullable<ReportImage['mapping']> {
  const s = i.sourceReference!;
  const d = i.destinationImage;
  return {
    source: { registry: s.registry, repository: s.repository, tag: s.tag ?? null, digest: s.digest ?? i.digest ?? null },
    destination: d ? { registry, repository: d.repository, tag: d.tag ?? null } : null,
  };
}

/** summarize counts images and blobs of a run. */
export function summarize(result: CopyResult): Record<string, number> {
  const count = (s: string): number => result.images.filter((i) => i.status === s).length;
  return {
    images: result.images.length,
    pushed: count('pushed'),
    skipped: count('skipped'),
    skippedConflict: count('skipped-conflict'),
    failed: count('failed'),
    planned: count('planned'),
    blobsUploaded: result.blobs.uploaded,
    blobsMounted: result.blobs.mounted,
    blobsSkipped: result.blobs.skipped,
    blobsFailed: result.blobs.failed,
    bytesUploaded: result.blobs.bytesUploaded,
    passes: result.passes,
    durationMs: result.durationMs,
  };
}

/** REPORT_MODE is a report file's mode: read by all, written by its owner (a umask of 000 does not open it to all). */
export const REPORT_MODE = 0o644;

/**
 * reportTempPath names the file a report is written to before it is renamed into place: beside it, hidden, and
 * unpredictable. It is opened with O_EXCL (`wx`), so a file or a symbolic link planted at that name is never written
 * through: a predictable name let anyone who could write the directory have the report overwrite a file of theirs.
 */
export function reportTempPath(file: string): string {
  return join(dirname(file), `.${basename(file)}.${process.pid}-${randomBytes(6).toString('hex')}.tmp`);
}

/** writeReport writes the report atomically (a new temporary file, then rename), mode {@link REPORT_MODE}. */
export async function writeReport(file: string, report: Report | Record<string, unknown>): Promise<void> {
  const tmp = reportTempPath(file);
  try {
    await writeFile(tmp, `${JSON.stringify(report, null, 2)}\n`, { flag: 'wx', mode: REPORT_MODE });
    await rename(tmp, file);
  } catch (e) {
    await unlink(tmp).catch(() => {});
    throw new MirrorError('BAD_INPUT', `cannot write the report ${file}: ${(e as Error).message}`, { file, cause: e });
  }
}

/**
 * exitCodeOf gives a run's exit code: 0 when nothing failed; PARTIAL when some images failed and others went
 * through; when all failed, the code shared by all their errors (e.g. BAD_INPUT), else FAILURE.
 */
export function exitCodeOf(result: CopyResult): ExitCodeValue {
  const failed = result.images.filter((i) => i.status === 'failed');
  if (result.images.length === 0) return ExitCode.BAD_INPUT;
  if (failed.length === 0) return ExitCode.OK;
  if (failed.length < result.images.length) return ExitCode.PARTIAL;
  const codes = new Set(failed.map((i) => (i.errorCode ? new MirrorError(i.errorCode, '').exitCode : ExitCode.FAILURE)));
  return codes.size === 1 ? [...codes][0]! : ExitCode.FAILURE;
}
