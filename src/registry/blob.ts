/** Blob verbs: existence check (HEAD), streamed download with digest verification and resume. */
import { MirrorError, redactUrl } from '../errors/index.js';
import { request, type HttpResponse } from '../net/http.js';
import { resumeStream, withRetry } from '../net/retry.js';
import { verifyingStream } from '../oci/digest.js';
import { pullScope } from './auth.js';
import { registryError } from './errors.js';
import type { RegistryTransport } from './transport.js';

/** MAX_REDIRECTS bounds how many redirects a blob request follows. */
export const MAX_REDIRECTS = 5;

/** Statuses of a redirect. */
const REDIRECTS: readonly number[] = [301, 302, 303, 307, 308];

/** SignalOption is the options object every verb takes. */
export interface SignalOption {
  signal?: AbortSignal | undefined;
}

/** BlobReader is an open blob download: iterate `body` to the end, or call `cancel()`. */
export interface BlobReader {
  /** The blob size, when the registry said it. */
  size: number | undefined;
  /** The blob's bytes; when verification is on, the last chunk is only given once the whole blob matched. */
  body: AsyncIterable<Uint8Array>;
  /** Drops the download (closes the connection). */
  cancel(): Promise<void>;
}

/** GetBlobOptions tune {@link getBlob}. */
export interface GetBlobOptions extends SignalOption {
  /** Check the bytes against the digest (sha256) and size. Default: true. */
  verify?: boolean | undefined;
  /** The size the blob must have (from its descriptor). */
  size?: number | undefined;
  /** Start at this byte (a `Range` request); the bytes before it are not verified then. Default: 0. */
  offset?: number | undefined;
}

/** blobPath is the API path of a blob. */
export function blobPath(repo: string, digest: string): string {
  return `/v2/${repo}/blobs/${digest}`;
}

/**
 * followRedirects follows 3xx answers: on the registry host with its auth, elsewhere (blob storage) without any
 * Authorization header, reaching that host with its own settings.
 */
async function followRedirects(
  t: RegistryTransport,
  first: HttpResponse,
  method: string,
  headers: Record<string, string>,
  signal: AbortSignal | undefined,
  scopes: Parameters<RegistryTransport['send']>[0]['scopes'],
): Promise<HttpResponse> {
  let res = first;
  const { base } = await t.endpoint();
  for (let hops = 0; REDIRECTS.includes(res.status); hops++) {
    const location = res.headers['location'];
    if (location === undefined) return res;
    await res.discard();
    if (hops >= MAX_REDIRECTS) {
      throw new MirrorError('REGISTRY', `too many redirects for ${method} ${redactUrl(res.url)}`, { method, url: redactUrl(res.url) });
    }
    const next = new URL(location, res.url);
    if (next.origin === base.origin) {
      res = await t.send({ method, url: next, scopes, headers, signal });
    } else {
      const settings = await t.settingsFor(next);
      res = await request({ method, url: next, settings, headers: { ...headers, 'user-agent': t.userAgent }, signal, timeouts: t.timeouts });
    }
  }
  return res;
}

/** blobExists checks a blob with HEAD: its size when present, undefined when the registry does not have it. */
export async function blobExists(
  t: RegistryTransport,
  repo: string,
  digest: string,
  options: SignalOption = {},
): Promise<{ size: number } | undefined> {
  const path = blobPath(repo, digest);
  const scopes = [pullScope(repo)];
  const url = await t.url(path);
  return withRetry(
    async () => {
      const first = await t.send({ method: 'HEAD', url, scopes, signal: options.signal });
      const res = await followRedirects(t, first, 'HEAD', {}, options.signal, scopes);
      if (res.status === 404) {
        await res.discard();
        return undefined;
      }
      if (res.status !== 200) throw await registryError(res, 'HEAD', { phase: 'blob', what: digest, digest });
      await res.discard();
      const size = Number(res.headers['content-length']);
      return { size: Number.isFinite(size) ? size : -1 };
    },
    { method: 'HEAD', url, retry: t.retry, events: t.events, signal: options.signal },
  );
}

/**
 * getBlob opens a blob for reading, following redirects; a download cut in the middle is resumed with a Range
 * request (bounded by the retry options), and the bytes are checked against the digest unless `verify` is false.
 */
export async function getBlob(t: RegistryTransport, repo: string, digest: string, options: GetBlobOptions = {}): Promise<BlobReader> {
  const path = blobPath(repo, digest);
  const scopes = [pullScope(repo)];
  const url = await t.url(path);
  const signal = options.signal;
  const open = (offset: number): Promise<HttpResponse> =>
    withRetry(
      async () => {
        const headers: Record<string, string> = offset > 0 ? { range: `bytes=${offset}-` } : {};
        const first = await t.send({ method: 'GET', url, scopes, headers, signal });
        const res = await followRedirects(t, first, 'GET', headers, signal, scopes);
        const ok = offset > 0 ? [206] : [200];
        if (!ok.includes(res.status)) {
          if (offset > 0 && res.status === 200) {
            await res.discard();
            throw new MirrorError('NETWORK', `download of ${digest} was cut and the server cannot resume it`, {
              method: 'GET',
              url: redactUrl(url),
              digest,
            });
          }
          throw await registryError(res, 'GET', { phase: 'blob', what: digest, digest });
        }
        return res;
      },
      { method: 'GET', url, retry: t.retry, events: t.events, signal },
    );
  const start = Math.max(0, options.offset ?? 0);
  let current = await open(start);
  const length = Number(current.headers['content-length']);
  const size = options.size ?? (Number.isFinite(length) ? start + length : undefined);
  let cancelled = false;
  // A body cut in the middle is opened again at the byte reached (Range), under the same retry policy.
  const raw = resumeStream(
    current.body,
    async (offset) => {
      current = await open(offset);
      return current.body;
    },
    { method: 'GET', url, retry: t.retry, events: t.events, signal, offset: start, cancelled: () => cancelled },
  );
  const verify = options.verify !== false && start === 0 && digest.startsWith('sha256:');
  const body = verify ? verifyingStream(raw, digest, size, { digest, phase: 'download' }) : raw;
  return {
    size,
    body,
    async cancel(): Promise<void> {
      cancelled = true;
      await current.discard();
      await body.return(undefined);
    },
  };
}

