/**
 * What a bundle reader learns as entries go by: the OCI `index.json`, `manifest.json` of `docker save`, and the
 * small JSON blobs (manifests and configs) kept in memory. It answers which images need a blob (as far as is known
 * yet) and, at the end, builds the catalog.
 */
import { normalizeEntryName } from '../../archive/tar.js';
import { MirrorError } from '../../errors/index.js';
import { sha256Digest } from '../../oci/digest.js';
import { isIndexMediaType, MediaType } from '../../oci/media-types.js';
import { type Descriptor, decodeJson, type ImageIndex, parseDescriptor, parseManifest, blobDescriptors } from '../../oci/manifest.js';
import { DEFAULT_TAG, formatReference, isFullReference, isValidTag, parseReference } from '../../reference/reference.js';
import type { Catalog, SourceImage, Wanted } from '../types.js';

/** ANNOTATION_IMAGE_NAME carries the full image reference in containerd's and Docker's OCI exports. */
export const ANNOTATION_IMAGE_NAME = 'io.containerd.image.name';
/** ANNOTATION_REF_NAME carries the tag (or, in some tools, the full reference). */
export const ANNOTATION_REF_NAME = 'org.opencontainers.image.ref.name';

/** LayerCompression is how uncompressed `docker save` layers are pushed. */
export type LayerCompression = 'gzip' | 'zstd' | 'none';

/** DockerSaveEntry is one element of `docker save`'s manifest.json. */
interface DockerSaveEntry {
  Config: string;
  RepoTags?: string[] | null;
  Layers: string[];
}

/** ConvertedLayer is a docker-save layer as pushed. */
export interface ConvertedLayer {
  digest: string;
  size: number;
  mediaType: string;
  /** sha256 of the uncompressed tar, when it was computed on the way. */
  diffId: string | undefined;
}

/** blobDigestOfPath gives the digest of an OCI `blobs/<alg>/<hex>` path, or undefined. */
export function blobDigestOfPath(name: string): string | undefined {
  const m = /^blobs\/([a-z0-9]+(?:[.+_-][a-z0-9]+)*)\/([a-zA-Z0-9=_-]+)$/.exec(name);
  return m ? `${m[1]}:${m[2]}` : undefined;
}

/** LayoutState accumulates a bundle's metadata while it is read. */
export class LayoutState {
  /** Small JSON blobs (manifests, configs) by digest. */
  readonly small = new Map<string, Uint8Array>();
  /** Blobs in the archive whose bytes did not match their names. */
  readonly problems = new Map<string, MirrorError>();
  /** Files of a docker-save archive kept in memory (configs), by entry name. */
  readonly files = new Map<string, Uint8Array>();
  /** Converted docker-save layers by entry name. */
  readonly converted = new Map<string, ConvertedLayer>();
  /** Layer entries whose conversion failed. */
  readonly failedLayers = new Map<string, MirrorError>();
  /** Link entries (older `docker save` links repeated layers to their first copy): name -> target. */
  readonly aliases = new Map<string, string>();
  /** All entry names seen. */
  readonly seen = new Set<string>();
  index: ImageIndex | undefined;
  dockerManifest: DockerSaveEntry[] | undefined;
  private wantedCache: Map<string, SourceImage[]> | undefined;
  private ociImagesCache: SourceImage[] | undefined;

  constructor(
    readonly file: string,
    readonly layerCompression: LayerCompression,
  ) {}

  /** format says what the bundle is, as far as known. */
  get format(): 'oci' | 'docker-save' | 'unknown' {
    if (this.index) return 'oci';
    if (this.dockerManifest) return 'docker-save';
    return 'unknown';
  }

  /** setIndex records `index.json`. */
  setIndex(bytes: Uint8Array): void {
    const v = decodeJson(bytes, `index.json in ${this.file}`, { file: this.file });
    const parsed = parseManifest(bytes, MediaType.OCI_INDEX, { file: this.file, digest: 'index.json' });
    if (parsed.kind !== 'index' || typeof v !== 'object' || v === null) {
      throw new MirrorError('BAD_INPUT', `index.json in ${this.file} is not an OCI image index`, { file: this.file });
    }
    this.index = parsed.index;
    this.invalidate();
  }

  /** setDockerManifest records docker-save's `manifest.json`. */
  setDockerManifest(bytes: Uint8Array): void {
    const v = decodeJson(bytes, `manifest.json in ${this.file}`, { file: this.file });
    const bad = (why: string): MirrorError => new MirrorError('BAD_INPUT', `manifest.json in ${this.file} ${why}`, { file: this.file });
    if (!Array.isArray(v)) throw bad('is not a list of images');
    const out: DockerSaveEntry[] = [];
    for (const [i, e] of v.entries()) {
      if (typeof e !== 'object' || e === null) throw bad(`has a bad entry [${i}]`);
      const { Config, RepoTags, Layers } = e as Record<string, unknown>;
      if (typeof Config !== 'string' || !Array.isArray(Layers) || !Layers.every((l) => typeof l === 'string')) throw bad(`entry [${i}] lacks Config or Layers`);
      const tags = Array.isArray(RepoTags) ? RepoTags.filter((t): t is string => typeof t === 'string') : [];
      // The names as the tar reader gives its entries (`./a//b/` -> `a/b`); a name that could leave the archive is
      // kept as it is and so names no entry (the tar reader refuses such entries): that image fails as incomplete.
      const entryName = (name: string): string => {
        const checked = normalizeEntryName(name);
        return checked.ok ? checked.name : name;
      };
      out.push({ Config: entryName(Config), RepoTags: tags, Layers: (Layers as string[]).map(entryName) });
    }
    this.dockerManifest = out;
    this.invalidate();
  }

  /** addSmall records a small JSON blob (already verified against its digest). */
  addSmall(digest: string, bytes: Uint8Array): void {
    this.small.set(digest, bytes);
    this.invalidate();
  }

  private invalidate(): void {
    this.wantedCache = undefined;
    this.ociImagesCache = undefined;
  }

  /** wantedByDigest says which images need an OCI blob, when the metadata read so far can tell. */
  wantedByDigest(digest: string): Wanted {
    const map = this.ociWantedMap();
    if (!map) return { known: false };
    return { known: true, images: map.get(digest) ?? [] };
  }

  /** wantedByLayer says which images need a docker-save layer entry, when manifest.json has been read. */
  wantedByLayer(name: string): Wanted {
    if (!this.dockerManifest) return { known: false };
    const images = this.dockerImages()
      .filter((img) => img.layers.some((l) => this.resolveAlias(l) === name))
      .map((img) => img.source);
    return { known: true, images };
  }

  /** isDockerLayer tells whether an entry is a layer named by manifest.json (or looks like one before it is read). */
  isDockerLayerName(name: string): boolean {
    if (this.dockerManifest) return this.dockerManifest.some((e) => e.Layers.includes(name));
    return /(^|\/)layer\.tar$/.test(name) || /^[^/]+\.tar$/.test(name);
  }

  /** isDockerConfigName tells whether an entry is a docker-save config file. */
  isDockerConfigName(name: string): boolean {
    if (this.dockerManifest) return this.dockerManifest.some((e) => e.Config === name);
    return /^[^/]+\.json$/.test(name) && name !== 'manifest.json' && name !== 'index.json';
  }

  /**
   * ociWantedMap maps each blob digest to the images that need it, once index.json and every manifest it
   * reaches have been read; undefined before that.
   */
  private ociWantedMap(): Map<string, SourceImage[]> | undefined {
    if (this.wantedCache) return this.wantedCache;
    if (!this.index) return undefined;
    const map = new Map<string, SourceImage[]>();
    for (const img of this.ociImages()) {
      const digests = this.graphBlobs(img.descriptor);
      if (digests === undefined) return undefined;
      for (const d of digests) {
        let list = map.get(d);
        if (!list) map.set(d, (list = []));
        list.push(img);
      }
    }
    this.wantedCache = map;
    return map;
  }

  /** graphBlobs lists the blobs under a root descriptor, or undefined when a manifest has not been read yet. */
  private graphBlobs(root: Descriptor): Set<string> | undefined {
    const out = new Set<string>();
    const stack: Descriptor[] = [root];
    let steps = 0;
    while (stack.length > 0) {
      const d = stack.pop()!;
      if (++steps > 10000) break;
      const bytes = this.small.get(d.digest);
      if (!bytes) {
        if (this.problems.has(d.digest)) continue;
        return undefined;
      }
      let parsed;
      try {
        parsed = parseManifest(bytes, d.mediaType);
      } catch {
        continue;
      }
      if (parsed.kind === 'index') stack.push(...parsed.index.manifests);
      else for (const b of blobDescriptors(parsed.manifest)) out.add(b.digest);
    }
    return out;
  }

  /** ociImages lists the images named by index.json. */
  ociImages(): SourceImage[] {
    if (this.ociImagesCache) return this.ociImagesCache;
    const out: SourceImage[] = [];
    for (const [i, raw] of (this.index?.manifests ?? []).entries()) {
      const desc = parseDescriptor(raw, `index.json manifests[${i}]`, { file: this.file });
      const image = this.ociImage(desc, i);
      // An unnamed index whose own entries carry the names (nested indexes): those entries are the images.
      const named = image.reference === undefined ? this.namedDescendants(desc, 0) : [];
      if (named.length > 0) out.push(...named.map((d, j) => this.ociImage(d, i, j)));
      else out.push(image);
    }
    this.ociImagesCache = out;
    return out;
  }

  /** namedDescendants finds the named entries under an unnamed index (when its bytes have been read). */
  private namedDescendants(desc: Descriptor, depth: number): Descriptor[] {
    if (depth > 8 || !isIndexMediaType(desc.mediaType)) return [];
    const bytes = this.small.get(desc.digest);
    if (!bytes) return [];
    let parsed;
    try {
      parsed = parseManifest(bytes, desc.mediaType);
    } catch {
      return [];
    }
    if (parsed.kind !== 'index') return [];
    const out: Descriptor[] = [];
    for (const child of parsed.index.manifests) {
      const a = child.annotations ?? {};
      const name = a[ANNOTATION_IMAGE_NAME] ?? a[ANNOTATION_REF_NAME];
      if (name !== undefined && (a[ANNOTATION_IMAGE_NAME] !== undefined || isFullReference(name))) out.push(child);
      else out.push(...this.namedDescendants(child, depth + 1));
    }
    return out;
  }

  private ociImage(desc: Descriptor, i: number, nested?: number): SourceImage {
    const a = desc.annotations ?? {};
    const full = a[ANNOTATION_IMAGE_NAME];
    const refName = a[ANNOTATION_REF_NAME];
    const candidate = full ?? (refName !== undefined && isFullReference(refName) ? refName : undefined);
    const where = `index.json manifests[${i}]${nested === undefined ? '' : ` entry ${nested}`} (${desc.digest})`;
    if (candidate === undefined) {
      const why = refName !== undefined ? `has only the name "${refName}", not a full image reference` : 'has no image name';
      return {
        reference: undefined,
        name: where,
        descriptor: desc,
        error: new MirrorError('BAD_INPUT', `${where} in ${this.file} ${why} (expected ${ANNOTATION_IMAGE_NAME})`, { file: this.file, digest: desc.digest }),
      };
    }
    try {
      let ref = parseReference(candidate, { defaultTag: false });
      if (ref.digest !== undefined && ref.digest !== desc.digest) {
        throw new MirrorError('BAD_INPUT', `${candidate} names digest ${ref.digest} but index.json gives ${desc.digest}`, { file: this.file, image: candidate });
      }
      if (ref.tag === undefined && ref.digest === undefined) {
        // A full name without a tag: the tag is in ref.name when that holds a plain tag.
        ref = { ...ref, tag: refName !== undefined && isValidTag(refName) ? refName : DEFAULT_TAG };
      }
      return { reference: ref, name: formatReference(ref), descriptor: desc };
    } catch (e) {
      return { reference: undefined, name: candidate, descriptor: desc, error: e instanceof MirrorError ? e : new MirrorError('BAD_INPUT', String(e)) };
    }
  }

  /** dockerImages lists docker-save images (one per manifest.json entry) with their source images (one per tag). */
  private dockerImages(): Array<{ entry: DockerSaveEntry; layers: string[]; source: SourceImage }> {
    const out: Array<{ entry: DockerSaveEntry; layers: string[]; source: SourceImage }> = [];
    for (const [i, entry] of (this.dockerManifest ?? []).entries()) {
      const tags = entry.RepoTags && entry.RepoTags.length > 0 ? entry.RepoTags : [undefined];
      for (const tag of tags) {
        const placeholder: Descriptor = { mediaType: MediaType.DOCKER_MANIFEST, digest: `sha256:${'0'.repeat(64)}`, size: 0 };
        let source: SourceImage;
        if (tag === undefined) {
          source = {
            reference: undefined,
            name: `manifest.json[${i}]`,
            descriptor: placeholder,
            error: new MirrorError('BAD_INPUT', `manifest.json[${i}] in ${this.file} has no RepoTags, so the image has no name`, { file: this.file }),
          };
        } else {
          try {
            source = { reference: parseReference(tag), name: tag, descriptor: placeholder };
          } catch (e) {
            source = { reference: undefined, name: tag, descriptor: placeholder, error: e instanceof MirrorError ? e : undefined };
          }
        }
        out.push({ entry, layers: entry.Layers, source });
      }
    }
    return out;
  }

  /** diffIdFromConfig gives a docker-save layer's diff_id from its image's config, when both have been read. */
  diffIdFromConfig(name: string): string | undefined {
    for (const entry of this.dockerManifest ?? []) {
      const i = entry.Layers.findIndex((l) => this.resolveAlias(l) === name);
      if (i < 0) continue;
      const config = this.files.get(entry.Config);
      if (!config) continue;
      try {
        const ids = (JSON.parse(Buffer.from(config).toString('utf8')) as { rootfs?: { diff_ids?: unknown[] } }).rootfs?.diff_ids;
        const id = ids?.[i];
        if (typeof id === 'string') return id;
      } catch {
        /* a bad config fails its image later */
      }
    }
    return undefined;
  }

  /** resolveAlias follows link entries to the entry that holds the bytes. */
  resolveAlias(name: string): string {
    let n = name;
    for (let i = 0; i < 8 && this.aliases.has(n); i++) n = this.aliases.get(n)!;
    return n;
  }

  /** recordLayer stores the result of pushing a converted layer. */
  recordLayer(name: string, layer: ConvertedLayer): void {
    this.converted.set(name, layer);
  }

  /** catalog builds the final catalog once the whole input has been read. */
  catalog(): Catalog {
    const synth = new Map<string, { bytes: Uint8Array; mediaType: string }>();
    let images: SourceImage[];
    if (this.index) {
      images = this.ociImages();
    } else if (this.dockerManifest) {
      images = this.dockerImages().map(({ entry, source }) => this.finishDockerImage(entry, source, synth));
    } else {
      throw new MirrorError('BAD_INPUT', `${this.file} is not an image bundle: it has neither index.json (OCI layout) nor manifest.json (docker save)`, {
        file: this.file,
      });
    }
    return {
      images,
      bytes: (d) => this.small.get(d) ?? synth.get(d)?.bytes,
      mediaTypeOf: (d) => synth.get(d)?.mediaType,
      problem: (d) => this.problems.get(d),
    };
  }

  private finishDockerImage(entry: DockerSaveEntry, source: SourceImage, synth: Map<string, { bytes: Uint8Array; mediaType: string }>): SourceImage {
    if (source.error) return source;
    const fail = (msg: string, digest?: string): SourceImage => ({
      ...source,
      error: new MirrorError('BAD_INPUT', msg, { file: this.file, image: source.name, digest }),
    });
    const configBytes = this.files.get(entry.Config);
    if (!configBytes) return fail(`config ${entry.Config} of ${source.name} is missing from ${this.file}`);
    const configDigest = sha256Digest(configBytes);
    const hexName = /^(?:blobs\/sha256\/)?([a-f0-9]{64})(?:\.json)?$/.exec(entry.Config);
    if (hexName && `sha256:${hexName[1]}` !== configDigest) {
      return fail(`config ${entry.Config} of ${source.name} does not match its name: content hashes to ${configDigest}`, configDigest);
    }
    let diffIds: unknown;
    try {
      diffIds = (decodeJson(configBytes, `config ${entry.Config}`) as { rootfs?: { diff_ids?: unknown } }).rootfs?.diff_ids;
    } catch (e) {
      return fail(`config ${entry.Config} of ${source.name} is not valid JSON`);
    }
    const layers: Descriptor[] = [];
    let anyCompressed = false;
    let allOci = true;
    for (const [i, listed] of entry.Layers.entries()) {
      const name = this.resolveAlias(listed);
      const failed = this.failedLayers.get(name);
      if (failed) return { ...source, error: failed };
      const l = this.converted.get(name);
      if (!l) {
        if (!this.seen.has(name)) return fail(`layer ${name} of ${source.name} is missing from ${this.file}`);
        return fail(`layer ${name} of ${source.name} was not pushed`);
      }
      const want = Array.isArray(diffIds) ? diffIds[i] : undefined;
      if (l.diffId !== undefined && typeof want === 'string' && want !== l.diffId) {
        return fail(`layer ${name} of ${source.name} does not match the config's diff_id ${want}: content hashes to ${l.diffId}`, want);
      }
      if (l.mediaType !== MediaType.OCI_LAYER) anyCompressed = true;
      if (l.mediaType === MediaType.DOCKER_LAYER_GZIP) allOci = false;
      layers.push({ mediaType: l.mediaType, digest: l.digest, size: l.size });
    }
    // gzip layers go in a Docker v2 schema 2 manifest (what docker and skopeo write); zstd or none need OCI types.
    const docker = !allOci || (layers.length === 0 && this.layerCompression === 'gzip');
    const manifest = {
      schemaVersion: 2,
      mediaType: docker ? MediaType.DOCKER_MANIFEST : MediaType.OCI_MANIFEST,
      config: { mediaType: docker ? MediaType.DOCKER_CONFIG : MediaType.OCI_CONFIG, digest: configDigest, size: configBytes.byteLength },
      layers,
    };
    const bytes = Buffer.from(JSON.stringify(manifest));
    const digest = sha256Digest(bytes);
    synth.set(digest, { bytes, mediaType: manifest.mediaType });
    this.small.set(configDigest, configBytes);
    return {
      ...source,
      descriptor: { mediaType: manifest.mediaType, digest, size: bytes.byteLength },
      converted: anyCompressed
        ? `docker-save layers pushed ${this.layerCompression}-compressed: layer and manifest digests differ from the archive's; the config digest ${configDigest} is kept`
        : `docker-save image pushed as an OCI manifest with uncompressed layers; the config digest ${configDigest} is kept`,
    };
  }
}
