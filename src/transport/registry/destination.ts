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
}

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

  async manifestDigest(repository: string, reference: string, options: { signal?: AbortSignal | undefined }): Promise<string | undefined> {
    return (await this.client.headManifest(repository, reference, { signal: options.signal }))?.digest;
  }

  async putManifest(image: DestinationImage, reference: string, bytes: Uint8Array, mediaType: string, options: { signal?: AbortSignal | undefined }): Promise<PutManifestResult> {
    const answer = await this.client.putManifestAnswer(image.repository, reference, bytes, mediaType, { signal: options.signal });
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
  }

  async commit(): Promise<void> {}

  async close(): Promise<void> {}
}
