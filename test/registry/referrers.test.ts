/**
 * The referrers client (src/registry/referrers.ts): the referrers API against the spec-following test server (every
 * page, the artifactType filter applied by the server or here), the fallback tag against the real registry
 * (docker-registry has no API), what a client remembers about the API (asked once per client, also when several
 * images ask at once; a 404 naming an unknown repository is not taken for "no API"), hostile answers (a Link that
 * loops, a list that is not an index, a fallback tag that is not an index), and the merge into a fallback tag index.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { MirrorError } from '../../src/errors/index.js';
import { closeAll } from '../../src/net/http.js';
import { fallbackTag, mergeReferrer, mergeReferrers, RegistryClient, type UploadSession } from '../../src/registry/index.js';
import { startFaultProxy, type FaultProxy } from '../helpers/fault-proxy.js';
import { chunksOf, randomBlob, staticSettings } from '../helpers/image.js';
import { listenLocal, stopAll } from '../helpers/proc.js';
import {
  artifactManifest,
  fallbackIndexOf,
  seedAll,
  seedImage,
  seedManifest,
  startReferrersRegistry,
  type ReferrersRegistry,
  type SeedManifest,
} from '../helpers/referrers-registry.js';
import { startRegistry, type TestRegistry } from '../helpers/registry.js';
import { skopeoCopyToOci, skopeoInspectRawDigest, skopeoListTags } from '../helpers/skopeo.js';

const SBOM = 'application/spdx+json';
const SIG = 'application/vnd.cncf.notary.signature';

function clientFor(host: string): RegistryClient {
  return new RegistryClient({ host, settings: staticSettings({ scheme: 'http' }), retry: { retries: 1, baseDelayMs: 10 } });
}

/** attach makes an artifact of `type` whose subject is `subject`. */
function attach(subject: SeedManifest, type: string, n: number): SeedManifest {
  return artifactManifest({
    artifactType: type,
    subject: subject.descriptor,
    layers: [{ mediaType: type, data: Buffer.from(JSON.stringify({ n, type })) }],
    annotations: { 'org.opencontainers.image.created': `2024-01-0${n}T00:00:00Z` },
  });
}

describe('referrers client', function () {
  this.timeout(60_000);

  describe('the test server speaks the distribution API to real clients (ours, skopeo)', () => {
    let server: ReferrersRegistry;
    let work: string;
    before(async () => {
      server = await startReferrersRegistry({ tagsPageSize: 2 });
      work = mkdtempSync(join(tmpdir(), 'mirror-referrers-server-'));
    });
    after(async () => {
      await closeAll();
      await server?.stop();
      if (work) rmSync(work, { recursive: true, force: true });
    });

    it('chunked and monolithic uploads, mounts (201, or a session to upload into), Range reads, manifests, paged tags', async () => {
      const client = clientFor(server.host);
      assert.deepEqual(await client.ping(), { scheme: 'http', auth: 'none' });
      const big = randomBlob(300_000);
      assert.deepEqual(
        await client.uploadBlob('srv/a', { kind: 'stream', open: () => chunksOf(big.data, 10_000), reopenable: true }, { digest: big.digest, size: big.size, mode: 'chunked', chunkSize: 64 * 1024 }),
        { digest: big.digest, size: big.size },
      );
      assert.ok(server.requests.filter((r) => r.method === 'PATCH').length >= 4, 'sent in chunks');
      assert.deepEqual(await client.blobExists('srv/a', big.digest), { size: big.size });
      assert.deepEqual(await client.mountBlob('srv/b', big.digest, 'srv/a'), { mounted: true });
      const small = randomBlob(1000);
      const refused = await client.mountBlob('srv/b', small.digest, 'srv/a');
      assert.equal(refused.mounted, false);
      await client.uploadBlob('srv/b', { kind: 'bytes', data: small.data }, { digest: small.digest, session: refused.mounted ? undefined : (refused.session as UploadSession) });
      assert.deepEqual(await client.blobExists('srv/b', small.digest), { size: small.size });
      const tail: Uint8Array[] = [];
      for await (const c of (await client.getBlob('srv/a', big.digest, { offset: 250_000, size: big.size })).body) tail.push(c);
      assert.ok(Buffer.concat(tail).equals(Buffer.from(big.data.subarray(250_000))));
      const image = seedImage('server');
      await seedAll(server.url, 'srv/a', image);
      const tags = ['a', 'b', 'c', 'd', 'e'];
      for (const t of tags) assert.equal(await client.putManifest('srv/a', t, image.bytes, image.mediaType), image.digest);
      assert.deepEqual(await client.headManifest('srv/a', 'c'), { digest: image.digest, mediaType: image.mediaType, size: image.size });
      assert.deepEqual(Buffer.from((await client.getManifest('srv/a', image.digest)).bytes), image.bytes);
      server.reset();
      assert.deepEqual(await client.listTags('srv/a'), tags);
      assert.equal(server.requests.filter((r) => r.path.endsWith('/tags/list')).length, 3, 'three pages of two');
      await assert.rejects(client.putManifest('srv/c', 'x', image.bytes, image.mediaType), /MANIFEST_BLOB_UNKNOWN/);
    });

    it('skopeo lists its tags (every page) and copies an image out of it with every digest verified', async () => {
      const image = seedImage('skopeo');
      await seedAll(server.url, 'srv/skopeo', image, 'v1');
      await seedManifest(server.url, 'srv/skopeo', 'v2', image);
      await seedManifest(server.url, 'srv/skopeo', 'v3', image);
      assert.deepEqual((await skopeoListTags(`docker://${server.host}/srv/skopeo`)).sort(), ['v1', 'v2', 'v3']);
      assert.equal(await skopeoInspectRawDigest(`docker://${server.host}/srv/skopeo:v2`), image.digest);
      await skopeoCopyToOci(`docker://${server.host}/srv/skopeo:v1`, join(work, 'layout'));
    });
  });

  describe('the referrers API (spec-following test server)', () => {
    let server: ReferrersRegistry;
    let image: SeedManifest;
    const artifacts: SeedManifest[] = [];

    before(async () => {
      server = await startReferrersRegistry();
      image = seedImage('api');
      await seedAll(server.url, 'app/api', image, 'v1');
      for (let i = 1; i <= 5; i++) {
        const a = attach(image, i % 2 === 0 ? SIG : SBOM, i);
        const answer = await seedAll(server.url, 'app/api', a);
        assert.equal(answer.subject, image.digest, 'the test server answers OCI-Subject');
        artifacts.push(a);
      }
    });
    after(async () => {
      await closeAll();
      await server?.stop();
    });
    beforeEach(() => {
      server.configure({ referrersPageSize: undefined, applyFilters: true });
      server.reset();
    });

    it('reads every page (Link) and lists each referrer with its artifactType and annotations', async () => {
      server.configure({ referrersPageSize: 2 });
      const answer = await clientFor(server.host).referrers('app/api', image.digest);
      assert.equal(answer.via, 'api');
      assert.deepEqual(answer.descriptors.map((d) => d.digest).sort(), artifacts.map((a) => a.digest).sort());
      for (const a of artifacts) {
        const d = answer.descriptors.find((x) => x.digest === a.digest)!;
        assert.equal(d.artifactType, a.descriptor.artifactType);
        assert.deepEqual(d.annotations, a.descriptor.annotations);
      }
      const pages = server.requests.filter((r) => r.path.includes('/referrers/'));
      assert.equal(pages.length, 3, JSON.stringify(pages));
      assert.equal(server.requests.filter((r) => r.path.includes('/manifests/')).length, 0, 'no fallback tag read');
    });

    it('the artifactType filter: applied by the registry, or here when the registry ignores it', async () => {
      const sboms = artifacts.filter((a) => a.descriptor.artifactType === SBOM).map((a) => a.digest).sort();
      const applied = await clientFor(server.host).referrers('app/api', image.digest, { artifactType: SBOM });
      assert.deepEqual(applied.descriptors.map((d) => d.digest).sort(), sboms);
      assert.match(server.requests.find((r) => r.path.includes('/referrers/'))?.query ?? '', /artifactType=application%2Fspdx%2Bjson/);
      server.configure({ applyFilters: false });
      const ignored = await clientFor(server.host).referrers('app/api', image.digest, { artifactType: SBOM });
      assert.deepEqual(ignored.descriptors.map((d) => d.digest).sort(), sboms);
    });

    it('a 404 naming an unknown repository is not taken for "no referrers API"', async () => {
      const client = clientFor(server.host);
      const unknown = await client.referrers('app/nothing-here', image.digest);
      assert.deepEqual(unknown, { via: 'tag', descriptors: [] });
      const known = await client.referrers('app/api', image.digest);
      assert.equal(known.via, 'api', 'the next image still asks the API');
      assert.equal(known.descriptors.length, artifacts.length);
    });

    it('a registry without the API (404 page not found) is asked once per client, also by images asking at once', async () => {
      server.configure({ referrersApi: false });
      try {
        const client = clientFor(server.host);
        const subjects = [image.digest, ...artifacts.map((a) => a.digest)];
        const answers = await Promise.all(subjects.slice(0, 4).map((s) => client.referrers('app/api', s)));
        for (const s of subjects.slice(4)) answers.push(await client.referrers('app/api', s));
        assert.ok(answers.every((a) => a.via === 'tag'));
        assert.equal(server.requests.filter((r) => r.path.includes('/referrers/')).length, 1, 'the API was asked once');
        assert.equal(server.requests.filter((r) => r.path.includes('/manifests/sha256-')).length, subjects.length, 'one fallback tag read per subject');
      } finally {
        server.configure({ referrersApi: true });
      }
    });
  });

  describe('the fallback tag (docker-registry, no referrers API)', () => {
    let registry: TestRegistry;
    let proxy: FaultProxy;
    let image: SeedManifest;
    let sbom: SeedManifest;
    let sig: SeedManifest;

    before(async () => {
      registry = await startRegistry();
      proxy = await startFaultProxy({ upstream: registry.url });
      image = seedImage('fallback');
      await seedAll(registry.url, 'app/fb', image, 'v1');
      sbom = attach(image, SBOM, 1);
      sig = attach(image, SIG, 2);
      for (const a of [sbom, sig]) assert.equal((await seedAll(registry.url, 'app/fb', a)).subject, undefined, 'distribution 2.8 does not answer OCI-Subject');
      await seedManifest(registry.url, 'app/fb', fallbackTag(image.digest), fallbackIndexOf([sbom.descriptor, sig.descriptor]));
    });
    after(async () => {
      await closeAll();
      await proxy?.stop();
      await registry?.stop();
      await stopAll();
    });
    beforeEach(() => proxy.reset());

    it('reads the referrers from the fallback tag index after the API answers 404', async () => {
      const answer = await clientFor(proxy.host).referrers('app/fb', image.digest);
      assert.equal(answer.via, 'tag');
      assert.deepEqual(answer.descriptors, [sbom.descriptor, sig.descriptor]);
      const filtered = await clientFor(proxy.host).referrers('app/fb', image.digest, { artifactType: SIG });
      assert.deepEqual(filtered.descriptors, [sig.descriptor]);
    });

    it('one client asks the API once for many subjects, however many ask at once', async () => {
      const client = clientFor(proxy.host);
      const subjects = [image.digest, sbom.digest, sig.digest];
      await Promise.all(subjects.map((s) => client.referrers('app/fb', s)));
      await client.referrers('app/fb', image.digest);
      assert.equal(proxy.requests.filter((r) => r.path.includes('/referrers/')).length, 1, JSON.stringify(proxy.requests.map((r) => r.path)));
    });

    it('a fallback tag that is not an index is an error naming the tag, with what to do', async () => {
      const other = seedImage('not-an-index');
      await seedAll(registry.url, 'app/fb', other, fallbackTag(sbom.digest));
      await assert.rejects(clientFor(proxy.host).referrers('app/fb', sbom.digest), (e: unknown) => {
        assert.ok(e instanceof MirrorError);
        assert.equal(e.code, 'REGISTRY');
        assert.match(e.message, new RegExp(`app/fb:${fallbackTag(sbom.digest)} is not an index`));
        assert.match(e.hint ?? '', /--referrers=false/);
        return true;
      });
    });
  });

  describe('hostile referrers answers', () => {
    let server: Server;
    let host: string;
    let served = 0;
    let answer: (path: string) => { status: number; headers: Record<string, string>; body: string };

    before(async () => {
      server = createServer((req, res) => {
        const path = req.url ?? '/';
        if (path === '/v2/') {
          res.writeHead(200, { 'content-type': 'application/json' }).end('{}');
          return;
        }
        served++;
        const a = answer(path);
        res.writeHead(a.status, { 'content-length': Buffer.byteLength(a.body), ...a.headers }).end(a.body);
      });
      host = `127.0.0.1:${await listenLocal(server)}`;
    });
    after(async () => {
      await closeAll();
      await new Promise<void>((r) => server.close(() => r()));
    });
    beforeEach(() => (served = 0));

    const subject = `sha256:${'a'.repeat(64)}`;
    const entry = { mediaType: 'application/vnd.oci.image.manifest.v1+json', digest: `sha256:${'b'.repeat(64)}`, size: 10, artifactType: SBOM };

    it('a Link that leads back to a page already read ends the list (no loop)', async () => {
      answer = (path) => ({
        status: 200,
        headers: { 'content-type': 'application/vnd.oci.image.index.v1+json', link: `<${path.split('?')[0]}?page=1>; rel="next"` },
        body: JSON.stringify({ schemaVersion: 2, mediaType: 'application/vnd.oci.image.index.v1+json', manifests: [entry] }),
      });
      const got = await clientFor(host).referrers('app/x', subject);
      assert.equal(got.via, 'api');
      assert.equal(served, 2, 'the first page and the linked one, then the loop is seen');
      assert.equal(got.descriptors.length, 2);
    });

    it('a referrers list that is not a valid index is an error, not a silent fallback', async () => {
      answer = () => ({ status: 200, headers: { 'content-type': 'application/vnd.oci.image.index.v1+json' }, body: JSON.stringify({ schemaVersion: 2, manifests: [{ digest: 'nope' }] }) });
      await assert.rejects(clientFor(host).referrers('app/x', subject), (e: unknown) => {
        assert.ok(e instanceof MirrorError);
        assert.equal(e.code, 'REGISTRY');
        assert.match(e.message, /referrers list of app\/x@sha256:a+ is not a valid index/);
        return true;
      });
    });

    it('an HTML page at the referrers path is a registry without the API', async () => {
      answer = (path) =>
        path.includes('/referrers/')
          ? { status: 200, headers: { 'content-type': 'text/html' }, body: '<html>hello</html>' }
          : { status: 404, headers: { 'content-type': 'application/json' }, body: JSON.stringify({ errors: [{ code: 'MANIFEST_UNKNOWN', message: 'no' }] }) };
      assert.deepEqual(await clientFor(host).referrers('app/x', subject), { via: 'tag', descriptors: [] });
    });
  });

  describe('mergeReferrers', () => {
    const desc = (c: string, extra: Record<string, unknown> = {}): { mediaType: string; digest: string; size: number } => ({
      mediaType: 'application/vnd.oci.image.manifest.v1+json',
      digest: `sha256:${c.repeat(64)}`,
      size: 100,
      ...extra,
    });

    it('starts an OCI index when there is none', () => {
      const bytes = mergeReferrers(undefined, [desc('1', { artifactType: SBOM, annotations: { a: 'b' }, platform: { os: 'linux' } })]);
      const doc = JSON.parse(Buffer.from(bytes!).toString('utf8')) as { mediaType: string; manifests: Array<Record<string, unknown>> };
      assert.equal(doc.mediaType, 'application/vnd.oci.image.index.v1+json');
      assert.deepEqual(doc.manifests, [{ ...desc('1'), artifactType: SBOM, annotations: { a: 'b' } }]);
    });

    it("keeps every entry and field another tool wrote, in order, adds only what is missing, and says when nothing changes", () => {
      const foreign = { schemaVersion: 2, mediaType: 'application/vnd.oci.image.index.v1+json', annotations: { tool: 'oras' }, manifests: [desc('f', { artifactType: 'x/y', annotations: { k: 'v' } }), desc('2')] };
      const existing = { bytes: Buffer.from(JSON.stringify(foreign)) };
      const merged = JSON.parse(Buffer.from(mergeReferrers(existing, [desc('2'), desc('3'), desc('3')])!).toString('utf8')) as typeof foreign;
      assert.deepEqual(merged.annotations, { tool: 'oras' });
      assert.deepEqual(merged.manifests, [...foreign.manifests, desc('3')]);
      assert.equal(mergeReferrers(existing, [desc('f'), desc('2')]), undefined);
      assert.equal(mergeReferrer(existing, desc('f')), undefined);
    });
  });
});
