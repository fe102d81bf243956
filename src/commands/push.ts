import { Args, Flags } from '@oclif/core';
import { MirrorCommand } from '../cli/base.js';
import { buildConnection, connectionFlags, timeoutFlag, timeoutsOf } from '../cli/flags.js';
import { canDrawBar, ProgressRenderer } from '../cli/progress.js';
import { checkOutputPath, REPORT_STDOUT } from '../cli/report-file.js';
import { blobLine, conflictSkipLine, countLine, dryRunLines, listedImages, listingLines, nextStepsLines, stagingLine } from '../cli/summary.js';
import { statusText, subjectAnd } from '../cli/format.js';
import { CONFLICT_POLICIES, type ConflictPolicy, DEFAULT_CONFLICT_POLICY } from '../copy/conflicts.js';
import { DEFAULT_JOBS, DEFAULT_STAGING_REPOSITORY } from '../copy/bundle.js';
import { inspectBundle } from '../copy/inspect.js';
import { partialPushOf, pushBundle, type PushResult } from '../copy/push.js';
import { buildReport, exitCodeOf, writeReport } from '../copy/report.js';
import { CREDENTIALS_HELP } from '../auth/chain.js';
import { EXIT_CODE_HELP, isMirrorError, MirrorError } from '../errors/index.js';
import type { EventSink } from '../events/index.js';
import { parsePlatform } from '../oci/platform.js';
import { parseTarget, type Target } from '../reference/index.js';
import { pushConfigHint } from '../mirrorconfig/hint.js';

const USAGE = 'mirror push --source BUNDLE --private-registry HOST[:PORT][/NAMESPACE]';

/** Push every image of a bundle into a registry namespace. */
export default class Push extends MirrorCommand {
  static override summary = 'Push every image of a bundle into a private registry namespace.';

  static override description = `Reads the bundle (.tar.xz, .tar.gz, .tar.zst, .tar, or a directory; an OCI image layout or a \`docker save\` archive) once, as a stream, without extracting it, and pushes every image with its digests unchanged. The source registry host is dropped and the path kept under the namespace: gcr.io/a/b:1.0 pushed to 172.18.0.20:5000/ns lands at 172.18.0.20:5000/ns/a/b:1.0.

Two different images of the bundle that land at one reference (docker.io/team/app:1.0 and quay.io/team/app:1.0 both at NAMESPACE/team/app:1.0, or one name given twice with different digests) are a conflict: by default both fail and the rest is pushed (exit 7); --on-conflict first pushes the first in bundle order and skips the others, and --keep-registry-host keeps the source host in the path (NAMESPACE/quay.io/team/app:1.0; a port is written _PORT: localhost_5000). A tag that already exists at the destination is overwritten, as always.

The bundle and the registry can also be given as arguments, in that order (mirror push BUNDLE REGISTRY). The bundle is opened and checked first, then the registry is contacted (credentials are asked for only then), then the bundle is read.

Each blob crosses the wire once per registry; other repositories get it by cross-repository mount. Blobs met before the metadata that names their images (bundles written by \`tar\` of a layout directory) go first to the repository NAMESPACE/${DEFAULT_STAGING_REPOSITORY} and are mounted from there; the summary says when that happened. Tags are set last, only when every blob and child manifest is in place.

On a terminal a progress bar shows the bundle read, bytes sent, the rate, elapsed time and ETA, images and retries (plain lines when the output is not a terminal or TERM=dumb). The summary ends with the endpoint to give containerd, RKE2 or bmctl, and the source registries mirrored there.

--dry-run reads the bundle and sends nothing; without --private-registry it lists the bundle (as mirror inspect does).

${CREDENTIALS_HELP}

${EXIT_CODE_HELP}`;

  static override examples = [
    '<%= config.bin %> push --source bmpackages_1.30.tar.xz --private-registry 172.18.0.20:5000/test-namespace',
    '<%= config.bin %> push bmpackages_1.30.tar.xz 172.18.0.20:5000/test-namespace    # the same, as arguments',
    '<%= config.bin %> push --source bundle.tar.xz --private-registry https://registry.local:5000/v2/mirror --cacert ca.crt --username admin --password-stdin < pass.txt',
    '<%= config.bin %> push --source images.tar --private-registry http://10.0.0.5:5000 --need-credential=false --report report.json',
    '<%= config.bin %> push --source bundle.tar.xz --private-registry 10.0.0.5:5000/ns --quiet --report - > report.json',
    '<%= config.bin %> push --source demo.tar.xz --dry-run                      # list the bundle: names, digests, platforms, sizes',
    '<%= config.bin %> push --source demo.tar.xz --private-registry oci:./out --dry-run',
    '<%= config.bin %> push --source mixed.tar.xz --private-registry 172.18.0.20:5000/mirror --keep-registry-host',
    '<%= config.bin %> push --source images.tar --private-registry 172.18.0.20:5000/ns --platform linux/amd64 --platform linux/arm64',
  ];

  static override usageLine = USAGE;

  static override args = {
    bundle: Args.string({ description: 'The bundle (the same as --source).', required: false, ignoreStdin: true }),
    registry: Args.string({ description: 'Where to push (the same as --private-registry).', required: false, ignoreStdin: true }),
  };

  static override flags = {
    source: Flags.string({ char: 's', aliases: ['images'], summary: 'Bundle file or directory to push (or the first argument).' }),
    'private-registry': Flags.string({
      char: 'r',
      summary: 'Where to push: HOST[:PORT][/NAMESPACE], http(s)://HOST[:PORT][/v2]/NAMESPACE, or oci:DIR (or the second argument).',
    }),
    'dry-run': Flags.boolean({ summary: 'Read the bundle and print where each image would land; send nothing. Without --private-registry: list the bundle.' }),
    quiet: Flags.boolean({
      char: 'q',
      summary: 'No progress, no per-image lines, no warnings: only errors (stderr) and the one summary line (stdout).',
    }),
    jobs: Flags.integer({ char: 'j', summary: 'Concurrent uploads and registry requests.', default: DEFAULT_JOBS, min: 1, max: 64 }),
    report: Flags.string({
      summary: 'Write a JSON report (source -> destination, digests, children) to this file; - for standard output. Checked before the push starts.',
    }),
    'layer-compression': Flags.string({
      summary: 'How uncompressed docker-save layers are pushed (changes their digests unless none).',
      options: ['gzip', 'zstd', 'none'],
      default: 'gzip',
    }),
    'compression-level': Flags.integer({ summary: 'Level for --layer-compression (gzip 1-9, zstd 1-19).', min: 1, max: 19 }),
    'upload-mode': Flags.string({ summary: 'monolithic (one request per blob) or chunked (resumes a cut upload in place).', options: ['monolithic', 'chunked'], default: 'monolithic' }),
    'chunk-size': Flags.integer({ summary: 'Chunk size in MiB for --upload-mode chunked.', min: 1, max: 1024 }),
    decoder: Flags.string({ summary: 'xz decoder: auto (the xz program when installed, multi-threaded), xz, or lzma-native.', options: ['auto', 'xz', 'lzma-native'], default: 'auto' }),
    'staging-repository': Flags.string({ summary: `Repository under the namespace for blobs met before their metadata.`, default: DEFAULT_STAGING_REPOSITORY }),
    'on-conflict': Flags.string({
      summary: 'When two different images land at one reference: fail (both fail, the rest is pushed) or first (the first in the bundle wins).',
      options: [...CONFLICT_POLICIES],
      default: DEFAULT_CONFLICT_POLICY,
    }),
    'keep-registry-host': Flags.boolean({
      summary: 'Keep the source registry host under the namespace: quay.io/a/b:1 lands at NAMESPACE/quay.io/a/b:1 (localhost:5000 as localhost_5000).',
    }),
    platform: Flags.string({
      summary: 'Push only this platform (OS/ARCH[/VARIANT]) of multi-platform images; repeatable.',
      description:
        'One --platform puts that platform\'s manifest alone under the tag (as skopeo copy without --all does); several put a new index of just those under the tag (its digest changes; the report says so), or the index itself when they are all it has. An image lacking one of them fails, naming the platforms it has; single-platform images pass when their platform matches. Without --platform every index is pushed whole.',
      multiple: true,
      // One value per --platform, so a positional argument after it is never taken for a platform.
      multipleNonGreedy: true,
    }),
    timeout: timeoutFlag,
    ...connectionFlags,
  };

  async run(): Promise<void> {
    const { args, flags } = await this.parse(Push);
    const { bundle, registry } = placeArguments(flags.source, flags['private-registry'], [args.bundle, args.registry]);
    if (bundle === undefined) throw new MirrorError('USAGE', 'missing the bundle (--source)', { hint: `usage: ${USAGE}` });
    if (registry === undefined && !flags['dry-run']) {
      throw new MirrorError('USAGE', 'missing --private-registry (where to push)', { hint: `usage: ${USAGE}, or --dry-run to list the bundle` });
    }
    const target = registry === undefined ? undefined : parseTarget(registry, { plainHttp: flags['plain-http'] });
    await checkOutputPath(flags.report);
    const quiet = flags.quiet || flags.json;
    const renderer = new ProgressRenderer({ quiet, debug: flags.debug, tty: canDrawBar(process.stderr) });
    // With --report - the report is standard output, so the human summary goes to standard error.
    const reportToStdout = flags.report === REPORT_STDOUT;
    const say = (lines: string[]): void => {
      if (lines.length > 0) (reportToStdout ? process.stderr : process.stdout).write(`${lines.join('\n')}\n`);
    };

    if (target === undefined) {
      // A listing: the engine's dry run with no destination.
      let listed;
      try {
        listed = await inspectBundle({
          source: bundle,
          layerCompression: flags['layer-compression'] as 'gzip' | 'zstd' | 'none',
          compressionLevel: flags['compression-level'],
          decoder: flags.decoder as 'auto' | 'xz' | 'lzma-native',
          platforms: flags.platform?.map((p) => parsePlatform(p)),
          events: renderer.sink,
          signal: this.abort.signal,
        });
      } finally {
        renderer.stop();
      }
      const code = exitCodeOf(listed);
      const report = { ...buildReport({ ...listed, dryRun: true }), listing: listedImages(listed) };
      if (flags.report && !(flags.json && flags.report === REPORT_STDOUT)) await this.writeReportTo(flags.report, report);
      if (flags.json) process.stdout.write(`${JSON.stringify({ status: code === 0 ? 'ok' : 'error', exitCode: code, ...report })}\n`);
      else say(flags.quiet ? listingLines(listed).slice(0, 1) : listingLines(listed));
      process.exitCode = code;
      return;
    }

    const staging = target.kind === 'registry' ? [target.namespace, flags['staging-repository']].filter((s) => s !== '').join('/') : undefined;
    const staged = { blobs: 0, bytes: 0 };
    const sink: EventSink = (e) => {
      if (e.type === 'blob' && e.action === 'uploaded' && e.repository === staging) {
        staged.blobs++;
        staged.bytes += e.size;
      }
      renderer.sink(e);
    };
    const connection = buildConnection(flags, sink, { needCredential: true });
    let result: PushResult;
    try {
      result = await pushBundle({
        source: bundle,
        target: registry!,
        plainHttp: flags['plain-http'],
        dryRun: flags['dry-run'],
        jobs: flags.jobs,
        layerCompression: flags['layer-compression'] as 'gzip' | 'zstd' | 'none',
        compressionLevel: flags['compression-level'],
        uploadMode: flags['upload-mode'] as 'monolithic' | 'chunked',
        chunkSize: flags['chunk-size'] === undefined ? undefined : flags['chunk-size'] * 1024 * 1024,
        retryTimes: flags['retry-times'],
        timeouts: timeoutsOf(flags.timeout),
        decoder: flags.decoder as 'auto' | 'xz' | 'lzma-native',
        stagingRepository: flags['staging-repository'],
        keepRegistryHost: flags['keep-registry-host'],
        onConflict: flags['on-conflict'] as ConflictPolicy,
        platforms: flags.platform?.map((p) => parsePlatform(p)),
        settings: connection.settings,
        credentials: connection.credentials,
        events: sink,
        signal: this.abort.signal,
      });
    } catch (e) {
      renderer.stop();
      await this.afterStop(e, flags.report, flags.json);
      throw e;
    } finally {
      renderer.stop();
    }
    const report = buildReport(result);
    // With --json the report is already on stdout (the document holds it): --report - writes nothing more.
    if (flags.report && !(flags.json && flags.report === REPORT_STDOUT)) await this.writeReportTo(flags.report, report);
    const code = exitCodeOf(result);
    if (flags.json) {
      process.stdout.write(`${JSON.stringify({ status: code === 0 ? 'ok' : 'error', exitCode: code, ...report })}\n`);
    } else if (flags.quiet) {
      for (const i of result.images) if (i.status === 'failed') process.stderr.write(`${statusText('failed')}: ${subjectAnd(i.source, i.error)}\n`);
      say([result.dryRun ? dryRunLines(result)[0]! : countLine(result, result.target)]);
    } else {
      say(this.summary(result, target, { report: flags.report, retries: renderer.counts.retries, staging, staged, cacert: flags.cacert }));
    }
    process.exitCode = code;
  }

  /**
   * afterStop writes down what a push that stopped had done: the report (with `--report`), and after an interrupt or
   * a network failure the line that says how far it got and how to finish. The error line itself is the base's.
   */
  private async afterStop(e: unknown, reportFile: string | undefined, json: boolean): Promise<void> {
    const partial = partialPushOf(e);
    let reported = false;
    if (partial !== undefined && reportFile !== undefined) {
      try {
        await this.writeReportTo(reportFile, buildReport(partial));
        reported = true;
      } catch (w) {
        process.stderr.write(`warning: ${w instanceof Error ? w.message : String(w)}\n`);
      }
    }
    const resumable = this.interrupted || (isMirrorError(e) && (e.code === 'INTERRUPTED' || e.code === 'NETWORK'));
    if (json || !resumable) return;
    const lines = [stopSummary(partial)];
    if (reported && reportFile !== REPORT_STDOUT) lines.push(`report: ${reportFile}`);
    (reportFile === REPORT_STDOUT ? process.stderr : process.stdout).write(`${lines.join('\n')}\n`);
  }

  /** writeReportTo writes the report to a file, or to standard output for `-`. */
  private async writeReportTo(file: string, report: Record<string, unknown>): Promise<void> {
    if (file === REPORT_STDOUT) process.stdout.write(`${JSON.stringify(report, null, 2)}\n`);
    else await writeReport(file, report);
  }

  private summary(
    r: PushResult,
    target: Target,
    o: { report: string | undefined; retries: number; staging: string | undefined; staged: { blobs: number; bytes: number }; cacert: string[] | undefined },
  ): string[] {
    if (r.dryRun) return dryRunLines(r);
    const out = [countLine(r, r.target), blobLine(r, o.retries)];
    const converted = r.images.find((i) => i.converted);
    if (converted) out.push(`note: ${converted.converted}`);
    for (const i of r.images) if (i.status === 'failed') out.push(`${statusText('failed')}: ${subjectAnd(i.source, i.error)}`);
    for (const i of r.images) if (i.status === 'skipped-conflict') out.push(`skipped: ${i.source}: ${conflictSkipLine(i)}`);
    if (o.staging !== undefined) out.push(...stagingLine(o.staging, o.staged.blobs, o.staged.bytes));
    if (o.report && o.report !== REPORT_STDOUT) out.push(`report: ${o.report}`);
    if (target.kind === 'registry') out.push(...nextStepsLines(r, target, { cacert: o.cacert }));
    out.push(...pushConfigHint(r, o.report));
    return out;
  }
}

/**
 * placeArguments fills the bundle and the registry from `--source` / `--private-registry` and the positional
 * arguments, in that order: `mirror push B R`, `mirror push -s B R` and `mirror push -r R B` all work. A value given
 * both ways, or one too many, is a USAGE error that says which.
 */
export function placeArguments(
  source: string | undefined,
  registry: string | undefined,
  positional: Array<string | undefined>,
): { bundle: string | undefined; registry: string | undefined } {
  const rest = positional.filter((p): p is string => p !== undefined);
  let bundle = source;
  let reg = registry;
  if (bundle === undefined && rest.length > 0) bundle = rest.shift();
  if (reg === undefined && rest.length > 0) reg = rest.shift();
  if (rest.length > 0) {
    throw new MirrorError('USAGE', `unexpected argument "${rest[0]}": the bundle and the registry are already given`, { hint: `usage: ${USAGE}` });
  }
  return { bundle, registry: reg };
}

/** stopSummary says how far a stopped push got: `N of M images pushed; run the same command again to finish`. */
function stopSummary(partial: PushResult | undefined): string {
  const again = 'run the same command again to finish';
  if (partial === undefined || partial.images.length === 0) {
    const blobs = partial?.blobs.uploaded ?? 0;
    return `no image pushed yet${blobs > 0 ? ` (${blobs} blob(s) sent, which the next run skips)` : ''}; ${again}`;
  }
  // An image that lost a conflict (--on-conflict first) is not to be pushed at all.
  const wanted = partial.images.filter((i) => i.status !== 'skipped-conflict');
  const done = wanted.filter((i) => i.status === 'pushed' || i.status === 'skipped').length;
  return `${done} of ${wanted.length} images pushed; ${again}`;
}
