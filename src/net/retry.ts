/**
 * The one retry policy of the tool: which statuses and errors are worth another try, how long to wait
 * (exponential backoff with full jitter, `Retry-After` honoured up to the cap), and a runner that bounds the tries,
 * reports each retry as an event and stops at once when its AbortSignal fires.
 */
import { abortError, isMirrorError, redactUrl, safeExcerpt, throwIfAborted } from '../errors/index.js';
import { noEvents, type EventSink } from '../events/index.js';
import { DEFAULT_RETRY_TIMES, type RetryOptions } from './types.js';
import { SLOW_TRANSFER_CODE } from './rate-floor.js';

/**
 * DEFAULT_BASE_DELAY_MS is the ceiling of the first backoff delay when {@link RetryOptions.baseDelayMs} is not given.
 * With equal jitter the waits are 0.25-0.5 s, 0.5-1 s, 1-2 s, 2-4 s, 4-8 s: at least 7.75 s in all over the default
 * 5 retries, so a registry that restarts (refusing connections for a few seconds) is ridden out.
 */
export const DEFAULT_BASE_DELAY_MS = 500;
/** DEFAULT_MAX_DELAY_MS caps every delay (and Retry-After) when {@link RetryOptions.maxDelayMs} is not given. */
export const DEFAULT_MAX_DELAY_MS = 30_000;

/** RETRYABLE_STATUSES are the HTTP statuses worth trying again: timeouts, rate limits and server-side failures. */
export const RETRYABLE_STATUSES: ReadonlySet<number> = new Set([408, 429, 500, 502, 503, 504]);

/**
 * Error codes (Node, undici) of a connection that broke, stalled or could not be opened: worth another try. Refused
 * and unreachable count too (a registry restarting); `src/net/http.ts` marks them final for a host that never
 * answered, so a wrong address still fails at once.
 */
const RETRYABLE_CODES: ReadonlySet<string> = new Set([
  'ECONNREFUSED',
  'EHOSTUNREACH',
  'ENETUNREACH',
  'ENETDOWN',
  'ECONNRESET',
  'EPIPE',
  'ETIMEDOUT',
  'ECONNABORTED',
  'EAI_AGAIN',
  'UND_ERR_SOCKET',
  'UND_ERR_CONNECT_TIMEOUT',
  'UND_ERR_HEADERS_TIMEOUT',
  'UND_ERR_BODY_TIMEOUT',
  'UND_ERR_CLOSED',
  'UND_ERR_RES_CONTENT_LENGTH_MISMATCH',
  'ERR_STREAM_PREMATURE_CLOSE',
  SLOW_TRANSFER_CODE,
]);

/** Message fragments of a broken connection, for errors that carry no code. */
const RETRYABLE_MESSAGES = /other side closed|socket hang up|socket closed|premature close|terminated|timed? ?out/i;

/** ResolvedRetryOptions are {@link RetryOptions} with every default filled in. */
export interface ResolvedRetryOptions {
  retries: number;
  baseDelayMs: number;
  maxDelayMs: number;
}

/** resolveRetryOptions fills in the defaults of {@link RetryOptions}. */
export function resolveRetryOptions(options: RetryOptions = {}): ResolvedRetryOptions {
  return {
    retries: Math.max(0, Math.floor(options.retries ?? DEFAULT_RETRY_TIMES)),
    baseDelayMs: Math.max(0, options.baseDelayMs ?? DEFAULT_BASE_DELAY_MS),
    maxDelayMs: Math.max(0, options.maxDelayMs ?? DEFAULT_MAX_DELAY_MS),
  };
}

/**
 * parseRetryAfter turns a `Retry-After` value (delay in seconds, or an HTTP-date) into milliseconds from `now`;
 * undefined when absent or unparsable. A date in the past gives 0.
 */
export function parseRetryAfter(value: string | null | undefined, now: number = Date.now()): number | undefined {
  if (value === undefined || value === null) return undefined;
  const text = value.trim();
  if (text === '') return undefined;
  if (/^\d+(?:\.\d+)?$/.test(text)) return Math.round(Number(text) * 1000);
  if (!/[a-z]/i.test(text)) return undefined; // an HTTP-date names a day and a month
  const when = Date.parse(text);
  if (Number.isNaN(when)) return undefined;
  return Math.max(0, when - now);
}

/**
 * retryDelay gives the wait before retry number `attempt` (1 for the first retry): equal jitter over the ceiling
 * `baseDelayMs * 2^(attempt-1)` (capped at `maxDelayMs`), that is half the ceiling plus a random part of the other
 * half, so the waits spread clients apart yet always add up to a known least time; a parsable `Retry-After`
 * replaces it (also capped).
 */
export function retryDelay(
  attempt: number,
  options: { baseDelayMs: number; maxDelayMs: number },
  retryAfterHeader?: string | null,
  random: () => number = Math.random,
  now: number = Date.now(),
): number {
  const retryAfter = parseRetryAfter(retryAfterHeader, now);
  if (retryAfter !== undefined) return Math.min(retryAfter, options.maxDelayMs);
  const exponent = Math.min(Math.max(attempt - 1, 0), 30);
  const ceiling = Math.min(options.maxDelayMs, options.baseDelayMs * 2 ** exponent);
  return Math.floor(ceiling / 2 + random() * (ceiling / 2));
}

/** isRetryableStatus tells whether an HTTP status is worth another try (408, 429, 500, 502, 503, 504). */
export function isRetryableStatus(status: number): boolean {
  return RETRYABLE_STATUSES.has(status);
}

/** causes walks an error and its `cause` chain (bounded). */
function* causes(e: unknown): Generator<unknown> {
  let cur: unknown = e;
  for (let depth = 0; depth < 8 && cur !== undefined && cur !== null; depth++) {
    yield cur;
    cur = cur instanceof Error ? cur.cause : undefined;
  }
}

/**
 * isRetryableError tells whether a thrown error is a broken or stalled connection (reset, broken pipe, socket
 * closed, timeouts) or carries a retryable HTTP status — not an abort, not a TLS or auth failure, not a 4xx.
 */
export function isRetryableError(e: unknown): boolean {
  for (const c of causes(e)) {
    if (isMirrorError(c)) {
      if (c.code === 'INTERRUPTED' || c.code === 'TLS' || c.code === 'AUTH' || c.code === 'DIGEST_MISMATCH') return false;
      if ((c as { retryable?: unknown }).retryable === false) return false;
      if (c.context.status !== undefined) return isRetryableStatus(c.context.status);
    }
    if (typeof c !== 'object' || c === null) continue;
    const code = (c as { code?: unknown }).code;
    if (typeof code === 'string' && RETRYABLE_CODES.has(code)) return true;
    if (c instanceof Error && c.name !== 'AbortError' && RETRYABLE_MESSAGES.test(c.message)) {
      if (!isMirrorError(c) || c.code === 'NETWORK') return true;
    }
  }
  return false;
}

/** retryAfterOf gives the `Retry-After` header an error carries (see `RegistryHttpError`), if any. */
export function retryAfterOf(e: unknown): string | undefined {
  for (const c of causes(e)) {
    const v = typeof c === 'object' && c !== null ? (c as { retryAfter?: unknown }).retryAfter : undefined;
    if (typeof v === 'string') return v;
  }
  return undefined;
}

/** sleep waits `ms` milliseconds; rejects with an INTERRUPTED error as soon as `signal` aborts. */
export function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal?.aborted) {
      reject(abortError(signal));
      return;
    }
    const onAbort = (): void => {
      clearTimeout(timer);
      reject(abortError(signal));
    };
    const timer = setTimeout(() => {
      signal?.removeEventListener('abort', onAbort);
      resolve();
    }, Math.max(0, ms));
    signal?.addEventListener('abort', onAbort, { once: true });
  });
}

/** RetryContext describes the request being retried, for `retry` events. */
export interface RetryContext {
  /** HTTP method (or a verb such as `UPLOAD`) shown in the event. */
  method: string;
  /** URL shown in the event, or how to find it when the retry happens (an upload session moves); it is redacted here. */
  url: string | URL | (() => string | URL);
}

/** WithRetryOptions tune {@link withRetry}. */
export interface WithRetryOptions extends RetryContext {
  /** Bounds and delays. Defaults: {@link DEFAULT_RETRY_TIMES} retries, {@link DEFAULT_BASE_DELAY_MS}, {@link DEFAULT_MAX_DELAY_MS}. */
  retry?: RetryOptions | undefined;
  /** Where `retry` events go. Default: dropped. */
  events?: EventSink | undefined;
  /** Aborts the attempt in progress (if it honours the signal) and any backoff sleep. */
  signal?: AbortSignal | undefined;
  /** Decides whether an error is worth another try. Default: {@link isRetryableError}. */
  shouldRetry?: ((error: unknown, attempt: number) => boolean) | undefined;
  /**
   * Runs before the backoff sleep of each retry, once the `retry` event is out: what the failed attempt left behind
   * is released here (an upload session cancelled, a one-time source marked unread). Default: nothing.
   */
  onRetry?: ((error: unknown, attempt: number) => Promise<void> | void) | undefined;
  /** Random source for jitter (tests). Default: Math.random. */
  random?: (() => number) | undefined;
}

/**
 * withRetry runs `attempt` (given the 0-based try number) until it succeeds, fails with an error that is not
 * retryable, or the retries are spent; before each retry it emits a `retry` event and sleeps the backoff delay
 * (or the error's Retry-After), aborting the sleep when `signal` fires.
 */
export async function withRetry<T>(attempt: (tryNumber: number) => Promise<T>, options: WithRetryOptions): Promise<T> {
  const policy = resolveRetryOptions(options.retry);
  const shouldRetry = options.shouldRetry ?? isRetryableError;
  for (let tryNumber = 0; ; tryNumber++) {
    throwIfAborted(options.signal);
    try {
      return await attempt(tryNumber);
    } catch (e) {
      if (options.signal?.aborted) throw abortError(options.signal);
      if (tryNumber >= policy.retries || !shouldRetry(e, tryNumber)) throw e;
      await backoff(e, tryNumber + 1, policy, options);
    }
  }
}

/**
 * backoff is the step between two tries, the same for every kind of retry: the `retry` event, the caller's
 * `onRetry`, then the delay (the error's Retry-After when it has one), cut short by the signal.
 */
async function backoff(e: unknown, attempt: number, policy: ResolvedRetryOptions, options: WithRetryOptions): Promise<void> {
  const delayMs = retryDelay(attempt, policy, retryAfterOf(e), options.random);
  const url = typeof options.url === 'function' ? options.url() : options.url;
  (options.events ?? noEvents)({ type: 'retry', method: options.method, url: redactUrl(url), attempt, delayMs, reason: retryReason(e) });
  await options.onRetry?.(e, attempt);
  await sleep(delayMs, options.signal);
}

/** ResumeOptions tune {@link resumeStream}. */
export interface ResumeOptions extends WithRetryOptions {
  /** Where the first body starts in the whole (the bytes before it are not read). Default 0. */
  offset?: number | undefined;
  /** True once the reader gave up the stream on purpose: an error then is not a cut to resume. Default: never. */
  cancelled?: (() => boolean) | undefined;
}

/**
 * resumeStream reads a body that can be reopened at an offset (a GET answered with `Range`): it yields `first`, and
 * when the body is cut by a retryable error it waits the backoff of {@link withRetry} and calls `open` with the
 * offset reached, at most `retry.retries` times in all. Errors of `open` itself are `open`'s to retry.
 */
export async function* resumeStream(
  first: AsyncIterable<Uint8Array>,
  open: (offset: number) => Promise<AsyncIterable<Uint8Array>>,
  options: ResumeOptions,
): AsyncGenerator<Uint8Array, void, undefined> {
  const policy = resolveRetryOptions(options.retry);
  const shouldRetry = options.shouldRetry ?? isRetryableError;
  let offset = options.offset ?? 0;
  let body = first;
  for (let resumes = 0; ; ) {
    try {
      for await (const chunk of body) {
        offset += chunk.byteLength;
        yield chunk;
      }
      return;
    } catch (e) {
      if (options.cancelled?.() === true || resumes >= policy.retries || !shouldRetry(e, resumes)) throw e;
      resumes++;
      await backoff(e, resumes, policy, options);
      body = await open(offset);
    }
  }
}

/** retryReason gives a short, secret-free reason for a retry event. */
export function retryReason(e: unknown): string {
  if (isMirrorError(e)) {
    const status = e.context.status;
    const code = e.context.registryCode;
    if (status !== undefined) return `HTTP ${status}${code ? ` ${code}` : ''}`;
  }
  for (const c of causes(e)) {
    const code = typeof c === 'object' && c !== null ? (c as { code?: unknown }).code : undefined;
    if (typeof code === 'string' && RETRYABLE_CODES.has(code)) return code;
  }
  if (e instanceof Error) return safeExcerpt(e.message || e.name, 200);
  return safeExcerpt(String(e), 200);
}
