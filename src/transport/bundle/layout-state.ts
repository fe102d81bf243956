/**
 * What a bundle reader learns as entries go by: the OCI `index.json`, `manifest.json` of `docker save`, and the
 * small JSON blobs (manifests and configs) kept in memory. It answers which images need a blob (as far as is known
 * yet) and, at the end, builds the catalog.
 */
import { join } from 'node:path';
import { normalizeEntryName } from '../../archive/tar.js';
import { MirrorError } from '../../errors/index.js';
import { sha256Digest } from '../../oci/digest.js';
import { isIndexMediaType, MediaType } from '../../oci/media-types.js';
import { type Descriptor, decodeJson, type ImageIndex, type ParsedManifest, type Platform, parseDescriptor, parseManifest, blobDescriptors } from '../../oci/manifest.js';
import { configPlatform } from '../../oci/platform.js';
import { DEFAULT_TAG, formatReference, type ImageReference, isFullReference, isValidTag, parseReference } from '../../reference/reference.js';
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
    v = JSON.parse(b.toString('utf8'));
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
  /** What the manifests read so far make of each digest they name. */
  private readonly roles = new Map<string, BlobRole>();
  private wantedCache: Map<string, SourceImage[]> | undefined;
  private ociImagesCache: SourceImage[] | undefined;
  private ownersCache: Map<string, number> | undefined;

  /** The one folder every entry so far sits in (`mylayout/`), `''` once an entry sits at the top or elsewhere. */
  private commonFolder: string | undefined;

  constructor(
    readonly file: string,
    readonly layerCompression: LayerCompression,
    readonly options: LayoutStateOptions = {},
  ) {}

  /**
   * noteEntry records an entry name, and refuses at once a bundle whose every entry so far sits in one folder that
   * turns out to hold a layout (`mylayout/index.json`): its top, where the layout is looked for, holds nothing.
   */
  noteEntry(name: string): void {
    this.seen.add(name);
    const slash = name.indexOf('/');
    const folder = slash < 0 ? '' : name.slice(0, slash + 1);
    if (this.commonFolder === undefined) this.commonFolder = folder;
    else if (this.commonFolder !== folder) this.commonFolder = '';
    if (this.commonFolder !== '' && LAYOUT_MARKERS.has(name.slice(name.lastIndexOf('/') + 1))) throw this.misplaced(name);
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
      `${this.file} holds ${what} in the folder ${folder} (${marker}), not at its top where ${expected} is expected; ${fix}`,
      { file: this.file },
    );
  }

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
    this.noteRoles(parsed);
    this.invalidate();
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

  /** noteRoles records what a manifest's descriptors are: manifests, configs or layers. */
  private noteRoles(parsed: ParsedManifest): void {
    const note = (d: Descriptor | undefined, role: BlobRole): void => {
      if (d === undefined) return;
      const had = this.roles.get(d.digest);
      // Something that is a manifest or a config to anyone stays metadata.
      if (had === undefined || had === 'layer') this.roles.set(d.digest, role);
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
        `${this.file} is a "dir:" image (podman save --format docker-dir): one manifest without an image name, not a bundle; save it with podman save --format oci-archive or docker-archive`,
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
    this.invalidate();
  }

  /** addSmall records a small JSON blob (already verified against its digest). */
  addSmall(digest: string, bytes: Uint8Array): void {
    this.small.set(digest, bytes);
    if (this.roles.get(digest) !== 'config' && jsonKind(bytes) === 'manifest') {
      try {
        this.noteRoles(parseManifest(bytes, undefined));
      } catch {
        /* a bad manifest fails its image when it is planned */
      }
    }
    this.invalidate();
  }

  private invalidate(): void {
    this.wantedCache = undefined;
    this.ociImagesCache = undefined;
    this.ownersCache = undefined;
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
      // Foreign layers too: one the bundle holds goes to its images like any other.
      else for (const b of blobDescriptors(parsed.manifest, () => true)) out.add(b.digest);
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
      if (name !== undefined && (a[ANNOTATION_IMAGE_NAME] !== undefined || isReferenceName(name))) out.push(child);
      else out.push(...this.namedDescendants(child, depth + 1));
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
      const why = refName !== undefined ? `has only the name "${refName}", not a full image reference` : 'has no image name';
      return {
        reference: undefined,
        name: where,
        descriptor: desc,
        error: new MirrorError('BAD_INPUT', `${where} in ${this.file} ${why} (expected ${ANNOTATION_IMAGE_NAME})`, { file: this.file, digest: desc.digest }),
      };
    }
    try {
      // A name with a `/` or a `:` is a docker-style reference and is normalized as docker does (`busybox:latest` is
      // `docker.io/library/busybox:latest`), the way RepoTags of `docker save` are.
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

  /**
   * subjectOwner finds the named image of index.json whose graph holds the `subject` of the manifest `desc` (when
   * that manifest has been read and has a subject), or undefined.
   */
  private subjectOwner(desc: Descriptor, self: number, depth: number): SourceImage | undefined {
    const bytes = this.small.get(desc.digest);
    if (!bytes) return undefined;
    let subject: string | undefined;
    try {
      const parsed = parseManifest(bytes, desc.mediaType);
      subject = (parsed.kind === 'index' ? parsed.index.subject : parsed.manifest.subject)?.digest;
    } catch {
      return undefined;
    }
    if (subject === undefined) return undefined;
    const j = this.entryOwners().get(subject);
    const other = j === undefined || j === self ? undefined : this.index?.manifests[j];
    if (other === undefined) return undefined;
    const img = this.ociImage(other, j!, undefined, depth + 1);
    return img.reference !== undefined ? img : undefined;
  }

  /** entryOwners maps each manifest digest (read so far) to the first index.json entry whose graph holds it. */
  private entryOwners(): Map<string, number> {
    if (this.ownersCache) return this.ownersCache;
    const owners = new Map<string, number>();
    for (const [j, root] of (this.index?.manifests ?? []).entries()) {
      const stack: Array<{ d: Descriptor; depth: number }> = [{ d: root, depth: 0 }];
      for (let steps = 0; stack.length > 0 && steps < 10_000; steps++) {
        const { d, depth } = stack.pop()!;
        if (owners.has(d.digest)) continue;
        owners.set(d.digest, j);
        if (depth >= 8 || !isIndexMediaType(d.mediaType)) continue;
        const bytes = this.small.get(d.digest);
        if (!bytes) continue;
        try {
          const parsed = parseManifest(bytes, d.mediaType);
          if (parsed.kind === 'index') for (const c of parsed.index.manifests) stack.push({ d: c, depth: depth + 1 });
        } catch {
          /* a bad index fails its own image */
        }
      }
    }
    this.ownersCache = owners;
    return owners;
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
      problem: (d) => this.problems.get(d),
      has: (d) => this.small.has(d) || this.seen.has(blobPathOf(d)),
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
    let platform: Platform | undefined;
    try {
      const config = decodeJson(configBytes, `config ${entry.Config}`) as { rootfs?: { diff_ids?: unknown } };
      diffIds = config.rootfs?.diff_ids;
      platform = configPlatform(config);
    } catch (e) {
      return fail(`config ${entry.Config} of ${source.name} is not valid JSON`);
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
        if (!this.seen.has(name)) return fail(`layer ${name} of ${source.name} is missing from ${this.file}`);
        return fail(`layer ${name} of ${source.name} was not pushed`);
      }
      const want = Array.isArray(diffIds) ? diffIds[i] : undefined;
      if (l.diffId !== undefined && typeof want === 'string' && want !== l.diffId) {
        return fail(`layer ${name} of ${source.name} does not match the config's diff_id ${want}: content hashes to ${l.diffId}`, want);
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
