/**
 * `mirror copy` between real registries (docker-registry), read back with skopeo: a whole index with its digest,
 * an unchanged image (one manifest HEAD on each side, no blob request), a copy within one registry (mounts only,
 * no blob bytes), platform selection, a source GET cut at 60% (resumed with Range from there), faults at the
 * destination, and a source with bearer tokens into a TLS + htpasswd destination.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { closeAll } from '../../src/net/http.js';
import { sha256Digest } from '../../src/oci/digest.js';
import { buildOciLayout, type BuiltLayout, type LayoutSpec, writeDirectory } from '../../testdata/make-fixtures.js';
import { assertOneLineError, homeMaker, isolatedEnv, writeCertDir } from '../helpers/auth-env.js';
import { makeCerts, type TestCerts } from '../helpers/certs.js';
import { runCli, type CliResult } from '../helpers/cli.js';
import { startFaultProxy, type FaultProxy, type RecordedRequest } from '../helpers/fault-proxy.js';
import { stopAll } from '../helpers/proc.js';
import { startRegistry, type TestRegistry } from '../helpers/registry.js';
import { skopeoInspectRaw } from '../helpers/skopeo.js';
import { startTokenServer, type TokenServer } from '../helpers/token-server.js';

/** The source images: a three-platform index with a 4 MiB layer per platform, and a small single image. */
const SPEC: LayoutSpec = {
  seed: 'mirror-copy-test',
  images: [
    {
      ref: 'docker.io/library/multi:1.0',
      platforms: [
        { os: 'linux', arch: 'amd64' },
        { os: 'linux', arch: 'arm64', variant: 'v8' },
        { os: 'linux', arch: 'arm', variant: 'v7' },
      ],
      layers: [{ files: 2, sizeBytes: 4 * 1024 * 1024 }, { files: 2, sizeBytes: 3000 }],
    },
    { ref: 'quay.io/team/small:2.0', layers: [{ files: 2, sizeBytes: 5000 }] },
  ],
};

const USER = 'copier';
const PASSWORD = 'C0py:pa55';

const isBlob = (r: RecordedRequest): boolean => r.path.includes('/blobs/');

describe('mirror copy between registries (integration: docker-registry, skopeo)', function () {
  this.timeout(300_000);
  let work: string;
  let layout: BuiltLayout;
  let src: TestRegistry;
  let dst: TestRegistry;
  let srcProxy: FaultProxy;
  let dstProxy: FaultProxy;
  const home = homeMaker(() => work);

  const multi = (): BuiltLayout['images'][number] => layout.images[0]!;

  function copy(args: string[], env: NodeJS.ProcessEnv = {}): Promise<CliResult> {
    return runCli(['copy', '--src-tls-verify=false', '--dest-tls-verify=false', ...args], { env: isolatedEnv(home(), env) });
  }

  before(async () => {
    work = mkdtempSync(join(tmpdir(), 'mirror-copy-'));
    layout = await buildOciLayout(SPEC);
    const dir = join(work, 'layout');
    await writeDirectory(layout.files, dir);
    src = await startRegistry();
    dst = await startRegistry();
    srcProxy = await startFaultProxy({ upstream: src.url });
    dstProxy = await startFaultProxy({ upstream: dst.url });
    const seeded = await runCli(['push', '--source', dir, '--private-registry', `http://${src.host}`, '--need-credential=false'], { env: isolatedEnv(home()) });
    assert.equal(seeded.code, 0, seeded.stderr);
  });
  beforeEach(() => {
    srcProxy.setRules([]);
    dstProxy.setRules([]);
    srcProxy.reset();
    dstProxy.reset();
  });
  after(async () => {
    await closeAll();
    await srcProxy?.stop();
    await dstProxy?.stop();
    await src?.stop();
    await dst?.stop();
    await stopAll();
    if (work) rmSync(work, { recursive: true, force: true });
  });

  it('copies a multi-platform index whole, digest kept; skopeo reads every manifest back', async () => {
    const digestFile = join(work, 'digest');
    const r = await copy(['--digestfile', digestFile, `docker://${srcProxy.host}/library/multi:1.0`, `docker://${dstProxy.host}/mirror/multi:1.0`]);
    assert.equal(r.code, 0, r.stderr + r.stdout);
    assert.equal(readFileSync(digestFile, 'utf8'), multi().digest);
    assert.equal(sha256Digest(await skopeoInspectRaw(`docker://${dst.host}/mirror/multi:1.0`)), multi().digest);
    for (const m of multi().manifests) assert.equal(sha256Digest(await skopeoInspectRaw(`docker://${dst.host}/mirror/multi@${m.digest}`)), m.digest);
    // Each distinct blob was sent once.
    const puts = dstProxy.requests.filter((q) => q.method === 'PUT' && q.path.includes('/blobs/uploads/'));
    const distinct = new Set(multi().manifests.flatMap((m) => [m.config.digest, ...m.layers.map((l) => l.digest)]));
    assert.equal(puts.length, distinct.size);
  });

  it('a nested index whose inner index lists a manifest the outer one lists too: children are written before the index that lists them', async () => {
    // outer -> [inner, amd64], inner -> [amd64]: the walk meets inner first and amd64 under it is already seen.
    const amd = multi().manifests.find((m) => m.platform.arch === 'amd64')!;
    const desc = { mediaType: amd.mediaType, digest: amd.digest, size: amd.size, platform: { os: 'linux', architecture: 'amd64' } };
    const put = async (ref: string, body: Buffer): Promise<string> => {
      const res = await fetch(`${src.url}/v2/library/multi/manifests/${ref}`, { method: 'PUT', headers: { 'content-type': 'application/vnd.oci.image.index.v1+json' }, body });
      assert.equal(res.status, 201, await res.text());
      return sha256Digest(body);
    };
    const index = (manifests: object[]): Buffer => Buffer.from(JSON.stringify({ schemaVersion: 2, mediaType: 'application/vnd.oci.image.index.v1+json', manifests }));
    const innerBytes = index([desc]);
    const inner = await put(sha256Digest(innerBytes), innerBytes);
    const outer = await put('nested', index([{ mediaType: 'application/vnd.oci.image.index.v1+json', digest: inner, size: innerBytes.byteLength }, desc]));
    const r = await copy(['--referrers=false', `docker://${srcProxy.host}/library/multi:nested`, `docker://${dstProxy.host}/nest/multi:nested`]);
    assert.equal(r.code, 0, r.stderr + r.stdout);
    assert.equal(sha256Digest(await skopeoInspectRaw(`docker://${dst.host}/nest/multi:nested`)), outer);
    const order = dstProxy.requests.filter((q) => q.method === 'PUT' && q.path.includes('/manifests/')).map((q) => q.path.split('/manifests/')[1]);
    assert.deepEqual(order, [amd.digest, inner, 'nested']);
  });

  it('an unchanged image: one manifest HEAD on each side and no blob request at all', async () => {
    const first = await copy(['--referrers=false', `docker://${srcProxy.host}/team/small:2.0`, `docker://${dstProxy.host}/mirror/small:2.0`]);
    assert.equal(first.code, 0, first.stderr + first.stdout);
    srcProxy.reset();
    dstProxy.reset();
    const again = await copy(['--referrers=false', `docker://${srcProxy.host}/team/small:2.0`, `docker://${dstProxy.host}/mirror/small:2.0`]);
    assert.equal(again.code, 0, again.stderr + again.stdout);
    assert.match(again.stdout, /already present/);
    const manifestRequests = (rs: RecordedRequest[]): string[] => rs.filter((q) => q.path.includes('/manifests/')).map((q) => q.method);
    assert.deepEqual(manifestRequests(srcProxy.requests), ['HEAD']);
    assert.deepEqual(manifestRequests(dstProxy.requests), ['HEAD']);
    assert.equal(srcProxy.requests.filter(isBlob).length + dstProxy.requests.filter(isBlob).length, 0, 'no blob request');
  });

  it('within one registry: every blob is mounted, no blob byte is uploaded', async () => {
    const r = await copy([`docker://${srcProxy.host}/library/multi:1.0`, `docker://${srcProxy.host}/elsewhere/multi:copy`]);
    assert.equal(r.code, 0, r.stderr + r.stdout);
    const uploads = srcProxy.requests.filter((q) => (q.method === 'PUT' || q.method === 'PATCH') && q.path.includes('/blobs/uploads/'));
    assert.deepEqual(uploads, [], 'no upload');
    assert.ok(srcProxy.requests.some((q) => q.method === 'POST'), 'mounts were asked');
    assert.equal(srcProxy.requests.filter((q) => q.method === 'GET' && isBlob(q)).length, 0, 'no blob was read');
    assert.match(r.stdout, /0 uploaded/);
    assert.equal(sha256Digest(await skopeoInspectRaw(`docker://${src.host}/elsewhere/multi:copy`)), multi().digest);
  });

  it('--platform: one platform copies that manifest alone; two write a new index of just those', async () => {
    const arm = multi().manifests.find((m) => m.platform.arch === 'arm64')!;
    const one = await copy(['--platform', 'linux/arm64', `docker://${srcProxy.host}/library/multi:1.0`, `docker://${dstProxy.host}/plat/multi:arm64`]);
    assert.equal(one.code, 0, one.stderr + one.stdout);
    assert.equal(sha256Digest(await skopeoInspectRaw(`docker://${dst.host}/plat/multi:arm64`)), arm.digest);
    const two = await copy(['--platform', 'linux/amd64', '--platform', 'linux/arm/v7', `docker://${srcProxy.host}/library/multi:1.0`, `docker://${dstProxy.host}/plat/multi:two`]);
    assert.equal(two.code, 0, two.stderr + two.stdout);
    const raw = await skopeoInspectRaw(`docker://${dst.host}/plat/multi:two`);
    const index = JSON.parse(raw.toString('utf8')) as { manifests: Array<{ platform: { architecture: string } }> };
    assert.deepEqual(index.manifests.map((m) => m.platform.architecture).sort(), ['amd64', 'arm']);
    assert.notEqual(sha256Digest(raw), multi().digest);
    assert.match(two.stdout, /digest .* instead of/);
    const none = await copy(['--platform', 'linux/s390x', `docker://${srcProxy.host}/library/multi:1.0`, `docker://${dstProxy.host}/plat/multi:s390x`]);
    assert.notEqual(none.code, 0);
    assert.match(none.stdout + none.stderr, /linux\/s390x.*linux\/amd64/);
  });

  it('a source GET cut at 60% resumes from there: under 10% of the blob is fetched again', async () => {
    const amd = multi().manifests.find((m) => m.platform.arch === 'amd64')!;
    const big = amd.layers.reduce((a, b) => (b.size > a.size ? b : a));
    assert.ok(big.size > 4_000_000);
    const cutAt = Math.floor(big.size * 0.6);
    srcProxy.setRules([{ kind: 'cut-response', method: 'GET', pathIncludes: big.digest, nth: [1], afterBytes: cutAt }]);
    const r = await copy(['--platform', 'linux/amd64', `docker://${srcProxy.host}/library/multi:1.0`, `docker://${dstProxy.host}/cut/multi:amd64`]);
    assert.equal(r.code, 0, r.stderr + r.stdout);
    const gets = srcProxy.requests.filter((q) => q.method === 'GET' && q.path.endsWith(big.digest));
    assert.equal(gets.length, 2, JSON.stringify(gets));
    const resumed = gets[1]!;
    const from = Number(/bytes=(\d+)-/.exec(resumed.range ?? '')?.[1]);
    assert.ok(from >= cutAt - 256 * 1024 && from <= cutAt, `resumed at ${from}, cut at ${cutAt}`);
    const again = gets[0]!.bytesOut + resumed.bytesOut - big.size;
    assert.ok(again < big.size * 0.1, `fetched again ${again} bytes of ${big.size}`);
    assert.equal(sha256Digest(await skopeoInspectRaw(`docker://${dst.host}/cut/multi:amd64`)), amd.digest);
  });

  it('a source blob that always answers 500 is fetched retry-times + 1 times, not squared by upload retries; the error names the source', async () => {
    const amd = multi().manifests.find((m) => m.platform.arch === 'amd64')!;
    const big = amd.layers.reduce((a, b) => (b.size > a.size ? b : a));
    srcProxy.setRules([{ kind: 'respond', method: 'GET', pathIncludes: big.digest, probability: 1, status: 500 }]);
    const r = await copy(['--retry-times', '2', '--platform', 'linux/amd64', `docker://${srcProxy.host}/library/multi:1.0`, `docker://${dstProxy.host}/src500/multi:amd64`]);
    assert.equal(r.code, 1, r.stderr + r.stdout);
    assert.equal(srcProxy.requests.filter((q) => q.method === 'GET' && q.path.endsWith(big.digest)).length, 3);
    assert.doesNotMatch(r.stderr, /UPLOAD/, 'no upload retry blamed on the destination');
    assert.match(r.stdout, new RegExp(`blob ${big.digest} failed: HTTP 500 .*GET http://${srcProxy.host.replace(/\./g, '\\.')}/`));
  });

  it('a source whose blob bodies stall (--timeout 1): a warning per stall, then exit 6 naming it, in seconds; nothing tagged', async () => {
    const amd = multi().manifests.find((m) => m.platform.arch === 'amd64')!;
    const big = amd.layers.reduce((a, b) => (b.size > a.size ? b : a));
    srcProxy.setRules([{ kind: 'stall-response', method: 'GET', pathIncludes: big.digest, probability: 1, afterBytes: 64 * 1024 }]);
    const t0 = Date.now();
    const r = await copy(['--timeout', '1', '--platform', 'linux/amd64', `docker://${srcProxy.host}/library/multi:1.0`, `docker://${dstProxy.host}/stalled/multi:amd64`]);
    const took = Date.now() - t0;
    assert.equal(r.code, 6, r.stderr + r.stdout);
    assert.ok(took < 20_000, `ended in ${took} ms`);
    const warnings = r.stderr.split('\n').filter((l) => l.startsWith('warning: '));
    assert.ok(warnings.length >= 2, r.stderr);
    for (const w of warnings) assert.match(w, new RegExp(`^warning: ${srcProxy.host.replace(/\./g, '\\.')} stopped sending its answer to GET \\S+${big.digest} for 1 s$`));
    assert.match(r.stderr, new RegExp(`mirror: error: no answer from ${srcProxy.host.replace(/\./g, '\\.')}`));
    assert.doesNotMatch(r.stderr, /\n\s+at /, 'no stack trace');
    const tagged = dstProxy.requests.filter((q) => q.method === 'PUT' && q.path.endsWith('/manifests/amd64'));
    assert.deepEqual(tagged, [], 'no tag written');
  });

  it('rides out 503s, 429s and cut uploads at the destination', async () => {
    dstProxy.setRules([
      { kind: 'status-503', method: 'PUT', nth: [1, 3] },
      { kind: 'status-429', method: 'HEAD', nth: [2] },
      { kind: 'cut-request', method: 'PUT', pathIncludes: '/blobs/uploads/', nth: [2], afterBytes: 100_000 },
    ]);
    const r = await copy([`docker://${srcProxy.host}/library/multi:1.0`, `docker://${dstProxy.host}/faulty/multi:1.0`]);
    assert.equal(r.code, 0, r.stderr + r.stdout);
    assert.ok(Object.values(dstProxy.injected).reduce((a, b) => a + b, 0) >= 3);
    assert.equal(sha256Digest(await skopeoInspectRaw(`docker://${dst.host}/faulty/multi:1.0`)), multi().digest);
  });

  it('a destination that takes blob bytes only by PATCH (a PUT with a body answered 405): the copy goes through, the PUT refused once', async () => {
    dstProxy.setRules([{ kind: 'respond', method: 'PUT', pathIncludes: '/blobs/uploads/', minBodyBytes: 1, status: 405, probability: 1 }]);
    const r = await copy([`docker://${srcProxy.host}/library/multi:1.0`, `docker://${dstProxy.host}/patch-only/multi:1.0`]);
    assert.equal(r.code, 0, r.stderr + r.stdout);
    assert.equal(sha256Digest(await skopeoInspectRaw(`docker://${dst.host}/patch-only/multi:1.0`)), multi().digest);
    for (const m of multi().manifests) assert.equal(sha256Digest(await skopeoInspectRaw(`docker://${dst.host}/patch-only/multi@${m.digest}`)), m.digest);
    // Blobs placed at once may each meet the refusal before the first one has taught the way; none meets it twice.
    const refused = dstProxy.injected.respond;
    const distinct = new Set(multi().manifests.flatMap((m) => [m.config.digest, ...m.layers.map((l) => l.digest)]));
    assert.ok(refused >= 1 && refused <= Math.min(distinct.size, 4), `refused ${refused} of ${distinct.size} blobs`);
    assert.equal(dstProxy.requests.filter((q) => q.method === 'PATCH' && q.status === 202).length, distinct.size);
  });

  describe('credentials and TLS on each side', () => {
    let certs: TestCerts;
    let tokens: TokenServer;
    let tokenReg: TestRegistry;
    let tlsReg: TestRegistry;
    before(async () => {
      certs = await makeCerts();
      tokens = await startTokenServer({ users: { [USER]: PASSWORD } });
      tokenReg = await startRegistry({ token: { realm: tokens.realm, service: tokens.service, issuer: tokens.issuer, rootCertBundle: tokens.rootCertBundle } });
      tlsReg = await startRegistry({ tls: { certFile: certs.server.certFile, keyFile: certs.server.keyFile }, users: { [USER]: PASSWORD } });
      // Seed the token registry from the plain one.
      const seed = await copy(['--dest-creds', `${USER}:${PASSWORD}`, `docker://${src.host}/library/multi:1.0`, `docker://${tokenReg.host}/app/multi:1.0`]);
      assert.equal(seed.code, 0, seed.stderr + seed.stdout);
    });
    after(async () => {
      await tlsReg?.stop();
      await tokenReg?.stop();
      await tokens?.stop();
      if (certs) rmSync(certs.dir, { recursive: true, force: true });
    });

    it('a bearer-token source into a TLS + htpasswd destination (--src-creds, --dest-creds, --dest-cert-dir); no secret printed', async () => {
      const caDir = writeCertDir(join(work, 'dest-ca'), { ca: certs.ca.cert });
      const r = await runCli(
        ['copy', '--src-tls-verify=false', '--src-creds', `${USER}:${PASSWORD}`, '--dest-creds', `${USER}:${PASSWORD}`, '--dest-cert-dir', caDir, '--debug',
          `docker://${tokenReg.host}/app/multi:1.0`, `docker://${tlsReg.host}/mirror/multi:1.0`],
        { env: isolatedEnv(home()) },
      );
      assert.equal(r.code, 0, r.stderr + r.stdout);
      assert.ok(!(r.stdout + r.stderr).includes(PASSWORD), 'the password is not printed');
      const raw = await skopeoInspectRaw(`docker://${tlsReg.host}/mirror/multi:1.0`, { tlsVerify: true, certDir: caDir, creds: `${USER}:${PASSWORD}` });
      assert.equal(sha256Digest(raw), multi().digest);
    });

    it('wrong destination credentials: exit 4 on one line, before any blob is read', async () => {
      srcProxy.reset();
      const caDir = writeCertDir(join(work, 'dest-ca2'), { ca: certs.ca.cert });
      const r = await runCli(['copy', '--src-tls-verify=false', '--dest-creds', `${USER}:wrong`, '--dest-cert-dir', caDir, `docker://${srcProxy.host}/library/multi:1.0`, `docker://${tlsReg.host}/mirror/x:1`], {
        env: isolatedEnv(home()),
      });
      assert.equal(r.code, 4, r.stderr + r.stdout);
      assertOneLineError(r.stderr, tlsReg.host);
      // The message names the flag the credentials came from, and the short password is not masked inside words.
      assert.match(r.stderr, new RegExp(`the credentials for ${tlsReg.host.replace(/\./g, '\\.')} from --dest-creds were refused; check the username and password`));
      assert.equal(srcProxy.requests.filter(isBlob).length, 0);
    });
  });
});
