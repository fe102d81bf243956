/**
 * Bundle shapes that real tools write, built by testdata/make-fixtures.ts, pushed through the built binary into the
 * real docker-registry and read back with skopeo: non-distributable layers, artifacts named only by their subject,
 * JSON layers (SBOMs) that are blobs and not metadata, sha512 content, and layouts in a subfolder.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { request } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { blobEntry, buildDockerSave, buildOciLayout, type BuiltLayout, craneTarball, docker2500Save, SPDX_JSON, tinyImage, writeDirectory, writeOrderedTar, writeRawTar, writeTarBundle } from '../../testdata/make-fixtures.js';
import { assertOneLineError, BIN, CLI_TIMEOUT_MS, runCli } from '../helpers/cli.js';
import { startFaultProxy } from '../helpers/fault-proxy.js';
import { startRegistry, type TestRegistry } from '../helpers/registry.js';
import { skopeoInspectRaw, skopeoInspectRawDigest } from '../helpers/skopeo.js';
import { sha256Digest } from '../../src/oci/digest.js';
import { MediaType } from '../../src/oci/media-types.js';

/** destPath maps a full source ref into `ns` the way bmctl does (drop the host, keep the path). */
function destPath(ref: string, ns: string): string {
  return `${ns}/${ref.slice(ref.indexOf('/') + 1)}`;
}

/** repoOf gives the repository part of a full reference (`gcr.io/a/b:1` -> `gcr.io/a/b`). */
function repoOf(ref: string): string {
  return ref.replace(/@.*$/, '').replace(/:[^/:]*$/, '');
}

/** blobDigestAt downloads a blob and hashes it with the algorithm of `digest` (skopeo 1.9 cannot store sha512 blobs). */
function blobDigestAt(registry: TestRegistry, repo: string, digest: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const req = request(`${registry.url}/v2/${repo}/blobs/${digest}`, (res) => {
      const algorithm = digest.slice(0, digest.indexOf(':'));
      const hash = createHash(algorithm);
      res.on('data', (c: Buffer) => hash.update(c));
      res.on('end', () => resolve(res.statusCode === 200 ? `${algorithm}:${hash.digest('hex')}` : `HTTP ${res.statusCode ?? 0}`));
      res.on('error', reject);
    });
    req.on('error', reject);
    req.end();
  });
}

/** blobStatus asks the registry for a blob (HEAD) and gives the HTTP status. */
function blobStatus(registry: TestRegistry, repo: string, digest: string): Promise<number> {
  return new Promise((resolve, reject) => {
    const req = request(`${registry.url}/v2/${repo}/blobs/${digest}`, { method: 'HEAD' }, (res) => {
      res.resume();
      resolve(res.statusCode ?? 0);
    });
    req.on('error', reject);
    req.end();
  });
}

/** runMeasured runs the built binary under GNU time and gives its exit code, output and peak RSS (KiB). */
function runMeasured(args: string[]): Promise<{ code: number | null; stdout: string; stderr: string; maxRssKiB: number }> {
  return new Promise((resolve, reject) => {
    const child = spawn('/usr/bin/time', ['-f', 'mirror-max-rss-kib=%M', process.execPath, BIN, ...args], { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, NO_COLOR: '1' } });
    let stdout = '';
    let stderr = '';
    child.stdout.setEncoding('utf8').on('data', (d: string) => (stdout += d));
    child.stderr.setEncoding('utf8').on('data', (d: string) => (stderr += d));
    const timer = setTimeout(() => child.kill('SIGKILL'), CLI_TIMEOUT_MS);
    child.once('error', (e) => {
      clearTimeout(timer);
      reject(e);
    });
    child.once('close', (code) => {
      clearTimeout(timer);
      const m = /mirror-max-rss-kib=(\d+)/.exec(stderr);
      resolve({ code, stdout, stderr, maxRssKiB: m ? Number(m[1]) : Number.NaN });
    });
  });
}

interface Report {
  images: Array<{ source: string; destination: string; digest: string; status: string; error?: string; converted?: string }>;
}

describe('mirror push: bundle shapes real tools write (docker-registry + skopeo)', function () {
  this.timeout(300_000);
  let registry: TestRegistry;
  let work: string;

  before(async () => {
    // distribution refuses manifests with URLs unless told which to allow (foreign and non-distributable layers).
    registry = await startRegistry({ manifestUrlsAllow: ['^https?://'] });
    work = await mkdtemp(join(tmpdir(), 'mirror-bundles-'));
  });
  after(async () => {
    await registry?.stop();
    if (work) await rm(work, { recursive: true, force: true });
  });

  async function assertImagesPushed(layout: BuiltLayout, ns: string): Promise<void> {
    for (const img of layout.images) {
      if (!img.ref) continue;
      const raw = await skopeoInspectRaw(`docker://${registry.host}/${destPath(img.ref, ns)}`);
      assert.equal(sha256Digest(raw), img.digest, `${img.ref} has the bundle's manifest digest`);
    }
  }

  describe('OCI non-distributable layers with urls', () => {
    for (const mediaType of [MediaType.OCI_LAYER_NONDISTRIBUTABLE, MediaType.OCI_LAYER_NONDISTRIBUTABLE_GZIP, MediaType.OCI_LAYER_NONDISTRIBUTABLE_ZSTD]) {
      it(`${mediaType.slice(mediaType.lastIndexOf('.') + 1)}: skipped when absent from the bundle (digests kept), pushed when present`, async () => {
        const layout = await buildOciLayout({
          seed: `nd-${mediaType}`,
          images: [
            { ref: 'mcr.microsoft.com/windows/absent:1.0', layers: [{ files: 1 }], foreignLayer: { mediaType, present: false } },
            { ref: 'mcr.microsoft.com/windows/present:1.0', layers: [{ files: 1 }], foreignLayer: { mediaType, present: true } },
          ],
        });
        const file = join(work, `nd-${mediaType.slice(-4)}.tar.gz`);
        await writeTarBundle(layout.files, file, { order: 'metadata-last', compression: 'gzip' });
        const ns = `nd-${mediaType.slice(-4).replace(/[^a-z]/g, '')}`;
        const r = await runCli(['push', '--source', file, '--private-registry', `http://${registry.host}/${ns}`, '--json']);
        assert.equal(r.code, 0, r.stderr + r.stdout);
        await assertImagesPushed(layout, ns);
        const [absent, present] = layout.images;
        assert.equal(await blobStatus(registry, repoOf(destPath(absent!.ref!, ns)), absent!.foreign!.digest), 404, 'the absent layer is left to its URLs');
        assert.equal(await blobStatus(registry, repoOf(destPath(present!.ref!, ns)), present!.foreign!.digest), 200, 'the present layer is pushed');
      });
    }
  });

  it('an artifact listed by digest alone (an SBOM with a subject) goes to its subject’s repository, by digest', async () => {
    const layout = await buildOciLayout({
      seed: 'referrers',
      images: [
        { ref: 'docker.io/library/busybox:1.36', platforms: [{ os: 'linux', arch: 'amd64' }, { os: 'linux', arch: 'arm64', variant: 'v8' }], layers: [{ files: 1 }], sbom: { sizeBytes: 3000, attach: 'referrer' } },
        { ref: 'gcr.io/team/app:2.0', layers: [{ files: 1 }], sbom: { sizeBytes: 2000, attach: 'referrer' } },
      ],
    });
    for (const order of ['metadata-first', 'metadata-last'] as const) {
      const file = join(work, `referrers-${order}.tar.xz`);
      await writeTarBundle(layout.files, file, { order, compression: 'xz' });
      const ns = `ref-${order}`;
      const r = await runCli(['push', '--source', file, '--private-registry', `http://${registry.host}/${ns}`, '--json']);
      assert.equal(r.code, 0, r.stderr + r.stdout);
      const out = JSON.parse(r.stdout) as Report;
      assert.equal(out.images.length, 4);
      await assertImagesPushed(layout, ns);
      for (const img of layout.images) {
        const ref = img.referrers[0]!;
        const repo = repoOf(destPath(img.ref!, ns));
        assert.equal(await skopeoInspectRawDigest(`docker://${registry.host}/${repo}@${ref.digest}`), ref.digest, `the SBOM of ${img.ref} is in ${repo}`);
        const reported = out.images.find((i) => i.digest === ref.digest);
        assert.equal(reported?.destination, `${registry.host}/${repo}@${ref.digest}`, 'pushed by digest, no tag');
        const manifest = JSON.parse((await skopeoInspectRaw(`docker://${registry.host}/${repo}@${ref.digest}`)).toString('utf8')) as { artifactType: string; subject: { digest: string } };
        assert.equal(manifest.artifactType, SPDX_JSON);
        assert.equal(manifest.subject.digest, img.digest);
        assert.equal(await blobStatus(registry, repo, ref.layer.digest), 200, 'the SBOM layer is there');
        // docker-registry has no referrers API: the SBOM is listed in its subject's fallback tag, as copy does.
        const fallback = JSON.parse((await skopeoInspectRaw(`docker://${registry.host}/${repo}:sha256-${img.digest.slice('sha256:'.length)}`)).toString('utf8')) as {
          manifests: { digest: string; artifactType?: string }[];
        };
        assert.deepEqual(
          fallback.manifests.map((m) => [m.digest, m.artifactType]),
          [[ref.digest, SPDX_JSON]],
          `the fallback tag of ${img.ref} lists its SBOM`,
        );
      }
    }
  });

  it('an artifact whose subject is not in the bundle still fails for lack of a name', async () => {
    const layout = await buildOciLayout({ seed: 'orphan', images: [{ ref: 'gcr.io/team/app:2.0', layers: [{ files: 1 }], sbom: { sizeBytes: 1000, attach: 'referrer' } }] });
    const index = JSON.parse(layout.files.get('index.json')!.toString('utf8')) as { manifests: unknown[] };
    index.manifests = index.manifests.slice(1); // the image's own entry is gone; its SBOM stays
    layout.files.set('index.json', Buffer.from(JSON.stringify(index)));
    const file = join(work, 'orphan.tar');
    await writeTarBundle(layout.files, file, { order: 'metadata-first', compression: 'none' });
    const r = await runCli(['push', '--source', file, '--private-registry', `http://${registry.host}/orphan`, '--json']);
    assert.equal(r.code, 3, r.stderr + r.stdout);
    const out = JSON.parse(r.stdout) as Report;
    assert.match(out.images[0]?.error ?? '', /has no image name/);
    // In the text summary the entry is named once (its cause starts with where it is) and the cause says what to do.
    const text = await runCli(['push', '--source', file, '--private-registry', `http://${registry.host}/orphan`]);
    assert.equal(text.code, 3, text.stderr + text.stdout);
    const failed = text.stdout.split('\n').filter((l) => l.startsWith('failed: '));
    assert.equal(failed.length, 1, text.stdout);
    assert.equal(failed[0]!.split('index.json manifests[').length, 2, `named once: ${failed[0]}`);
    assert.match(failed[0]!, /has no image name; name it in full: io\.containerd\.image\.name, or org\.opencontainers\.image\.ref\.name HOST\/REPO:TAG/);
  });

  describe('JSON layers (SBOMs) are blobs, not metadata', () => {
    const IMAGES = 70;
    const SBOM_BYTES = 4 * 1024 * 1024;
    let layout: BuiltLayout;
    before(async function () {
      this.timeout(120_000);
      layout = await buildOciLayout({
        seed: 'sboms',
        images: Array.from({ length: IMAGES }, (_, i) => ({
          ref: `registry.example.com/sbom/app-${i}:1.0`,
          layers: [{ files: 1, sizeBytes: 200 }],
          sbom: { sizeBytes: SBOM_BYTES, attach: 'referrer' as const },
        })),
      });
    });

    for (const order of ['metadata-first', 'metadata-last'] as const) {
      it(`${IMAGES} images, each with its own 4 MiB SBOM, push with the metadata ${order === 'metadata-first' ? 'first' : 'last'}, in bounded memory`, async () => {
        const file = join(work, `sboms-${order}.tar.gz`);
        await writeTarBundle(layout.files, file, { order, compression: 'gzip' });
        const ns = `sbom-${order}`;
        const r = await runMeasured(['push', '--source', file, '--private-registry', `http://${registry.host}/${ns}`, '--json']);
        assert.equal(r.code, 0, r.stderr.slice(-2000) + r.stdout.slice(0, 2000));
        const out = JSON.parse(r.stdout) as Report;
        assert.equal(out.images.filter((i) => i.status === 'pushed').length, IMAGES * 2, 'every image and its SBOM');
        for (const i of [0, IMAGES - 1]) {
          const img = layout.images[i]!;
          const repo = repoOf(destPath(img.ref!, ns));
          assert.equal(await skopeoInspectRawDigest(`docker://${registry.host}/${destPath(img.ref!, ns)}`), img.digest);
          assert.equal(await skopeoInspectRawDigest(`docker://${registry.host}/${repo}@${img.referrers[0]!.digest}`), img.referrers[0]!.digest);
          assert.equal(await blobDigestAt(registry, repo, img.referrers[0]!.layer.digest), img.referrers[0]!.layer.digest);
        }
        // Peak RSS of the node process (GNU time's %M), reported for the record and bounded: the SBOMs alone are
        // 280 MiB, more than the metadata limit of 256 MiB they once counted against.
        process.stdout.write(`      peak RSS ${order}: ${Math.round(r.maxRssKiB / 1024)} MiB\n`);
        assert.ok(r.maxRssKiB < 400 * 1024, `peak RSS ${r.maxRssKiB} KiB`);
      });
    }
  });

  it('into oci:DIR, each source index.json entry keeps its annotations, platform and artifactType; names are the full references', async () => {
    const layout = await buildOciLayout({
      seed: 'keep-entry',
      images: [
        { ref: 'gcr.io/keep/app:1.0', layers: [{ files: 1 }], annotations: { 'org.opencontainers.image.created': '2024-05-01T00:00:00Z', 'com.example.team': 'blue' }, sbom: { sizeBytes: 500, attach: 'referrer' } },
        { ref: 'quay.io/keep/app:1.0', layers: [{ files: 1, sizeBytes: 900 }] },
      ],
    });
    const index = JSON.parse(layout.files.get('index.json')!.toString('utf8')) as { manifests: Array<Record<string, unknown>> };
    index.manifests[0]!.platform = { os: 'linux', architecture: 'amd64' };
    layout.files.set('index.json', Buffer.from(JSON.stringify(index)));
    const file = join(work, 'keep-entry.tar');
    await writeTarBundle(layout.files, file, { order: 'metadata-last', compression: 'none' });
    const out = join(work, 'keep-entry-out');
    const r = await runCli(['push', '--source', file, '--private-registry', `oci:${out}`]);
    assert.equal(r.code, 0, r.stderr + r.stdout);
    const written = JSON.parse(await readFile(join(out, 'index.json'), 'utf8')) as {
      manifests: Array<{ digest: string; platform?: unknown; artifactType?: string; annotations: Record<string, string> }>;
    };
    const app = written.manifests.find((m) => m.digest === layout.images[0]!.digest)!;
    assert.deepEqual(app.annotations, {
      'org.opencontainers.image.created': '2024-05-01T00:00:00Z',
      'com.example.team': 'blue',
      'io.containerd.image.name': 'gcr.io/keep/app:1.0',
      'org.opencontainers.image.ref.name': 'gcr.io/keep/app:1.0',
    });
    assert.deepEqual(app.platform, { os: 'linux', architecture: 'amd64' });
    const sbom = written.manifests.find((m) => m.digest === layout.images[0]!.referrers[0]!.digest)!;
    assert.equal(sbom.artifactType, SPDX_JSON);
    assert.equal(sbom.annotations['org.opencontainers.image.ref.name'], undefined, 'by digest: no ref.name');
    // Two images that share the tag 1.0 are each found by skopeo under their full names.
    for (const img of layout.images) assert.equal(await skopeoInspectRawDigest(`oci:${out}:${img.ref!}`), img.digest);
  });

  describe('--platform', () => {
    const PLATFORMS = [
      { os: 'linux', arch: 'amd64' },
      { os: 'linux', arch: 'arm64', variant: 'v8' },
      { os: 'linux', arch: 'arm', variant: 'v7' },
    ];
    let layout: BuiltLayout;
    let file: string;
    before(async () => {
      layout = await buildOciLayout({
        seed: 'platforms',
        images: [
          { ref: 'docker.io/library/multi:1.0', platforms: PLATFORMS, layers: [{ files: 1 }] },
          { ref: 'gcr.io/single/amd:1.0', layers: [{ files: 1 }] },
          { ref: 'gcr.io/single/arm:1.0', platforms: [{ os: 'linux', arch: 'arm64', variant: 'v8' }], layers: [{ files: 1 }] },
        ],
      });
      file = join(work, 'platforms.tar.xz');
      await writeTarBundle(layout.files, file, { order: 'metadata-last', compression: 'xz' });
    });
    const multi = (): BuiltLayout['images'][number] => layout.images[0]!;
    const child = (arch: string): string => multi().manifests.find((m) => m.platform.arch === arch)!.digest;

    it('one platform: that manifest alone under the tag; a single-platform image of it passes, one of another fails naming its platform', async () => {
      const r = await runCli(['push', '--source', file, '--private-registry', `http://${registry.host}/p1`, '--platform', 'linux/arm64', '--json']);
      assert.equal(r.code, 7, r.stderr + r.stdout);
      const out = JSON.parse(r.stdout) as Report;
      assert.equal(await skopeoInspectRawDigest(`docker://${registry.host}/p1/library/multi:1.0`), child('arm64'), 'linux/arm64 is linux/arm64/v8');
      const m = out.images.find((i) => i.source.includes('multi'))!;
      assert.equal(m.digest, child('arm64'));
      assert.match(m.converted ?? '', /only linux\/arm64\/v8 of the index/);
      assert.equal(out.images.find((i) => i.source.includes('/arm:'))?.status, 'pushed');
      const amd = out.images.find((i) => i.source.includes('/amd:'))!;
      assert.equal(amd.status, 'failed');
      assert.match(amd.error ?? '', /is a linux\/amd64 image, not linux\/arm64/);
    });

    it('several platforms: a new index of just those under the tag, its digest changed and said so', async () => {
      const r = await runCli(['push', '--source', file, '--private-registry', `http://${registry.host}/p2`, '--platform', 'linux/amd64', '--platform', 'linux/arm/v7', '--json']);
      assert.equal(r.code, 7, r.stderr + r.stdout);
      const out = JSON.parse(r.stdout) as Report;
      const m = out.images.find((i) => i.source.includes('multi'))!;
      const raw = await skopeoInspectRaw(`docker://${registry.host}/p2/library/multi:1.0`);
      const pushed = JSON.parse(raw.toString('utf8')) as { mediaType: string; manifests: Array<{ digest: string }> };
      assert.equal(sha256Digest(raw), m.digest);
      assert.notEqual(m.digest, multi().digest);
      assert.deepEqual(pushed.manifests.map((c) => c.digest), [child('amd64'), child('arm')]);
      assert.equal(pushed.mediaType, MediaType.OCI_INDEX);
      assert.match(m.converted ?? '', /index rewritten to hold only linux\/amd64, linux\/arm\/v7.*its digest is sha256:/);
      for (const c of pushed.manifests) assert.equal(await skopeoInspectRawDigest(`docker://${registry.host}/p2/library/multi@${c.digest}`), c.digest);
      assert.match(out.images.find((i) => i.source.includes('/arm:'))?.error ?? '', /is a linux\/arm64\/v8 image, not linux\/amd64, linux\/arm\/v7/);
    });

    it('a platform no image has fails each image naming the platforms it has; no --platform pushes the index whole', async () => {
      const r = await runCli(['push', '--source', file, '--private-registry', `http://${registry.host}/p3`, '--platform', 'linux/s390x', '--json']);
      assert.equal(r.code, 3, r.stderr + r.stdout);
      const out = JSON.parse(r.stdout) as Report;
      assert.match(out.images.find((i) => i.source.includes('multi'))?.error ?? '', /has no linux\/s390x platform \(it has linux\/amd64, linux\/arm64\/v8, linux\/arm\/v7\)/);
      // As mirror copy: every platform asked for must be there; all of them is the index itself, digest kept.
      const some = await runCli(['push', '--source', file, '--private-registry', `http://${registry.host}/p3`, '--platform', 'linux/amd64', '--platform', 'linux/s390x', '--json']);
      assert.match((JSON.parse(some.stdout) as Report).images.find((i) => i.source.includes('multi'))?.error ?? '', /has no linux\/s390x platform/);
      const all = await runCli(['push', '--source', file, '--private-registry', `http://${registry.host}/p5`, '--platform', 'linux/amd64', '--platform', 'linux/arm64', '--platform', 'linux/arm', '--json']);
      const whole5 = (JSON.parse(all.stdout) as Report).images.find((i) => i.source.includes('multi'))!;
      assert.equal(whole5.digest, multi().digest);
      assert.equal(whole5.converted, undefined);
      assert.equal(await skopeoInspectRawDigest(`docker://${registry.host}/p5/library/multi:1.0`), multi().digest);
      const bad = await runCli(['push', '--source', file, '--private-registry', `http://${registry.host}/p3`, '--platform', 'linux']);
      assert.equal(bad.code, 2, bad.stderr);
      assertOneLineError(bad.stderr, 'OS/ARCH[/VARIANT]');
      const whole = await runCli(['push', '--source', file, '--private-registry', `http://${registry.host}/p4`]);
      assert.equal(whole.code, 0, whole.stderr);
      await assertImagesPushed(layout, 'p4');
    });
  });

  describe('content named by sha512', () => {
    it('is verified as sha512 and pushed with its digests (every blob read back and hashed)', async () => {
      const layout = await buildOciLayout({
        seed: 'sha512',
        blobDigest: 'sha512',
        images: [
          { ref: 'gcr.io/five-twelve/one:1.0', layers: [{ files: 2, sizeBytes: 3000 }, { files: 1 }] },
          { ref: 'gcr.io/five-twelve/multi:1.0', platforms: [{ os: 'linux', arch: 'amd64' }, { os: 'linux', arch: 'arm64', variant: 'v8' }], layers: [{ files: 1 }] },
        ],
      });
      assert.ok([...layout.files.keys()].some((k) => k.startsWith('blobs/sha512/')));
      for (const order of ['metadata-first', 'metadata-last'] as const) {
        const file = join(work, `sha512-${order}.tar.zst`);
        await writeTarBundle(layout.files, file, { order, compression: 'zstd' });
        const ns = `s512-${order}`;
        const r = await runCli(['push', '--source', file, '--private-registry', `http://${registry.host}/${ns}`]);
        assert.equal(r.code, 0, r.stderr + r.stdout);
        await assertImagesPushed(layout, ns);
        for (const img of layout.images) {
          const repo = repoOf(destPath(img.ref!, ns));
          for (const m of img.manifests) {
            assert.equal(await skopeoInspectRawDigest(`docker://${registry.host}/${repo}@${m.digest}`), m.digest);
            for (const b of [m.config, ...m.layers]) {
              assert.match(b.digest, /^sha512:/);
              assert.equal(await blobDigestAt(registry, repo, b.digest), b.digest, `${repo} serves ${b.digest} with those bytes`);
            }
          }
        }
      }
    });

    it('a sha512 blob whose bytes do not match is refused, and its image only', async () => {
      const layout = await buildOciLayout({
        seed: 'sha512-bad',
        blobDigest: 'sha512',
        images: [
          { ref: 'gcr.io/five-twelve/good:1.0', layers: [{ files: 1 }] },
          { ref: 'gcr.io/five-twelve/bad:1.0', layers: [{ files: 1, sizeBytes: 3000 }] },
        ],
      });
      const badLayer = layout.images[1]!.manifests[0]!.layers[0]!;
      const path = `blobs/sha512/${badLayer.digest.slice('sha512:'.length)}`;
      const bytes = Buffer.from(layout.files.get(path)!);
      bytes[bytes.byteLength >> 1] = (bytes[bytes.byteLength >> 1] ?? 0) ^ 0xff;
      layout.files.set(path, bytes);
      const badConfig = layout.images[1]!.manifests[0]!.config.digest;
      const cpath = `blobs/sha512/${badConfig.slice('sha512:'.length)}`;
      layout.files.set(cpath, Buffer.from(layout.files.get(cpath)!.toString('utf8').replace('"amd64"', '"AMD64"')));
      for (const order of ['metadata-first', 'metadata-last'] as const) {
        const file = join(work, `sha512-bad-${order}.tar`);
        await writeTarBundle(layout.files, file, { order, compression: 'none' });
        const r = await runCli(['push', '--source', file, '--private-registry', `http://${registry.host}/s512bad-${order}`, '--json']);
        assert.equal(r.code, 7, r.stderr + r.stdout);
        const out = JSON.parse(r.stdout) as Report;
        const good = out.images.find((i) => i.source.includes('/good:'));
        const bad = out.images.find((i) => i.source.includes('/bad:'));
        assert.equal(good?.status, 'pushed');
        assert.equal(bad?.status, 'failed');
        assert.match(bad?.error ?? '', /sha512:[0-9a-f]{128}.*does not match/);
      }
    });
  });

  describe('archives of particular tool versions', () => {
    /** manifestOf reads back what a reference holds (skopeo) and parses it. */
    async function manifestOf(ref: string): Promise<{ config: { digest: string }; layers: Array<{ digest: string; mediaType: string }> }> {
      return JSON.parse((await skopeoInspectRaw(`docker://${registry.host}/${ref}`)).toString('utf8')) as {
        config: { digest: string };
        layers: Array<{ digest: string; mediaType: string }>;
      };
    }

    it('Docker 25.0.0 docker save (OCI manifests without their layers): refused by name, nothing tagged; its manifest.json copies whole', async () => {
      const built = await buildDockerSave({ seed: 'd2500', images: [{ refs: ['example.com/lab/app:1.0'], layers: [{ files: 2 }, { files: 1 }] }] });
      const file = join(work, 'docker2500.tar');
      await writeOrderedTar(docker2500Save(built), file, 'none');
      const r = await runCli(['push', '--source', file, '--private-registry', `http://${registry.host}/d2500`, '--json']);
      assert.equal(r.code, 3, r.stderr + r.stdout);
      const out = JSON.parse(r.stdout) as Report;
      assert.equal(out.images[0]?.status, 'failed');
      assert.match(out.images[0]?.error ?? '', /lists 0 layer\(s\) where its config sha256:[0-9a-f]{64} lists 2 \(rootfs\.diff_ids\)/);
      assert.match(out.images[0]?.error ?? '', new RegExp(`mirror copy docker-archive:${file}:IMAGE`));
      await assert.rejects(skopeoInspectRaw(`docker://${registry.host}/d2500/lab/app:1.0`), 'nothing is tagged');
      // Read as an OCI archive by copy, the same.
      const o = await runCli(['copy', `oci-archive:${file}:example.com/lab/app:1.0`, `docker://${registry.host}/d2500o/lab/app:1.0`, '--dest-tls-verify=false']);
      assert.equal(o.code, 3, o.stderr + o.stdout);
      assert.match(o.stderr, /^failed: oci-archive:.*lists 0 layer\(s\) where its config .* lists 2 .*docker-archive:FILE\)$/m);
      await assert.rejects(skopeoInspectRaw(`docker://${registry.host}/d2500o/lab/app:1.0`), 'nothing is tagged');
      // The fix the message gives: the archive read by its manifest.json has both layers.
      const c = await runCli(['copy', `docker-archive:${file}:example.com/lab/app:1.0`, `docker://${registry.host}/d2500c/lab/app:1.0`, '--dest-tls-verify=false']);
      assert.equal(c.code, 0, c.stderr + c.stdout);
      const m = await manifestOf('d2500c/lab/app:1.0');
      assert.equal(m.config.digest, built.images[0]!.configDigest);
      assert.equal(m.layers.length, 2);
    });

    it('a Docker 25.0.1+ docker save (the same layout, manifests whole) pushes with its digests kept', async () => {
      const built = await buildDockerSave({ seed: 'd2501', images: [{ refs: ['example.com/lab/app:1.0'], layers: [{ files: 2 }, { files: 1 }] }] });
      const file = join(work, 'docker2501.tar');
      const files = docker2500Save(built, { broken: false });
      await writeOrderedTar(files, file, 'none');
      const r = await runCli(['push', '--source', file, '--private-registry', `http://${registry.host}/d2501`]);
      assert.equal(r.code, 0, r.stderr + r.stdout);
      const m = await manifestOf('d2501/lab/app:1.0');
      assert.deepEqual(
        m.layers.map((l) => l.digest),
        built.images[0]!.diffIds,
      );
    });

    it('a docker save archive naming its config or a layer as no tool does, before manifest.json: refused by name with the fix', async () => {
      const built = await buildDockerSave({ seed: 'odd-names', layerPaths: 'flat', images: [{ refs: ['example.com/lab/odd:1'], layers: [{ files: 1 }] }] });
      const img = built.images[0]!;
      const config = built.files.get(img.configPath)!;
      const layer = built.files.get(img.layerPaths[0]!)!;
      for (const [what, configName, layerName] of [['config', 'image-config', img.layerPaths[0]!], ['layer', img.configPath, 'layer-0.bin']] as const) {
        const file = join(work, `odd-${what}.tar`);
        const manifestJson = Buffer.from(JSON.stringify([{ Config: configName, RepoTags: img.refs, Layers: [layerName] }]));
        await writeOrderedTar([[configName, config], [layerName, layer], ['manifest.json', manifestJson]], file, 'none');
        const r = await runCli(['push', '--source', file, '--private-registry', `http://${registry.host}/odd`, '--json']);
        assert.equal(r.code, 3, r.stderr + r.stdout);
        const out = JSON.parse(r.stdout) as Report;
        const name = what === 'config' ? configName : layerName;
        assert.equal(
          out.images[0]?.error,
          `${what} ${name} of example.com/lab/odd:1 came before manifest.json under a name not known as a ${what} (the archive is read once, front to back: put manifest.json first, or read it with mirror copy docker-archive:${file}:IMAGE)`,
        );
        // The fix it gives works.
        const c = await runCli(['copy', `docker-archive:${file}:example.com/lab/odd:1`, `docker://${registry.host}/odd-copied/${what}:1`, '--dest-tls-verify=false']);
        assert.equal(c.code, 0, c.stderr + c.stdout);
      }
    });

    for (const configAsJson of [false, true]) {
      it(`crane pull tarball (config named ${configAsJson ? '<hex>.json' : 'sha256:<hex>'}, gzip layers <hex>.tar.gz, manifest.json last) pushes, config and layer digests kept`, async () => {
        const built = await buildDockerSave({
          seed: `crane-${configAsJson}`,
          images: [
            { refs: ['index.docker.io/library/app:1.0'], layers: [{ files: 2 }, { files: 1 }] },
            { refs: ['gcr.io/lab/tool:2'], layers: [{ files: 1 }], sharedBaseWith: 'index.docker.io/library/app:1.0' },
          ],
        });
        const files = craneTarball(built, { configAsJson });
        const file = join(work, `crane-${configAsJson}.tar`);
        await writeOrderedTar(files, file, 'none');
        const ns = `crane${configAsJson ? 'j' : ''}`;
        const r = await runCli(['push', '--source', file, '--private-registry', `http://${registry.host}/${ns}`]);
        assert.equal(r.code, 0, r.stderr + r.stdout);
        const gzNames = new Set(files.map(([n]) => n).filter((n) => n.endsWith('.tar.gz')));
        for (const [i, repo] of ['library/app:1.0', 'lab/tool:2'].entries()) {
          const m = await manifestOf(`${ns}/${repo}`);
          assert.equal(m.config.digest, built.images[i]!.configDigest, repo);
          assert.equal(m.layers.length, built.images[i]!.layerPaths.length, repo);
          for (const l of m.layers) assert.ok(gzNames.has(`${l.digest.slice('sha256:'.length)}.tar.gz`), `${repo}: ${l.digest} is one of the archive's gzip layers`);
        }
      });
    }
  });

  describe('an archive appended to with a second index.json (tar -r)', () => {
    const indexOf = (entry: Record<string, unknown>): Buffer => Buffer.from(JSON.stringify({ schemaVersion: 2, mediaType: MediaType.OCI_INDEX, manifests: [entry] }));

    it('the last index.json counts, as tar x keeps it: a blob that went by as unneeded is read again', async () => {
      const a = tinyImage('appended-a');
      const b = tinyImage('appended-b');
      const file = join(work, 'appended.tar');
      await writeOrderedTar(
        [blobEntry(a.layer), blobEntry(a.config), blobEntry(a.manifest), ['index.json', indexOf(a.entry('example.com/lab/app:1.0'))], blobEntry(b.layer), blobEntry(b.config), blobEntry(b.manifest), ['index.json', indexOf(b.entry('example.com/lab/app:1.0'))]],
        file,
        'none',
      );
      const r = await runCli(['push', '--source', file, '--private-registry', `http://${registry.host}/appended`]);
      assert.equal(r.code, 0, r.stderr + r.stdout);
      assert.match(r.stderr, /reading the bundle again for 1 blob/);
      assert.equal(await skopeoInspectRawDigest(`docker://${registry.host}/appended/lab/app:1.0`), b.descriptor.digest);
      assert.equal(await blobDigestAt(registry, 'appended/lab/app', sha256Digest(b.layer)), sha256Digest(b.layer));
    });

    it('a blob the last index.json needs that the archive lacks is named missing after one re-read', async () => {
      const a = tinyImage('appended-c');
      const b = tinyImage('appended-d');
      const file = join(work, 'appended-missing.tar');
      await writeOrderedTar([blobEntry(a.layer), blobEntry(a.config), blobEntry(a.manifest), ['index.json', indexOf(a.entry('example.com/lab/app:2.0'))], blobEntry(b.config), blobEntry(b.manifest), ['index.json', indexOf(b.entry('example.com/lab/app:2.0'))]], file, 'none');
      const r = await runCli(['push', '--source', file, '--private-registry', `http://${registry.host}/appended`, '--json']);
      assert.equal(r.code, 3, r.stderr + r.stdout);
      const out = JSON.parse(r.stdout) as Report;
      assert.equal(out.images[0]?.status, 'failed');
      assert.equal(out.images[0]?.error, `blob ${sha256Digest(b.layer)} is missing from the bundle`);
      await assert.rejects(skopeoInspectRaw(`docker://${registry.host}/appended/lab/app:2.0`), 'nothing is tagged');
    });
  });

  it('a blob stored as a link to another entry (symbolic or hard) is named with the fix; nothing tagged', async () => {
    const img = tinyImage('linked');
    const layer = sha256Digest(img.layer);
    for (const type of ['symlink', 'link'] as const) {
      const file = join(work, `linked-${type}.tar`);
      const index = Buffer.from(JSON.stringify({ schemaVersion: 2, mediaType: MediaType.OCI_INDEX, manifests: [img.entry(`example.com/lab/linked:${type}`)] }));
      const blob = (b: Buffer): { name: string; data: Buffer } => ({ name: `blobs/sha256/${sha256Digest(b).slice(7)}`, data: b });
      await writeRawTar(
        [
          { name: 'data/real-layer', data: img.layer },
          { name: `blobs/sha256/${layer.slice(7)}`, type, linkname: type === 'symlink' ? '../../data/real-layer' : 'data/real-layer' },
          blob(img.config),
          blob(img.manifest),
          { name: 'index.json', data: index },
          { name: 'oci-layout', data: '{"imageLayoutVersion":"1.0.0"}' },
        ],
        file,
      );
      const r = await runCli(['push', '--source', file, '--private-registry', `http://${registry.host}/linked`, '--json']);
      assert.equal(r.code, 3, r.stderr + r.stdout);
      const out = JSON.parse(r.stdout) as Report;
      assert.equal(out.images[0]?.error, `blob ${layer} in ${file} is a link to "data/real-layer", not its bytes; make the archive with the links followed (GNU tar: --dereference --hard-dereference)`);
      await assert.rejects(skopeoInspectRaw(`docker://${registry.host}/linked/lab/linked:${type}`), 'nothing is tagged');
    }
  });

  describe('layouts not at the top of the archive', () => {
    it('a tar whose OCI layout sits in a subfolder gets a one-line message naming the folder, the expectation and the fix', async () => {
      const layout = await buildOciLayout({ seed: 'sub', images: [{ ref: 'gcr.io/sub/app:1.0', layers: [{ files: 1 }] }] });
      const nested = new Map([...layout.files].map(([k, v]) => [`mylayout/${k}`, v]));
      for (const order of ['metadata-first', 'metadata-last'] as const) {
        const file = join(work, `sub-${order}.tar.gz`);
        await writeTarBundle(nested, file, { order, compression: 'gzip' });
        const proxy = await startFaultProxy({ upstream: registry.url });
        try {
          const r = await runCli(['push', '--source', file, '--private-registry', `http://${proxy.host}/sub`]);
          assert.equal(r.code, 3, r.stderr + r.stdout);
          const line = assertOneLineError(r.stderr, 'mylayout/', 'index.json', 'tar -C');
          assert.ok(line.length < 300, line);
          assert.deepEqual(
            proxy.requests.filter((q) => q.path.includes('/blobs/')),
            [],
            'nothing was uploaded',
          );
        } finally {
          await proxy.stop();
        }
      }
    });

    it('a directory whose OCI layout sits in a subfolder says which --source to give', async () => {
      const layout = await buildOciLayout({ seed: 'subdir', images: [{ ref: 'gcr.io/sub/app:1.0', layers: [{ files: 1 }] }] });
      const dir = join(work, 'parent');
      await writeDirectory(layout.files, join(dir, 'inner'));
      const r = await runCli(['push', '--source', dir, '--private-registry', `http://${registry.host}/subdir`]);
      assert.equal(r.code, 3, r.stderr + r.stdout);
      assertOneLineError(r.stderr, 'inner/', `--source ${join(dir, 'inner')}`);
    });
  });
});
