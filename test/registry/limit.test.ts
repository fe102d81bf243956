/**
 * The per-host request limiter: concurrency bound (slots handed over, never exceeded), even spacing for requests per
 * second, a 429's Retry-After holding back every request to the host, aborts while waiting; and the limiter in a
 * RegistryClient against a real docker-registry.
 */
import assert from 'node:assert/strict';
import { closeAll } from '../../src/net/http.js';
import { RegistryClient } from '../../src/registry/index.js';
import { RequestLimiter } from '../../src/registry/limit.js';
import { staticSettings } from '../helpers/image.js';
import { startFaultProxy, type FaultProxy } from '../helpers/fault-proxy.js';
import { stopAll } from '../helpers/proc.js';
import { startRegistry, type TestRegistry } from '../helpers/registry.js';

const ok = { status: 200, headers: {} as Record<string, string> };
const wait = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

describe('RequestLimiter', () => {
  it('never has more than `concurrency` requests waiting for their answer', async () => {
    const limiter = new RequestLimiter({ concurrency: 3 });
    let inFlight = 0;
    let most = 0;
    await Promise.all(
      Array.from({ length: 20 }, (_, i) =>
        limiter.run(async () => {
          inFlight++;
          most = Math.max(most, inFlight);
          await wait(5 + (i % 4) * 3);
          inFlight--;
          return ok;
        }),
      ),
    );
    assert.equal(most, 3);
  });

  it('spaces requests evenly at `perSecond`', async () => {
    const limiter = new RequestLimiter({ perSecond: 50 });
    const starts: number[] = [];
    const t0 = Date.now();
    await Promise.all(Array.from({ length: 10 }, () => limiter.run(async () => (starts.push(Date.now() - t0), ok))));
    // 10 requests at 50/s: the last starts about 180 ms after the first.
    assert.ok(starts[9]! >= 170, `last started at ${starts[9]} ms`);
    assert.ok(starts[9]! < 1000);
  });

  it("a 429's Retry-After holds back every later request to the host", async () => {
    const limiter = new RequestLimiter({});
    await limiter.run(async () => ({ status: 429, headers: { 'retry-after': '1' } }));
    const t0 = Date.now();
    await limiter.run(async () => ok);
    assert.ok(Date.now() - t0 >= 900, `waited ${Date.now() - t0} ms`);
  });

  it('a request waiting for a slot stops when its signal aborts, and frees nothing it did not hold', async () => {
    const limiter = new RequestLimiter({ concurrency: 1 });
    let release!: () => void;
    const holder = limiter.run(() => new Promise<typeof ok>((r) => (release = () => r(ok))));
    const abort = new AbortController();
    const waiter = limiter.run(async () => ok, abort.signal);
    abort.abort();
    await assert.rejects(waiter, /interrupted/);
    release();
    await holder;
    // The slot is free again: a new request starts at once.
    const t0 = Date.now();
    await limiter.run(async () => ok);
    // A slot still held would hold this request forever (the holder is done): the bound leaves room for a busy CI.
    assert.ok(Date.now() - t0 < 1_000, `took ${Date.now() - t0} ms`);
  });
});

describe('RegistryClient with request limits (integration: docker-registry)', function () {
  this.timeout(60_000);
  let registry: TestRegistry;
  let proxy: FaultProxy;
  before(async () => {
    registry = await startRegistry();
    proxy = await startFaultProxy({ upstream: registry.url });
  });
  after(async () => {
    await closeAll();
    await proxy?.stop();
    await registry?.stop();
    await stopAll();
  });

  it('perSecond spaces the HEADs; a 429 with Retry-After holds back the others and is retried', async () => {
    const client = new RegistryClient({ host: proxy.host, scheme: 'http', settings: staticSettings({ scheme: 'http' }), limits: { perSecond: 20, concurrency: 2 } });
    const t0 = Date.now();
    await Promise.all(Array.from({ length: 10 }, (_, i) => client.headManifest('lib/none', `t${i}`)));
    const spaced = Date.now() - t0;
    assert.ok(spaced >= 420, `10 HEADs at 20/s took ${spaced} ms`);
    proxy.reset();
    proxy.setRules([{ kind: 'status-429', method: 'HEAD', nth: [1] }]);
    const t1 = Date.now();
    const answers = await Promise.all(Array.from({ length: 4 }, (_, i) => client.headManifest('lib/none', `u${i}`)));
    assert.deepEqual(answers, [undefined, undefined, undefined, undefined]);
    assert.equal(proxy.injected['status-429'], 1);
    // Every request after the 429 waited for its Retry-After (1 s).
    assert.ok(Date.now() - t1 >= 900, `took ${Date.now() - t1} ms`);
    assert.equal(proxy.requests.length, 5);
  });
});
