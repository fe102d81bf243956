/**
 * The archive destinations through the copy engine, from an OCI layout: oci-archive (metadata first in the tar,
 * digests kept, REF as ref.name) and docker-archive (layers stored uncompressed — gzip and zstd decoded —, config
 * kept, manifest.json, repositories, legacy layer directories); indexes and artifacts refused before anything is
 * written; a failed copy leaves neither FILE nor a temporary file.
 */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { chmodSync, createReadStream, existsSync, lstatSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';
import { readTar } from '../../src/archive/tar.js';
import { copyImage, type CopyImageResult } from '../../src/copy/copy-image.js';
import { MirrorError } from '../../src/errors/index.js';
import type { SideContext } from '../../src/transport/index.js';
import { openLayoutDestination } from '../../src/transport/oci-layout/destination.js';
import { openLayoutSource } from '../../src/transport/oci-layout/source.js';
import { buildOciLayout, type BuiltLayout, packTar, writeDirectory } from '../../testdata/make-fixtures.js';

/** SIDE stands for both sides' connection settings: the file transports need none. */
const SIDE = {} as unknown as SideContext;

const sha = (b: Uint8Array | string): string => `sha256:${createHash('sha256').update(b).digest('hex')}`;
const hexOf = (d: string): string => d.slice(d.indexOf(':') + 1);

/** tarEntries lists an archive's entries (name, type, bytes of files). */
async function tarEntries(file: string): Promise<Array<{ name: string; type: string; data: Buffer; link: string | undefined }>> {
  const out: Array<{ name: string; type: string; data: Buffer; link: string | undefined }> = [];
  for await (const e of readTar(createReadStream(file), { file, links: 'yield' })) {
    out.push({ name: e.name, type: e.type, data: e.type === 'file' ? await e.bytes(256 * 1024 * 1024) : Buffer.alloc(0), link: e.linkTarget });
  }
  return out;
}

/** leftovers lists the files in `dir` whose name starts with `base` (FILE and FILE.tmp-*). */
function leftovers(dir: string, base: string): string[] {
  return readdirSync(dir).filter((n) => n.startsWith(base));
}

/** CraftedImage is a single-image layout made here with chosen layer compressions. */
interface CraftedImage {
  dir: string;
  manifestDigest: string;
  configDigest: string;
  configBytes: Buffer;
  diffIds: string[];
  layerTars: Buffer[];
}

/** craftLayout writes a one-image layout (ref.name `1`) whose layers are compressed as asked. */
async function craftLayout(dir: string, compressions: Array<'gzip' | 'zstd' | 'none'>, options: { badDiffId?: boolean; configType?: string } = {}): Promise<CraftedImage> {
  const blobs = new Map<string, Buffer>();
  const layers: Array<{ mediaType: string; digest: string; size: number }> = [];
  const diffIds: string[] = [];
  const layerTars: Buffer[] = [];
  for (const [i, c] of compressions.entries()) {
    const tar = await packTar([{ name: `file-${i}.txt`, data: `layer ${i} `.repeat(5000 + i) }]);
    layerTars.push(tar);
    diffIds.push(sha(tar));
    const bytes = c === 'gzip' ? gzipSync(tar) : c === 'zstd' ? execFileSync('zstd', ['-q', '-c', '-3'], { input: tar }) : tar;
    const digest = sha(bytes);
    blobs.set(digest, bytes);
    layers.push({ mediaType: `application/vnd.oci.image.layer.v1.tar${c === 'none' ? '' : `+${c}`}`, digest, size: bytes.byteLength });
  }
  const ids = options.badDiffId ? diffIds.map((d, i) => (i === 0 ? sha('not this') : d)) : diffIds;
  const configBytes = Buffer.from(JSON.stringify({ architecture: 'amd64', os: 'linux', created: '2024-01-01T00:00:00Z', config: { Cmd: ['/bin/sh'] }, rootfs: { type: 'layers', diff_ids: ids } }));
  const configDigest = sha(configBytes);
  blobs.set(configDigest, configBytes);
  const manifest = Buffer.from(
    JSON.stringify({
      schemaVersion: 2,
      mediaType: 'application/vnd.oci.image.manifest.v1+json',
      config: { mediaType: options.configType ?? 'application/vnd.oci.image.config.v1+json', digest: configDigest, size: configBytes.byteLength },
      layers,
    }),
  );
  const manifestDigest = sha(manifest);
  blobs.set(manifestDigest, manifest);
  mkdirSync(join(dir, 'blobs', 'sha256'), { recursive: true });
  for (const [d, b] of blobs) writeFileSync(join(dir, 'blobs', 'sha256', hexOf(d)), b);
  writeFileSync(join(dir, 'oci-layout'), '{"imageLayoutVersion":"1.0.0"}');
  writeFileSync(
    join(dir, 'index.json'),
    JSON.stringify({ schemaVersion: 2, manifests: [{ mediaType: 'application/vnd.oci.image.manifest.v1+json', digest: manifestDigest, size: manifest.byteLength, annotations: { 'org.opencontainers.image.ref.name': '1' } }] }),
  );
  return { dir, manifestDigest, configDigest, configBytes, diffIds, layerTars };
}

function copy(source: string, destination: string, extra: Partial<Parameters<typeof copyImage>[0]> = {}): Promise<CopyImageResult> {
  return copyImage({ source, destination, src: SIDE, dest: SIDE, ...extra });
}

describe('archive destinations (oci-archive, docker-archive)', function () {
  this.timeout(60_000);
  let work: string;
  let layout: BuiltLayout;
  let layoutDir: string;

  before(async () => {
    work = mkdtempSync(join(tmpdir(), 'mirror-archive-dest-'));
    layout = await buildOciLayout({
      seed: 'archive-dest',
      images: [
        { ref: 'docker.io/library/multi:1.0', platforms: [{ os: 'linux', arch: 'amd64' }, { os: 'linux', arch: 'arm64', variant: 'v8' }], layers: [{ files: 2, sizeBytes: 200_000 }, { files: 1, sizeBytes: 1000 }] },
        { ref: 'quay.io/team/small:2.0', layers: [{ files: 2, sizeBytes: 5000 }] },
      ],
    });
    layoutDir = join(work, 'layout');
    await writeDirectory(layout.files, layoutDir);
  });
  after(() => rmSync(work, { recursive: true, force: true }));

  describe('oci-archive', () => {
    it('writes the metadata first (oci-layout, index.json, every manifest), then the blobs; digests kept; REF is the ref.name', async () => {
      const file = join(work, 'multi.tar');
      const r = await copy(`oci:${layoutDir}:1.0`, `oci-archive:${file}:docker.io/mirror/multi:1.0`);
      assert.equal(r.outcome.status, 'pushed', r.outcome.error);
      assert.equal(r.outcome.digest, layout.images[0]!.digest);
      const entries = await tarEntries(file);
      const multi = layout.images[0]!;
      const manifestPaths = new Set([multi.digest, ...multi.manifests.map((m) => m.digest)].map((d) => `blobs/sha256/${hexOf(d)}`));
      assert.deepEqual(entries.slice(0, 2).map((e) => e.name), ['oci-layout', 'index.json']);
      assert.deepEqual(new Set(entries.slice(2, 2 + manifestPaths.size).map((e) => e.name)), manifestPaths, 'manifests come right after index.json');
      assert.equal(entries.length, 2 + multi.blobs.length, 'every blob once');
      for (const e of entries.slice(2)) assert.equal(sha(e.data), `sha256:${e.name.split('/').pop()}`, `${e.name} holds its digest`);
      const index = JSON.parse(entries[1]!.data.toString()) as { manifests: Array<{ digest: string; annotations: Record<string, string> }> };
      assert.deepEqual(index.manifests.map((m) => [m.digest, m.annotations]), [
        [multi.digest, { 'org.opencontainers.image.ref.name': 'docker.io/mirror/multi:1.0', 'io.containerd.image.name': 'docker.io/mirror/multi:1.0' }],
      ]);
      // The layout source reads what was written (extracted), digest for digest.
      const out = join(work, 'multi-extracted');
      mkdirSync(out);
      execFileSync('tar', ['xf', file, '-C', out]);
      const back = await openLayoutSource(out);
      assert.equal((await back.resolve({ repository: '', tag: 'docker.io/mirror/multi:1.0' })).digest, multi.digest);
      assert.deepEqual(leftovers(work, 'multi.tar'), ['multi.tar']);
    });

    it('a bare tag REF is the ref.name alone; an existing archive is replaced', async () => {
      const file = join(work, 'small.tar');
      writeFileSync(file, 'old content');
      const r = await copy(`oci:${layoutDir}:2.0`, `oci-archive:${file}:v2`);
      assert.equal(r.outcome.status, 'pushed', r.outcome.error);
      const index = JSON.parse((await tarEntries(file))[1]!.data.toString()) as { manifests: Array<{ annotations: Record<string, string> }> };
      assert.deepEqual(index.manifests[0]!.annotations, { 'org.opencontainers.image.ref.name': 'v2' });
    });

    it('a name:tag REF is a name, never a digest, in oci-archive: and oci: (busybox:latest, host:5000/app:1.0, app/web, as written)', async () => {
      const small = layout.images[1]!;
      const file = join(work, 'named.tar');
      const a = await copy(`oci:${layoutDir}:2.0`, `oci-archive:${file}:busybox:latest`);
      assert.equal(a.outcome.status, 'pushed', a.outcome.error);
      const index = JSON.parse((await tarEntries(file))[1]!.data.toString()) as { manifests: Array<{ digest: string; annotations: Record<string, string> }> };
      assert.deepEqual(index.manifests.map((m) => [m.digest, m.annotations['org.opencontainers.image.ref.name']]), [[small.digest, 'busybox:latest']]);
      const dir = join(work, 'named-layout');
      for (const ref of ['busybox:1.36', 'registry.local:5000/app:1.0', 'app/web']) {
        const r = await copy(`oci:${layoutDir}:2.0`, `oci:${dir}:${ref}`);
        assert.equal(r.outcome.status, 'pushed', `${ref}: ${r.outcome.error}`);
        // skopeo looks an image up by its ref.name as written.
        const refs = (JSON.parse(readFileSync(join(dir, 'index.json'), 'utf8')) as { manifests: Array<{ annotations?: Record<string, string> }> }).manifests.map((m) => m.annotations?.['org.opencontainers.image.ref.name']);
        assert.ok(refs.includes(ref), `${ref} in ${refs.join(', ')}`);
        assert.equal((await openLayoutSource(dir).then((s) => s.resolve({ repository: '', tag: ref }))).digest, small.digest);
      }
      // By digest alone (oci:DIR), an image stored only as another entry's is still recorded, as skopeo does.
      const again = await copy(`oci:${layoutDir}:2.0`, `oci:${dir}`);
      assert.equal(again.outcome.status, 'pushed', again.outcome.error);
      const unnamed = (JSON.parse(readFileSync(join(dir, 'index.json'), 'utf8')) as { manifests: Array<{ digest: string; annotations?: Record<string, string> }> }).manifests.filter((m) => m.annotations?.['org.opencontainers.image.ref.name'] === undefined);
      assert.deepEqual(unnamed.map((m) => m.digest), [small.digest]);
    });

    it('an archive behind a symbolic link is written through it, the link kept; a replaced archive keeps its mode', async () => {
      const store = join(work, 'store');
      mkdirSync(store);
      const real = join(store, 'app.tar');
      writeFileSync(real, 'old content', { mode: 0o600 });
      chmodSync(real, 0o600);
      const link = join(work, 'link.tar');
      symlinkSync(real, link);
      const r = await copy(`oci:${layoutDir}:2.0`, `oci-archive:${link}:v2`);
      assert.equal(r.outcome.status, 'pushed', r.outcome.error);
      assert.ok(lstatSync(link).isSymbolicLink(), 'the link stays a link');
      assert.equal((await tarEntries(real))[0]!.name, 'oci-layout', 'the archive is where the link points');
      assert.equal(statSync(real).mode & 0o777, 0o600, 'a private archive stays private');
      assert.deepEqual(readdirSync(store), ['app.tar'], 'no temporary file left');
      // A dangling link is replaced by the archive, never followed to create a file where it points.
      const dangling = join(work, 'dangling.tar');
      symlinkSync(join(store, 'elsewhere.tar'), dangling);
      const d = await copy(`oci:${layoutDir}:2.0`, `oci-archive:${dangling}:v2`);
      assert.equal(d.outcome.status, 'pushed', d.outcome.error);
      assert.ok(lstatSync(dangling).isFile() && !existsSync(join(store, 'elsewhere.tar')));
    });

    it('copies into one layout at the same time keep each other\'s entries', async () => {
      const dir = join(work, 'concurrent');
      const tags = ['t1', 't2', 't3', 't4', 't5', 't6'];
      const results = await Promise.all(tags.map((t, i) => copy(`oci:${layoutDir}:${i % 2 === 0 ? '2.0' : '1.0'}`, `oci:${dir}:${t}`)));
      for (const r of results) assert.equal(r.outcome.status, 'pushed', r.outcome.error);
      const index = JSON.parse(readFileSync(join(dir, 'index.json'), 'utf8')) as { manifests: Array<{ annotations?: Record<string, string> }> };
      assert.deepEqual(index.manifests.map((m) => m.annotations?.['org.opencontainers.image.ref.name']).sort(), tags);
      assert.equal(statSync(join(dir, 'index.json')).mode & 0o777, 0o644);
      assert.deepEqual(readdirSync(dir).sort(), ['blobs', 'index.json', 'oci-layout'], 'no lock or temporary file left');
    });

    it('writers that open one new layout at the same moment all take it for a layout (none sees another\'s blobs/ first)', async () => {
      // Each round: a new directory, 8 openings interleaved on the event loop (as the images of one copy are), each
      // starting a little later than the one before, so that some find the others half-way through making it.
      const later = (ticks: number): Promise<void> => new Promise((done) => { const step = (n: number): void => { if (n <= 0) done(); else setImmediate(() => step(n - 1)); }; step(ticks); });
      for (let round = 0; round < 25; round++) {
        const dir = join(work, `race-${round}`);
        const opened = await Promise.allSettled(Array.from({ length: 8 }, (_, i) => later(i * (1 + (round % 4))).then(() => openLayoutDestination(dir))));
        const refused = opened.filter((o): o is PromiseRejectedResult => o.status === 'rejected').map((o) => String(o.reason instanceof Error ? o.reason.message : o.reason));
        assert.deepEqual(refused, [], `round ${round}`);
        assert.deepEqual(readdirSync(dir).sort(), ['blobs', 'oci-layout'], `round ${round}: no temporary marker left`);
      }
      // What the race allowance lets through is only mirror's own marker being written: a stranger's file still refuses.
      const foreign = join(work, 'race-foreign');
      mkdirSync(foreign);
      writeFileSync(join(foreign, '.oci-layout.tmp'), 'x');
      await assert.rejects(openLayoutDestination(foreign), /is not an OCI image layout .*not empty \(\.oci-layout\.tmp\)/);
    });

    it('a layout index.json keeps its own annotations', async () => {
      const dir = join(work, 'annotated');
      mkdirSync(dir);
      writeFileSync(join(dir, 'oci-layout'), '{"imageLayoutVersion":"1.0.0"}');
      writeFileSync(join(dir, 'index.json'), JSON.stringify({ schemaVersion: 2, manifests: [], annotations: { 'org.opencontainers.image.title': 'my bundle' } }));
      const r = await copy(`oci:${layoutDir}:2.0`, `oci:${dir}:a`);
      assert.equal(r.outcome.status, 'pushed', r.outcome.error);
      const index = JSON.parse(readFileSync(join(dir, 'index.json'), 'utf8')) as { manifests: unknown[]; annotations?: Record<string, string> };
      assert.deepEqual(index.annotations, { 'org.opencontainers.image.title': 'my bundle' });
      assert.equal(index.manifests.length, 1);
    });

    it('a dry run writes nothing', async () => {
      const r = await copy(`oci:${layoutDir}:2.0`, `oci-archive:${join(work, 'dry.tar')}`, { dryRun: true });
      assert.equal(r.outcome.status, 'planned');
      assert.deepEqual(leftovers(work, 'dry.tar'), []);
      // Nor into a layout: no directory, oci-layout or blobs/ is made; one that is there is read, not touched.
      const deep = join(work, 'dry-new', 'deep', 'layout');
      const l = await copy(`oci:${layoutDir}:2.0`, `oci:${deep}:v1`, { dryRun: true });
      assert.equal(l.outcome.status, 'planned', l.outcome.error);
      assert.ok(!existsSync(join(work, 'dry-new')), 'nothing made');
      const empty = join(work, 'dry-empty');
      mkdirSync(empty);
      assert.equal((await copy(`oci:${layoutDir}:2.0`, `oci:${empty}:v1`, { dryRun: true })).outcome.status, 'planned');
      assert.deepEqual(readdirSync(empty), []);
    });

    it('a blob that does not match its digest fails the copy and leaves neither FILE nor a temporary file', async () => {
      const bad = join(work, 'bad-layout');
      await writeDirectory(layout.files, bad);
      const layer = layout.images[1]!.manifests[0]!.layers[0]!;
      const path = join(bad, 'blobs', 'sha256', hexOf(layer.digest));
      const bytes = readFileSync(path);
      bytes[bytes.length - 20] = (bytes[bytes.length - 20] ?? 0) ^ 0xff;
      writeFileSync(path, bytes);
      const r = await copy(`oci:${bad}:2.0`, `oci-archive:${join(work, 'bad.tar')}`);
      assert.equal(r.outcome.status, 'failed');
      assert.equal(r.outcome.errorCode, 'DIGEST_MISMATCH');
      assert.deepEqual(leftovers(work, 'bad.tar'), []);
    });
  });

  describe('docker-archive', () => {
    it('stores gzip, zstd and plain layers uncompressed under their diff_ids, keeps the config, writes manifest.json and repositories', async () => {
      const img = await craftLayout(join(work, 'crafted'), ['gzip', 'zstd', 'none']);
      const file = join(work, 'docker.tar');
      const r = await copy(`oci:${img.dir}:1`, `docker-archive:${file}:app:1.0`);
      assert.equal(r.outcome.status, 'pushed', r.outcome.error);
      assert.match(r.outcome.converted ?? '', /2 of 3 decompressed.*manifest digest changes.*config sha256:/);
      const entries = await tarEntries(file);
      const byName = new Map(entries.map((e) => [e.name, e]));
      const manifest = JSON.parse(byName.get('manifest.json')!.data.toString()) as Array<{ Config: string; RepoTags: string[]; Layers: string[] }>;
      assert.deepEqual(manifest, [{ Config: `${hexOf(img.configDigest)}.json`, RepoTags: ['docker.io/library/app:1.0'], Layers: img.diffIds.map((d) => `${hexOf(d)}.tar`) }]);
      assert.ok(byName.get(manifest[0]!.Config)!.data.equals(img.configBytes), 'the config is kept byte for byte');
      for (const [i, l] of manifest[0]!.Layers.entries()) assert.ok(byName.get(l)!.data.equals(img.layerTars[i]!), `layer ${i} is the uncompressed tar`);
      const repositories = JSON.parse(byName.get('repositories')!.data.toString()) as Record<string, Record<string, string>>;
      const top = repositories['docker.io/library/app']?.['1.0'];
      assert.ok(top !== undefined && byName.get(`${top}/layer.tar`)?.link === manifest[0]!.Layers[2], 'repositories names the top legacy layer, which links to the last layer');
      assert.equal(byName.get(`${top}/VERSION`)?.data.toString(), '1.0');
      assert.deepEqual(leftovers(work, 'docker.tar'), ['docker.tar']);
    });

    it('refuses an index before writing anything, naming its platforms; --platform picks one', async () => {
      const file = join(work, 'index.tar');
      await assert.rejects(copy(`oci:${layoutDir}:1.0`, `docker-archive:${file}`), (e: unknown) => {
        assert.ok(e instanceof MirrorError);
        assert.equal(e.code, 'USAGE');
        assert.match(e.describe(), /one image, not an index \(linux\/amd64, linux\/arm64\/v8\).*--platform/);
        return true;
      });
      assert.deepEqual(leftovers(work, 'index.tar'), []);
      const r = await copy(`oci:${layoutDir}:1.0`, `docker-archive:${file}`, { platforms: [{ os: 'linux', architecture: 'arm64' }] });
      assert.equal(r.outcome.status, 'pushed', r.outcome.error);
      const manifest = JSON.parse((await tarEntries(file)).find((e) => e.name === 'manifest.json')!.data.toString()) as Array<{ Config: string; RepoTags: unknown }>;
      assert.equal(`sha256:${manifest[0]!.Config.replace('.json', '')}`, layout.images[0]!.manifests[1]!.config.digest);
      assert.equal(manifest[0]!.RepoTags, null, 'no REF: untagged');
    });

    it('refuses an existing archive, a digest REF, and an artifact; nothing is written', async () => {
      const existing = join(work, 'existing.tar');
      writeFileSync(existing, 'x');
      await assert.rejects(copy(`oci:${layoutDir}:2.0`, `docker-archive:${existing}`), /already exists/);
      await assert.rejects(copy(`oci:${layoutDir}:2.0`, `docker-archive:${join(work, 'd.tar')}:app@sha256:${'a'.repeat(64)}`), /by tag, not by digest/);
      const artifact = await craftLayout(join(work, 'artifact'), ['gzip'], { configType: 'application/vnd.cncf.helm.config.v1+json' });
      const r = await copy(`oci:${artifact.dir}:1`, `docker-archive:${join(work, 'artifact.tar')}`);
      assert.equal(r.outcome.status, 'failed');
      assert.match(r.outcome.error ?? '', /container images only/);
      assert.deepEqual(leftovers(work, 'artifact.tar'), []);
      assert.deepEqual(leftovers(work, 'd.tar'), []);
    });

    it('a layer that does not decompress to the config diff_id fails at commit; nothing is left', async () => {
      const img = await craftLayout(join(work, 'baddiff'), ['gzip', 'none'], { badDiffId: true });
      const file = join(work, 'baddiff.tar');
      await assert.rejects(copy(`oci:${img.dir}:1`, `docker-archive:${file}`), /layer 0 .* decompresses to sha256:.* but the config lists diff_id/);
      assert.deepEqual(leftovers(work, 'baddiff.tar'), []);
    });

    it('a corrupt gzip layer fails the copy; nothing is left', async () => {
      const img = await craftLayout(join(work, 'badgz'), ['gzip']);
      const manifest = JSON.parse(readFileSync(join(img.dir, 'blobs', 'sha256', hexOf(img.manifestDigest)), 'utf8')) as { layers: Array<{ digest: string; size: number }> };
      // A gzip stream cut short, stored under its own (correct) digest: the blob verifies, the decoding fails.
      const layerPath = join(img.dir, 'blobs', 'sha256', hexOf(manifest.layers[0]!.digest));
      const cut = readFileSync(layerPath).subarray(0, 100);
      const cutDigest = sha(cut);
      writeFileSync(join(img.dir, 'blobs', 'sha256', hexOf(cutDigest)), cut);
      const m2 = Buffer.from(JSON.stringify({ ...manifest, layers: [{ ...manifest.layers[0], digest: cutDigest, size: cut.byteLength }] }));
      writeFileSync(join(img.dir, 'blobs', 'sha256', hexOf(sha(m2))), m2);
      writeFileSync(join(img.dir, 'index.json'), JSON.stringify({ schemaVersion: 2, manifests: [{ mediaType: 'application/vnd.oci.image.manifest.v1+json', digest: sha(m2), size: m2.byteLength, annotations: { 'org.opencontainers.image.ref.name': '1' } }] }));
      const r = await copy(`oci:${img.dir}:1`, `docker-archive:${join(work, 'badgz.tar')}`);
      assert.equal(r.outcome.status, 'failed');
      assert.equal(r.outcome.errorCode, 'CORRUPT_ARCHIVE');
      assert.match(r.outcome.error ?? '', /does not decode as gzip/);
      assert.deepEqual(leftovers(work, 'badgz.tar'), []);
      assert.ok(!existsSync(join(work, 'badgz.tar')));
    });
  });
});
