import assert from 'node:assert/strict';
import { access, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { openBundleInput } from '../../src/archive/index.js';
import {
  buildDockerSave,
  buildOciLayout,
  bundleTar,
  DEMO_SPEC,
  describeFixture,
  DOCKER_SAVE_SPEC,
  gzipStored,
  writeDirectory,
  writeTarBundle,
  type LayoutSpec,
} from '../../testdata/make-fixtures.js';
import { hasCommand, sh, sha256, tempDir } from './helpers.js';
import zlib from 'node:zlib';

interface Json {
  [key: string]: unknown;
}

function parse(bytes: Buffer | undefined): Json {
  assert.ok(bytes, 'missing file');
  return JSON.parse(bytes.toString('utf8')) as Json;
}

describe('testdata/make-fixtures', function () {
  this.timeout(120_000);
  let dir: string;
  let remove: () => Promise<void>;

  before(async () => {
    ({ dir, remove } = await tempDir('fixtures'));
  });
  after(async () => remove());

  it('is deterministic: the same spec gives the same bytes', async () => {
    const a = await buildOciLayout(DEMO_SPEC);
    const b = await buildOciLayout(DEMO_SPEC);
    assert.deepEqual([...a.files.keys()], [...b.files.keys()]);
    for (const [k, v] of a.files) assert.ok(v.equals(b.files.get(k) ?? Buffer.alloc(0)), k);
    assert.ok((await bundleTar(a.files, { order: 'metadata-last' })).equals(await bundleTar(b.files, { order: 'metadata-last' })));
    const other = await buildOciLayout({ ...DEMO_SPEC, seed: 'another' });
    assert.notEqual(other.images[0]?.digest, a.images[0]?.digest);
  });

  it('builds valid images: blobs match their names, diff_ids match the uncompressed layers', async () => {
    const built = await buildOciLayout(DEMO_SPEC);
    for (const [name, bytes] of built.files) {
      if (name.startsWith('blobs/sha256/')) assert.equal(sha256(bytes), `sha256:${name.slice(13)}`);
    }
    assert.equal(built.images.length, 3);
    const [single, multi, shared] = built.images;
    assert.ok(single && multi && shared);
    assert.equal(single.mediaType, 'application/vnd.oci.image.manifest.v1+json');
    assert.equal(multi.mediaType, 'application/vnd.oci.image.index.v1+json');
    assert.deepEqual(
      multi.manifests.map((m) => `${m.platform.os}/${m.platform.arch}`),
      ['linux/amd64', 'linux/arm64'],
    );
    assert.equal(shared.manifests[0]?.layers[0]?.digest, single.manifests[0]?.layers[0]?.digest, 'base layer not shared');
    for (const img of built.images) {
      for (const m of img.manifests) {
        const config = parse(built.files.get(`blobs/sha256/${m.config.digest.slice(7)}`));
        const rootfs = config.rootfs as { diff_ids: string[] };
        assert.equal(config.os, m.platform.os);
        assert.equal(config.architecture, m.platform.arch);
        const layers = m.layers.map((l) => built.files.get(`blobs/sha256/${l.digest.slice(7)}`) ?? Buffer.alloc(0));
        assert.deepEqual(
          rootfs.diff_ids,
          layers.map((l) => sha256(zlib.gunzipSync(l))),
        );
      }
    }
    const index = parse(built.files.get('index.json'));
    const annotations = (index.manifests as { annotations: Record<string, string> }[]).map((d) => d.annotations);
    assert.deepEqual(annotations[0], { 'io.containerd.image.name': 'gcr.io/kubernetes-e2e-test-images/nautilus:1.0', 'org.opencontainers.image.ref.name': '1.0' });
  });

  it('writes names as asked: ref-name-only, by digest, nested indexes, docker media types', async () => {
    const spec: LayoutSpec = {
      refNames: 'ref-name-only',
      nested: true,
      images: [
        { ref: 'gcr.io/x/named:1.0', layers: [{}] },
        { ref: 'gcr.io/x/pinned', byDigest: true, layers: [{}] },
        { ref: 'gcr.io/x/docker:2', mediaTypes: 'docker', platforms: [{ os: 'linux', arch: 'amd64' }, { os: 'linux', arch: 'arm', variant: 'v7' }], layers: [{}] },
      ],
    };
    const built = await buildOciLayout(spec);
    const index = parse(built.files.get('index.json'));
    const outer = (index.manifests as { digest: string; annotations?: unknown }[])[0];
    assert.ok(outer && outer.annotations === undefined);
    const outerIndex = parse(built.files.get(`blobs/sha256/${outer.digest.slice(7)}`));
    const inner = parse(built.files.get(`blobs/sha256/${(outerIndex.manifests as { digest: string }[])[0]?.digest.slice(7)}`));
    const named = inner.manifests as { digest: string; mediaType: string; annotations: Record<string, string> }[];
    assert.deepEqual(named[0]?.annotations, { 'org.opencontainers.image.ref.name': 'gcr.io/x/named:1.0' });
    assert.equal(named[1]?.annotations['org.opencontainers.image.ref.name'], `gcr.io/x/pinned@${named[1]?.digest}`);
    assert.equal(built.images[1]?.ref, `gcr.io/x/pinned@${built.images[1]?.digest}`);
    assert.equal(named[2]?.mediaType, 'application/vnd.docker.distribution.manifest.list.v2+json');
    const child = parse(built.files.get(`blobs/sha256/${built.images[2]?.manifests[0]?.digest.slice(7)}`));
    assert.equal(child.mediaType, 'application/vnd.docker.distribution.manifest.v2+json');
  });

  it('builds docker save archives with shared layers written once', async () => {
    const save = await buildDockerSave(DOCKER_SAVE_SPEC);
    const manifest = parse(save.files.get('manifest.json')) as unknown as { Config: string; RepoTags: string[]; Layers: string[] }[];
    assert.equal(manifest.length, 2);
    assert.deepEqual(manifest[0]?.RepoTags, DOCKER_SAVE_SPEC.images[0]?.refs);
    assert.equal(manifest[0]?.Layers[0], manifest[1]?.Layers[0]);
    for (const m of manifest) {
      const config = parse(save.files.get(m.Config));
      assert.deepEqual(
        (config.rootfs as { diff_ids: string[] }).diff_ids,
        m.Layers.map((l) => sha256(save.files.get(l) ?? Buffer.alloc(0))),
      );
    }
    assert.ok(save.files.has('repositories'));
    const flat = await buildDockerSave({ ...DOCKER_SAVE_SPEC, layerPaths: 'flat', repositories: false });
    assert.ok([...flat.files.keys()].every((k) => !k.includes('/')));
    assert.ok(!flat.files.has('repositories'));
  });

  it('writes gzip that gunzip reads back', () => {
    for (const size of [0, 1, 65535, 65536, 200_000]) {
      const data = Buffer.alloc(size, 7);
      assert.ok(zlib.gunzipSync(gzipStored(data)).equals(data));
    }
  });

  it('describes the demo fixture without hard-coded digests', async () => {
    const d = await describeFixture();
    assert.deepEqual(Object.keys(d.images).sort(), ['docker.io/library/busybox:1.36', 'gcr.io/kubernetes-e2e-test-images/nautilus:1.0', 'quay.io/mirror-demo/tools:2.0']);
    const busybox = d.images['docker.io/library/busybox:1.36'];
    assert.deepEqual(Object.keys(busybox?.platforms ?? {}), ['linux/amd64', 'linux/arm64/v8']);
    assert.ok(d.blobCount > 10);
  });

  it('matches the committed testdata/bundles/demo.tar.xz, when present', async function () {
    const committed = join(process.cwd(), 'testdata', 'bundles', 'demo.tar.xz');
    try {
      await access(committed);
    } catch {
      this.skip();
    }
    const input = await openBundleInput(committed);
    if (input.kind !== 'file') throw new Error('not a file');
    const files = new Map<string, Buffer>();
    for await (const e of input.entries()) files.set(e.name, await e.bytes());
    const index = parse(files.get('index.json'));
    const byName = Object.fromEntries(
      (index.manifests as { digest: string; annotations: Record<string, string> }[]).map((m) => [m.annotations['io.containerd.image.name'], m.digest]),
    );
    const expected = await describeFixture();
    assert.deepEqual(byName, Object.fromEntries(Object.entries(expected.images).map(([ref, img]) => [ref, img.digest])));
    for (const [name, bytes] of files) if (name.startsWith('blobs/')) assert.equal(sha256(bytes), `sha256:${name.slice(13)}`);
  });

  describe('skopeo accepts the fixtures', function () {
    before(async function () {
      if (!(await hasCommand('skopeo'))) this.skip();
    });

    it('reads every demo image from a layout written with writeDirectory, and copies it', async () => {
      const built = await buildOciLayout(DEMO_SPEC);
      const layout = join(dir, 'demo-layout');
      await writeDirectory(built.files, layout);
      for (const img of built.images) {
        assert.ok(img.ref);
        const tag = img.ref.slice(img.ref.lastIndexOf(':') + 1);
        const raw = await sh(`skopeo inspect --raw oci:${layout}:${tag}`);
        assert.equal(sha256(Buffer.from(raw)), img.digest, `skopeo sees another manifest for ${img.ref}`);
        await sh(`skopeo copy --all --quiet oci:${layout}:${tag} oci:${join(dir, 'copied')}:${tag}`);
      }
      // skopeo verified every blob on the way; the copy holds the same manifests
      const copiedIndex = parse(await readFile(join(dir, 'copied', 'index.json')));
      const digests = (copiedIndex.manifests as { digest: string }[]).map((m) => m.digest).sort();
      assert.deepEqual(digests, built.images.map((i) => i.digest).sort());
    });

    it('reads a tar of the layout (oci-archive) and a docker save archive', async () => {
      const built = await buildOciLayout(DEMO_SPEC);
      const archive = join(dir, 'demo.tar');
      await writeTarBundle(built.files, archive, { order: 'metadata-last', compression: 'none' });
      const raw = await sh(`skopeo inspect --raw oci-archive:${archive}:1.0`);
      assert.equal(sha256(Buffer.from(raw)), built.images[0]?.digest);
      const save = await buildDockerSave(DOCKER_SAVE_SPEC);
      const saved = join(dir, 'docker-save.tar');
      await writeTarBundle(save.files, saved, { order: 'metadata-last', compression: 'none' });
      for (const img of save.images) {
        const ref = img.refs[0] ?? '';
        const inspected = JSON.parse(await sh(`skopeo inspect docker-archive:${saved}:${ref}`)) as { Layers: string[] };
        assert.deepEqual(inspected.Layers, img.diffIds);
        await sh(`skopeo copy --quiet docker-archive:${saved}:${ref} oci:${join(dir, 'from-docker')}:${ref.slice(ref.lastIndexOf(':') + 1)}`);
      }
    });
  });
});
