/**
 * Referrers travel with `mirror copy`:
 * - through the fallback tag on the real registry (docker-registry, distribution 2.8, has no referrers API): an SBOM
 *   and a signature whose `subject` is the image, registered in the source's `sha256-<hex>` index as oras and regctl
 *   write it, land at the destination by digest and in its fallback tag index, merged with what another tool put there;
 *   a signature of the SBOM follows the SBOM; `--referrers=false` copies none; a second copy writes nothing, sends no
 *   blob, and its requests are counted against a copy without referrers;
 * - cosign's `sha256-<hex>.sig` / `.att` tags, copied under the same tags;
 * - the referrers API, against the spec-following test server (test/helpers/referrers-registry.ts) where
 *   distribution 2.8 cannot serve: as a source (no fallback tag, small pages) into a destination that answers
 *   `OCI-Subject` (no fallback tag may be written there) and into docker-registry (the fallback tag is written);
 *   referrers of a multi-platform index (subject = the index digest);
 * - several images in one run over one source client: the referrers API is asked once per registry, not per image.
 * skopeo reads back what was copied.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { anonymousResolver } from '../../src/auth/types.js';
import { copyImagesFrom, type CopyJob } from '../../src/copy/copy.js';
import type { ProgressEvent } from '../../src/events/index.js';
import { closeAll } from '../../src/net/http.js';
import { fallbackTag, RegistryClient } from '../../src/registry/index.js';
import { openRegistryDestination } from '../../src/transport/registry/destination.js';
import { openRegistrySource } from '../../src/transport/registry/source.js';
import { homeMaker, isolatedEnv } from '../helpers/auth-env.js';
import { runCli, type CliResult } from '../helpers/cli.js';
import { startFaultProxy, type FaultProxy } from '../helpers/fault-proxy.js';
import { staticSettings } from '../helpers/image.js';
import { stopAll } from '../helpers/proc.js';
import {
  artifactManifest,
  cosignManifest,
  fallbackIndexOf,
  seedAll,
  seedImage,
  seedIndexOf,
  seedManifest,
  startReferrersRegistry,
  type ReferrersRegistry,
  type SeedManifest,
} from '../helpers/referrers-registry.js';
import { startRegistry, type TestRegistry } from '../helpers/registry.js';
import { skopeoInspectRaw, skopeoInspectRawDigest } from '../helpers/skopeo.js';

const SBOM = 'application/spdx+json';
const SIG = 'application/vnd.cncf.notary.signature';

/** attach makes an artifact of `type` whose subject is `subject`, as oras attach does. */
function attach(subject: SeedManifest, type: string, label: string): SeedManifest {
  return artifactManifest({
    artifactType: type,
    subject: subject.descriptor,
    layers: [{ mediaType: type === SBOM ? SBOM : 'application/jose+json', data: Buffer.from(JSON.stringify({ label, type })) }],
    annotations: { 'org.opencontainers.image.created': '2024-05-01T00:00:00Z', 'org.example.label': label },
  });
}

/** headStatus asks a registry for a manifest (HEAD) and gives the status. */
async function headStatus(base: string, repo: string, reference: string): Promise<number> {
  const res = await fetch(`${base}/v2/${repo}/manifests/${reference}`, {
    method: 'HEAD',
    headers: { accept: 'application/vnd.oci.image.manifest.v1+json, application/vnd.oci.image.index.v1+json' },
  });
  return res.status;
}

/** indexList reads a fallback tag index back with skopeo and gives its entries. */
async function fallbackEntries(ref: string): Promise<Array<{ digest: string; artifactType?: string; annotations?: Record<string, string> }>> {
  const doc = JSON.parse((await skopeoInspectRaw(ref)).toString('utf8')) as { mediaType: string; manifests: Array<{ digest: string; artifactType?: string; annotations?: Record<string, string> }> };
  assert.equal(doc.mediaType, 'application/vnd.oci.image.index.v1+json');
  return doc.manifests;
}

const isBlob = (r: { path: string }): boolean => r.path.includes('/blobs/');
const isWrite = (r: { method: string }): boolean => r.method !== 'GET' && r.method !== 'HEAD';

/** tally counts requests by kind, for the figures of an unchanged copy. */
function tally(rs: ReadonlyArray<{ method: string; path: string }>): Record<string, number> {
  const out: Record<string, number> = {};
  for (const r of rs) {
    const kind = r.path === '/v2/' ? 'ping' : r.path.includes('/referrers/') ? 'referrers API' : r.path.includes('/blobs/') ? 'blob' : /\/manifests\/sha256-/.test(r.path) ? 'fallback/cosign tag' : r.path.includes('/manifests/') ? 'manifest' : 'other';
    const key = `${r.method} ${kind}`;
    out[key] = (out[key] ?? 0) + 1;
  }
  return out;
}

const total = (t: Record<string, number>): number => Object.values(t).reduce((a, b) => a + b, 0);

describe('mirror copy with referrers (integration: docker-registry, referrers test server, skopeo)', function () {
  this.timeout(300_000);
  let work: string;
  let src: TestRegistry;
  let dst: TestRegistry;
  let srcProxy: FaultProxy;
  let dstProxy: FaultProxy;
  let apiSrc: ReferrersRegistry;
  let apiDst: ReferrersRegistry;
  const home = homeMaker(() => work);

  // On the source docker-registry: an image with an SBOM and a signature (fallback tag), and a signature of the SBOM.
  const image = seedImage('signed');
  const sbom = attach(image, SBOM, 'sbom');
  const sig = attach(image, SIG, 'sig');
  const sbomSig = attach(sbom, SIG, 'sbom-sig');
  // Another tool's referrer, already registered at the destination.
  const foreign = attach(image, 'application/vnd.example.scan+json', 'foreign');
  // An image with cosign's tags.
  const cosigned = seedImage('cosigned');
  const cosignSig = cosignManifest('sig', cosigned.digest);
  const cosignAtt = cosignManifest('att', cosigned.digest);
  // On the API source: an image and a multi-platform index, each with an SBOM and a signature (no fallback tag).
  const apiImage = seedImage('api');
  const apiSbom = attach(apiImage, SBOM, 'api-sbom');
  const apiSig = attach(apiImage, SIG, 'api-sig');
  const amd = seedImage('amd64');
  const arm = seedImage('arm64');
  const multi = seedIndexOf([
    { manifest: amd, platform: { os: 'linux', architecture: 'amd64' } },
    { manifest: arm, platform: { os: 'linux', architecture: 'arm64', variant: 'v8' } },
  ]);
  const multiSbom = attach(multi, SBOM, 'multi-sbom');
  const multiSig = attach(multi, SIG, 'multi-sig');

  function copy(args: string[]): Promise<CliResult> {
    return runCli(['copy', '--src-tls-verify=false', '--dest-tls-verify=false', ...args], { env: isolatedEnv(home()) });
  }

  before(async () => {
    work = mkdtempSync(join(tmpdir(), 'mirror-copy-referrers-'));
    [src, dst, apiSrc, apiDst] = await Promise.all([startRegistry(), startRegistry(), startReferrersRegistry({ referrersPageSize: 1 }), startReferrersRegistry()]);
    srcProxy = await startFaultProxy({ upstream: src.url });
    dstProxy = await startFaultProxy({ upstream: dst.url });

    await seedAll(src.url, 'app/signed', image, 'v1');
    for (const a of [sbom, sig, sbomSig]) await seedAll(src.url, 'app/signed', a);
    await seedManifest(src.url, 'app/signed', fallbackTag(image.digest), fallbackIndexOf([sbom.descriptor, sig.descriptor]));
    await seedManifest(src.url, 'app/signed', fallbackTag(sbom.digest), fallbackIndexOf([sbomSig.descriptor]));

    await seedAll(src.url, 'app/cosigned', cosigned, 'v1');
    await seedAll(src.url, 'app/cosigned', cosignSig, `${fallbackTag(cosigned.digest)}.sig`);
    await seedAll(src.url, 'app/cosigned', cosignAtt, `${fallbackTag(cosigned.digest)}.att`);

    await seedAll(apiSrc.url, 'app/api', apiImage, 'v1');
    for (const m of [amd, arm]) await seedAll(apiSrc.url, 'app/multi', m);
    await seedAll(apiSrc.url, 'app/multi', multi, 'v1');
    for (const a of [apiSbom, apiSig]) assert.equal((await seedAll(apiSrc.url, 'app/api', a)).subject, apiImage.digest);
    for (const a of [multiSbom, multiSig]) assert.equal((await seedAll(apiSrc.url, 'app/multi', a)).subject, multi.digest);
  });
  beforeEach(() => {
    srcProxy.reset();
    dstProxy.reset();
    apiSrc.reset();
    apiDst.reset();
  });
  after(async () => {
    await closeAll();
    await srcProxy?.stop();
    await dstProxy?.stop();
    await apiSrc?.stop();
    await apiDst?.stop();
    await src?.stop();
    await dst?.stop();
    await stopAll();
    if (work) rmSync(work, { recursive: true, force: true });
  });

  describe('through the fallback tag (docker-registry on both sides)', () => {
    it('carries the SBOM, the signature and the signature of the SBOM; the destination fallback tag keeps what another tool listed', async () => {
      // Another tool already registered a referrer of this image at the destination.
      await seedAll(dst.url, 'mirror/signed', foreign);
      await seedManifest(dst.url, 'mirror/signed', fallbackTag(image.digest), fallbackIndexOf([foreign.descriptor]));

      const r = await copy([`docker://${srcProxy.host}/app/signed:v1`, `docker://${dstProxy.host}/mirror/signed:v1`]);
      assert.equal(r.code, 0, r.stderr + r.stdout);
      assert.match(r.stdout, /3 referrer\(s\)/);
      assert.equal(await skopeoInspectRawDigest(`docker://${dst.host}/mirror/signed:v1`), image.digest);
      for (const a of [sbom, sig, sbomSig]) assert.equal(await skopeoInspectRawDigest(`docker://${dst.host}/mirror/signed@${a.digest}`), a.digest);

      const entries = await fallbackEntries(`docker://${dst.host}/mirror/signed:${fallbackTag(image.digest)}`);
      assert.equal(entries[0]?.digest, foreign.digest, "the other tool's entry is kept, first");
      assert.deepEqual(entries.map((e) => e.digest).sort(), [foreign.digest, sbom.digest, sig.digest].sort());
      for (const a of [sbom, sig]) {
        const e = entries.find((x) => x.digest === a.digest)!;
        assert.equal(e.artifactType, a.descriptor.artifactType);
        assert.deepEqual(e.annotations, a.descriptor.annotations);
      }
      // The SBOM's own referrer is listed under the SBOM's fallback tag.
      assert.deepEqual((await fallbackEntries(`docker://${dst.host}/mirror/signed:${fallbackTag(sbom.digest)}`)).map((e) => e.digest), [sbomSig.digest]);
    });

    it('a second copy writes nothing and sends no blob; its requests are counted against a copy without referrers', async () => {
      const again = await copy([`docker://${srcProxy.host}/app/signed:v1`, `docker://${dstProxy.host}/mirror/signed:v1`]);
      assert.equal(again.code, 0, again.stderr + again.stdout);
      assert.match(again.stdout, /already present.*3 referrer\(s\) checked/);
      assert.deepEqual(dstProxy.requests.filter(isWrite), [], 'nothing written');
      assert.deepEqual([...srcProxy.requests, ...dstProxy.requests].filter(isBlob), [], 'no blob request on either side');
      const withReferrers = { source: tally(srcProxy.requests), destination: tally(dstProxy.requests) };
      // Source: ping, the image HEAD, the API asked once (404), the image's fallback tag, cosign's three tags, then the
      // fallback tags of its three referrers (the SBOM, the signature, the SBOM's signature). Destination: ping, the
      // image HEAD, the API asked once (404), the fallback tags of the image and of the SBOM.
      assert.deepEqual(withReferrers.source, { 'GET ping': 1, 'HEAD manifest': 1, 'GET referrers API': 1, 'GET fallback/cosign tag': 4, 'HEAD fallback/cosign tag': 3 });
      assert.deepEqual(withReferrers.destination, { 'GET ping': 1, 'HEAD manifest': 1, 'GET referrers API': 1, 'GET fallback/cosign tag': 2 });

      srcProxy.reset();
      dstProxy.reset();
      const plain = await copy(['--referrers=false', `docker://${srcProxy.host}/app/signed:v1`, `docker://${dstProxy.host}/mirror/signed:v1`]);
      assert.equal(plain.code, 0, plain.stderr + plain.stdout);
      const without = { source: tally(srcProxy.requests), destination: tally(dstProxy.requests) };
      assert.deepEqual(without.source, { 'GET ping': 1, 'HEAD manifest': 1 });
      assert.deepEqual(without.destination, { 'GET ping': 1, 'HEAD manifest': 1 });

      // An image without any referrer (the common case): the source is asked the list and cosign's tags, the
      // destination nothing more.
      const bare = seedImage('bare');
      await seedAll(src.url, 'app/bare', bare, 'v1');
      const first = await copy([`docker://${srcProxy.host}/app/bare:v1`, `docker://${dstProxy.host}/mirror/bare:v1`]);
      assert.equal(first.code, 0, first.stderr + first.stdout);
      srcProxy.reset();
      dstProxy.reset();
      const bareAgain = await copy([`docker://${srcProxy.host}/app/bare:v1`, `docker://${dstProxy.host}/mirror/bare:v1`]);
      assert.equal(bareAgain.code, 0, bareAgain.stderr + bareAgain.stdout);
      const none = { source: tally(srcProxy.requests), destination: tally(dstProxy.requests) };
      assert.deepEqual(none.source, { 'GET ping': 1, 'HEAD manifest': 1, 'GET referrers API': 1, 'GET fallback/cosign tag': 1, 'HEAD fallback/cosign tag': 3 });
      assert.deepEqual(none.destination, { 'GET ping': 1, 'HEAD manifest': 1 });
      process.stdout.write(
        `      unchanged image, requests source/destination (pings included): 3 referrers ${total(withReferrers.source)}/${total(withReferrers.destination)}, ` +
          `no referrer ${total(none.source)}/${total(none.destination)}, --referrers=false ${total(without.source)}/${total(without.destination)}\n`,
      );
    });

    it('--referrers=false copies none and never looks for them', async () => {
      const r = await copy(['--referrers=false', `docker://${srcProxy.host}/app/signed:v1`, `docker://${dstProxy.host}/plain/signed:v1`]);
      assert.equal(r.code, 0, r.stderr + r.stdout);
      assert.equal(await skopeoInspectRawDigest(`docker://${dst.host}/plain/signed:v1`), image.digest);
      for (const ref of [sbom.digest, sig.digest, sbomSig.digest, fallbackTag(image.digest)]) assert.equal(await headStatus(dst.url, 'plain/signed', ref), 404, ref);
      assert.deepEqual(srcProxy.requests.filter((q) => q.path.includes('/referrers/') || q.path.includes('/manifests/sha256-')), []);
    });

    it("cosign's .sig and .att tags are copied under the same tags; a second copy writes nothing", async () => {
      const r = await copy([`docker://${srcProxy.host}/app/cosigned:v1`, `docker://${dstProxy.host}/mirror/cosigned:v1`]);
      assert.equal(r.code, 0, r.stderr + r.stdout);
      assert.match(r.stdout, /2 referrer\(s\)/);
      const base = fallbackTag(cosigned.digest);
      assert.equal(await skopeoInspectRawDigest(`docker://${dst.host}/mirror/cosigned:${base}.sig`), cosignSig.digest);
      assert.equal(await skopeoInspectRawDigest(`docker://${dst.host}/mirror/cosigned:${base}.att`), cosignAtt.digest);
      assert.equal(await headStatus(dst.url, 'mirror/cosigned', `${base}.sbom`), 404);
      assert.equal(await headStatus(dst.url, 'mirror/cosigned', base), 404, 'a tagged referrer is not listed in a fallback tag');
      dstProxy.reset();
      const again = await copy([`docker://${srcProxy.host}/app/cosigned:v1`, `docker://${dstProxy.host}/mirror/cosigned:v1`]);
      assert.equal(again.code, 0, again.stderr + again.stdout);
      assert.deepEqual(dstProxy.requests.filter((q) => isWrite(q) || isBlob(q)), []);
    });

    it('into an OCI layout: the image keeps its name; a cosign tag is its own entry, an SBOM by subject is listed unnamed', async () => {
      const dir = join(work, 'layout-referrers');
      const r = await copy([`docker://${srcProxy.host}/app/cosigned:v1`, `oci:${dir}:v1`]);
      assert.equal(r.code, 0, r.stderr + r.stdout);
      assert.equal(await skopeoInspectRawDigest(`oci:${dir}:v1`), cosigned.digest, 'v1 names the image, not its signature');
      const named = (JSON.parse(readFileSync(join(dir, 'index.json'), 'utf8')) as { manifests: Array<{ digest: string; annotations?: Record<string, string> }> }).manifests;
      const base = fallbackTag(cosigned.digest);
      assert.deepEqual(named.filter((m) => m.digest !== cosigned.digest).map((m) => m.annotations?.['org.opencontainers.image.ref.name']).sort(), [`${base}.att`, `${base}.sig`]);
      const sbomDir = join(work, 'layout-sbom');
      const s = await copy([`docker://${srcProxy.host}/app/signed:v1`, `oci:${sbomDir}:v1`]);
      assert.equal(s.code, 0, s.stderr + s.stdout);
      const listed = (JSON.parse(readFileSync(join(sbomDir, 'index.json'), 'utf8')) as { manifests: Array<{ digest: string }> }).manifests.map((m) => m.digest);
      for (const a of [sbom, sig]) assert.ok(listed.includes(a.digest), `${a.digest} listed in index.json`);
      assert.equal(await skopeoInspectRawDigest(`oci:${sbomDir}:v1`), image.digest);
    });

    it('a referrer the source lists but no longer has is left behind with a warning; the image and the others go', async () => {
      const img = seedImage('stale');
      const kept = attach(img, SIG, 'kept');
      const gone = attach(img, SBOM, 'gone');
      await seedAll(src.url, 'app/stale', img, 'v1');
      for (const a of [kept, gone]) await seedAll(src.url, 'app/stale', a);
      await seedManifest(src.url, 'app/stale', fallbackTag(img.digest), fallbackIndexOf([gone.descriptor, kept.descriptor]));
      // Deleted after it was listed (distribution refuses an index naming a manifest it does not hold).
      assert.equal((await fetch(`${src.url}/v2/app/stale/manifests/${gone.digest}`, { method: 'DELETE' })).status, 202);
      const r = await copy([`docker://${srcProxy.host}/app/stale:v1`, `docker://${dstProxy.host}/mirror/stale:v1`]);
      assert.equal(r.code, 0, r.stderr + r.stdout);
      assert.match(r.stderr, new RegExp(`warning: .*referrer ${gone.digest} of ${img.digest} left behind`));
      assert.equal(await skopeoInspectRawDigest(`docker://${dst.host}/mirror/stale:v1`), img.digest);
      assert.deepEqual((await fallbackEntries(`docker://${dst.host}/mirror/stale:${fallbackTag(img.digest)}`)).map((e) => e.digest), [kept.digest]);
    });
  });

  describe('through the referrers API (the test server)', () => {
    it('API source into an API destination: every page read, no fallback tag anywhere; a second copy writes nothing', async () => {
      const r = await copy([`docker://${apiSrc.host}/app/api:v1`, `docker://${apiDst.host}/mirror/api:v1`]);
      assert.equal(r.code, 0, r.stderr + r.stdout);
      assert.match(r.stdout, /2 referrer\(s\)/);
      assert.equal(apiSrc.requests.filter((q) => q.path.includes(`/referrers/${apiImage.digest}`)).length, 2, 'two pages of one referrer each');
      assert.deepEqual(apiSrc.requests.filter((q) => q.path.includes('/manifests/sha256-') && !q.path.match(/\.(sig|att|sbom)$/)), [], 'no fallback tag read');
      assert.deepEqual(apiDst.tags('mirror/api'), ['v1'], 'no fallback tag written');
      assert.deepEqual(apiDst.requests.filter((q) => q.method === 'PUT' && q.path.includes('/manifests/sha256-')), []);
      for (const a of [apiSbom, apiSig]) {
        assert.equal(apiDst.manifest('mirror/api', a.digest)?.subject, apiImage.digest);
        assert.equal(await skopeoInspectRawDigest(`docker://${apiDst.host}/mirror/api@${a.digest}`), a.digest);
      }
      assert.equal(await skopeoInspectRawDigest(`docker://${apiDst.host}/mirror/api:v1`), apiImage.digest);

      apiSrc.reset();
      apiDst.reset();
      const again = await copy([`docker://${apiSrc.host}/app/api:v1`, `docker://${apiDst.host}/mirror/api:v1`]);
      assert.equal(again.code, 0, again.stderr + again.stdout);
      assert.deepEqual(apiDst.requests.filter((q) => isWrite(q) || isBlob(q)), []);
      assert.deepEqual(apiSrc.requests.filter(isBlob), []);
      process.stdout.write(`      unchanged image with 2 referrers, API on both sides: source ${apiSrc.requests.length} requests, destination ${apiDst.requests.length} (pings included)\n`);
    });

    it('API source into docker-registry: the destination fallback tag is written and lists both', async () => {
      const r = await copy([`docker://${apiSrc.host}/app/api:v1`, `docker://${dstProxy.host}/from-api/api:v1`]);
      assert.equal(r.code, 0, r.stderr + r.stdout);
      for (const a of [apiSbom, apiSig]) assert.equal(await skopeoInspectRawDigest(`docker://${dst.host}/from-api/api@${a.digest}`), a.digest);
      const entries = await fallbackEntries(`docker://${dst.host}/from-api/api:${fallbackTag(apiImage.digest)}`);
      assert.deepEqual(entries.map((e) => e.digest).sort(), [apiSbom.digest, apiSig.digest].sort());
      assert.deepEqual(entries.map((e) => e.artifactType).sort(), [SBOM, SIG].sort());
    });

    it('referrers of a multi-platform index (subject = the index digest) travel with it, to either kind of destination', async () => {
      const toApi = await copy([`docker://${apiSrc.host}/app/multi:v1`, `docker://${apiDst.host}/mirror/multi:v1`]);
      assert.equal(toApi.code, 0, toApi.stderr + toApi.stdout);
      assert.equal(await skopeoInspectRawDigest(`docker://${apiDst.host}/mirror/multi:v1`), multi.digest);
      for (const a of [multiSbom, multiSig]) assert.equal(apiDst.manifest('mirror/multi', a.digest)?.subject, multi.digest);
      assert.deepEqual(apiDst.tags('mirror/multi'), ['v1']);

      const toFallback = await copy([`docker://${apiSrc.host}/app/multi:v1`, `docker://${dstProxy.host}/mirror/multi:v1`]);
      assert.equal(toFallback.code, 0, toFallback.stderr + toFallback.stdout);
      assert.equal(await skopeoInspectRawDigest(`docker://${dst.host}/mirror/multi:v1`), multi.digest);
      for (const a of [multiSbom, multiSig]) assert.equal(await skopeoInspectRawDigest(`docker://${dst.host}/mirror/multi@${a.digest}`), a.digest);
      const entries = await fallbackEntries(`docker://${dst.host}/mirror/multi:${fallbackTag(multi.digest)}`);
      assert.deepEqual(entries.map((e) => e.digest).sort(), [multiSbom.digest, multiSig.digest].sort());
    });
  });

  it('several images in one run over one source: each registry is asked the referrers API once, not once per image', async () => {
    const images = ['one', 'two', 'three', 'four', 'five'].map((label) => {
      const img = seedImage(label);
      return { label, img, sbom: attach(img, SBOM, label) };
    });
    for (const { label, img, sbom: s } of images) {
      await seedAll(src.url, `batch/${label}`, img, 'v1');
      await seedAll(src.url, `batch/${label}`, s);
      await seedManifest(src.url, `batch/${label}`, fallbackTag(img.digest), fallbackIndexOf([s.descriptor]));
    }
    const settings = staticSettings({ scheme: 'http' });
    const sourceClient = new RegistryClient({ host: srcProxy.host, settings });
    const source = openRegistrySource(sourceClient, { scheme: 'http' });
    const destination = await openRegistryDestination(
      { kind: 'registry', host: dstProxy.host, namespace: '', scheme: 'http', explicitScheme: true },
      { settings, credentials: anonymousResolver },
    );
    const jobs: CopyJob[] = images.map(({ label }) => ({
      source,
      image: { repository: `batch/${label}`, tag: 'v1' },
      name: `${srcProxy.host}/batch/${label}:v1`,
      destination: { repository: `copied/${label}`, tag: 'v1', name: `${dstProxy.host}/copied/${label}:v1` },
    }));
    const events: ProgressEvent[] = [];
    const run = copyImagesFrom(jobs, destination, { jobs: 4, events: (e) => events.push(e) });
    const outcomes = [];
    for await (const o of run.outcomes) outcomes.push(o);
    assert.deepEqual(outcomes.map((o) => [o.status, o.referrers]), images.map(() => ['pushed', 1]));
    assert.equal(srcProxy.requests.filter((q) => q.path.includes('/referrers/')).length, 1, 'the source was asked the API once');
    assert.equal(dstProxy.requests.filter((q) => q.path.includes('/referrers/')).length, 1, 'the destination was asked the API once');
    for (const { label, img, sbom: s } of images) {
      assert.deepEqual((await fallbackEntries(`docker://${dst.host}/copied/${label}:${fallbackTag(img.digest)}`)).map((e) => e.digest), [s.digest]);
    }
  });

  it('one image under several tags in one run: its manifest is read from the source once, every tag is written', async () => {
    const img = seedImage('tagged-thrice');
    const tags = ['v1', 'v1.0', 'latest'];
    for (const tag of tags) await seedAll(src.url, 'batch/thrice', img, tag);
    const settings = staticSettings({ scheme: 'http' });
    const source = openRegistrySource(new RegistryClient({ host: srcProxy.host, settings }), { scheme: 'http' });
    const destination = await openRegistryDestination(
      { kind: 'registry', host: dstProxy.host, namespace: '', scheme: 'http', explicitScheme: true },
      { settings, credentials: anonymousResolver },
    );
    srcProxy.reset();
    const jobs: CopyJob[] = tags.map((tag) => ({
      source,
      image: { repository: 'batch/thrice', tag },
      name: `${srcProxy.host}/batch/thrice:${tag}`,
      destination: { repository: 'copied/thrice', tag, name: `${dstProxy.host}/copied/thrice:${tag}` },
      referrers: false,
    }));
    const run = copyImagesFrom(jobs, destination, { jobs: 4 });
    const outcomes = [];
    for await (const o of run.outcomes) outcomes.push(o);
    assert.deepEqual(outcomes.map((o) => o.status), ['pushed', 'pushed', 'pushed']);
    const reads = srcProxy.requests.filter((q) => q.method === 'GET' && q.path.endsWith(`/manifests/${img.digest}`));
    assert.equal(reads.length, 1, `manifest GETs: ${reads.map((q) => q.path).join(', ')}`);
    for (const tag of tags) assert.equal(await skopeoInspectRawDigest(`docker://${dst.host}/copied/thrice:${tag}`), img.digest);
  });
});
