import { writeFile } from 'node:fs/promises';
import { resolve } from 'node:path';
import { Args, Flags } from '@oclif/core';
import { MirrorCommand } from '../cli/base.js';
import { timeoutFlag } from '../cli/flags.js';
import { checkOutputPath, REPORT_STDOUT } from '../cli/report-file.js';
import { buildSideContext, normalizeBooleanArgs, sideFlags } from '../cli/side-flags.js';
import { formatBytes, formatDuration, formatRate, shortDigest } from '../cli/format.js';
import { canDrawBar, ProgressRenderer } from '../cli/progress.js';
import { copyImage, type CopyImageResult } from '../copy/copy-image.js';
import { parsePlatform, systemPlatform, type PlatformSpec } from '../copy/platform.js';
import { exitCodeOf, writeReport } from '../copy/report.js';
import { EXIT_CODE_HELP, MirrorError } from '../errors/index.js';
import { copyConfigHint } from '../mirrorconfig/hint.js';
import { parseTransportRef } from '../transport/refs.js';

/**
 * checkOutputFiles checks the files a copy writes beside its destination before anything is copied: each must be
 * writable, and none may be a file the copy reads or writes (`--digestfile` naming the archive replaced it with a
 * digest after the copy had written it).
 */
async function checkOutputFiles(source: string, destination: string, files: Record<string, string | undefined>): Promise<void> {
  const ends = [source, destination].flatMap((a) => {
    try {
      const r = parseTransportRef(a);
      return r.transport === 'docker' ? [] : [resolve(r.path)];
    } catch {
      return []; // Said by the copy itself.
    }
  });
  for (const [flag, file] of Object.entries(files)) {
    if (file === undefined || file === REPORT_STDOUT) continue;
    if (ends.includes(resolve(file))) throw new MirrorError('USAGE', `${flag} ${file} is a file this copy reads or writes`, { file, hint: `name another file for ${flag}` });
    await checkOutputPath(file, flag);
  }
}

/** Boolean flags that also take skopeo's `--flag=true|false` spelling. */
const BOOLEAN_FLAGS = ['src-tls-verify', 'dest-tls-verify', 'referrers', 'preserve-digests', 'all', 'dry-run', 'quiet'];

/** Copy one image (or a whole multi-platform index) between registries, layouts and archives. */
export default class Copy extends MirrorCommand {
  static override summary = 'Copy an image between registries, OCI layouts and archives, as skopeo copy does.';

  static override description = `Locations use skopeo's transport syntax: docker://HOST/REPO[:TAG|@DIGEST], oci:DIR[:REF], oci-archive:FILE[:REF], docker-archive:FILE[:REF|@N], dir:DIR (one image as skopeo copy ... dir:DIR writes it: a new or empty DIR, or a dir: image, which is replaced).

A multi-platform index is copied whole by default, digest kept (skopeo's --all; --multi-arch all). --platform OS/ARCH[/VARIANT] picks instances: one platform copies that manifest alone under the tag; several write a new index of just those (its digest changes; the summary says so). An image whose tag already points at the same digest at the destination is skipped after one manifest HEAD on each side, before any blob is looked at. Within one registry blobs are mounted, never sent again; between registries they stream from GET to PUT, nothing is written to local disk. Referrers (signatures, SBOMs, attestations: the OCI referrers API, its fallback tag, cosign's .sig/.att/.sbom tags) travel after their subject unless --referrers=false.

Archive sources may be compressed (gzip, xz, zstd: recognized by content): such an archive is first decompressed once into a private temporary file under $TMPDIR, removed when the copy ends. A docker-archive holds no manifest: one is built from its manifest.json (config kept); into a registry its uncompressed layers are gzip-compressed, so the manifest digest is mirror's (the summary says so).

Credentials per side: --src-creds/--dest-creds USER[:PASSWORD], --src-authfile/--dest-authfile, --src-no-creds/--dest-no-creds, else the same chain as push (environment, keychain, Docker config, a prompt on a terminal).

${EXIT_CODE_HELP}`;

  static override examples = [
    '<%= config.bin %> copy docker://quay.io/prometheus/node-exporter:v1.8.2 docker://registry.local:5000/mirror/prometheus/node-exporter:v1.8.2',
    '<%= config.bin %> copy --all --dest-creds admin:secret docker://gcr.io/distroless/static:nonroot docker://10.0.0.5:5000/distroless/static:nonroot',
    '<%= config.bin %> copy --platform linux/arm64 docker://docker.io/library/busybox:1.36 oci:./busybox:1.36',
    '<%= config.bin %> copy --dest-tls-verify=false oci-archive:./app.tar docker://127.0.0.1:5000/app:1.0',
    '<%= config.bin %> copy oci:./layout:1.36 docker://registry.local:5000/library/busybox:1.36',
    '<%= config.bin %> copy docker://registry.local:5000/app:1.0 oci-archive:./app.tar:registry.local:5000/app:1.0',
    '<%= config.bin %> copy docker-archive:./saved.tar.gz:busybox:1.36 docker://registry.local:5000/library/busybox:1.36',
    '<%= config.bin %> copy --platform linux/amd64 docker://registry.local:5000/app:1.0 docker-archive:./app.tar:app:1.0',
    '<%= config.bin %> copy dir:/media/usb/app-1.0 docker://registry.local:5000/app:1.0',
    '<%= config.bin %> copy docker://registry.local:5000/app:1.0 dir:/media/usb/app-1.0',
  ];

  static override args = {
    source: Args.string({ description: 'Source location (docker://..., oci:DIR[:REF], oci-archive:FILE[:REF], docker-archive:FILE[:REF|@N], dir:DIR).', required: true, ignoreStdin: true }),
    destination: Args.string({ description: 'Destination location, in the same syntax.', required: true, ignoreStdin: true }),
  };

  static override flags = {
    ...sideFlags('src', 'source'),
    ...sideFlags('dest', 'destination'),
    all: Flags.boolean({ char: 'a', summary: 'Copy every platform of an index (the default; skopeo compatibility).', allowNo: true }),
    'multi-arch': Flags.string({ summary: 'all (default), system (this machine\'s platform only), or index-only (the index without its platforms).', options: ['all', 'system', 'index-only'] }),
    platform: Flags.string({ summary: 'OS/ARCH[/VARIANT] to copy out of an index; repeatable.', multiple: true, multipleNonGreedy: true }),
    referrers: Flags.boolean({ summary: 'Copy signatures, SBOMs and attestations that refer to the image.', default: true, allowNo: true }),
    'preserve-digests': Flags.boolean({ summary: 'Accepted for skopeo compatibility: digests are never changed unless --platform asks.', allowNo: true }),
    'digestfile': Flags.string({ summary: 'Write the digest of the copied manifest to this file.' }),
    'retry-times': Flags.integer({ summary: 'Retries per request on 408/429/5xx and cut connections.', default: 5, min: 0, max: 100 }),
    timeout: timeoutFlag,
    jobs: Flags.integer({ char: 'j', summary: 'Blob transfers at once.', default: 4, min: 1, max: 64 }),
    'dry-run': Flags.boolean({ summary: 'Resolve both sides and say what would be copied; write nothing.' }),
    report: Flags.string({ summary: 'Write a JSON report of the copy to this file (- for standard output).' }),
    quiet: Flags.boolean({ char: 'q', summary: 'Print only errors and the final line.' }),
  };

  override async init(): Promise<void> {
    this.argv = normalizeBooleanArgs(this.argv, BOOLEAN_FLAGS);
    await super.init();
  }

  async run(): Promise<void> {
    const { args, flags } = await this.parse(Copy);
    const quiet = flags.quiet || flags.json;
    const renderer = new ProgressRenderer({ quiet, debug: flags.debug, tty: canDrawBar(process.stderr) && !quiet });
    let platforms: PlatformSpec[] | undefined = flags.platform?.map(parsePlatform);
    if (flags['multi-arch'] === 'system') platforms = [systemPlatform()];
    if (platforms !== undefined && flags.all) throw new MirrorError('USAGE', '--all copies every platform; drop it or --platform');
    await checkOutputFiles(args.source, args.destination, { '--digestfile': flags.digestfile, '--report': flags.report });
    const retry = { retries: flags['retry-times'] };
    let result: CopyImageResult;
    try {
      result = await copyImage({
        source: args.source,
        destination: args.destination,
        src: { ...buildSideContext('src', flags, renderer.sink), retry },
        dest: { ...buildSideContext('dest', flags, renderer.sink), retry },
        platforms,
        indexOnly: flags['multi-arch'] === 'index-only',
        referrers: flags.referrers,
        dryRun: flags['dry-run'],
        jobs: flags.jobs,
        events: renderer.sink,
        signal: this.abort.signal,
      });
    } finally {
      renderer.stop();
    }
    const o = result.outcome;
    const code = exitCodeOf({ images: [o], blobs: { ...result.summary.blobs }, passes: 1, durationMs: result.summary.durationMs });
    if (flags.digestfile && o.digest !== undefined && o.status !== 'failed') await writeFile(flags.digestfile, o.digest);
    const [srcLoc, dstLoc] = [parseTransportRef(result.source), parseTransportRef(result.destination)];
    const report = {
      version: 2,
      source: result.source,
      destination: result.destination,
      dryRun: result.dryRun,
      status: o.status === 'pushed' ? 'copied' : o.status === 'skipped' ? 'already present' : o.status,
      digest: o.digest,
      mediaType: o.mediaType,
      ...(o.error ? { error: o.error, errorCode: o.errorCode } : {}),
      ...(o.converted ? { converted: o.converted } : {}),
      children: o.children,
      referrers: o.referrers,
      blobs: result.summary.blobs,
      durationMs: result.summary.durationMs,
      // Version 2: where the image went, as data (mirror config reads it); no endpoint when --dest-tls-verify=false may have fallen back to plain HTTP.
      ...(dstLoc.transport === 'docker' && (flags['dest-plain-http'] || flags['dest-tls-verify'] !== false)
        ? { endpoint: { kind: 'registry', scheme: flags['dest-plain-http'] ? 'http' : 'https', host: dstLoc.reference.registry, namespace: '' } }
        : {}),
      ...(srcLoc.transport === 'docker' && dstLoc.transport === 'docker'
        ? {
            mapping: {
              source: { registry: srcLoc.reference.registry, repository: srcLoc.reference.repository, tag: srcLoc.reference.tag ?? null, digest: srcLoc.reference.digest ?? o.digest ?? null },
              destination: { registry: dstLoc.reference.registry, repository: dstLoc.reference.repository, tag: dstLoc.reference.tag ?? null },
            },
          }
        : {}),
    };
    if (flags.report === '-') process.stdout.write(`${JSON.stringify(report, null, 2)}\n`);
    else if (flags.report) await writeReport(flags.report, report);
    if (flags.json) process.stdout.write(`${JSON.stringify({ ...report, result: code === 0 ? 'ok' : 'error', exitCode: code })}\n`);
    else if (flags.report !== '-') this.printSummary(result, { quiet: flags.quiet });
    process.exitCode = code;
  }

  /** printSummary prints the outcome's line, the note when the digest changed, and unless quiet the `mirror config` hint. */
  private printSummary(r: CopyImageResult, opts: { quiet: boolean }): void {
    const o = r.outcome;
    const b = r.summary.blobs;
    const lines: string[] = [];
    if (o.status === 'failed') lines.push(`failed: ${r.source} -> ${r.destination}: ${o.error ?? ''}`);
    else if (o.status === 'skipped') lines.push(`already present: ${r.destination} ${shortDigest(o.digest)}${o.referrers ? ` (${o.referrers} referrer(s) checked)` : ''}`);
    else if (o.status === 'planned') lines.push(`would copy ${r.source} -> ${r.destination} ${shortDigest(o.digest)}: ${o.children.length ? `index of ${o.children.length} manifests, ` : ''}${o.blobs} blob(s)`);
    else {
      const rate = b.bytesUploaded > 0 ? formatRate(b.bytesUploaded, r.summary.durationMs) : undefined;
      lines.push(
        `copied ${r.source} -> ${r.destination} ${shortDigest(o.digest)}${o.children.length ? ` (index, ${o.children.length} manifests)` : ''}` +
          `${o.referrers ? `, ${o.referrers} referrer(s)` : ''}; blobs: ${b.uploaded} uploaded, ${b.mounted} mounted, ${b.skipped} already present; ` +
          `${formatBytes(b.bytesUploaded)} sent in ${formatDuration(r.summary.durationMs)}${rate ? ` (${rate})` : ''}`,
      );
    }
    if (o.converted) lines.push(`note: ${o.converted}`);
    if (!opts.quiet) lines.push(...copyConfigHint(r));
    process.stdout.write(`${lines.join('\n')}\n`);
  }
}
