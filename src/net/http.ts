/**
 * The HTTP layer: one undici dispatcher per (host, settings), TLS with extra CAs added to the system roots, client
 * certificates, plain HTTP, proxies (CONNECT for https), connect/answer/idle-body timeouts and a floor under the
 * speed of an answer's body (each reported as it fires, and a host that keeps timing out given up on), and
 * low-level failures turned into one-line {@link MirrorError}s (`TLS` or `NETWORK`) whose URLs are redacted.
 */
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { Readable } from 'node:stream';
import * as nodeTls from 'node:tls';
import { rootCertificates } from 'node:tls';
import type { Dispatcher } from 'undici';
import { Agent, ProxyAgent } from './undici.js';
import { abortError, isMirrorError, MirrorError, redactUrl, safeExcerpt } from '../errors/index.js';
import { forgetHosts, hostWatch, type HostWatch } from './host-watch.js';
import { DEFAULT_MIN_BYTES_PER_SECOND, describeRate, RateFloor, SLOW_TRANSFER_CODE, SlowTransferError } from './rate-floor.js';
import type { HostSettings } from './types.js';

/** DEFAULT_CONNECT_TIMEOUT_MS bounds opening a connection (TCP + TLS). */
export const DEFAULT_CONNECT_TIMEOUT_MS = 30_000;
/** DEFAULT_HEADERS_TIMEOUT_MS bounds the wait for response headers, counted from the last request byte sent. */
export const DEFAULT_HEADERS_TIMEOUT_MS = 120_000;
/** DEFAULT_BODY_TIMEOUT_MS bounds the idle time between two chunks of a response body. */
export const DEFAULT_BODY_TIMEOUT_MS = 60_000;
/** DEFAULT_TEXT_LIMIT is the most bytes {@link HttpResponse.text} reads unless told otherwise. */
export const DEFAULT_TEXT_LIMIT = 1024 * 1024;

/**
 * HttpTimeouts bound each phase of a request so a stall becomes a retryable error, not a hang. A host that lets
 * requests time out again and again, with no answer between them, for longer than the timeout (two rounds of
 * timeouts) is given up on: its requests then fail with a {@link FinalNetworkError} that names it.
 */
export interface HttpTimeouts {
  /** Opening a connection (TCP and TLS). Default: {@link DEFAULT_CONNECT_TIMEOUT_MS}. */
  connectTimeoutMs?: number | undefined;
  /**
   * Waiting for the response headers once the request went out (also while the server does not take more of the
   * request body). Default: {@link DEFAULT_HEADERS_TIMEOUT_MS}.
   */
  headersTimeoutMs?: number | undefined;
  /** Idle time between response body chunks. Default: {@link DEFAULT_BODY_TIMEOUT_MS}. */
  bodyTimeoutMs?: number | undefined;
  /**
   * The slowest average rate an answer's body may keep over a window as long as the body timeout (counting only the
   * time spent waiting for it): a server that trickles is cut like a silent one. Default:
   * {@link DEFAULT_MIN_BYTES_PER_SECOND} (1 KiB/s); 0 turns the floor off.
   */
  minBytesPerSecond?: number | undefined;
  /** Called each time one of these timeouts fires (see {@link describeTimeout}). Default: nothing. */
  onTimeout?: ((timeout: TimeoutInfo) => void) | undefined;
}

/** uniformTimeouts gives timeouts with one bound, in seconds, for connecting, for an answer, and within one (`--timeout`). */
export function uniformTimeouts(seconds: number): HttpTimeouts {
  const ms = Math.max(1, Math.round(seconds * 1000));
  return { connectTimeoutMs: ms, headersTimeoutMs: ms, bodyTimeoutMs: ms };
}

/** TimeoutInfo describes a request that timed out. */
export interface TimeoutInfo {
  /**
   * `connect`: no connection; `headers`: no answer (or the upload not taken); `body`: the answer stopped coming;
   * `slow`: the answer came under the rate floor for a whole window.
   */
  kind: 'connect' | 'headers' | 'body' | 'slow';
  /** The timeout that fired (for `slow`, the window), in ms. */
  ms: number;
  method: string;
  /** The request URL, redacted. */
  url: string;
  /** `host[:port]` of the URL. */
  host: string;
}

/** describeTimeout gives one line for a timed-out request, for a warning. */
export function describeTimeout(t: TimeoutInfo): string {
  let path = t.url;
  try {
    path = new URL(t.url).pathname;
  } catch {
    // keep the redacted URL
  }
  const secs = formatSeconds(t.ms);
  if (t.kind === 'connect') return `no connection to ${t.host} within ${secs} (${t.method} ${path})`;
  if (t.kind === 'headers') return `${t.host} did not answer ${t.method} ${path} within ${secs}`;
  if (t.kind === 'slow') return `${t.host} sent its answer to ${t.method} ${path} too slowly for ${secs}`;
  return `${t.host} stopped sending its answer to ${t.method} ${path} for ${secs}`;
}

/** formatSeconds writes a duration in ms as seconds (`1 s`, `2.5 s`, `120 s`). */
function formatSeconds(ms: number): string {
  const s = ms / 1000;
  return `${s >= 10 ? Math.round(s) : Math.round(s * 10) / 10} s`;
}

/**
 * FinalNetworkError is a network failure that trying the same request again would not cure: a host that never
 * answered refuses connections (a wrong address), or a host has stopped answering (see {@link HttpTimeouts}).
 */
export class FinalNetworkError extends MirrorError {
  /** Tells the retry policy not to try again. */
  readonly retryable = false as const;

  constructor(message: string, options: ConstructorParameters<typeof MirrorError>[2] = {}) {
    super('NETWORK', message, options);
    this.name = 'FinalNetworkError';
  }
}

/** RequestBody is what can be sent: bytes, or a stream of chunks (send a `content-length` header when known). */
export type RequestBody = Uint8Array | AsyncIterable<Uint8Array>;

/** HttpRequest is one HTTP request. */
export interface HttpRequest {
  method: string;
  url: string | URL;
  /** How to reach the URL's host (TLS, proxy). The URL's scheme is what is used. */
  settings: HostSettings;
  /** Request headers (lower-case names are fine). */
  headers?: Record<string, string> | undefined;
  /** The body. A stream without `content-length` goes out with chunked transfer encoding. */
  body?: RequestBody | undefined;
  /** Aborts the request and its body. */
  signal?: AbortSignal | undefined;
  /** Timeouts. Defaults: the `DEFAULT_*_TIMEOUT_MS` constants. */
  timeouts?: HttpTimeouts | undefined;
}

/** HttpResponse is a response whose body has not been read yet; read it, or call `discard()`. */
export interface HttpResponse {
  status: number;
  /** The URL that was requested. */
  url: URL;
  /** Response headers, lower-case names; repeated headers joined with `, `. */
  headers: Record<string, string>;
  /** The body as chunks; errors are mapped like request errors (`NETWORK`, `INTERRUPTED`). */
  body: AsyncIterable<Uint8Array>;
  /**
   * Reads the body as UTF-8 text, at most `limit` bytes (default {@link DEFAULT_TEXT_LIMIT}); the rest is dropped. A
   * body that breaks or stalls throws like a request error.
   */
  text(limit?: number): Promise<string>;
  /** Reads the whole body, failing with `BAD_INPUT` when it is longer than `limit` bytes. */
  bytes(limit: number): Promise<Uint8Array>;
  /** Drops the body so the connection can be reused. Never throws. */
  discard(): Promise<void>;
}

const dispatchers = new Map<string, Dispatcher>();

/** The content key of each settings object, made once: its TLS material can be a large CA bundle and a private key. */
const settingsKeys = new WeakMap<HostSettings, string>();

/** dispatcherKey identifies the connection pool for an origin and its settings (equal settings share one). */
function dispatcherKey(origin: string, settings: HostSettings, connectTimeoutMs: number): string {
  let key = settingsKeys.get(settings);
  if (key === undefined) {
    key = createHash('sha256').update(JSON.stringify([settings.scheme, settings.proxy ?? '', settings.tls])).digest('hex');
    settingsKeys.set(settings, key);
  }
  return `${origin} ${connectTimeoutMs} ${key}`;
}

let defaultCas: string[] | undefined;

/**
 * defaultCaCertificates is what Node trusts when no `ca` is given: the bundled roots plus `NODE_EXTRA_CA_CERTS` (and
 * the OS store when Node is told to use it). Node drops all of them as soon as a `ca` option is passed, so extra CAs
 * are appended to this list. Node >= 22.15 says it itself (`tls.getCACertificates('default')`); older Node gets the
 * bundled roots plus the `NODE_EXTRA_CA_CERTS` file, read once.
 */
export function defaultCaCertificates(): string[] {
  if (defaultCas !== undefined) return defaultCas;
  const get = (nodeTls as { getCACertificates?: (type?: string) => string[] }).getCACertificates;
  if (typeof get === 'function') {
    defaultCas = get('default');
    return defaultCas;
  }
  const list = [...rootCertificates];
  const extraFile = process.env['NODE_EXTRA_CA_CERTS'];
  if (extraFile) {
    try {
      const text = readFileSync(extraFile, 'utf8');
      list.push(...(text.match(/-----BEGIN CERTIFICATE-----[\s\S]*?-----END CERTIFICATE-----/g) ?? []));
    } catch {
      // Node already warned about an unreadable NODE_EXTRA_CA_CERTS at startup.
    }
  }
  defaultCas = list;
  return list;
}

/** tlsOptions builds the TLS connect options for settings: extra CAs on top of the system roots, never instead. */
export function tlsOptions(settings: HostSettings): { ca?: string[]; cert?: string; key?: string; rejectUnauthorized: boolean } {
  const tls = settings.tls;
  const out: { ca?: string[]; cert?: string; key?: string; rejectUnauthorized: boolean } = {
    rejectUnauthorized: tls.insecureSkipVerify !== true,
  };
  if (tls.ca !== undefined && tls.ca.length > 0) out.ca = [...defaultCaCertificates(), ...tls.ca];
  if (tls.cert !== undefined) out.cert = tls.cert;
  if (tls.key !== undefined) out.key = tls.key;
  return out;
}

/**
 * connectTlsOptions are {@link tlsOptions} made once into a SecureContext shared by every connection of a dispatcher:
 * given `ca`/`cert`/`key`, Node would otherwise build a new context (parsing every root certificate) per connection.
 * Material Node refuses (a key that does not match its certificate) is passed as is, so the connection fails with the
 * usual mapped TLS error.
 */
function connectTlsOptions(settings: HostSettings): ReturnType<typeof tlsOptions> | { secureContext: nodeTls.SecureContext; rejectUnauthorized: boolean } {
  const tls = tlsOptions(settings);
  if (tls.ca === undefined && tls.cert === undefined && tls.key === undefined) return tls;
  try {
    const { rejectUnauthorized, ...material } = tls;
    return { secureContext: nodeTls.createSecureContext(material), rejectUnauthorized };
  } catch {
    return tls;
  }
}

/** dispatcherFor gives the cached dispatcher for a URL's origin with these settings, making it on first use. */
export function dispatcherFor(url: URL, settings: HostSettings, timeouts: HttpTimeouts = {}): Dispatcher {
  const connectTimeoutMs = timeouts.connectTimeoutMs ?? DEFAULT_CONNECT_TIMEOUT_MS;
  const key = dispatcherKey(url.origin, settings, connectTimeoutMs);
  const existing = dispatchers.get(key);
  if (existing !== undefined) return existing;
  const tls = connectTlsOptions(settings);
  let dispatcher: Dispatcher;
  if (settings.proxy !== undefined && settings.proxy !== '') {
    dispatcher = new ProxyAgent({
      uri: settings.proxy,
      requestTls: { ...tls, timeout: connectTimeoutMs },
      proxyTls: { timeout: connectTimeoutMs },
      connect: { timeout: connectTimeoutMs },
    });
  } else {
    dispatcher = new Agent({ connect: { ...tls, timeout: connectTimeoutMs } });
  }
  dispatchers.set(key, dispatcher);
  return dispatcher;
}

/** closeAll closes every cached dispatcher (waiting for requests in flight) and forgets them and every host's history. */
export async function closeAll(): Promise<void> {
  const all = [...dispatchers.values()];
  dispatchers.clear();
  forgetHosts();
  await Promise.allSettled(all.map((d) => d.close()));
}

/** flattenHeaders turns undici's header record into lower-case single strings. */
function flattenHeaders(raw: Record<string, string | string[] | undefined>): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries(raw)) {
    if (v === undefined) continue;
    out[k.toLowerCase()] = Array.isArray(v) ? v.join(', ') : v;
  }
  return out;
}

/** The errors request bodies threw: their sources' failures (see {@link isRequestBodyError}). */
const bodyErrors = new WeakSet<object>();

/**
 * isRequestBodyError tells whether an error came from a request's body, its source (a GET of another registry that
 * gave up after its own retries, a file that cannot be read), not from the request: retrying the request would only
 * retry the source's retries.
 */
export function isRequestBodyError(e: unknown): boolean {
  return typeof e === 'object' && e !== null && bodyErrors.has(e);
}

/** request sends one HTTP request and gives the response with its body unread; failures become MirrorErrors. */
export async function request(req: HttpRequest): Promise<HttpResponse> {
  const url = typeof req.url === 'string' ? new URL(req.url) : req.url;
  const method = req.method.toUpperCase();
  const ctx: FailureContext = { method, url, settings: req.settings };
  if (req.signal?.aborted) throw abortError(req.signal);
  const watch = hostWatch(url.origin);
  const fail = (e: unknown): MirrorError => judgeFailure(mapHttpError(e, ctx, req.signal), e, ctx, req.timeouts, watch);
  const dispatcher = dispatcherFor(url, req.settings, req.timeouts);
  // A body stream that throws (a digest mismatch, a source read error) is the real cause of the failure.
  let bodyError: unknown;
  let body: Uint8Array | Readable | undefined;
  const bodyTimeoutMs = req.timeouts?.bodyTimeoutMs ?? DEFAULT_BODY_TIMEOUT_MS;
  const minBytesPerSecond = req.timeouts?.minBytesPerSecond ?? DEFAULT_MIN_BYTES_PER_SECOND;
  if (req.body instanceof Uint8Array) body = req.body;
  else if (req.body !== undefined) {
    const source = req.body;
    // An upload the server takes at a trickle is cut by undici's headers timeout, which restarts only on each write
    // after the socket drained (see the net/http test of it).
    body = Readable.from(
      (async function* guarded(): AsyncGenerator<Uint8Array, void, undefined> {
        const chunks = source[Symbol.asyncIterator]();
        try {
          for (;;) {
            const next = await chunks.next().catch((e: unknown) => {
              bodyError = e;
              throw e;
            });
            if (next.done === true) return;
            // A failure of the request itself (a timeout, a reset) is thrown in here when undici destroys the body
            // stream: it is mapped like any request failure below, not taken for the source's.
            yield next.value;
          }
        } finally {
          if (bodyError === undefined) await chunks.return?.();
        }
      })(),
      { objectMode: false },
    );
  }
  let res: Dispatcher.ResponseData;
  try {
    res = await dispatcher.request({
      origin: url.origin,
      path: `${url.pathname}${url.search}`,
      method: method as Dispatcher.HttpMethod,
      headers: req.headers ?? {},
      body: body ?? null,
      // undici closes the connection after every HEAD (for servers that wrongly send a body); registries do not, and
      // a push sends a HEAD per blob and manifest: keep the connection (measured: 72 of 90 connections saved).
      ...(method === 'HEAD' ? { reset: false } : {}),
      signal: req.signal ?? null,
      headersTimeout: req.timeouts?.headersTimeoutMs ?? DEFAULT_HEADERS_TIMEOUT_MS,
      bodyTimeout: bodyTimeoutMs,
    });
  } catch (e) {
    if (bodyError !== undefined) {
      if (typeof bodyError === 'object' && bodyError !== null) bodyErrors.add(bodyError);
      throw bodyError;
    }
    throw fail(e);
  }
  const raw = res.body;
  // An answer counts once it is complete: at once when it has no body, else when its body has been read.
  const bodyless =
    method === 'HEAD' || res.statusCode === 204 || res.statusCode === 304 || res.headers['content-length'] === '0';
  if (bodyless) watch.answered();
  let consumed = false;
  const body$ = (async function* mapped(): AsyncGenerator<Uint8Array> {
    consumed = true;
    // Only the time spent waiting for the next chunk is the server's; the time suspended at `yield` is the reader's.
    const floor = new RateFloor({ windowMs: bodyTimeoutMs, minBytesPerSecond });
    const chunks = (raw as AsyncIterable<Buffer>)[Symbol.asyncIterator]();
    try {
      for (;;) {
        const asked = performance.now();
        const next = await chunks.next();
        if (next.done === true) break;
        floor.record(next.value.byteLength, performance.now() - asked);
        yield next.value;
      }
    } catch (e) {
      throw fail(e);
    } finally {
      // Ended early (a reader that stopped at a size limit, a body cut under the floor): the body is released
      // (destroyed) here, as for-await did.
      await chunks.return?.();
    }
    watch.answered();
  })();
  const readAll = async (limit: number, truncate: boolean): Promise<Uint8Array> => {
    const parts: Uint8Array[] = [];
    let total = 0;
    for await (const chunk of body$) {
      if (total + chunk.byteLength > limit) {
        if (!truncate) {
          raw.destroy();
          throw new MirrorError('BAD_INPUT', `response to ${method} ${redactUrl(url)} is larger than ${limit} bytes`, {
            method,
            url: redactUrl(url),
            status: res.statusCode,
          });
        }
        parts.push(chunk.subarray(0, limit - total));
        total = limit;
        raw.destroy();
        watch.answered();
        break;
      }
      parts.push(chunk);
      total += chunk.byteLength;
    }
    return Buffer.concat(parts, total);
  };
  return {
    status: res.statusCode,
    url,
    headers: flattenHeaders(res.headers),
    body: body$,
    async text(limit = DEFAULT_TEXT_LIMIT): Promise<string> {
      return Buffer.from(await readAll(limit, true)).toString('utf8');
    },
    bytes: (limit: number) => readAll(limit, false),
    async discard(): Promise<void> {
      // A body that cannot be dropped cleanly only costs the connection; a stalled one is still reported and counted.
      let failure: unknown;
      const onError = (e: unknown): void => {
        failure ??= e;
      };
      try {
        if (!consumed) {
          raw.on('error', onError);
          // dump() waits for up to DISCARD_LIMIT bytes however slowly they come (the body timeout catches only silence):
          // a trickle is cut after two body timeouts and a second (undici's timers are coarse: its own timeout of a
          // stalled body comes first and is reported) and costs the connection.
          const cut = setTimeout(() => raw.destroy(), 2 * bodyTimeoutMs + 1000);
          try {
            await raw.dump({ limit: DISCARD_LIMIT });
          } finally {
            clearTimeout(cut);
          }
          if (failure === undefined) {
            if (!bodyless) watch.answered();
          } else if (timeoutKind(failure) !== undefined) fail(failure);
        } else raw.destroy();
      } catch {
        // dump() resolves on close; nothing else to do.
      } finally {
        raw.off('error', onError);
      }
    },
  };
}

/** DISCARD_LIMIT is the most bytes of an unwanted body read to keep its connection; a longer body closes it. */
const DISCARD_LIMIT = 64 * 1024;

/** Codes of the three timeouts, by kind. */
const TIMEOUT_CODES: Record<string, TimeoutInfo['kind']> = {
  UND_ERR_CONNECT_TIMEOUT: 'connect',
  UND_ERR_HEADERS_TIMEOUT: 'headers',
  UND_ERR_BODY_TIMEOUT: 'body',
  [SLOW_TRANSFER_CODE]: 'slow',
};

/** Codes that say a host cannot be reached: final from a host that never answered, else a restart worth waiting for. */
const UNREACHABLE_CODES: ReadonlySet<string> = new Set(['ECONNREFUSED', 'EHOSTUNREACH', 'ENETUNREACH', 'ENETDOWN']);

/** timeoutKind tells which timeout an error (or its cause chain) is, if any. */
function timeoutKind(e: unknown): TimeoutInfo['kind'] | undefined {
  for (const { code } of errorChain(e)) if (code !== undefined && code in TIMEOUT_CODES) return TIMEOUT_CODES[code];
  return undefined;
}

/** timeoutMs gives the length of a timeout of this kind (`slow`: the body timeout, its window). */
function timeoutMs(kind: TimeoutInfo['kind'], timeouts: HttpTimeouts | undefined): number {
  if (kind === 'connect') return timeouts?.connectTimeoutMs ?? DEFAULT_CONNECT_TIMEOUT_MS;
  if (kind === 'headers') return timeouts?.headersTimeoutMs ?? DEFAULT_HEADERS_TIMEOUT_MS;
  return timeouts?.bodyTimeoutMs ?? DEFAULT_BODY_TIMEOUT_MS;
}

/**
 * judgeFailure adds what the host's history tells to a mapped NETWORK failure: a timeout is reported (`onTimeout`)
 * and counted, and becomes final once the host is down; a refused or unreachable host that never answered is final
 * (a wrong address, not a restart). Other failures pass through.
 */
function judgeFailure(err: MirrorError, raw: unknown, ctx: FailureContext, timeouts: HttpTimeouts | undefined, watch: HostWatch): MirrorError {
  if (err.code !== 'NETWORK' || err instanceof FinalNetworkError) return err;
  const kind = timeoutKind(raw);
  if (kind !== undefined) {
    const slow = errorChain(raw).find((c) => c.error instanceof SlowTransferError)?.error as SlowTransferError | undefined;
    const ms = slow?.waitedMs ?? timeoutMs(kind, timeouts);
    const host = ctx.url.host;
    try {
      timeouts?.onTimeout?.({ kind, ms, method: ctx.method, url: redactUrl(ctx.url), host });
    } catch {
      // a reporting callback must not change the outcome
    }
    const verdict = watch.timedOut(ms);
    if (!verdict.down) return err;
    if (slow !== undefined) {
      return new FinalNetworkError(
        `${host} kept transfers under ${describeRate(slow.minBytesPerSecond)} for ${formatSeconds(verdict.silentMs)} (${verdict.timeouts} requests in a row cut)`,
        { method: ctx.method, url: redactUrl(ctx.url), cause: err, hint: 'is the link or the registry overloaded? --timeout gives it a longer window' },
      );
    }
    return new FinalNetworkError(
      `no answer from ${host} for ${formatSeconds(verdict.silentMs)} (${verdict.timeouts} requests in a row timed out)`,
      {
        method: ctx.method,
        url: redactUrl(ctx.url),
        cause: err,
        hint: 'is it hung? --timeout gives it longer',
      },
    );
  }
  if (!watch.everAnswered) {
    for (const { code } of errorChain(raw)) {
      if (code !== undefined && UNREACHABLE_CODES.has(code)) {
        return new FinalNetworkError(err.message, { ...err.context, cause: raw, hint: err.hint ?? `is a registry running at ${ctx.url.host}?` });
      }
    }
  }
  return err;
}

/** FailureContext is what {@link mapHttpError} needs to describe a failure. */
export interface FailureContext {
  method: string;
  url: URL;
  settings?: HostSettings | undefined;
}

/** TLS_CERT_PROBLEMS maps OpenSSL/Node certificate error codes to what is wrong, for people. */
const TLS_CERT_PROBLEMS: Record<string, string> = {
  DEPTH_ZERO_SELF_SIGNED_CERT: 'the server certificate is self-signed and not trusted',
  SELF_SIGNED_CERT_IN_CHAIN: 'the server certificate chain ends in a self-signed CA that is not trusted',
  UNABLE_TO_GET_ISSUER_CERT_LOCALLY: 'the certificate is signed by an unknown CA, or the chain is incomplete',
  UNABLE_TO_GET_ISSUER_CERT: 'the certificate is signed by an unknown CA, or the chain is incomplete',
  UNABLE_TO_VERIFY_LEAF_SIGNATURE:
    'the certificate cannot be verified: signed by an unknown CA, or an incomplete chain (intermediate missing)',
  CERT_UNTRUSTED: 'the certificate is not trusted',
  CERT_SIGNATURE_FAILURE: 'the certificate signature is invalid',
  CERT_NOT_YET_VALID: 'the certificate is not valid yet (check the clock)',
  CERT_HAS_EXPIRED: 'the certificate has expired',
  ERR_TLS_CERT_ALTNAME_INVALID: 'the certificate does not name this host',
  CERT_REVOKED: 'the certificate has been revoked',
  INVALID_CA: 'a CA certificate in the chain is invalid',
  INVALID_PURPOSE: 'the certificate is not valid for a TLS server',
};

const TRUST_HINT = '--cacert FILE or a certs.d directory; --insecure-skip-tls-verify to skip checks';

/** Codes and messages of a TLS handshake with something that does not speak TLS. */
const NOT_TLS_CODES = new Set(['ERR_SSL_WRONG_VERSION_NUMBER', 'ERR_SSL_PACKET_LENGTH_TOO_LONG', 'ERR_SSL_HTTP_REQUEST']);
const NOT_TLS_MESSAGE = /wrong version number|packet length too long|http request/i;

/** Codes that say nothing answers at that address. */
const NETWORK_PROBLEMS: Record<string, string> = {
  ECONNREFUSED: 'connection refused',
  ENOTFOUND: 'host not found (DNS)',
  EAI_AGAIN: 'DNS lookup failed (temporary)',
  EHOSTUNREACH: 'host unreachable',
  ENETUNREACH: 'network unreachable',
  ECONNRESET: 'connection reset',
  EPIPE: 'connection closed while sending (broken pipe)',
  ETIMEDOUT: 'connection timed out',
  UND_ERR_CONNECT_TIMEOUT: 'connect timed out',
  UND_ERR_HEADERS_TIMEOUT: 'timed out waiting for the response',
  UND_ERR_BODY_TIMEOUT: 'timed out reading the response body (stalled)',
  UND_ERR_SOCKET: 'connection closed unexpectedly',
  UND_ERR_CLOSED: 'connection closed',
  UND_ERR_RES_CONTENT_LENGTH_MISMATCH: 'response body shorter than its Content-Length',
  UND_ERR_REQ_CONTENT_LENGTH_MISMATCH: 'request body length differs from its Content-Length',
};

/** What to check when nothing answers at an address, by error code (the fix of a one-line error). */
const NETWORK_HINTS: Record<string, string> = {
  ECONNREFUSED: 'check the registry address and port, and that the registry is running',
  ENOTFOUND: 'check the registry host name (and DNS, or HTTPS_PROXY)',
  EHOSTUNREACH: 'check the registry address and the route to it (or HTTPS_PROXY)',
  ENETUNREACH: 'check the registry address and the route to it (or HTTPS_PROXY)',
};

/** errorCodes lists the `code`s along an error's cause chain. */
function errorChain(e: unknown): Array<{ code: string | undefined; message: string; error: unknown }> {
  const out: Array<{ code: string | undefined; message: string; error: unknown }> = [];
  let cur: unknown = e;
  for (let i = 0; i < 6 && cur !== undefined && cur !== null; i++) {
    const code = typeof cur === 'object' ? (cur as { code?: unknown }).code : undefined;
    const message = cur instanceof Error ? cur.message : String(cur);
    out.push({ code: typeof code === 'string' ? code : undefined, message, error: cur });
    cur = cur instanceof Error ? cur.cause : undefined;
  }
  return out;
}

/**
 * mapHttpError turns a low-level failure of a request into a one-line MirrorError: certificate problems become
 * `TLS` (naming what is wrong and how to fix it), an https request answered in plain HTTP says so, refused/DNS/reset
 * and timeouts become `NETWORK` (the original error kept as `cause`, so retry decisions can see its code); an abort
 * becomes `INTERRUPTED`. MirrorErrors pass through.
 */
export function mapHttpError(e: unknown, ctx: FailureContext, signal?: AbortSignal): MirrorError {
  if (isMirrorError(e)) return e;
  if (signal?.aborted) return abortError(signal);
  const url = redactUrl(ctx.url);
  const host = ctx.url.host;
  const where = { method: ctx.method, url, cause: e };
  const chain = errorChain(e);
  for (const { code, message } of chain) {
    if (code !== undefined && code in TLS_CERT_PROBLEMS) {
      const problem = TLS_CERT_PROBLEMS[code] ?? code;
      const origins = ctx.settings?.tls.origins;
      const from = origins !== undefined && origins.length > 0 ? ` (CA from ${origins.join(', ')})` : '';
      if (code === 'ERR_TLS_CERT_ALTNAME_INVALID') {
        const name = ctx.url.hostname.replace(/^\[|\]$/g, '');
        const isIp = /^[\d.]+$|:/.test(name);
        return new MirrorError('TLS', `TLS: ${isIp ? 'IP address' : 'host name'} ${name} is not in the certificate of ${host}`, {
          ...where,
          hint: `use the name the certificate was issued for, or reissue it with ${isIp ? `IP:${name}` : `DNS:${name}`} in subjectAltName`,
        });
      }
      if (code === 'CERT_HAS_EXPIRED' || code === 'CERT_NOT_YET_VALID') {
        return new MirrorError('TLS', `TLS: ${problem} for ${host} [${code}]`, {
          ...where,
          hint: 'renew the registry certificate; --insecure-skip-tls-verify to skip checks',
        });
      }
      return new MirrorError('TLS', `TLS: ${problem} for ${host}${from} [${code}]`, { ...where, hint: TRUST_HINT });
    }
    if ((code !== undefined && NOT_TLS_CODES.has(code)) || (code === 'EPROTO' && NOT_TLS_MESSAGE.test(message))) {
      return new MirrorError('TLS', `TLS: ${host} answered an https request in plain HTTP`, {
        ...where,
        hint: `use http://${host} or --plain-http if the registry has no TLS`,
      });
    }
  }
  for (const { error } of chain) {
    if (error instanceof SlowTransferError) return new MirrorError('NETWORK', `${ctx.method} ${url}: ${error.message}`, where);
  }
  for (const { code } of chain) {
    if (code !== undefined && code in NETWORK_PROBLEMS) {
      const viaProxy = ctx.settings?.proxy ? ` via proxy ${redactUrl(ctx.settings.proxy)}` : '';
      return new MirrorError('NETWORK', `${ctx.method} ${url}${viaProxy}: ${NETWORK_PROBLEMS[code] ?? code}`, { ...where, hint: NETWORK_HINTS[code] });
    }
  }
  for (const { code, message } of chain) {
    if (code !== undefined && /^ERR_SSL_|^ERR_TLS_|^EPROTO$/.test(code)) {
      return new MirrorError('TLS', `TLS handshake with ${host} failed: ${oneLine(message)}`, { ...where, hint: TRUST_HINT });
    }
  }
  const first = chain[0];
  const text = first !== undefined ? oneLine(first.message) : 'request failed';
  return new MirrorError('NETWORK', `${ctx.method} ${url}: ${scrub(text)}`, where);
}

/** oneLine keeps the first line of a message, secrets out before it is cut. */
function oneLine(message: string): string {
  return safeExcerpt(message, 300);
}

/** scrub removes anything that looks like credentials in a URL inside a message. */
function scrub(text: string): string {
  return text.replace(/\/\/[^/\s@]+@/g, '//');
}

/** PROBE_TIMEOUT_MS bounds {@link probeTlsRefusal}. */
export const PROBE_TIMEOUT_MS = 5_000;

/**
 * probeTlsRefusal explains an https connection the server closed without an answer: it opens one TLS connection
 * (same TLS settings), sends a request, and reports a certificate alert the server sends back — with TLS 1.3 a
 * registry that wants a client certificate says so only after the handshake, which HTTP clients see as a plain
 * "connection closed". Gives a one-line cause, or undefined when the probe shows nothing about certificates.
 */
export async function probeTlsRefusal(url: URL, settings: HostSettings): Promise<string | undefined> {
  if (url.protocol !== 'https:') return undefined;
  const opts = tlsOptions(settings);
  return new Promise((resolve) => {
    let done = false;
    const finish = (why: string | undefined): void => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      socket.destroy();
      resolve(why);
    };
    const socket = nodeTls.connect({
      host: url.hostname.replace(/^\[|\]$/g, ''),
      port: Number(url.port || 443),
      servername: /^[\d.]+$|:/.test(url.hostname) ? undefined : url.hostname,
      ...opts,
    });
    const timer = setTimeout(() => finish(undefined), PROBE_TIMEOUT_MS);
    socket.once('secureConnect', () => socket.write(`GET /v2/ HTTP/1.1\r\nHost: ${url.host}\r\nConnection: close\r\n\r\n`));
    socket.once('data', () => finish(undefined));
    socket.once('error', (e: NodeJS.ErrnoException) => {
      const text = `${e.code ?? ''} ${e.message}`;
      if (/CERTIFICATE_REQUIRED|BAD_CERTIFICATE|UNKNOWN_CA|HANDSHAKE_FAILURE/i.test(text)) {
        finish(
          settings.tls.cert === undefined
            ? 'the registry asks for a client certificate and none was given'
            : 'the registry refused the client certificate',
        );
      } else finish(undefined);
    });
    socket.once('close', () => finish(undefined));
  });
}
