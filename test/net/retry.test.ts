/** The retry policy: delays, Retry-After, what is retryable, and the bounded runner. */
import assert from 'node:assert/strict';
import { MirrorError } from '../../src/errors/index.js';
import type { ProgressEvent } from '../../src/events/index.js';
import { FinalNetworkError } from '../../src/net/http.js';
import {
  isRetryableError,
  isRetryableStatus,
  parseRetryAfter,
  resolveRetryOptions,
  resumeStream,
  retryDelay,
  sleep,
  withRetry,
} from '../../src/net/retry.js';
import { RegistryHttpError, StreamConsumedError } from '../../src/registry/errors.js';

const policy = { baseDelayMs: 100, maxDelayMs: 5_000 };

describe('net/retry', () => {
  describe('retryDelay', () => {
    it('is equal jitter over an exponential ceiling: half of it, plus a random part of the other half', () => {
      assert.equal(retryDelay(1, policy, undefined, () => 0.999999), 99);
      assert.equal(retryDelay(1, policy, undefined, () => 0), 50);
      assert.equal(retryDelay(2, policy, undefined, () => 0.5), 150);
      assert.equal(retryDelay(4, policy, undefined, () => 0.5), 600);
      assert.equal(retryDelay(3, policy, undefined, () => 0), 200);
    });

    it('with the defaults, the retries of one request wait at least several seconds in all (a registry restart)', () => {
      const defaults = resolveRetryOptions();
      const total = (random: () => number): number => {
        let sum = 0;
        for (let attempt = 1; attempt <= defaults.retries; attempt++) sum += retryDelay(attempt, defaults, undefined, random);
        return sum;
      };
      assert.equal(total(() => 0), 7_750, 'the least wait over the default 5 retries');
      assert.ok(total(() => 0.999999) <= 15_500);
    });

    it('never exceeds maxDelayMs, even for huge attempts', () => {
      for (const attempt of [1, 5, 10, 50, 1000]) {
        const d = retryDelay(attempt, policy, undefined, () => 0.999999);
        assert.ok(d >= 0 && d < policy.maxDelayMs, `${attempt}: ${d}`);
      }
    });

    it('honours Retry-After in seconds and as an HTTP date, capped at maxDelayMs', () => {
      const now = Date.parse('2024-01-01T00:00:00Z');
      assert.equal(retryDelay(1, policy, '2', () => 0, now), 2000);
      assert.equal(retryDelay(1, policy, '0', () => 0.9, now), 0);
      assert.equal(retryDelay(1, policy, 'Mon, 01 Jan 2024 00:00:03 GMT', () => 0, now), 3000);
      assert.equal(retryDelay(1, policy, '3600', () => 0, now), 5000, 'capped');
      assert.equal(retryDelay(1, policy, 'Sun, 31 Dec 2023 23:00:00 GMT', () => 0, now), 0, 'a date in the past');
      assert.equal(retryDelay(2, policy, 'soon', () => 0.5, now), 150, 'unparsable: backoff');
    });

    it('parseRetryAfter reads seconds, fractions and dates', () => {
      assert.equal(parseRetryAfter(undefined), undefined);
      assert.equal(parseRetryAfter(''), undefined);
      assert.equal(parseRetryAfter(' 5 '), 5000);
      assert.equal(parseRetryAfter('1.5'), 1500);
      assert.equal(parseRetryAfter('-1'), undefined);
    });
  });

  describe('what is retryable', () => {
    it('statuses: 408, 429, 500, 502, 503, 504 only', () => {
      for (const s of [408, 429, 500, 502, 503, 504]) assert.ok(isRetryableStatus(s), String(s));
      for (const s of [200, 201, 400, 401, 403, 404, 405, 409, 413, 416, 501, 505]) assert.ok(!isRetryableStatus(s), String(s));
    });

    it('errors: resets, broken pipes, closed sockets and timeouts, also as causes', () => {
      const coded = (code: string, message = code): Error => Object.assign(new Error(message), { code });
      for (const code of ['ECONNRESET', 'EPIPE', 'UND_ERR_SOCKET', 'UND_ERR_HEADERS_TIMEOUT', 'UND_ERR_BODY_TIMEOUT', 'UND_ERR_CONNECT_TIMEOUT', 'ETIMEDOUT']) {
        assert.ok(isRetryableError(coded(code)), code);
        assert.ok(isRetryableError(new MirrorError('NETWORK', 'x', { cause: coded(code) })), `${code} as cause`);
      }
      assert.ok(isRetryableError(new Error('other side closed')));
      assert.ok(isRetryableError(new Error('socket hang up')));
    });

    it('refused and unreachable are retryable (a restarting registry); the HTTP layer makes them final for a host that never answered', () => {
      const coded = (code: string): Error => Object.assign(new Error(code), { code });
      for (const code of ['ECONNREFUSED', 'EHOSTUNREACH', 'ENETUNREACH']) {
        assert.ok(isRetryableError(coded(code)), code);
        assert.ok(isRetryableError(new MirrorError('NETWORK', 'x', { cause: coded(code) })), `${code} as cause`);
      }
      assert.ok(!isRetryableError(new FinalNetworkError('refused', { cause: coded('ECONNREFUSED') })));
    });

    it('not: DNS, TLS, auth, 4xx, aborts, digest mismatches, consumed streams', () => {
      const coded = (code: string): Error => Object.assign(new Error(code), { code });
      assert.ok(!isRetryableError(coded('ENOTFOUND')));
      assert.ok(!isRetryableError(new MirrorError('TLS', 'x', { cause: coded('ECONNRESET') })));
      assert.ok(!isRetryableError(new MirrorError('AUTH', 'x', { status: 401 })));
      assert.ok(!isRetryableError(new MirrorError('INTERRUPTED', 'x')));
      assert.ok(!isRetryableError(new RegistryHttpError('REGISTRY', 'x', { status: 400 })));
      assert.ok(!isRetryableError(new RegistryHttpError('NOT_FOUND', 'x', { status: 404 })));
      assert.ok(isRetryableError(new RegistryHttpError('REGISTRY', 'x', { status: 503 })));
      assert.ok(!isRetryableError(new StreamConsumedError('x', { cause: coded('ECONNRESET') })));
    });
  });

  describe('withRetry', () => {
    it('retries retryable failures, reports each retry, and returns the success', async () => {
      const events: ProgressEvent[] = [];
      let calls = 0;
      const result = await withRetry(
        async () => {
          calls++;
          if (calls < 3) throw new RegistryHttpError('REGISTRY', 'busy', { status: 503, registryCode: 'UNAVAILABLE' });
          return 'done';
        },
        { method: 'GET', url: 'http://r/v2/x?_state=SECRET', retry: { retries: 5, baseDelayMs: 1 }, events: (e) => events.push(e) },
      );
      assert.equal(result, 'done');
      assert.equal(calls, 3);
      assert.deepEqual(
        events.map((e) => (e.type === 'retry' ? [e.attempt, e.reason, e.url] : e.type)),
        [
          [1, 'HTTP 503 UNAVAILABLE', 'http://r/v2/x?_state=REDACTED'],
          [2, 'HTTP 503 UNAVAILABLE', 'http://r/v2/x?_state=REDACTED'],
        ],
      );
    });

    it('is bounded by retries', async () => {
      let calls = 0;
      await assert.rejects(
        withRetry(
          async () => {
            calls++;
            throw Object.assign(new Error('reset'), { code: 'ECONNRESET' });
          },
          { method: 'GET', url: 'http://r/', retry: { retries: 2, baseDelayMs: 1 } },
        ),
        /reset/,
      );
      assert.equal(calls, 3);
    });

    it('never retries a 401 or other 4xx', async () => {
      for (const status of [400, 401, 403, 404]) {
        let calls = 0;
        await assert.rejects(
          withRetry(
            async () => {
              calls++;
              throw new RegistryHttpError(status === 401 || status === 403 ? 'AUTH' : 'REGISTRY', 'no', { status });
            },
            { method: 'GET', url: 'http://r/', retry: { retries: 3, baseDelayMs: 1 } },
          ),
        );
        assert.equal(calls, 1, String(status));
      }
    });

    it('an abort during the backoff sleep ends at once with INTERRUPTED', async () => {
      const controller = new AbortController();
      const started = Date.now();
      setTimeout(() => controller.abort(), 50);
      await assert.rejects(
        withRetry(
          async () => {
            throw new RegistryHttpError('REGISTRY', 'slow down', { status: 429, retryAfter: '30' });
          },
          { method: 'GET', url: 'http://r/', retry: { retries: 3, maxDelayMs: 60_000 }, signal: controller.signal },
        ),
        (e: unknown) => e instanceof MirrorError && e.code === 'INTERRUPTED',
      );
      assert.ok(Date.now() - started < 5_000);
    });

    it('sleep resolves after the delay and rejects when already aborted', async () => {
      const t = Date.now();
      await sleep(20);
      assert.ok(Date.now() - t >= 15);
      await assert.rejects(sleep(10_000, AbortSignal.abort()), (e: unknown) => e instanceof MirrorError && e.code === 'INTERRUPTED');
    });
    it('onRetry runs after the retry event and before the next try; the URL is asked for when the retry happens', async () => {
      const order: string[] = [];
      let location = 'http://r/v2/x/blobs/uploads/1';
      let calls = 0;
      const result = await withRetry(
        async (n) => {
          order.push(`try ${n}`);
          calls++;
          location = `http://r/v2/x/blobs/uploads/${calls + 1}`;
          if (calls < 3) throw Object.assign(new Error('reset'), { code: 'ECONNRESET' });
          return calls;
        },
        {
          method: 'UPLOAD',
          url: () => location,
          retry: { retries: 5, baseDelayMs: 1 },
          events: (e) => order.push(e.type === 'retry' ? `event ${e.attempt} ${e.url}` : e.type),
          onRetry: async (e, attempt) => {
            order.push(`onRetry ${attempt} ${(e as Error).message}`);
          },
        },
      );
      assert.equal(result, 3);
      assert.deepEqual(order, [
        'try 0',
        'event 1 http://r/v2/x/blobs/uploads/2',
        'onRetry 1 reset',
        'try 1',
        'event 2 http://r/v2/x/blobs/uploads/3',
        'onRetry 2 reset',
        'try 2',
      ]);
    });
  });

  describe('resumeStream', () => {
    /** body yields the chunks, then fails with `error` when given. */
    async function* body(chunks: string[], error?: Error): AsyncGenerator<Uint8Array> {
      for (const c of chunks) yield Buffer.from(c);
      if (error) throw error;
    }
    const reset = (): Error => Object.assign(new Error('socket hang up'), { code: 'ECONNRESET' });

    it('reopens a cut body at the offset reached, with the retry event, until it ends', async () => {
      const opened: number[] = [];
      const events: ProgressEvent[] = [];
      const whole = 'abcdefghij';
      const out: string[] = [];
      for await (const chunk of resumeStream(
        body(['abc', 'de'], reset()),
        async (offset) => {
          opened.push(offset);
          return offset < 8 ? body([whole.slice(offset, offset + 3)], reset()) : body([whole.slice(offset)]);
        },
        { method: 'GET', url: 'http://r/v2/x/blobs/sha256:1', retry: { retries: 5, baseDelayMs: 1 }, events: (e) => events.push(e) },
      )) {
        out.push(Buffer.from(chunk).toString());
      }
      assert.equal(out.join(''), whole);
      assert.deepEqual(opened, [5, 8]);
      assert.deepEqual(
        events.map((e) => (e.type === 'retry' ? `${e.method} ${e.attempt} ${e.reason}` : e.type)),
        ['GET 1 ECONNRESET', 'GET 2 ECONNRESET'],
      );
    });

    it('counts from the offset it started at, and is bounded by retries', async () => {
      const opened: number[] = [];
      const read = async (): Promise<string> => {
        let s = '';
        for await (const chunk of resumeStream(body(['xy'], reset()), async (offset) => (opened.push(offset), body(['z'], reset())), {
          method: 'GET',
          url: 'http://r/',
          retry: { retries: 2, baseDelayMs: 1 },
          offset: 100,
        })) {
          s += Buffer.from(chunk).toString();
        }
        return s;
      };
      await assert.rejects(read(), /socket hang up/);
      assert.deepEqual(opened, [102, 103]);
    });

    it('does not resume what is not a cut: a 4xx, or a body the reader cancelled', async () => {
      let opened = 0;
      const denied = new RegistryHttpError('AUTH', 'denied', { status: 403 });
      const first = resumeStream(body(['a'], denied), async () => (opened++, body([])), { method: 'GET', url: 'http://r/', retry: { retries: 3, baseDelayMs: 1 } });
      await assert.rejects((async () => { for await (const _ of first) void _; })(), /denied/);
      let cancelled = false;
      const second = resumeStream(body(['a'], reset()), async () => (opened++, body([])), {
        method: 'GET',
        url: 'http://r/',
        retry: { retries: 3, baseDelayMs: 1 },
        cancelled: () => cancelled,
      });
      await assert.rejects(
        (async () => {
          for await (const _ of second) cancelled = true;
        })(),
        /socket hang up/,
      );
      assert.equal(opened, 0);
    });
  });
});
