/**
 * `mirror sync` against real registries (docker-registry), read back with skopeo: a source seeded with several
 * repositories and versions, a multi-platform index and referrers; a destination with TLS and htpasswd. skopeo's
 * sync YAML given to `skopeo sync --all` and to `mirror sync` lands at the same names with the same digests; every
 * filter kind against a hand-computed set; a second run sends nothing (counted through recording proxies); shards
 * run at the same time cover the plan exactly once; two overlapping runs and the lock; a failing image among good
 * ones; --max-duration; --prune; a registry refusing its catalog; JSON log lines and the report.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type Socket } from 'node:net';
import { hostname, tmpdir } from 'node:os';
import { join } from 'node:path';
import { closeAll } from '../../src/net/http.js';
import { sha256Digest } from '../../src/oci/digest.js';
import { RegistryClient } from '../../src/registry/index.js';
import { openRegistrySource } from '../../src/transport/registry/source.js';
import { createdTime } from '../../src/sync/plan.js';
import { buildOciLayout, type BuiltLayout, type LayoutSpec, writeDirectory } from '../../testdata/make-fixtures.js';
import { homeMaker, isolatedEnv, writeCertDir } from '../helpers/auth-env.js';
import { makeCerts, type TestCerts } from '../helpers/certs.js';
import { BIN, runCli, type CliResult } from '../helpers/cli.js';
import { startFaultProxy, type FaultProxy, type RecordedRequest } from '../helpers/fault-proxy.js';
import { blobOf, staticSettings } from '../helpers/image.js';
import { listenLocal, run, stopAll } from '../helpers/proc.js';
import { startRegistry, type TestRegistry } from '../helpers/registry.js';
import { skopeoInspectRawDigest, skopeoListTags, type SkopeoOptions } from '../helpers/skopeo.js';

const USER = 'syncer';
const PASSWORD = 'Sync:pa55-w0rd';

const SPEC: LayoutSpec = {
  seed: 'mirror-sync-test',
  images: [
    {
      ref: 'docker.io/library/multi:1.0',
      platforms: [
        { os: 'linux', arch: 'amd64' },
        { os: 'linux', arch: 'arm64', variant: 'v8' },
      ],
      layers: [{ files: 2, sizeBytes: 6000 }],
    },
    { ref: 'quay.io/team/app:1.0', layers: [{ files: 2, sizeBytes: 20_000 }, { files: 1, sizeBytes: 3000 }] },
    { ref: 'quay.io/team/app:1.1', sharedBaseWith: 'quay.io/team/app:1.0', layers: [{ files: 2, sizeBytes: 20_000 }, { files: 1, sizeBytes: 3100 }] },
    { ref: 'quay.io/team/app:1.2.0-rc.1', sharedBaseWith: 'quay.io/team/app:1.0', layers: [{ files: 2, sizeBytes: 20_000 }, { files: 1, sizeBytes: 3200 }] },
    { ref: 'quay.io/team/app:2.0', sharedBaseWith: 'quay.io/team/app:1.0', layers: [{ files: 2, sizeBytes: 20_000 }, { files: 1, sizeBytes: 3300 }] },
    { ref: 'quay.io/team/tool:v1', layers: [{ files: 1, sizeBytes: 4000 }] },
    { ref: 'quay.io/team/tool:v2', layers: [{ files: 1, sizeBytes: 4100 }] },
    { ref: 'quay.io/team/tool:dev', layers: [{ files: 1, sizeBytes: 4200 }] },
    { ref: 'quay.io/other/db:5.7', layers: [{ files: 1, sizeBytes: 5000 }] },
    { ref: 'quay.io/other/db:8.0', layers: [{ files: 1, sizeBytes: 5100 }] },
  ],
};

const isBlob = (r: RecordedRequest): boolean => r.path.includes('/blobs/');
const writes = (rs: RecordedRequest[]): RecordedRequest[] => rs.filter((r) => r.method !== 'GET' && r.method !== 'HEAD');

describe('mirror sync (integration: docker-registry, skopeo)', function () {
  this.timeout(600_000);
  let work: string;
  let layout: BuiltLayout;
  let certs: TestCerts;
  let caDir: string;
  let src: TestRegistry;
  let srcProxy: FaultProxy;
  let dst: TestRegistry; // TLS + htpasswd
  let plain: TestRegistry; // plain, behind a recording proxy
  let plainProxy: FaultProxy;
  const home = homeMaker(() => work);
  const dstRead = (): SkopeoOptions => ({ tlsVerify: true, certDir: caDir, creds: `${USER}:${PASSWORD}` });
  const digestOf = (ref: string): string => layout.images.find((i) => i.ref === ref)!.digest;
  let sbomDigest: string;
  let sigDigest: string;

  /** sync runs `mirror sync ARGS` with the destination's credentials and CA. */
  function sync(args: string[], env: NodeJS.ProcessEnv = {}, timeoutMs?: number): Promise<CliResult> {
    return runCli(['sync', ...args], { env: isolatedEnv(home(), env), timeoutMs });
  }
  const destFlags = (): string[] => ['--dest-creds', `${USER}:${PASSWORD}`, '--dest-cert-dir', caDir];

  /** nativeFile writes a mirror/v1 file syncing from the source (through its proxy) into `registry`. */
  function nativeFile(name: string, registry: string, entries: string, extra = ''): string {
    const file = join(work, `${name}.yaml`);
    writeFileSync(
      file,
      `apiVersion: mirror/v1
kind: Sync
registries:
  ${srcProxy.host}:
    tls: {plainHttp: true}
${extra}destination:
  registry: ${registry}
sync:
${entries}`,
    );
    return file;
  }

  /** tagsOf lists a destination repository's tags (none when it does not exist). */
  async function tagsOf(repo: string, options: SkopeoOptions = dstRead(), host = dst.host): Promise<string[]> {
    try {
      return (await skopeoListTags(`docker://${host}/${repo}`, options)).sort();
    } catch {
      return [];
    }
  }

  before(async () => {
    work = mkdtempSync(join(tmpdir(), 'mirror-sync-'));
    certs = await makeCerts();
    caDir = writeCertDir(join(work, 'ca'), { ca: certs.ca.cert });
    layout = await buildOciLayout(SPEC);
    const dir = join(work, 'layout');
    await writeDirectory(layout.files, dir);
    src = await startRegistry();
    srcProxy = await startFaultProxy({ upstream: src.url });
    dst = await startRegistry({ tls: { certFile: certs.server.certFile, keyFile: certs.server.keyFile }, users: { [USER]: PASSWORD } });
    plain = await startRegistry();
    plainProxy = await startFaultProxy({ upstream: plain.url });
    const seeded = await runCli(['push', '--source', dir, '--private-registry', `http://${src.host}`, '--need-credential=false'], { env: isolatedEnv(home()) });
    assert.equal(seeded.code, 0, seeded.stderr);
    // Referrers: an SBOM whose subject is team/app:1.0 (in the fallback tag index, as distribution 2.8 keeps them),
    // and a cosign signature tag of team/tool:v1.
    const client = new RegistryClient({ host: src.host, scheme: 'http', settings: staticSettings({ scheme: 'http' }) });
    const empty = blobOf(Buffer.from('{}'));
    const sbom = blobOf(Buffer.from('{"spdxVersion":"SPDX-2.3"}'));
    for (const b of [empty, sbom]) await client.uploadBlob('team/app', { kind: 'bytes', data: b.data }, { digest: b.digest, size: b.size });
    for (const b of [empty, sbom]) await client.uploadBlob('team/tool', { kind: 'bytes', data: b.data }, { digest: b.digest, size: b.size });
    const appDigest = digestOf('quay.io/team/app:1.0');
    const app = await client.headManifest('team/app', '1.0');
    const sbomManifest = Buffer.from(
      JSON.stringify({
        schemaVersion: 2,
        mediaType: 'application/vnd.oci.image.manifest.v1+json',
        artifactType: 'application/spdx+json',
        config: { mediaType: 'application/vnd.oci.empty.v1+json', digest: empty.digest, size: empty.size },
        layers: [{ mediaType: 'application/spdx+json', digest: sbom.digest, size: sbom.size }],
        subject: { mediaType: app!.mediaType, digest: appDigest, size: app!.size },
      }),
    );
    sbomDigest = sha256Digest(sbomManifest);
    await client.putManifest('team/app', sbomDigest, sbomManifest, 'application/vnd.oci.image.manifest.v1+json');
    const fallback = Buffer.from(
      JSON.stringify({
        schemaVersion: 2,
        mediaType: 'application/vnd.oci.image.index.v1+json',
        manifests: [{ mediaType: 'application/vnd.oci.image.manifest.v1+json', digest: sbomDigest, size: sbomManifest.byteLength, artifactType: 'application/spdx+json' }],
      }),
    );
    await client.putManifest('team/app', `sha256-${appDigest.slice(7)}`, fallback, 'application/vnd.oci.image.index.v1+json');
    const sig = Buffer.from(
      JSON.stringify({
        schemaVersion: 2,
        mediaType: 'application/vnd.oci.image.manifest.v1+json',
        config: { mediaType: 'application/vnd.oci.empty.v1+json', digest: empty.digest, size: empty.size },
        layers: [{ mediaType: 'application/vnd.dev.cosign.simplesigning.v1+json', digest: sbom.digest, size: sbom.size }],
      }),
    );
    sigDigest = sha256Digest(sig);
    await client.putManifest('team/tool', `sha256-${digestOf('quay.io/team/tool:v1').slice(7)}.sig`, sig, 'application/vnd.oci.image.manifest.v1+json');
  });
  beforeEach(() => {
    srcProxy.setRules([]);
    plainProxy.setRules([]);
    srcProxy.reset();
    plainProxy.reset();
  });
  after(async () => {
    await closeAll();
    await srcProxy?.stop();
    await plainProxy?.stop();
    for (const r of [src, dst, plain]) await r?.stop();
    await stopAll();
    if (certs) rmSync(certs.dir, { recursive: true, force: true });
    if (work) rmSync(work, { recursive: true, force: true });
  });

  it("a skopeo sync YAML lands where `skopeo sync --all` puts it, with the same digests", async () => {
    const appDigest11 = digestOf('quay.io/team/app:1.1');
    const yaml = join(work, 'skopeo.yaml');
    writeFileSync(
      yaml,
      `${src.host}:
  tls-verify: false
  images:
    library/multi: []
    team/app: ["1.0", "${appDigest11}"]
  images-by-tag-regex:
    team/tool: ^v
`,
    );
    await run('skopeo', ['sync', '--all', '--src', 'yaml', '--dest', 'docker', '--dest-cert-dir', caDir, '--dest-creds', `${USER}:${PASSWORD}`, yaml, `${dst.host}/by-skopeo`], { timeoutMs: 120_000 });
    const r = await sync(['--src', 'yaml', '--dest', 'docker', ...destFlags(), yaml, `${dst.host}/by-mirror`]);
    assert.equal(r.code, 0, r.stderr + r.stdout);
    assert.match(r.stdout, /synced: 5 copied, 0 unchanged, 0 failed/);
    for (const repo of ['multi', 'app', 'tool']) {
      const theirs = await tagsOf(`by-skopeo/${repo}`);
      assert.ok(theirs.length > 0, repo);
      assert.deepEqual(await tagsOf(`by-mirror/${repo}`), theirs, repo);
      for (const tag of theirs) {
        assert.equal(await skopeoInspectRawDigest(`docker://${dst.host}/by-mirror/${repo}:${tag}`, dstRead()), await skopeoInspectRawDigest(`docker://${dst.host}/by-skopeo/${repo}:${tag}`, dstRead()), `${repo}:${tag}`);
      }
    }
    assert.deepEqual(await tagsOf('by-mirror/tool'), ['v1', 'v2']);
    assert.deepEqual(await tagsOf('by-mirror/app'), ['1.0']);
    // The digest-pinned image is there by digest, in both.
    assert.equal(await skopeoInspectRawDigest(`docker://${dst.host}/by-mirror/app@${appDigest11}`, dstRead()), appDigest11);
    assert.equal(await skopeoInspectRawDigest(`docker://${dst.host}/by-skopeo/app@${appDigest11}`, dstRead()), appDigest11);
    assert.equal(await skopeoInspectRawDigest(`docker://${dst.host}/by-mirror/multi:1.0`, dstRead()), digestOf('docker.io/library/multi:1.0'));
    assert.ok(!(r.stdout + r.stderr).includes(PASSWORD), 'no secret printed');
  });

  it('skopeo YAML keys keep their own settings: two keys on one host apart; the destination never takes a source key\'s credentials', async () => {
    // The TLS + htpasswd registry is a source here too: an image copied into it first.
    const seeded = await runCli(['copy', '--src-plain-http', ...destFlags(), `docker://${src.host}/team/tool:v1`, `docker://${dst.host}/keys/team/tool:v1`], { env: isolatedEnv(home()) });
    assert.equal(seeded.code, 0, seeded.stderr);
    const yaml = join(work, 'keys.yaml');
    writeFileSync(
      yaml,
      `${dst.host}/keys/team:
  images: {tool: [v1]}
  credentials: {username: ${USER}, password: ${PASSWORD}}
  cert-dir: ${caDir}
${dst.host}/keys/other:
  images: {tool: [v1]}
  credentials: {username: ${USER}, password: not-the-password}
  cert-dir: ${caDir}
`,
    );
    // The second key's wrong password fails its own image only (it used to be every key's).
    const r = await sync(['--src', 'yaml', '--dest', 'docker', '--dest-tls-verify=false', '--retry-times', '0', yaml, `${plain.host}/keys-out`]);
    assert.equal(r.code, 7, r.stderr + r.stdout);
    assert.equal(await skopeoInspectRawDigest(`docker://${plain.host}/keys-out/tool:v1`, { tlsVerify: false }), digestOf('quay.io/team/tool:v1'));
    assert.match(r.stdout, /failed \(1\):\n {2}\S+\/keys\/other\/tool/);
    // A destination on a source key's host is reached with --dest-creds, never with that key's: wrong ones are refused.
    const first = join(work, 'keys-first.yaml');
    writeFileSync(first, readFileSync(yaml, 'utf8').split(`${dst.host}/keys/other:`)[0]!);
    const wrong = await sync(['--src', 'yaml', '--dest', 'docker', '--dest-creds', `${USER}:wrong-password`, '--dest-cert-dir', caDir, '--retry-times', '0', first, `${dst.host}/keys-wrong`]);
    assert.equal(wrong.code, 4, wrong.stderr + wrong.stdout);
    assert.deepEqual(await tagsOf('keys-wrong/tool'), []);
    assert.ok(!(r.stdout + r.stderr + wrong.stdout + wrong.stderr).includes(PASSWORD), 'no secret printed');
  });

  it('every filter kind selects the hand-computed set', async () => {
    const cases: Array<{ ns: string; entry: string; want: Record<string, string[]> }> = [
      { ns: 'f-include', entry: `  - repository: ${srcProxy.host}/team/app\n    tags: {include: ['^1\\.'], exclude: ['-rc']}\n`, want: { 'team/app': ['1.0', '1.1'] } },
      { ns: 'f-semver', entry: `  - repository: ${srcProxy.host}/team/app\n    tags: {semver: '>=1.1, <3'}\n`, want: { 'team/app': ['1.1', '2.0'] } },
      { ns: 'f-newest', entry: `  - repository: ${srcProxy.host}/team/app\n    tags: {newest: 2}\n`, want: { 'team/app': ['1.2.0-rc.1', '2.0'] } },
      { ns: 'f-digest', entry: `  - repository: ${srcProxy.host}/team/tool\n    tags: {include: ['^dev$']}\n    digests: ['${digestOf('quay.io/team/tool:v2')}']\n`, want: { 'team/tool': ['dev'] } },
      { ns: 'f-prefix', entry: `  - prefix: ${srcProxy.host}/other\n`, want: { 'other/db': ['5.7', '8.0'], 'team/app': [] } },
    ];
    for (const c of cases) {
      const file = nativeFile(c.ns, `${dst.host}/${c.ns}`, c.entry, `  ${dst.host}:\n    credentials: {env: {username: DST_USER, password: DST_PASS}}\n    tls: {ca: ${join(caDir, 'ca.crt')}}\n`);
      const r = await sync(['--config', file, '--referrers=false'], { DST_USER: USER, DST_PASS: PASSWORD });
      assert.equal(r.code, 0, `${c.ns}: ${r.stderr}${r.stdout}`);
      for (const [repo, tags] of Object.entries(c.want)) assert.deepEqual(await tagsOf(`${c.ns}/${repo}`), tags, `${c.ns}/${repo}`);
    }
    const pinned = digestOf('quay.io/team/tool:v2');
    assert.equal(await skopeoInspectRawDigest(`docker://${dst.host}/f-digest/team/tool@${pinned}`, dstRead()), pinned);
    // Newest by creation time reads each image's config: the fixtures' configs say 2024-01-01.
    const client = new RegistryClient({ host: src.host, scheme: 'http', settings: staticSettings({ scheme: 'http' }) });
    const source = openRegistrySource(client, { scheme: 'http' });
    assert.equal(await createdTime(source, 'team/app', '1.0'), Date.parse('2024-01-01T00:00:00Z'));
    assert.equal(await createdTime(source, 'library/multi', '1.0'), Date.parse('2024-01-01T00:00:00Z'));
  });

  it('a second run sends nothing: HEADs only, no blob request, nothing written', async () => {
    const yaml = join(work, 'count.yaml');
    writeFileSync(yaml, `${srcProxy.host}:\n  tls-verify: false\n  images:\n    team/app: []\n    library/multi: []\n    team/tool: []\n`);
    const args = ['--src', 'yaml', '--dest', 'docker', '--dest-tls-verify=false', yaml, `${plainProxy.host}/count`];
    const first = await sync([...args, '--log-format', 'json']);
    assert.equal(first.code, 0, first.stderr + first.stdout);
    assert.ok(writes(plainProxy.requests).length > 0);
    // Each image counts the bytes of its own uploads: together they are what the run sent, not more.
    const firstLines = first.stdout.trim().split('\n').map((l) => JSON.parse(l) as { event: string; bytes: number; action: string });
    const perImage = firstLines.filter((l) => l.event === 'image').reduce((a, l) => a + l.bytes, 0);
    assert.ok(perImage > 0);
    assert.equal(perImage, firstLines.at(-1)!.bytes);
    srcProxy.reset();
    plainProxy.reset();
    const second = await sync([...args, '--log-format', 'json']);
    assert.equal(second.code, 0, second.stderr + second.stdout);
    const lines = second.stdout.trim().split('\n').map((l) => JSON.parse(l) as Record<string, unknown>);
    const images = lines.filter((l) => l['event'] === 'image');
    // Every tag, as skopeo takes them: the referrers fallback tag and the cosign tag too.
    assert.equal(images.length, 10);
    for (const l of images) {
      assert.equal(l['action'], 'skipped');
      for (const k of ['source', 'destination', 'digest', 'bytes', 'seconds']) assert.ok(k in l, `${k} in ${JSON.stringify(l)}`);
    }
    assert.deepEqual(lines.at(-1)!['event'], 'summary');
    assert.equal(srcProxy.requests.filter(isBlob).length + plainProxy.requests.filter(isBlob).length, 0, 'no blob request');
    assert.deepEqual(writes(plainProxy.requests), [], 'nothing written');
    assert.deepEqual([...new Set(plainProxy.requests.filter((q) => q.path !== '/v2/').map((q) => q.method))], ['HEAD']);
    const srcManifests = srcProxy.requests.filter((q) => q.path.includes('/manifests/'));
    assert.equal(srcManifests.length, 10);
    assert.ok(srcManifests.every((q) => q.method === 'HEAD'));
  });

  it('into a new repository, a tag its destination tag list lacks is read by one GET at the source, no HEAD', async () => {
    const yaml = join(work, 'read-now.yaml');
    writeFileSync(yaml, `${srcProxy.host}:\n  tls-verify: false\n  images:\n    team/app: []\n`);
    srcProxy.reset();
    // One image at a time: the first tag finds the repository missing and its tag list read; the others are known
    // to be missing when they are planned. The tag list is held 400 ms, so the second tag is planned while it is
    // still being read (an answer that hung on timing took a HEAD then, as a busy CI machine showed).
    const delaysBefore = plainProxy.injected.delay;
    plainProxy.setRules([{ kind: 'delay', method: 'GET', pathIncludes: '/read-now/app/tags/list', nth: [1], delayMs: 400 }]);
    const r = await sync(['--src', 'yaml', '--dest', 'docker', '--dest-tls-verify=false', '--jobs', '1', '--log-format', 'json', yaml, `${plainProxy.host}/read-now`]).finally(() => plainProxy.setRules([]));
    assert.equal(plainProxy.injected.delay - delaysBefore, 1, 'the tag list was held');
    assert.equal(r.code, 0, r.stderr + r.stdout);
    // Every tag of team/app (its referrers' fallback tag too, as skopeo takes them), each copied.
    const copied = r.stdout.trim().split('\n').map((l) => JSON.parse(l) as { event: string; action?: string; destination?: string }).filter((l) => l.event === 'image');
    assert.ok(copied.length >= 4 && copied.every((l) => l.action === 'copied'), r.stdout);
    const tags = copied.map((l) => l.destination!.split(':').at(-1)!);
    const manifests = srcProxy.requests.filter((q) => q.path.includes('/manifests/')).map((q) => ({ method: q.method, ref: q.path.split('/manifests/')[1]! }));
    const byTag = manifests.filter((q) => !q.ref.startsWith('sha256:'));
    // The first tag planned: a HEAD (then its manifest by digest); every other tag: one GET by tag, no HEAD.
    const heads = byTag.filter((q) => q.method === 'HEAD');
    assert.equal(heads.length, 1, JSON.stringify(manifests));
    assert.deepEqual(byTag.filter((q) => q.method === 'GET').map((q) => q.ref).sort(), tags.filter((t) => t !== heads[0]!.ref).sort());
    assert.equal(await sameDigests('read-now', { 'team/app': 'app' }), tags.length);
  });

  /** sameDigests checks with skopeo that every tag of `repos` at the plain destination has its source digest. */
  async function sameDigests(ns: string, repos: Record<string, string>): Promise<number> {
    const plainRead: SkopeoOptions = { tlsVerify: false };
    let n = 0;
    for (const [from, to] of Object.entries(repos)) {
      const tags = await tagsOf(`${ns}/${to}`, plainRead, plain.host);
      assert.ok(tags.length > 0, `${ns}/${to} has tags`);
      for (const tag of tags) {
        assert.equal(await skopeoInspectRawDigest(`docker://${plain.host}/${ns}/${to}:${tag}`, plainRead), await skopeoInspectRawDigest(`docker://${src.host}/${from}:${tag}`, { tlsVerify: false }), `${to}:${tag}`);
        n++;
      }
    }
    return n;
  }
  /** selfMounts are the POSTs that mount a blob into a repository from that same repository. */
  const selfMounts = (rs: RecordedRequest[]): RecordedRequest[] =>
    rs.filter((q) => {
      if (q.method !== 'POST') return false;
      const p = new URLSearchParams(q.query);
      return p.has('mount') && q.path === `/v2/${p.get('from') ?? ''}/blobs/uploads/`;
    });

  it('a fresh destination: one manifest HEAD and one tag list per repository; blobs offered by a mount from their own repository, none HEADed, one already there not sent again', async () => {
    // A blob in a repository without tags (a run cut before its manifests were put) is found by that mount.
    const srcClient = new RegistryClient({ host: src.host, scheme: 'http', settings: staticSettings({ scheme: 'http' }) });
    const tool = await srcClient.getManifest('team/tool', 'v1');
    const layer = (JSON.parse(Buffer.from(tool.bytes).toString('utf8')) as { layers: { digest: string; size: number }[] }).layers[0]!;
    const chunks: Buffer[] = [];
    for await (const c of (await srcClient.getBlob('team/tool', layer.digest)).body) chunks.push(Buffer.from(c));
    const plainClient = new RegistryClient({ host: plain.host, scheme: 'http', settings: staticSettings({ scheme: 'http' }) });
    await plainClient.uploadBlob('fresh/tool', { kind: 'bytes', data: Buffer.concat(chunks) }, { digest: layer.digest, size: layer.size });
    const yaml = join(work, 'fresh.yaml');
    writeFileSync(yaml, `${srcProxy.host}:\n  tls-verify: false\n  images:\n    team/app: []\n    library/multi: []\n    team/tool: []\n`);
    plainProxy.reset();
    const r = await sync(['--src', 'yaml', '--dest', 'docker', '--dest-tls-verify=false', yaml, `${plainProxy.host}/fresh`]);
    assert.equal(r.code, 0, r.stderr + r.stdout);
    const seen = plainProxy.requests;
    for (const repo of ['fresh/app', 'fresh/multi', 'fresh/tool']) {
      const byTag = seen.filter((q) => q.method === 'HEAD' && q.path.startsWith(`/v2/${repo}/manifests/`) && !q.path.includes('sha256:'));
      assert.equal(byTag.length, 1, `${repo}: ${byTag.map((q) => q.path).join(', ')}`);
      assert.equal(seen.filter((q) => q.method === 'GET' && q.path === `/v2/${repo}/tags/list`).length, 1, `${repo} listed once`);
    }
    assert.deepEqual(seen.filter((q) => q.method === 'HEAD' && q.path.includes('/blobs/')), [], 'no blob HEAD');
    const mounts = selfMounts(seen);
    assert.ok(mounts.length >= 6, `${mounts.length} mounts from the repository itself`);
    const there = mounts.filter((q) => new URLSearchParams(q.query).get('mount') === layer.digest && q.path === '/v2/fresh/tool/blobs/uploads/');
    assert.deepEqual(there.map((q) => q.status), [201], 'the blob already there is mounted');
    const sentAgain = seen.filter((q) => q.method === 'PUT' && q.path.startsWith('/v2/fresh/tool/blobs/uploads/') && new URLSearchParams(q.query).get('digest') === layer.digest);
    assert.deepEqual(sentAgain, [], 'not sent again');
    assert.ok((await sameDigests('fresh', { 'team/app': 'app', 'library/multi': 'multi', 'team/tool': 'tool' })) >= 9);
  });

  it('a registry that refuses a mount from the repository itself: the blobs are checked with HEAD and sent; the run succeeds', async () => {
    const yaml = join(work, 'refused.yaml');
    writeFileSync(yaml, `${srcProxy.host}:\n  tls-verify: false\n  images:\n    team/tool: []\n`);
    plainProxy.reset();
    plainProxy.setRules([
      { kind: 'respond', method: 'POST', queryIncludes: 'from=refused%2Ftool', probability: 1, status: 400, body: '{"errors":[{"code":"UNSUPPORTED","message":"no mounts here"}]}' },
    ]);
    try {
      const r = await sync(['--src', 'yaml', '--dest', 'docker', '--dest-tls-verify=false', yaml, `${plainProxy.host}/refused`]);
      assert.equal(r.code, 0, r.stderr + r.stdout);
    } finally {
      plainProxy.setRules([]);
    }
    const seen = plainProxy.requests;
    const refused = selfMounts(seen);
    assert.ok(refused.length >= 1 && refused.every((q) => q.fault === 'respond'), `${refused.length} refused`);
    const heads = seen.filter((q) => q.method === 'HEAD' && q.path.includes('/blobs/'));
    const uploads = seen.filter((q) => q.method === 'PUT' && q.path.includes('/blobs/uploads/'));
    // Once refused, no blob is offered that way again: every other blob is HEADed, and each is sent once.
    assert.ok(heads.length >= uploads.length - refused.length && uploads.length > 0, `${heads.length} HEADs, ${uploads.length} uploads, ${refused.length} refused`);
    assert.equal(new Set(uploads.map((q) => new URLSearchParams(q.query).get('digest'))).size, uploads.length, 'each blob sent once');
    assert.ok((await sameDigests('refused', { 'team/tool': 'tool' })) >= 3);
  });

  it('shards 0..2 run at the same time cover the plan exactly once', async () => {
    const file = nativeFile('shards', `http://${plainProxy.host}/shards`, `  - prefix: ${srcProxy.host}\n    tags: {exclude: ['^sha256-']}\n`);
    const plan = await sync(['--config', file, '--dry-run', '--json', '--referrers=false']);
    assert.equal(plan.code, 0, plan.stderr + plan.stdout);
    const all = (JSON.parse(plan.stdout) as { plan: Array<{ destination: string }> }).plan.map((p) => p.destination).sort();
    assert.equal(all.length, 10);
    const reports = [0, 1, 2].map((i) => join(work, `shard-${i}.json`));
    const runs = await Promise.all([0, 1, 2].map((i) => sync(['--config', file, '--shard', `${i}/3`, '--report', reports[i]!, '--referrers=false'])));
    const seen: string[][] = [];
    for (const [i, r] of runs.entries()) {
      assert.equal(r.code, 0, `shard ${i}: ${r.stderr}${r.stdout}`);
      const report = JSON.parse(readFileSync(reports[i]!, 'utf8')) as { images: Array<{ destination: string; action: string }>; header: { shard: string } };
      assert.equal(report.header.shard, `${i}/3`);
      seen.push(report.images.map((x) => x.destination));
    }
    assert.deepEqual(seen.flat().sort(), all, 'every image once');
    const repoOf = (d: string): string => d.slice(0, d.lastIndexOf(':'));
    const owners = new Map<string, Set<number>>();
    seen.forEach((list, i) => list.forEach((d) => owners.set(repoOf(d), (owners.get(repoOf(d)) ?? new Set()).add(i))));
    for (const [repo, who] of owners) assert.equal(who.size, 1, `${repo} written by one shard`);
    assert.ok(seen.filter((s) => s.length > 0).length >= 2, 'the work is split');
  });

  it('the lock: an overlapping run exits 8 at once, --wait-lock waits for it; a dead run\'s lock is taken over', async () => {
    const file = nativeFile('locked', `http://${plainProxy.host}/locked`, `  - repository: ${srcProxy.host}/team/app\n`, `    requests: {perSecond: 8}\n`);
    const lockFile = join(work, 'sync.lock');
    const first = sync(['--config', file, '--lock-file', lockFile]);
    for (let i = 0; i < 100 && !existsSync(lockFile); i++) await new Promise((r) => setTimeout(r, 50));
    assert.ok(existsSync(lockFile), 'the first run holds the lock');
    const t0 = Date.now();
    const second = await sync(['--config', file, '--lock-file', lockFile]);
    assert.equal(second.code, 8, second.stderr + second.stdout);
    assert.ok(Date.now() - t0 < 5000, 'at once');
    assert.match(second.stderr, /another sync holds the lock .*pid \d+ on /);
    const third = await sync(['--config', file, '--lock-file', lockFile, '--wait-lock', '60s']);
    const firstDone = await first;
    assert.equal(firstDone.code, 0, firstDone.stderr + firstDone.stdout);
    assert.equal(third.code, 0, third.stderr + third.stdout);
    assert.match(third.stderr, /waiting up to 60s/);
    assert.ok(!existsSync(lockFile), 'released');
    // A lock left by a process that is gone.
    writeFileSync(lockFile, JSON.stringify({ pid: 999_999_9, host: hostname(), started: '2020-01-01T00:00:00Z', token: 'x' }));
    const fourth = await sync(['--config', file, '--lock-file', lockFile]);
    assert.equal(fourth.code, 0, fourth.stderr);
    assert.match(fourth.stderr, /took over the lock .* left by a run that is gone \(pid 9999999/);
  });

  it('a failing image among good ones: exit 7, the summary lists it, the others are synced', async () => {
    // Break one source image: its layer's data is gone from the registry's storage.
    const db57 = layout.images.find((i) => i.ref === 'quay.io/other/db:5.7')!;
    const layer = db57.manifests[0]!.layers[0]!.digest.slice(7);
    rmSync(join(src.storageDir, 'docker/registry/v2/blobs/sha256', layer.slice(0, 2), layer), { recursive: true, force: true });
    const file = nativeFile('failing', `https://${dst.host}/failing`, `  - repository: ${srcProxy.host}/other/db\n  - repository: ${srcProxy.host}/team/tool\n`);
    const report = join(work, 'failing.json');
    const digests = join(work, 'failing.digests');
    const r = await sync(['--config', file, '--retry-times', '0', '--report', report, '--digestfile', digests, ...destFlags()]);
    assert.equal(r.code, 7, r.stderr + r.stdout);
    assert.match(r.stdout, /failed \(1\):\n {2}\S+\/other\/db:5\.7 -> \S+\/failing\/other\/db:5\.7: /);
    assert.deepEqual(await tagsOf('failing/other/db'), ['8.0']);
    assert.deepEqual(await tagsOf('failing/team/tool'), ['dev', `sha256-${digestOf('quay.io/team/tool:v1').slice(7)}.sig`, 'v1', 'v2']);
    const rep = JSON.parse(readFileSync(report, 'utf8')) as { header: { destination: string }; summary: { status: string; exitCode: number; counts: { failed: number } }; images: Array<{ action: string; errorCode?: string }> };
    assert.deepEqual([rep.summary.status, rep.summary.exitCode, rep.summary.counts.failed], ['partial', 7, 1]);
    // The scheme the file gives is kept (mirror config writes the endpoint from it); digest lines as upstream skopeo writes them.
    assert.equal(rep.header.destination, `https://${dst.host}/failing`);
    assert.ok(readFileSync(digests, 'utf8').includes(`${digestOf('quay.io/team/tool:v1')} docker://${dst.host}/failing/team/tool:v1\n`));
    assert.ok(rep.images.some((i) => i.action === 'failed' && typeof i.errorCode === 'string'));
    // The referrers travelled (native files copy them by default): the cosign signature tag of tool:v1.
    const v1 = digestOf('quay.io/team/tool:v1');
    assert.equal(await skopeoInspectRawDigest(`docker://${dst.host}/failing/team/tool:sha256-${v1.slice(7)}.sig`, dstRead()), sigDigest);
  });

  it('referrers travel with their subject: the SBOM of team/app:1.0 through the fallback tag', async () => {
    const file = nativeFile('refs', `${dst.host}/refs`, `  - repository: ${srcProxy.host}/team/app\n    tags: {include: ['^1\\.0$']}\n`);
    const r = await sync(['--config', file, ...destFlags()]);
    assert.equal(r.code, 0, r.stderr + r.stdout);
    const app = digestOf('quay.io/team/app:1.0');
    assert.equal(await skopeoInspectRawDigest(`docker://${dst.host}/refs/team/app@${sbomDigest}`, dstRead()), sbomDigest);
    assert.deepEqual(await tagsOf('refs/team/app'), ['1.0', `sha256-${app.slice(7)}`]);
  });

  it('--max-duration ends the run cleanly: exit 9, what was done is said, no tag half-written', async () => {
    const file = nativeFile('slow', `http://${plainProxy.host}/slow`, `  - prefix: ${srcProxy.host}/team\n`, `    requests: {perSecond: 8}\n`);
    const t0 = Date.now();
    const r = await sync(['--config', file, '--max-duration', '2s', '--referrers=false']);
    assert.equal(r.code, 9, r.stderr + r.stdout);
    assert.ok(Date.now() - t0 < 15_000);
    assert.match(r.stdout, /stopped at --max-duration after \d+\.\ds: \d+ image\(s\) done, \d+ in flight aborted \(nothing half-tagged\)/);
    const done = Number(/: (\d+) image\(s\) done/.exec(r.stdout)![1]);
    assert.ok(done < 9, `stopped before the end (${done} done)`);
    // Every tag that exists points at a complete image, with the source's digest.
    for (const repo of ['team/app', 'team/tool']) {
      for (const tag of await tagsOf(`slow/${repo}`, { tlsVerify: false }, plain.host)) {
        const want = digestOf(`quay.io/${repo}:${tag}`);
        assert.equal(await skopeoInspectRawDigest(`docker://${plain.host}/slow/${repo}:${tag}`), want);
      }
    }
  });

  it('a destination that goes silent mid-run: --timeout ends the run with exit 6 in bounded time, naming the host; every tag written is whole', async () => {
    // After two manifest PUTs, the destination takes requests and never answers them (they are held, not forwarded).
    let puts = 0;
    plainProxy.setRules([{ kind: 'delay', method: 'PUT', pathIncludes: '/manifests/', delayMs: 600_000, probability: 1, when: () => ++puts > 2 }]);
    const file = nativeFile('silent', `http://${plainProxy.host}/silent`, `  - prefix: ${srcProxy.host}/team\n`);
    const t0 = Date.now();
    const r = await sync(['--config', file, '--timeout', '1', '--referrers=false', '--jobs', '2']);
    const took = Date.now() - t0;
    assert.equal(r.code, 6, r.stderr + r.stdout);
    assert.ok(took < 30_000, `ended in ${took} ms`);
    assert.match(r.stderr, new RegExp(`mirror: error: no answer from ${plainProxy.host.replace(/\./g, '\\.')} for [\\d.]+ s`));
    assert.match(r.stderr, /did not answer PUT \S+\/manifests\/\S+ within 1 s/);
    assert.match(r.stdout, /sync ended early by the error below: \d+ copied, 0 unchanged, 0 failed/);
    assert.match(r.stdout, /images not reached are left as they were; the next run goes on from there/);
    assert.doesNotMatch(r.stderr, /\n\s+at /, 'no stack trace');
    // What did land is whole: every tag there points at its source image.
    let tags = 0;
    for (const repo of ['team/app', 'team/tool']) {
      for (const tag of await tagsOf(`silent/${repo}`, { tlsVerify: false }, plain.host)) {
        tags++;
        assert.equal(await skopeoInspectRawDigest(`docker://${plain.host}/silent/${repo}:${tag}`), digestOf(`quay.io/${repo}:${tag}`));
      }
    }
    assert.ok(tags <= 2, `${tags} tags written before the destination went silent`);
  });

  it('a source registry that is down fails its own entries; the other sources are synced (exit 7, each failure naming its host)', async () => {
    // One source refuses connections (nothing listens on its port), one accepts them and never answers.
    const closed = createServer();
    const refusedPort = await listenLocal(closed);
    await new Promise<void>((resolve) => closed.close(() => resolve()));
    const held = new Set<Socket>();
    const silent = createServer((socket) => {
      held.add(socket);
      socket.on('error', () => {});
      socket.resume();
    });
    const silentHost = `127.0.0.1:${await listenLocal(silent)}`;
    const refusedHost = `127.0.0.1:${refusedPort}`;
    try {
      const file = nativeFile(
        'down',
        `http://${plainProxy.host}/down`,
        `  - repository: ${refusedHost}/gone/app\n  - repository: ${silentHost}/hung/app\n  - repository: ${srcProxy.host}/team/tool\n`,
        `  ${refusedHost}:\n    tls: {plainHttp: true}\n  ${silentHost}:\n    tls: {plainHttp: true}\n`,
      );
      const t0 = Date.now();
      const r = await sync(['--config', file, '--timeout', '1', '--referrers=false']);
      assert.equal(r.code, 7, r.stderr + r.stdout);
      assert.ok(Date.now() - t0 < 30_000, `took ${Date.now() - t0} ms`);
      assert.match(r.stdout, /failed \(2\):/);
      assert.match(r.stdout, new RegExp(`\\n {2}.*${refusedHost}.*: .*connection refused`));
      assert.match(r.stdout, new RegExp(`\\n {2}.*${silentHost}.*: no answer from ${silentHost}`));
      assert.doesNotMatch(r.stderr, /mirror: error/);
      const synced = await tagsOf('down/team/tool', { tlsVerify: false }, plain.host);
      assert.deepEqual(synced.filter((t) => !t.startsWith('sha256-')), ['dev', 'v1', 'v2']);
      assert.equal(await skopeoInspectRawDigest(`docker://${plain.host}/down/team/tool:v1`), digestOf('quay.io/team/tool:v1'));
    } finally {
      for (const sock of held) sock.destroy();
      await new Promise<void>((resolve) => silent.close(() => resolve()));
    }
  });

  it('--prune: previewed with --dry-run, then deletes tags no longer selected; a digest still tagged is kept with a warning', async () => {
    const client = new RegistryClient({ host: src.host, scheme: 'http', settings: staticSettings({ scheme: 'http' }) });
    const two = await client.getManifest('team/app', '2.0');
    await client.putManifest('team/app', 'latest', two.bytes, two.mediaType);
    const all = nativeFile('prune-all', `http://${plainProxy.host}/prune`, `  - repository: ${srcProxy.host}/team/app\n    tags: {exclude: ['^sha256-']}\n`);
    const first = await sync(['--config', all, '--referrers=false']);
    assert.equal(first.code, 0, first.stderr + first.stdout);
    const want = ['1.0', '1.1', '1.2.0-rc.1', '2.0', 'latest'];
    assert.deepEqual(await tagsOf('prune/team/app', { tlsVerify: false }, plain.host), want);
    const fewer = nativeFile('prune-fewer', `http://${plainProxy.host}/prune`, `  - repository: ${srcProxy.host}/team/app\n    tags: {include: ['^1\\.0$', '^latest$']}\n`);
    const preview = await sync(['--config', fewer, '--prune', '--dry-run', '--referrers=false']);
    assert.equal(preview.code, 0, preview.stderr + preview.stdout);
    assert.match(preview.stdout, /prune {3}\S+\/team\/app:1\.1 /);
    assert.match(preview.stdout, /prune {3}\S+\/team\/app:1\.2\.0-rc\.1 /);
    assert.match(preview.stdout, /kept {4}\S+\/team\/app:2\.0 .*still tagged latest/);
    assert.deepEqual(await tagsOf('prune/team/app', { tlsVerify: false }, plain.host), want, 'a dry run deletes nothing');
    const pruned = await sync(['--config', fewer, '--prune', '--referrers=false']);
    assert.equal(pruned.code, 0, pruned.stderr + pruned.stdout);
    assert.match(pruned.stderr, /warning: .*team\/app:2\.0 is no longer selected but not deleted: .* still tagged latest/);
    assert.deepEqual(await tagsOf('prune/team/app', { tlsVerify: false }, plain.host), ['1.0', '2.0', 'latest']);
  });

  it('--prune: a tag list whose Link leads round (a registry ignoring "last") fails the listing and prunes nothing', async () => {
    const all = nativeFile('prune-loop-all', `http://${plainProxy.host}/prune-loop`, `  - repository: ${srcProxy.host}/team/app\n    tags: {exclude: ['^sha256-']}\n`);
    const first = await sync(['--config', all, '--referrers=false']);
    assert.equal(first.code, 0, first.stderr + first.stdout);
    const before = await tagsOf('prune-loop/team/app', { tlsVerify: false }, plain.host);
    assert.ok(before.length >= 3, before.join(', '));
    // Every page is the first one again, linking on to "the next".
    srcProxy.setRules([
      {
        kind: 'respond',
        method: 'GET',
        pathIncludes: '/v2/team/app/tags/list',
        status: 200,
        body: JSON.stringify({ name: 'team/app', tags: ['2.0'] }),
        headers: { link: '</v2/team/app/tags/list?n=1&last=2.0>; rel="next"' },
        probability: 1,
      },
    ]);
    try {
      const r = await sync(['--config', all, '--prune', '--referrers=false']);
      assert.equal(r.code, 7, r.stderr + r.stdout);
      assert.match(r.stdout, /cannot list the tags of \S+\/team\/app: tag list of team\/app is incomplete: page \d (links back to a page already read|repeats tags already listed)/);
      assert.match(r.stderr, /team\/app not pruned: its source listing failed/);
      assert.deepEqual(await tagsOf('prune-loop/team/app', { tlsVerify: false }, plain.host), before, 'nothing pruned');
    } finally {
      srcProxy.setRules([]);
    }
  });

  it('--prune keeps what it cannot know is unselected: a digest the config pins, the repository of a source that is down, a prefix not listed', async () => {
    const all = nativeFile('prune-keep-all', `http://${plainProxy.host}/prune-keep`, `  - repository: ${srcProxy.host}/team/app\n    tags: {exclude: ['^sha256-']}\n`);
    assert.equal((await sync(['--config', all, '--referrers=false'])).code, 0);
    const before = await tagsOf('prune-keep/team/app', { tlsVerify: false }, plain.host);
    assert.ok(before.includes('1.0') && before.includes('1.1'), before.join(', '));
    // A digest pinned by the config: its old tag is not deleted, which would delete the manifest.
    const pinned = nativeFile('prune-keep-pin', `http://${plainProxy.host}/prune-keep`, `  - repository: ${srcProxy.host}/team/app\n    tags: {include: ['^2\\.0$']}\n    digests: ['${digestOf('quay.io/team/app:1.0')}']\n`);
    const pin = await sync(['--config', pinned, '--prune', '--referrers=false']);
    assert.equal(pin.code, 0, pin.stderr + pin.stdout);
    assert.match(pin.stderr, /team\/app:1\.0 is no longer selected but not deleted: sha256:\S+ is selected by digest in the config/);
    assert.equal(await skopeoInspectRawDigest(`docker://${plain.host}/prune-keep/team/app@${digestOf('quay.io/team/app:1.0')}`, { tlsVerify: false }), digestOf('quay.io/team/app:1.0'));
    const now = await tagsOf('prune-keep/team/app', { tlsVerify: false }, plain.host);
    assert.ok(now.includes('1.0') && now.includes('2.0') && !now.includes('1.1'), now.join(', '));
    // Another source of the same destination repository is down: what it selects is not known, nothing is pruned.
    const closed = createServer();
    const downHost = `127.0.0.1:${await listenLocal(closed)}`;
    await new Promise<void>((resolve) => closed.close(() => resolve()));
    const extra = `  ${downHost}:\n    tls: {plainHttp: true}\n`;
    const down = nativeFile('prune-keep-down', `http://${plainProxy.host}/prune-keep`, `  - repository: ${srcProxy.host}/team/app\n    tags: {include: ['^2\\.0$']}\n  - repository: ${downHost}/team/app\n`, extra);
    const r = await sync(['--config', down, '--prune', '--referrers=false', '--retry-times', '0']);
    assert.equal(r.code, 7, r.stderr + r.stdout);
    assert.match(r.stderr, /team\/app not pruned: its source listing failed/);
    assert.deepEqual(await tagsOf('prune-keep/team/app', { tlsVerify: false }, plain.host), now, 'nothing pruned');
    // A prefix whose registry is down: which repositories it selects is not known, nothing at all is pruned.
    const prefix = nativeFile('prune-keep-prefix', `http://${plainProxy.host}/prune-keep`, `  - repository: ${srcProxy.host}/team/app\n    tags: {include: ['^2\\.0$']}\n  - prefix: ${downHost}/team\n`, extra);
    const p = await sync(['--config', prefix, '--prune', '--referrers=false', '--retry-times', '0']);
    assert.equal(p.code, 7, p.stderr + p.stdout);
    assert.match(p.stderr, /nothing pruned: \S+ \(\S+\/team \(every repository under it\)\) could not be listed/);
    assert.deepEqual(await tagsOf('prune-keep/team/app', { tlsVerify: false }, plain.host), now, 'nothing pruned');
  });

  it('newest by created time: a source that fails on a config fails the repository (nothing pruned, no older tag in its place)', async () => {
    const all = nativeFile('prune-created-all', `http://${plainProxy.host}/prune-created`, `  - repository: ${srcProxy.host}/team/app\n    tags: {exclude: ['^sha256-']}\n`);
    assert.equal((await sync(['--config', all, '--referrers=false'])).code, 0);
    const before = await tagsOf('prune-created/team/app', { tlsVerify: false }, plain.host);
    srcProxy.setRules([{ kind: 'respond', method: 'GET', pathIncludes: '/v2/team/app/blobs/', status: 500, body: '{"errors":[{"code":"UNKNOWN","message":"storage hiccup"}]}', probability: 1 }]);
    const newest = nativeFile('prune-created-newest', `http://${plainProxy.host}/prune-created`, `  - repository: ${srcProxy.host}/team/app\n    tags: {exclude: ['^sha256-'], newest: 1, newestBy: created}\n`);
    const r = await sync(['--config', newest, '--prune', '--referrers=false', '--retry-times', '0']);
    assert.equal(r.code, 1, r.stderr + r.stdout); // its one repository failed: the run failed
    assert.match(r.stdout, /cannot list the tags of \S+\/team\/app: .*500/);
    assert.match(r.stderr, /team\/app not pruned: its source listing failed/);
    assert.deepEqual(await tagsOf('prune-created/team/app', { tlsVerify: false }, plain.host), before, 'nothing pruned');
  });

  it('referrer tags (sha256-<hex>) listed by the source go with their subjects, not as images of their own', async () => {
    const file = nativeFile('reftags', `http://${plainProxy.host}/reftags`, `  - repository: ${srcProxy.host}/team/app\n`);
    const listed = await tagsOf('team/app', { tlsVerify: false }, src.host);
    assert.ok(listed.some((t) => /^sha256-[0-9a-f]{64}$/.test(t)), `the source has a referrer tag: ${listed.join(', ')}`);
    const r = await sync(['--config', file]);
    assert.equal(r.code, 0, r.stderr + r.stdout);
    const images = r.stdout.split('\n').filter((l) => /^(copied|skipped) /.test(l));
    assert.ok(images.length > 0, r.stdout);
    assert.ok(!images.some((l) => /:sha256-[0-9a-f]{64}/.test(l)), `no referrer tag synced as an image:\n${images.join('\n')}`);
    // ... while the referrers themselves travelled with their subject: the destination has the fallback tag too.
    const synced = await tagsOf('reftags/team/app', { tlsVerify: false }, plain.host);
    assert.ok(synced.some((t) => /^sha256-[0-9a-f]{64}$/.test(t)), synced.join(', '));
  });

  it('a registry that refuses its catalog fails that entry with a message naming it; the others go on', async () => {
    srcProxy.setRules([{ kind: 'status-503', pathIncludes: '/v2/_catalog', probability: 1 }]);
    const file = nativeFile('catalog', `http://${plainProxy.host}/catalog`, `  - prefix: ${srcProxy.host}/team\n  - repository: ${srcProxy.host}/other/db\n    tags: {include: ['^8']}\n`);
    const r = await sync(['--config', file, '--retry-times', '0', '--referrers=false']);
    assert.equal(r.code, 7, r.stderr + r.stdout);
    assert.match(r.stdout, new RegExp(`${file.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}:9:5: ${srcProxy.host.replace(/\./g, '\\.')} does not list its repositories \\(GET /v2/_catalog: .*HTTP 503`));
    assert.deepEqual(await tagsOf('catalog/other/db', { tlsVerify: false }, plain.host), ['8.0']);
  });

  it('config mistakes: exit 2 with FILE:LINE:COLUMN on stderr, before anything is contacted', async () => {
    const file = join(work, 'bad.yaml');
    writeFileSync(file, 'apiVersion: mirror/v1\nkind: Sync\ndestination:\n  registry: example.com\n  namespce: x\nsync:\n  - repository: quay.io/a\n    tags: {newest: -1}\n');
    srcProxy.reset();
    const r = await sync(['--config', file]);
    assert.equal(r.code, 2, r.stderr);
    assert.ok(r.stderr.includes(`${file}:5:3: destination.namespce: unknown key "namespce" (did you mean "namespace"?)`), r.stderr);
    assert.ok(r.stderr.includes(`${file}:8:20: sync[0].tags.newest: expected an integer from 1 to 100000, got -1`), r.stderr);
    assert.match(r.stderr, /mirror: error: .*bad\.yaml:5:3: .*\(and 1 more mistake\)/);
    const usage = await sync(['--src', 'yaml', file]);
    assert.equal(usage.code, 2);
    for (const kind of [['--src', 'oci', '--dest', 'docker'], ['--src', 'dir', '--dest', 'dir']]) {
      const kinds = await sync([...kind, work, 'r.example/ns']);
      assert.equal(kinds.code, 2, kinds.stderr);
      assert.match(kinds.stderr, /--(src oci|dest dir) is not supported/);
    }
    const skopeoFile = join(work, 'dest-words.yaml');
    writeFileSync(skopeoFile, 'quay.io:\n  images: {x: []}\n');
    const badDest = await sync(['--src', 'yaml', '--dest', 'docker', skopeoFile, 'r.example/Bad Name']);
    assert.equal(badDest.code, 2, badDest.stderr);
    assert.match(badDest.stderr, /invalid DESTINATION/);
    assert.doesNotMatch(badDest.stderr, /private-registry/);
    // Output files that cannot be written, and a time limit of nothing: said at once, no stack trace, no lock left.
    const good = nativeFile('outputs', `http://${plainProxy.host}/outputs`, `  - repository: ${srcProxy.host}/team/tool\n`);
    const lockFile = join(work, 'outputs.lock');
    for (const [flags, said] of [
      [['--report', work], /--report \S+: is a directory/],
      [['--report', '-'], /--report - is not taken by sync/],
      [['--digestfile', join(work, 'no-such-dir', 'd.txt')], /--digestfile \S+d\.txt: no such directory/],
      [['--digestfile', work], /--digestfile \S+: is a directory/],
      [['--max-duration', '0'], /--max-duration 0 would stop the run before it starts/],
    ] as const) {
      const bad = await sync(['--config', good, '--lock-file', lockFile, ...flags]);
      assert.equal(bad.code, 2, `${flags.join(' ')}: ${bad.stderr}`);
      assert.match(bad.stderr, said);
      assert.doesNotMatch(bad.stderr, /\n\s+at /, 'no stack trace');
      assert.ok(!existsSync(lockFile), 'no lock left');
    }
    assert.equal(srcProxy.requests.length, 0);
    // A limit beyond what a timer holds is no limit (it fired at once, stopping the run before its first image).
    const long = await sync(['--config', good, '--max-duration', '30d', '--referrers=false']);
    assert.equal(long.code, 0, long.stderr + long.stdout);
  });

  it('the built binary, killed in the middle, leaves a lock that the next run takes over', async () => {
    const file = nativeFile('killed', `http://${plainProxy.host}/killed`, `  - repository: ${srcProxy.host}/team/tool\n`);
    const lockFile = join(work, 'killed.lock');
    const child = spawn(process.execPath, [BIN, 'sync', '--config', file, '--lock-file', lockFile], { env: { ...process.env, ...isolatedEnv(home()) } as NodeJS.ProcessEnv, stdio: 'ignore' });
    for (let i = 0; i < 100 && !existsSync(lockFile); i++) await new Promise((r) => setTimeout(r, 50));
    child.kill('SIGKILL');
    await new Promise((r) => child.once('exit', r));
    assert.ok(existsSync(lockFile));
    const r = await sync(['--config', file, '--lock-file', lockFile]);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stderr, /took over the lock/);
    assert.equal(readdirSync(work).filter((f) => f.startsWith('killed.lock.')).length, 0, 'no marker left behind');
  });

  it('an image two entries select is copied once; two images the rewrite maps to one tag conflict, the message naming config keys', async () => {
    // A second repository whose v2 is another image than team/tool:v2 (copied into the source by mirror itself).
    const made = await runCli(['copy', '--src-tls-verify=false', '--dest-tls-verify=false', `docker://${src.host}/team/tool:v1`, `docker://${src.host}/lab/twin:v2`], { env: isolatedEnv(home()) });
    assert.equal(made.code, 0, made.stderr + made.stdout);
    const twice = nativeFile('twice', `http://${plainProxy.host}/twice`, `  - repository: ${srcProxy.host}/team/tool\n    tags: {include: ['^v']}\n  - repository: ${srcProxy.host}/team/tool\n`);
    const r = await sync(['--config', twice, '--referrers=false']);
    assert.equal(r.code, 0, r.stderr + r.stdout);
    const copied = r.stdout.split('\n').filter((l) => l.startsWith('copied ') && !l.includes(':sha256-'));
    assert.equal(copied.length, 3, r.stdout);
    assert.equal(new Set(copied).size, 3, 'each image once');
    const merged = nativeFile(
      'merged',
      `http://${plainProxy.host}/merged`,
      `  - repository: ${srcProxy.host}/team/tool\n    tags: {include: ['^v2$']}\n  - repository: ${srcProxy.host}/lab/twin\n`,
    );
    // The destination maps both repositories to one (a rule under destination:, after its registry line).
    writeFileSync(merged, readFileSync(merged, 'utf8').replace(/(destination:\n {2}registry: .*\n)/, (m) => `${m}  rewrite: {'^(team/tool|lab/twin)$': 'merged/app'}\n`));
    const c = await sync(['--config', merged, '--referrers=false']);
    assert.equal(c.code, 7, c.stderr + c.stdout);
    assert.match(c.stdout, /conflict: .* map to \S+merged\/app:v2.*map them apart in the config \(destination\.keepRegistryHost, or a destination\.rewrite rule\), or select only one of them/);
    assert.doesNotMatch(c.stdout, /--on-conflict|--keep-registry-host/);
  });
});
