/**
 * `mirror push` through outages, against the real docker-registry: a registry restarted in the middle of a push, one
 * that goes away for longer than the retries last. The client reaches the registry through a TCP proxy of the test's
 * own that can vanish as a restarting server does (connections reset, the port refusing) while the registry behind it
 * really restarts on the same port with the same storage. skopeo reads back what was pushed.
 */
import assert from 'node:assert/strict';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { buildOciLayout, type BuiltLayout, writeTarBundle } from '../../testdata/make-fixtures.js';
import { sha256Digest } from '../../src/oci/digest.js';
import { createServer, type Socket } from 'node:net';
import { assertOneLineError, runCli, startCli } from '../helpers/cli.js';
import { startFaultProxy } from '../helpers/fault-proxy.js';
import { listenLocal, stopAll } from '../helpers/proc.js';
import { startTokenServer } from '../helpers/token-server.js';
import { canMountTmpfs, startRegistry, type TestRegistry } from '../helpers/registry.js';
import { skopeoCopyToOci, skopeoInspectRaw, skopeoListTags } from '../helpers/skopeo.js';
import { startTcpProxy, type TcpProxy } from '../helpers/tcp-proxy.js';

/** destPath maps a full source ref into `ns` (drop the host, keep the path). */
function destPath(ref: string, ns: string): string {
  return `${ns}/${ref.slice(ref.indexOf('/') + 1)}`;
}

/** OUTAGE_MS is how long the registry is away in the restart test (the case: about 2 seconds). */
const OUTAGE_MS = 2_000;

describe('mirror push through registry outages (integration)', function () {
  this.timeout(120_000);
  let registry: TestRegistry;
  let proxy: TcpProxy | undefined;
  let work: string;
  let layout: BuiltLayout;
  let bundle: string;

  before(async () => {
    registry = await startRegistry();
    work = await mkdtemp(join(tmpdir(), 'mirror-outages-'));
    layout = await buildOciLayout({
      seed: 'outage',
      images: [
        { ref: 'gcr.io/outage/big:1', layers: [{ files: 1, sizeBytes: 24 * 1024 * 1024 }] },
        { ref: 'gcr.io/outage/small-a:1', layers: [{ files: 2, sizeBytes: 40_000 }] },
        { ref: 'gcr.io/outage/small-b:1', layers: [{ files: 2, sizeBytes: 60_000 }] },
        { ref: 'docker.io/library/small-c:1', layers: [{ files: 1, sizeBytes: 30_000 }, { files: 1, sizeBytes: 20_000 }] },
      ],
    });
    // Metadata last: the big layer is sent while it is read, so a cut upload needs a second read of the bundle.
    bundle = join(work, 'outage.tar');
    await writeTarBundle(layout.files, bundle, { order: 'metadata-last', compression: 'none' });
  });

  afterEach(async () => {
    await proxy?.stop();
    proxy = undefined;
  });

  after(async () => {
    await registry?.stop();
    await stopAll();
    if (work) await rm(work, { recursive: true, force: true });
  });

  async function assertPushed(ns: string): Promise<void> {
    for (const img of layout.images) {
      const raw = await skopeoInspectRaw(`docker://${registry.host}/${destPath(img.ref!, ns)}`);
      assert.equal(sha256Digest(raw), img.digest, `${img.ref} is in place with its digest`);
    }
  }

  it('rides out a registry restart in the middle of a push (connections reset, refused for 2 s, back on the same port)', async () => {
    proxy = await startTcpProxy({ upstreamPort: registry.port, upBytesPerSecond: 8 * 1024 * 1024 });
    const report = join(work, 'restart.json');
    const cli = startCli(['push', '--source', bundle, '--private-registry', `http://${proxy.host}/restart`, '--report', report, '--debug']);
    // In the middle of the big layer's upload: the registry goes away and restarts.
    await proxy.whenBytesUp(6 * 1024 * 1024);
    const downAt = Date.now();
    await proxy.down();
    await registry.restart();
    const left = OUTAGE_MS - (Date.now() - downAt);
    if (left > 0) await new Promise((r) => setTimeout(r, left));
    await proxy.up();
    const r = await cli.done;
    assert.equal(r.code, 0, r.stderr + r.stdout);
    assert.match(r.stderr, /retry \d+ of \w+ .* ECONNREFUSED/, 'refused connections were retried');
    assert.match(r.stderr, /was cut after its bytes had left the bundle stream/, 'the big upload was cut');
    assert.match(r.stderr, /reading the bundle again for 1 blob/, 'and read again');
    const rep = JSON.parse(await readFile(report, 'utf8')) as { summary: { passes: number; pushed: number } };
    assert.equal(rep.summary.passes, 2);
    assert.equal(rep.summary.pushed, layout.images.length);
    await assertPushed('restart');
  });

  it('a registry away for longer than the retries ends the push (exit 6) without promising a read it does not do', async () => {
    proxy = await startTcpProxy({ upstreamPort: registry.port, upBytesPerSecond: 8 * 1024 * 1024 });
    const cli = startCli(['push', '--source', bundle, '--private-registry', `http://${proxy.host}/gone`, '--retry-times', '1']);
    await proxy.whenBytesUp(6 * 1024 * 1024);
    await proxy.down();
    const r = await cli.done;
    assert.equal(r.code, 6, r.stderr + r.stdout);
    assert.match(r.stderr, /mirror: error: .*connection refused/);
    const promised = r.stderr.split('\n').filter((l) => /read (from the bundle )?again/.test(l) && !/^reading the bundle again/.test(l));
    assert.deepEqual(promised, [], 'no line promises a read of the bundle that never came');
    assert.doesNotMatch(r.stderr, /^reading the bundle again/m);
  });

  describe('a registry that stops answering (--timeout)', () => {
    /** warnings gives the warning lines of stderr. */
    const warnings = (stderr: string): string[] => stderr.split('\n').filter((l) => l.startsWith('warning: '));

    it('one that accepts connections and never answers: a warning per timed-out request, then exit 6 naming it, in seconds', async () => {
      const held = new Set<Socket>();
      const silent = createServer((socket) => {
        held.add(socket);
        socket.on('error', () => {});
        socket.resume();
      });
      const port = await listenLocal(silent);
      try {
        const started = Date.now();
        const r = await runCli(['push', '--source', bundle, '--private-registry', `http://127.0.0.1:${port}/silent`, '--timeout', '1'], { timeoutMs: 30_000 });
        const took = Date.now() - started;
        assert.equal(r.code, 6, r.stderr + r.stdout);
        const w = warnings(r.stderr);
        assert.ok(w.length >= 2, r.stderr);
        for (const line of w) assert.equal(line, `warning: 127.0.0.1:${port} did not answer GET /v2/ within 1 s`);
        assertOneLineError(r.stderr, `no answer from 127.0.0.1:${port}`, /2 requests in a row timed out/);
        assert.ok(took < 10_000, `ended in ${took} ms`);
      } finally {
        for (const s of held) s.destroy();
        await new Promise<void>((resolve) => silent.close(() => resolve()));
      }
    });

    it('a token server that sends its headers and then stalls the body: warnings, then exit 6 naming it, in seconds', async () => {
      const tokens = await startTokenServer({ users: { alice: 'wonderland' } });
      const realm = new URL(tokens.realm);
      const stall = await startFaultProxy({ upstream: realm.origin, rules: [{ kind: 'stall-response', probability: 1 }] });
      const reg = await startRegistry({
        token: { realm: `${stall.url}${realm.pathname}`, service: tokens.service, issuer: tokens.issuer, rootCertBundle: tokens.rootCertBundle },
      });
      try {
        const started = Date.now();
        const r = await runCli(
          ['push', '--source', bundle, '--private-registry', `http://${reg.host}/stall`, '--timeout', '1', '--username', 'alice', '--password-stdin'],
          { input: 'wonderland', timeoutMs: 30_000 },
        );
        const took = Date.now() - started;
        assert.equal(r.code, 6, r.stderr + r.stdout);
        const w = warnings(r.stderr);
        assert.ok(w.length >= 2, r.stderr);
        for (const line of w) assert.equal(line, `warning: ${stall.host} stopped sending its answer to GET ${realm.pathname} for 1 s`);
        assertOneLineError(r.stderr, `no answer from ${stall.host}`);
        assert.ok(!r.stderr.includes('wonderland'));
        assert.ok(took < 10_000, `ended in ${took} ms`);
      } finally {
        await reg.stop();
        await stall.stop();
        await tokens.stop();
      }
    });

    it('a stalled body the push does not need costs one timeout and a warning, and the push goes on', async () => {
      const stall = await startFaultProxy({ upstream: registry.url, rules: [{ kind: 'stall-response', method: 'GET', nth: [1] }] });
      try {
        const r = await runCli(['push', '--source', bundle, '--private-registry', `http://${stall.host}/slow-ping`, '--timeout', '1'], { timeoutMs: 60_000 });
        assert.equal(r.code, 0, r.stderr + r.stdout);
        assert.equal(stall.injected['stall-response'], 1);
        assert.deepEqual(warnings(r.stderr), [`warning: ${stall.host} stopped sending its answer to GET /v2/ for 1 s`]);
        await assertPushed('slow-ping');
      } finally {
        await stall.stop();
      }
    });
  });

  describe('a registry whose disk is full', () => {
    /**
     * ENOSPC_ANSWER is what docker-registry 2.8 answered here to a blob upload on a full tmpfs (captured from the real
     * registry); it is replayed by a proxy only where this machine cannot mount a small tmpfs for a real one.
     */
    const ENOSPC_ANSWER = JSON.stringify({
      errors: [
        {
          code: 'UNKNOWN',
          message: 'unknown error',
          detail: 'write /var/lib/docker-registry/docker/registry/v2/repositories/x/_uploads/6ae16fb6-e56a-463e-b6ae-5d2919f28cfe/data: no space left on device',
        },
      ],
    });

    it("shows the registry's own detail (no space left on device), does not retry it, and tags nothing half-way", async function () {
      const real = await canMountTmpfs();
      if (!real) console.log('      (no tmpfs mount here: replaying the real registry\'s ENOSPC answer through a proxy)');
      const full = await startRegistry(real ? { storageBytes: 2 * 1024 * 1024 } : {});
      const replay = real
        ? undefined
        : await startFaultProxy({
            upstream: full.url,
            rules: [{ kind: 'respond', method: 'PUT', pathIncludes: '/blobs/uploads/', probability: 1, status: 500, body: ENOSPC_ANSWER }],
          });
      const host = replay?.host ?? full.host;
      try {
        const sized = await buildOciLayout({
          seed: 'full-disk',
          images: [
            { ref: 'gcr.io/full/small:1', layers: [{ files: 1, sizeBytes: 20_000 }] },
            { ref: 'gcr.io/full/big:1', layers: [{ files: 1, sizeBytes: 4 * 1024 * 1024 }] },
          ],
        });
        const file = join(work, 'full.tar');
        await writeTarBundle(sized.files, file, { order: 'metadata-first', compression: 'none' });
        const started = Date.now();
        const r = await runCli(['push', '--source', file, '--private-registry', `http://${host}/full`, '--jobs', '1'], { timeoutMs: 60_000 });
        const took = Date.now() - started;
        assert.ok(r.code === 1 || r.code === 7, `exit ${r.code}: ${r.stderr}${r.stdout}`);
        const out = `${r.stderr}\n${r.stdout}`;
        assert.match(out, /no space left on device/);
        const bare = out.split('\n').filter((l) => /UNKNOWN unknown error/.test(l) && !/no space left on device/.test(l));
        assert.deepEqual(bare, [], 'never the bare UNKNOWN unknown error');
        assert.ok(took < 7_000, `a full disk is not retried: ${took} ms`);
        // Nothing tagged half-way: a tag that exists names an image whose every blob is there (skopeo checks each one).
        for (const img of sized.images) {
          const repo = `docker://${full.host}/${destPath(img.ref!, 'full').replace(/:[^:/]*$/, '')}`;
          const tags = await skopeoListTags(repo).catch(() => [] as string[]);
          if (img.ref!.includes('/big:')) assert.deepEqual(tags, [], 'the image whose layer did not fit has no tag');
          if (tags.includes('1')) await skopeoCopyToOci(`${repo}:1`, join(work, `full-out-${tags.length}-${img.digest.slice(7, 15)}`));
        }
      } finally {
        await replay?.stop();
        await full.stop();
      }
    });
  });
});
