/**
 * A bundle, once its pass is over, as a random-access {@link ImageSource} for the copy engine: images are addressed
 * by their root digest (`{repository: '', digest}`), manifests are the catalog's verified bytes (plus indexes the
 * caller made by choosing platforms), and a blob's bytes are those the bundle still holds (small blobs kept in memory,
 * a directory bundle's files). A blob whose bytes went by in the stream cannot be given: the source says so before
 * an upload starts ({@link ImageSource.unavailable}) and asks its placer to read that entry again for the repository
 * that needs it, so the caller can run the image again after a re-read pass.
 */
import { MirrorError } from '../../errors/index.js';
import type { Descriptor } from '../../oci/manifest.js';
import type { Catalog, ImageName, ImageSource, ManifestBytes, SourceOpOptions } from '../types.js';
import { oneChunk, skipBytes } from '../chunks.js';
import { blobPathOf } from './layout-state.js';
import type { BundlePlacer } from './placer.js';

/** BlobWentByError says a blob's bytes went by in the bundle stream: a re-read pass can give them again. */
export class BlobWentByError extends MirrorError {
  constructor(
    readonly digest: string,
    readonly key: string,
  ) {
    super('BAD_INPUT', `blob ${digest} went by in the bundle stream and must be read again`, { digest });
  }
}

/** CatalogManifest is a manifest the source serves: its verified bytes and media type. */
export interface CatalogManifest {
  digest: string;
  mediaType: string;
  bytes: Uint8Array;
}

/** The placer's side the source reads: held bytes, reopenable bodies, problems, and re-read requests. */
export type PlacedBlobs = Pick<BundlePlacer, 'held' | 'reopen' | 'problem' | 'keyOf' | 'rereadLater' | 'failedBlobs' | 'settling'>;

/**
 * CatalogSource serves a bundle's catalog. Manifests it can give are registered with {@link addManifest} (the
 * caller verifies them while it plans); {@link forImage} gives the view one copy job reads through.
 */
export class CatalogSource {
  private readonly manifests = new Map<string, CatalogManifest>();
  private readonly roots = new Map<string, Descriptor>();
  private catalog: Catalog;

  constructor(
    catalog: Catalog,
    private readonly placed: PlacedBlobs,
    readonly description: string,
  ) {
    this.catalog = catalog;
  }

  /** update takes the catalog of a later pass (a re-read pass builds it again). */
  update(catalog: Catalog): void {
    this.catalog = catalog;
  }

  /** addManifest registers a manifest's verified bytes (from the catalog, or an index made by choosing platforms). */
  addManifest(m: CatalogManifest): void {
    this.manifests.set(m.digest, m);
  }

  /** addRoot registers an image's root descriptor, so `resolve({digest})` finds it. */
  addRoot(desc: Descriptor): void {
    this.roots.set(desc.digest, desc);
  }

  /**
   * forImage gives the source one copy job reads through: blobs it cannot give are asked to be read again for
   * `destinationRepository`, and {@link CatalogImageSource.wentBy} then tells the job must run again.
   */
  forImage(destinationRepository: string): CatalogImageSource {
    return new CatalogImageSource(this, destinationRepository);
  }

  /** root gives a root descriptor by digest. */
  root(digest: string): Descriptor | undefined {
    return this.roots.get(digest);
  }

  /** manifestOf gives a registered manifest. */
  manifestOf(digest: string): CatalogManifest | undefined {
    return this.manifests.get(digest);
  }

  /** bytesOf gives the bytes the bundle still holds for a blob. */
  bytesOf(digest: string): Uint8Array | undefined {
    return this.placed.held(digest) ?? this.catalog.bytes(digest);
  }

  /** reopenOf gives a reopenable body for a blob (a directory bundle). */
  reopenOf(digest: string): (() => AsyncIterable<Uint8Array>) | undefined {
    return this.placed.reopen(digest);
  }

  /** check gives a problem with a descriptor: bytes that did not verify, or a declared size that does not match. */
  check(desc: Descriptor): MirrorError | undefined {
    return this.placed.problem(desc.digest) ?? this.catalog.problem?.(desc.digest, desc.size);
  }

  /** holds tells whether the bundle holds a blob (asked for non-distributable layers). */
  holds(digest: string): boolean {
    return this.catalog.has?.(digest) ?? false;
  }

  /** settling gives the pass's upload of a blob still in flight, as the repositories holding it once settled. */
  settling(digest: string): Promise<Iterable<string>> | undefined {
    return this.placed.settling(digest);
  }

  /**
   * unavailable gives, for a blob the bundle cannot give now, why: it failed while placed, it went by in the stream
   * (then a re-read for `repository` is asked for), or the bundle lacks it.
   */

  unavailable(desc: Descriptor, repository: string): MirrorError | undefined {
    const d = desc.digest;
    if (this.bytesOf(d) !== undefined || this.reopenOf(d) !== undefined) return undefined;
    const failed = this.placed.failedBlobs.get(d);
    if (failed) return failed;
    // A blob the bundle may have let go by as unneeded (before an index.json that replaced the first) is looked for by its path.
    const key = this.placed.keyOf(d) ?? (this.catalog.mayHavePassed?.(d) === true ? blobPathOf(d) : undefined);
    if (key !== undefined) {
      this.placed.rereadLater(key, repository);
      return new BlobWentByError(d, key);
    }
    return new MirrorError('BAD_INPUT', `blob ${d} is missing from the bundle`, { digest: d });
  }
}

/** CatalogImageSource is the {@link ImageSource} one copy job reads a bundle's catalog through. */
export class CatalogImageSource implements ImageSource {
  readonly kind = 'random' as const;
  readonly description: string;
  readonly manifestsInMemory = true;
  /** Set when a blob of this job went by in the stream: the job must run again after a re-read pass. */
  wentBy = false;

  constructor(
    private readonly catalog: CatalogSource,
    private readonly destinationRepository: string,
  ) {
    this.description = catalog.description;
  }

  async resolve(name: ImageName, _options: SourceOpOptions): Promise<Descriptor> {
    const root = name.digest === undefined ? undefined : this.catalog.root(name.digest);
    if (root === undefined) throw new MirrorError('NOT_FOUND', `${name.digest ?? name.tag ?? 'image'} is not in the bundle`);
    return root;
  }

  async manifest(_repository: string, digest: string, _options: SourceOpOptions): Promise<ManifestBytes> {
    const m = this.catalog.manifestOf(digest);
    if (m === undefined) throw new MirrorError('BAD_INPUT', `manifest ${digest} is missing from the bundle`, { digest });
    return { digest: m.digest, mediaType: m.mediaType, bytes: m.bytes };
  }

  async openBlob(_repository: string, desc: Descriptor, options: SourceOpOptions & { offset?: number | undefined }): Promise<AsyncIterable<Uint8Array>> {
    const offset = options.offset ?? 0;
    const bytes = this.catalog.bytesOf(desc.digest);
    if (bytes !== undefined) return oneChunk(bytes.subarray(Math.min(offset, bytes.byteLength)));
    const open = this.catalog.reopenOf(desc.digest);
    if (open !== undefined) return skipBytes(open(), offset);
    throw this.unavailable(desc) ?? new MirrorError('BAD_INPUT', `blob ${desc.digest} is missing from the bundle`, { digest: desc.digest });
  }

  check(desc: Descriptor): MirrorError | undefined {
    return this.catalog.check(desc);
  }

  holds(digest: string): boolean {
    return this.catalog.holds(digest);
  }

  settling(digest: string): Promise<Iterable<string>> | undefined {
    return this.catalog.settling(digest);
  }

  heldBytes(desc: Descriptor): Uint8Array | undefined {
    return this.catalog.bytesOf(desc.digest);
  }

  unavailable(desc: Descriptor): MirrorError | undefined {
    const e = this.catalog.unavailable(desc, this.destinationRepository);
    if (e instanceof BlobWentByError) this.wentBy = true;
    return e;
  }

  async close(): Promise<void> {}
}
