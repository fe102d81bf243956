/**
 * Hostile source registries (a small server of the test's own that answers as a broken or malicious registry would):
 * each case ends within a bounded time and memory, with a one-line message or the right answer. Found by probing
 * the built binary: a manifest of 4 MiB of `[[[[` (JSON.parse took 0.7 GB), tag lists whose `Link` goes back to the
 * first page or round in circles under new URLs (tags listed twice, or 10,000 pages read), a manifest served as
 * `text/plain` without a `mediaType` field (written into index.json as `text/plain`, unreadable by skopeo).
 */
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { sha256Digest } from '../../src/oci/digest.js';
import { assertOneLineError, runCli, timedCli } from '../helpers/cli.js';
import { listenLocal } from '../helpers/proc.js';
import { skopeoInspectRaw } from '../helpers/skopeo.js';

const OCI_MANIFEST = 'application/vnd.oci.image.manifest.v1+json';

describe('hostile source registries (copy, list-tags)', function () {
  this.timeout(120_000);
  let server: Server;
  let host: string;
  let work: string;
  const hits = new Map<string, number>();
  const deep = Buffer.alloc(4 * 1024 * 1024, '[');
  // An image served as text/plain, its manifest without a mediaType field.
  const sha = (b: Buffer): string => `sha256:${createHash('sha256').update(b).digest('hex')}`;
  const plainConfig = Buffer.from(JSON.stringify({ architecture: 'amd64', os: 'linux', rootfs: { type: 'layers', diff_ids: [] } }));
  const plainLayer = Buffer.from('not really a layer');
  const plainManifest = Buffer.from(
    JSON.stringify({
      schemaVersion: 2,
      config: { mediaType: 'application/vnd.oci.image.config.v1+json', digest: sha(plainConfig), size: plainConfig.byteLength },
      layers: [{ mediaType: 'application/vnd.oci.image.layer.v1.tar', digest: sha(plainLayer), size: plainLayer.byteLength }],
    }),
  );
  const plainBlobs = new Map([sha(plainConfig), sha(plainLayer)].map((dg, i) => [`/v2/plain/blobs/${dg}`, i === 0 ? plainConfig : plainLayer]));
  const deepDigest = `sha256:${createHash('sha256').update(deep).digest('hex')}`;
  // An image whose layer trickles: a byte every 50 ms, never silent for as long as the body timeout.
  const trickleLayer = Buffer.alloc(64 * 1024, 1);
  const trickleManifest = Buffer.from(
    JSON.stringify({
      schemaVersion: 2,
      mediaType: OCI_MANIFEST,
      config: { mediaType: 'application/vnd.oci.image.config.v1+json', digest: sha(plainConfig), size: plainConfig.byteLength },
      layers: [{ mediaType: 'application/vnd.oci.image.layer.v1.tar', digest: sha(trickleLayer), size: trickleLayer.byteLength }],
    }),
  );

  before(async () => {
    work = mkdtempSync(join(tmpdir(), 'mirror-hostile-'));
    let circle = 0;
    server = createServer((req, res) => {
      const url = new URL(req.url ?? '/', 'http://x');
      hits.set(url.pathname, (hits.get(url.pathname) ?? 0) + 1);
      const json = (body: unknown, headers: Record<string, string> = {}): void => {
        res.writeHead(200, { 'content-type': 'application/json', ...headers });
        res.end(JSON.stringify(body));
      };
      if (url.pathname === '/v2/') return json({});
      if (url.pathname === '/v2/deep/manifests/latest' || url.pathname === `/v2/deep/manifests/${deepDigest}`) {
        res.writeHead(200, { 'content-type': OCI_MANIFEST, 'content-length': String(deep.byteLength), 'docker-content-digest': deepDigest });
        return res.end(req.method === 'HEAD' ? undefined : deep);
      }
      if (url.pathname === '/v2/plain/manifests/latest' || url.pathname === `/v2/plain/manifests/${sha(plainManifest)}`) {
        res.writeHead(200, { 'content-type': 'text/plain', 'content-length': String(plainManifest.byteLength), 'docker-content-digest': sha(plainManifest) });
        return res.end(req.method === 'HEAD' ? undefined : plainManifest);
      }
      if (url.pathname === '/v2/trickle/manifests/latest' || url.pathname === `/v2/trickle/manifests/${sha(trickleManifest)}`) {
        res.writeHead(200, { 'content-type': OCI_MANIFEST, 'content-length': String(trickleManifest.byteLength), 'docker-content-digest': sha(trickleManifest) });
        return res.end(req.method === 'HEAD' ? undefined : trickleManifest);
      }
      if (url.pathname === `/v2/trickle/blobs/${sha(plainConfig)}`) {
        res.writeHead(200, { 'content-type': 'application/octet-stream', 'content-length': String(plainConfig.byteLength) });
        return res.end(req.method === 'HEAD' ? undefined : plainConfig);
      }
      if (url.pathname === `/v2/trickle/blobs/${sha(trickleLayer)}`) {
        // It answers Range as registries do, so the cut download is resumed (and trickles again).
        const from = Number(/^bytes=(\d+)-$/.exec(req.headers.range ?? '')?.[1] ?? 0);
        const size = trickleLayer.byteLength;
        res.writeHead(from > 0 ? 206 : 200, {
          'content-type': 'application/octet-stream',
          'content-length': String(size - from),
          ...(from > 0 ? { 'content-range': `bytes ${from}-${size - 1}/${size}` } : {}),
        });
        if (req.method === 'HEAD') return res.end();
        let sent = from;
        const timer = setInterval(() => (sent < trickleLayer.byteLength ? res.write(trickleLayer.subarray(sent, ++sent)) : res.end()), 50);
        res.on('close', () => clearInterval(timer));
        return;
      }
      const blob = plainBlobs.get(url.pathname);
      if (blob !== undefined) {
        res.writeHead(200, { 'content-type': 'application/octet-stream', 'content-length': String(blob.byteLength) });
        return res.end(req.method === 'HEAD' ? undefined : blob);
      }
      // A Link back to the first page, written relative as registries write it.
      if (url.pathname === '/v2/loop/tags/list') return json({ name: 'loop', tags: ['a', 'b'] }, { link: '</v2/loop/tags/list>; rel="next"' });
      // The same tags under a new URL every time, without end.
      if (url.pathname === '/v2/circle/tags/list') return json({ name: 'circle', tags: ['a', 'b'] }, { link: `</v2/circle/tags/list?n=2&last=${++circle}>; rel="next"` });
      res.writeHead(404, { 'content-type': 'application/json' });
      res.end(JSON.stringify({ errors: [{ code: 'NAME_UNKNOWN', message: 'no such repository' }] }));
    });
    host = `127.0.0.1:${await listenLocal(server)}`;
  });
  beforeEach(() => hits.clear());
  after(async () => {
    server?.closeAllConnections();
    await new Promise<void>((resolve) => (server ? server.close(() => resolve()) : resolve()));
    if (work) rmSync(work, { recursive: true, force: true });
  });

  it('a manifest of 4 MiB of [[[[: exit 3 naming it, refused before it is parsed (peak RSS well under 200 MB)', async () => {
    const r = await timedCli(['copy', '--src-tls-verify=false', `docker://${host}/deep:latest`, `oci:${join(work, 'deep')}:latest`]);
    assert.equal(r.code, 3, r.stderr + r.stdout);
    assert.match(r.stderr, /^failed: \S+\/deep:latest -> oci:\S+: manifest sha256:[0-9a-f]{64} nests JSON deeper than 256 levels, which no image format does; refused/m);
    assert.doesNotMatch(r.stderr, /\n\s+at /, 'no stack trace');
    assert.ok(r.rssMb < 200, `peak RSS ${r.rssMb} MB`);
  });

  it('a manifest served as text/plain without a mediaType field is written under the type its structure gives; skopeo reads the layout', async () => {
    const dir = join(work, 'plain');
    const r = await runCli(['copy', '--src-tls-verify=false', `docker://${host}/plain:latest`, `oci:${dir}:latest`], { timeoutMs: 60_000 });
    assert.equal(r.code, 0, r.stderr + r.stdout);
    const index = JSON.parse(readFileSync(join(dir, 'index.json'), 'utf8')) as { manifests: Array<{ mediaType: string; digest: string }> };
    assert.deepEqual(index.manifests.map((m) => [m.mediaType, m.digest]), [['application/vnd.oci.image.manifest.v1+json', sha(plainManifest)]]);
    assert.equal(sha256Digest(await skopeoInspectRaw(`oci:${dir}:latest`)), sha(plainManifest));
  });

  it('a layer that trickles (a byte every 50 ms) is cut at the rate floor and the source given up on: exit 6, nothing tagged', async () => {
    const dir = join(work, 'trickle');
    const started = Date.now();
    const r = await runCli(['copy', '--timeout', '1', '--src-tls-verify=false', `docker://${host}/trickle:latest`, `oci:${dir}:latest`], { timeoutMs: 60_000 });
    assert.equal(r.code, 6, r.stderr + r.stdout);
    assertOneLineError(r.stderr, new RegExp(`${host.replace(/\./g, '\\.')} kept transfers under 1 KiB/s for [\\d.]+ s \\(\\d+ requests in a row cut\\)`));
    assert.match(r.stderr, /sent its answer to GET \/v2\/trickle\/blobs\/sha256:[0-9a-f]{64} too slowly for 1 s/);
    assert.ok(Date.now() - started < 30_000, `took ${Date.now() - started} ms`);
    assert.ok((hits.get(`/v2/trickle/blobs/${sha(trickleLayer)}`) ?? 0) >= 2, 'the cut GET was tried again');
    let tagged = false;
    try {
      tagged = readFileSync(join(dir, 'index.json'), 'utf8').includes('latest');
    } catch {
      // no layout at all: nothing tagged either
    }
    assert.ok(!tagged, 'nothing is tagged');
  });

  it('list-tags: a Link back to the first page is a listing that cannot be finished, not the whole list: exit 1 saying so', async () => {
    const r = await runCli(['list-tags', '--tls-verify=false', `docker://${host}/loop`], { timeoutMs: 60_000 });
    assert.equal(r.code, 1, r.stderr);
    assertOneLineError(r.stderr, 'tag list of loop is incomplete: page 2 links back to a page already read');
    assert.equal(hits.get('/v2/loop/tags/list'), 1);
  });

  it('list-tags: a registry going round in circles under new URLs is stopped at the first page that adds nothing, and fails', async () => {
    const r = await runCli(['list-tags', '--tls-verify=false', `docker://${host}/circle`], { timeoutMs: 60_000 });
    assert.equal(r.code, 1, r.stderr);
    assertOneLineError(r.stderr, 'tag list of circle is incomplete: page 2 repeats tags already listed and links to another page');
    assert.equal(hits.get('/v2/circle/tags/list'), 2);
  });
});
