/**
 * `mirror push`: every image of a bundle into a registry namespace (or an OCI layout), with the source host
 * dropped and the path kept under the namespace. One call: parse the target, open both ends, run the bundle adapter
 * (./bundle.ts: the bundle's pass, then the copy engine).
 */
import type { CredentialResolver } from '../auth/types.js';
import { MirrorError } from '../errors/index.js';
import { clipInput } from '../errors/quote.js';
import type { EventSink } from '../events/index.js';
import type { HttpTimeouts } from '../net/http.js';
import type { HostSettingsResolver } from '../net/types.js';
import {
  describeTarget,
  formatReference,
  mapReference,
  type MappingOptions,
  parseTarget,
  type Target,
  targetEndpoint,
  type TargetEndpoint,
} from '../reference/index.js';
import type { UploadMode } from '../registry/index.js';
import type { LayerCompression } from '../transport/bundle/layout-state.js';
import type { GzipEncoder } from '../transport/bundle/convert.js';
import { openDestination, SOURCES } from '../transport/index.js';
import type { DestinationImage, ImageDestination, SourceImage } from '../transport/types.js';
import { type ConflictPolicy, DEFAULT_CONFLICT_POLICY } from './conflicts.js';
import { copyBundle, DEFAULT_STAGING_REPOSITORY, partialResultOf } from './bundle.js';
import type { CopyResult } from './result.js';
import type { PlatformSpec } from '../oci/platform.js';

/** PushOptions configure {@link pushBundle}. Defaults are the engine's and the client's. */
export interface PushOptions {
  /** The bundle: a `.tar[.xz|.gz|.zst]` file or a directory. */
  source: string;
  /** `--private-registry`: `host[:port][/ns]`, `http(s)://...`, `https://host/v2/ns`, or `oci:DIR`. */
  target: string;
  /** Plain HTTP for the registry. Default: false. */
  plainHttp?: boolean | undefined;
  /** Read and plan, send nothing. Default: false. */
  dryRun?: boolean | undefined;
  /** Concurrent operations. */
  jobs?: number | undefined;
  /** Compression of docker-save layers. Default: gzip. */
  layerCompression?: LayerCompression | undefined;
  /** Level for that compression. */
  compressionLevel?: number | undefined;
  /** What makes gzip layers: `auto` (default: igzip when installed and no level is set, else zlib), `igzip`, `zlib`. */
  gzipEncoder?: GzipEncoder | undefined;
  /** `monolithic` (default) or `chunked` uploads. */
  uploadMode?: UploadMode | undefined;
  /** Chunk size for chunked uploads. */
  chunkSize?: number | undefined;
  /** Retries per request. */
  retryTimes?: number | undefined;
  /** HTTP timeouts (`--timeout`). Defaults: see `src/net/http.ts`. */
  timeouts?: HttpTimeouts | undefined;
  /** xz decoder. Default: auto. */
  decoder?: 'auto' | 'xz' | 'lzma-native' | undefined;
  /**
   * Push only these platforms (`--platform os/arch[/variant]`, parsed with parsePlatform) of multi-platform images.
   * Default: every image whole. See {@link BundleCopyOptions.platforms}.
   */
  platforms?: readonly PlatformSpec[] | undefined;
  /** Repository (under the namespace) for blobs met before the metadata. Default: {@link DEFAULT_STAGING_REPOSITORY}. */
  stagingRepository?: string | undefined;
  /** Keep the source registry host under the namespace (`ns/quay.io/team/app`). Default: false (the host is dropped). */
  keepRegistryHost?: boolean | undefined;
  /** Images claiming one destination reference with different digests: `fail` (default) or `first`. */
  onConflict?: ConflictPolicy | undefined;
  /** TLS / proxy settings per host. */
  settings: HostSettingsResolver;
  /** Credentials. */
  credentials: CredentialResolver;
  events?: EventSink | undefined;
  signal?: AbortSignal | undefined;
}

/** PushResult is the engine's result plus what was pushed where. */
export interface PushResult extends CopyResult {
  /** The bundle, for messages. */
  source: string;
  /** The target as the user would write it, for messages. */
  target: string;
  /** The target as data: scheme, host and namespace of a registry, or a layout's directory. */
  endpoint: TargetEndpoint;
  /** How source references were mapped, so a reader can map a source registry to its place under the endpoint. */
  mapping: { keepRegistryHost: boolean; onConflict: ConflictPolicy };
  dryRun: boolean;
}

/** What pushes that stopped had done, by the error they stopped with. */
const partialPushes = new WeakMap<object, PushResult>();

/**
 * partialPushOf gives what a push that {@link pushBundle} ended with `error` had done (see `partialResultOf` of
 * ./bundle.ts), or undefined when it stopped before the run began.
 */
export function partialPushOf(error: unknown): PushResult | undefined {
  return typeof error === 'object' && error !== null ? partialPushes.get(error) : undefined;
}

/**
 * destinationFor maps a source image into a target (registry namespace or layout). A layout keeps full names, so
 * `keepRegistryHost` changes nothing there.
 */
export function destinationFor(target: Target, image: SourceImage, mapping: MappingOptions = {}): DestinationImage | MirrorError {
  const ref = image.reference;
  if (!ref) return image.error ?? new MirrorError('BAD_INPUT', `${image.name} has no image name`);
  if (target.kind === 'oci-layout') {
    return { repository: `${ref.registry}/${ref.repository}`, tag: ref.tag, name: formatReference(ref), annotationName: formatReference(ref) };
  }
  let dest;
  try {
    dest = mapReference(ref, target, mapping);
  } catch (e) {
    if (e instanceof MirrorError) return e;
    throw e;
  }
  if (dest.repository.length > 255) return new MirrorError('BAD_INPUT', `destination repository ${clipInput(dest.repository)} is longer than 255 characters`, { image: image.name });
  return { repository: dest.repository, tag: ref.tag, name: formatReference({ ...dest, digest: ref.tag ? undefined : ref.digest }) };
}

/** pushBundle pushes every image of a bundle into a target. */
export async function pushBundle(options: PushOptions): Promise<PushResult> {
  const target = parseTarget(options.target, { plainHttp: options.plainHttp });
  const staging =
    target.kind === 'registry'
      ? [target.namespace, options.stagingRepository ?? DEFAULT_STAGING_REPOSITORY].filter((s) => s !== '').join('/')
      : undefined;
  // The bundle first (a file that is not a bundle fails before anyone is asked for a password), then the
  // registry (a wrong address, certificate or password fails in seconds), then the long read.
  const source = await SOURCES.bundle(options.source, {
    layerCompression: options.layerCompression,
    compressionLevel: options.compressionLevel,
    gzipEncoder: options.gzipEncoder,
    decoder: options.decoder,
    // An OCI layout holds OCI manifests: docker-save images are written with OCI media types there.
    manifestFormat: target.kind === 'oci-layout' ? 'oci' : 'docker',
    signal: options.signal,
  });
  const about = {
    source: source.description,
    target: describeTarget(target),
    endpoint: targetEndpoint(target),
    mapping: { keepRegistryHost: options.keepRegistryHost ?? false, onConflict: options.onConflict ?? DEFAULT_CONFLICT_POLICY },
    dryRun: options.dryRun ?? false,
  };
  let dest: ImageDestination | undefined;
  if (!options.dryRun) {
    try {
      dest = await openDestination(target, {
        settings: options.settings,
        credentials: options.credentials,
        retry: options.retryTimes === undefined ? undefined : { retries: options.retryTimes },
        timeouts: options.timeouts,
        uploadMode: options.uploadMode,
        chunkSize: options.chunkSize,
        events: options.events,
        signal: options.signal,
      });
    } catch (e) {
      await source.close();
      throw e;
    }
  }
  try {
    const result = await copyBundle(source, dest, {
      map: (img) => destinationFor(target, img, { keepRegistryHost: options.keepRegistryHost }),
      jobs: options.jobs,
      stagingRepository: staging,
      platforms: options.platforms,
      dryRun: options.dryRun,
      onConflict: options.onConflict,
      events: options.events,
      signal: options.signal,
    });
    return { ...result, ...about };
  } catch (e) {
    const partial = partialResultOf(e);
    if (partial !== undefined && typeof e === 'object' && e !== null) partialPushes.set(e, { ...partial, ...about });
    throw e;
  } finally {
    await source.close();
    await dest?.close();
  }
}
