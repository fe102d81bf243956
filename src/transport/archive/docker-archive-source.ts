/**
 * `docker-archive:FILE[:REF|@N]` as a source: a `docker save` tar (legacy `<id>/layer.tar` layout or Docker 25's
 * `blobs/sha256/...`), read at random (./tar-index.ts), or from a decompressed private copy when the file is
 * compressed (./open-archive.ts). REF picks the image whose `RepoTags` entry names the same reference (both
 * normalized as docker normalizes them: `busybox` is `docker.io/library/busybox:latest`), `@N` the N-th image of
 * `manifest.json`; without either the archive must hold one image, else a usage error lists what there is.
 *
 * The image is offered as a Docker schema 2 manifest built from `manifest.json`: the config kept byte for byte (its
 * digest, the image ID, unchanged), layers as stored. For an OCI layout (`ociManifest`) the same manifest takes OCI
 * media types, as skopeo writes it: skopeo and containerd find only OCI manifests in a layout by name. Layers are
 * stored uncompressed, so they are `application/vnd.docker.image.rootfs.diff.tar` with their diff_id as digest, which
 * a destination checks as it writes them; a layer that is stored compressed is hashed once to learn its digest.
 *
 * For a registry (`compressLayers`), uncompressed layers are gzip-compressed the way `mirror push` compresses
 * `docker save` layers (src/transport/bundle/convert.ts: igzip, else parallel zlib; deterministic output): the manifest
 * needs their digests before any blob is written, so each layer is compressed once while planning (its diff_id checked
 * against the config on the way; the output only hashed and counted) and again, identically, when it is sent; the
 * destination checks the bytes against the digest, so output that came out differently could not be committed.
 * The outcome says the digest is one of mirror's making.
 */
import { DigestMismatchError, MirrorError } from '../../errors/index.js';
import { type EventSink, noEvents } from '../../events/index.js';
import { DigestCounter, sha256Digest } from '../../oci/digest.js';
import type { Descriptor } from '../../oci/manifest.js';
import { MediaType } from '../../oci/media-types.js';
import { sniffCompression } from '../../archive/index.js';
import { formatReference, isValidDigest, tryParseReference } from '../../reference/reference.js';
import { convertLayer } from '../bundle/convert.js';
import { skipBytes } from '../chunks.js';
import type { ImageName, ImageSource, ManifestBytes, SourceOpOptions } from '../types.js';
import { openArchive, type OpenedArchive } from './open-archive.js';
import type { IndexedEntry } from './tar-index.js';
import { parseJson } from '../../oci/json.js';

/** DOCKER_LAYER_TAR is the media type of an uncompressed Docker layer. */
export const DOCKER_LAYER_TAR = 'application/vnd.docker.image.rootfs.diff.tar';
/** MAX_DOCKER_MANIFEST_JSON_BYTES bounds `manifest.json`. */
const MAX_MANIFEST_JSON_BYTES = 16 * 1024 * 1024;
/** MAX_CONFIG_BYTES bounds an image config. */
const MAX_CONFIG_BYTES = 16 * 1024 * 1024;
/** OCI_LAYER_TYPES gives the OCI media type of each Docker layer type (the same bytes), for a manifest with OCI types. */
const OCI_LAYER_TYPES: Readonly<Record<string, string>> = {
  [DOCKER_LAYER_TAR]: MediaType.OCI_LAYER,
  [MediaType.DOCKER_LAYER_GZIP]: MediaType.OCI_LAYER_GZIP,
};
/** MAX_LISTED bounds the image names listed in a message. */
const MAX_LISTED = 10;

/** DockerArchiveSourceOptions tune {@link openDockerArchiveSource}. */
export interface DockerArchiveSourceOptions {
  /** gzip uncompressed layers, as a registry wants them. Default: false (layers offered as stored). */
  compressLayers?: boolean | undefined;
  /** Build the manifest with OCI media types, as an OCI layout wants. Default: false (Docker schema 2). */
  ociManifest?: boolean | undefined;
  events?: EventSink | undefined;
  signal?: AbortSignal | undefined;
}

/** SaveEntry is one image of `manifest.json`. */
interface SaveEntry {
  config: string;
  repoTags: string[];
  layers: string[];
}

/** BlobPlace is where a blob's bytes come from. */
interface BlobPlace {
  entry: IndexedEntry;
  /** `gzip`: compress the stored layer on the way. */
  mode: 'raw' | 'gzip';
  /** The layer's name in the archive, for messages. */
  name: string;
}

/** openDockerArchiveSource opens `file` as a `docker save` archive: indexed (decompressed first when compressed), manifest.json read. */
export async function openDockerArchiveSource(file: string, options: DockerArchiveSourceOptions = {}): Promise<DockerArchiveSource> {
  const archive = await openArchive(file, { transport: 'docker-archive', events: options.events, signal: options.signal });
  try {
    const source = new DockerArchiveSource(file, archive, options);
    await source.load();
    return source;
  } catch (e) {
    await archive.close();
    throw e;
  }
}

/** normalizedName gives a reference as docker normalizes it, or undefined for one that does not parse or has a digest. */
function normalizedName(text: string): string | undefined {
  const r = tryParseReference(text);
  return r === undefined || r.digest !== undefined ? undefined : formatReference(r);
}

/** DockerArchiveSource reads a `docker save` tar. */
export class DockerArchiveSource implements ImageSource {
  readonly kind = 'random' as const;
  private images: SaveEntry[] = [];
  private readonly manifests = new Map<string, ManifestBytes>();
  private readonly blobs = new Map<string, BlobPlace>();
  private readonly notes = new Map<string, string>();
  private readonly built = new Map<number, Promise<Descriptor>>();
  private readonly events: EventSink;

  constructor(
    private readonly file: string,
    private readonly archive: OpenedArchive,
    private readonly options: DockerArchiveSourceOptions,
  ) {
    this.events = options.events ?? noEvents;
  }

  get description(): string {
    return `docker-archive ${this.file}${this.archive.compression === 'none' ? '' : ` (${this.archive.compression}, decompressed into a temporary file)`}`;
  }

  /** The temporary file holding the decompressed archive, if any (for tests). */
  get tempFile(): string | undefined {
    return this.archive.tempFile;
  }

  private bad(why: string): MirrorError {
    return new MirrorError('BAD_INPUT', `${this.file} is not a readable docker archive: ${why}`, { file: this.file });
  }

  /** load reads and checks `manifest.json`. */
  async load(): Promise<void> {
    const tar = this.archive.tar;
    const entry = tar.find('manifest.json');
    if (entry === undefined) {
      const oci = tar.find('index.json') !== undefined;
      throw new MirrorError('BAD_INPUT', `${this.file} is not a docker archive: it has no manifest.json`, { file: this.file, hint: oci ? 'it looks like an OCI archive: use oci-archive:' : undefined });
    }
    let parsed: unknown;
    try {
      parsed = parseJson((await tar.read(entry, MAX_MANIFEST_JSON_BYTES, 'manifest.json')).toString('utf8'));
    } catch (e) {
      if (e instanceof MirrorError) throw e;
      throw this.bad(`manifest.json is not JSON (${(e as Error).message.slice(0, 80)})`);
    }
    if (!Array.isArray(parsed)) throw this.bad('manifest.json is not a list');
    this.images = parsed.map((v: unknown, i): SaveEntry => {
      const o = (typeof v === 'object' && v !== null ? v : {}) as { Config?: unknown; RepoTags?: unknown; Layers?: unknown };
      if (typeof o.Config !== 'string') throw this.bad(`manifest.json entry ${i} has no Config`);
      if (!Array.isArray(o.Layers) || !o.Layers.every((l): l is string => typeof l === 'string')) throw this.bad(`manifest.json entry ${i} has no list of Layers`);
      const tags = Array.isArray(o.RepoTags) ? o.RepoTags.filter((t): t is string => typeof t === 'string') : [];
      return { config: o.Config, repoTags: tags, layers: o.Layers };
    });
  }

  /** listing names the images for a message: their RepoTags, or `@N`. */
  private listing(): string {
    const names = this.images.map((im, i) => (im.repoTags.length > 0 ? im.repoTags.join(', ') : `@${i} (untagged)`));
    return names.slice(0, MAX_LISTED).join('; ') + (names.length > MAX_LISTED ? `; ... (${names.length} in all)` : '');
  }

  /**
   * resolve selects an image: `name.tag` carries REF as written (`busybox:1.36`, `@2`), `name.digest` a manifest
   * digest this source built. The manifest is built (its layers compressed, for a registry) on the first call.
   */
  async resolve(name: ImageName, options: SourceOpOptions): Promise<Descriptor> {
    const where = `docker-archive:${this.file}`;
    let position: number;
    if (name.digest !== undefined) {
      const m = this.manifests.get(name.digest);
      if (m === undefined) throw new MirrorError('NOT_FOUND', `${where} has no manifest ${name.digest} (a docker archive names images by tag or @N)`, { file: this.file });
      return { mediaType: m.mediaType, digest: m.digest, size: m.bytes.byteLength };
    }
    const ref = name.tag;
    if (ref === undefined) {
      if (this.images.length === 0) throw new MirrorError('BAD_INPUT', `${where} holds no image (its manifest.json lists none)`, { file: this.file });
      if (this.images.length > 1) throw new MirrorError('USAGE', `${where} holds ${this.images.length} images; name one as ${where}:REF or ${where}:@N (${this.listing()})`);
      position = 0;
    } else if (/^@\d+$/.test(ref)) {
      position = Number(ref.slice(1));
      if (position >= this.images.length) throw new MirrorError('NOT_FOUND', `${where} has no image @${position}: it holds ${this.images.length}`, { file: this.file });
    } else {
      const wanted = normalizedName(ref);
      if (wanted === undefined) throw new MirrorError('USAGE', `${where}:${ref.slice(0, 80)}: REF must be an image name with a tag (or @N)`);
      const matches = this.images.flatMap((im, i) => (im.repoTags.some((t) => normalizedName(t) === wanted) ? [i] : []));
      if (matches.length === 0) throw new MirrorError('NOT_FOUND', `${where} has no image named "${ref.slice(0, 80)}" (it has ${this.listing() || 'none'})`, { file: this.file });
      if (matches.length > 1) throw new MirrorError('BAD_INPUT', `${where}:${ref.slice(0, 80)} names ${matches.length} images in manifest.json`, { file: this.file });
      position = matches[0]!;
    }
    let built = this.built.get(position);
    if (built === undefined) {
      built = this.build(position, options);
      this.built.set(position, built);
      built.catch(() => this.built.delete(position));
    }
    return built;
  }

  /** build makes the Docker schema 2 manifest of image `i` of manifest.json. */
  private async build(i: number, options: SourceOpOptions): Promise<Descriptor> {
    const tar = this.archive.tar;
    const image = this.images[i]!;
    const what = `image ${image.repoTags[0] ?? `@${i}`} of ${this.file}`;
    const configEntry = tar.find(image.config);
    if (configEntry === undefined) throw this.bad(`${what}: its config ${image.config.slice(0, 120)} is missing`);
    const configBytes = await tar.read(configEntry, MAX_CONFIG_BYTES, 'config');
    const configDigest = sha256Digest(configBytes);
    const named = /(?:^|\/)([a-f0-9]{64})(?:\.json)?$/.exec(image.config);
    if (named && `sha256:${named[1]}` !== configDigest) {
      throw new DigestMismatchError(`sha256:${named[1]}`, configDigest, { file: this.file });
    }
    let diffIds: string[];
    try {
      const cfg = parseJson(configBytes) as { rootfs?: { diff_ids?: unknown } };
      const ids = cfg.rootfs?.diff_ids;
      diffIds = Array.isArray(ids) ? ids.filter((d): d is string => typeof d === 'string') : [];
    } catch {
      throw this.bad(`${what}: its config ${image.config.slice(0, 120)} is not JSON`);
    }
    if (diffIds.length !== image.layers.length) {
      throw this.bad(`${what}: manifest.json lists ${image.layers.length} layers, its config ${diffIds.length} diff_ids`);
    }
    this.blobs.set(configDigest, { entry: configEntry, mode: 'raw', name: image.config });
    const layers: Descriptor[] = [];
    let compressed = 0;
    for (let n = 0; n < image.layers.length; n++) {
      const name = image.layers[n]!;
      const diffId = diffIds[n]!;
      if (!isValidDigest(diffId)) throw this.bad(`${what}: diff_id ${n} "${diffId.slice(0, 80)}" is not a digest`);
      const entry = tar.find(name);
      if (entry === undefined) throw this.bad(`${what}: layer ${name.slice(0, 120)} is missing`);
      const came = sniffCompression(await tar.head(entry, 512));
      if (came === 'gzip' || came === 'zstd') {
        // Stored compressed: its digest is that of the bytes as they are.
        const counter = new DigestCounter();
        for await (const c of tar.stream(entry, { signal: options.signal })) counter.update(c);
        const digest = counter.digest();
        layers.push({ mediaType: came === 'gzip' ? MediaType.DOCKER_LAYER_GZIP : MediaType.OCI_LAYER_ZSTD, digest, size: entry.size });
        this.blobs.set(digest, { entry, mode: 'raw', name });
      } else if (this.options.compressLayers) {
        this.events({ type: 'phase', phase: 'compress', detail: `${name} of ${this.file}: gzip for the registry (${entry.size} bytes)` });
        const conv = convertLayer(tar.stream(entry, { signal: options.signal }), { compression: 'gzip', name: `${name} of ${this.file}` });
        const counter = new DigestCounter();
        for await (const c of conv.stream) counter.update(c);
        const actualDiff = conv.diffId();
        if (actualDiff !== undefined && actualDiff !== diffId) throw new DigestMismatchError(diffId, actualDiff, { file: this.file });
        const digest = counter.digest();
        layers.push({ mediaType: conv.mediaType(), digest, size: counter.bytes });
        this.blobs.set(digest, { entry, mode: 'gzip', name });
        compressed++;
      } else {
        layers.push({ mediaType: DOCKER_LAYER_TAR, digest: diffId, size: entry.size });
        this.blobs.set(diffId, { entry, mode: 'raw', name });
      }
    }
    const oci = this.options.ociManifest === true;
    const manifestType = oci ? MediaType.OCI_MANIFEST : MediaType.DOCKER_MANIFEST;
    const manifest = {
      schemaVersion: 2,
      mediaType: manifestType,
      config: { mediaType: oci ? MediaType.OCI_CONFIG : MediaType.DOCKER_CONFIG, size: configBytes.byteLength, digest: configDigest },
      layers: oci ? layers.map((l) => ({ ...l, mediaType: OCI_LAYER_TYPES[l.mediaType] ?? l.mediaType })) : layers,
    };
    const bytes = Buffer.from(JSON.stringify(manifest, null, 3));
    const digest = sha256Digest(bytes);
    this.manifests.set(digest, { digest, mediaType: manifestType, bytes });
    this.notes.set(
      digest,
      compressed > 0
        ? `docker-archive layers compressed with gzip for the registry (${compressed} of ${layers.length}): manifest ${digest} is mirror's, the config ${configDigest} is kept`
        : `a docker archive holds no manifest: manifest ${digest} was built from manifest.json${oci ? ' with OCI media types (as an OCI layout holds)' : ''}, the config ${configDigest} is kept`,
    );
    return { mediaType: manifestType, digest, size: bytes.byteLength };
  }

  async manifest(_repository: string, digest: string): Promise<ManifestBytes> {
    const m = this.manifests.get(digest);
    if (m === undefined) throw new MirrorError('NOT_FOUND', `docker-archive:${this.file} has no manifest ${digest}`, { file: this.file, digest });
    return m;
  }

  async openBlob(_repository: string, desc: Descriptor, options: SourceOpOptions & { offset?: number | undefined }): Promise<AsyncIterable<Uint8Array>> {
    const place = this.blobs.get(desc.digest);
    if (place === undefined) throw new MirrorError('BAD_INPUT', `blob ${desc.digest} is not in ${this.file}`, { file: this.file, digest: desc.digest });
    if (place.mode === 'raw') return this.archive.tar.stream(place.entry, { start: options.offset, signal: options.signal });
    const conv = convertLayer(this.archive.tar.stream(place.entry, { signal: options.signal }), { compression: 'gzip', name: `${place.name} of ${this.file}` });
    // A compressed layer reopened at an offset is compressed again from the start.
    return skipBytes(conv.stream, options.offset ?? 0);
  }

  /** converted says what the source made of an image it built (the outcome's note). */
  converted(digest: string): string | undefined {
    return this.notes.get(digest);
  }

  /** tags lists the archive's RepoTags. */
  async *tags(): AsyncGenerator<string, void, undefined> {
    for (const im of this.images) yield* im.repoTags;
  }

  async close(): Promise<void> {
    await this.archive.close();
  }
}
