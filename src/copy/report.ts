/** The `--report` file and the exit code of a run, both derived from a {@link CopyResult}. */
import { writeFile, rename } from 'node:fs/promises';
import { ExitCode, type ExitCodeValue, MirrorError } from '../errors/index.js';
import type { CopyResult } from './result.js';

/** REPORT_VERSION is the version of the report format. */
export const REPORT_VERSION = 1;

/** buildReport gives the JSON report of a run: source -> destination, digest, media type, children, status. */
export function buildReport(result: CopyResult & { source?: string; target?: string; dryRun?: boolean }): Record<string, unknown> {
  return {
    version: REPORT_VERSION,
    source: result.source,
    target: result.target,
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
      children: i.children,
    })),
  };
}

/** summarize counts images and blobs of a run. */
export function summarize(result: CopyResult): Record<string, number> {
  const count = (s: string): number => result.images.filter((i) => i.status === s).length;
  return {
    images: result.images.length,
    pushed: count('pushed'),
    skipped: count('skipped'),
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

/** writeReport writes the report atomically (temporary file, then rename). */
export async function writeReport(file: string, report: Record<string, unknown>): Promise<void> {
  const tmp = `${file}.tmp-${process.pid}`;
  try {
    await writeFile(tmp, `${JSON.stringify(report, null, 2)}\n`);
    await rename(tmp, file);
  } catch (e) {
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
