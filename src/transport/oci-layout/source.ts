/**
 * An OCI image layout directory as a source (`oci:DIR[:REF]`), read in any order. REF picks an `index.json` entry as
 * skopeo does, by its `org.opencontainers.image.ref.name`; also accepted: a full image reference matched against
 * `io.containerd.image.name` (and against a ref.name written as a reference, as podman writes `busybox:latest`), a
 * digest (`@sha256:...`) and a position (`@N`). Without REF the layout must hold exactly one image.
 *
 * Manifests are read whole (at most 4 MiB) and verified against their digests (sha256, sha384, sha512); blobs are
 * opened from their files, at an offset when a consumer resumes; a missing blob is BAD_INPUT naming the file. Every
 * path is resolved inside DIR: a symlink that leads out of it (or anything but a regular file) is refused.
 */
import { createHash } from 'node:crypto';
import { constants as fsConstants } from 'node:fs';
import { type FileHandle, open, realpath, stat } from 'node:fs/promises';
import { isAbsolute, join, relative, sep } from 'node:path';
import { addAbortSignal } from 'node:stream';
import { DigestMismatchError, errorMessage, MirrorError } from '../../errors/index.js';
import { clipInput } from '../../errors/quote.js';
import { type Descriptor, parseDescriptor, parseManifest } from '../../oci/manifest.js';
import { MediaType } from '../../oci/media-types.js';
import { formatReference, isValidDigest, parseReference, tryParseReference } from '../../reference/reference.js';
import { openLayoutDestination } from './destination.js';
import { ANNOTATION_IMAGE_NAME, ANNOTATION_REF_NAME } from '../bundle/layout-state.js';
import type { OpenedDestination, OpenedSource, Transport } from '../index.js';
import { formatTransportRef, type TransportRef } from '../refs.js';
import type { ImageName, ImageSource, ManifestBytes, Referrer, ReferrerQuery, SourceOpOptions } from '../types.js';
import { parseJson } from '../../oci/json.js';

/** MAX_LAYOUT_MANIFEST_BYTES bounds a manifest read from a layout (as distribution and containerd bound them). */
export const MAX_LAYOUT_MANIFEST_BYTES = 4 * 1024 * 1024;
/** MAX_INDEX_JSON_BYTES bounds `index.json` (it lists every image of the layout). */
export const MAX_INDEX_JSON_BYTES = 64 * 1024 * 1024;
/** MAX_REFERRER_SCAN bounds the index.json entries read when looking for referrers. */
export const MAX_REFERRER_SCAN = 10_000;
/** HASHES are the digest algorithms a manifest can be verified with. */
const HASHES: ReadonlySet<string> = new Set(['sha256', 'sha384', 'sha512']);
/** COSIGN_TAG names a cosign signature, attestation or SBOM of `<alg>:<hex>` stored under a tag. */
const COSIGN_TAG = /^([a-z0-9]+)-([a-f0-9]+)\.(sig|att|sbom)$/;

/** digestOf computes the digest of bytes with `algorithm`, or throws UNSUPPORTED for one that cannot be verified. */
export function digestOf(bytes: Uint8Array, algorithm: string): string {
  if (!HASHES.has(algorithm)) throw new MirrorError('UNSUPPORTED', `digest algorithm "${clipInput(algorithm, 32)}" cannot be verified (sha256, sha384 and sha512 can)`);
  return `${algorithm}:${createHash(algorithm).update(bytes).digest('hex')}`;
}

/**
 * fullNameOf gives the normalized full reference a layout or archive REF stands for when it is written as an image
 * reference (`busybox:1.36`, `quay.io/a/b:1`: it has a `/` or a `:`), and undefined for a bare tag (`1.36`).
 */
export function fullNameOf(ref: string): string | undefined {
  if (!ref.includes('/') && !ref.includes(':')) return undefined;
  try {
    const parsed = parseReference(ref);
    return parsed.digest === undefined ? formatReference(parsed) : undefined;
  } catch {
    return undefined;
  }
}

/**
 * realDirectory resolves the directory of a location (`oci:DIR`, `dir:DIR`), symlinks followed: BAD_INPUT when it is
 * missing, unreadable or not a directory (`notDirHint` then says what to use instead).
 */
export async function realDirectory(dir: string, transport: string, notDirHint?: string): Promise<string> {
  try {
    const real = await realpath(dir);
    if (!(await stat(real)).isDirectory()) throw new MirrorError('BAD_INPUT', `${transport}:${dir} is not a directory`, { file: dir, hint: notDirHint });
    return real;
  } catch (e) {
    if (e instanceof MirrorError) throw e;
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') throw new MirrorError('BAD_INPUT', `no such directory: ${dir}`, { file: dir });
    throw new MirrorError('BAD_INPUT', `cannot read ${dir}: ${errorMessage(e)}`, { file: dir, cause: e });
  }
}

/** openLayoutSource opens `dir` as an OCI image layout: `index.json` is read and checked now. */
export async function openLayoutSource(dir: string): Promise<LayoutSource> {
  const source = new LayoutSource(dir, await realDirectory(dir, 'oci', 'for a tar of a layout use oci-archive:'));
  await source.load();
  return source;
}

/** LayoutSource reads an OCI image layout directory. */
export class LayoutSource implements ImageSource {
  readonly kind = 'random' as const;
  private entries: Descriptor[] = [];
  private referrerMap: Promise<Map<string, Referrer[]>> | undefined;

  constructor(
    /** The layout as the user named it (a directory; an archive file for a subclass). */
    protected readonly dir: string,
    private readonly real: string,
  ) {}

  get description(): string {
    return `OCI layout ${this.dir}`;
  }

  /** The location as written in messages (`oci:DIR`). */
  protected get where(): string {
    return `oci:${this.dir}`;
  }

  /** The index.json entries. */
  get images(): readonly Descriptor[] {
    return this.entries;
  }

  /**
   * openInside opens a file of the layout for reading: resolved (symlinks followed) and refused unless it stays
   * inside DIR and is a regular file. A missing file gives undefined.
   */
  private async openInside(rel: string): Promise<{ handle: FileHandle; size: number } | undefined> {
    const path = join(this.real, rel);
    let resolved: string;
    try {
      resolved = await realpath(path);
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
      throw new MirrorError('BAD_INPUT', `cannot read ${join(this.dir, rel)}: ${errorMessage(e)}`, { file: join(this.dir, rel), cause: e });
    }
    const inside = relative(this.real, resolved);
    if (inside === '..' || inside.startsWith(`..${sep}`) || isAbsolute(inside)) {
      throw new MirrorError('UNSAFE_ENTRY', `${join(this.dir, rel)} leads out of the layout ${this.dir} (to ${clipInput(resolved, 120)}); refusing to read it`, {
        file: join(this.dir, rel),
      });
    }
    let handle: FileHandle;
    try {
      handle = await open(resolved, fsConstants.O_RDONLY | fsConstants.O_NOFOLLOW);
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
      throw new MirrorError('BAD_INPUT', `cannot read ${join(this.dir, rel)}: ${errorMessage(e)}`, { file: join(this.dir, rel), cause: e });
    }
    const st = await handle.stat();
    if (!st.isFile()) {
      await handle.close();
      throw new MirrorError('BAD_INPUT', `${join(this.dir, rel)} is not a regular file`, { file: join(this.dir, rel) });
    }
    return { handle, size: st.size };
  }

  /** readInside reads a whole (small) file of the layout, refusing one larger than `max`; undefined when it is missing. */
  protected async readInside(rel: string, max: number, what: string): Promise<Buffer | undefined> {
    const opened = await this.openInside(rel);
    if (opened === undefined) return undefined;
    try {
      if (opened.size > max) throw new MirrorError('BAD_INPUT', `${what} ${join(this.dir, rel)} is larger than the ${max / 1024 / 1024} MiB limit`, { file: join(this.dir, rel) });
      const buf = Buffer.alloc(opened.size);
      let read = 0;
      while (read < opened.size) {
        const { bytesRead } = await opened.handle.read(buf, read, opened.size - read, read);
        if (bytesRead === 0) break;
        read += bytesRead;
      }
      return buf.subarray(0, read);
    } finally {
      await opened.handle.close();
    }
  }

  /** blobRel gives a blob's path inside the layout; a digest that could name anything else is refused. */
  protected blobRel(digest: string): string {
    if (!isValidDigest(digest)) throw new MirrorError('BAD_INPUT', `invalid digest "${clipInput(digest)}" in ${this.dir}`, { file: this.dir });
    const i = digest.indexOf(':');
    return join('blobs', digest.slice(0, i), digest.slice(i + 1));
  }

  /** load reads `oci-layout` and `index.json`. */
  async load(): Promise<void> {
    const layoutFile = await this.readInside('oci-layout', 64 * 1024, 'the layout file');
    const indexBytes = await this.readInside('index.json', MAX_INDEX_JSON_BYTES, 'the index');
    if (indexBytes === undefined) {
      throw new MirrorError('BAD_INPUT', `${this.dir} is not an OCI image layout: it has no index.json${layoutFile === undefined ? ' and no oci-layout file' : ''}`, {
        file: this.dir,
      });
    }
    if (layoutFile !== undefined) {
      let version: unknown;
      try {
        version = (parseJson(layoutFile) as { imageLayoutVersion?: unknown }).imageLayoutVersion;
      } catch {
        version = undefined;
      }
      if (typeof version !== 'string' || !/^1\.\d+\.\d+$/.test(version)) {
        throw new MirrorError('UNSUPPORTED', `${join(this.dir, 'oci-layout')} gives layout version ${typeof version === 'string' ? `"${clipInput(version, 40)}"` : clipInput(version)}; version 1.x is read`, {
          file: join(this.dir, 'oci-layout'),
        });
      }
    }
    const parsed = parseManifest(indexBytes, MediaType.OCI_INDEX, { file: join(this.dir, 'index.json'), digest: 'index.json' });
    if (parsed.kind !== 'index') throw new MirrorError('BAD_INPUT', `${join(this.dir, 'index.json')} is not an OCI image index`, { file: join(this.dir, 'index.json') });
    this.entries = parsed.index.manifests.map((d, i) => parseDescriptor(d, `${join(this.dir, 'index.json')} manifests[${i}]`, { file: this.dir }));
  }

  /** nameOf names an entry for messages: its ref.name, its image name, or `@digest`. */
  private nameOf(d: Descriptor): string {
    return d.annotations?.[ANNOTATION_REF_NAME] ?? d.annotations?.[ANNOTATION_IMAGE_NAME] ?? `@${d.digest}`;
  }

  /** listing names up to 10 entries for a message. */
  private listing(): string {
    const names = this.entries.map((d) => clipInput(this.nameOf(d), 60));
    return names.slice(0, 10).join(', ') + (names.length > 10 ? `, ... (${names.length} in all)` : '');
  }

  /**
   * resolve finds the entry an image name selects. `name.tag` carries REF as written (`1.0`, `busybox:1.0`,
   * `quay.io/a/b:1`, `@3`); `name.digest` a digest.
   */
  async resolve(name: ImageName): Promise<Descriptor> {
    const where = this.where;
    if (name.digest !== undefined) {
      const listed = this.entries.find((d) => d.digest === name.digest);
      if (listed) return listed;
      const m = await this.manifest('', name.digest, {}).catch((e: unknown) => {
        if (e instanceof MirrorError && e.code === 'NOT_FOUND') return undefined;
        throw e;
      });
      if (m === undefined) throw new MirrorError('NOT_FOUND', `${where} has no manifest ${name.digest}`, { file: this.dir, digest: name.digest });
      return { mediaType: m.mediaType || sniffManifestType(m.bytes), digest: m.digest, size: m.bytes.byteLength };
    }
    const ref = name.tag;
    if (ref === undefined) {
      if (this.entries.length === 1) return this.entries[0]!;
      if (this.entries.length === 0) throw new MirrorError('BAD_INPUT', `${where} holds no image (its index.json lists none)`, { file: this.dir });
      throw new MirrorError('USAGE', `${where} holds ${this.entries.length} images; name one as ${where}:REF (${this.listing()})`);
    }
    const position = /^@(\d+)$/.exec(ref);
    if (position) {
      const entry = this.entries[Number(position[1])];
      if (entry === undefined) throw new MirrorError('NOT_FOUND', `${where} has no image @${position[1]}: it holds ${this.entries.length}`, { file: this.dir });
      return entry;
    }
    let matches = this.entries.filter((d) => d.annotations?.[ANNOTATION_REF_NAME] === ref);
    if (matches.length === 0) {
      // A full image reference: containerd's name, or a ref.name written as a reference (podman's `busybox:latest`).
      const wanted = fullNameOf(ref);
      if (wanted !== undefined) {
        const normalized = (v: string | undefined): string | undefined => {
          if (v === undefined) return undefined;
          const r = tryParseReference(v);
          return r === undefined || r.digest !== undefined ? undefined : formatReference(r);
        };
        matches = this.entries.filter((d) => normalized(d.annotations?.[ANNOTATION_IMAGE_NAME]) === wanted || (fullNameOf(d.annotations?.[ANNOTATION_REF_NAME] ?? '') ?? '') === wanted);
      }
    }
    const digests = new Set(matches.map((d) => d.digest));
    if (digests.size === 1) return matches[0]!;
    if (digests.size > 1) {
      throw new MirrorError('BAD_INPUT', `${where}:${clipInput(ref)} names ${digests.size} different images in index.json (${[...digests].slice(0, 3).join(', ')})`, { file: this.dir });
    }
    throw new MirrorError('NOT_FOUND', `${where} has no image named "${clipInput(ref)}" (it has ${this.listing() || 'none'})`, { file: this.dir });
  }

  /** manifestRel gives the path of a manifest inside the layout: a blob like any other. */
  protected manifestRel(digest: string): string {
    return this.blobRel(digest);
  }

  async manifest(_repository: string, digest: string, _options: SourceOpOptions = {}): Promise<ManifestBytes> {
    const rel = this.manifestRel(digest);
    const bytes = await this.readInside(rel, MAX_LAYOUT_MANIFEST_BYTES, 'manifest');
    if (bytes === undefined) throw new MirrorError('NOT_FOUND', `manifest ${digest} is missing from ${this.where}: ${join(this.dir, rel)} does not exist`, { file: join(this.dir, rel), digest });
    const actual = digestOf(bytes, digest.slice(0, digest.indexOf(':')));
    if (actual !== digest) throw new DigestMismatchError(digest, actual, { file: join(this.dir, rel) });
    return { digest, mediaType: declaredMediaType(bytes), bytes };
  }

  async openBlob(_repository: string, desc: Descriptor, options: SourceOpOptions & { offset?: number | undefined }): Promise<AsyncIterable<Uint8Array>> {
    return this.openBlobFile(this.blobRel(desc.digest), desc, options);
  }

  /** openBlobFile opens the file of a blob at an offset; a missing one is BAD_INPUT naming it. */
  protected async openBlobFile(rel: string, desc: Descriptor, options: SourceOpOptions & { offset?: number | undefined }): Promise<AsyncIterable<Uint8Array>> {
    const opened = await this.openInside(rel);
    if (opened === undefined) {
      throw new MirrorError('BAD_INPUT', `blob ${desc.digest} is missing from the layout: ${join(this.dir, rel)} does not exist`, { file: join(this.dir, rel), digest: desc.digest });
    }
    const stream = opened.handle.createReadStream({ start: options.offset ?? 0, highWaterMark: 256 * 1024, autoClose: true });
    if (options.signal !== undefined) addAbortSignal(options.signal, stream);
    return stream;
  }

  /**
   * referrers finds the manifests of index.json whose `subject` is `digest` (oras and regctl list referrers there),
   * and (unless `tagged: false`) entries named with cosign's `<alg>-<hex>.sig|.att|.sbom` tags. Entries whose
   * manifest is missing are skipped.
   */
  async referrers(_repository: string, digest: string, options: ReferrerQuery = {}): Promise<Referrer[]> {
    this.referrerMap ??= this.scanReferrers();
    const found = (await this.referrerMap).get(digest) ?? [];
    return options.tagged === false ? found.filter((r) => r.via !== 'tag') : found;
  }

  private async scanReferrers(): Promise<Map<string, Referrer[]>> {
    const map = new Map<string, Referrer[]>();
    const add = (subject: string, r: Referrer): void => {
      const list = map.get(subject) ?? [];
      if (!list.some((x) => x.descriptor.digest === r.descriptor.digest && x.tag === r.tag)) list.push(r);
      map.set(subject, list);
    };
    for (const d of this.entries.slice(0, MAX_REFERRER_SCAN)) {
      const tag = d.annotations?.[ANNOTATION_REF_NAME];
      const cosign = tag === undefined ? null : COSIGN_TAG.exec(tag);
      if (cosign) {
        add(`${cosign[1]}:${cosign[2]}`, { descriptor: d, via: 'tag', tag });
        continue;
      }
      if (d.size > MAX_LAYOUT_MANIFEST_BYTES) continue;
      let subject: unknown;
      try {
        const m = await this.manifest('', d.digest);
        subject = (parseJson(m.bytes) as { subject?: { digest?: unknown } }).subject?.digest;
      } catch {
        continue; // not readable here: not a referrer this copy can carry
      }
      if (typeof subject === 'string') add(subject, { descriptor: d, via: 'subject' });
    }
    return map;
  }

  /** tags lists the names of the layout's images (their `org.opencontainers.image.ref.name`). */
  async *tags(): AsyncGenerator<string, void, undefined> {
    const seen = new Set<string>();
    for (const d of this.entries) {
      const t = d.annotations?.[ANNOTATION_REF_NAME];
      if (t !== undefined && !seen.has(t)) {
        seen.add(t);
        yield t;
      }
    }
  }

  async close(): Promise<void> {}
}

/** declaredMediaType gives the `mediaType` a manifest declares, or '' (none, or not JSON: the engine parses and refuses it, naming the image). */
export function declaredMediaType(bytes: Uint8Array): string {
  try {
    const declared = (parseJson(bytes) as { mediaType?: unknown }).mediaType;
    return typeof declared === 'string' ? declared : '';
  } catch {
    return '';
  }
}

/** sniffManifestType guesses a manifest's media type from its fields, for a manifest named by digest alone. */
export function sniffManifestType(bytes: Uint8Array): string {
  try {
    const v = parseJson(bytes) as { manifests?: unknown; config?: unknown };
    return Array.isArray(v.manifests) ? MediaType.OCI_INDEX : MediaType.OCI_MANIFEST;
  } catch {
    return MediaType.OCI_MANIFEST;
  }
}

/** layoutImageName turns REF of `oci:DIR:REF` into the name the source resolves: a digest, or REF as written. */
function layoutImageName(ref: string | undefined): ImageName {
  if (ref !== undefined && ref.startsWith('@') && isValidDigest(ref.slice(1))) return { repository: '', digest: ref.slice(1) };
  return { repository: '', tag: ref };
}

/**
 * OCI_LAYOUT_TRANSPORT opens `oci:DIR[:REF]`: as a source, the layout above; as a destination, the OCI layout
 * destination (src/transport/oci-layout/destination.ts), where REF becomes the image's tag (its ref.name) and, when REF
 * is a full image reference, its recorded image name.
 */
export const OCI_LAYOUT_TRANSPORT: Transport = {
  async source(r: TransportRef): Promise<OpenedSource> {
    if (r.transport !== 'oci') throw new MirrorError('INTERNAL', `not an oci: location: ${r.transport}`);
    return { source: await openLayoutSource(r.path), image: layoutImageName(r.ref), name: formatTransportRef(r) };
  },
  async destination(r: TransportRef, ctx?: { dryRun?: boolean | undefined }): Promise<OpenedDestination> {
    if (r.transport !== 'oci') throw new MirrorError('INTERNAL', `not an oci: location: ${r.transport}`);
    if (r.ref?.startsWith('@')) throw new MirrorError('USAGE', `oci:${r.path}:${clipInput(r.ref)}: a destination is named by a tag or reference, not by a digest or position`);
    const name = formatTransportRef(r);
    return {
      destination: await openLayoutDestination(r.path, { dryRun: ctx?.dryRun }),
      // The layout records REF verbatim as ref.name (what skopeo and mirror look it up by), and the full reference
      // when REF is one as containerd's image name.
      image: { repository: '', tag: r.ref, name, refName: r.ref ?? '', annotationName: r.ref === undefined ? '' : (fullNameOf(r.ref) ?? r.ref) },
    };
  },
};
