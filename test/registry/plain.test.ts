/** Integration tests against a real plain-HTTP registry: uploads, mounts, manifests, tags, read back with skopeo. */
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DigestMismatchError, MirrorError } from '../../src/errors/index.js';
import type { ProgressEvent } from '../../src/events/index.js';
import { closeAll } from '../../src/net/http.js';
import { RegistryClient } from '../../src/registry/index.js';
import { blobOf, chunksOf, makeImage, randomBlob, staticSettings } from '../helpers/image.js';
import { startRegistry, type TestRegistry } from '../helpers/registry.js';
import { skopeoCopyToOci, skopeoInspectRawDigest, skopeoListTags } from '../helpers/skopeo.js';
import { stopAll } from '../helpers/proc.js';

describe('registry client against a plain-HTTP registry', function () {
  this.timeout(60_000);
  let registry: TestRegistry;
  let client: RegistryClient;
  const events: ProgressEvent[] = [];

  before(async () => {
    registry = await startRegistry();
    client = new RegistryClient({
      host: registry.host,
      settings: staticSettings({ scheme: 'http' }),
      retry: { retries: 2, baseDelayMs: 10 },
      events: (e) => events.push(e),
    });
  });

  after(async () => {
    await closeAll();
    await registry?.stop();
    await stopAll();
  });

  it('pings and sees no auth', async () => {
    const result = await client.ping();
    assert.deepEqual(result, { scheme: 'http', auth: 'none' });
  });

  it('uploads a blob monolithically from bytes, and HEAD then GET find it', async () => {
    const blob = randomBlob(100_000);
    assert.equal(await client.blobExists('test/mono', blob.digest), undefined);
    let progressed = 0;
    const result = await client.uploadBlob('test/mono', { kind: 'bytes', data: blob.data }, { digest: blob.digest, onBytes: (n) => (progressed += n) });
    assert.deepEqual(result, { digest: blob.digest, size: blob.size });
    assert.equal(progressed, blob.size);
    assert.deepEqual(await client.blobExists('test/mono', blob.digest), { size: blob.size });
    const reader = await client.getBlob('test/mono', blob.digest);
    const parts: Uint8Array[] = [];
    for await (const chunk of reader.body) parts.push(chunk);
    assert.ok(Buffer.concat(parts).equals(blob.data));
  });

  it('uploads a known-digest stream monolithically (one PUT with Content-Length)', async () => {
    const blob = randomBlob(300_000);
    const result = await client.uploadBlob(
      'test/mono-stream',
      { kind: 'stream', open: () => chunksOf(blob.data, 10_000), reopenable: false },
      { digest: blob.digest, size: blob.size },
    );
    assert.equal(result.digest, blob.digest);
    assert.deepEqual(await client.blobExists('test/mono-stream', blob.digest), { size: blob.size });
  });

  it('uploads in chunks with Content-Range', async () => {
    const blob = randomBlob(250_000);
    let progressed = 0;
    const result = await client.uploadBlob(
      'test/chunked',
      { kind: 'stream', open: () => chunksOf(blob.data, 7_000), reopenable: false },
      { digest: blob.digest, size: blob.size, mode: 'chunked', chunkSize: 64 * 1024, onBytes: (n) => (progressed += n) },
    );
    assert.deepEqual(result, { digest: blob.digest, size: blob.size });
    assert.equal(progressed, blob.size);
    assert.deepEqual(await client.blobExists('test/chunked', blob.digest), { size: blob.size });
  });

  it('streams a blob whose digest is not known in advance (PATCH, then PUT ?digest=computed)', async () => {
    const blob = randomBlob(200_000);
    const result = await client.uploadBlob('test/streamed', { kind: 'stream', open: () => chunksOf(blob.data, 9_999), reopenable: false });
    assert.deepEqual(result, { digest: blob.digest, size: blob.size });
    assert.deepEqual(await client.blobExists('test/streamed', blob.digest), { size: blob.size });
  });

  for (const mode of ['monolithic', 'chunked'] as const) {
    it(`refuses a ${mode} stream that does not match its digest, and the blob never lands`, async () => {
      const claimed = randomBlob(120_000);
      const actual = randomBlob(120_000);
      await assert.rejects(
        client.uploadBlob(
          `test/mismatch-${mode}`,
          { kind: 'stream', open: () => chunksOf(actual.data, 8_192), reopenable: true },
          { digest: claimed.digest, size: claimed.size, mode, chunkSize: 32 * 1024 },
        ),
        (e: unknown) => e instanceof DigestMismatchError && e.code === 'DIGEST_MISMATCH',
      );
      assert.equal(await client.blobExists(`test/mismatch-${mode}`, claimed.digest), undefined);
      assert.equal(await client.blobExists(`test/mismatch-${mode}`, actual.digest), undefined);
    });
  }

  it('refuses bytes that do not match the given digest before sending anything', async () => {
    const claimed = randomBlob(1000);
    await assert.rejects(
      client.uploadBlob('test/mismatch-bytes', { kind: 'bytes', data: randomBlob(1000).data }, { digest: claimed.digest }),
      DigestMismatchError,
    );
    assert.equal(await client.blobExists('test/mismatch-bytes', claimed.digest), undefined);
  });

  it('mounts a blob between repositories (201), and gets an upload session (202) for an unknown blob', async () => {
    const blob = randomBlob(50_000);
    await client.uploadBlob('test/mount-src', { kind: 'bytes', data: blob.data });
    const mounted = await client.mountBlob('test/mount-dst', blob.digest, 'test/mount-src');
    assert.deepEqual(mounted, { mounted: true });
    assert.deepEqual(await client.blobExists('test/mount-dst', blob.digest), { size: blob.size });

    const missing = randomBlob(10_000);
    const result = await client.mountBlob('test/mount-dst', missing.digest, 'test/mount-src');
    assert.equal(result.mounted, false);
    assert.ok(!result.mounted && result.session !== undefined, 'a 202 gives an upload session');
    // Upload into the session the mount opened.
    const up = await client.uploadBlob('test/mount-dst', { kind: 'bytes', data: missing.data }, { session: result.session });
    assert.equal(up.digest, missing.digest);
    assert.deepEqual(await client.blobExists('test/mount-dst', missing.digest), { size: missing.size });
  });

  it('cancels an upload session', async () => {
    const missing = randomBlob(10);
    const result = await client.mountBlob('test/cancel', missing.digest, 'test/nowhere');
    assert.ok(!result.mounted && result.session !== undefined);
    await client.cancelUpload(result.session);
    await client.cancelUpload(result.session); // already gone: fine
  });

  it('puts, heads and gets a manifest, lists tags, and skopeo reads the same image back', async () => {
    const image = makeImage(4096);
    const repo = 'test/image';
    await client.uploadBlob(repo, { kind: 'bytes', data: image.config.data });
    await client.uploadBlob(repo, { kind: 'bytes', data: image.layer.data });
    assert.equal(await client.headManifest(repo, 'v1'), undefined);
    const digest = await client.putManifest(repo, 'v1', image.manifest.data, image.mediaType);
    assert.equal(digest, image.manifest.digest);
    await client.putManifest(repo, 'v2', image.manifest.data, image.mediaType);

    assert.deepEqual(await client.headManifest(repo, 'v1'), { digest, mediaType: image.mediaType, size: image.manifest.size });
    const fetched = await client.getManifest(repo, digest);
    assert.equal(fetched.digest, digest);
    assert.equal(fetched.mediaType, image.mediaType);
    assert.ok(Buffer.from(fetched.bytes).equals(Buffer.from(image.manifest.data)));

    assert.deepEqual((await client.listTags(repo)).sort(), ['v1', 'v2']);
    assert.deepEqual((await client.listTags(repo, { pageSize: 1 })).sort(), ['v1', 'v2'], 'pagination is followed');

    assert.equal(await skopeoInspectRawDigest(`docker://${registry.host}/${repo}:v1`), image.manifest.digest);
    assert.deepEqual((await skopeoListTags(`docker://${registry.host}/${repo}`)).sort(), ['v1', 'v2']);
    const out = mkdtempSync(join(tmpdir(), 'mirror-oci-'));
    try {
      await skopeoCopyToOci(`docker://${registry.host}/${repo}:v1`, out);
      const layerFile = join(out, 'blobs', 'sha256', image.layer.digest.slice('sha256:'.length));
      assert.ok(readFileSync(layerFile).equals(Buffer.from(image.layer.data)), 'skopeo copied the exact layer bytes');
    } finally {
      rmSync(out, { recursive: true, force: true });
    }
  });

  it('an abort stops an upload at once with INTERRUPTED, and nothing lands', async () => {
    const blob = randomBlob(64 * 1024);
    const controller = new AbortController();
    setTimeout(() => controller.abort(), 200);
    const started = Date.now();
    await assert.rejects(
      client.uploadBlob(
        'test/abort',
        { kind: 'stream', open: () => chunksOf(blob.data, 1024, 100), reopenable: true },
        { digest: blob.digest, size: blob.size, signal: controller.signal },
      ),
      (e: unknown) => e instanceof MirrorError && e.code === 'INTERRUPTED',
    );
    assert.ok(Date.now() - started < 3_000, 'promptly');
    assert.equal(await client.blobExists('test/abort', blob.digest), undefined);
  });

  it('reports a missing manifest as NOT_FOUND with the registry code', async () => {
    await assert.rejects(client.getManifest('test/image', 'nope'), (e: unknown) => {
      assert.ok(e instanceof MirrorError);
      assert.equal(e.code, 'NOT_FOUND');
      assert.equal(e.context.status, 404);
      assert.equal(e.context.registryCode, 'MANIFEST_UNKNOWN');
      assert.match(e.message, /manifest test\/image:nope failed: HTTP 404/);
      return true;
    });
  });

  it('rejects a manifest whose bytes do not match the digest it is fetched by', async () => {
    const image = makeImage(10);
    const other = blobOf(Buffer.from('{}'));
    await assert.rejects(client.putManifest('test/image', other.digest, image.manifest.data, image.mediaType), (e: unknown) => {
      assert.ok(e instanceof DigestMismatchError);
      assert.equal(e.message, `manifest ${other.digest} does not match its digest: content hashes to ${image.manifest.digest}`);
      return true;
    });
  });
});
