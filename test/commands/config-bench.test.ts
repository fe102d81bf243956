/**
 * Acceptance on the bench OCI bundle (../shared/bench/make-bench-bundles.sh; 24 images of registry.example.com,
 * docker.io and quay.io, 162 MiB xz): pushed by `mirror push` into a namespace, then every image pulled by its
 * original name through containerd (ctr --hosts-dir), skopeo and podman with the files `mirror config` wrote, behind
 * a recording proxy that refuses everything; with --no-fallback nothing reaches the original hosts; the files are
 * byte-for-byte the same on a second run. It needs the bundle, so it runs only when MIRROR_BENCH_BUNDLE names it:
 *
 *   MIRROR_BENCH_BUNDLE=.bench/bundles/oci-metadata-last.tar.xz npx mocha --no-config --timeout 0 --exit dist/test/commands/config-bench.test.js
 */
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { runCli } from '../helpers/cli.js';
import { startConnectProxy, type ConnectProxy } from '../helpers/connect-proxy.js';
import { stopAll } from '../helpers/proc.js';
import { startRegistry, type TestRegistry } from '../helpers/registry.js';
import { type Containerd, isRoot, makePodman, type Podman, proxyEnv, skopeo, startContainerd } from '../mirrorconfig/consumers.js';
import { listFiles } from '../helpers/files.js';

const BUNDLE = process.env.MIRROR_BENCH_BUNDLE;


describe('mirror config acceptance on the bench bundle (MIRROR_BENCH_BUNDLE)', function () {
  this.timeout(1_800_000);
  let work: string;
  let registry: TestRegistry;
  let proxy: ConnectProxy;
  let containerd: Containerd | undefined;
  let podman: Podman | undefined;
  let report: string;
  let images: Array<{ source: string; digest: string }>;
  const figures: string[] = [];

  before(async function () {
    if (BUNDLE === undefined || !isRoot()) this.skip();
    work = await mkdtemp(join(tmpdir(), 'mirror-config-bench-'));
    registry = await startRegistry();
    report = join(work, 'push.json');
    const started = Date.now();
    const p = await runCli(['push', '-s', BUNDLE!, '-r', `http://${registry.host}/bench-ns`, '--report', report], { timeoutMs: 900_000 });
    assert.equal(p.code, 0, p.stderr);
    figures.push(`push: ${p.stdout.split('\n')[0]} in ${((Date.now() - started) / 1000).toFixed(1)} s`);
    images = (JSON.parse(await readFile(report, 'utf8')) as { images: Array<{ source: string; digest: string; status: string }> }).images.filter((i) => i.status === 'pushed');
    proxy = await startConnectProxy();
    containerd = await startContainerd();
    podman = await makePodman();
  });

  after(async () => {
    await containerd?.stop();
    await podman?.cleanup();
    await proxy?.stop();
    await registry?.stop();
    await stopAll();
    if (work) await rm(work, { recursive: true, force: true });
    if (figures.length > 0) process.stdout.write(`\n  figures:\n${figures.map((f) => `    ${f}`).join('\n')}\n`);
  });

  beforeEach(() => proxy?.reset());

  const attempted = (): string[] => [...new Set(proxy.log.map((e) => e.target))];

  async function config(dir: string, ...args: string[]): Promise<string> {
    const out = join(work, dir);
    const r = await runCli(['config', ...args, '--from-report', report, '--output', out]);
    assert.equal(r.code, 0, r.stderr);
    return out;
  }

  for (const fallback of [true, false]) {
    const flag = fallback ? [] : ['--no-fallback'];
    const label = fallback ? 'fallback kept' : '--no-fallback';

    it(`containerd pulls every image by its original name (${label}); nothing reaches the original hosts`, async () => {
      const out = await config(`containerd-${fallback}`, 'containerd', ...flag);
      const held = await containerd!.ctr(['images', 'ls', '-q']);
      if (held.stdout.trim()) await containerd!.ctr(['images', 'rm', ...held.stdout.trim().split('\n')]);
      const started = Date.now();
      let ok = 0;
      for (const i of images) {
        const r = await containerd!.ctr(['images', 'pull', '--hosts-dir', join(out, 'certs.d'), i.source], proxyEnv(proxy.url));
        assert.equal(r.code, 0, `${i.source}: ${r.stderr}`);
        ok++;
      }
      const ls = await containerd!.ctr(['images', 'ls']);
      for (const i of images) assert.ok(ls.stdout.split('\n').some((l) => l.startsWith(`${i.source} `) && l.includes(i.digest)), `${i.source} ${i.digest}`);
      assert.deepEqual(attempted(), []);
      const missing = await containerd!.ctr(['images', 'pull', '--hosts-dir', join(out, 'certs.d'), 'registry.example.com/platform/not-mirrored:1'], proxyEnv(proxy.url));
      assert.notEqual(missing.code, 0);
      assert.deepEqual(attempted(), fallback ? ['registry.example.com:443'] : []);
      figures.push(`containerd (${label}): ${ok}/${images.length} images pulled by original name in ${((Date.now() - started) / 1000).toFixed(1)} s; original hosts asked for mirrored images: 0; for a missing image: ${attempted().join(', ') || 'none'}`);
    });

    it(`skopeo and podman pull every image by its original name (${label}); nothing reaches the original hosts`, async () => {
      const out = await config(`crio-${fallback}`, 'cri-o', ...flag);
      const conf = join(out, 'registries.conf.d', '50-mirror.conf');
      let okSkopeo = 0;
      let okPodman = 0;
      const started = Date.now();
      for (const i of images) {
        const r = await skopeo(['--registries-conf', conf, 'inspect', '--raw', `docker://${i.source}`], proxyEnv(proxy.url));
        assert.equal(r.code, 0, `${i.source}: ${r.stderr}`);
        assert.equal(`sha256:${createHash('sha256').update(r.stdout, 'utf8').digest('hex')}`, i.digest, i.source);
        okSkopeo++;
        const p = await podman!.run(['pull', '-q', i.source], { CONTAINERS_REGISTRIES_CONF: conf, ...proxyEnv(proxy.url) });
        assert.equal(p.code, 0, `${i.source}: ${p.stderr}`);
        okPodman++;
      }
      await podman!.run(['rmi', '-a', '-f']);
      assert.deepEqual(attempted(), []);
      const missing = await skopeo(['--registries-conf', conf, 'inspect', '--raw', 'docker://quay.io/example-org/not-mirrored:1'], proxyEnv(proxy.url));
      assert.notEqual(missing.code, 0);
      assert.deepEqual(attempted(), fallback ? ['quay.io:443'] : []);
      figures.push(
        `skopeo/podman (${label}): ${okSkopeo}/${images.length} read by skopeo with their digests, ${okPodman}/${images.length} pulled by podman, in ${((Date.now() - started) / 1000).toFixed(1)} s; for a missing image: ${attempted().join(', ') || 'none'}`,
      );
    });
  }

  it('the files are byte-for-byte the same on a second run, for every target', async () => {
    let files = 0;
    for (const target of ['containerd', 'cri-o', 'rke2', 'openshift', 'bmctl']) {
      const a = await config(`stable-a-${target}`, target, '--no-fallback');
      const b = await config(`stable-b-${target}`, target, '--no-fallback');
      const list = await listFiles(a);
      assert.deepEqual(await listFiles(b), list);
      for (const f of list) assert.ok((await readFile(join(a, f))).equals(await readFile(join(b, f))), `${target} ${f}`);
      files += list.length;
    }
    figures.push(`stability: ${files} files of 5 targets identical across two runs`);
  });
});
