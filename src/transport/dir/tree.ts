/**
 * A tree of `dir:` images as one destination (`mirror sync --dest dir ... DEST`, as `skopeo sync --dest dir` writes
 * one): each "repository" of the engine is an image directory under DEST, named by the plan (`busybox:1.36`,
 * `quay.io/team/app:1.0` with `--scoped`), and its tag names the image the directory holds. Each image is written by ./destination.ts and finished (its manifest.json
 * renamed in, the old image's leftovers removed) the moment its manifest is put: a run stopped half-way leaves every
 * finished image whole and no other half-written. A blob already placed in another image of the run is hard-linked
 * (or copied) instead of sent again, as a registry mounts one. An image that fails is cleaned up when the run closes.
 */
import { join } from 'node:path';
import { MirrorError } from '../../errors/index.js';
import { digestHex } from '../../oci/digest.js';
import type { BlobBody, BlobResult, DestinationCapabilities, DestinationImage, ImageDestination, MountResult, PutBlobOptions } from '../types.js';
import { DirDestination } from './destination.js';

/** isSafeRelative tells whether `rel` is a path of names under a root (no `..`, `.`, empty or absolute part). */
export function isSafeRelative(rel: string): boolean {
  return rel !== '' && rel.split('/').every((p) => p !== '' && p !== '.' && p !== '..' && !p.includes('\\') && !p.includes('\0'));
}

/** DirTreeDestination writes each image of a run into its own `dir:` directory under a root. */
export class DirTreeDestination implements ImageDestination {
  readonly blobScope = 'repository' as const;
  readonly capabilities: DestinationCapabilities = { blobScope: 'repository', writeOrder: 'blobs-first', parallelBlobWrites: true, referrers: false };
  /** The images opened and not yet finished, by their path under the root. */
  private readonly open = new Map<string, Promise<DirDestination>>();

  constructor(
    private readonly root: string,
    private readonly dryRun: boolean,
  ) {}

  get description(): string {
    return `directory ${this.root}`;
  }

  /** image opens (once) the image directory `rel` under the root. */
  private image(rel: string): Promise<DirDestination> {
    let p = this.open.get(rel);
    if (p === undefined) {
      if (!isSafeRelative(rel)) throw new MirrorError('BAD_INPUT', `"${rel.slice(0, 200)}" cannot name a directory under ${this.root}`, { file: this.root });
      const d = new DirDestination(join(this.root, ...rel.split('/')));
      p = d.init(this.dryRun).then(() => d);
      this.open.set(rel, p);
    }
    return p;
  }

  async hasBlob(repository: string, digest: string): Promise<boolean> {
    return (await this.image(repository)).hasBlob(repository, digest);
  }

  async mountBlob(repository: string, digest: string, from: string): Promise<MountResult> {
    if (!isSafeRelative(from)) return { mounted: false };
    // The image it was placed in may be finished (and closed) already: its file is where it was written.
    return { mounted: await (await this.image(repository)).adopt(digest, join(this.root, ...from.split('/'), digestHex(digest))) };
  }

  async cancelSession(): Promise<void> {}

  async putBlob(repository: string, expected: { digest?: string | undefined; size?: number | undefined }, body: BlobBody, options: PutBlobOptions): Promise<BlobResult> {
    return (await this.image(repository)).putBlob(repository, expected, body, options);
  }

  async manifestDigest(repository: string, reference: string): Promise<string | undefined> {
    return (await this.image(repository)).manifestDigest(repository, reference);
  }

  /** putManifest writes an image's manifest; its own (root) manifest finishes the image at once. */
  async putManifest(image: DestinationImage, reference: string, bytes: Uint8Array, mediaType: string, options: { root?: boolean | undefined }): Promise<void> {
    const d = await this.image(image.repository);
    await d.putManifest(image, reference, bytes, mediaType, options);
    if (!options.root) return;
    await d.commit();
    await d.close();
    this.open.delete(image.repository);
  }

  /** Every image is finished as its manifest is put. */
  async commit(): Promise<void> {}

  /** close removes what images that did not finish added. */
  async close(): Promise<void> {
    const left = [...this.open.values()];
    this.open.clear();
    for (const p of left) await p.then((d) => d.close(), () => {});
  }
}
