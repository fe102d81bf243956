import { Args, Flags } from '@oclif/core';
import { MirrorCommand } from '../cli/base.js';
import { canDrawBar, ProgressRenderer } from '../cli/progress.js';
import { listedImages, listingLines } from '../cli/summary.js';
import { inspectBundle } from '../copy/inspect.js';
import { exitCodeOf } from '../copy/report.js';
import { EXIT_CODE_HELP } from '../errors/index.js';

/** List what a bundle holds, without a registry. */
export default class Inspect extends MirrorCommand {
  static override summary = 'List the images of a bundle: names, digests, media types, platforms and sizes. Sends nothing.';

  static override description = `Reads the bundle once, as mirror push does (the same reader and checks: a bad digest or a missing manifest shows here as it would in a push), and prints one line per image: its name, manifest digest, media type, the platforms of an index, and its size as stored (compressed blobs and manifests; a blob shared by two images counts in both). The same as mirror push --dry-run --source BUNDLE without --private-registry.

Layers of a docker save archive are compressed as a push would compress them (--layer-compression), since their digests depend on it; --layer-compression none lists them fastest.

${EXIT_CODE_HELP}`;

  static override examples = [
    '<%= config.bin %> inspect bmpackages_1.30.tar.xz',
    '<%= config.bin %> inspect ./layout-dir --json',
    '<%= config.bin %> inspect images.tar --layer-compression none',
  ];

  static override usageLine = 'mirror inspect BUNDLE';

  static override args = {
    bundle: Args.string({ description: 'The bundle: a .tar[.xz|.gz|.zst] file or a directory.', required: true, ignoreStdin: true }),
  };

  static override flags = {
    'layer-compression': Flags.string({
      summary: 'How uncompressed docker-save layers would be pushed (their digests depend on it).',
      options: ['gzip', 'zstd', 'none'],
      default: 'gzip',
    }),
    'compression-level': Flags.integer({ summary: 'Level for --layer-compression (gzip 1-9, zstd 1-19).', min: 1, max: 19 }),
    decoder: Flags.string({ summary: 'xz decoder: auto (the xz program when installed, multi-threaded), xz, or lzma-native.', options: ['auto', 'xz', 'lzma-native'], default: 'auto' }),
  };

  async run(): Promise<void> {
    const { args, flags } = await this.parse(Inspect);
    const renderer = new ProgressRenderer({ quiet: flags.json, debug: flags.debug, tty: canDrawBar(process.stderr) });
    let listed;
    try {
      listed = await inspectBundle({
        source: args.bundle,
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
}
