/**
 * A per-host request limiter, so that a sync of thousands of tags stays within what a registry such as Docker Hub
 * allows: at most `concurrency` requests waiting for their answer at once, at most `perSecond` requests started per
 * second (spaced evenly), and, when the registry answers 429 with `Retry-After` anyway, every request to that host
 * held back until then (the answered request itself is retried by `withRetry`, which honours the same header).
 * A response body that is being read no longer counts: a blob streamed from one request into another's upload
 * can never wait on itself.
 */
import { abortError } from '../errors/index.js';
import { parseRetryAfter, sleep } from '../net/retry.js';

/** RequestLimits bound the requests sent to one registry host. Every field is optional; absent means unbounded. */
export interface RequestLimits {
  /** Requests waiting for their answer at once (a body being read does not count). Default: unbounded. */
  concurrency?: number | undefined;
  /** Requests started per second, spaced evenly (no bursts). Default: unbounded. */
  perSecond?: number | undefined;
}

/** MAX_PAUSE_MS caps how long one `Retry-After` holds back a host. */
export const MAX_PAUSE_MS = 60_000;

/** RequestLimiter hands out slots for requests to one host. */
export class RequestLimiter {
  private active = 0;
  private readonly waiting: Array<() => void> = [];
  /** Epoch ms before which no request may start (rate spacing and Retry-After). */
  private nextStart = 0;
  private readonly spacingMs: number;
  private readonly concurrency: number;

  constructor(limits: RequestLimits, private readonly now: () => number = Date.now) {
    this.concurrency = limits.concurrency !== undefined && limits.concurrency > 0 ? Math.floor(limits.concurrency) : Infinity;
    this.spacingMs = limits.perSecond !== undefined && limits.perSecond > 0 ? 1000 / limits.perSecond : 0;
  }

  /** run waits for a slot, runs `send`, and frees the slot once it has answered (or failed). */
  async run<T extends { status: number; headers: Record<string, string> }>(send: () => Promise<T>, signal?: AbortSignal): Promise<T> {
    await this.acquire(signal);
    try {
      const res = await send();
      if (res.status === 429) this.pause(parseRetryAfter(res.headers['retry-after']) ?? 1000);
      return res;
    } finally {
      this.release();
    }
  }

  /** pause holds back every request to the host for `ms` (capped at {@link MAX_PAUSE_MS}). */
  pause(ms: number): void {
    this.nextStart = Math.max(this.nextStart, this.now() + Math.min(Math.max(0, ms), MAX_PAUSE_MS));
  }

  private async acquire(signal: AbortSignal | undefined): Promise<void> {
    if (signal?.aborted) throw abortError(signal);
    if (this.active < this.concurrency) this.active++;
    else {
      // The slot is handed over by release(): `active` stays as it is.
      await new Promise<void>((resolve, reject) => {
        const onAbort = (): void => {
          const i = this.waiting.indexOf(wake);
          if (i >= 0) this.waiting.splice(i, 1);
          reject(abortError(signal));
        };
        const wake = (): void => {
          signal?.removeEventListener('abort', onAbort);
          resolve();
        };
        this.waiting.push(wake);
        signal?.addEventListener('abort', onAbort, { once: true });
      });
    }
    // Spacing: each request takes the next start time; a wait is served after the slot is held.
    const now = this.now();
    const start = Math.max(now, this.nextStart);
    this.nextStart = start + this.spacingMs;
    if (start > now) {
      try {
        await sleep(start - now, signal);
      } catch (e) {
        this.release();
        throw e;
      }
    }
  }

  private release(): void {
    const next = this.waiting.shift();
    if (next !== undefined) next();
    else this.active--;
  }
}

