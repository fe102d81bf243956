/**
 * The contracts between the copy engine and the ends it copies between. The engine imports only this file;
 * adding a kind of source or destination is a folder implementing one of these and one line in `./index.ts`.
 */
import type { MirrorError } from '../errors/index.js';
import type { Descriptor } from '../oci/manifest.js';
import type { ImageReference } from '../reference/reference.js';

/** BlobBody is the content of a blob handed to a destination: bytes in memory, or a stream. */
export type BlobBody =
  | { kind: 'bytes'; data: Uint8Array }
  /** `open` may be called again only when `reopenable` (a file, a registry); a bundle stream can be read once. */
  | { kind: 'stream'; open: () => AsyncIterable<Uint8Array>; reopenable: boolean };

/** BlobResult is what a blob turned out to be once written. */
export interface BlobResult {
  digest: string;
  size: number;
}

/** SourceImage is one image (or index) a source offers. */
export interface SourceImage {
  /** The normalized full source reference (tag and/or digest). Undefined when the source gives no usable name. */
  reference: ImageReference | undefined;
  /** The name as written in the source, for messages (`gcr.io/x/y:1.0`, `index.json manifests[3]`). */
  name: string;
  /** The root descriptor: an image manifest or an index. */
  descriptor: Descriptor;
  /** Set when the source changed the image on the way (docker-save layers compressed): what changed. */
  converted?: string | undefined;
  /** A problem found while reading this image; the image fails, the others go on. */
  error?: MirrorError | undefined;
}

/** Catalog is what a stream source knows once it has read its input. */
export interface Catalog {
  /** Every image found. */
  images: SourceImage[];
  /** Bytes of a manifest, or of a small blob kept in memory (configs), by digest. */
  bytes(digest: string): Uint8Array | undefined;
  /** Media type the source declares for a manifest digest, if it knows one. */
  mediaTypeOf(digest: string): string | undefined;
  /**
   * A problem with a blob found while reading (bytes that do not match the digest), if any; given the size a descriptor
   * declares, also a size that does not match the bytes.
   */
  problem?(digest: string, declaredSize?: number): MirrorError | undefined;
  /**
   * Whether the source holds a blob at all. Asked for foreign and non-distributable layers, which are pushed when the
   * source holds them and left to their URLs when it does not. Default: it holds none of them.
   */
  has?(digest: string): boolean;
  /** The bundle's file when it is an OCI layout that also holds docker save's `manifest.json` (as Docker 25+ writes). */
  dockerSaveFile?: string | undefined;
  /**
   * Whether a blob not met may yet be in the bundle: let go by as unneeded under an index.json that a later one
   * replaced (an archive appended to with `tar -r`; the last index.json counts, as `tar x` keeps it). A re-read finds
   * it or says it is missing. Default: no.
   */
  mayHavePassed?(digest: string): boolean;
}

/** Wanted says which images need a blob, as far as the source knows while reading. */
export type Wanted =
  /** The metadata has not all been read yet: nobody can tell. */
  | { known: false }
  /** These images need it (empty: no image does); `of` is how many images the source holds, when it can tell. */
  | { known: true; images: SourceImage[]; of?: number | undefined };

/** StreamBlob is one blob met while reading a stream source. */
export interface StreamBlob {
  /** A stable key that names the blob's entry, to read it again in a later pass. */
  key: string;
  /** The digest, when known before reading (content-addressed entries); undefined when computed on the way. */
  digest?: string | undefined;
  /** The size, when known before reading. */
  size?: number | undefined;
  /** The media type to report for it, when known. */
  mediaType?: string | undefined;
  /**
   * For a blob whose digest is only known once it is written (a layer compressed on the way): what an earlier run
   * wrote for it. When the destination already holds that digest, the sink may skip the blob and call `resolved`
   * with it; the source then checks the bytes it reads against what it recorded.
   */
  knownAs?: BlobResult | undefined;
  /** Which images need it. */
  wanted: Wanted;
  /**
   * The body. For a sequential input it is `{kind:'stream', reopenable:false}`: the sink reads it (at most once)
   * before it returns, and the source drains whatever was left unread. For a directory it is reopenable and may
   * be read later, more than once.
   */
  body: BlobBody;
  /** Called by the sink with the result once it knows it (the source records converted layers' digests). */
  resolved?: (result: BlobResult) => void;
  /** Called by the sink when the blob could not be written; the source fails the images that need it. */
  rejected?: (error: MirrorError) => void;
}

/** StreamSink receives the blobs of a stream source while it is read. */
export interface StreamSink {
  /** blob handles one blob; a one-time body must not be read after the returned promise resolves. */
  blob(blob: StreamBlob): Promise<void>;
  /** flush is awaited at the end of the input, before the catalog is built: every started blob is then settled. */
  flush?(): Promise<void>;
}

/** ScanOptions tune one read of a stream source. */
export interface ScanOptions {
  signal?: AbortSignal | undefined;
  /** Only blobs with these keys reach the sink (a re-read pass); everything else is skipped. */
  only?: ReadonlySet<string> | undefined;
  /** Called with compressed bytes consumed, for progress. */
  onSourceBytes?: ((delta: number, total: number | undefined) => void) | undefined;
}

/**
 * StreamSource is what the engine reads: a bundle file read front to back (one-time bodies), or any source that can
 * open its blobs at will (a directory; a registry or an OCI layout for `copy` and `sync`), which hands out reopenable
 * bodies and so gets concurrent uploads and whole-blob retries.
 */
export interface StreamSource {
  readonly kind: 'stream';
  /** What it is, for messages (`bundle demo.tar.xz (xz, OCI layout)`). */
  readonly description: string;
  /** True when every blob body can be reopened (a directory), so blobs can be sent concurrently and retried whole. */
  readonly reopenable: boolean;
  /** scan reads the input once from the start and resolves with the catalog when the input ends. */
  scan(sink: StreamSink, options: ScanOptions): Promise<Catalog>;
  /** close releases files and subprocesses. */
  close(): Promise<void>;
}

/** DestinationImage is where one image goes in a destination. */
export interface DestinationImage {
  /** Repository in the destination (`test-namespace/platform/debian`). */
  repository: string;
  /** Tag to set last, if any. */
  tag?: string | undefined;
  /** Full destination name for messages and reports (`172.18.0.20:5000/test-namespace/platform/debian:12`). */
  name: string;
  /** The name to record with the image where the destination keeps names (an OCI layout's index.json). */
  annotationName?: string | undefined;
  /**
   * The `org.opencontainers.image.ref.name` to record in an OCI layout, verbatim (`oci:DIR:REF` records REF as
   * written, which is what skopeo looks up); default: `annotationName`, then `name`.
   */
  refName?: string | undefined;
}

/** MountResult is the outcome of a cross-repository mount. */
export type MountResult =
  | { mounted: true }
  /** Not mounted; `session`, when set, is an upload session the registry opened (202) to upload into. */
  | { mounted: false; session?: unknown };

/** PutBlobOptions tune one blob write. */
export interface PutBlobOptions {
  signal?: AbortSignal | undefined;
  /** Bytes sent, as deltas. */
  onBytes?: ((n: number) => void) | undefined;
  /** An upload session opened by a refused mount (202). */
  session?: unknown;
}

/** ImageDestination is where images are written. Calls come in order: blobs, manifests (children first), tags, commit. */
export interface ImageDestination {
  /** What it is, for messages. */
  readonly description: string;
  /** `repository` when each repository has its own blobs (a registry: other repositories get them by mount). */
  readonly blobScope: 'repository' | 'global';
  /**
   * untagged tells whether the run found the repository without a tag (its tag list read empty: a new repository,
   * most often). A blob missing from the run's knowledge is then offered by a mount from the repository itself, which
   * answers "present" or opens the upload in one request, where a HEAD and a POST take two. Optional: false when absent.
   */
  untagged?(repository: string): Promise<boolean>;
  /** hasBlob tells whether the repository holds the blob (HEAD). */
  hasBlob(repository: string, digest: string, options: { signal?: AbortSignal | undefined }): Promise<boolean>;
  /** mountBlob asks for the blob to be linked from another repository of the same destination. */
  mountBlob(repository: string, digest: string, from: string, options: { signal?: AbortSignal | undefined }): Promise<MountResult>;
  /** cancelSession drops an upload session a refused mount opened. */
  cancelSession(session: unknown): Promise<void>;
  /**
   * putBlob writes a blob, verifying it against `digest`/`size` when given (never committing bytes that do not
   * match), and returns its digest and size.
   */
  putBlob(
    repository: string,
    expected: { digest?: string | undefined; size?: number | undefined },
    body: BlobBody,
    options: PutBlobOptions,
  ): Promise<BlobResult>;
  /**
   * likelyMissing tells, without a request of its own, that the tag is most likely not at the destination (the
   * repository's tag list read this run lacks it; a list being read is waited for). A copy then reads the source's
   * manifest by its tag at once (one request where a HEAD and a GET take two). Optional: false when absent.
   */
  likelyMissing?(repository: string, tag: string): Promise<boolean>;
  /** manifestDigest gives the digest a manifest reference (tag or digest) points at, or undefined. */
  manifestDigest(repository: string, reference: string, options: { signal?: AbortSignal | undefined }): Promise<string | undefined>;
  /**
   * putManifest writes a manifest by digest or tag. `image` names it where the destination records names;
   * `root` marks the image's own (top) manifest, so a destination that keeps names records digest-only images;
   * `descriptor` is the source's descriptor of that root (its annotations, platform and artifactType), for a
   * destination that lists its images with descriptors (an OCI layout's index.json).
   */
  putManifest(
    image: DestinationImage,
    reference: string,
    bytes: Uint8Array,
    mediaType: string,
    options: { signal?: AbortSignal | undefined; root?: boolean | undefined; descriptor?: Descriptor | undefined },
  ): Promise<void | PutManifestResult>;
  /** What the destination needs from the engine. Default: `{blobScope, writeOrder: 'blobs-first', parallelBlobWrites: true}`. */
  readonly capabilities?: DestinationCapabilities | undefined;
  /**
   * registerReferrer records a referrer of `subject` where the destination does not index subjects itself: merged
   * into the fallback tag's index (`<alg>-<hex>`), keeping every entry already there.
   */
  registerReferrer?(repository: string, subject: string, referrer: Descriptor, options: { signal?: AbortSignal | undefined }): Promise<void>;
  /**
   * referrers lists what the destination records as referrers of `subject`: its referrers API when it has one
   * (`indexed`: it indexes subjects itself), else its fallback tag index.
   */
  referrers?(repository: string, subject: string, options: { signal?: AbortSignal | undefined }): Promise<{ indexed: boolean; descriptors: Descriptor[] }>;
  /** commit makes everything written visible (an OCI layout writes index.json). */
  commit(options: { signal?: AbortSignal | undefined }): Promise<void>;
  close(): Promise<void>;
}

/** StreamConsumed is the property a destination error carries when a one-time stream was used up by a failed write. */
export interface StreamConsumedMarker {
  streamConsumed: true;
}

/** isStreamConsumed tells whether an error says a one-time stream body was used up and must be read again. */
export function isStreamConsumed(e: unknown): boolean {
  return typeof e === 'object' && e !== null && (e as Partial<StreamConsumedMarker>).streamConsumed === true;
}

// ---------------------------------------------------------------- random-access sources (copy, sync, save)

/** ImageName names an image inside a source: a repository (empty where the source has one namespace) and a tag and/or digest. */
export interface ImageName {
  /** Repository path in the source (`library/busybox`); `''` for an OCI layout or archive. */
  repository: string;
  tag?: string | undefined;
  digest?: string | undefined;
}

/** ManifestBytes is a manifest's exact bytes, verified against its digest, with its media type. */
export interface ManifestBytes {
  digest: string;
  mediaType: string;
  bytes: Uint8Array;
}

/** SourceOpOptions are the options of every source call. */
export interface SourceOpOptions {
  signal?: AbortSignal | undefined;
}

/**
 * ImageSource is a source that can be read in any order: a registry, an OCI layout, an archive, or a bundle whose
 * one pass is over. The engine resolves names, reads manifests, and opens blobs (again, at an offset, to resume).
 */
export interface ImageSource {
  readonly kind: 'random';
  /** What it is, for messages (`registry https://quay.io`, `OCI layout ./out`). */
  readonly description: string;
  /** The registry host when the source is a registry (blobs can then be mounted from it within that registry). */
  readonly registry?: string | undefined;
  /** resolve gives the root descriptor an image name points at (a HEAD on a registry); NOT_FOUND when absent. */
  resolve(name: ImageName, options: SourceOpOptions): Promise<Descriptor>;
  /**
   * resolveRead resolves a name by reading its manifest (a GET by tag): the descriptor and the verified bytes in one
   * request, for an image about to be copied. Optional: `resolve` then `manifest` when absent.
   */
  resolveRead?(name: ImageName, options: SourceOpOptions): Promise<{ descriptor: Descriptor; manifest: ManifestBytes }>;
  /** manifest gives a manifest's bytes by digest, verified. */
  manifest(repository: string, digest: string, options: SourceOpOptions): Promise<ManifestBytes>;
  /**
   * openBlob opens a blob's bytes from `offset` (default 0); a consumer cut in the middle opens it again at the offset
   * it reached. The bytes are not verified here: the destination verifies what it writes.
   */
  openBlob(repository: string, desc: Descriptor, options: SourceOpOptions & { offset?: number | undefined }): Promise<AsyncIterable<Uint8Array>>;
  /**
   * referrers lists the manifests whose `subject` is `digest` (the OCI 1.1 referrers API, else the fallback tag
   * `<alg>-<hex>`), plus cosign's `<alg>-<hex>.sig|.att|.sbom` tags as descriptors annotated with their tag.
   */
  referrers?(repository: string, digest: string, options: ReferrerQuery): Promise<Referrer[]>;
  /** tags lists the repository's tags, every page. */
  tags?(repository: string, options: SourceOpOptions): AsyncIterable<string>;
  /**
   * converted says what the source changed in offering a root manifest it made itself (a docker archive's manifest,
   * its layers compressed for a registry), for the outcome's note; undefined for a manifest it holds as it is.
   */
  converted?(digest: string): string | undefined;
  /**
   * check tells of a problem the source already knows with a manifest or blob descriptor (bytes that did not verify,
   * a declared size that does not match): the engine's walk asks for every descriptor and fails the image with it.
   * Default: none known.
   */
  check?(desc: Descriptor): MirrorError | undefined;
  /**
   * holds tells whether the source holds a non-distributable (foreign) layer: such layers are copied when it does and
   * left to their URLs when it does not. Default: it holds none.
   */
  holds?(digest: string): boolean;
  /**
   * unavailable tells, before an upload starts, that the source cannot give a blob's bytes now (a bundle whose bytes
   * went by in its one stream): the blob fails with that error and no upload is opened for it. Default: always available.
   */
  unavailable?(desc: Descriptor): MirrorError | undefined;
  /**
   * settling gives, for a blob the source is itself still writing to the destination (a bundle's pass uploads blobs
   * as they go by), a promise of the repositories that hold it once that write has settled (never rejected; empty
   * when it failed); undefined when the source writes nothing of it. The engine waits for it instead of sending the
   * blob again. Default: the source writes nothing.
   */
  settling?(digest: string): Promise<Iterable<string>> | undefined;
  /**
   * heldBytes gives the bytes of a blob the source keeps in memory (a bundle's small blobs and configs), so the
   * destination writes them in one call instead of through a stream; undefined for a blob to be opened. Default: none.
   */
  heldBytes?(desc: Descriptor): Uint8Array | undefined;
  /**
   * Set when the source holds every manifest in memory (a bundle's catalog): reading one again costs nothing, so the
   * engine keeps no copy of its reads. Default: false (a registry, a file).
   */
  readonly manifestsInMemory?: boolean | undefined;
  close(): Promise<void>;
}

/** ReferrerQuery tunes {@link ImageSource.referrers}. */
export interface ReferrerQuery extends SourceOpOptions {
  /** Also look for cosign's `<alg>-<hex>.sig|.att|.sbom` tags. Default: true. */
  tagged?: boolean | undefined;
}

/** Referrer is a manifest that refers to another: by `subject` (OCI 1.1), or by a cosign-style tag. */
export interface Referrer {
  /** The referrer manifest. */
  descriptor: Descriptor;
  /** How it was found: the referrers API or fallback tag (`subject`), or a tag named after the subject (`tag`). */
  via: 'subject' | 'tag';
  /** For `via: 'tag'`: the tag (`sha256-<hex>.sig`), copied as it is. */
  tag?: string | undefined;
}

/** DestinationCapabilities say what a destination needs from the engine, instead of the engine assuming it. */
export interface DestinationCapabilities {
  /** `repository`: each repository has its own blobs, others get them by mount (a registry); `global`: one blob store. */
  blobScope: 'repository' | 'global';
  /**
   * `blobs-first`: blobs, then manifests, then tags (a registry). `metadata-first`: manifests before blobs (a tar
   * stream): the engine plans every image of the run, puts every manifest (images, then their referrers, with
   * `registerReferrer`) and only then the blobs; so all plans are held in memory, and a blob that fails afterwards
   * leaves metadata naming it (the destination must then refuse to commit).
   */
  writeOrder: 'blobs-first' | 'metadata-first';
  /** Whether several blobs may be written at once. */
  parallelBlobWrites: boolean;
  /** The registry host when the destination is a registry (a source on the same registry mounts instead of copying). */
  registry?: string | undefined;
  /** Whether the destination can hold an image's referrers (signatures, SBOMs); false: none are looked for. Default: true. */
  referrers?: boolean | undefined;
}

/** PutManifestResult is what a destination says after a manifest was written. */
export interface PutManifestResult {
  /** The registry answered `OCI-Subject` (it indexes referrers itself: no fallback tag needed). */
  subjectIndexed?: boolean | undefined;
  /** What the destination changed in storing the image (a docker-archive decompresses layers), for the outcome's note. */
  converted?: string | undefined;
}
