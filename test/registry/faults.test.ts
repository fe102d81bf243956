/** Uploads and reads through a fault-injecting proxy in front of a real registry: resume, retry, give up cleanly. */
import assert from 'node:assert/strict';
import { DigestMismatchError, MirrorError } from '../../src/errors/index.js';
import type { ProgressEvent } from '../../src/events/index.js';
import { closeAll } from '../../src/net/http.js';
import { RegistryClient, StreamConsumedError, isStreamConsumedError } from '../../src/registry/index.js';
import { startFaultProxy, type FaultProxy } from '../helpers/fault-proxy.js';
import { chunksOf, makeImage, randomBlob, staticSettings } from '../helpers/image.js';
import { stopAll } from '../helpers/proc.js';
import { startRegistry, type TestRegistry } from '../helpers/registry.js';

describe('registry client through a fault-injecting proxy', function () {
  this.timeout(60_000);
  let registry: TestRegistry;
  let proxy: FaultProxy;
  let events: ProgressEvent[] = [];
  /** A direct client (no proxy) to check what really landed. */
  let direct: RegistryClient;

  const client = (retries = 3): RegistryClient =>
    new RegistryClient({
      host: proxy.host,
      settings: staticSettings({ scheme: 'http' }),
      retry: { retries, baseDelayMs: 5, maxDelayMs: 2_000 },
      events: (e) => events.push(e),
    });

  before(async () => {
    registry = await startRegistry();
    proxy = await startFaultProxy({ upstream: registry.url });
    direct = new RegistryClient({ host: registry.host, settings: staticSettings({ scheme: 'http' }) });
  });

  beforeEach(() => {
    events = [];
    proxy.setRules([]);
    proxy.reset();
  });

  after(async () => {
    await closeAll();
    await proxy?.stop();
    await registry?.stop();
    await stopAll();
  });

  const retries = (): Array<Extract<ProgressEvent, { type: 'retry' }>> =>
    events.filter((e): e is Extract<ProgressEvent, { type: 'retry' }> => e.type === 'retry');

  it('resumes a chunked upload from the offset the registry reports after a PATCH is cut', async () => {
    const blob = randomBlob(300_000);
    proxy.setRules([{ kind: 'cut-request', method: 'PATCH', nth: [2], afterBytes: 20_000 }]);
    const opened: number[] = [];
    const result = await client().uploadBlob(
      'faults/resume',
      {
        kind: 'stream',
        open: () => {
          opened.push(1);
          return chunksOf(blob.data, 10_000);
        },
        reopenable: false,
      },
      { digest: blob.digest, size: blob.size, mode: 'chunked', chunkSize: 64 * 1024 },
    );
    assert.deepEqual(result, { digest: blob.digest, size: blob.size });
    assert.equal(proxy.injected['cut-request'], 1, 'the fault happened');
    assert.equal(opened.length, 1, 'the stream was read once: the chunk was resent from memory');
    const statusChecks = proxy.requests.filter((r) => r.method === 'GET' && r.path.includes('/blobs/uploads/'));
    assert.equal(statusChecks.length, 1, 'the session was asked for its offset');
    assert.ok(events.some((e) => e.type === 'debug' && /resuming at byte 65536/.test(e.message)), 'resumed at the start of chunk 2');
    assert.equal(proxy.requests.filter((r) => r.method === 'PATCH').length, 6, '5 chunks + 1 resent');
    assert.deepEqual(await direct.blobExists('faults/resume', blob.digest), { size: blob.size });
  });

  it('starts over in a new session when the cut PATCH left partial data (reopenable stream), and gives StreamConsumedError when not reopenable', async () => {
    const blob = randomBlob(200_000);
    proxy.setRules([{ kind: 'cut-request', method: 'PATCH', nth: [2], afterBytes: 10_000, forwardBeforeCut: true }]);
    let opens = 0;
    const result = await client().uploadBlob(
      'faults/restart',
      { kind: 'stream', open: () => (opens++, chunksOf(blob.data, 10_000)), reopenable: true },
      { digest: blob.digest, size: blob.size, mode: 'chunked', chunkSize: 64 * 1024 },
    );
    assert.equal(result.digest, blob.digest);
    assert.equal(opens, 2, 'the stream was reopened for a second attempt');
    assert.ok(retries().some((e) => e.method === 'UPLOAD'), 'a whole-upload retry was reported');
    assert.deepEqual(await direct.blobExists('faults/restart', blob.digest), { size: blob.size });

    proxy.reset();
    const other = randomBlob(200_000);
    await assert.rejects(
      client().uploadBlob(
        'faults/restart',
        { kind: 'stream', open: () => chunksOf(other.data, 10_000), reopenable: false },
        { digest: other.digest, size: other.size, mode: 'chunked', chunkSize: 64 * 1024 },
      ),
      (e: unknown) => {
        assert.ok(isStreamConsumedError(e));
        assert.equal(e.code, 'NETWORK');
        assert.equal(e.streamConsumed, true);
        return true;
      },
    );
    assert.equal(await direct.blobExists('faults/restart', other.digest), undefined);
  });

  it('gives StreamConsumedError when a monolithic PUT of a non-reopenable stream is cut, and retries a bytes body to success', async () => {
    const blob = randomBlob(400_000);
    proxy.setRules([{ kind: 'cut-request', method: 'PUT', nth: [1], afterBytes: 100_000 }]);
    await assert.rejects(
      client().uploadBlob(
        'faults/mono',
        { kind: 'stream', open: () => chunksOf(blob.data, 16_384), reopenable: false },
        { digest: blob.digest, size: blob.size },
      ),
      (e: unknown) => e instanceof StreamConsumedError && e.streamConsumed && e.code === 'NETWORK',
    );
    assert.equal(proxy.injected['cut-request'], 1);
    assert.equal(await direct.blobExists('faults/mono', blob.digest), undefined);

    proxy.reset();
    const result = await client().uploadBlob('faults/mono', { kind: 'bytes', data: blob.data }, { digest: blob.digest });
    assert.equal(result.digest, blob.digest);
    assert.equal(proxy.injected['cut-request'], 1, 'the bytes body met the fault too');
    assert.equal(proxy.requests.filter((r) => r.method === 'PUT').length, 2, 'and was sent again');
    assert.deepEqual(await direct.blobExists('faults/mono', blob.digest), { size: blob.size });
  });

  it('a registry that stores a manifest under another digest than the one sent (it rewrote it) is an error naming both, not retried', async () => {
    const image = makeImage(100);
    const other = `sha256:${'e'.repeat(64)}`;
    proxy.setRules([{ kind: 'respond', method: 'PUT', pathIncludes: '/manifests/', probability: 1, status: 201, headers: { 'docker-content-digest': other } }]);
    await assert.rejects(
      client().putManifest('faults/rewritten', 'v1', image.manifest.data, image.mediaType),
      (e: unknown) =>
        e instanceof MirrorError &&
        e.code === 'REGISTRY' &&
        e.message === `${proxy.host} stored the manifest faults/rewritten:v1 as ${other}, not as the ${image.manifest.digest} it was sent: it rewrote the manifest, so its digest is not kept`,
    );
    assert.equal(proxy.requests.filter((q) => q.method === 'PUT').length, 1, 'not retried');
    // Only the header wrong: the registry holds the bytes sent under their digest (asked with HEAD), so they are kept.
    await direct.uploadBlob('faults/rewritten', { kind: 'bytes', data: image.config.data });
    await direct.uploadBlob('faults/rewritten', { kind: 'bytes', data: image.layer.data });
    await direct.putManifest('faults/rewritten', 'v0', image.manifest.data, image.mediaType);
    assert.equal(await client().putManifest('faults/rewritten', 'v1', image.manifest.data, image.mediaType), image.manifest.digest);
    // The same digest, or none, is the usual answer.
    proxy.setRules([{ kind: 'respond', method: 'PUT', pathIncludes: '/manifests/', probability: 1, status: 201, headers: { 'docker-content-digest': image.manifest.digest } }]);
    assert.equal(await client().putManifest('faults/rewritten', 'v1', image.manifest.data, image.mediaType), image.manifest.digest);
  });

  it('a registry that refuses HEAD on manifests (405, 501) is asked with GET: the digest of what it has, undefined for what it lacks', async () => {
    const image = makeImage(120);
    await direct.uploadBlob('faults/nohead', { kind: 'bytes', data: image.config.data });
    await direct.uploadBlob('faults/nohead', { kind: 'bytes', data: image.layer.data });
    await direct.putManifest('faults/nohead', 'v1', image.manifest.data, image.mediaType);
    for (const status of [405, 501]) {
      proxy.setRules([{ kind: 'respond', method: 'HEAD', pathIncludes: '/manifests/', probability: 1, status }]);
      proxy.reset();
      const info = await client().headManifest('faults/nohead', 'v1');
      assert.equal(info?.digest, image.manifest.digest, `HEAD ${status}`);
      assert.equal(info?.size, image.manifest.data.byteLength);
      assert.equal(await client().headManifest('faults/nohead', 'absent'), undefined, `HEAD ${status}, then GET 404`);
      assert.deepEqual(
        proxy.requests.filter((q) => q.path.includes('/manifests/')).map((q) => q.method),
        ['HEAD', 'GET', 'HEAD', 'GET'],
      );
    }
  });

  it('retries 503 and honours Retry-After on 429', async () => {
    const image = makeImage(100);
    await direct.uploadBlob('faults/manifest', { kind: 'bytes', data: image.config.data });
    await direct.uploadBlob('faults/manifest', { kind: 'bytes', data: image.layer.data });
    proxy.setRules([
      { kind: 'status-503', method: 'PUT', pathIncludes: '/manifests/', nth: [1] },
      { kind: 'status-429', method: 'PUT', pathIncludes: '/manifests/', nth: [1] },
    ]);
    const started = Date.now();
    const digest = await client().putManifest('faults/manifest', 'v1', image.manifest.data, image.mediaType);
    assert.equal(digest, image.manifest.digest);
    assert.equal(proxy.injected['status-503'], 1);
    assert.equal(proxy.injected['status-429'], 1);
    const r = retries();
    assert.equal(r.length, 2);
    assert.equal(r[0]?.reason, 'HTTP 503 UNAVAILABLE');
    assert.equal(r[1]?.reason, 'HTTP 429 TOOMANYREQUESTS');
    assert.equal(r[1]?.delayMs, 1000, 'Retry-After: 1 is one second');
    assert.ok(Date.now() - started >= 1000, 'and it was waited');
    assert.equal((await direct.headManifest('faults/manifest', 'v1'))?.digest, image.manifest.digest);
  });

  it('gives up after the retries are spent, with the last status', async () => {
    proxy.setRules([{ kind: 'status-503', method: 'HEAD', probability: 1 }]);
    await assert.rejects(client(2).blobExists('faults/x', randomBlob(1).digest), (e: unknown) => {
      assert.ok(e instanceof MirrorError);
      assert.equal(e.context.status, 503);
      return true;
    });
    assert.equal(proxy.injected['status-503'], 3, 'one try and two retries');
  });

  it('resumes a download cut in the middle with a Range request, and the bytes match', async () => {
    const blob = randomBlob(500_000);
    await direct.uploadBlob('faults/get', { kind: 'bytes', data: blob.data });
    proxy.setRules([{ kind: 'cut-response', method: 'GET', pathIncludes: '/blobs/sha256:', nth: [1], afterBytes: 123_456 }]);
    const reader = await client().getBlob('faults/get', blob.digest);
    const parts: Uint8Array[] = [];
    for await (const chunk of reader.body) parts.push(chunk);
    assert.ok(Buffer.concat(parts).equals(Buffer.from(blob.data)));
    assert.equal(proxy.injected['cut-response'], 1);
    assert.equal(proxy.requests.filter((r) => r.method === 'GET').length, 2);
  });

  it('treats a final PUT whose answer was lost as done when the blob is there', async () => {
    const blob = randomBlob(100_000);
    proxy.setRules([{ kind: 'cut-response', method: 'PUT', nth: [1] }]);
    const result = await client().uploadBlob('faults/lost', { kind: 'stream', open: () => chunksOf(blob.data, 10_000), reopenable: false }, {});
    assert.deepEqual(result, { digest: blob.digest, size: blob.size });
    assert.equal(proxy.injected['cut-response'], 1);
    assert.deepEqual(await direct.blobExists('faults/lost', blob.digest), { size: blob.size });
  });

  it('never sends the final PUT of a chunked upload whose bytes do not match, and cancels the session', async () => {
    const claimed = randomBlob(100_000);
    const actual = randomBlob(100_000);
    await assert.rejects(
      client().uploadBlob(
        'faults/mismatch',
        { kind: 'stream', open: () => chunksOf(actual.data, 10_000), reopenable: true },
        { digest: claimed.digest, size: claimed.size, mode: 'chunked', chunkSize: 32 * 1024 },
      ),
      DigestMismatchError,
    );
    const methods = proxy.requests.map((r) => r.method);
    assert.ok(!methods.includes('PUT'), `no PUT: ${methods.join(' ')}`);
    assert.equal(methods.at(-1), 'DELETE');
  });

  it('records requests: a second push of the same blob uploads nothing', async () => {
    const blob = randomBlob(10_000);
    const push = async (c: RegistryClient): Promise<void> => {
      if ((await c.blobExists('faults/twice', blob.digest)) !== undefined) return;
      await c.uploadBlob('faults/twice', { kind: 'bytes', data: blob.data }, { digest: blob.digest });
    };
    await push(client());
    assert.deepEqual(proxy.requests.map((r) => r.method), ['HEAD', 'POST', 'PUT']);
    proxy.reset();
    await push(client());
    assert.deepEqual(proxy.requests.map((r) => r.method), ['HEAD']);
  });

  describe('a registry that refuses a way of sending', () => {
    /** landed reads a blob back from the registry directly and tells whether its bytes hash to its digest. */
    const landed = async (repo: string, digest: string): Promise<boolean> => {
      const r = await direct.getBlob(repo, digest);
      for await (const _ of r.body) {
        // read through: the reader checks the digest at the end
      }
      return true;
    };
    const methods = (): string[] => proxy.requests.filter((r) => r.path.includes('/blobs/uploads/')).map((r) => `${r.method}${r.status !== undefined ? ` ${r.status}` : ''}`);

    it('sends the body by PATCH when a PUT with a body is answered 405, and starts there for the next blob', async () => {
      proxy.setRules([{ kind: 'respond', method: 'PUT', pathIncludes: '/blobs/uploads/', minBodyBytes: 1, status: 405, probability: 1 }]);
      const c = client();
      const a = randomBlob(200_000);
      const b = randomBlob(150_000);
      assert.deepEqual(await c.uploadBlob('faults/nobody', { kind: 'bytes', data: a.data }, { digest: a.digest }), { digest: a.digest, size: 200_000 });
      const first = proxy.requests.filter((r) => r.path.includes('/blobs/uploads/')).map((r) => r.method);
      // The refused PUT, its session cancelled, then skopeo's way: POST, PATCH, empty PUT.
      assert.deepEqual(first, ['POST', 'PUT', 'DELETE', 'POST', 'PATCH', 'PUT']);
      assert.equal(proxy.injected.respond, 1);
      assert.ok(await landed('faults/nobody', a.digest));
      proxy.reset();
      // A stream that cannot be reopened goes through too: this registry is sent PATCHes from the start now.
      await c.uploadBlob('faults/nobody', { kind: 'stream', open: () => chunksOf(b.data, 7_000), reopenable: false }, { digest: b.digest, size: 150_000 });
      assert.deepEqual(proxy.requests.map((r) => r.method), ['POST', 'PATCH', 'PUT']);
      assert.equal(proxy.injected.respond, 0);
      assert.ok(await landed('faults/nobody', b.digest));
      assert.ok(events.some((e) => e.type === 'debug' && /refused one PUT with the body .*405/.test(e.message)), 'the change of way is told (--debug)');
    });

    it('sends smaller chunks when a proxy in front answers 413 to a large body, and gives up below 256 KiB', async () => {
      // A body limit of 1 MiB (nginx's default client_max_body_size): a 3 MiB blob goes as PATCHes of 1 MiB.
      const limit = 1024 * 1024;
      proxy.setRules([{ kind: 'respond', pathIncludes: '/blobs/uploads/', minBodyBytes: limit + 1, status: 413, body: '<html>413 Request Entity Too Large</html>', probability: 1 }]);
      const blob = randomBlob(3 * 1024 * 1024);
      const c = client();
      await c.uploadBlob('faults/limit', { kind: 'stream', open: () => chunksOf(blob.data, 64 * 1024), reopenable: true }, { digest: blob.digest, size: blob.data.byteLength });
      assert.ok(await landed('faults/limit', blob.digest));
      const patches = proxy.requests.filter((r) => r.method === 'PATCH' && r.status === 202);
      assert.equal(patches.length, 3, 'three chunks of 1 MiB');
      // Refused: the PUT of 3 MiB, then the PATCH of its first chunk (3 MiB): that chunk went again in pieces of 1 MiB.
      assert.equal(proxy.injected.respond, 2, methods().join(', '));
      // The next blob to this registry goes in chunks of 1 MiB from the start: nothing is refused.
      proxy.reset();
      const next = randomBlob(2 * 1024 * 1024 + 5);
      await c.uploadBlob('faults/limit', { kind: 'stream', open: () => chunksOf(next.data, 64 * 1024), reopenable: false }, { digest: next.digest, size: next.data.byteLength });
      assert.ok(await landed('faults/limit', next.digest));
      assert.equal(proxy.injected.respond, 0, methods().join(', '));
      assert.deepEqual(proxy.requests.map((r) => r.method), ['POST', 'PATCH', 'PATCH', 'PATCH', 'PUT']);
      // A limit no chunk size the ladder offers can meet: the 413 is the error, not a loop.
      proxy.setRules([{ kind: 'respond', pathIncludes: '/blobs/uploads/', minBodyBytes: 1000, status: 413, probability: 1 }]);
      proxy.reset();
      const small = randomBlob(600_000);
      await assert.rejects(
        client().uploadBlob('faults/limit', { kind: 'bytes', data: small.data }, { digest: small.digest }),
        (e: unknown) => e instanceof MirrorError && e.context.status === 413,
      );
      // The PUT, the PATCH of the whole (a chunk of 16 MiB holds it), then of 256 KiB: the smallest offered, the error.
      assert.equal(proxy.injected.respond, 3, methods().join(', '));
    });

    it('does not take a refusal of the content (400 DIGEST_INVALID) for a refusal of the way', async () => {
      const blob = randomBlob(50_000);
      const body = JSON.stringify({ errors: [{ code: 'DIGEST_INVALID', message: 'provided digest did not match uploaded content' }] });
      proxy.setRules([{ kind: 'respond', method: 'PUT', pathIncludes: '/blobs/uploads/', minBodyBytes: 1, status: 400, body, probability: 1 }]);
      await assert.rejects(client().uploadBlob('faults/content', { kind: 'bytes', data: blob.data }, { digest: blob.digest }), (e: unknown) => e instanceof MirrorError);
      assert.equal(proxy.requests.filter((r) => r.method === 'PATCH').length, 0);
      assert.equal(proxy.injected.respond, 1);
    });
  });
});
