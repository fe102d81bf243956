/**
 * What a bundle reader learns as entries go by: the OCI `index.json`, `manifest.json` of `docker save`, and the
 * small JSON blobs (manifests and configs) kept in memory. It answers which images need a blob (as far as is known
 * yet) and, at the end, builds the catalog.
 *
 * Everything it learns is kept incrementally, so that a bundle of N images costs O(N) whatever its order: each
 * manifest is parsed once; the manifests index.json reaches are tracked as they are read (one visited set, no
 * recursion), so "is the metadata complete?" is a counter, not a walk; the images and the blobs they need are worked
 * out once, when the metadata is complete; every walk over manifests keeps a visited set, a depth limit and a bound
 * on the manifests it visits, so an index of indexes that share their children (billions of paths in a few KB) costs
 * what its distinct manifests cost.
 */
import { join } from 'node:path';
import { normalizeEntryName } from '../../archive/tar.js';
import { MirrorError } from '../../errors/index.js';
import { clipInput } from '../../errors/quote.js';
import { sha256Digest } from '../../oci/digest.js';
import { isIndexMediaType, MediaType } from '../../oci/media-types.js';
import { type Descriptor, decodeJson, type ImageIndex, type ParsedManifest, type Platform, parseDescriptor, parseManifest, parseManifestValue, blobDescriptors } from '../../oci/manifest.js';
import { configPlatform } from '../../oci/platform.js';
import { DEFAULT_TAG, formatReference, type ImageReference, isFullReference, isValidTag, parseReference } from '../../reference/reference.js';
import type { Catalog, SourceImage, Wanted } from '../types.js';
import { parseJson } from '../../oci/json.js';

/** ANNOTATION_IMAGE_NAME carries the full image reference in containerd's and Docker's OCI exports. */
export const ANNOTATION_IMAGE_NAME = 'io.containerd.image.name';
/** ANNOTATION_REF_NAME carries the tag (or, in some tools, the full reference). */
export const ANNOTATION_REF_NAME = 'org.opencontainers.image.ref.name';

/** MAX_INDEX_DEPTH bounds index nesting: manifests more than this many indexes below a root are not looked at (planning refuses them). */
export const MAX_INDEX_DEPTH = 8;
/** MAX_GRAPH_MANIFESTS bounds the manifests one walk from a root visits (planning refuses images with more). */
export const MAX_GRAPH_MANIFESTS = 4096;

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

/** MAX_SUBJECT_CHAIN bounds how many `subject` links are followed to name an artifact (a signature of an SBOM of an image). */
const MAX_SUBJECT_CHAIN = 4;

/**
 * isReferenceName tells whether an `org.opencontainers.image.ref.name` is an image reference rather than a bare tag:
 * a full one (`gcr.io/x/y:1.0`) or a docker-style one with a `/` or a `:` (`busybox:latest`, `lab/app:1.1`), as skopeo
 * and podman write. A bare tag (`1.0`) or a digest is not.
 */
export function isReferenceName(name: string): boolean {
  if (isFullReference(name)) return true;
  return (name.includes('/') || name.includes(':')) && !/^sha(?:256|384|512):[a-f0-9]+$/.test(name);
}

/** BlobRole is what a blob is to the manifests that name it. */
type BlobRole = 'manifest' | 'config' | 'layer';

const SCHEMA_VERSION_KEY = Buffer.from('"schemaVersion"');
const ROOTFS_KEY = Buffer.from('"rootfs"');

/**
 * jsonKind tells from its content what a JSON blob is: a `manifest` (an object with a numeric schemaVersion, or
 * unparsable JSON that names one, so its error stays precise), an image `config` (an object with rootfs), or `other`
 * (a JSON layer, an artifact config). Only blobs that name one of the two keys are parsed.
 */
export function jsonKind(bytes: Uint8Array): 'manifest' | 'config' | 'other' {
  const b = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const schema = b.indexOf(SCHEMA_VERSION_KEY) >= 0;
  if (!schema && b.indexOf(ROOTFS_KEY) < 0) return 'other';
  let v: unknown;
  try {
    v = parseJson(b);
  } catch {
    return schema ? 'manifest' : 'other';
  }
  if (typeof v !== 'object' || v === null || Array.isArray(v)) return 'other';
  const o = v as Record<string, unknown>;
  if (typeof o.schemaVersion === 'number') return 'manifest';
  return typeof o.rootfs === 'object' && o.rootfs !== null ? 'config' : 'other';
}

/** blobDigestOfPath gives the digest of an OCI `blobs/<alg>/<hex>` path, or undefined. */
export function blobDigestOfPath(name: string): string | undefined {
  const m = /^blobs\/([a-z0-9]+(?:[.+_-][a-z0-9]+)*)\/([a-zA-Z0-9=_-]+)$/.exec(name);
  return m ? `${m[1]}:${m[2]}` : undefined;
}

/** blobPathOf gives the OCI layout path of a digest (`sha256:abc` -> `blobs/sha256/abc`). */
export function blobPathOf(digest: string): string {
  const i = digest.indexOf(':');
  return `blobs/${digest.slice(0, i)}/${digest.slice(i + 1)}`;
}

/** formatSize writes a byte count for messages: `5.2 MiB`, `4 MiB`, `812 bytes`. */
export function formatSize(n: number): string {
  if (n < 1024 * 1024) return n < 1024 ? `${n} bytes` : `${(n / 1024).toFixed(1).replace(/\.0$/, '')} KiB`;
  return `${(n / (1024 * 1024)).toFixed(1).replace(/\.0$/, '')} MiB`;
}

/** asBadInput makes an error about a name found in a bundle bad input (a reference parser calls a bad name a usage error). */
function asBadInput(e: unknown, file: string): MirrorError {
  if (e instanceof MirrorError && e.code !== 'USAGE') return e;
  const message = e instanceof Error ? e.message : String(e);
  return new MirrorError('BAD_INPUT', message, { file, ...(e instanceof MirrorError ? { image: e.context.image } : {}), cause: e });
}

/**
 * wentByFix says how to make a docker-save archive whose entries come before manifest.json under names no tool
 * writes readable in one pass (docker's `<id>/layer.tar` and `<hex>.json`, skopeo's `<hex>.tar`, crane's
 * `sha256:<hex>` and `<hex>.tar.gz` are known).
 */
function wentByFix(file: string): string {
  return `the archive is read once, front to back: put manifest.json first, or read it with mirror copy docker-archive:${file}:IMAGE`;
}

/** LAYOUT_MARKERS are the file names that say where a layout or a docker save archive has its top. */
const LAYOUT_MARKERS: ReadonlySet<string> = new Set(['index.json', 'oci-layout', 'manifest.json']);

/** LayoutStateOptions describe the bundle a {@link LayoutState} reads. */
export interface LayoutStateOptions {
  /** `archive` (a tar, default) or `directory`: what the fix for a misplaced layout says. */
  kind?: 'archive' | 'directory' | undefined;
  /**
   * Manifests made for docker-save images: `docker` (default: Docker v2 schema 2 with gzip layers, as docker and
   * skopeo push them) or `oci` (OCI media types, for an OCI layout).
   */
  manifestFormat?: 'docker' | 'oci' | undefined;
  /** The largest manifest read (the bundle source's limit for JSON kept in memory); a larger one is refused by name. Default: 4 MiB. */
  manifestLimit?: number | undefined;
}

/** DEFAULT_MANIFEST_LIMIT is the largest manifest a {@link LayoutState} expects to be given. */
const DEFAULT_MANIFEST_LIMIT = 4 * 1024 * 1024;

/** DockerIndex is what manifest.json says, indexed once. */
interface DockerIndex {
  images: Array<{ entry: DockerSaveEntry; layers: string[]; source: SourceImage }>;
  /** Images by each layer name they list. */
  byLayer: Map<string, SourceImage[]>;
  /** manifest.json entries by each layer name they list, with the layer's position. */
  entriesByLayer: Map<string, Array<{ entry: DockerSaveEntry; i: number }>>;
  configs: Set<string>;
}

/** LayoutState accumulates a bundle's metadata while it is read. */
export class LayoutState {
  /** Small JSON blobs (manifests, configs) by digest. */
  readonly small = new Map<string, Uint8Array>();
  /** Blobs in the archive whose bytes did not match their names (set through {@link addProblem}). */
  readonly problems = new Map<string, MirrorError>();
  /** Files of a docker-save archive kept in memory (configs), by entry name. */
  readonly files = new Map<string, Uint8Array>();
  /** Converted docker-save layers by entry name. */
  readonly converted = new Map<string, ConvertedLayer>();
  /** Entries read as docker-save layers (the others went by as something else). */
  readonly layerEntries = new Set<string>();
  /** Layer entries whose conversion failed. */
  readonly failedLayers = new Map<string, MirrorError>();
  /** Link entries (older `docker save` links repeated layers to their first copy): name -> target (set through {@link addAlias}). */
  readonly aliases = new Map<string, string>();
  /** Names of the entries seen that are not OCI blobs (those the images may need are in {@link blobSizes}). */
  readonly seen = new Set<string>();
  index: ImageIndex | undefined;
  /** Set when an index.json came after another (the later replaces the earlier, as `tar x` keeps the last). */
  indexReplaced = false;
  dockerManifest: DockerSaveEntry[] | undefined;
  /** Size of each OCI blob entry that images may need, by digest (see {@link noteBlob}). */
  private readonly blobSizes = new Map<string, number>();
  /** What the manifests read so far make of each digest they name. */
  private readonly roles = new Map<string, BlobRole>();
  /** The size the manifests read so far declare for each digest; -1 when they do not agree. */
  private readonly declared = new Map<string, number>();
  /** OCI blob paths stored as links (a layout tarred with its links kept), by digest: the entry each points at. */
  private readonly blobLinks = new Map<string, string>();
  /** Link names by the entry they point at. */
  private readonly aliasedBy = new Map<string, string[]>();
  /** Each manifest parsed once (null: not a manifest that parses), by digest and declared media type. */
  private readonly parsedCache = new Map<string, ParsedManifest | null>();
  /** Manifests reached from index.json (through indexes), with the media type they were first reached with. */
  private readonly reached = new Map<string, string>();
  /** Reached manifests not read yet: while there are any, which images need a blob is not known. */
  private readonly pending = new Set<string>();
  /** Bumped whenever what the images or their graphs are could change. */
  private version = 0;
  private imagesCache: { version: number; images: SourceImage[] } | undefined;
  private wantedCache: { version: number; map: Map<string, SourceImage[]> } | undefined;
  private ownersCache: { version: number; owners: Map<string, number> } | undefined;
  private readonly graphCache = new Map<string, { version: number; blobs: Set<string> }>();
  private dockerCache: DockerIndex | undefined;
  private readonly diffIdCache = new Map<string, unknown[] | null>();
  private readonly manifestLimit: number;

  /** The one folder every entry so far sits in (`mylayout/`), `''` once an entry sits at the top or elsewhere. */
  private commonFolder: string | undefined;

  constructor(
    readonly file: string,
    readonly layerCompression: LayerCompression,
    readonly options: LayoutStateOptions = {},
  ) {
    this.manifestLimit = options.manifestLimit ?? DEFAULT_MANIFEST_LIMIT;
  }

  /**
   * noteEntry records an entry (its size, for an OCI blob), and refuses at once a bundle whose every entry so far sits
   * in one folder that turns out to hold a layout (`mylayout/index.json`): its top, where the layout is looked for,
   * holds nothing.
   */
  noteEntry(name: string): void {
    if (blobDigestOfPath(name) === undefined) this.seen.add(name);
    const slash = name.indexOf('/');
    const folder = slash < 0 ? '' : name.slice(0, slash + 1);
    if (this.commonFolder === undefined) this.commonFolder = folder;
    else if (this.commonFolder !== folder) this.commonFolder = '';
    if (this.commonFolder !== '' && LAYOUT_MARKERS.has(name.slice(name.lastIndexOf('/') + 1))) throw this.misplaced(name);
  }

  /**
   * noteBlob records an OCI blob the bundle holds and its size (for the size its descriptors declare, and for foreign
   * layers). Blobs the metadata already says no image needs are not recorded: a bundle of 100,000 of them holds
   * nothing per blob.
   */
  noteBlob(digest: string, size: number): void {
    this.blobSizes.set(digest, size);
  }

  /** misplaced explains a layout found at `marker` (`a/b/index.json`) below the top of the bundle, and the fix. */
  private misplaced(marker: string): MirrorError {
    const folder = marker.slice(0, marker.lastIndexOf('/') + 1);
    const base = marker.slice(folder.length);
    const what = base === 'manifest.json' ? 'a docker save archive' : 'an OCI image layout';
    const expected = base === 'manifest.json' ? 'manifest.json' : 'index.json';
    const fix =
      this.options.kind === 'directory'
        ? `use --source ${join(this.file, ...folder.split('/').filter((p) => p !== ''))}`
        : `re-create the archive from inside that folder: tar -C ${folder.replace(/\/$/, '')} -cf bundle.tar .`;
    return new MirrorError(
      'BAD_INPUT',
      `${this.file} holds ${what} in the folder ${clipInput(folder)} (${clipInput(marker)}), not at its top where ${expected} is expected; ${fix}`,
      { file: this.file },
    );
  }

  /** format says what the bundle is, as far as known. */
  get format(): 'oci' | 'docker-save' | 'unknown' {
    if (this.index) return 'oci';
    if (this.dockerManifest) return 'docker-save';
    return 'unknown';
  }

  /** setIndex records `index.json`, and starts tracking the manifests it reaches. */
  setIndex(bytes: Uint8Array): void {
    const v = decodeJson(bytes, `index.json in ${this.file}`, { file: this.file });
    const parsed = parseManifestValue(v, MediaType.OCI_INDEX, { file: this.file, digest: 'index.json' });
    if (parsed.kind !== 'index' || typeof v !== 'object' || v === null) {
      throw new MirrorError('BAD_INPUT', `index.json in ${this.file} is not an OCI image index`, { file: this.file });
    }
    if (this.index !== undefined) this.indexReplaced = true;
    this.index = parsed.index;
    this.noteRoles(parsed);
    this.reached.clear();
    this.pending.clear();
    for (const d of parsed.index.manifests) this.reach(d);
    this.version++;
  }

  /**
   * keepsAsMetadata tells whether a small JSON blob is metadata to keep in memory (a manifest, or an image config),
   * or a JSON layer (an SBOM, an attestation) that is sent like any other blob and never counts as metadata. What the
   * manifests read so far say about the digest decides; before they name it, its content does.
   */
  keepsAsMetadata(digest: string, bytes: Uint8Array): boolean {
    const role = this.roles.get(digest);
    if (role !== undefined) return role !== 'layer';
    return jsonKind(bytes) !== 'other';
  }

  /** roleOf tells what the manifests read so far make of a digest, if they name it. */
  roleOf(digest: string): BlobRole | undefined {
    return this.roles.get(digest);
  }

  /** noteRoles records what a manifest's descriptors are (manifests, configs or layers) and the sizes they declare. */
  private noteRoles(parsed: ParsedManifest): void {
    const note = (d: Descriptor | undefined, role: BlobRole): void => {
      if (d === undefined) return;
      const had = this.roles.get(d.digest);
      // Something that is a manifest or a config to anyone stays metadata.
      if (had === undefined || had === 'layer') this.roles.set(d.digest, role);
      const size = this.declared.get(d.digest);
      if (size === undefined) this.declared.set(d.digest, d.size);
      else if (size !== d.size) this.declared.set(d.digest, -1);
    };
    if (parsed.kind === 'index') {
      for (const m of parsed.index.manifests) note(m, 'manifest');
      note(parsed.index.subject, 'manifest');
    } else {
      note(parsed.manifest.config, 'config');
      for (const l of parsed.manifest.layers) note(l, 'layer');
      note(parsed.manifest.subject, 'manifest');
    }
  }

  /** setDockerManifest records docker-save's `manifest.json`. */
  setDockerManifest(bytes: Uint8Array): void {
    const v = decodeJson(bytes, `manifest.json in ${this.file}`, { file: this.file });
    const bad = (why: string): MirrorError => new MirrorError('BAD_INPUT', `manifest.json in ${this.file} ${why}`, { file: this.file });
    if (typeof v === 'object' && v !== null && !Array.isArray(v) && 'schemaVersion' in v) {
      // containers/image's `dir:` transport (podman save --format docker-dir, skopeo copy dir:): one image manifest,
      // its blobs named by bare hex, and no image name anywhere.
      throw new MirrorError(
        'BAD_INPUT',
        `${this.file} is a "dir:" image (podman save --format docker-dir, skopeo copy ... dir:DIR): one manifest without an image name, not a bundle; copy its directory by name (mirror copy dir:DIR docker://HOST/REPO:TAG), or save it with podman save --format oci-archive or docker-archive`,
        { file: this.file },
      );
    }
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
    this.dockerCache = undefined;
    this.diffIdCache.clear();
    this.version++;
  }

  /** addAlias records a link entry: `name` holds the bytes of `target`. */
  addAlias(name: string, target: string): void {
    this.aliases.set(name, target);
    const digest = blobDigestOfPath(name);
    if (digest !== undefined) this.blobLinks.set(digest, target);
    let list = this.aliasedBy.get(target);
    if (!list) this.aliasedBy.set(target, (list = []));
    list.push(name);
  }

  /** addSmall records a small JSON blob (already verified against its digest). */
  addSmall(digest: string, bytes: Uint8Array): void {
    this.small.set(digest, bytes);
    const role = this.roles.get(digest);
    const reachedAs = this.reached.get(digest);
    if (role === 'config' && reachedAs === undefined) return;
    if (reachedAs === undefined && role !== 'manifest' && jsonKind(bytes) !== 'manifest') return;
    // A manifest: its descriptors say what the digests they name are (a bad one fails its image when it is planned).
    const parsed = this.parsed(digest, reachedAs);
    if (parsed !== undefined) this.noteRoles(parsed);
    // Only a manifest index.json reaches can change the images or what they need; any other is looked at when reached.
    if (this.pending.delete(digest)) {
      if (parsed?.kind === 'index') for (const child of parsed.index.manifests) this.reach(child);
      this.version++;
    }
  }

  /** addProblem records a blob whose bytes are bad (or that cannot be read); the images that need it fail. */
  addProblem(digest: string, error: MirrorError): void {
    this.problems.set(digest, error);
    this.pending.delete(digest);
    if (this.reached.has(digest)) this.version++;
  }

  /**
   * reach marks a manifest reached from index.json, and what it reaches in turn as far as it has been read. No
   * recursion and one visited set: each manifest is looked at once whatever the number of paths to it.
   */
  private reach(root: Descriptor): void {
    const stack: Descriptor[] = [root];
    while (stack.length > 0) {
      const d = stack.pop()!;
      if (this.reached.has(d.digest)) continue;
      this.reached.set(d.digest, d.mediaType);
      if (!this.small.has(d.digest)) {
        if (!this.problems.has(d.digest)) this.pending.add(d.digest);
        continue;
      }
      const parsed = this.parsed(d.digest, d.mediaType);
      if (parsed?.kind === 'index') for (const c of parsed.index.manifests) if (!this.reached.has(c.digest)) stack.push(c);
    }
  }

  /** parsed gives a manifest read so far, parsed once; undefined when it has not been read or does not parse. */
  private parsed(digest: string, mediaType: string | undefined): ParsedManifest | undefined {
    const key = mediaType === undefined ? digest : `${digest} ${mediaType}`;
    const hit = this.parsedCache.get(key);
    if (hit !== undefined) return hit ?? undefined;
    const bytes = this.small.get(digest);
    if (bytes === undefined) return undefined;
    // Parsed before its media type was known (met before index.json): the same result when its own field says as much.
    const untyped = mediaType === undefined ? undefined : this.parsedCache.get(digest);
    if (untyped && untyped.mediaType === mediaType) {
      this.parsedCache.set(key, untyped);
      return untyped;
    }
    let p: ParsedManifest | null = null;
    try {
      p = parseManifest(bytes, mediaType);
    } catch {
      /* a bad manifest fails its image when it is planned */
    }
    this.parsedCache.set(key, p);
    return p ?? undefined;
  }

  /** metadataComplete tells whether index.json and every manifest it reaches have been read. */
  metadataComplete(): boolean {
    return this.index !== undefined && this.pending.size === 0;
  }

  /** wantedByDigest says which images need an OCI blob, when the metadata read so far can tell. */
  wantedByDigest(digest: string): Wanted {
    if (!this.metadataComplete()) return { known: false };
    return { known: true, images: this.wantedMap().get(digest) ?? [], of: this.ociImages().length };
  }

  /**
   * finalWanted says which images need an OCI blob once the whole bundle has been read: manifests that never came
   * are left out (their images fail when planned). For an archive without index.json: not known.
   */
  finalWanted(digest: string): Wanted {
    if (this.index === undefined) return { known: false };
    return { known: true, images: this.wantedMap().get(digest) ?? [] };
  }

  /**
   * sizeConflict tells, for a blob whose bytes are `size` long, whether every manifest read so far that names it
   * declares another size: then the blob is bad for all of them, like one whose bytes do not match its digest.
   */
  sizeConflict(digest: string, size: number): MirrorError | undefined {
    const declared = this.declared.get(digest);
    if (declared === undefined || declared === -1 || declared === size) return undefined;
    return this.sizeError(digest, size, declared);
  }

  private sizeError(digest: string, actual: number, declared: number): MirrorError {
    const what = this.roles.get(digest) === 'manifest' ? 'manifest' : 'blob';
    return new MirrorError('DIGEST_MISMATCH', `${what} ${digest} is ${actual} bytes in ${this.file}, but its descriptor declares ${declared} bytes`, { digest, file: this.file });
  }

  /** wantedByLayer says which images need a docker-save layer entry, when manifest.json has been read. */
  wantedByLayer(name: string): Wanted {
    if (!this.dockerManifest) return { known: false };
    const ix = this.dockerIndex();
    const out: SourceImage[] = [];
    const seen = new Set<SourceImage>();
    for (const listed of this.namesOf(name)) {
      for (const img of ix.byLayer.get(listed) ?? []) {
        if (seen.has(img)) continue;
        seen.add(img);
        out.push(img);
      }
    }
    return { known: true, images: out };
  }

  /** namesOf gives an entry's name and the names of the links that lead to it (following at most 8 links). */
  private namesOf(name: string): string[] {
    const out = [name];
    const seen = new Set(out);
    for (let i = 0; i < out.length && i < 256; i++) {
      for (const link of this.aliasedBy.get(out[i]!) ?? []) {
        if (seen.has(link) || this.resolveAlias(link) !== name) continue;
        seen.add(link);
        out.push(link);
      }
    }
    return out;
  }

  /** isDockerLayer tells whether an entry is a layer named by manifest.json (or looks like one before it is read). */
  isDockerLayerName(name: string): boolean {
    if (this.dockerManifest) return this.dockerIndex().entriesByLayer.has(name);
    // Before manifest.json (which docker, skopeo and crane write last), by the names they give layers: docker's
    // `<id>/layer.tar`, skopeo's `<hex>.tar`, crane's `<hex>.tar.gz`.
    return /(^|\/)layer\.tar$/.test(name) || /^[^/]+\.tar$/.test(name) || /^[a-f0-9]{64}\.tar\.gz$/.test(name);
  }

  /** isDockerConfigName tells whether an entry is a docker-save config file. */
  isDockerConfigName(name: string): boolean {
    if (this.dockerManifest) return this.dockerIndex().configs.has(name);
    // docker's and skopeo's `<hex>.json`, crane's `sha256:<hex>`.
    return (/^[^/]+\.json$/.test(name) && name !== 'manifest.json' && name !== 'index.json') || /^sha256:[a-f0-9]{64}$/.test(name);
  }

  /** wantedMap maps each blob digest to the images that need it (worked out once per change of the metadata). */
  private wantedMap(): Map<string, SourceImage[]> {
    if (this.wantedCache?.version === this.version) return this.wantedCache.map;
    const map = new Map<string, SourceImage[]>();
    for (const img of this.ociImages()) {
      for (const d of this.graphBlobs(img.descriptor)) {
        let list = map.get(d);
        if (!list) map.set(d, (list = []));
        list.push(img);
      }
    }
    this.wantedCache = { version: this.version, map };
    return map;
  }

  /**
   * graphBlobs lists the blobs under a root descriptor, as far as its manifests have been read (once per root and
   * change of the metadata): a visited set, {@link MAX_INDEX_DEPTH} and {@link MAX_GRAPH_MANIFESTS} bound the walk.
   */
  private graphBlobs(root: Descriptor): Set<string> {
    const key = `${root.digest} ${root.mediaType}`;
    const hit = this.graphCache.get(key);
    if (hit?.version === this.version) return hit.blobs;
    const out = new Set<string>();
    const visited = new Set<string>();
    const stack: Array<{ d: Descriptor; depth: number }> = [{ d: root, depth: 0 }];
    while (stack.length > 0 && visited.size < MAX_GRAPH_MANIFESTS) {
      const { d, depth } = stack.pop()!;
      if (visited.has(d.digest)) continue;
      visited.add(d.digest);
      const parsed = this.parsed(d.digest, d.mediaType);
      if (parsed === undefined) continue; // not read (or bad): its image fails when planned
      if (parsed.kind === 'index') {
        if (depth < MAX_INDEX_DEPTH) for (const c of parsed.index.manifests) if (!visited.has(c.digest)) stack.push({ d: c, depth: depth + 1 });
      } else {
        // Foreign layers too: one the bundle holds goes to its images like any other.
        for (const b of blobDescriptors(parsed.manifest, () => true)) out.add(b.digest);
      }
    }
    this.graphCache.set(key, { version: this.version, blobs: out });
    return out;
  }

  /** ociImages lists the images named by index.json (worked out once per change of the metadata). */
  ociImages(): SourceImage[] {
    if (this.imagesCache?.version === this.version) return this.imagesCache.images;
    const out: SourceImage[] = [];
    for (const [i, raw] of (this.index?.manifests ?? []).entries()) {
      const desc = parseDescriptor(raw, `index.json manifests[${i}]`, { file: this.file });
      const image = this.ociImage(desc, i);
      // An unnamed index whose own entries carry the names (nested indexes): those entries are the images.
      const named = image.reference === undefined ? this.namedDescendants(desc) : [];
      if (named.length > 0) for (const [j, d] of named.entries()) out.push(this.ociImage(d, i, j));
      else out.push(image);
    }
    this.imagesCache = { version: this.version, images: out };
    return out;
  }

  /** nameOf gives the name an index entry carries (a full or docker-style reference), if any. */
  private nameOf(d: Descriptor): string | undefined {
    const a = d.annotations ?? {};
    const name = a[ANNOTATION_IMAGE_NAME] ?? a[ANNOTATION_REF_NAME];
    return name !== undefined && (a[ANNOTATION_IMAGE_NAME] !== undefined || isReferenceName(name)) ? name : undefined;
  }

  /**
   * namedDescendants finds the named entries under an unnamed index (as far as its indexes have been read): each
   * index looked at once, at most {@link MAX_INDEX_DEPTH} deep, each named entry listed once.
   */
  private namedDescendants(root: Descriptor): Descriptor[] {
    const out: Descriptor[] = [];
    const visitedIndexes = new Set<string>();
    const listed = new Set<string>();
    const stack: Array<{ d: Descriptor; depth: number }> = [{ d: root, depth: 0 }];
    while (stack.length > 0 && visitedIndexes.size < MAX_GRAPH_MANIFESTS) {
      const { d, depth } = stack.pop()!;
      if (depth > MAX_INDEX_DEPTH || !isIndexMediaType(d.mediaType) || visitedIndexes.has(d.digest)) continue;
      visitedIndexes.add(d.digest);
      const parsed = this.parsed(d.digest, d.mediaType);
      if (parsed?.kind !== 'index') continue;
      // Depth first, in index order: children are pushed in reverse.
      const nested: Array<{ d: Descriptor; depth: number }> = [];
      for (const child of parsed.index.manifests) {
        if (this.nameOf(child) === undefined) {
          nested.push({ d: child, depth: depth + 1 });
          continue;
        }
        const a = child.annotations ?? {};
        const key = `${child.digest}\n${a[ANNOTATION_IMAGE_NAME] ?? ''}\n${a[ANNOTATION_REF_NAME] ?? ''}`;
        if (listed.has(key)) continue;
        listed.add(key);
        out.push(child);
      }
      for (let k = nested.length - 1; k >= 0; k--) stack.push(nested[k]!);
    }
    return out;
  }

  private ociImage(desc: Descriptor, i: number, nested?: number, depth = 0): SourceImage {
    const a = desc.annotations ?? {};
    const full = a[ANNOTATION_IMAGE_NAME];
    const refName = a[ANNOTATION_REF_NAME];
    const candidate = full ?? (refName !== undefined && isReferenceName(refName) ? refName : undefined);
    const where = `index.json manifests[${i}]${nested === undefined ? '' : ` entry ${nested}`} (${desc.digest})`;
    if (candidate === undefined) {
      // An artifact listed by digest alone (an SBOM or a signature, as oras and regctl write them) whose subject is a
      // named image of this bundle goes to that image's repository, by digest.
      const owner = depth < MAX_SUBJECT_CHAIN ? this.subjectOwner(desc, i, depth) : undefined;
      if (owner?.reference !== undefined) {
        const ref: ImageReference = { registry: owner.reference.registry, repository: owner.reference.repository, digest: desc.digest };
        return { reference: ref, name: formatReference(ref), descriptor: desc };
      }
      const why = refName !== undefined ? `has only the name "${clipInput(refName)}", not a full image reference` : 'has no image name';
      // skopeo's `oci:DIR:NAME` writes NAME as the ref name: given a tag alone, the repository is unknown.
      const how = `name it in full: ${ANNOTATION_IMAGE_NAME}, or ${ANNOTATION_REF_NAME} HOST/REPO:TAG (skopeo copy ... oci:DIR:HOST/REPO:TAG)`;
      return {
        reference: undefined,
        name: where,
        descriptor: desc,
        error: new MirrorError('BAD_INPUT', `${where} in ${this.file} ${why}; ${how}`, { file: this.file, digest: desc.digest }),
      };
    }
    try {
      // A name with a `/` or a `:` is a docker-style reference and is normalized as docker does (`busybox:latest` is
      // `docker.io/library/busybox:latest`), the way RepoTags of `docker save` are.
      let ref = parseReference(candidate, { defaultTag: false });
      if (ref.digest !== undefined && ref.digest !== desc.digest) {
        throw new MirrorError('BAD_INPUT', `${clipInput(candidate)} names digest ${ref.digest} but index.json gives ${desc.digest}`, { file: this.file, image: clipInput(candidate) });
      }
      if (ref.tag === undefined && ref.digest === undefined) {
        // A full name without a tag: the tag is in ref.name when that holds a plain tag.
        ref = { ...ref, tag: refName !== undefined && isValidTag(refName) ? refName : DEFAULT_TAG };
      }
      return { reference: ref, name: formatReference(ref), descriptor: desc };
    } catch (e) {
      return { reference: undefined, name: clipInput(candidate), descriptor: desc, error: asBadInput(e, this.file) };
    }
  }

  /**
   * subjectOwner finds the named image of index.json whose graph holds the `subject` of the manifest `desc` (when
   * that manifest has been read and has a subject), or undefined.
   */
  private subjectOwner(desc: Descriptor, self: number, depth: number): SourceImage | undefined {
    const parsed = this.parsed(desc.digest, desc.mediaType);
    if (parsed === undefined) return undefined;
    const subject = (parsed.kind === 'index' ? parsed.index.subject : parsed.manifest.subject)?.digest;
    if (subject === undefined) return undefined;
    const j = this.entryOwners().get(subject);
    const other = j === undefined || j === self ? undefined : this.index?.manifests[j];
    if (other === undefined) return undefined;
    const img = this.ociImage(other, j!, undefined, depth + 1);
    return img.reference !== undefined ? img : undefined;
  }

  /** entryOwners maps each manifest digest (read so far) to the first index.json entry whose graph holds it. */
  private entryOwners(): Map<string, number> {
    if (this.ownersCache?.version === this.version) return this.ownersCache.owners;
    const owners = new Map<string, number>();
    for (const [j, root] of (this.index?.manifests ?? []).entries()) {
      const stack: Array<{ d: Descriptor; depth: number }> = [{ d: root, depth: 0 }];
      while (stack.length > 0) {
        const { d, depth } = stack.pop()!;
        if (owners.has(d.digest)) continue;
        owners.set(d.digest, j);
        if (depth >= MAX_INDEX_DEPTH || !isIndexMediaType(d.mediaType)) continue;
        const parsed = this.parsed(d.digest, d.mediaType);
        if (parsed?.kind === 'index') for (const c of parsed.index.manifests) if (!owners.has(c.digest)) stack.push({ d: c, depth: depth + 1 });
      }
    }
    this.ownersCache = { version: this.version, owners };
    return owners;
  }

  /** dockerIndex indexes manifest.json once: its images (one per tag), and by layer and config name. */
  private dockerIndex(): DockerIndex {
    if (this.dockerCache) return this.dockerCache;
    const images: DockerIndex['images'] = [];
    const byLayer = new Map<string, SourceImage[]>();
    const entriesByLayer = new Map<string, Array<{ entry: DockerSaveEntry; i: number }>>();
    const configs = new Set<string>();
    for (const [i, entry] of (this.dockerManifest ?? []).entries()) {
      configs.add(entry.Config);
      for (const [k, l] of entry.Layers.entries()) {
        let list = entriesByLayer.get(l);
        if (!list) entriesByLayer.set(l, (list = []));
        list.push({ entry, i: k });
      }
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
            source = { reference: undefined, name: clipInput(tag), descriptor: placeholder, error: asBadInput(e, this.file) };
          }
        }
        images.push({ entry, layers: entry.Layers, source });
        for (const l of new Set(entry.Layers)) {
          let list = byLayer.get(l);
          if (!list) byLayer.set(l, (list = []));
          list.push(source);
        }
      }
    }
    this.dockerCache = { images, byLayer, entriesByLayer, configs };
    return this.dockerCache;
  }

  /** diffIdFromConfig gives a docker-save layer's diff_id from its image's config, when both have been read. */
  diffIdFromConfig(name: string): string | undefined {
    if (!this.dockerManifest) return undefined;
    const ix = this.dockerIndex();
    for (const listed of this.namesOf(name)) {
      for (const { entry, i } of ix.entriesByLayer.get(listed) ?? []) {
        const ids = this.configDiffIds(entry.Config);
        const id = ids?.[i];
        if (typeof id === 'string') return id;
      }
    }
    return undefined;
  }

  /** configDiffIds gives a docker-save config's `rootfs.diff_ids` (parsed once), when the config has been read. */
  private configDiffIds(name: string): unknown[] | undefined {
    const hit = this.diffIdCache.get(name);
    if (hit !== undefined) return hit ?? undefined;
    const config = this.files.get(name);
    if (!config) return undefined;
    let ids: unknown[] | null = null;
    try {
      const v = (decodeJson(config, `config ${clipInput(name)}`) as { rootfs?: { diff_ids?: unknown } }).rootfs?.diff_ids;
      if (Array.isArray(v)) ids = v;
    } catch {
      /* a bad config fails its image later */
    }
    this.diffIdCache.set(name, ids);
    return ids ?? undefined;
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

  /**
   * finish is called once the whole bundle has been read: a manifest index.json reaches that is in the bundle only
   * as a blob larger than the manifest limit is refused by name and size.
   */
  finish(): void {
    for (const d of [...this.pending]) {
      const size = this.blobSizes.get(d);
      if (size !== undefined && size > this.manifestLimit) this.addProblem(d, this.tooLarge(d, size));
    }
  }

  /**
   * linkProblem is the error of an OCI blob the bundle holds only as a link to another entry (its bytes are not under
   * its name, so they cannot be checked as they go by), when it holds no copy of its own.
   */
  private linkProblem(digest: string): MirrorError | undefined {
    const target = this.blobLinks.get(digest);
    if (target === undefined || this.small.has(digest) || this.blobSizes.has(digest)) return undefined;
    return new MirrorError(
      'BAD_INPUT',
      `blob ${digest} in ${this.file} is a link to "${clipInput(target)}", not its bytes; make the archive with the links followed (GNU tar: --dereference --hard-dereference)`,
      { digest, file: this.file },
    );
  }

  /** tooLarge is the error of a manifest larger than the manifest limit. */
  tooLarge(digest: string, size: number): MirrorError {
    return new MirrorError('BAD_INPUT', `manifest ${digest} is ${formatSize(size)}, more than the ${formatSize(this.manifestLimit)} limit`, { digest, file: this.file });
  }

  /** catalog builds the final catalog once the whole input has been read. */
  catalog(): Catalog {
    const synth = new Map<string, { bytes: Uint8Array; mediaType: string }>();
    let images: SourceImage[];
    if (this.index) {
      images = this.ociImages();
    } else if (this.dockerManifest) {
      images = this.dockerIndex().images.map(({ entry, source }) => this.finishDockerImage(entry, source, synth));
    } else {
      const nested = [...this.seen].filter((n) => LAYOUT_MARKERS.has(n.slice(n.lastIndexOf('/') + 1))).sort((a, b) => a.split('/').length - b.split('/').length || a.localeCompare(b))[0];
      if (nested !== undefined) throw this.misplaced(nested);
      throw new MirrorError('BAD_INPUT', `${this.file} is not an image bundle: it has neither index.json (OCI layout) nor manifest.json (docker save)`, {
        file: this.file,
      });
    }
    return {
      images,
      bytes: (d) => this.small.get(d) ?? synth.get(d)?.bytes,
      mediaTypeOf: (d) => synth.get(d)?.mediaType,
      problem: (d, declaredSize) => {
        const known = this.problems.get(d) ?? this.linkProblem(d);
        if (known !== undefined || declaredSize === undefined) return known;
        const actual = this.small.get(d)?.byteLength ?? this.blobSizes.get(d);
        return actual !== undefined && actual !== declaredSize ? this.sizeError(d, actual, declaredSize) : undefined;
      },
      has: (d) => this.small.has(d) || this.blobSizes.has(d),
      mayHavePassed: (d) => this.indexReplaced && !this.small.has(d) && !this.blobSizes.has(d),
      dockerSaveFile: this.index !== undefined && this.dockerManifest !== undefined ? this.file : undefined,
    };
  }

  private finishDockerImage(entry: DockerSaveEntry, source: SourceImage, synth: Map<string, { bytes: Uint8Array; mediaType: string }>): SourceImage {
    if (source.error) return source;
    const fail = (msg: string, digest?: string): SourceImage => ({
      ...source,
      error: new MirrorError('BAD_INPUT', msg, { file: this.file, image: source.name, digest }),
    });
    const configName = clipInput(entry.Config);
    const configBytes = this.files.get(entry.Config);
    if (!configBytes) {
      if (this.seen.has(entry.Config)) return fail(`config ${configName} of ${source.name} came before manifest.json under a name not known as a config (${wentByFix(this.file)})`);
      return fail(`config ${configName} of ${source.name} is missing from ${this.file}`);
    }
    const configDigest = sha256Digest(configBytes);
    const hexName = /^(?:blobs\/sha256\/|sha256:)?([a-f0-9]{64})(?:\.json)?$/.exec(entry.Config);
    if (hexName && `sha256:${hexName[1]}` !== configDigest) {
      return fail(`config ${configName} of ${source.name} does not match its name: content hashes to ${configDigest}`, configDigest);
    }
    let diffIds: unknown;
    let platform: Platform | undefined;
    try {
      const config = decodeJson(configBytes, `config ${configName} of ${source.name}`) as { rootfs?: { diff_ids?: unknown } };
      diffIds = config.rootfs?.diff_ids;
      platform = configPlatform(config);
    } catch (e) {
      return { ...source, error: e instanceof MirrorError ? e : new MirrorError('BAD_INPUT', `config ${configName} of ${source.name} is not valid JSON`, { file: this.file }) };
    }
    const oci = this.options.manifestFormat === 'oci';
    const layers: Descriptor[] = [];
    let anyCompressed = false;
    let allOci = true;
    for (const [i, listed] of entry.Layers.entries()) {
      const name = this.resolveAlias(listed);
      const failed = this.failedLayers.get(name);
      if (failed) return { ...source, error: failed };
      const l = this.converted.get(name);
      if (!l) {
        if (!this.seen.has(name)) return fail(`layer ${clipInput(name)} of ${source.name} is missing from ${this.file}`);
        if (!this.layerEntries.has(name)) {
          return fail(`layer ${clipInput(name)} of ${source.name} came before manifest.json under a name not known as a layer (${wentByFix(this.file)})`);
        }
        return fail(`layer ${clipInput(name)} of ${source.name} was not pushed`);
      }
      const want = Array.isArray(diffIds) ? diffIds[i] : undefined;
      if (l.diffId !== undefined && typeof want === 'string' && want !== l.diffId) {
        return fail(`layer ${clipInput(name)} of ${source.name} does not match the config's diff_id ${clipInput(want)}: content hashes to ${l.diffId}`, l.diffId);
      }
      if (l.mediaType !== MediaType.OCI_LAYER) anyCompressed = true;
      if (l.mediaType === MediaType.DOCKER_LAYER_GZIP) allOci = false;
      // An OCI layout holds OCI manifests: a gzip layer is the same bytes under the OCI media type.
      const mediaType = oci && l.mediaType === MediaType.DOCKER_LAYER_GZIP ? MediaType.OCI_LAYER_GZIP : l.mediaType;
      layers.push({ mediaType, digest: l.digest, size: l.size });
    }
    // gzip layers go in a Docker v2 schema 2 manifest (what docker and skopeo push); zstd or none need OCI types, and
    // so does an OCI layout.
    const docker = !oci && (!allOci || (layers.length === 0 && this.layerCompression === 'gzip'));
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
    const how = anyCompressed ? `layers ${this.layerCompression}-compressed` : 'layers uncompressed';
    return {
      ...source,
      descriptor: { mediaType: manifest.mediaType, digest, size: bytes.byteLength, ...(platform ? { platform } : {}) },
      converted: oci
        ? `docker-save image written as an OCI manifest (OCI media types, as an OCI layout holds), ${how}: layer and manifest digests differ from the archive's; the config digest ${configDigest} is kept`
        : anyCompressed
          ? `docker-save layers pushed ${this.layerCompression}-compressed: layer and manifest digests differ from the archive's; the config digest ${configDigest} is kept`
          : `docker-save image pushed as an OCI manifest with uncompressed layers; the config digest ${configDigest} is kept`,
    };
  }
}
