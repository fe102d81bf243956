/**
 * `mirror inspect` and `mirror push --dry-run` without a registry: what a bundle holds (names, digests, media types,
 * platforms, sizes), read by the bundle adapter's dry run (./bundle.ts: its plan of the catalog), so the listing is
 * exactly what a push would send.
 */
import { MirrorError } from '../errors/index.js';
import type { EventSink } from '../events/index.js';
import { formatReference } from '../reference/index.js';
import type { LayerCompression } from '../transport/bundle/layout-state.js';
import { SOURCES } from '../transport/index.js';
import type { DestinationImage, SourceImage } from '../transport/types.js';
import { copyBundle } from './bundle.js';
import type { PlatformSpec } from '../oci/platform.js';
import type { CopyResult } from './result.js';

/** InspectOptions configure {@link inspectBundle}. */
export interface InspectOptions {
  /** The bundle: a `.tar[.xz|.gz|.zst]` file or a directory. */
  source: string;
  /** Compression docker-save layers would get (it decides their digests). Default: gzip. */
  layerCompression?: LayerCompression | undefined;
  /** Level for that compression. */
  compressionLevel?: number | undefined;
  /** xz decoder. Default: auto. */
  decoder?: 'auto' | 'xz' | 'lzma-native' | undefined;
  /** List only these platforms of multi-platform images, as a push with `--platform` would push them. Default: all. */
  platforms?: readonly PlatformSpec[] | undefined;
  events?: EventSink | undefined;
  signal?: AbortSignal | undefined;
}

/** InspectResult is the engine's dry-run result and the bundle it read. */
export interface InspectResult extends CopyResult {
  /** The bundle, as the source describes itself (`bundle demo.tar.xz (xz, OCI layout)`). */
  source: string;
}

/** asListed names an image by its own source reference: no destination, nothing mapped. */
function asListed(image: SourceImage): DestinationImage | MirrorError {
  const ref = image.reference;
  if (!ref) return image.error ?? new MirrorError('BAD_INPUT', `${image.name} has no image name`);
  return { repository: `${ref.registry}/${ref.repository}`, tag: ref.tag, name: formatReference(ref) };
}

/** inspectBundle reads a bundle once and lists its images, sending nothing anywhere. */
export async function inspectBundle(options: InspectOptions): Promise<InspectResult> {
  const source = await SOURCES.bundle(options.source, {
    layerCompression: options.layerCompression,
    compressionLevel: options.compressionLevel,
    decoder: options.decoder,
    signal: options.signal,
  });
  try {
    const result = await copyBundle(source, undefined, {
      map: asListed,
      dryRun: true,
      platforms: options.platforms,
      events: options.events,
      signal: options.signal,
    });
    return { ...result, source: source.description };
  } finally {
    await source.close();
  }
}
