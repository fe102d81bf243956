/**
 * `mirror copy SRC DST`: one image (or index) between any two locations in skopeo's transport syntax, through the
 * copy engine. One call: parse both locations, open both ends, run one job, close.
 */
import { MirrorError } from '../errors/index.js';
import type { EventSink } from '../events/index.js';
import { formatTransportRef, parseTransportRef } from '../transport/refs.js';
import { openDestinationRef, openSourceRef, type OpenedDestination, type SideContext } from '../transport/index.js';
import { copyImagesFrom, type CopyOutcome, type CopyRunSummary } from './copy.js';
import type { PlatformSpec } from './platform.js';

/** CopyImageOptions configure {@link copyImage}. */
export interface CopyImageOptions {
  /** The source location (`docker://quay.io/a/b:1`, `oci:DIR:REF`, ...). */
  source: string;
  /** The destination location. */
  destination: string;
  /** How the source side connects (credentials, TLS). */
  src: SideContext;
  /** How the destination side connects. */
  dest: SideContext;
  /** Platforms to copy out of an index; undefined copies it whole (digest kept). */
  platforms?: readonly PlatformSpec[] | undefined;
  /** Copy an index alone, without its platform manifests. Default: false. */
  indexOnly?: boolean | undefined;
  /** Copy referrers (signatures, SBOMs). Default: true. */
  referrers?: boolean | undefined;
  /** Plan and compare only; write nothing. Default: false. */
  dryRun?: boolean | undefined;
  /** Blob operations at once. Default: the engine's. */
  jobs?: number | undefined;
  events?: EventSink | undefined;
  signal?: AbortSignal | undefined;
}

/** CopyImageResult is what a copy did. */
export interface CopyImageResult {
  source: string;
  destination: string;
  dryRun: boolean;
  outcome: CopyOutcome;
  summary: CopyRunSummary;
}

/** copyImage copies one image from `source` to `destination`. */
export async function copyImage(options: CopyImageOptions): Promise<CopyImageResult> {
  const srcRef = parseTransportRef(options.source);
  const dstRef = parseTransportRef(options.destination);
  // A registry wants compressed layers: an archive that stores them uncompressed (docker-archive) compresses them.
  // A registry destination is reached while the source is opened (each a ping, https before http where allowed);
  // other destinations, which may create files, only once the source opened. The source's failure is the one told
  // when both fail, as when they were opened one after the other.
  const openDestination = (): Promise<OpenedDestination> => openDestinationRef(dstRef, { ...options.dest, signal: options.signal, dryRun: options.dryRun });
  const early = dstRef.transport === 'docker' ? openDestination() : undefined;
  early?.catch(() => {});
  const [opened, reached] = await Promise.allSettled([
    openSourceRef(srcRef, { ...options.src, signal: options.signal, compressLayers: dstRef.transport === 'docker', ociManifest: dstRef.transport === 'oci' || dstRef.transport === 'oci-archive' }),
    early ?? Promise.resolve(undefined),
  ]);
  if (opened.status === 'rejected') {
    if (reached.status === 'fulfilled') await reached.value?.destination.close();
    throw opened.reason;
  }
  const src = opened.value;
  let dst: OpenedDestination | undefined;
  try {
    if (reached.status === 'rejected') throw reached.reason;
    dst = reached.value ?? (await openDestination());
    const run = copyImagesFrom(
      [{ source: src.source, image: src.image, name: src.name, reference: src.reference, destination: dst.image }],
      dst.destination,
      {
        jobs: 1,
        transfers: options.jobs,
        platforms: options.platforms,
        indexOnly: options.indexOnly,
        referrers: options.referrers,
        dryRun: options.dryRun,
        events: options.events,
        signal: options.signal,
      },
    );
    let outcome: CopyOutcome | undefined;
    for await (const o of run.outcomes) outcome = o;
    if (outcome === undefined) throw new MirrorError('INTERNAL', 'the copy produced no outcome');
    // A failed image is not committed: an archive that would hold nothing is not written at all.
    if (!options.dryRun && outcome.status !== 'failed') await dst.destination.commit({ signal: options.signal });
    return {
      source: formatTransportRef(srcRef),
      destination: formatTransportRef(dstRef),
      dryRun: options.dryRun ?? false,
      outcome,
      summary: run.summary(),
    };
  } finally {
    await src.source.close();
    await dst?.destination.close();
  }
}
