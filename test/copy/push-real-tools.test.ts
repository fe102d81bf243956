/**
 * Bundles written by the real tools, from our own fixtures (there is no network): skopeo (`oci:` layouts with
 * docker-style ref names), podman with the vfs driver and its own root (`save` as oci-archive, docker-archive and
 * docker-dir), containerd's `ctr export` against a containerd this test starts, `zstd --long=31`, and umoci reading
 * what `mirror push` writes into `oci:DIR`. Each is pushed into the real docker-registry and read back with skopeo.
 */
import assert from 'node:assert/strict';
import { mkdir, mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { findProgram } from '../../src/archive/decompress.js';
import { sha256Digest } from '../../src/oci/digest.js';
import { MediaType } from '../../src/oci/media-types.js';
import { buildOciLayout, type BuiltLayout, DEMO_SPEC, writeDirectory } from '../../testdata/make-fixtures.js';
import { assertOneLineError, runCli } from '../helpers/cli.js';
import { startContainerd, type TestContainerd } from '../helpers/containerd.js';
import { run } from '../helpers/proc.js';
import { startRegistry, type TestRegistry } from '../helpers/registry.js';
import { skopeoInspectRaw, skopeoInspectRawDigest } from '../helpers/skopeo.js';

/** TOOL_TIMEOUT_MS bounds one run of a real tool. */
const TOOL_TIMEOUT_MS = 120_000;

interface Report {
  images: Array<{ source: string; destination: string; digest: string; status: string; error?: string; converted?: string; children: Array<{ digest: string }> }>;
}

/** sh runs a shell command (bounded) in `cwd`. */
function sh(command: string, cwd: string): Promise<string> {
  return run('bash', ['-c', command], { cwd, timeoutMs: TOOL_TIMEOUT_MS });
}

/** requireTools skips the test when a tool is missing (CI installs them all: .ci/install-deps.sh). */
function requireTools(ctx: Mocha.Context, ...names: string[]): void {
  for (const n of names) if (findProgram(n) === undefined) ctx.skip();
}

describe('mirror push: bundles written by real tools (skopeo, podman, ctr, zstd, umoci)', function () {
  this.timeout(300_000);
  let registry: TestRegistry;
  let work: string;
  let demo: BuiltLayout;
  /** The demo layout as a directory: the start images every tool reads. */
  let fixture: string;

  before(async () => {
    registry = await startRegistry();
    work = await mkdtemp(join(tmpdir(), 'mirror-tools-'));
    demo = await buildOciLayout(DEMO_SPEC);
    fixture = join(work, 'fixture');
    await writeDirectory(demo.files, fixture);
  });
  after(async () => {
    await registry?.stop();
    if (work) await rm(work, { recursive: true, force: true });
  });

  const image = (ref: string): BuiltLayout['images'][number] => demo.images.find((i) => i.ref === ref)!;
  const NAUTILUS = 'gcr.io/kubernetes-e2e-test-images/nautilus:1.0';
  const BUSYBOX = 'docker.io/library/busybox:1.36';

  async function push(source: string, ns: string, extra: string[] = []): Promise<{ code: number | null; report: Report; stderr: string; stdout: string }> {
    const r = await runCli(['push', '--source', source, '--private-registry', `http://${registry.host}/${ns}`, '--json', ...extra], {
      env: { XDG_CACHE_HOME: join(work, 'cache') },
    });
    let report: Report = { images: [] };
    try {
      report = JSON.parse(r.stdout) as Report;
    } catch {
      /* an error before the report */
    }
    return { code: r.code, report, stderr: r.stderr, stdout: r.stdout };
  }

  const inspectDigest = (ref: string): Promise<string> => skopeoInspectRawDigest(`docker://${registry.host}/${ref}`);

  it('zstd --long=31: a bundle compressed with a 2 GiB window pushes, digests unchanged', async function () {
    requireTools(this, 'zstd');
    const file = join(work, 'long.tar.zst');
    await sh(`tar -C ${JSON.stringify(fixture)} -cf - . | zstd -q --long=31 -T0 -c > ${JSON.stringify(file)}`, work);
    // The stream declares a window plain `zstd -d` refuses.
    await assert.rejects(sh(`zstd -dc ${JSON.stringify(file)} > /dev/null`, work), /Frame requires too much memory|Window size larger than maximum/);
    const r = await push(file, 'zlong');
    assert.equal(r.code, 0, r.stderr + r.stdout);
    for (const img of demo.images) assert.equal(await inspectDigest(`zlong/${img.ref!.slice(img.ref!.indexOf('/') + 1)}`), img.digest);
  });

  it('skopeo: ref names busybox:latest and lab/app:1.1 are normalized like RepoTags (docker.io/library/..., docker.io/lab/...)', async function () {
    requireTools(this, 'skopeo');
    const layout = join(work, 'skopeo-layout');
    await run('skopeo', ['copy', '--all', '--preserve-digests', `oci:${fixture}:1.36`, `oci:${layout}:busybox:latest`], { timeoutMs: TOOL_TIMEOUT_MS });
    await run('skopeo', ['copy', '--preserve-digests', `oci:${fixture}:1.0`, `oci:${layout}:lab/app:1.1`], { timeoutMs: TOOL_TIMEOUT_MS });
    const index = JSON.parse(await readFile(join(layout, 'index.json'), 'utf8')) as { manifests: Array<{ annotations?: Record<string, string> }> };
    assert.deepEqual(
      index.manifests.map((m) => m.annotations?.['org.opencontainers.image.ref.name']),
      ['busybox:latest', 'lab/app:1.1'],
      'what skopeo writes',
    );
    const file = join(work, 'skopeo.tar.gz');
    await sh(`tar -C ${JSON.stringify(layout)} -czf ${JSON.stringify(file)} .`, work);
    const r = await push(file, 'sk');
    assert.equal(r.code, 0, r.stderr + r.stdout);
    assert.deepEqual(r.report.images.map((i) => i.source).sort(), ['docker.io/lab/app:1.1', 'docker.io/library/busybox:latest']);
    assert.equal(await inspectDigest('sk/library/busybox:latest'), image(BUSYBOX).digest);
    assert.equal(await inspectDigest('sk/lab/app:1.1'), image(NAUTILUS).digest);
  });

  describe('podman (vfs storage in a temporary root)', () => {
    let root: string;
    let podman: (args: string[]) => Promise<string>;
    let storage: string;

    before(async function () {
      requireTools(this, 'podman', 'skopeo');
      root = join(work, 'podman');
      await mkdir(root, { recursive: true });
      const global = ['--root', join(root, 'root'), '--runroot', join(root, 'run'), '--tmpdir', join(root, 'tmp'), '--storage-driver', 'vfs', '--cgroup-manager', 'cgroupfs', '--events-backend', 'none'];
      podman = (args) => run('podman', [...global, ...args], { timeoutMs: TOOL_TIMEOUT_MS });
      storage = `containers-storage:[vfs@${join(root, 'root')}+${join(root, 'run')}]`;
      // The start images come from our fixture: busybox (amd64 of the index) and nautilus under a second name.
      await run('skopeo', ['copy', `oci:${fixture}:1.36`, `${storage}docker.io/library/busybox:latest`], { timeoutMs: TOOL_TIMEOUT_MS });
      await run('skopeo', ['copy', `oci:${fixture}:1.0`, `${storage}docker.io/lab/app:1.1`], { timeoutMs: TOOL_TIMEOUT_MS });
    });

    it('podman save --format oci-archive pushes with the digest it wrote', async () => {
      const file = join(work, 'podman-oci.tar');
      await podman(['save', '--format', 'oci-archive', '-o', file, 'docker.io/lab/app:1.1']);
      const digest = sha256Digest(await skopeoInspectRaw(`oci-archive:${file}`));
      const r = await push(file, 'pod-oci');
      assert.equal(r.code, 0, r.stderr + r.stdout);
      assert.equal(r.report.images[0]?.source, 'docker.io/lab/app:1.1');
      assert.equal(await inspectDigest('pod-oci/lab/app:1.1'), digest);
    });

    it('podman save -m --format docker-archive (docker save format) pushes with the config digests kept', async () => {
      const file = join(work, 'podman-docker.tar');
      await podman(['save', '-m', '--format', 'docker-archive', '-o', file, 'docker.io/library/busybox:latest', 'docker.io/lab/app:1.1']);
      const r = await push(file, 'pod-ds');
      assert.equal(r.code, 0, r.stderr + r.stdout);
      const amd64 = image(BUSYBOX).manifests.find((m) => m.platform.arch === 'amd64')!;
      for (const [ref, config] of [
        ['pod-ds/library/busybox:latest', amd64.config.digest],
        ['pod-ds/lab/app:1.1', image(NAUTILUS).manifests[0]!.config.digest],
      ] as const) {
        const manifest = JSON.parse((await skopeoInspectRaw(`docker://${registry.host}/${ref}`)).toString('utf8')) as { config: { digest: string } };
        assert.equal(manifest.config.digest, config, `${ref}: config digest kept`);
      }
    });

    it('docker save input written to oci:DIR is an OCI layout that skopeo and umoci read (OCI types, full ref names, converted note)', async function () {
      requireTools(this, 'umoci');
      const file = join(work, 'podman-docker-2.tar');
      await podman(['save', '-m', '--format', 'docker-archive', '-o', file, 'docker.io/library/busybox:latest', 'docker.io/lab/app:1.1']);
      const out = join(work, 'ds-layout');
      const r = await runCli(['push', '--source', file, '--private-registry', `oci:${out}`, '--json'], { env: { XDG_CACHE_HOME: join(work, 'cache') } });
      assert.equal(r.code, 0, r.stderr + r.stdout);
      const report = JSON.parse(r.stdout) as Report;
      for (const i of report.images) assert.match(i.converted ?? '', /OCI manifest \(OCI media types/, 'the report says the manifest was converted');
      const index = JSON.parse(await readFile(join(out, 'index.json'), 'utf8')) as {
        manifests: Array<{ mediaType: string; digest: string; platform?: { os: string; architecture: string }; annotations: Record<string, string> }>;
      };
      const names = index.manifests.map((m) => m.annotations['org.opencontainers.image.ref.name']).sort();
      assert.deepEqual(names, ['docker.io/lab/app:1.1', 'docker.io/library/busybox:latest']);
      for (const m of index.manifests) {
        assert.equal(m.mediaType, MediaType.OCI_MANIFEST);
        assert.deepEqual(m.platform, { os: 'linux', architecture: 'amd64' }, 'the platform the config states');
        const ref = m.annotations['org.opencontainers.image.ref.name']!;
        const raw = await skopeoInspectRaw(`oci:${out}:${ref}`);
        assert.equal(sha256Digest(raw), m.digest, `skopeo finds ${ref}`);
        const manifest = JSON.parse(raw.toString('utf8')) as { mediaType: string; config: { mediaType: string }; layers: Array<{ mediaType: string }> };
        assert.equal(manifest.mediaType, MediaType.OCI_MANIFEST);
        assert.equal(manifest.config.mediaType, MediaType.OCI_CONFIG);
        assert.ok(manifest.layers.every((l) => l.mediaType === MediaType.OCI_LAYER_GZIP), JSON.stringify(manifest.layers));
        const stat = await run('umoci', ['stat', '--image', `${out}:${ref}`], { timeoutMs: TOOL_TIMEOUT_MS });
        assert.match(stat, /LAYER/);
      }
      const listed = (await run('umoci', ['ls', '--layout', out], { timeoutMs: TOOL_TIMEOUT_MS })).trim().split('\n').sort();
      assert.deepEqual(listed, ['docker.io/lab/app:1.1', 'docker.io/library/busybox:latest']);
      // skopeo copies each image out of the layout, checking every blob.
      await run('skopeo', ['copy', `oci:${out}:docker.io/lab/app:1.1`, `oci:${join(work, 'ds-layout-copy')}:x`], { timeoutMs: TOOL_TIMEOUT_MS });
    });

    it('podman save --format docker-dir (a directory, or a tar of it) is named for what it is, in one line', async () => {
      const dir = join(work, 'podman-dir');
      await podman(['save', '--format', 'docker-dir', '-o', dir, 'docker.io/lab/app:1.1']);
      const tar = join(work, 'podman-dir.tar');
      await sh(`tar -C ${JSON.stringify(dir)} -cf ${JSON.stringify(tar)} .`, work);
      for (const source of [dir, tar]) {
        const r = await runCli(['push', '--source', source, '--private-registry', `http://${registry.host}/pod-dir`]);
        assert.equal(r.code, 3, r.stderr + r.stdout);
        assertOneLineError(r.stderr, source, '"dir:" image', 'podman save --format oci-archive');
      }
    });
  });

  describe('ctr export (a containerd started by this test)', () => {
    let containerd: TestContainerd | undefined;
    let exported: string;

    before(async function () {
      requireTools(this, 'containerd', 'ctr');
      containerd = await startContainerd();
      const tar = join(work, 'fixture-oci.tar');
      await sh(`tar -C ${JSON.stringify(fixture)} -cf ${JSON.stringify(tar)} .`, work);
      await containerd.ctr(['images', 'import', '--all-platforms', '--no-unpack', tar]);
      exported = join(work, 'ctr-amd64.tar');
      // Without --all-platforms: the whole index, and only this machine's platform's content.
      await containerd.ctr(['images', 'export', '--platform', 'linux/amd64', exported, BUSYBOX]);
    });
    after(async () => {
      await containerd?.stop();
    });

    it('an export without all platforms says which platforms are missing and what to do', async () => {
      const r = await push(exported, 'ctr-part');
      assert.equal(r.code, 3, r.stderr + r.stdout);
      const error = r.report.images[0]?.error ?? '';
      assert.match(error, /^the bundle lacks 1 of the 2 platform manifests of docker\.io\/\S+ \(linux\/arm64\/v8\)/);
      assert.doesNotMatch(error, /sha256:/, 'no digest after the --platform fix, where it would read as that platform\'s');
      assert.match(error, /ctr export --all-platforms/);
      assert.match(error, /--platform linux\/amd64/);
    });

    it('... and pushes what it has with --platform linux/amd64 (that manifest alone under the tag)', async () => {
      const r = await push(exported, 'ctr-amd64', ['--platform', 'linux/amd64']);
      assert.equal(r.code, 0, r.stderr + r.stdout);
      const amd64 = image(BUSYBOX).manifests.find((m) => m.platform.arch === 'amd64')!;
      assert.equal(await inspectDigest('ctr-amd64/library/busybox:1.36'), amd64.digest);
      assert.match(r.report.images[0]?.converted ?? '', /only linux\/amd64 of the index/);
    });

    it('ctr export --all-platforms pushes the index whole, its digest kept', async () => {
      const file = join(work, 'ctr-all.tar');
      await containerd!.ctr(['images', 'export', '--all-platforms', file, BUSYBOX, NAUTILUS]);
      const r = await push(file, 'ctr-all');
      assert.equal(r.code, 0, r.stderr + r.stdout);
      assert.equal(await inspectDigest('ctr-all/library/busybox:1.36'), image(BUSYBOX).digest);
      assert.equal(await inspectDigest('ctr-all/kubernetes-e2e-test-images/nautilus:1.0'), image(NAUTILUS).digest);
    });
  });
});
