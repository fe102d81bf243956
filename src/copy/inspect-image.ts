/**
 * `mirror inspect TRANSPORT:REF`: what one image is, read through the same sources `mirror copy` reads
 * (`docker://`, `oci:`, `oci-archive:`, `docker-archive:`): its digest and media type, the platforms of an index, the
 * size of each manifest's content (config + layers), when each was created (from its config), the referrers the copy
 * engine would carry (the referrers API or its fallback tag, cosign's tags), and, when asked, the repository's tags.
 * `raw` gives the manifest bytes exactly as the source holds them. Nothing is written anywhere.
 */
import { MirrorError } from '../errors/index.js';
import type { EventSink } from '../events/index.js';
import { type Descriptor, parseManifest, type Platform } from '../oci/manifest.js';
import { isIndexMediaType } from '../oci/media-types.js';
import { openSourceRef, type OpenedSource, type SideContext } from '../transport/index.js';
import { formatTransportRef, parseTransportRef } from '../transport/refs.js';
import type { ManifestBytes } from '../transport/types.js';
import { formatPlatform, platformMatches, type PlatformSpec } from './platform.js';
import { parseJson } from '../oci/json.js';

/** MAX_CONFIG_BYTES bounds a config read to learn when an image was created. */
const MAX_CONFIG_BYTES = 4 * 1024 * 1024;
/** MAX_INSPECTED_MANIFESTS bounds the platform manifests of an index read for their sizes. */
const MAX_INSPECTED_MANIFESTS = 256;

/** InspectImageOptions configure {@link inspectImage}. */
export interface InspectImageOptions {
  /** The location (`docker://quay.io/a/b:1`, `oci:DIR:REF`, `oci-archive:FILE`, `docker-archive:FILE:REF`). */
  location: string;
  /** How to reach a registry. */
  side: SideContext;
  /** Inspect this platform's manifest of an index instead of the index. Default: the manifest the name points at. */
  platform?: PlatformSpec | undefined;
  /** Look for referrers. Default: true. */
  referrers?: boolean | undefined;
  /** List the repository's tags (a registry: every page). Default: false. */
  tags?: boolean | undefined;
  /** Only the manifest's bytes (`result.raw`); nothing else is read. Default: false. */
  raw?: boolean | undefined;
  events?: EventSink | undefined;
  signal?: AbortSignal | undefined;
}

/** InspectedManifest is one image manifest: what it holds and when it was made. */
export interface InspectedManifest {
  digest: string;
  mediaType: string;
  /** Its platform: the index's descriptor says it, else its config. */
  platform?: Platform | undefined;
  configDigest?: string | undefined;
  /** Bytes of its config and layers (as stored: compressed layers). */
  size: number;
  layers: number;
  /** `created` of its config, as written. */
  created?: string | undefined;
  /** Set when this manifest could not be read. */
  error?: string | undefined;
}

/** InspectedReferrer is a referrer found for the image. */
export interface InspectedReferrer {
  digest: string;
  mediaType: string;
  artifactType?: string | undefined;
  size: number;
  /** How it was found: `subject` (referrers API or fallback tag) or `tag` (cosign's tag, given). */
  via: 'subject' | 'tag';
  tag?: string | undefined;
}

/** InspectImageResult is what {@link inspectImage} found. */
export interface InspectImageResult {
  /** The location as given, normalized. */
  name: string;
  digest: string;
  mediaType: string;
  /** The manifest's own size in bytes. */
  manifestSize: number;
  /** The manifest's bytes, exactly. */
  raw: Uint8Array;
  /** For an index: its platforms, in order. */
  platforms?: string[] | undefined;
  /** Each image manifest (one for a manifest; each of an index's). */
  manifests: InspectedManifest[];
  /** Referrers (undefined when not looked for or the source has none to offer). */
  referrers?: InspectedReferrer[] | undefined;
  /** Tags of the repository (only when asked). */
  tags?: string[] | undefined;
}

/** inspectImage reads one image from any source transport. */
export async function inspectImage(options: InspectImageOptions): Promise<InspectImageResult> {
  const ref = parseTransportRef(options.location);
  const opened = await openSourceRef(ref, { ...options.side, signal: options.signal });
  try {
    return await inspectOpened(opened, formatTransportRef(ref), options);
  } finally {
    await opened.source.close();
  }
}

async function inspectOpened(opened: OpenedSource, name: string, options: InspectImageOptions): Promise<InspectImageResult> {
  const { source, image } = opened;
  const signal = options.signal;
  const repo = image.repository;
  const root = await source.resolve(image, { signal });
  let top = await source.manifest(repo, root.digest, { signal });
  let mediaType = top.mediaType || root.mediaType;
  if (options.platform !== undefined) {
    if (!isIndexMediaType(mediaType)) throw new MirrorError('USAGE', `${name} is a single manifest (${mediaType}), not an index: --platform picks from an index`);
    const index = parseManifest(top.bytes, mediaType, { image: name, digest: top.digest });
    if (index.kind !== 'index') throw new MirrorError('BAD_INPUT', `${name} is not an index`, { image: name });
    const chosen = index.index.manifests.filter((d) => platformMatches(options.platform!, d.platform));
    if (chosen.length === 0) {
      throw new MirrorError('NOT_FOUND', `${name} has no ${formatPlatform(options.platform)} platform (it has ${index.index.manifests.map((d) => formatPlatform(d.platform ?? {})).join(', ')})`, { image: name });
    }
    top = await source.manifest(repo, chosen[0]!.digest, { signal });
    mediaType = top.mediaType || chosen[0]!.mediaType;
  }
  const result: InspectImageResult = { name, digest: top.digest, mediaType, manifestSize: top.bytes.byteLength, raw: top.bytes, manifests: [] };
  if (options.raw) return result;
  const parsed = parseManifest(top.bytes, mediaType, { image: name, digest: top.digest });
  if (parsed.kind === 'index') {
    const children = parsed.index.manifests;
    result.platforms = children.map((d) => (d.platform ? formatPlatform(d.platform) : d.artifactType ?? 'unknown'));
    for (const d of children.slice(0, MAX_INSPECTED_MANIFESTS)) {
      try {
        const m = await source.manifest(repo, d.digest, { signal });
        result.manifests.push(await describe(opened, m, d.platform, signal));
      } catch (e) {
        if (signal?.aborted) throw e;
        result.manifests.push({ digest: d.digest, mediaType: d.mediaType, platform: d.platform, size: 0, layers: 0, error: e instanceof Error ? e.message : String(e) });
      }
    }
  } else {
    result.manifests.push(await describe(opened, { ...top, mediaType }, undefined, signal));
  }
  if (options.referrers !== false && source.referrers !== undefined) {
    const found = await source.referrers(repo, top.digest, { signal, tagged: true });
    result.referrers = found.map((r) => ({
      digest: r.descriptor.digest,
      mediaType: r.descriptor.mediaType,
      artifactType: r.descriptor.artifactType,
      size: r.descriptor.size,
      via: r.via,
      tag: r.tag,
    }));
  }
  if (options.tags) {
    if (source.tags === undefined) throw new MirrorError('USAGE', `${name}: this location has no tags to list`);
    const tags: string[] = [];
    for await (const t of source.tags(repo, { signal })) tags.push(t);
    result.tags = tags;
  }
  return result;
}

/** describe sums an image manifest's config and layers and reads `created` (and the platform) from its config. */
async function describe(opened: OpenedSource, m: ManifestBytes, platform: Platform | undefined, signal: AbortSignal | undefined): Promise<InspectedManifest> {
  const parsed = parseManifest(m.bytes, m.mediaType, { digest: m.digest });
  if (parsed.kind !== 'image') return { digest: m.digest, mediaType: m.mediaType, platform, size: 0, layers: 0 };
  const config: Descriptor = parsed.manifest.config;
  const layers = parsed.manifest.layers;
  const out: InspectedManifest = {
    digest: m.digest,
    mediaType: m.mediaType,
    platform,
    configDigest: config.digest,
    size: config.size + layers.reduce((n, l) => n + l.size, 0),
    layers: layers.length,
  };
  if (config.size <= MAX_CONFIG_BYTES && /json/.test(config.mediaType)) {
    try {
      const chunks: Buffer[] = [];
      for await (const c of await opened.source.openBlob(opened.image.repository, config, { signal })) chunks.push(Buffer.from(c));
      const doc = parseJson(Buffer.concat(chunks).toString('utf8')) as { created?: unknown; os?: unknown; architecture?: unknown; variant?: unknown };
      if (typeof doc.created === 'string') out.created = doc.created;
      if (out.platform === undefined && typeof doc.os === 'string' && typeof doc.architecture === 'string') {
        out.platform = { os: doc.os, architecture: doc.architecture, ...(typeof doc.variant === 'string' ? { variant: doc.variant } : {}) };
      }
    } catch (e) {
      if (signal?.aborted) throw e;
      // An artifact's config, or one that cannot be read: the listing goes on without it.
    }
  }
  return out;
}
