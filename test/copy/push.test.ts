/**
 * `mirror push` end to end: the real docker-registry started here, bundles made by testdata/make-fixtures.ts,
 * pushes through the built binary, and skopeo reading back what was pushed.
 */
import assert from 'node:assert/strict';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  buildDockerSave,
  buildOciLayout,
  DEMO_SPEC,
  DOCKER_SAVE_SPEC,
  type BuiltLayout,
  writeDirectory,
  writeTarBundle,
} from '../../testdata/make-fixtures.js';
import { runCli } from '../helpers/cli.js';
import { startFaultProxy, type FaultProxy } from '../helpers/fault-proxy.js';
import { startRegistry, type TestRegistry } from '../helpers/registry.js';
import { skopeoInspectRaw, skopeoInspectRawDigest } from '../helpers/skopeo.js';
import { sha256Digest } from '../../src/oci/digest.js';

/** destPath maps a full source ref into `ns` the way bmctl does (drop the host, keep the path). */
function destPath(ref: string, ns: string): string {
  const noHost = ref.slice(ref.indexOf('/') + 1);
  return `${ns}/${noHost}`;
}

interface Report {
  summary: Record<string, number>;
  images: Array<{ source: string; destination: string; digest: string; status: string; children: Array<{ digest: string }>; converted?: string }>;
}

describe('mirror push (integration: docker-registry + skopeo)', function () {
  this.timeout(180_000);
  let registry: TestRegistry;
  let work: string;
  let demo: BuiltLayout;

  before(async () => {
    registry = await startRegistry();
    work = await mkdtemp(join(tmpdir(), 'mirror-push-'));
    demo = await buildOciLayout(DEMO_SPEC);
  });
  after(async () => {
    await registry?.stop();
    if (work) await rm(work, { recursive: true, force: true });
  });

  async function assertPushed(layout: BuiltLayout, ns: string, host = registry.host): Promise<void> {
    for (const img of layout.images) {
      if (!img.ref) continue;
      const dest = img.ref.includes('@') ? `${destPath(img.ref.split('@')[0]!, ns)}@${img.digest}` : destPath(img.ref, ns);
      const raw = await skopeoInspectRaw(`docker://${host}/${dest}`);
      assert.equal(sha256Digest(raw), img.digest, `${dest} has the bundle's manifest digest`);
      for (const m of img.manifests) {
        const child = await skopeoInspectRawDigest(`docker://${host}/${dest.split(/[:@](?=[^/]*$)/)[0]}@${m.digest}`);
        assert.equal(child, m.digest);
      }
    }
  }

  const formats: Array<{ name: string; order: 'metadata-first' | 'metadata-last'; compression: 'xz' | 'gzip' | 'zstd' | 'none'; file: string }> = [
    { name: 'metadata-last .tar.xz', order: 'metadata-last', compression: 'xz', file: 'a.tar.xz' },
    { name: 'metadata-first .tar.xz', order: 'metadata-first', compression: 'xz', file: 'b.tar.xz' },
    { name: 'metadata-last .tar.gz', order: 'metadata-last', compression: 'gzip', file: 'c.tgz' },
    { name: 'metadata-first .tar.zst', order: 'metadata-first', compression: 'zstd', file: 'd.tar.zst' },
    { name: 'metadata-last .tar (compression sniffed, not named)', order: 'metadata-last', compression: 'none', file: 'e.bin' },
  ];
  for (const [i, f] of formats.entries()) {
    it(`pushes an OCI bundle, ${f.name}, with digests unchanged (multi-platform index included)`, async () => {
      const file = join(work, f.file);
      await writeTarBundle(demo.files, file, { order: f.order, compression: f.compression });
      const ns = `fmt${i}`;
      const report = join(work, `report-${i}.json`);
      const r = await runCli(['push', '--source', file, '--private-registry', `http://${registry.host}/${ns}`, '--report', report]);
      assert.equal(r.code, 0, r.stderr + r.stdout);
      await assertPushed(demo, ns);
      const rep = JSON.parse(await readFile(report, 'utf8')) as Report;
      assert.equal(rep.images.length, 3);
      const multi = rep.images.find((x) => x.source === 'docker.io/library/busybox:1.36');
      assert.ok(multi, 'busybox in the report');
      assert.equal(multi.destination, `${registry.host}/${ns}/library/busybox:1.36`);
      assert.equal(multi.children.length, 2, 'both platform manifests listed');
    });
  }

  it('pushes a directory (an unpacked OCI layout)', async () => {
    const dir = join(work, 'layout-dir');
    await writeDirectory(demo.files, dir);
    const r = await runCli(['push', '--source', dir, '--private-registry', `${registry.host}/dir`, '--plain-http']);
    assert.equal(r.code, 0, r.stderr);
    await assertPushed(demo, 'dir');
  });

  it('a second push uploads no blob, and each blob crossed the wire once', async () => {
    const proxy = await startFaultProxy({ upstream: registry.url });
    try {
      const file = join(work, 'again.tar.xz');
      await writeTarBundle(demo.files, file, { order: 'metadata-last', compression: 'xz' });
      const target = `http://${proxy.host}/again`;
      const first = await runCli(['push', '--source', file, '--private-registry', target]);
      assert.equal(first.code, 0, first.stderr);
      const distinct = new Set(demo.images.flatMap((i) => i.manifests.flatMap((m) => [m.config.digest, ...m.layers.map((l) => l.digest)])));
      const puts = proxy.requests.filter((q) => q.method === 'PUT' && q.path.includes('/blobs/uploads/'));
      assert.ok(puts.length > 0, 'the first push uploaded');
      assert.ok(puts.length <= distinct.size, `${puts.length} blob uploads for ${distinct.size} distinct blobs`);
      proxy.reset();
      const second = await runCli(['push', '--source', file, '--private-registry', target, '--json']);
      assert.equal(second.code, 0, second.stderr);
      const uploads = proxy.requests.filter((q) => q.path.includes('/blobs/uploads/'));
      assert.deepEqual(uploads, [], 'no upload started on the second push');
      const out = JSON.parse(second.stdout) as Report;
      assert.equal(out.summary.blobsUploaded, 0);
      assert.equal(out.summary.pushed, 0);
      assert.equal(out.summary.skipped, 3);
    } finally {
      await proxy.stop();
    }
  });

  it('pushes two images whose tags alone collide, each to its own repository', async () => {
    const layout = await buildOciLayout({
      seed: 'collide',
      images: [
        { ref: 'gcr.io/team-a/app:1.0', layers: [{ files: 1, sizeBytes: 500 }] },
        { ref: 'quay.io/team-b/app:1.0', layers: [{ files: 1, sizeBytes: 700 }] },
      ],
    });
    const file = join(work, 'collide.tar.gz');
    await writeTarBundle(layout.files, file, { order: 'metadata-last', compression: 'gzip' });
    const r = await runCli(['push', '--source', file, '--private-registry', `http://${registry.host}/c`]);
    assert.equal(r.code, 0, r.stderr);
    await assertPushed(layout, 'c');
    assert.notEqual(layout.images[0]!.digest, layout.images[1]!.digest);
  });

  it('pushes nested indexes whole, full names from ref.name, and images known only by digest', async () => {
    const layout = await buildOciLayout({
      seed: 'nested',
      nested: true,
      refNames: 'ref-name-only',
      images: [
        { ref: 'registry.k8s.io/pause:3.9', platforms: [{ os: 'linux', arch: 'amd64' }, { os: 'linux', arch: 'arm64' }], layers: [{ files: 1 }] },
        { ref: 'ghcr.io/org/pinned', byDigest: true, layers: [{ files: 1 }] },
      ],
    });
    const file = join(work, 'nested.tar.xz');
    await writeTarBundle(layout.files, file, { order: 'metadata-first', compression: 'xz' });
    const r = await runCli(['push', '--source', file, '--private-registry', `http://${registry.host}/n`, '--json']);
    assert.equal(r.code, 0, r.stderr + r.stdout);
    await assertPushed(layout, 'n');
    const out = JSON.parse(r.stdout) as Report;
    const pinned = out.images.find((x) => x.source.startsWith('ghcr.io/org/pinned@'));
    assert.ok(pinned?.destination.includes('@sha256:'), 'pushed by digest, no tag');
  });

  for (const layerPaths of ['legacy', 'flat'] as const) {
    it(`pushes a docker save archive (${layerPaths} layout): layers gzip-compressed, config digest kept`, async () => {
      const save = await buildDockerSave({ ...DOCKER_SAVE_SPEC, layerPaths });
      const file = join(work, `save-${layerPaths}.tar.xz`);
      await writeTarBundle(save.files, file, { order: 'metadata-last', compression: 'xz' });
      const ns = `ds-${layerPaths}`;
      const report = join(work, `ds-${layerPaths}.json`);
      const env = { XDG_CACHE_HOME: join(work, `cache-${layerPaths}`) };
      const r = await runCli(['push', '--source', file, '--private-registry', `http://${registry.host}/${ns}`, '--report', report], { env });
      assert.equal(r.code, 0, r.stderr + r.stdout);
      const rep = JSON.parse(await readFile(report, 'utf8')) as Report;
      assert.equal(rep.images.length, 3, 'one image per RepoTag');
      // A second push finds the compressed layers by the digests recorded on the first, and sends nothing.
      const again = await runCli(['push', '--source', file, '--private-registry', `http://${registry.host}/${ns}`, '--json'], { env });
      assert.equal(again.code, 0, again.stderr);
      const second = JSON.parse(again.stdout) as Report;
      assert.equal(second.summary.blobsUploaded, 0, 'no blob uploaded on the second push');
      assert.deepEqual(second.images.map((i) => i.digest), rep.images.map((i) => i.digest), 'same manifests as the first push');
      assert.ok(rep.images.every((i) => i.converted?.includes('gzip')), 'the report says layer digests changed');
      for (const img of save.images) {
        for (const ref of img.refs) {
          const manifest = JSON.parse((await skopeoInspectRaw(`docker://${registry.host}/${destPath(ref, ns)}`)).toString('utf8')) as {
            config: { digest: string };
            layers: Array<{ mediaType: string }>;
          };
          assert.equal(manifest.config.digest, img.configDigest, `${ref}: config digest kept`);
          assert.equal(manifest.layers.length, img.diffIds.length);
          assert.ok(manifest.layers.every((l) => l.mediaType.endsWith('gzip')));
        }
      }
      // skopeo copies the image out (it checks every blob against its digest).
      const { skopeoCopyToOci } = await import('../helpers/skopeo.js');
      await skopeoCopyToOci(`docker://${registry.host}/${destPath(save.images[0]!.refs[0]!, ns)}`, join(work, `out-${layerPaths}`));
    });
  }

  for (const compression of ['zstd', 'none'] as const) {
    it(`pushes a docker save archive with --layer-compression ${compression}`, async () => {
      const save = await buildDockerSave(DOCKER_SAVE_SPEC);
      const file = join(work, `save-${compression}.tar`);
      await writeTarBundle(save.files, file, { order: 'metadata-first', compression: 'none' });
      const ns = `lc-${compression}`;
      const env = { XDG_CACHE_HOME: join(work, `cache-lc-${compression}`) };
      const r = await runCli(['push', '--source', file, '--private-registry', `http://${registry.host}/${ns}`, '--layer-compression', compression], { env });
      assert.equal(r.code, 0, r.stderr + r.stdout);
      const ref = save.images[0]!.refs[0]!;
      const manifest = JSON.parse((await skopeoInspectRaw(`docker://${registry.host}/${destPath(ref, ns)}`)).toString('utf8')) as {
        mediaType: string;
        config: { digest: string };
        layers: Array<{ mediaType: string; digest: string }>;
      };
      assert.equal(manifest.mediaType, 'application/vnd.oci.image.manifest.v1+json');
      assert.equal(manifest.config.digest, save.images[0]!.configDigest);
      if (compression === 'none') assert.deepEqual(manifest.layers.map((l) => l.digest), save.images[0]!.diffIds, 'uncompressed: layer digests are the diff_ids');
      else assert.ok(manifest.layers.every((l) => l.mediaType.endsWith('+zstd')));
      const { skopeoCopyToOci } = await import('../helpers/skopeo.js');
      await skopeoCopyToOci(`docker://${registry.host}/${destPath(ref, ns)}`, join(work, `out-lc-${compression}`));
    });
  }

  it('--dry-run prints the mapping and sends nothing', async () => {
    const proxy = await startFaultProxy({ upstream: registry.url });
    try {
      const file = join(work, 'dry.tar.xz');
      await writeTarBundle(demo.files, file, { order: 'metadata-last', compression: 'xz' });
      const r = await runCli(['push', '--source', file, '--private-registry', `http://${proxy.host}/dry`, '--dry-run']);
      assert.equal(r.code, 0, r.stderr);
      assert.match(r.stdout, new RegExp(`gcr.io/kubernetes-e2e-test-images/nautilus:1.0 -> ${proxy.host}/dry/kubernetes-e2e-test-images/nautilus:1.0`));
      assert.deepEqual(proxy.requests, []);
    } finally {
      await proxy.stop();
    }
  });

  it('pushes into a local OCI layout (oci:DIR) that skopeo reads back', async () => {
    const file = join(work, 'to-layout.tar.xz');
    await writeTarBundle(demo.files, file, { order: 'metadata-last', compression: 'xz' });
    const out = join(work, 'layout-out');
    const r = await runCli(['push', '--source', file, '--private-registry', `oci:${out}`]);
    assert.equal(r.code, 0, r.stderr);
    const nautilus = demo.images.find((i) => i.ref?.includes('nautilus'))!;
    // org.opencontainers.image.ref.name holds the full reference, as skopeo takes it after oci:DIR:
    assert.equal(await skopeoInspectRawDigest(`oci:${out}:${nautilus.ref!}`), nautilus.digest);
    const again = await runCli(['push', '--source', join(out), '--private-registry', `http://${registry.host}/roundtrip`]);
    assert.equal(again.code, 0, again.stderr);
    await assertPushed(demo, 'roundtrip');
  });

  describe('through a fault-injecting proxy', () => {
    let proxy: FaultProxy;
    afterEach(async () => proxy?.stop());

    it('completes with 503s, 429s with Retry-After, and connections cut mid-body', async () => {
      proxy = await startFaultProxy({
        upstream: registry.url,
        seed: 7,
        rules: [
          { kind: 'cut-request', method: 'PUT', pathIncludes: '/blobs/uploads/', probability: 0.25, times: 3, afterBytes: 2000 },
          { kind: 'status-503', probability: 0.06, times: 6 },
          { kind: 'status-429', probability: 0.04, times: 4 },
          { kind: 'cut-response', method: 'HEAD', probability: 0.05, times: 2 },
        ],
      });
      const file = join(work, 'faults.tar.xz');
      await writeTarBundle(demo.files, file, { order: 'metadata-last', compression: 'xz' });
      const r = await runCli(['push', '--source', file, '--private-registry', `http://${proxy.host}/faults`, '--json']);
      assert.equal(r.code, 0, r.stderr + r.stdout);
      const injected = Object.values(proxy.injected).reduce((a, b) => a + b, 0);
      assert.ok(injected >= 3, `faults were injected (${JSON.stringify(proxy.injected)})`);
      await assertPushed(demo, 'faults');
    });

    it('reads the bundle again for a large blob whose upload was cut (its bytes had left the stream)', async () => {
      const layout = await buildOciLayout({
        seed: 'big',
        images: [{ ref: 'gcr.io/big/layer:1', layers: [{ files: 1, sizeBytes: 20 * 1024 * 1024 }] }],
      });
      const file = join(work, 'big.tar');
      await writeTarBundle(layout.files, file, { order: 'metadata-last', compression: 'none' });
      proxy = await startFaultProxy({
        upstream: registry.url,
        rules: [{ kind: 'cut-request', method: 'PUT', pathIncludes: '/blobs/uploads/', nth: [1], afterBytes: 4 * 1024 * 1024 }],
      });
      const r = await runCli(['push', '--source', file, '--private-registry', `http://${proxy.host}/big`, '--json']);
      assert.equal(r.code, 0, r.stderr + r.stdout);
      assert.equal(proxy.injected['cut-request'], 1);
      const out = JSON.parse(r.stdout) as Report;
      assert.equal(out.summary.passes, 2, 'the bundle was read a second time');
      await assertPushed(layout, 'big');
    });

    it('a proxy in front that answers 413 to bodies over 2 MiB: the bundle goes in chunks of 1 MiB, read once more at most', async () => {
      const layout = await buildOciLayout({
        seed: 'limit',
        images: [
          { ref: 'gcr.io/limit/big:1', layers: [{ files: 1, sizeBytes: 6 * 1024 * 1024 }] },
          { ref: 'gcr.io/limit/other:1', layers: [{ files: 1, sizeBytes: 3 * 1024 * 1024 }, { files: 2, sizeBytes: 30_000 }] },
        ],
      });
      const file = join(work, 'limit.tar');
      await writeTarBundle(layout.files, file, { order: 'metadata-last', compression: 'none' });
      const limit = 2 * 1024 * 1024;
      proxy = await startFaultProxy({
        upstream: registry.url,
        rules: [{ kind: 'respond', pathIncludes: '/blobs/uploads/', minBodyBytes: limit + 1, status: 413, body: '<html>413 Request Entity Too Large</html>', probability: 1 }],
      });
      const r = await runCli(['push', '--source', file, '--private-registry', `http://${proxy.host}/limit`, '--json']);
      assert.equal(r.code, 0, r.stderr + r.stdout);
      assert.ok(proxy.injected.respond >= 1);
      const out = JSON.parse(r.stdout) as Report;
      assert.ok((out.summary.passes ?? 1) <= 2, `passes: ${out.summary.passes}`);
      const tooBig = proxy.requests.filter((q) => q.status !== undefined && q.status < 300 && q.bodyBytes > limit);
      assert.deepEqual(tooBig, [], 'nothing over the limit got through');
      await assertPushed(layout, 'limit');
    });

    it('with --upload-mode chunked, a cut upload resumes in place from the offset the registry reports', async () => {
      const layout = await buildOciLayout({
        seed: 'chunked',
        images: [{ ref: 'gcr.io/big/chunked:1', layers: [{ files: 1, sizeBytes: 20 * 1024 * 1024 }] }],
      });
      const file = join(work, 'chunked.tar');
      await writeTarBundle(layout.files, file, { order: 'metadata-last', compression: 'none' });
      proxy = await startFaultProxy({
        upstream: registry.url,
        rules: [{ kind: 'cut-request', method: 'PATCH', pathIncludes: '/blobs/uploads/', nth: [2], afterBytes: 1024 * 1024, forwardBeforeCut: false }],
      });
      const r = await runCli(['push', '--source', file, '--private-registry', `http://${proxy.host}/chunked`, '--upload-mode', 'chunked', '--chunk-size', '4', '--json']);
      assert.equal(r.code, 0, r.stderr + r.stdout);
      assert.equal(proxy.injected['cut-request'], 1);
      const out = JSON.parse(r.stdout) as Report;
      assert.equal(out.summary.passes, 1, 'no second read of the bundle');
      assert.ok(proxy.requests.filter((q) => q.method === 'PATCH').length >= 5, 'sent in chunks');
      await assertPushed(layout, 'chunked');
    });
  });
});
