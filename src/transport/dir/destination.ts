/**
 * A `dir:` image as a destination (`dir:DIR`), written as skopeo writes one (`skopeo copy ... dir:DIR`) and as the
 * `dir:` source (./source.ts), skopeo, podman and buildah read it: `version` ("Directory Transport Version: 1.1"),
 * each blob in a file named by the hex of its digest, the instances of an index in `<hex>.manifest.json`, and the
 * image's own manifest in `manifest.json`.
 *
 * DIR holds one image. It must be new, empty, or a `dir:` image (it has a `version` file): anything else is someone's
 * files and is refused before anything is written. An existing image is replaced without ever being half-written:
 * blobs go to temporary files, verified, then renamed to their content-addressed names; `manifest.json` is renamed
 * into place at commit, last, and only then are the files the old image alone used removed (its blobs, instance
 * manifests and, when the image changed, its `signature-N` files). A run that fails or is stopped before commit
 * removes the files it added (and DIR, when it made it). An image already there, same digest, is not copied again.
 */
import { randomBytes } from 'node:crypto';
import { constants } from 'node:fs';
import { copyFile, link, mkdir, readdir, readFile, realpath, rename, rm, rmdir, stat, writeFile } from 'node:fs/promises';
import { dirname, join, resolve } from 'node:path';
import { errorMessage, MirrorError } from '../../errors/index.js';
import { clipInput } from '../../errors/quote.js';
import { digestHex, isContentDigest, sha256Digest, verifyBytes } from '../../oci/digest.js';
import { type Descriptor, parseManifest } from '../../oci/manifest.js';
import { MAX_LAYOUT_MANIFEST_BYTES } from '../oci-layout/source.js';
import { lstatOrUndefined, writeBlobFile } from '../oci-layout/destination.js';
import { formatTransportRef, type TransportRef } from '../refs.js';
import type { OpenedDestination } from '../index.js';
import type { BlobBody, BlobResult, DestinationCapabilities, DestinationImage, ImageDestination, MountResult, PutBlobOptions } from '../types.js';
import { DIR_VERSION } from './source.js';

/** DIR_VERSION_TEXT is the `version` file mirror writes, as containers/image 5.x writes it. */
export const DIR_VERSION_TEXT = 'Directory Transport Version: 1.1\n';

/** CONTENT_FILE matches the files a `dir:` image names by digest: blobs and the instance manifests of an index. */
const CONTENT_FILE = /^(?:[0-9a-f]{64}|[0-9a-f]{128})(?:\.manifest\.json)?$/;

/** SIGNATURE_FILE matches the signatures containers/image stores beside a `dir:` image's manifest. */
const SIGNATURE_FILE = /^signature-\d+$/;

/** TEMP_FILE matches the temporary files of a run (`.tmp-<hex>`), which a killed run may leave. */
const TEMP_FILE = /^\.tmp-[0-9a-f]{16}$/;

/** fileKind gives what is at `path` without following a link: 'file', 'other', or undefined when nothing is there. */
async function fileKind(path: string): Promise<'file' | 'other' | undefined> {
  const own = await lstatOrUndefined(path);
  return own === undefined ? undefined : own.isFile() ? 'file' : 'other';
}

/** openDirDestination opens `dir` to receive one image (creating it when missing, unless `dryRun`). */
export async function openDirDestination(dir: string, options: { dryRun?: boolean | undefined } = {}): Promise<ImageDestination> {
  const d = new DirDestination(dir);
  await d.init(options.dryRun === true);
  return d;
}

/** DirDestination writes one image into a `dir:` directory. */
export class DirDestination implements ImageDestination {
  readonly blobScope = 'global' as const;
  readonly capabilities: DestinationCapabilities = { blobScope: 'global', writeOrder: 'blobs-first', parallelBlobWrites: true, referrers: false };
  /** DIR resolved (a link to it is followed once, at open). */
  private root: string;
  /** The digest of the manifest.json found at open, if any. */
  private existing: string | undefined;
  /** The first directory this run made on the way to DIR (DIR itself, or a parent), if it made DIR. */
  private madeFrom: string | undefined;
  /** Names this run added to DIR (absent before): removed if the run ends without commit. */
  private readonly added = new Set<string>();
  /** The manifests of an index written this run, by digest. */
  private readonly instances = new Map<string, Uint8Array>();
  /** The image's own manifest, written as manifest.json at commit. */
  private top: { digest: string; bytes: Uint8Array } | undefined;
  private ended = false;

  constructor(private readonly dir: string) {
    this.root = dir;
  }

  get description(): string {
    return `directory ${this.dir}`;
  }

  private get where(): string {
    return `dir:${this.dir}`;
  }

  private fail(why: string, cause?: unknown, hint?: string): MirrorError {
    return new MirrorError('BAD_INPUT', `cannot write ${this.where}: ${why}`, { file: this.dir, cause, hint });
  }

  /** init checks DIR (new, empty, or a dir: image) and reads the manifest.json there; it writes `version` unless `dryRun`. */
  async init(dryRun: boolean): Promise<void> {
    try {
      const there = await stat(this.dir).catch((e: NodeJS.ErrnoException) => {
        if (e.code === 'ENOENT') return undefined;
        throw e;
      });
      if (there === undefined) {
        if (dryRun) return;
        this.madeFrom = await mkdir(this.dir, { recursive: true });
      } else if (!there.isDirectory()) {
        throw this.fail('it is not a directory', undefined, 'for an archive use oci-archive:FILE or docker-archive:FILE');
      }
      this.root = await realpath(this.dir);
      const names = (await readdir(this.root)).filter((n) => !TEMP_FILE.test(n));
      const version = names.includes('version') ? await this.readSmall('version', 1024) : undefined;
      if (names.length > 0 && (version === undefined || !DIR_VERSION.test(version.toString('utf8').trim()))) {
        const shown = names.slice(0, 3).map((n) => clipInput(n, 40)).join(', ') + (names.length > 3 ? ', ...' : '');
        throw this.fail(
          version === undefined ? `it is not empty (${shown}) and is not a dir: image (it has no version file)` : 'its version file is not that of a dir: image',
          undefined,
          'give a new or empty directory, or a dir: image to replace',
        );
      }
      const manifest = await this.readSmall('manifest.json', MAX_LAYOUT_MANIFEST_BYTES);
      if (manifest !== undefined) this.existing = sha256Digest(manifest);
      if (!dryRun && version === undefined) await this.writeFileAtomically('version', DIR_VERSION_TEXT);
    } catch (e) {
      if (e instanceof MirrorError) throw e;
      throw this.fail(errorMessage(e), e);
    }
  }

  /** readSmall reads a regular file of DIR of at most `max` bytes; undefined when it is missing or not a regular file. */
  private async readSmall(name: string, max: number): Promise<Buffer | undefined> {
    const path = join(this.root, name);
    const own = await lstatOrUndefined(path);
    if (own === undefined || !own.isFile()) return undefined;
    if (own.size > max) throw this.fail(`${name} is larger than ${max} bytes`);
    return readFile(path);
  }

  /** place renames a written temporary file to `name` (a link there is replaced, never followed). */
  private async place(tmp: string, name: string): Promise<void> {
    const path = join(this.root, name);
    const before = await fileKind(path);
    try {
      await rename(tmp, path);
    } catch (e) {
      await rm(tmp, { force: true });
      throw this.fail(`${name}: ${errorMessage(e)}`, e);
    }
    if (before === undefined) this.added.add(name);
  }

  private tempPath(): string {
    return join(this.root, `.tmp-${randomBytes(8).toString('hex')}`);
  }

  /** writeFileAtomically writes a small file of DIR through a temporary file renamed over it. */
  private async writeFileAtomically(name: string, data: string | Uint8Array): Promise<void> {
    const tmp = this.tempPath();
    try {
      await writeFile(tmp, data, { flag: 'wx' });
    } catch (e) {
      await rm(tmp, { force: true });
      throw this.fail(`${name}: ${errorMessage(e)}`, e);
    }
    await this.place(tmp, name);
  }

  async hasBlob(_repository: string, digest: string): Promise<boolean> {
    return isContentDigest(digest) && (await fileKind(join(this.root, digestHex(digest)))) === 'file';
  }

  async mountBlob(): Promise<MountResult> {
    return { mounted: false };
  }

  async cancelSession(): Promise<void> {}

  async putBlob(_repository: string, expected: { digest?: string | undefined; size?: number | undefined }, body: BlobBody, options: PutBlobOptions): Promise<BlobResult> {
    if (expected.digest !== undefined && !isContentDigest(expected.digest)) throw this.fail(`the digest ${expected.digest} has no known algorithm`);
    const tmp = this.tempPath();
    const written = await writeBlobFile(tmp, expected, body, options);
    await this.place(tmp, digestHex(written.digest));
    return written;
  }

  /**
   * manifestDigest gives the digest of the image DIR holds: asked by digest, only when it is that one; asked by a tag
   * (a tree of images names each directory by its tag), whichever it is, as DIR is that tag.
   */
  async manifestDigest(_repository: string, reference: string): Promise<string | undefined> {
    if (this.existing === undefined) return undefined;
    return !isContentDigest(reference) || reference === this.existing ? this.existing : undefined;
  }

  async putManifest(_image: DestinationImage, reference: string, bytes: Uint8Array, _mediaType: string, options: { root?: boolean | undefined }): Promise<void> {
    let digest: string;
    if (isContentDigest(reference)) {
      verifyBytes(bytes, reference, bytes.byteLength, { phase: 'write' });
      digest = reference;
    } else digest = sha256Digest(bytes);
    if (options.root) {
      if (this.top !== undefined && this.top.digest !== digest) {
        throw this.fail(`a dir: directory holds one image (${this.top.digest} is written already, not ${digest})`, undefined, 'copy each image into its own directory');
      }
      this.top = { digest, bytes };
      return;
    }
    const name = `${digestHex(digest)}.manifest.json`;
    this.instances.set(digest, bytes);
    await this.writeFileAtomically(name, bytes);
  }

  /** referenced gives the files the image being committed needs: its instance manifests and every blob they name. */
  private async referenced(top: { digest: string; bytes: Uint8Array }): Promise<Set<string>> {
    const keep = new Set<string>(['version', 'manifest.json']);
    const blobsOf = (d: Descriptor[]): void => d.forEach((x) => keep.add(digestHex(x.digest)));
    const walk = async (bytes: Uint8Array, digest: string, depth: number): Promise<void> => {
      const m = parseManifest(bytes, undefined, { digest, file: this.dir });
      if (m.kind === 'image') {
        blobsOf([m.manifest.config, ...m.manifest.layers]);
        return;
      }
      if (depth > 0) return;
      for (const child of m.index.manifests) {
        const name = `${digestHex(child.digest)}.manifest.json`;
        keep.add(name);
        const childBytes = this.instances.get(child.digest) ?? (await this.readSmall(name, MAX_LAYOUT_MANIFEST_BYTES));
        if (childBytes !== undefined) await walk(childBytes, child.digest, depth + 1);
      }
    };
    await walk(top.bytes, top.digest, 0);
    return keep;
  }

  /**
   * commit writes manifest.json, then removes what only the image it replaces used: blobs and instance manifests no
   * longer named, and that image's signatures (kept when the image is the same).
   */
  async commit(): Promise<void> {
    const top = this.top;
    if (top === undefined || this.ended) {
      this.ended = true;
      return;
    }
    const keep = await this.referenced(top);
    await this.writeFileAtomically('manifest.json', top.bytes);
    this.ended = true;
    const replaced = this.existing !== undefined && this.existing !== top.digest;
    for (const name of await readdir(this.root)) {
      const stale = (CONTENT_FILE.test(name) && !keep.has(name)) || (replaced && SIGNATURE_FILE.test(name));
      if (stale) await rm(join(this.root, name), { force: true });
    }
    this.existing = top.digest;
  }

  /**
   * adopt places a blob from a file of another `dir:` image of this run (a hard link, else a copy), as a registry
   * mounts one: false when that file is not there.
   */
  async adopt(digest: string, from: string): Promise<boolean> {
    if (!isContentDigest(digest) || (await fileKind(from)) !== 'file') return false;
    const tmp = this.tempPath();
    try {
      await link(from, tmp).catch(() => copyFile(from, tmp, constants.COPYFILE_EXCL));
    } catch (e) {
      await rm(tmp, { force: true });
      if ((e as NodeJS.ErrnoException).code === 'ENOENT') return false;
      throw this.fail(`${digestHex(digest)}: ${errorMessage(e)}`, e);
    }
    await this.place(tmp, digestHex(digest));
    return true;
  }

  /**
   * close removes what a run that did not commit added, and the directories it made on the way to DIR when nothing
   * else is in them.
   */
  async close(): Promise<void> {
    if (this.ended) return;
    this.ended = true;
    for (const name of this.added) await rm(join(this.root, name), { force: true });
    if (this.madeFrom === undefined) return;
    // Walked up as written (not through links), from DIR to the first directory made.
    const top = resolve(this.madeFrom);
    for (let d = resolve(this.dir); d.startsWith(top); d = dirname(d)) {
      if (!(await rmdir(d).then(() => true, () => false)) || d === top) break;
    }
  }
}

/** openDirDestinationRef opens `dir:DIR` as the destination of one image. */
export async function openDirDestinationRef(r: TransportRef, ctx?: { dryRun?: boolean | undefined }): Promise<OpenedDestination> {
  if (r.transport !== 'dir') throw new MirrorError('INTERNAL', `not a dir: location: ${r.transport}`);
  const name = formatTransportRef(r);
  return { destination: await openDirDestination(r.path, { dryRun: ctx?.dryRun }), image: { repository: '', name } };
}
