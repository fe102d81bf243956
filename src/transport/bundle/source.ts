/**
 * The bundle source: an OCI image layout or a `docker save` archive, as a `.tar` (compressed with xz, gzip or zstd,
 * sniffed from magic bytes) or as a directory. A file is read once, front to back, as a stream, and never extracted:
 * small JSON entries (index.json, manifest.json, manifests, configs) are kept in memory and every other blob is
 * handed to the copy engine while it is read.
 */
import { MirrorError } from '../../errors/index.js';
import { clipInput } from '../../errors/quote.js';
import { DIGEST_ALGORITHMS, DigestCounter, digestAlgorithm, digestLike } from '../../oci/digest.js';
import { type CachedLayer, defaultLayerCachePath, LayerCache } from './layer-cache.js';
import { openBundleEntries, type BundleEntry, type BundleEntriesInput } from './entries.js';
import { compressorId, convertLayer, type ConvertedLayerStream, type GzipEncoder } from './convert.js';
import { HeldBlobs } from './held.js';
import { blobDigestOfPath, blobPathOf, type LayerCompression, LayoutState } from './layout-state.js';
import type { BlobBody, Catalog, ScanOptions, StreamSink, StreamSource, Wanted } from '../types.js';
import { parseJson } from '../../oci/json.js';

/** DEFAULT_SMALL_ENTRY_MAX: blob entries up to this size that hold JSON are kept in memory as metadata. */
export const DEFAULT_SMALL_ENTRY_MAX = 4 * 1024 * 1024;
/** DEFAULT_METADATA_BUDGET bounds the memory held by metadata entries. */
export const DEFAULT_METADATA_BUDGET = 256 * 1024 * 1024;
/**
 * HOLD_BLOB_MAX: a blob up to this size met before the metadata that says which images need it is held in memory
 * until the metadata does, instead of being sent to the staging repository at once. Then it goes straight to the
 * repositories that need it (no upload into staging, no mount), and a blob no image needs is dropped unsent: a
 * metadata-last bundle of 100,000 blobs nobody references costs no request. Larger blobs are staged as before.
 */
export const HOLD_BLOB_MAX = HeldBlobs.MAX_BLOB;
/** HOLD_BUDGET bounds the memory of held blobs (their bytes and records); past it, the oldest are staged. */
export const HOLD_BUDGET = 32 * 1024 * 1024;

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
  /** Small blobs met before the metadata, by digest, oldest first (see {@link HOLD_BLOB_MAX}). */
  private readonly held = new HeldBlobs();
  private readonly cache: LayerCache;
  private compressor: string | undefined;

  constructor(
    private readonly path: string,
    private readonly input: BundleEntriesInput,
    private readonly options: BundleSourceOptions,
  ) {
    this.reopenable = input.reopenable;
    this.smallMax = options.smallEntryMax ?? DEFAULT_SMALL_ENTRY_MAX;
    this.state = new LayoutState(path, options.layerCompression ?? 'gzip', {
      kind: input.reopenable ? 'directory' : 'archive',
      manifestFormat: options.manifestFormat,
      manifestLimit: this.smallMax,
    });
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
    if (only === undefined) {
      // The whole bundle has been read: what the metadata says now is final.
      this.state.finish();
      await this.releaseHeld(sink, 'final');
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
      s.addAlias(e.name, e.linkTarget);
      return;
    }
    switch (e.name) {
      case 'oci-layout': {
        const bytes = await e.bytes(64 * 1024);
        try {
          parseJson(bytes);
        } catch {
          throw new MirrorError('BAD_INPUT', `oci-layout in ${this.path} is not valid JSON`, { file: this.path });
        }
        return;
      }
      case 'index.json':
        s.setIndex(await this.metadata(e));
        await this.releaseHeld(sink, 'known');
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
      s.files.set(e.name, own(await this.metadata(e)));
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
      throw new MirrorError('BAD_INPUT', `${this.path} holds more than ${DEFAULT_METADATA_BUDGET >> 20} MiB of metadata (at ${clipInput(name)})`, { file: this.path });
    }
    this.metadataBytes += size;
  }

  /**
   * offer hands an OCI blob to the sink, unless the metadata (complete) says no image needs it, or that every
   * manifest naming it declares another size (a bad blob, like one whose bytes do not match its digest).
   */
  private async offer(sink: StreamSink, digest: string, size: number, wanted: Wanted, body: BlobBody): Promise<void> {
    const s = this.state;
    if (wanted.known) {
      if (wanted.images.length === 0) return;
      const conflict = s.sizeConflict(digest, size);
      if (conflict !== undefined) {
        s.addProblem(digest, conflict);
        return;
      }
    }
    s.noteBlob(digest, size);
    await sink.blob({ key: blobPathOf(digest), digest, size, wanted, body });
  }

  /** hold keeps a small blob met before the metadata; past {@link HOLD_BUDGET}, the oldest held go to the sink unplaced. */
  private async hold(sink: StreamSink, digest: string, data: Uint8Array): Promise<void> {
    this.held.add(digest, data);
    while (this.held.bytes > HOLD_BUDGET) {
      const oldest = this.held.takeOldest()!;
      await this.offer(sink, oldest.digest, oldest.data.byteLength, { known: false }, { kind: 'bytes', data: oldest.data });
    }
  }

  /**
   * releaseHeld hands the held blobs on once the metadata says where they go: when it is complete (`known`), or at the
   * end of the bundle (`final`, with what never came left out). Blobs no image needs are dropped.
   */
  private async releaseHeld(sink: StreamSink, when: 'known' | 'final'): Promise<void> {
    if (this.held.size === 0) return;
    if (when === 'known' && !this.state.metadataComplete()) return;
    for (const { digest, data } of this.held.takeAll()) {
      const wanted = when === 'final' ? this.state.finalWanted(digest) : this.state.wantedByDigest(digest);
      await this.offer(sink, digest, data.byteLength, wanted, { kind: 'bytes', data });
    }
  }

  /** blobEntry handles an OCI blob or a docker-save layer; `again` marks a re-read pass. */
  private async blobEntry(e: BundleEntry, sink: StreamSink, again: boolean): Promise<void> {
    const s = this.state;
    const digest = blobDigestOfPath(e.name);
    if (digest !== undefined) {
      const algorithm = digestAlgorithm(digest);
      if (!DIGEST_ALGORITHMS.has(algorithm)) {
        // Content this tool cannot verify is never sent; the images that need it fail with the reason.
        const why = `blob ${clipInput(digest)} in ${this.path} uses the digest algorithm "${clipInput(algorithm, 32)}", which cannot be verified (sha256, sha384 and sha512 can)`;
        s.addProblem(digest, new MirrorError('UNSUPPORTED', why, { digest: clipInput(digest), file: this.path }));
        await this.releaseHeld(sink, 'known');
        return;
      }
      if (!again && e.size > this.smallMax && s.roleOf(digest) === 'manifest') {
        // A manifest larger than any kept in memory: named as such, never sent as a blob.
        s.addProblem(digest, s.tooLarge(digest, e.size));
        await this.releaseHeld(sink, 'known');
        return;
      }
      let body: BlobBody = e.body();
      if (!again && e.size <= this.smallMax) {
        const bytes = await e.bytes(this.smallMax);
        // Manifests and image configs are metadata, kept in memory; JSON layers (SBOMs, attestations) are blobs.
        if (firstNonSpace(bytes) === 0x7b /* { */ && s.keepsAsMetadata(digest, bytes)) {
          const actual = digestLike(bytes, digest);
          if (actual !== digest) {
            s.addProblem(
              digest,
              new MirrorError('DIGEST_MISMATCH', `blob ${digest} in ${this.path} does not match its digest: content hashes to ${actual}`, {
                digest,
                file: this.path,
              }),
            );
          } else {
            this.holdMetadata(e.name, bytes.byteLength);
            s.addSmall(digest, own(bytes));
          }
          await this.releaseHeld(sink, 'known');
          return;
        }
        body = { kind: 'bytes', data: bytes };
      }
      if (again) {
        await sink.blob({ key: e.name, digest, size: e.size, wanted: { known: false }, body });
        return;
      }
      const wanted = s.wantedByDigest(digest);
      if (!wanted.known && body.kind === 'bytes' && e.size <= HOLD_BLOB_MAX) {
        await this.hold(sink, digest, body.data);
        return;
      }
      await this.offer(sink, digest, e.size, wanted, body);
      return;
    }
    // A docker-save layer: converted (compressed) on the way; its digest is known once it has been pushed.
    s.layerEntries.add(e.name);
    let conv: ConvertedLayerStream | undefined;
    const raw = e.body();
    const body: BlobBody = {
      kind: 'stream',
      reopenable: raw.kind === 'stream' ? raw.reopenable : true,
      open: () => {
        // A tar reader gives exactly the declared bytes; a file of a directory may not (it changed since it was listed).
        const input = raw.kind === 'bytes' ? single(raw.data) : raw.reopenable ? sized(raw.open(), e.size, e.name, this.path) : raw.open();
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
          s.failedLayers.set(e.name, new MirrorError('INTERNAL', `layer ${clipInput(e.name)} compressed differently on a second read (${layer.digest}, was ${previous.digest})`));
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
          new MirrorError('BAD_INPUT', `layer ${clipInput(e.name)} in ${this.path} hashes to ${diffId}, not to ${viaCache.diffId} as recorded; push it again`, { file: this.path }),
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

/**
 * own gives bytes to keep: a compact copy when they are a small view on a larger buffer (a tar body is a slice of the
 * decoder's 256 KiB chunk, which a kept slice would keep whole), else the bytes themselves.
 */
function own(bytes: Uint8Array): Uint8Array {
  return bytes.byteLength * 2 < bytes.buffer.byteLength ? Buffer.from(bytes) : bytes;
}

/** sized passes a body through and fails when it does not hold exactly `size` bytes. */
async function* sized(body: AsyncIterable<Uint8Array>, size: number, name: string, file: string): AsyncGenerator<Uint8Array> {
  let n = 0;
  const wrong = (): MirrorError =>
    new MirrorError('BAD_INPUT', `layer ${clipInput(name)} in ${file} holds ${n} bytes or more, not the ${size} it was listed with (it changed while it was read)`, { file });
  for await (const chunk of body) {
    n += chunk.byteLength;
    if (n > size) throw wrong();
    yield chunk;
  }
  if (n !== size) throw new MirrorError('BAD_INPUT', `layer ${clipInput(name)} in ${file} holds ${n} bytes, not the ${size} it was listed with (it changed while it was read)`, { file });
}

function firstNonSpace(b: Uint8Array): number | undefined {
  for (const c of b) if (c !== 0x20 && c !== 0x0a && c !== 0x0d && c !== 0x09) return c;
  return undefined;
}

async function* single(data: Uint8Array): AsyncGenerator<Uint8Array> {
  yield data;
}
