import { Flags } from '@oclif/core';
import { MirrorCommand } from '../cli/base.js';
import { buildConnection, connectionFlags } from '../cli/flags.js';
import { formatBytes, formatDuration, shortDigest } from '../cli/format.js';
import { ProgressRenderer } from '../cli/progress.js';
import { CONFLICT_POLICIES, type ConflictPolicy, DEFAULT_CONFLICT_POLICY, describeClaims } from '../copy/conflicts.js';
import { DEFAULT_JOBS, DEFAULT_STAGING_REPOSITORY } from '../copy/engine.js';
import type { ImageOutcome } from '../copy/result.js';
import { partialPushOf, pushBundle, type PushResult } from '../copy/push.js';
import { buildReport, exitCodeOf, summarize, writeReport } from '../copy/report.js';
import { CREDENTIALS_HELP } from '../auth/chain.js';
import { EXIT_CODE_HELP, isMirrorError } from '../errors/index.js';
import { parsePlatform } from '../oci/platform.js';
import { DEFAULT_BODY_TIMEOUT_MS, DEFAULT_CONNECT_TIMEOUT_MS, DEFAULT_HEADERS_TIMEOUT_MS, uniformTimeouts } from '../net/http.js';
import { pushConfigHint } from '../mirrorconfig/hint.js';

/** Push every image of a bundle into a registry namespace. */
export default class Push extends MirrorCommand {
  static override summary = 'Push every image of a bundle into a private registry namespace.';

  static override description = `Reads the bundle (.tar.xz, .tar.gz, .tar.zst, .tar, or a directory; an OCI image layout or a \`docker save\` archive) once, as a stream, without extracting it, and pushes every image with its digests unchanged. The source registry host is dropped and the path kept under the namespace: gcr.io/a/b:1.0 pushed to 172.18.0.20:5000/ns lands at 172.18.0.20:5000/ns/a/b:1.0.

Two different images of the bundle that land at one reference (docker.io/team/app:1.0 and quay.io/team/app:1.0 both at NAMESPACE/team/app:1.0, or one name given twice with different digests) are a conflict: by default both fail and the rest is pushed (exit 7); --on-conflict first pushes the first in bundle order and skips the others, and --keep-registry-host keeps the source host in the path (NAMESPACE/quay.io/team/app:1.0; a port is written _PORT: localhost_5000). A tag that already exists at the destination is overwritten, as always.

Each blob crosses the wire once per registry; other repositories get it by cross-repository mount. Blobs met before the metadata that names their images (bundles written by \`tar\` of a layout directory) go first to the repository NAMESPACE/${DEFAULT_STAGING_REPOSITORY} and are mounted from there. Tags are set last, only when every blob and child manifest is in place.

${CREDENTIALS_HELP}

${EXIT_CODE_HELP}`;

  static override examples = [
    '<%= config.bin %> push --source bmpackages_1.30.tar.xz --private-registry 172.18.0.20:5000/test-namespace',
    '<%= config.bin %> push --source bundle.tar.xz --private-registry https://registry.local:5000/v2/mirror --cacert ca.crt --username admin --password-stdin < pass.txt',
    '<%= config.bin %> push --source images.tar --private-registry http://10.0.0.5:5000 --need-credential=false --report report.json',
    '<%= config.bin %> push --source demo.tar.xz --private-registry oci:./out --dry-run',
    '<%= config.bin %> push --source mixed.tar.xz --private-registry 172.18.0.20:5000/mirror --keep-registry-host',
    '<%= config.bin %> push --source images.tar --private-registry 172.18.0.20:5000/ns --platform linux/amd64 --platform linux/arm64',
  ];

  static override flags = {
    source: Flags.string({ char: 's', aliases: ['images'], summary: 'Bundle file or directory to push.', required: true }),
    'private-registry': Flags.string({
      char: 'r',
      summary: 'Where to push: HOST[:PORT][/NAMESPACE], http(s)://HOST[:PORT][/v2]/NAMESPACE, or oci:DIR.',
      required: true,
    }),
    'dry-run': Flags.boolean({ summary: 'Read the bundle and print where each image would land; send nothing.' }),
    jobs: Flags.integer({ char: 'j', summary: 'Concurrent uploads and registry requests.', default: DEFAULT_JOBS, min: 1, max: 64 }),
    report: Flags.string({ summary: 'Write a JSON report (source -> destination, digests, children) to this file.' }),
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
    timeout: Flags.integer({
      summary: `Seconds the registry may stay silent before a request is retried (default: ${DEFAULT_CONNECT_TIMEOUT_MS / 1000} to connect, ${DEFAULT_HEADERS_TIMEOUT_MS / 1000} for an answer, ${DEFAULT_BODY_TIMEOUT_MS / 1000} within one).`,
      description:
        'How long the registry (and its token server) may stay silent: to accept a connection, to start answering a request once it was sent ' +
        '(or to take more of an upload), and between two pieces of an answer. Each request that times out is shown as a warning and retried ' +
        '(--retry-times); a registry that leaves requests unanswered for two timeouts in a row ends the run with exit code 6, naming it.',
      min: 1,
      max: 3600,
    }),
    ...connectionFlags,
  };

  async run(): Promise<void> {
    const { flags } = await this.parse(Push);
    const renderer = new ProgressRenderer({ quiet: flags.json, debug: flags.debug, tty: Boolean(process.stderr.isTTY) });
    const connection = buildConnection(flags, renderer.sink, { needCredential: true });
    let result: PushResult;
    try {
      result = await pushBundle({
        source: flags.source,
        target: flags['private-registry'],
        plainHttp: flags['plain-http'],
        dryRun: flags['dry-run'],
        jobs: flags.jobs,
        layerCompression: flags['layer-compression'] as 'gzip' | 'zstd' | 'none',
        compressionLevel: flags['compression-level'],
        uploadMode: flags['upload-mode'] as 'monolithic' | 'chunked',
        chunkSize: flags['chunk-size'] === undefined ? undefined : flags['chunk-size'] * 1024 * 1024,
        retryTimes: flags['retry-times'],
        timeouts: flags.timeout === undefined ? undefined : uniformTimeouts(flags.timeout),
        decoder: flags.decoder as 'auto' | 'xz' | 'lzma-native',
        stagingRepository: flags['staging-repository'],
        keepRegistryHost: flags['keep-registry-host'],
        onConflict: flags['on-conflict'] as ConflictPolicy,
        platforms: flags.platform?.map((p) => parsePlatform(p)),
        settings: connection.settings,
        credentials: connection.credentials,
        events: renderer.sink,
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
    if (flags.report) await writeReport(flags.report, report);
    const code = exitCodeOf(result);
    if (flags.json) {
      process.stdout.write(`${JSON.stringify({ status: code === 0 ? 'ok' : 'error', exitCode: code, ...report })}\n`);
    } else {
      this.printSummary(result, flags.report, renderer.counts.retries);
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
        await writeReport(reportFile, buildReport(partial));
        reported = true;
      } catch (w) {
        process.stderr.write(`warning: ${w instanceof Error ? w.message : String(w)}\n`);
      }
    }
    const resumable = this.interrupted || (isMirrorError(e) && (e.code === 'INTERRUPTED' || e.code === 'NETWORK'));
    if (json || !resumable) return;
    const lines = [stopSummary(partial)];
    if (reported) lines.push(`report: ${reportFile}`);
    process.stdout.write(`${lines.join('\n')}\n`);
  }

  private printSummary(r: PushResult, reportFile: string | undefined, retries: number): void {
    const s = summarize(r);
    const out: string[] = [];
    if (r.dryRun) {
      out.push(`Dry run: ${r.images.length} image(s) from ${r.source} would go to ${r.target}:`);
      for (const i of r.images) {
        out.push(
          i.status === 'failed'
            ? `  ${i.source}: cannot be pushed: ${i.error}`
            : i.status === 'skipped-conflict'
              ? `  ${i.source}: ${conflictSkipLine(i)}`
              : `  ${i.source} -> ${i.destination} ${shortDigest(i.digest)}${i.children.length ? ` (index, ${i.children.length} manifests)` : ''} ${i.blobs} blob(s)`,
        );
      }
    } else {
      out.push(
        `${r.images.length} image(s) to ${r.target}: ${s.pushed} pushed, ${s.skipped} already present, ${s.failed} failed` +
          (s.skippedConflict ? `, ${s.skippedConflict} skipped (conflict)` : ''),
      );
      const secs = r.durationMs / 1000;
      out.push(
        `blobs: ${s.blobsUploaded} uploaded, ${s.blobsMounted} mounted, ${s.blobsSkipped} already present${s.blobsFailed ? `, ${s.blobsFailed} failed` : ''}; ` +
          `${formatBytes(r.blobs.bytesUploaded)} sent in ${formatDuration(r.durationMs)}` +
          (secs > 0 ? ` (${formatBytes(r.blobs.bytesUploaded / secs)}/s)` : '') +
          (r.passes > 1 ? `; bundle read ${r.passes} times` : '') +
          (retries ? `; ${retries} request(s) retried` : ''),
      );
      const converted = r.images.find((i) => i.converted);
      if (converted) out.push(`note: ${converted.converted}`);
      for (const i of r.images) if (i.status === 'failed') out.push(`failed: ${i.source}: ${i.error}`);
      for (const i of r.images) if (i.status === 'skipped-conflict') out.push(`skipped: ${i.source}: ${conflictSkipLine(i)}`);
    }
    if (reportFile) out.push(`report: ${reportFile}`);
    out.push(...pushConfigHint(r, reportFile));
    process.stdout.write(`${out.join('\n')}\n`);
  }
}

/** conflictSkipLine says why an image was not pushed under --on-conflict first, naming the winner and both digests. */
function conflictSkipLine(i: ImageOutcome): string {
  const c = i.conflict;
  if (!c) return 'not pushed (conflict)';
  const winner = c.claims.find((x) => x.source === c.winner);
  const taker = winner ? describeClaims([winner]) : 'no image';
  return `not pushed (${shortDigest(i.digest)}): ${c.reference} goes to ${taker}, the first in the bundle`;
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
