/**
 * An OCI image layout directory as a destination (`oci:DIR`). Blobs are written to a temporary file, verified,
 * and only then renamed to `blobs/<alg>/<hex>`; `index.json` is written last, atomically, so the layout never
 * names anything that is not complete. Existing content is kept: pushing into a layout adds to it.
 *
 * DIR must be an OCI layout, a new or empty directory: a directory that holds other files and no `oci-layout`, or
 * whose `index.json` is not an OCI image index, is refused before anything is written, so that no file that is not
 * part of a layout is ever replaced. Nothing is written through a symbolic link that leads out of DIR (`blobs/`,
 * `blobs/<alg>/`, `index.json` and `oci-layout` are checked); a blob path that is such a link counts as absent, and
 * writing the blob replaces the link, never what it points at.
 */
import { randomBytes } from 'node:crypto';
import { createWriteStream, type Stats } from 'node:fs';
import { lstat, mkdir, readdir, readFile, readlink, realpath, rename, rm, stat, writeFile } from 'node:fs/promises';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { dirname, join, relative, resolve, sep } from 'node:path';
import { abortError, errorMessage, MirrorError } from '../../errors/index.js';
import { clipInput } from '../../errors/quote.js';
import { DigestCounter, isContentDigest, sha256Digest, verifyBytes, verifyingStream } from '../../oci/digest.js';
import { MediaType } from '../../oci/media-types.js';
import { type Descriptor, decodeJson, parseDescriptor } from '../../oci/manifest.js';
import { isFullReference } from '../../reference/reference.js';
import { ANNOTATION_IMAGE_NAME, ANNOTATION_REF_NAME } from '../bundle/layout-state.js';
import { updateLockedFile } from '../../files/locked-file.js';
import type { BlobBody, BlobResult, DestinationImage, ImageDestination, MountResult, PutBlobOptions } from '../types.js';

/** openLayoutDestination opens (creating when missing) an OCI image layout directory. */
export async function openLayoutDestination(dir: string, options: { dryRun?: boolean | undefined } = {}): Promise<ImageDestination> {
  const d = new LayoutDestination(dir);
  await d.init(options.dryRun === true);
  return d;
}

/** isInside tells whether `child` is `root` or below it (both absolute, resolved). */
function isInside(root: string, child: string): boolean {
  if (child === root) return true;
  const rel = relative(root, child);
  return rel !== '' && !rel.startsWith('..') && !rel.startsWith(sep) && !/^[A-Za-z]:/.test(rel);
}

/** lstatOrUndefined gives a path's own status (a link is not followed), or undefined when there is nothing there. */
export async function lstatOrUndefined(path: string): Promise<Stats | undefined> {
  try {
    return await lstat(path);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT' || (e as NodeJS.ErrnoException).code === 'ENOTDIR') return undefined;
    throw e;
  }
}

/**
 * writeBlobFile writes a blob to the new file `tmp`, verifying it against `expected` on the way (a known digest is
 * checked before the last chunk is written) or computing its digest, and gives its digest and size. On any failure,
 * and on an abort, `tmp` is removed; renaming it into place is the caller's.
 */
export async function writeBlobFile(
  tmp: string,
  expected: { digest?: string | undefined; size?: number | undefined },
  body: BlobBody,
  options: PutBlobOptions,
): Promise<BlobResult> {
  const signal = options.signal;
  try {
    if (body.kind === 'bytes') {
      // Bytes in memory (small blobs, manifests): checked whole, written in one call.
      if (expected.digest !== undefined) verifyBytes(body.data, expected.digest, expected.size, { phase: 'write' });
      await writeFile(tmp, body.data, { flag: 'wx', signal });
      options.onBytes?.(body.data.byteLength);
      return { digest: expected.digest ?? sha256Digest(body.data), size: body.data.byteLength };
    }
    const input = body.open();
    let n = 0;
    const onBytes = (k: number): void => {
      n += k;
      options.onBytes?.(k);
    };
    // A known digest is checked on the way (the last chunk is held until it matches); otherwise it is computed.
    const counter = expected.digest === undefined ? new DigestCounter() : undefined;
    const checked =
      counter === undefined
        ? verifyingStream(input, expected.digest as string, expected.size, { phase: 'write', onBytes })
        : (async function* hashed(): AsyncGenerator<Uint8Array> {
            for await (const chunk of input) {
              counter.update(chunk);
              yield chunk;
              onBytes(chunk.byteLength);
            }
          })();
    await pipeline(Readable.from(checked), createWriteStream(tmp, { flags: 'wx' }), signal ? { signal } : {});
    return { digest: expected.digest ?? (counter as DigestCounter).digest(), size: n };
  } catch (e) {
    await rm(tmp, { force: true });
    if (signal?.aborted) throw abortError(signal);
    throw e;
  }
}

/** MARKER_TEMP is the name of an `oci-layout` marker being written (see writeAtomically), by this run or another. */
const MARKER_TEMP = /^\.oci-layout\.[0-9a-f]{12}$/;

/** IndexChange is one change a run made to index.json. */
type IndexChange = { op: 'add'; entry: Descriptor } | { op: 'removeNamed'; name: string; keepRefName: boolean } | { op: 'removeDigestOnly'; digest: string };

/**
 * LayoutIndex is the layout's index.json entries in order, with the names they are recorded under indexed, so that
 * finding or replacing an image's entry does not walk every entry (a push of 6,000 images into one layout). Every
 * change after the entries read is logged, to be replayed on index.json as another writer may have left it.
 */
class LayoutIndex {
  private readonly entries = new Map<number, Descriptor>();
  private readonly byImage = new Map<string, Set<number>>();
  private readonly byRef = new Map<string, Set<number>>();
  /** Entries recorded by digest alone (no ref.name), by digest. */
  private readonly byDigestOnly = new Map<string, Set<number>>();
  private next = 0;

  /** The changes made since the entries read, in order. */
  readonly log: IndexChange[] = [];

  constructor(initial: Descriptor[] = []) {
    for (const e of initial) this.insert(e);
  }

  /** add appends an entry. */
  add(entry: Descriptor): void {
    this.apply({ op: 'add', entry });
  }

  /** removeNamed drops the entries recorded under an image name (and, unless `keepRefName`, under that ref.name). */
  removeNamed(name: string, keepRefName: boolean): void {
    this.apply({ op: 'removeNamed', name, keepRefName });
  }

  /** removeDigestOnly drops the entries that record a digest without a ref.name. */
  removeDigestOnly(digest: string): void {
    this.apply({ op: 'removeDigestOnly', digest });
  }

  /** replay applies the changes another index logged (see {@link log}). */
  replay(changes: readonly IndexChange[]): void {
    for (const c of changes) this.apply(c);
  }

  private apply(c: IndexChange): void {
    this.log.push(c);
    if (c.op === 'add') this.insert(c.entry);
    else if (c.op === 'removeNamed') {
      for (const id of [...(this.byImage.get(c.name) ?? [])]) this.remove(id);
      if (!c.keepRefName) for (const id of [...(this.byRef.get(c.name) ?? [])]) this.remove(id);
    } else for (const id of [...(this.byDigestOnly.get(c.digest) ?? [])]) this.remove(id);
  }

  private static put(map: Map<string, Set<number>>, key: string | undefined, id: number): void {
    if (key === undefined) return;
    let set = map.get(key);
    if (!set) map.set(key, (set = new Set()));
    set.add(id);
  }

  private static drop(map: Map<string, Set<number>>, key: string | undefined, id: number): void {
    if (key === undefined) return;
    const set = map.get(key);
    set?.delete(id);
    if (set?.size === 0) map.delete(key);
  }

  private insert(e: Descriptor): void {
    const id = this.next++;
    this.entries.set(id, e);
    LayoutIndex.put(this.byImage, e.annotations?.[ANNOTATION_IMAGE_NAME], id);
    LayoutIndex.put(this.byRef, e.annotations?.[ANNOTATION_REF_NAME], id);
    if (e.annotations?.[ANNOTATION_REF_NAME] === undefined) LayoutIndex.put(this.byDigestOnly, e.digest, id);
  }

  private remove(id: number): void {
    const e = this.entries.get(id);
    if (e === undefined) return;
    this.entries.delete(id);
    LayoutIndex.drop(this.byImage, e.annotations?.[ANNOTATION_IMAGE_NAME], id);
    LayoutIndex.drop(this.byRef, e.annotations?.[ANNOTATION_REF_NAME], id);
    if (e.annotations?.[ANNOTATION_REF_NAME] === undefined) LayoutIndex.drop(this.byDigestOnly, e.digest, id);
  }

  /** listsDigestOnly tells whether an entry records the digest without a ref.name. */
  listsDigestOnly(digest: string): boolean {
    return this.byDigestOnly.has(digest);
  }

  /** find gives the digest of the first entry recorded under an image name, or under a ref.name. */
  find(imageName: string, refName: string | undefined): string | undefined {
    let first: number | undefined;
    for (const id of this.byImage.get(imageName) ?? []) if (first === undefined || id < first) first = id;
    if (refName !== undefined) for (const id of this.byRef.get(refName) ?? []) if (first === undefined || id < first) first = id;
    return first === undefined ? undefined : this.entries.get(first)?.digest;
  }

  /** list gives the entries in order. */
  list(): Descriptor[] {
    return [...this.entries.values()];
  }
}

class LayoutDestination implements ImageDestination {
  readonly blobScope = 'global' as const;
  private index = new LayoutIndex();
  /** The annotations of the index.json found, written back. */
  private indexAnnotations: Record<string, string> | undefined;
  /** The layout's real path (DIR with its links resolved). */
  private root = '';
  /** Blob directories checked (and made) so far, by algorithm. */
  private readonly blobDirs = new Map<string, Promise<void>>();

  constructor(private readonly dir: string) {}

  get description(): string {
    return `OCI layout ${this.dir}`;
  }

  /** refuse is the error of a DIR this destination will not write into. */
  private refuse(why: string, fix: string): MirrorError {
    return new MirrorError('BAD_INPUT', `${why}; ${fix}`, { file: this.dir });
  }

  /**
   * checkedPath gives `DIR/rel` once it is known not to lead out of DIR: nothing there, a file or directory of DIR, or
   * a symbolic link whose target is inside DIR. `kind` says what it must be when it exists.
   */
  private async checkedPath(rel: string, kind: 'file' | 'directory'): Promise<{ path: string; exists: boolean }> {
    const path = join(this.dir, rel);
    const own = await lstatOrUndefined(path);
    if (own === undefined) return { path, exists: false };
    let st = own;
    if (own.isSymbolicLink()) {
      let target: string;
      try {
        target = await realpath(path);
      } catch {
        // A dangling link: where it would lead (writing a file there would create it).
        const to = resolve(dirname(path), await readlink(path));
        const out = !isInside(this.root, to) && !isInside(resolve(this.dir), to);
        throw this.refuse(
          out ? `${path} is a symbolic link that leads out of ${this.dir} (to ${clipInput(to)})` : `${path} is a symbolic link that leads nowhere`,
          'mirror writes only inside the layout directory; remove the link',
        );
      }
      if (!isInside(this.root, target)) {
        throw this.refuse(`${path} is a symbolic link that leads out of ${this.dir} (to ${clipInput(target)})`, 'mirror writes only inside the layout directory; remove the link');
      }
      st = await stat(target);
    }
    if (kind === 'directory' ? !st.isDirectory() : !st.isFile()) {
      throw this.refuse(`${path} is not a ${kind === 'directory' ? 'directory' : 'regular file'}, as an OCI layout has it`, 'give a new or empty directory, or an OCI layout');
    }
    return { path, exists: true };
  }

  /** init checks DIR and reads its index.json; it makes the layout (directory, oci-layout, blobs/) unless `dryRun`. */
  async init(dryRun = false): Promise<void> {
    try {
      // A dry run reads a layout that is there and makes none: a new one has nothing to read.
      if (dryRun && !(await stat(this.dir).then((s) => s.isDirectory(), () => false))) return;
      if (!dryRun) await mkdir(this.dir, { recursive: true });
      this.root = await realpath(this.dir);
      let marker = await this.checkedPath('oci-layout', 'file');
      if (!marker.exists) {
        // Not a layout (yet): only an empty directory becomes one; anything else is someone's files. Another run
        // making the same new layout at this moment shows as its marker being written (`.oci-layout.<hex>`, renamed
        // into place before anything else is made), or as the marker there by the time DIR is listed.
        const names = (await readdir(this.dir)).filter((n) => !MARKER_TEMP.test(n));
        if (names.includes('oci-layout')) marker = await this.checkedPath('oci-layout', 'file');
        else if (names.length > 0) {
          const shown = names.slice(0, 3).map((n) => clipInput(n, 40)).join(', ');
          throw this.refuse(
            `${this.dir} is not an OCI image layout (it has no oci-layout file) and is not empty (${shown}${names.length > 3 ? ', ...' : ''})`,
            'give a new or empty directory, or an OCI layout to add to',
          );
        }
      }
      if (marker.exists) {
        let layoutVersion: unknown;
        try {
          layoutVersion = (decodeJson(await readFile(marker.path), marker.path) as { imageLayoutVersion?: unknown } | null)?.imageLayoutVersion;
        } catch {
          layoutVersion = undefined;
        }
        if (typeof layoutVersion !== 'string') {
          throw this.refuse(`${marker.path} is not an OCI layout marker (no imageLayoutVersion)`, 'give a new or empty directory, or an OCI layout to add to');
        }
      }
      const indexFile = await this.checkedPath('index.json', 'file');
      await this.checkedPath('blobs', 'directory');
      if (indexFile.exists) this.index = new LayoutIndex(this.readIndex(indexFile.path, await readFile(indexFile.path)));
      if (dryRun) return;
      // The marker first: from then on DIR is a layout to every other writer, whatever it holds.
      if (!marker.exists) await this.writeAtomically('oci-layout', JSON.stringify({ imageLayoutVersion: '1.0.0' }));
      await this.blobDir('sha256');
    } catch (e) {
      if (e instanceof MirrorError) throw e;
      throw new MirrorError('BAD_INPUT', `cannot write the OCI layout ${this.dir}: ${errorMessage(e)}`, { file: this.dir, cause: e });
    }
  }

  /** readIndex reads an existing index.json, refusing anything that is not an OCI image index (it would be replaced). */
  private readIndex(path: string, bytes: Buffer): Descriptor[] {
    const notIndex = (why: string): MirrorError =>
      this.refuse(`${path} exists but is not an OCI image index (${why}), so it is not replaced`, 'give a new or empty directory, or an OCI layout to add to');
    let v: unknown;
    try {
      v = decodeJson(bytes, path);
    } catch (e) {
      throw notIndex(e instanceof MirrorError && /deeper/.test(e.message) ? 'it nests too deep' : 'not valid JSON');
    }
    if (typeof v !== 'object' || v === null || Array.isArray(v)) throw notIndex('not a JSON object');
    const o = v as Record<string, unknown>;
    if (o.schemaVersion !== 2) throw notIndex('schemaVersion is not 2');
    if (o.mediaType !== undefined && o.mediaType !== MediaType.OCI_INDEX) throw notIndex(`its mediaType is "${clipInput(o.mediaType)}"`);
    if (!Array.isArray(o.manifests)) throw notIndex('it has no manifests list');
    // The index's own annotations (a title, a creation time another tool wrote) are kept, as skopeo keeps them.
    if (typeof o.annotations === 'object' && o.annotations !== null && !Array.isArray(o.annotations)) {
      this.indexAnnotations = Object.fromEntries(Object.entries(o.annotations).filter((e): e is [string, string] => typeof e[1] === 'string'));
    }
    return o.manifests.map((d, i) => {
      try {
        return parseDescriptor(d, `${path} manifests[${i}]`, { file: this.dir });
      } catch (e) {
        throw notIndex(errorMessage(e));
      }
    });
  }

  /** blobDir makes sure `blobs/<alg>` is a directory of DIR (made when missing), once per algorithm. */
  private blobDir(algorithm: string): Promise<void> {
    let p = this.blobDirs.get(algorithm);
    if (p === undefined) {
      p = (async () => {
        await this.checkedPath('blobs', 'directory');
        const dir = await this.checkedPath(join('blobs', algorithm), 'directory');
        if (!dir.exists) await mkdir(dir.path, { recursive: true });
      })();
      this.blobDirs.set(algorithm, p);
      p.catch(() => this.blobDirs.delete(algorithm));
    }
    return p;
  }

  /** writeAtomically writes a file of DIR through a temporary file renamed over it (a link there is replaced, never followed). */
  private async writeAtomically(rel: string, data: string): Promise<void> {
    const tmp = join(this.dir, `.${rel}.${randomBytes(6).toString('hex')}`);
    try {
      await writeFile(tmp, data, { flag: 'wx' });
      await rename(tmp, join(this.dir, rel));
    } catch (e) {
      // A disk that filled up half-way leaves nothing behind; the error names the file.
      await rm(tmp, { force: true });
      throw new MirrorError('BAD_INPUT', `cannot write ${join(this.dir, rel)}: ${errorMessage(e)}`, { file: join(this.dir, rel), cause: e });
    }
  }

  private blobPath(digest: string): { algorithm: string; path: string } {
    const i = digest.indexOf(':');
    const algorithm = digest.slice(0, i);
    return { algorithm, path: join(this.dir, 'blobs', algorithm, digest.slice(i + 1)) };
  }

  async hasBlob(_repository: string, digest: string): Promise<boolean> {
    const { path } = this.blobPath(digest);
    try {
      const own = await lstat(path);
      if (own.isFile()) return true;
      // A link counts only when it stays inside the layout (writing the blob replaces any other).
      return own.isSymbolicLink() && isInside(this.root, await realpath(path)) && (await stat(path)).isFile();
    } catch {
      return false;
    }
  }

  async mountBlob(): Promise<MountResult> {
    return { mounted: false };
  }

  async cancelSession(): Promise<void> {}

  async putBlob(_repository: string, expected: { digest?: string | undefined; size?: number | undefined }, body: BlobBody, options: PutBlobOptions): Promise<BlobResult> {
    const tmp = join(this.dir, 'blobs', `.tmp-${randomBytes(8).toString('hex')}`);
    const written = await writeBlobFile(tmp, expected, body, options);
    try {
      const { algorithm, path } = this.blobPath(written.digest);
      await this.blobDir(algorithm);
      await rename(tmp, path);
      return written;
    } catch (e) {
      await rm(tmp, { force: true });
      throw e;
    }
  }

  async manifestDigest(repository: string, reference: string): Promise<string | undefined> {
    // By digest (`oci:DIR` with no REF), an image is here when index.json lists it so, as skopeo records it: its
    // manifest stored as the child of an index, or named by a tag, does not make it reachable by digest.
    if (isContentDigest(reference)) return this.index.listsDigestOnly(reference) && (await this.hasBlob(repository, reference)) ? reference : undefined;
    // Pushed images are named `registry/repository:tag`; an image copied in as `oci:DIR:REF` by its ref.name alone.
    return this.index.find(`${repository}:${reference}`, repository === '' ? reference : undefined);
  }

  async putManifest(
    image: DestinationImage,
    reference: string,
    bytes: Uint8Array,
    mediaType: string,
    options: { root?: boolean | undefined; descriptor?: Descriptor | undefined },
  ): Promise<void> {
    // A REF with ':' may be a name (`busybox:1.36`, `host:5000/app:1.0`): only a digest of a known algorithm is one.
    const isDigest = isContentDigest(reference);
    const digest = isDigest ? reference : undefined;
    const written = await this.putBlob(image.repository, { digest, size: digest ? bytes.byteLength : undefined }, { kind: 'bytes', data: bytes }, {});
    if (isDigest && !options.root) return;
    const name = image.refName ?? image.annotationName ?? image.name;
    const fullName = image.annotationName ?? name;
    // The source entry's annotations (creation time, title...), platform and artifactType are kept; the names are
    // this layout's own. org.opencontainers.image.ref.name holds the full reference, which skopeo accepts after
    // `oci:DIR:` and containerd and docker read as a full name, so two images that share a tag stay apart.
    const source = options.descriptor?.digest === written.digest ? options.descriptor : undefined;
    const annotations: Record<string, string> = { ...(source?.annotations ?? {}) };
    delete annotations[ANNOTATION_REF_NAME];
    // An empty name (`oci:DIR` with no REF) records the image by digest alone, as skopeo does.
    // containerd's image-name annotation holds full references only (`oci:DIR:1.0` records ref.name `1.0` alone).
    if (fullName !== '' && isFullReference(fullName)) annotations[ANNOTATION_IMAGE_NAME] = fullName;
    if (!isDigest && name !== '') annotations[ANNOTATION_REF_NAME] = name;
    const entry: Descriptor = {
      mediaType,
      digest: written.digest,
      size: bytes.byteLength,
      ...(source?.platform !== undefined ? { platform: source.platform } : {}),
      ...(source?.artifactType !== undefined ? { artifactType: source.artifactType } : {}),
      annotations,
    };
    // An entry is replaced by the name it was recorded under: its full reference, or its ref.name.
    if (name === '') this.index.removeDigestOnly(written.digest);
    else this.index.removeNamed(name, isDigest);
    this.index.add(entry);
  }

  /**
   * registerReferrer lists a referrer found by its subject (an SBOM, a signature of OCI 1.1) in index.json, unnamed,
   * where OCI layout readers (oras, regctl, `mirror inspect`) look for it.
   */
  async registerReferrer(_repository: string, _subject: string, referrer: Descriptor): Promise<void> {
    this.index.removeDigestOnly(referrer.digest);
    this.index.add({ ...referrer });
  }

  /**
   * commit writes index.json under a lock (`index.json.lock`), replaying this run's changes on the file as it is
   * then: two runs writing into one layout at once each keep the other's entries (reading it once at the start and
   * writing it whole at the end lost them).
   */
  async commit(): Promise<void> {
    const path = join(this.dir, 'index.json');
    const changes = this.index.log;
    try {
      await updateLockedFile(
        path,
        (current) => {
          const now = current === undefined ? this.index : new LayoutIndex(this.readIndex(path, Buffer.from(current, 'utf8')));
          if (now !== this.index) now.replay(changes);
          return JSON.stringify({
            schemaVersion: 2,
            mediaType: MediaType.OCI_INDEX,
            manifests: now.list(),
            ...(this.indexAnnotations !== undefined ? { annotations: this.indexAnnotations } : {}),
          });
        },
        { mode: 0o644, phase: 'write', writers: 'mirror copy or push into this layout' },
      );
    } catch (e) {
      if (e instanceof MirrorError) throw e;
      throw new MirrorError('BAD_INPUT', `cannot write ${path}: ${errorMessage(e)}`, { file: path, cause: e });
    }
  }

  async close(): Promise<void> {}
}
