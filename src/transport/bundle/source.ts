/**
 * The bundle source: an OCI image layout or a `docker save` archive, as a `.tar` (compressed with xz, gzip or zstd,
 * sniffed from magic bytes) or as a directory. A file is read once, front to back, as a stream, and never extracted:
 * small JSON entries (index.json, manifest.json, manifests, configs) are kept in memory and every other blob is
 * handed to the copy engine while it is read.
 */
import { MirrorError } from '../../errors/index.js';
import { DIGEST_ALGORITHMS, DigestCounter, digestAlgorithm, digestLike } from '../../oci/digest.js';
import { type CachedLayer, defaultLayerCachePath, LayerCache } from './layer-cache.js';
import { openBundleEntries, type BundleEntry, type BundleEntriesInput } from './entries.js';
import { compressorId, convertLayer, type ConvertedLayerStream, type GzipEncoder } from './convert.js';
import { blobDigestOfPath, type LayerCompression, LayoutState } from './layout-state.js';
import type { BlobBody, Catalog, ScanOptions, StreamSink, StreamSource } from '../types.js';

/** DEFAULT_SMALL_ENTRY_MAX: blob entries up to this size that hold JSON are kept in memory as metadata. */
export const DEFAULT_SMALL_ENTRY_MAX = 4 * 1024 * 1024;
/** DEFAULT_METADATA_BUDGET bounds the memory held by metadata entries. */
export const DEFAULT_METADATA_BUDGET = 256 * 1024 * 1024;

/** BundleSourceOptions tune {@link openBundleSource}. */
export interface BundleSourceOptions {
  /** How uncompressed docker-save layers are pushed. Default: `gzip`. */
  layerCompression?: LayerCompression | undefined;
  /** Compression level for converted layers. Default: the converter's. */
  compressionLevel?: number | undefined;
  /** What makes gzip layers (igzip or zlib). Default: `auto`, see {@link GzipEncoder}. */
  gzipEncoder?: GzipEncoder | undefined;
  /** xz decoder choice: `auto` (the xz program when installed, else lzma-native), `xz`, `lzma-native`. */
  decoder?: 'auto' | 'xz' | 'lzma-native' | undefined;
  /** The record of earlier layer conversions; null to keep none. Default {@link defaultLayerCachePath}. */
  layerCachePath?: string | null | undefined;
  /**
   * The manifests made for docker-save images: `docker` (default, Docker v2 schema 2 as docker pushes them) or `oci`
   * (OCI media types, which an OCI layout destination wants).
   */
  manifestFormat?: 'docker' | 'oci' | undefined;
  /** Largest blob entry kept in memory as metadata. Default {@link DEFAULT_SMALL_ENTRY_MAX}. */
  smallEntryMax?: number | undefined;
  signal?: AbortSignal | undefined;
}

/** openBundleSource opens a bundle file or directory as a stream source. */
export async function openBundleSource(path: string, options: BundleSourceOptions = {}): Promise<StreamSource> {
  const input = await openBundleEntries(path, { decoder: options.decoder, signal: options.signal });
  return new BundleSource(path, input, options);
}

class BundleSource implements StreamSource {
  readonly kind = 'stream' as const;
  readonly reopenable: boolean;
  private readonly state: LayoutState;
  private readonly smallMax: number;
  private metadataBytes = 0;
  private readonly cache: LayerCache;
  private compressor: string | undefined;

  constructor(
    private readonly path: string,
    private readonly input: BundleEntriesInput,
    private readonly options: BundleSourceOptions,
  ) {
    this.reopenable = input.reopenable;
    this.state = new LayoutState(path, options.layerCompression ?? 'gzip', { kind: input.reopenable ? 'directory' : 'archive', manifestFormat: options.manifestFormat });
    this.smallMax = options.smallEntryMax ?? DEFAULT_SMALL_ENTRY_MAX;
    this.cache = new LayerCache(options.layerCachePath === null ? undefined : (options.layerCachePath ?? defaultLayerCachePath()));
  }

  /** params names the layer compressor for the conversion record (looked up once, on the first docker-save layer). */
  private get params(): string {
    if (this.compressor === undefined) {
      try {
        this.compressor = compressorId({ compression: this.state.layerCompression, level: this.options.compressionLevel, gzipEncoder: this.options.gzipEncoder });
      } catch {
        // No such compressor here: each layer's conversion fails with the reason; nothing is recorded under this name.
        this.compressor = 'unavailable';
      }
    }
    return this.compressor;
  }

  /** fileId names this bundle file (path, size, mtime) for the conversion record. */
  private get fileId(): string {
    return this.input.identity;
  }

  get description(): string {
    const fmt = this.state.format === 'unknown' ? '' : `, ${this.state.format === 'oci' ? 'OCI layout' : 'docker save'}`;
    return `bundle ${this.path} (${this.input.description}${fmt})`;
  }

  async scan(sink: StreamSink, options: ScanOptions): Promise<Catalog> {
    const only = options.only;
    const entries = this.input.entries({ signal: options.signal, onSourceBytes: options.onSourceBytes });
    for await (const entry of entries) {
      if (only !== undefined) {
        if (only.has(entry.name)) await this.blobEntry(entry, sink, true);
        continue;
      }
      this.state.noteEntry(entry.name);
      await this.entry(entry, sink);
    }
    await sink.flush?.();
    await this.cache.save();
    return this.state.catalog();
  }

  async close(): Promise<void> {
    await this.input.close();
  }

  private async entry(e: BundleEntry, sink: StreamSink): Promise<void> {
    const s = this.state;
    if (e.linkTarget !== undefined) {
      s.aliases.set(e.name, e.linkTarget);
      return;
    }
    switch (e.name) {
      case 'oci-layout': {
        const bytes = await e.bytes(64 * 1024);
        try {
          JSON.parse(bytes.toString('utf8'));
        } catch {
          throw new MirrorError('BAD_INPUT', `oci-layout in ${this.path} is not valid JSON`, { file: this.path });
        }
        return;
      }
      case 'index.json':
        s.setIndex(await this.metadata(e));
        return;
      case 'manifest.json':
        s.setDockerManifest(await this.metadata(e));
        return;
      case 'repositories':
        return;
      default:
        break;
    }
    if (blobDigestOfPath(e.name) !== undefined || s.isDockerLayerName(e.name)) {
      await this.blobEntry(e, sink, false);
      return;
    }
    if (s.isDockerConfigName(e.name) && e.size <= this.smallMax) {
      s.files.set(e.name, await this.metadata(e));
    }
    // Anything else (docker's legacy `<id>/json`, `VERSION`, unknown files) is not part of any image.
  }

  private async metadata(e: BundleEntry): Promise<Buffer> {
    this.holdMetadata(e.name, e.size);
    return e.bytes(this.smallMax * 4);
  }

  /** holdMetadata counts metadata kept in memory against {@link DEFAULT_METADATA_BUDGET}. */
  private holdMetadata(name: string, size: number): void {
    if (this.metadataBytes + size > DEFAULT_METADATA_BUDGET) {
      throw new MirrorError('BAD_INPUT', `${this.path} holds more than ${DEFAULT_METADATA_BUDGET >> 20} MiB of metadata (at ${name})`, { file: this.path });
    }
    this.metadataBytes += size;
  }

  /** blobEntry handles an OCI blob or a docker-save layer; `again` marks a re-read pass. */
  private async blobEntry(e: BundleEntry, sink: StreamSink, again: boolean): Promise<void> {
    const s = this.state;
    const digest = blobDigestOfPath(e.name);
    if (digest !== undefined) {
      const algorithm = digestAlgorithm(digest);
      if (!DIGEST_ALGORITHMS.has(algorithm)) {
        // Content this tool cannot verify is never sent; the images that need it fail with the reason.
        const why = `blob ${digest.slice(0, 80)} in ${this.path} uses the digest algorithm "${algorithm.slice(0, 32)}", which cannot be verified (sha256, sha384 and sha512 can)`;
        s.problems.set(digest, new MirrorError('UNSUPPORTED', why, { digest, file: this.path }));
        return;
      }
      let body: BlobBody = e.body();
      if (!again && e.size <= this.smallMax) {
        const bytes = await e.bytes(this.smallMax);
        // Manifests and image configs are metadata, kept in memory; JSON layers (SBOMs, attestations) are blobs.
        if (firstNonSpace(bytes) === 0x7b /* { */ && s.keepsAsMetadata(digest, bytes)) {
          const actual = digestLike(bytes, digest);
          if (actual !== digest) {
            s.problems.set(
              digest,
              new MirrorError('DIGEST_MISMATCH', `blob ${digest} in ${this.path} does not match its digest: content hashes to ${actual}`, {
                digest,
                file: this.path,
              }),
            );
            return;
          }
          this.holdMetadata(e.name, bytes.byteLength);
          s.addSmall(digest, bytes);
          return;
        }
        body = { kind: 'bytes', data: bytes };
      }
      await sink.blob({ key: e.name, digest, size: e.size, wanted: again ? { known: false } : s.wantedByDigest(digest), body });
      return;
    }
    // A docker-save layer: converted (compressed) on the way; its digest is known once it has been pushed.
    let conv: ConvertedLayerStream | undefined;
    const raw = e.body();
    const body: BlobBody = {
      kind: 'stream',
      reopenable: raw.kind === 'stream' ? raw.reopenable : true,
      open: () => {
        const input = raw.kind === 'bytes' ? single(raw.data) : raw.open();
        conv = convertLayer(input, { compression: s.layerCompression, level: this.options.compressionLevel, gzipEncoder: this.options.gzipEncoder, name: e.name });
        return conv.stream;
      },
    };
    const previous = s.converted.get(e.name);
    const keys = this.cacheKeys(e.name);
    const hit: CachedLayer | undefined =
      previous?.diffId !== undefined ? { ...previous, diffId: previous.diffId } : again ? undefined : await this.cache.get(keys);
    let viaCache: CachedLayer | undefined;
    await sink.blob({
      key: e.name,
      wanted: again ? { known: false } : s.wantedByLayer(e.name),
      body,
      knownAs: hit ? { digest: hit.digest, size: hit.size } : undefined,
      resolved: (r) => {
        if (conv === undefined && hit && r.digest === hit.digest) {
          // Found in the destination by the recorded digest: trusted once the bytes hash to the recorded diff_id.
          viaCache = { ...hit };
          s.recordLayer(e.name, viaCache);
          return;
        }
        const layer = { digest: r.digest, size: r.size, mediaType: conv?.mediaType() ?? '', diffId: conv?.diffId() };
        if (previous && previous.digest !== layer.digest) {
          s.failedLayers.set(e.name, new MirrorError('INTERNAL', `layer ${e.name} compressed differently on a second read (${layer.digest}, was ${previous.digest})`));
          return;
        }
        s.recordLayer(e.name, layer);
        if (layer.diffId !== undefined && layer.mediaType) void this.cache.put([...keys, ...this.diffKeys(layer.diffId)], { ...layer, diffId: layer.diffId });
      },
      rejected: (err) => s.failedLayers.set(e.name, err),
    });
    if (viaCache !== undefined && conv === undefined) {
      const counter = new DigestCounter();
      const input = raw.kind === 'bytes' ? single(raw.data) : raw.open();
      for await (const chunk of input) counter.update(chunk);
      const diffId = counter.digest();
      if (diffId !== viaCache.diffId) {
        s.converted.delete(e.name);
        s.failedLayers.set(
          e.name,
          new MirrorError('BAD_INPUT', `layer ${e.name} in ${this.path} hashes to ${diffId}, not to ${viaCache.diffId} as recorded; push it again`, { file: this.path }),
        );
      }
    }
  }

  /** cacheKeys names a docker-save layer for the conversion record: by bundle file and entry, and by its diff_id. */
  private cacheKeys(name: string): string[] {
    const keys = [`entry:${this.fileId}:${name}:${this.params}`];
    const claimed = this.claimedDiffId(name);
    if (claimed) keys.push(...this.diffKeys(claimed));
    return keys;
  }

  private diffKeys(diffId: string): string[] {
    return [`diff:${diffId}:${this.params}`];
  }

  /** claimedDiffId is the layer's uncompressed digest as the archive states it (its name, or its config), if any. */
  private claimedDiffId(name: string): string | undefined {
    const m = /^([a-f0-9]{64})\.tar$/.exec(name);
    if (m) return `sha256:${m[1]}`;
    return this.state.diffIdFromConfig(name);
  }
}

function firstNonSpace(b: Uint8Array): number | undefined {
  for (const c of b) if (c !== 0x20 && c !== 0x0a && c !== 0x0d && c !== 0x09) return c;
  return undefined;
}

async function* single(data: Uint8Array): AsyncGenerator<Uint8Array> {
  yield data;
}
