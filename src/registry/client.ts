/** RegistryClient: the distribution API of one registry host, for pushing and reading images. */
import { anonymousResolver, type CredentialResolver } from '../auth/types.js';
import { noEvents, type EventSink } from '../events/index.js';
import { isMirrorError, MirrorError, redactUrl } from '../errors/index.js';
import { describeTimeout, probeTlsRefusal, request, type HttpTimeouts } from '../net/http.js';
import { withRetry } from '../net/retry.js';
import type { HostSettings, HostSettingsResolver, RetryOptions } from '../net/types.js';
import { blobExists, getBlob, type BlobReader, type GetBlobOptions, type SignalOption } from './blob.js';
import { registryError } from './errors.js';
import { getManifest, headManifest, putManifest, putManifestAnswer, type FetchedManifest, type ManifestInfo, type PutManifestAnswer } from './manifest.js';
import { fallbackIndex, listReferrers, ReferrersSupport, type ReferrersAnswer } from './referrers.js';
import { iterateTags, listTags, wholeTagList, type ListTagsOptions } from './tags.js';
import { deleteManifest, iterateCatalog } from './catalog.js';
import { RequestLimiter, type RequestLimits } from './limit.js';
import { RegistryTransport } from './transport.js';
import { cancelUpload, mountBlob, uploadBlob, type BlobBody, type MountResult, type UploadOptions, type UploadResult, type UploadSession } from './upload.js';

/** DEFAULT_USER_AGENT is sent when no user agent is given. */
export const DEFAULT_USER_AGENT = 'mirror/0.1';

/** RegistryClientOptions configure a {@link RegistryClient}. */
export interface RegistryClientOptions {
  /** The registry `host[:port]` (`docker.io` is served by `registry-1.docker.io`). */
  host: string;
  /** The scheme asked of `settings` (which may answer `http` for plain-HTTP registries). Default: `https`. */
  scheme?: 'http' | 'https' | undefined;
  /** TLS, proxy and scheme settings per host (also used for token realms and redirect targets). */
  settings: HostSettingsResolver;
  /** Where credentials come from; asked on the first 401 only. Default: anonymous. */
  credentials?: CredentialResolver | undefined;
  /** Retry bounds. Defaults: see {@link RetryOptions}. */
  retry?: RetryOptions | undefined;
  /** Where retry and debug events go. Default: dropped. */
  events?: EventSink | undefined;
  /** User-Agent header. Default: {@link DEFAULT_USER_AGENT}. */
  userAgent?: string | undefined;
  /** HTTP timeouts. Defaults: see `src/net/http.ts`; each timeout that fires is a `warning` event unless `onTimeout` is given. */
  timeouts?: HttpTimeouts | undefined;
  /** Renew bearer tokens this long before they expire (capped at a quarter of their lifetime). Default: 10 s. */
  tokenMarginMs?: number | undefined;
  /**
   * Per-host request bounds (concurrency, requests per second; `Retry-After` holds the host back), or a limiter to
   * share with other clients of the same host. Default: none.
   */
  limits?: RequestLimits | RequestLimiter | undefined;
}

/** PingResult says how a registry answered `GET /v2/`. */
export interface PingResult {
  /** The scheme used. */
  scheme: 'http' | 'https';
  /** The auth scheme it asked for (`none` when /v2/ answered 200 without credentials). */
  auth: 'none' | 'basic' | 'bearer';
  /** The source of the credential used, when `authenticate` was asked and one was needed. */
  credentialSource?: string | undefined;
}

/** RegistryClient talks to one registry host: ping, blobs, uploads, mounts, manifests, tags. */
export class RegistryClient {
  /** The registry `host[:port]`. */
  readonly host: string;
  private readonly t: RegistryTransport;
  /** Whether the registry answers the referrers API, learnt once for every image this client reads or writes. */
  private readonly referrersSupport = new ReferrersSupport();

  constructor(options: RegistryClientOptions) {
    this.host = options.host;
    const events = options.events ?? noEvents;
    this.t = new RegistryTransport({
      host: options.host,
      scheme: options.scheme ?? 'https',
      settings: options.settings,
      credentials: options.credentials ?? anonymousResolver,
      retry: options.retry ?? {},
      events,
      userAgent: options.userAgent ?? DEFAULT_USER_AGENT,
      timeouts: {
        ...options.timeouts,
        onTimeout: options.timeouts?.onTimeout ?? ((t) => events({ type: 'warning', message: describeTimeout(t) })),
      },
      tokenMarginMs: options.tokenMarginMs,
      limiter: options.limits instanceof RequestLimiter || options.limits === undefined ? options.limits : new RequestLimiter(options.limits),
    });
  }

  /**
   * ping sends `GET /v2/` and learns the auth challenge; with `authenticate: true` it also proves the credentials
   * (Basic retried with them, or a token fetched), as `mirror login` needs.
   */
  async ping(options: SignalOption & { authenticate?: boolean | undefined } = {}): Promise<PingResult> {
    const { base, settings } = await this.t.endpoint();
    const url = new URL('/v2/', base);
    try {
      return await this.pingOnce(url, settings, options);
    } catch (e) {
      // A TLS registry that closes the connection without an answer usually refused (or missed) a client certificate.
      if (isMirrorError(e) && e.code === 'NETWORK' && !options.signal?.aborted) {
        const why = await probeTlsRefusal(url, settings).catch(() => undefined);
        if (why !== undefined) {
          throw new MirrorError('TLS', `TLS with ${this.host} failed: ${why}`, {
            phase: 'ping',
            url: redactUrl(url),
            cause: e,
            hint: '--cert FILE --key FILE, or client.cert and client.key in a certs.d directory (--cert-dir)',
          });
        }
      }
      throw e;
    }
  }

  private async pingOnce(url: URL, settings: HostSettings, options: SignalOption & { authenticate?: boolean | undefined }): Promise<PingResult> {
    const scheme = settings.scheme;
    if (options.authenticate === true) {
      await this.t.call(
        { method: 'GET', url, scopes: [], ok: [200], context: { phase: 'ping', what: this.host }, signal: options.signal },
        (res) => res.discard(),
      );
      const auth = this.t.auth.scheme;
      return { scheme, auth: auth === 'basic' || auth === 'bearer' ? auth : 'none', credentialSource: this.t.auth.credentialSource };
    }
    return withRetry(
      async () => {
        const res = await request({ method: 'GET', url, settings, signal: options.signal, timeouts: this.t.timeouts, headers: { 'user-agent': this.t.userAgent } });
        if (res.status === 200) {
          await res.discard();
          return { scheme, auth: 'none' as const };
        }
        if (res.status === 401) {
          await res.discard();
          this.t.auth.learnChallenge(res.headers['www-authenticate']);
          const auth = this.t.auth.scheme;
          return { scheme, auth: auth === 'basic' ? ('basic' as const) : ('bearer' as const) };
        }
        throw await registryError(res, 'GET', { phase: 'ping', what: this.host });
      },
      { method: 'GET', url, retry: this.t.retry, events: this.t.events, signal: options.signal },
    );
  }

  /** blobExists checks a blob (HEAD): its size, or undefined when absent. */
  blobExists(repo: string, digest: string, options: SignalOption = {}): Promise<{ size: number } | undefined> {
    return blobExists(this.t, repo, digest, options);
  }

  /** getBlob opens a blob for reading (redirects followed, cut downloads resumed, bytes verified). */
  getBlob(repo: string, digest: string, options: GetBlobOptions = {}): Promise<BlobReader> {
    return getBlob(this.t, repo, digest, options);
  }

  /** mountBlob links a blob from another repository: `{mounted: true}` only on 201. */
  mountBlob(repo: string, digest: string, fromRepo: string, options: SignalOption = {}): Promise<MountResult> {
    return mountBlob(this.t, repo, digest, fromRepo, options);
  }

  /** uploadBlob uploads a blob (monolithic, streamed or chunked) and returns its digest and size. */
  uploadBlob(repo: string, body: BlobBody, options: UploadOptions = {}): Promise<UploadResult> {
    return uploadBlob(this.t, repo, body, options);
  }

  /** cancelUpload abandons an upload session (a session the registry already forgot is fine). */
  cancelUpload(session: UploadSession, options: SignalOption = {}): Promise<void> {
    return cancelUpload(this.t, session, options.signal);
  }

  /** headManifest checks a manifest: digest, media type, size; undefined when absent. */
  headManifest(repo: string, reference: string, options: SignalOption = {}): Promise<ManifestInfo | undefined> {
    return headManifest(this.t, repo, reference, options);
  }

  /** getManifest fetches a manifest's bytes (verified when `reference` is a digest). */
  getManifest(repo: string, reference: string, options: SignalOption = {}): Promise<FetchedManifest> {
    return getManifest(this.t, repo, reference, options);
  }

  /** putManifest stores a manifest with exactly this media type; returns its digest. */
  putManifest(repo: string, reference: string, bytes: Uint8Array, mediaType: string, options: SignalOption = {}): Promise<string> {
    return putManifest(this.t, repo, reference, bytes, mediaType, options);
  }

  /** putManifestAnswer stores a manifest and gives the registry's whole answer (digest, `OCI-Subject`). */
  putManifestAnswer(repo: string, reference: string, bytes: Uint8Array, mediaType: string, options: SignalOption = {}): Promise<PutManifestAnswer> {
    return putManifestAnswer(this.t, repo, reference, bytes, mediaType, options);
  }

  /** listTags lists every tag of a repository (pagination followed). */
  listTags(repo: string, options: ListTagsOptions = {}): Promise<string[]> {
    return listTags(this.t, repo, options);
  }

  /**
   * wholeTagList gives a repository's tags when the registry lists them in one page (`pageSize`), `[]` for a
   * repository it does not know, and undefined when it pages further or will not list them (never throws but an abort).
   */
  wholeTagList(repo: string, options: ListTagsOptions = {}): Promise<string[] | undefined> {
    return wholeTagList(this.t, repo, options);
  }

  /** repositories gives the registry's repositories under `prefix` (all for `''`), page by page, from the catalog. */
  repositories(prefix: string, options: SignalOption = {}): AsyncGenerator<string, void, undefined> {
    return iterateCatalog(this.t, prefix, options);
  }

  /** deleteManifest deletes a manifest by digest (and so every tag on it); false when it was already gone. */
  deleteManifest(repo: string, digest: string, options: SignalOption = {}): Promise<boolean> {
    return deleteManifest(this.t, repo, digest, options);
  }

  /** tags gives a repository's tags as they arrive, page by page (pagination followed). */
  tags(repo: string, options: ListTagsOptions = {}): AsyncGenerator<string, void, undefined> {
    return iterateTags(this.t, repo, options);
  }

  /**
   * referrers lists the manifests whose subject is `digest`: referrers API, else the fallback tag. A registry found
   * without the API is not asked again by this client (concurrent first calls share one question).
   */
  referrers(repo: string, digest: string, options: SignalOption & { artifactType?: string | undefined } = {}): Promise<ReferrersAnswer> {
    return listReferrers(this.t, repo, digest, { ...options, support: this.referrersSupport });
  }

  /** fallbackIndex reads the referrers fallback tag index of a subject, if it exists (to merge into it). */
  fallbackIndex(repo: string, digest: string, options: SignalOption = {}): ReturnType<typeof fallbackIndex> {
    return fallbackIndex(this.t, repo, digest, options);
  }
}
