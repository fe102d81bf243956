/**
 * A registry namespace as a destination: blobs are checked with HEAD, linked across repositories by mount, and
 * uploaded (monolithic by default, chunked on request) through the registry client; manifests are put by digest
 * and tags last. All protocol detail, auth, TLS and retries live in `src/registry` and `src/net`.
 */
import type { CredentialResolver } from '../../auth/types.js';
import type { EventSink } from '../../events/index.js';
import type { HttpTimeouts } from '../../net/http.js';
import type { HostSettingsResolver, RetryOptions } from '../../net/types.js';
import type { Descriptor } from '../../oci/manifest.js';
import { fallbackTag, mergeReferrer, RegistryClient, type UploadMode, type UploadSession } from '../../registry/index.js';
import type { RegistryTarget } from '../../reference/destination.js';
import type {
  BlobBody,
  BlobResult,
  DestinationCapabilities,
  DestinationImage,
  ImageDestination,
  MountResult,
  PutBlobOptions,
  PutManifestResult,
} from '../types.js';

/** RegistryDestinationOptions configure {@link openRegistryDestination}. */
export interface RegistryDestinationOptions {
  settings: HostSettingsResolver;
  credentials: CredentialResolver;
  retry?: RetryOptions | undefined;
  /** HTTP timeouts. Defaults: see `src/net/http.ts`. */
  timeouts?: HttpTimeouts | undefined;
  /** `monolithic` (default) or `chunked`. */
  uploadMode?: UploadMode | undefined;
  /** Chunk size for chunked uploads. */
  chunkSize?: number | undefined;
  events?: EventSink | undefined;
  signal?: AbortSignal | undefined;
  /**
   * Learn a repository's tags from its tag list once its first tag is found missing, and answer the other tags from
   * it (a tag the list lacks is missing, one it has is still asked with HEAD); a repository found without tags also
   * takes blobs by a mount from itself (see {@link ImageDestination.untagged}). Worth it where several tags of a
   * repository are written in one run (copy, sync). Default: false (every tag asked with HEAD).
   */
  learnTags?: boolean | undefined;
}

/** TAG_LIST_PAGE is the page size asked of a tag list read to spare HEADs; a longer list is not used. */
export const TAG_LIST_PAGE = 1000;

/**
 * openRegistryDestination connects to the registry of `target` and checks it answers (and that credentials are
 * accepted when it asks for them) before anything is read or sent.
 */
export async function openRegistryDestination(
  target: RegistryTarget,
  options: RegistryDestinationOptions & {
    /** A client for the target host that has already pinged and proved its credentials (it is used as it is). */
    client?: RegistryClient | undefined;
  },
): Promise<ImageDestination> {
  if (options.client !== undefined) return new RegistryDestination(options.client, target, options);
  const client = new RegistryClient({
    host: target.host,
    scheme: target.scheme,
    settings: options.settings,
    credentials: options.credentials,
    retry: options.retry,
    timeouts: options.timeouts,
    events: options.events,
  });
  await client.ping({ signal: options.signal, authenticate: true });
  return new RegistryDestination(client, target, options);
}

class RegistryDestination implements ImageDestination {
  readonly blobScope = 'repository' as const;
  readonly capabilities: DestinationCapabilities;
  /**
   * A repository's first manifest HEAD by tag, settled once what it taught is known (the tag list, when the tag was
   * missing): the repository's other tags wait for it instead of asking at the same time.
   */
  private readonly firstLook = new Map<string, Promise<void>>();
  /** The tags of a repository as listed after its first missing tag, plus those this run put; undefined: not known. */
  private readonly listed = new Map<string, Set<string> | undefined>();
  /** A repository's tag list being read (or read), set the moment its first tag is answered missing. */
  private readonly listing = new Map<string, Promise<void>>();
  /** Repositories whose tag list was read empty (or unknown to the registry) this run. */
  private readonly emptyAtList = new Set<string>();

  constructor(
    private readonly client: RegistryClient,
    private readonly target: RegistryTarget,
    private readonly options: RegistryDestinationOptions,
  ) {
    this.capabilities = { blobScope: 'repository', writeOrder: 'blobs-first', parallelBlobWrites: true, registry: target.host };
  }

  get description(): string {
    return `registry ${this.target.scheme}://${this.target.host}${this.target.namespace ? `/${this.target.namespace}` : ''}`;
  }

  async hasBlob(repository: string, digest: string, options: { signal?: AbortSignal | undefined }): Promise<boolean> {
    return (await this.client.blobExists(repository, digest, { signal: options.signal })) !== undefined;
  }

  async mountBlob(repository: string, digest: string, from: string, options: { signal?: AbortSignal | undefined }): Promise<MountResult> {
    return this.client.mountBlob(repository, digest, from, { signal: options.signal });
  }

  async cancelSession(session: unknown): Promise<void> {
    await this.client.cancelUpload(session as UploadSession);
  }

  async putBlob(repository: string, expected: { digest?: string | undefined; size?: number | undefined }, body: BlobBody, options: PutBlobOptions): Promise<BlobResult> {
    return this.client.uploadBlob(repository, body, {
      digest: expected.digest,
      size: expected.size,
      mode: this.options.uploadMode,
      chunkSize: this.options.chunkSize,
      session: options.session as UploadSession | undefined,
      onBytes: options.onBytes,
      signal: options.signal,
    });
  }

  /**
   * manifestDigest asks with HEAD. With `learnTags`, a repository's first tag asked goes alone; when it is missing
   * the repository's tag list is read once, and a tag it lacks is answered missing without a request (a missing
   * answer only ever leads to writing the tag, so a list that is out of date costs work, never a wrong skip).
   */
  async manifestDigest(repository: string, reference: string, options: { signal?: AbortSignal | undefined }): Promise<string | undefined> {
    const head = async (): Promise<string | undefined> => (await this.client.headManifest(repository, reference, { signal: options.signal }))?.digest;
    if (this.options.learnTags !== true || reference.includes(':')) return head();
    const ahead = this.firstLook.get(repository);
    if (ahead === undefined) {
      const answer = head();
      this.firstLook.set(
        repository,
        answer.then(
          (digest) => (digest === undefined ? this.readTagList(repository, options.signal) : undefined),
          () => {},
        ),
      );
      return answer;
    }
    await ahead;
    const tags = this.listed.get(repository);
    if (tags !== undefined && !tags.has(reference)) return undefined;
    return head();
  }

  /** readTagList reads a repository's tag list once (a failure leaves it unknown), recorded in `listing` at once. */
  private readTagList(repository: string, signal: AbortSignal | undefined): Promise<void> {
    const reading = this.client
      .wholeTagList(repository, { pageSize: TAG_LIST_PAGE, signal })
      .catch(() => undefined)
      .then((tags) => {
        this.listed.set(repository, tags === undefined ? undefined : new Set(tags));
        if (tags?.length === 0) this.emptyAtList.add(repository);
      });
    this.listing.set(repository, reading);
    return reading;
  }

  /**
   * likelyMissing: with `learnTags`, a tag the repository's tag list read this run lacks. A list being read (its
   * first tag was found missing) is waited for, so the answer does not hang on timing; a first HEAD still out is
   * not (an unchanged run would wait on it). A repository not asked yet is not guessed at: an unchanged run
   * resolves every source tag with a HEAD (Docker Hub counts a GET as a pull).
   */
  async likelyMissing(repository: string, tag: string): Promise<boolean> {
    if (this.options.learnTags !== true) return false;
    await this.listing.get(repository);
    const tags = this.listed.get(repository);
    return tags !== undefined && !tags.has(tag);
  }

  /** untagged tells whether the repository's tag list was read empty this run (a new repository, most often). */
  async untagged(repository: string): Promise<boolean> {
    const ahead = this.firstLook.get(repository);
    if (ahead === undefined) return false;
    await ahead;
    return this.emptyAtList.has(repository);
  }

  async putManifest(image: DestinationImage, reference: string, bytes: Uint8Array, mediaType: string, options: { signal?: AbortSignal | undefined }): Promise<PutManifestResult> {
    const answer = await this.client.putManifestAnswer(image.repository, reference, bytes, mediaType, { signal: options.signal });
    if (!reference.includes(':')) this.listed.get(image.repository)?.add(reference);
    return { subjectIndexed: answer.subject !== undefined };
  }

  async referrers(repository: string, subject: string, options: { signal?: AbortSignal | undefined }): Promise<{ indexed: boolean; descriptors: Descriptor[] }> {
    const answer = await this.client.referrers(repository, subject, { signal: options.signal });
    return { indexed: answer.via === 'api', descriptors: answer.descriptors };
  }

  async registerReferrer(repository: string, subject: string, referrer: Descriptor, options: { signal?: AbortSignal | undefined }): Promise<void> {
    const existing = await this.client.fallbackIndex(repository, subject, { signal: options.signal });
    const merged = mergeReferrer(existing, referrer);
    if (merged === undefined) return;
    await this.client.putManifest(repository, fallbackTag(subject), merged, existing?.mediaType || 'application/vnd.oci.image.index.v1+json', { signal: options.signal });
    this.listed.get(repository)?.add(fallbackTag(subject));
  }

  async commit(): Promise<void> {}

  async close(): Promise<void> {}
}
