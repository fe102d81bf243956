/**
 * `mirror copy` with OCI layouts and archives.
 * - The engine's order for a destination that declares `writeOrder: 'metadata-first'` (every manifest of every image,
 *   and of its referrers, before the first blob), `referrers: false`, and a destination's `converted` note.
 * - Against real registries (docker-registry) with skopeo as the independent reader: archives mirror writes are read
 *   by skopeo (oci-archive digests kept; docker-archive config kept); layouts skopeo writes are read by mirror with
 *   identical digests, a multi-platform index included; a metadata-first oci-archive pushes without a staging
 *   repository; an interrupted archive write leaves neither FILE nor a temporary file.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { copyImagesFrom, type CopyJob, type CopyOutcome } from '../../src/copy/copy.js';
import { MirrorError } from '../../src/errors/index.js';
import { closeAll } from '../../src/net/http.js';
import { sha256Digest } from '../../src/oci/digest.js';
import type { Descriptor } from '../../src/oci/manifest.js';
import { openLayoutSource } from '../../src/transport/oci-layout/source.js';
import type { BlobBody, DestinationCapabilities, DestinationImage, ImageDestination, ImageSource, PutManifestResult } from '../../src/transport/types.js';
import { buildOciLayout, type BuiltLayout, type LayoutSpec, writeDirectory } from '../../testdata/make-fixtures.js';
import { assertOneLineError, homeMaker, isolatedEnv } from '../helpers/auth-env.js';
import { BIN, runCli, type CliResult } from '../helpers/cli.js';
import { startFaultProxy, type FaultProxy } from '../helpers/fault-proxy.js';
import { run, stopAll } from '../helpers/proc.js';
import { startStallProxy, type StallProxy } from '../helpers/stall-proxy.js';
import { startRegistry, type TestRegistry } from '../helpers/registry.js';
import { skopeoInspectRaw, SKOPEO_TIMEOUT_MS } from '../helpers/skopeo.js';
import { MediaType } from '../../src/oci/media-types.js';

const SPEC: LayoutSpec = {
  seed: 'mirror-copy-archives',
  images: [
    {
      ref: 'docker.io/library/multi:1.0',
      platforms: [
        { os: 'linux', arch: 'amd64' },
        { os: 'linux', arch: 'arm64', variant: 'v8' },
      ],
      layers: [{ files: 2, sizeBytes: 4 * 1024 * 1024 }, { files: 2, sizeBytes: 3000 }],
    },
    { ref: 'quay.io/team/small:2.0', layers: [{ files: 2, sizeBytes: 5000 }, { files: 1, sizeBytes: 700 }] },
  ],
};

const hexOf = (d: string): string => d.slice(d.indexOf(':') + 1);

/** addSbom adds an SBOM manifest whose subject is `subject` to a layout directory's index.json (as oras writes it). */
function addSbom(dir: string, subject: { digest: string; size: number; mediaType: string }): string {
  const empty = Buffer.from('{}');
  writeFileSync(join(dir, 'blobs', 'sha256', hexOf(sha256Digest(empty))), empty);
  const sbom = Buffer.from(
    JSON.stringify({
      schemaVersion: 2,
      mediaType: 'application/vnd.oci.image.manifest.v1+json',
      artifactType: 'application/spdx+json',
      config: { mediaType: 'application/vnd.oci.empty.v1+json', digest: sha256Digest(empty), size: 2 },
      layers: [{ mediaType: 'application/vnd.oci.empty.v1+json', digest: sha256Digest(empty), size: 2 }],
      subject: { mediaType: subject.mediaType, digest: subject.digest, size: subject.size },
    }),
  );
  const digest = sha256Digest(sbom);
  writeFileSync(join(dir, 'blobs', 'sha256', hexOf(digest)), sbom);
  const index = JSON.parse(readFileSync(join(dir, 'index.json'), 'utf8')) as { manifests: unknown[] };
  index.manifests.push({ mediaType: 'application/vnd.oci.image.manifest.v1+json', digest, size: sbom.byteLength, artifactType: 'application/spdx+json' });
  writeFileSync(join(dir, 'index.json'), JSON.stringify(index));
  return digest;
}

/** Recorder is a destination that records the engine's calls in order. */
class Recorder implements ImageDestination {
  readonly description = 'recorder';
  readonly blobScope = 'global' as const;
  readonly calls: string[] = [];
  readonly held = new Set<string>();

  constructor(
    readonly capabilities: DestinationCapabilities,
    private readonly options: { converted?: string; failBlob?: string } = {},
  ) {}

  async hasBlob(_r: string, digest: string): Promise<boolean> {
    return this.held.has(digest);
  }
  async mountBlob(): Promise<{ mounted: false }> {
    return { mounted: false };
  }
  async cancelSession(): Promise<void> {}
  async putBlob(_r: string, expected: { digest?: string | undefined; size?: number | undefined }, body: BlobBody): Promise<{ digest: string; size: number }> {
    const digest = expected.digest!;
    this.calls.push(`blob ${digest}`);
    let size = 0;
    if (body.kind === 'stream') for await (const c of body.open()) size += c.byteLength;
    if (digest === this.options.failBlob) throw new MirrorError('DIGEST_MISMATCH', `blob ${digest} does not match`);
    this.held.add(digest);
    return { digest, size };
  }
  async manifestDigest(): Promise<string | undefined> {
    return undefined;
  }
  async putManifest(_i: DestinationImage, reference: string, _b: Uint8Array, _m: string, options: { root?: boolean | undefined }): Promise<PutManifestResult> {
    this.calls.push(`manifest ${reference}${options.root ? ' (root)' : ''}`);
    return options.root && this.options.converted ? { converted: this.options.converted } : {};
  }
  async registerReferrer(_r: string, subject: string, referrer: Descriptor): Promise<void> {
    this.calls.push(`referrer ${referrer.digest} of ${subject}`);
  }
  async commit(): Promise<void> {}
  async close(): Promise<void> {}
}

async function outcomesOf(run: { outcomes: AsyncGenerator<CopyOutcome> }): Promise<CopyOutcome[]> {
  const out: CopyOutcome[] = [];
  for await (const o of run.outcomes) out.push(o);
  return out;
}

describe('copy engine: what a destination declares', () => {
  let work: string;
  let layout: BuiltLayout;
  let dir: string;
  let sbom: string;
  let source: ImageSource;
  let referrerCalls = 0;

  before(async () => {
    work = mkdtempSync(join(tmpdir(), 'mirror-copy-order-'));
    layout = await buildOciLayout({ ...SPEC, images: SPEC.images.map((i) => ({ ...i, layers: i.layers.map((l) => ({ ...l, sizeBytes: Math.min(l.sizeBytes ?? 0, 20_000) })) })) });
    dir = join(work, 'layout');
    await writeDirectory(layout.files, dir);
    const small = layout.images[1]!;
    sbom = addSbom(dir, small);
    const s = await openLayoutSource(dir);
    const referrers = s.referrers.bind(s);
    s.referrers = async (repo: string, digest: string) => {
      referrerCalls++;
      return referrers(repo, digest);
    };
    source = s;
  });
  beforeEach(() => {
    referrerCalls = 0;
  });
  after(() => rmSync(work, { recursive: true, force: true }));

  const jobs = (...refs: string[]): CopyJob[] =>
    refs.map((tag) => ({ source, image: { repository: '', tag }, name: `oci:${dir}:${tag}`, destination: { repository: 'r', tag: `t-${tag}`, name: `dest:${tag}` } }));

  it('metadata-first: every manifest of every image, and its referrers, before the first blob', async () => {
    const dest = new Recorder({ blobScope: 'global', writeOrder: 'metadata-first', parallelBlobWrites: false });
    const outcomes = await outcomesOf(copyImagesFrom(jobs('1.0', '2.0'), dest, { jobs: 2 }));
    assert.deepEqual(outcomes.map((o) => [o.source.split(':').pop(), o.status, o.referrers]).sort(), [['1.0', 'pushed', 0], ['2.0', 'pushed', 1]]);
    const firstBlob = dest.calls.findIndex((c) => c.startsWith('blob '));
    const lastMeta = dest.calls.map((c) => !c.startsWith('blob ')).lastIndexOf(true);
    assert.ok(firstBlob > lastMeta, `metadata before blobs:\n${dest.calls.join('\n')}`);
    assert.ok(dest.calls.includes(`referrer ${sbom} of ${layout.images[1]!.digest}`));
    const manifests = dest.calls.filter((c) => c.startsWith('manifest '));
    assert.deepEqual(manifests.slice(0, 3), [...layout.images[0]!.manifests.map((m) => `manifest ${m.digest}`), 'manifest t-1.0 (root)'], 'children first, the root by its tag last');
    const blobs = new Set(layout.images.flatMap((i) => i.manifests.flatMap((m) => [m.config.digest, ...m.layers.map((l) => l.digest)])));
    blobs.add(sha256Digest('{}'));
    assert.deepEqual(new Set(dest.calls.filter((c) => c.startsWith('blob ')).map((c) => c.slice(5))), blobs);
  });

  it('blobs-first (a registry): each image\'s blobs before its manifests, as before', async () => {
    const dest = new Recorder({ blobScope: 'global', writeOrder: 'blobs-first', parallelBlobWrites: true });
    await outcomesOf(copyImagesFrom(jobs('2.0'), dest, { jobs: 1 }));
    assert.ok(dest.calls[0]!.startsWith('blob '), dest.calls.join('\n'));
    const root = dest.calls.indexOf('manifest t-2.0 (root)');
    assert.ok(dest.calls.slice(0, root).filter((c) => c.startsWith('blob ')).length >= 3);
  });

  it('a destination that cannot hold referrers is not given any (the source is not asked)', async () => {
    const dest = new Recorder({ blobScope: 'global', writeOrder: 'metadata-first', parallelBlobWrites: false, referrers: false });
    const [o] = await outcomesOf(copyImagesFrom(jobs('2.0'), dest, {}));
    assert.equal(o!.status, 'pushed');
    assert.equal(o!.referrers, 0);
    assert.equal(referrerCalls, 0);
    assert.ok(!dest.calls.some((c) => c.includes(sbom)));
  });

  it('a destination\'s note on what it changed joins the outcome', async () => {
    const dest = new Recorder({ blobScope: 'global', writeOrder: 'metadata-first', parallelBlobWrites: false }, { converted: 'layers decompressed' });
    const [o] = await outcomesOf(copyImagesFrom(jobs('1.0'), dest, { platforms: [{ os: 'linux', architecture: 'arm64' }] }));
    assert.match(o!.converted ?? '', /^platform linux\/arm64\/v8 of sha256:\w+ copied alone.*; layers decompressed$/);
  });

  it('metadata-first: a job that fails to plan or to place a blob fails alone', async () => {
    const failBlob = layout.images[1]!.manifests[0]!.layers[0]!.digest;
    const dest = new Recorder({ blobScope: 'global', writeOrder: 'metadata-first', parallelBlobWrites: false }, { failBlob });
    const outcomes = await outcomesOf(copyImagesFrom(jobs('1.0', 'nope', '2.0'), dest, { referrers: false }));
    const by = new Map(outcomes.map((o) => [o.source.split(':').pop(), o]));
    assert.equal(by.get('nope')!.errorCode, 'NOT_FOUND');
    assert.equal(by.get('2.0')!.errorCode, 'DIGEST_MISMATCH');
    assert.equal(by.get('1.0')!.status, 'pushed');
    assert.equal(outcomes[0]!.source.split(':').pop(), 'nope', 'a planning failure is reported before any blob is written');
  });

  it('a dry run against a metadata-first destination writes nothing', async () => {
    const dest = new Recorder({ blobScope: 'global', writeOrder: 'metadata-first', parallelBlobWrites: false });
    const [o] = await outcomesOf(copyImagesFrom(jobs('1.0'), dest, { dryRun: true }));
    assert.equal(o!.status, 'planned');
    assert.deepEqual(dest.calls, []);
  });
});


describe('mirror copy with layouts and archives (integration: docker-registry, skopeo)', function () {
  this.timeout(300_000);
  let work: string;
  let layout: BuiltLayout;
  let src: TestRegistry;
  let dst: TestRegistry;
  let dstProxy: FaultProxy;
  const home = homeMaker(() => work);

  const multi = (): BuiltLayout['images'][number] => layout.images[0]!;
  const small = (): BuiltLayout['images'][number] => layout.images[1]!;

  function copy(args: string[]): Promise<CliResult> {
    return runCli(['copy', '--src-tls-verify=false', '--dest-tls-verify=false', ...args], { env: isolatedEnv(home()) });
  }

  function skopeo(args: string[]): Promise<string> {
    return run('skopeo', args, { timeoutMs: SKOPEO_TIMEOUT_MS });
  }

  /** files lists what is in `work` under a base name: FILE and any FILE.tmp-*. */
  const leftovers = (base: string): string[] => readdirSync(work).filter((n) => n.startsWith(base));

  before(async () => {
    work = mkdtempSync(join(tmpdir(), 'mirror-copy-archives-'));
    layout = await buildOciLayout(SPEC);
    const dir = join(work, 'layout');
    await writeDirectory(layout.files, dir);
    src = await startRegistry();
    dst = await startRegistry();
    dstProxy = await startFaultProxy({ upstream: dst.url });
    const seeded = await runCli(['push', '--source', dir, '--private-registry', `http://${src.host}`, '--need-credential=false'], { env: isolatedEnv(home()) });
    assert.equal(seeded.code, 0, seeded.stderr);
  });
  after(async () => {
    await closeAll();
    await dstProxy?.stop();
    await src?.stop();
    await dst?.stop();
    await stopAll();
    if (work) rmSync(work, { recursive: true, force: true });
  });

  it('oci-archive written by mirror: skopeo inspects it and copies it into a registry with every digest kept', async () => {
    const file = join(work, 'multi-oci.tar');
    const r = await copy([`docker://${src.host}/library/multi:1.0`, `oci-archive:${file}:multi:1.0`]);
    assert.equal(r.code, 0, r.stderr + r.stdout);
    assert.equal(sha256Digest(await skopeoInspectRaw(`oci-archive:${file}:multi:1.0`)), multi().digest);
    const inspected = JSON.parse(await skopeo(['inspect', '--override-arch', 'arm64', `oci-archive:${file}:multi:1.0`])) as { Architecture: string };
    assert.equal(inspected.Architecture, 'arm64');
    await skopeo(['copy', '--all', '--dest-tls-verify=false', `oci-archive:${file}:multi:1.0`, `docker://${dst.host}/from-oci-archive/multi:1.0`]);
    assert.equal(sha256Digest(await skopeoInspectRaw(`docker://${dst.host}/from-oci-archive/multi:1.0`)), multi().digest);
    for (const m of multi().manifests) assert.equal(sha256Digest(await skopeoInspectRaw(`docker://${dst.host}/from-oci-archive/multi@${m.digest}`)), m.digest);
    assert.deepEqual(leftovers('multi-oci.tar'), ['multi-oci.tar']);
  });

  it('docker-archive written by mirror: skopeo copies it into a registry with the config digest kept', async () => {
    const file = join(work, 'small-docker.tar');
    const r = await copy([`docker://${src.host}/team/small:2.0`, `docker-archive:${file}:quay.io/team/small:2.0`]);
    assert.equal(r.code, 0, r.stderr + r.stdout);
    assert.match(r.stdout, /note: docker-archive stores layers uncompressed \(2 of 2 decompressed\)/);
    await skopeo(['copy', '--dest-tls-verify=false', `docker-archive:${file}`, `docker://${dst.host}/from-docker-archive/small:2.0`]);
    const manifest = JSON.parse((await skopeoInspectRaw(`docker://${dst.host}/from-docker-archive/small:2.0`)).toString('utf8')) as { config: { digest: string }; layers: unknown[] };
    assert.equal(manifest.config.digest, small().manifests[0]!.config.digest);
    assert.equal(manifest.layers.length, 2);
    const inspect = JSON.parse(await skopeo(['inspect', `docker-archive:${file}:quay.io/team/small:2.0`])) as { Layers: string[] };
    assert.deepEqual(inspect.Layers, small().manifests[0]!.layers.map((l) => l.diffId), 'layers are stored uncompressed: their digests are the diff_ids');
  });

  it('docker-archive into oci:DIR and oci-archive: the manifest takes OCI media types, so skopeo finds it by name; config and diff_ids kept', async () => {
    const archive = join(work, 'small-for-oci.tar');
    const saved = await copy([`docker://${src.host}/team/small:2.0`, `docker-archive:${archive}:quay.io/team/small:2.0`]);
    assert.equal(saved.code, 0, saved.stderr + saved.stdout);
    for (const dest of [`oci:${join(work, 'from-docker-archive')}:small`, `oci-archive:${join(work, 'from-docker-archive.tar')}:small`]) {
      const r = await copy([`docker-archive:${archive}`, dest]);
      assert.equal(r.code, 0, r.stderr + r.stdout);
      assert.match(r.stdout, /built from manifest\.json with OCI media types/);
      const m = JSON.parse((await skopeoInspectRaw(dest)).toString('utf8')) as { mediaType: string; config: { mediaType: string; digest: string }; layers: Array<{ mediaType: string; digest: string }> };
      assert.equal(m.mediaType, MediaType.OCI_MANIFEST, dest);
      assert.equal(m.config.mediaType, MediaType.OCI_CONFIG, dest);
      assert.equal(m.config.digest, small().manifests[0]!.config.digest, dest);
      assert.deepEqual(m.layers.map((l) => l.mediaType), [MediaType.OCI_LAYER, MediaType.OCI_LAYER], dest);
      assert.deepEqual(m.layers.map((l) => l.digest), small().manifests[0]!.layers.map((l) => l.diffId), dest);
      const copied = join(work, `skopeo-${dest.startsWith('oci:') ? 'dir' : 'archive'}`);
      await skopeo(['copy', dest, `oci:${copied}:small`]);
    }
  });

  it('docker-archive of a multi-platform index: a usage error naming its platforms, nothing written; --platform picks one', async () => {
    const file = join(work, 'multi-docker.tar');
    const refused = await copy([`docker://${src.host}/library/multi:1.0`, `docker-archive:${file}`]);
    assert.equal(refused.code, 2, refused.stderr + refused.stdout);
    assertOneLineError(refused.stderr, /one image, not an index \(linux\/amd64, linux\/arm64\/v8\).*--platform/);
    assert.deepEqual(leftovers('multi-docker.tar'), []);
    const r = await copy(['--platform', 'linux/arm64', `docker://${src.host}/library/multi:1.0`, `docker-archive:${file}:multi:arm64`]);
    assert.equal(r.code, 0, r.stderr + r.stdout);
    await skopeo(['copy', '--dest-tls-verify=false', `docker-archive:${file}`, `docker://${dst.host}/from-docker-archive/multi:arm64`]);
    const manifest = JSON.parse((await skopeoInspectRaw(`docker://${dst.host}/from-docker-archive/multi:arm64`)).toString('utf8')) as { config: { digest: string } };
    assert.equal(manifest.config.digest, multi().manifests.find((m) => m.platform.arch === 'arm64')!.config.digest);
  });

  it('a layout skopeo wrote is read by mirror copy oci:DIR:tag with identical digests', async () => {
    const dir = join(work, 'skopeo-small');
    await skopeo(['copy', '--src-tls-verify=false', `docker://${src.host}/team/small:2.0`, `oci:${dir}:v2`]);
    const written = sha256Digest(await skopeoInspectRaw(`oci:${dir}:v2`));
    const r = await copy([`oci:${dir}:v2`, `docker://${dstProxy.host}/from-layout/small:2.0`]);
    assert.equal(r.code, 0, r.stderr + r.stdout);
    assert.equal(sha256Digest(await skopeoInspectRaw(`docker://${dst.host}/from-layout/small:2.0`)), written);
    const uploads = dstProxy.requests.filter((q) => q.method === 'PUT' && q.path.includes('/blobs/uploads/'));
    assert.equal(uploads.length, 3, 'the config and both layers were streamed from the layout files');
  });

  it('a multi-platform index goes through oci:DIR with its digest: skopeo-written layout to a registry, and a registry to a layout skopeo reads', async () => {
    const dir = join(work, 'skopeo-multi');
    await skopeo(['copy', '--all', '--preserve-digests', '--src-tls-verify=false', `docker://${src.host}/library/multi:1.0`, `oci:${dir}:multi`]);
    assert.equal(sha256Digest(await skopeoInspectRaw(`oci:${dir}:multi`)), multi().digest);
    const r = await copy([`oci:${dir}:multi`, `docker://${dst.host}/from-layout/multi:1.0`]);
    assert.equal(r.code, 0, r.stderr + r.stdout);
    assert.equal(sha256Digest(await skopeoInspectRaw(`docker://${dst.host}/from-layout/multi:1.0`)), multi().digest);
    for (const m of multi().manifests) assert.equal(sha256Digest(await skopeoInspectRaw(`docker://${dst.host}/from-layout/multi@${m.digest}`)), m.digest);
    const out = join(work, 'mirror-multi');
    const back = await copy([`docker://${src.host}/library/multi:1.0`, `oci:${out}:1.0`]);
    assert.equal(back.code, 0, back.stderr + back.stdout);
    assert.equal(sha256Digest(await skopeoInspectRaw(`oci:${out}:1.0`)), multi().digest);
  });

  it('oci:DIR:REF as a destination: ref.name is REF (a bare tag gets no containerd name), a second copy is skipped; no REF records the digest alone', async () => {
    const out = join(work, 'named-layout');
    const first = await copy([`docker://${src.host}/team/small:2.0`, `oci:${out}:2.0`]);
    assert.equal(first.code, 0, first.stderr + first.stdout);
    const again = await copy([`docker://${src.host}/team/small:2.0`, `oci:${out}:2.0`]);
    assert.equal(again.code, 0, again.stderr + again.stdout);
    assert.match(again.stdout, /already present/);
    const bare = join(work, 'unnamed-layout');
    const r = await copy([`docker://${src.host}/team/small:2.0`, `oci:${bare}`]);
    assert.equal(r.code, 0, r.stderr + r.stdout);
    type Entry = { digest: string; annotations?: Record<string, string> };
    const named = (JSON.parse(readFileSync(join(out, 'index.json'), 'utf8')) as { manifests: Entry[] }).manifests;
    assert.deepEqual(named.map((e) => e.annotations), [{ 'org.opencontainers.image.ref.name': '2.0' }]);
    const unnamed = (JSON.parse(readFileSync(join(bare, 'index.json'), 'utf8')) as { manifests: Entry[] }).manifests;
    assert.deepEqual(unnamed.map((e) => [e.digest, e.annotations ?? {}]), [[small().digest, {}]]);
  });

  it('an oci:DIR with several images and no REF: a usage error listing their names', async () => {
    const dir = join(work, 'layout');
    const r = await copy([`oci:${dir}`, `docker://${dst.host}/x/y:1`]);
    assert.equal(r.code, 2, r.stderr + r.stdout);
    assertOneLineError(r.stderr, 'holds 2 images', '1.0, 2.0');
  });

  it('an oci-archive mirror wrote (metadata first) pushes with no staging repository, digests kept', async () => {
    const file = join(work, 'push-me.tar');
    const r = await copy([`docker://${src.host}/team/small:2.0`, `oci-archive:${file}:quay.io/team/small:2.0`]);
    assert.equal(r.code, 0, r.stderr + r.stdout);
    dstProxy.reset();
    const pushed = await runCli(['push', '--source', file, '--private-registry', `http://${dstProxy.host}/pushed`, '--need-credential=false'], { env: isolatedEnv(home()) });
    assert.equal(pushed.code, 0, pushed.stderr + pushed.stdout);
    assert.deepEqual(dstProxy.requests.filter((q) => q.path.includes('mirror-staging')).map((q) => `${q.method} ${q.path}`), [], 'no blob went through the staging repository');
    assert.equal(sha256Digest(await skopeoInspectRaw(`docker://${dst.host}/pushed/team/small:2.0`)), small().digest);
  });

  describe('an interrupted archive write leaves no FILE and no temporary file', () => {
    let stall: StallProxy;
    before(async () => {
      stall = await startStallProxy(src.url, { stall: 'blob-gets', after: 512 * 1024 });
    });
    after(async () => {
      await stall?.stop();
    });

    /** interrupt starts a copy, waits until its temporary file holds bytes, sends SIGINT (`signals` times), and waits for the exit. */
    async function interrupt(destination: string, base: string, signals: number): Promise<{ code: number | null; signal: NodeJS.Signals | null; stderr: string }> {
      const child = spawn(process.execPath, [BIN, 'copy', '--src-tls-verify=false', '--platform', 'linux/amd64', `docker://${stall.host}/library/multi:1.0`, destination], {
        stdio: ['ignore', 'pipe', 'pipe'],
        env: { ...process.env, ...isolatedEnv(home()), NO_COLOR: '1' },
      });
      let stderr = '';
      child.stderr.setEncoding('utf8').on('data', (d: string) => (stderr += d));
      child.stdout.resume();
      const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) => child.once('close', (code, signal) => resolve({ code, signal })));
      const killer = setTimeout(() => child.kill('SIGKILL'), 60_000);
      try {
        const deadline = Date.now() + 30_000;
        let tmp: string | undefined;
        while (Date.now() < deadline) {
          tmp = leftovers(base).find((n) => n.includes('.tmp-'));
          if (tmp !== undefined && statSync(join(work, tmp), { throwIfNoEntry: false })?.size && stall.stalled > 0) break;
          await new Promise((r) => setTimeout(r, 50));
        }
        assert.ok(tmp !== undefined, `a temporary file appeared (stderr: ${stderr})`);
        child.kill('SIGINT');
        if (signals > 1) {
          // A second Ctrl-C during the shutdown the first one started (once the first was handled: one that lands
          // before that kills the process by the default action, before any code of ours can run).
          const until = Date.now() + 10_000;
          while (leftovers(base).length > 0 && Date.now() < until) await new Promise((r) => setTimeout(r, 5));
          child.kill('SIGINT');
        }
        return { ...(await exited), stderr };
      } finally {
        clearTimeout(killer);
      }
    }

    for (const [transport, signals] of [['oci-archive', 1], ['docker-archive', 1], ['oci-archive', 2], ['docker-archive', 2]] as const) {
      it(`${transport}, ${signals === 1 ? 'one Ctrl-C: exit 130' : 'a second Ctrl-C during shutdown'}, nothing left`, async () => {
        const base = `cut-${transport}-${signals}.tar`;
        const { code, signal, stderr } = await interrupt(`${transport}:${join(work, base)}:cut:1`, base, signals);
        // The exit status of a second Ctrl-C is the command's business (it may end the process at once); the files are ours.
        if (signals === 1) assert.equal(code, 130, stderr);
        else assert.ok(code === 130 || signal === 'SIGINT', `exit ${code} ${signal}: ${stderr}`);
        assert.deepEqual(leftovers(base), [], `exit ${code} ${signal}: ${stderr}`);
        assert.ok(!existsSync(join(work, base)));
      });
    }
  });

});
