/**
 * The bundle source: an OCI image layout or a `docker save` archive, as a `.tar` (compressed with xz, gzip or zstd,
 * sniffed from magic bytes) or as a directory. A file is read once, front to back, as a stream, and never extracted:
 * small JSON entries (index.json, manifest.json, manifests, configs) are kept in memory and every other blob is
 * handed to the copy engine while it is read.
 */
import { MirrorError } from '../../errors/index.js';
import { sha256Digest } from '../../oci/digest.js';
import { openBundleEntries, type BundleEntry, type BundleEntriesInput } from './entries.js';
import { convertLayer, type ConvertedLayerStream } from './convert.js';
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
  /** xz decoder choice: `auto` (the xz program when installed, else lzma-native), `xz`, `lzma-native`. */
  decoder?: 'auto' | 'xz' | 'lzma-native' | undefined;
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

  constructor(
    private readonly path: string,
    private readonly input: BundleEntriesInput,
    private readonly options: BundleSourceOptions,
  ) {
    this.reopenable = input.reopenable;
    this.state = new LayoutState(path, options.layerCompression ?? 'gzip');
    this.smallMax = options.smallEntryMax ?? DEFAULT_SMALL_ENTRY_MAX;
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
      this.state.seen.add(entry.name);
      await this.entry(entry, sink);
    }
    await sink.flush?.();
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
    if (this.metadataBytes + e.size > DEFAULT_METADATA_BUDGET) {
      throw new MirrorError('BAD_INPUT', `${this.path} holds more than ${DEFAULT_METADATA_BUDGET >> 20} MiB of metadata (at ${e.name})`, { file: this.path });
    }
    const bytes = await e.bytes(this.smallMax * 4);
    this.metadataBytes += bytes.byteLength;
    return bytes;
  }

  /** blobEntry handles an OCI blob or a docker-save layer; `again` marks a re-read pass. */
  private async blobEntry(e: BundleEntry, sink: StreamSink, again: boolean): Promise<void> {
    const s = this.state;
    const digest = blobDigestOfPath(e.name);
    if (digest !== undefined) {
      let body: BlobBody = e.body();
      if (!again && e.size <= this.smallMax) {
        const bytes = await e.bytes(this.smallMax);
        if (firstNonSpace(bytes) === 0x7b /* { */) {
          const actual = sha256Digest(bytes);
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
          this.metadataBytes += bytes.byteLength;
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
        conv = convertLayer(input, { compression: s.layerCompression, level: this.options.compressionLevel, name: e.name });
        return conv.stream;
      },
    };
    const previous = s.converted.get(e.name);
    await sink.blob({
      key: e.name,
      wanted: again ? { known: false } : s.wantedByLayer(e.name),
      body,
      resolved: (r) => {
        const layer = { digest: r.digest, size: r.size, mediaType: conv?.mediaType() ?? '', diffId: conv?.diffId() };
        if (previous && previous.digest !== layer.digest) {
          s.failedLayers.set(e.name, new MirrorError('INTERNAL', `layer ${e.name} compressed differently on a second read (${layer.digest}, was ${previous.digest})`));
          return;
        }
        s.recordLayer(e.name, layer);
      },
      rejected: (err) => s.failedLayers.set(e.name, err),
    });
  }
}

function firstNonSpace(b: Uint8Array): number | undefined {
  for (const c of b) if (c !== 0x20 && c !== 0x0a && c !== 0x0d && c !== 0x09) return c;
  return undefined;
}

async function* single(data: Uint8Array): AsyncGenerator<Uint8Array> {
  yield data;
}
