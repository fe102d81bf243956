import { Args, Flags } from '@oclif/core';
import { MirrorCommand } from '../cli/base.js';
import { formatBytes } from '../cli/format.js';
import { canDrawBar, ProgressRenderer } from '../cli/progress.js';
import { buildSideContext, connectionFlags, normalizeBooleanArgs } from '../cli/side-flags.js';
import { listedImages, listingLines } from '../cli/summary.js';
import { inspectBundle } from '../copy/inspect.js';
import { inspectImage, type InspectImageResult } from '../copy/inspect-image.js';
import { formatPlatform, parsePlatform } from '../copy/platform.js';
import { exitCodeOf } from '../copy/report.js';
import { EXIT_CODE_HELP, MirrorError } from '../errors/index.js';
import { hasTransportPrefix, TRANSPORT_PREFIXES } from '../transport/refs.js';


/** Boolean flags that also take skopeo's `--flag=true|false` spelling. */
const BOOLEAN_FLAGS = ['tls-verify', 'referrers', 'raw', 'tags'];

/** List what a bundle holds, without a registry; or inspect one image, as skopeo inspect does. */
export default class Inspect extends MirrorCommand {
  static override summary = `Inspect an image (${TRANSPORT_PREFIXES.join(', ')}), or list the images of a bundle. Sends nothing.`;

  static override description = `mirror inspect TRANSPORT:REF reads one image as mirror copy would read it: its digest and media type, the platforms of an index, each manifest's size (config + layers, as stored) and creation time (from its config), and its referrers (the OCI referrers API or its fallback tag, cosign's .sig/.att/.sbom tags; --referrers=false skips them). --tags lists the repository's tags too (every page). --raw prints the manifest bytes exactly as stored (skopeo inspect --raw); --platform OS/ARCH[/VARIANT] inspects that manifest of an index. Connection flags have skopeo inspect's names: --creds, --authfile, --no-creds, --tls-verify=false, --cert-dir.

mirror inspect BUNDLE (an argument without a transport prefix) reads the bundle once, as mirror push does (the same reader and checks: a bad digest or a missing manifest shows here as it would in a push), and prints one line per image: its name, manifest digest, media type, the platforms of an index, and its size as stored (compressed blobs and manifests; a blob shared by two images counts in both). The same as mirror push --dry-run --source BUNDLE without --private-registry.

Layers of a docker save archive are compressed as a push would compress them (--layer-compression), since their digests depend on it; --layer-compression none lists them fastest.

${EXIT_CODE_HELP}`;

  static override examples = [
    '<%= config.bin %> inspect docker://quay.io/prometheus/node-exporter:v1.8.2',
    '<%= config.bin %> inspect --raw --tls-verify=false docker://127.0.0.1:5000/app:1.0',
    '<%= config.bin %> inspect --platform linux/arm64 --json oci-archive:./app.tar',
    '<%= config.bin %> inspect bmpackages_1.30.tar.xz',
    '<%= config.bin %> inspect ./layout-dir --json',
    '<%= config.bin %> inspect images.tar --layer-compression none',
  ];

  static override usageLine = 'mirror inspect TRANSPORT:REF | BUNDLE';

  static override args = {
    location: Args.string({
      description: 'An image (docker://HOST/REPO[:TAG|@DIGEST], oci:DIR[:REF], oci-archive:FILE[:REF], docker-archive:FILE[:REF|@N], dir:DIR) or a bundle (a .tar[.xz|.gz|.zst] file or a directory).',
      required: true,
      ignoreStdin: true,
    }),
  };

  static override flags = {
    'layer-compression': Flags.string({
      summary: 'How uncompressed docker-save layers would be pushed (their digests depend on it).',
      options: ['gzip', 'zstd', 'none'],
      default: 'gzip',
    }),
    'compression-level': Flags.integer({ summary: 'Level for --layer-compression (gzip 1-9, zstd 1-19).', min: 1, max: 19 }),
    decoder: Flags.string({ summary: 'xz decoder: auto (the xz program when installed, multi-threaded), xz, or lzma-native.', options: ['auto', 'xz', 'lzma-native'], default: 'auto' }),
    raw: Flags.boolean({ summary: 'Print the manifest bytes exactly as stored (an image location only).', allowNo: true }),
    platform: Flags.string({ summary: 'OS/ARCH[/VARIANT]: inspect that manifest of an index (an image location only).' }),
    referrers: Flags.boolean({ summary: 'Look for referrers (signatures, SBOMs, attestations) of the image.', default: true, allowNo: true }),
    tags: Flags.boolean({ summary: 'Also list the tags of the repository (every page).', allowNo: true }),
    ...connectionFlags('source'),
  };

  override async init(): Promise<void> {
    this.argv = normalizeBooleanArgs(this.argv, BOOLEAN_FLAGS);
    await super.init();
  }

  async run(): Promise<void> {
    const { args, flags } = await this.parse(Inspect);
    if (hasTransportPrefix(args.location)) {
      await this.inspectLocation(args.location, flags);
      return;
    }
    for (const f of ['raw', 'platform', 'tags'] as const) {
      if (flags[f]) throw new MirrorError('USAGE', `--${f} is for an image location (${TRANSPORT_PREFIXES.join(', ')}), not a bundle`);
    }
    const renderer = new ProgressRenderer({ quiet: flags.json, debug: flags.debug, tty: canDrawBar(process.stderr) });
    let listed;
    try {
      listed = await inspectBundle({
        source: args.location,
        layerCompression: flags['layer-compression'] as 'gzip' | 'zstd' | 'none',
        compressionLevel: flags['compression-level'],
        decoder: flags.decoder as 'auto' | 'xz' | 'lzma-native',
        events: renderer.sink,
        signal: this.abort.signal,
      });
    } finally {
      renderer.stop();
    }
    const code = exitCodeOf(listed);
    if (flags.json) {
      process.stdout.write(`${JSON.stringify({ status: code === 0 ? 'ok' : 'error', exitCode: code, source: listed.source, images: listedImages(listed) })}\n`);
    } else {
      process.stdout.write(`${listingLines(listed).join('\n')}\n`);
    }
    process.exitCode = code;
  }

  /** inspectLocation inspects one image in skopeo's transport syntax. */
  private async inspectLocation(location: string, flags: Record<string, unknown> & { json: boolean; debug: boolean }): Promise<void> {
    const renderer = new ProgressRenderer({ quiet: true, debug: flags.debug, tty: false });
    let r: InspectImageResult;
    try {
      r = await inspectImage({
        location,
        side: buildSideContext('', flags, renderer.sink),
        platform: typeof flags['platform'] === 'string' ? parsePlatform(flags['platform']) : undefined,
        referrers: flags['referrers'] !== false,
        tags: flags['tags'] === true,
        raw: flags['raw'] === true,
        events: renderer.sink,
        signal: this.abort.signal,
      });
    } finally {
      renderer.stop();
    }
    if (flags['raw'] === true) {
      process.stdout.write(r.raw);
      return;
    }
    const { raw: _raw, ...doc } = r;
    if (flags.json) {
      process.stdout.write(`${JSON.stringify(doc, null, 2)}\n`);
      return;
    }
    const lines = [`${r.name}`, `  digest:     ${r.digest}`, `  media type: ${r.mediaType} (${formatBytes(r.manifestSize)})`];
    if (r.platforms) lines.push(`  platforms:  ${r.platforms.join(', ')}`);
    for (const m of r.manifests) {
      const where = m.platform ? formatPlatform(m.platform) : 'image';
      if (m.error !== undefined) {
        lines.push(`  ${where}: ${m.digest}: not readable: ${m.error}`);
        continue;
      }
      lines.push(`  ${r.manifests.length > 1 || r.platforms ? `${where} ${m.digest}: ` : `${where}: `}${formatBytes(m.size)} in ${m.layers} layer(s) + config${m.created ? `, created ${m.created}` : ''}`);
    }
    if (r.referrers !== undefined) {
      lines.push(`  referrers:  ${r.referrers.length === 0 ? 'none' : ''}`.trimEnd());
      for (const x of r.referrers) lines.push(`    ${x.digest} ${x.artifactType ?? x.mediaType}${x.tag ? ` (tag ${x.tag})` : ''}`);
    }
    if (r.tags !== undefined) lines.push(`  tags:       ${r.tags.length === 0 ? 'none' : r.tags.join(', ')}`);
    process.stdout.write(`${lines.join('\n')}\n`);
  }
}
