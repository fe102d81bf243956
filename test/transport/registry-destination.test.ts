/**
 * The registry destination's tag learning (`learnTags`), against docker-registry behind a recording proxy: a
 * repository's first tag is asked alone; when it is missing the tag list is read once and answers the tags it lacks,
 * a tag it holds is still asked with HEAD, and a repository listed empty is `untagged`. The one-page tag list read
 * (`wholeTagList`) is checked against a small server of its own for the answers docker-registry does not give
 * (a next page, a 404 that is not NAME_UNKNOWN).
 */
import assert from 'node:assert/strict';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { anonymousResolver } from '../../src/auth/types.js';
import { closeAll } from '../../src/net/http.js';
import { RegistryClient } from '../../src/registry/index.js';
import { openRegistryDestination } from '../../src/transport/registry/destination.js';
import type { ImageDestination } from '../../src/transport/types.js';
import { startFaultProxy, type FaultProxy } from '../helpers/fault-proxy.js';
import { makeImage, staticSettings, type TestImage } from '../helpers/image.js';
import { stopAll } from '../helpers/proc.js';
import { startRegistry, type TestRegistry } from '../helpers/registry.js';

const settings = staticSettings({ scheme: 'http' });

describe('registry destination: tags learnt from the tag list (integration: docker-registry)', function () {
  this.timeout(60_000);
  let registry: TestRegistry;
  let proxy: FaultProxy;
  let image: TestImage;

  before(async () => {
    registry = await startRegistry();
    proxy = await startFaultProxy({ upstream: registry.url });
    const seed = new RegistryClient({ host: registry.host, scheme: 'http', settings });
    image = makeImage(512);
    for (const b of [image.config, image.layer]) await seed.uploadBlob('app', { kind: 'bytes', data: b.data }, { digest: b.digest, size: b.size });
    for (const tag of ['a', 'b']) await seed.putManifest('app', tag, image.manifest.data, image.mediaType);
  });
  after(async () => {
    await proxy?.stop();
    await stopAll();
    await closeAll();
  });

  /** open gives a destination that reaches the registry through the proxy, with a fresh memory of tags. */
  function open(learnTags: boolean): Promise<ImageDestination> {
    const client = new RegistryClient({ host: proxy.host, scheme: 'http', settings });
    return openRegistryDestination({ kind: 'registry', host: proxy.host, namespace: '', scheme: 'http', explicitScheme: true }, { settings, credentials: anonymousResolver, client, learnTags });
  }
  const asked = (): string[] => proxy.requests.map((q) => `${q.method} ${q.path}`);

  it('a missing first tag reads the list once: tags it lacks are missing without a request, tags it has are HEADed', async () => {
    const dest = await open(true);
    proxy.reset();
    assert.equal(await dest.manifestDigest('app', 'c', {}), undefined);
    assert.deepEqual(asked(), ['HEAD /v2/app/manifests/c']);
    // The list is read as the first answer settles; the next question waits for it.
    assert.equal(await dest.manifestDigest('app', 'd', {}), undefined);
    assert.deepEqual(asked(), ['HEAD /v2/app/manifests/c', 'GET /v2/app/tags/list']);
    assert.equal(await dest.manifestDigest('app', 'a', {}), image.manifest.digest);
    assert.equal(await dest.manifestDigest('app', image.manifest.digest, {}), image.manifest.digest);
    assert.deepEqual(asked().slice(2), ['HEAD /v2/app/manifests/a', `HEAD /v2/app/manifests/${image.manifest.digest}`]);
    assert.equal(await dest.untagged?.('app'), false);
    // A tag this destination puts is asked again, not answered from the list.
    await dest.putManifest({ repository: 'app', name: 'app:d' }, 'd', image.manifest.data, image.mediaType, {});
    proxy.reset();
    assert.equal(await dest.manifestDigest('app', 'd', {}), image.manifest.digest);
    assert.deepEqual(asked(), ['HEAD /v2/app/manifests/d']);
  });

  it('a tag whose first HEAD answers is not followed by a list read', async () => {
    const dest = await open(true);
    proxy.reset();
    assert.equal(await dest.manifestDigest('app', 'a', {}), image.manifest.digest);
    assert.equal(await dest.manifestDigest('app', 'x', {}), undefined);
    assert.deepEqual(asked(), ['HEAD /v2/app/manifests/a', 'HEAD /v2/app/manifests/x']);
  });

  it('a new repository: tags asked at once cost one HEAD and one list read, and it is untagged', async () => {
    const dest = await open(true);
    proxy.reset();
    const answers = await Promise.all(['1', '2', '3', '4'].map((tag) => dest.manifestDigest('new/repo', tag, {})));
    assert.deepEqual(answers, [undefined, undefined, undefined, undefined]);
    assert.deepEqual(asked(), ['HEAD /v2/new/repo/manifests/1', 'GET /v2/new/repo/tags/list']);
    assert.equal(await dest.untagged?.('new/repo'), true);
    assert.equal(await dest.untagged?.('never/asked'), false);
  });

  it('without learnTags every tag is HEADed and nothing is listed', async () => {
    const dest = await open(false);
    proxy.reset();
    for (const tag of ['c', 'd', 'a']) await dest.manifestDigest('app', tag, {});
    assert.deepEqual(asked(), ['HEAD /v2/app/manifests/c', 'HEAD /v2/app/manifests/d', 'HEAD /v2/app/manifests/a']);
    assert.equal(await dest.untagged?.('app'), false);
  });
});

describe('wholeTagList: one page or nothing', function () {
  this.timeout(20_000);
  let server: Server;
  let host: string;
  const pages: Record<string, { status: number; body: string; link?: string }> = {
    '/v2/one/tags/list': { status: 200, body: '{"name":"one","tags":["1","2"]}' },
    '/v2/paged/tags/list': { status: 200, body: '{"name":"paged","tags":["1"]}', link: '</v2/paged/tags/list?n=1&last=1>; rel="next"' },
    '/v2/unknown/tags/list': { status: 404, body: '{"errors":[{"code":"NAME_UNKNOWN","message":"repository name not known to registry"}]}' },
    '/v2/elsewhere/tags/list': { status: 404, body: '<html>not found</html>' },
    '/v2/denied/tags/list': { status: 403, body: '{"errors":[{"code":"DENIED","message":"no"}]}' },
    '/v2/nulls/tags/list': { status: 200, body: '{"name":"nulls","tags":null}' },
  };

  before(async () => {
    server = createServer((req, res) => {
      const path = (req.url ?? '/').split('?')[0] ?? '/';
      const page = path === '/v2/' ? { status: 200, body: '{}' } : pages[path];
      if (page === undefined) {
        res.writeHead(500).end();
        return;
      }
      res.writeHead(page.status, { 'content-type': 'application/json', ...(page.link !== undefined ? { link: page.link } : {}) }).end(page.body);
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    host = `127.0.0.1:${(server.address() as AddressInfo).port}`;
  });
  after(async () => {
    await closeAll();
    await new Promise<void>((resolve) => server.close(() => resolve()));
  });

  it('gives the tags of a one-page list, [] for an unknown repository, and undefined for anything it cannot trust', async () => {
    const client = new RegistryClient({ host, scheme: 'http', settings, retry: { retries: 0 } });
    assert.deepEqual(await client.wholeTagList('one', { pageSize: 1000 }), ['1', '2']);
    assert.deepEqual(await client.wholeTagList('unknown'), []);
    assert.deepEqual(await client.wholeTagList('nulls'), []);
    assert.equal(await client.wholeTagList('paged'), undefined);
    assert.equal(await client.wholeTagList('elsewhere'), undefined);
    assert.equal(await client.wholeTagList('denied'), undefined);
  });
});
