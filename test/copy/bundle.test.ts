/**
 * The bundle adapter's decisions (its pass, then the copy engine), against an in-memory destination that can refuse
 * mounts (answering like a 202) or cut uploads: the paths a real distribution registry does not take. Acceptance runs
 * against the real registry (push.test.ts); these pin the logic.
 */
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { readFile } from 'node:fs/promises';
import { copyBundle } from '../../src/copy/bundle.js';
import { copyImagesFrom } from '../../src/copy/copy.js';
import { destinationFor } from '../../src/copy/push.js';
import { MirrorError } from '../../src/errors/index.js';
import { DigestCounter, sha256Digest } from '../../src/oci/digest.js';
import type { Descriptor } from '../../src/oci/manifest.js';
import { parseTarget } from '../../src/reference/destination.js';
import { openBundleSource } from '../../src/transport/bundle/source.js';
import { openLayoutDestination } from '../../src/transport/oci-layout/destination.js';
import type { BlobBody, BlobResult, DestinationImage, ImageDestination, ImageSource, MountResult } from '../../src/transport/types.js';
import { buildOciLayout, writeTarBundle } from '../../testdata/make-fixtures.js';

/** MemoryRegistry keeps blobs per repository and manifests per reference, and counts what it was asked. */
class MemoryRegistry implements ImageDestination {
  readonly description = 'memory registry';
  readonly blobScope = 'repository' as const;
  readonly blobs = new Map<string, Set<string>>();
  readonly manifests = new Map<string, string>();
  readonly uploads: Array<{ repo: string; digest: string }> = [];
  mounts = 0;
  /** Upload sessions handed out by refused mounts, and those cancelled. */
  sessions = 0;
  cancelled = 0;
  /** Answer every mount with an upload session instead of linking (as a registry ignoring mounts does). */
  refuseMounts = false;
  /** Cut the first upload of a stream body larger than this many bytes, after reading it. */
  cutStreamsOver: number | undefined;
  /** Each manifest lookup takes this long (ms), so that overlapping lookups can be counted. */
  lookupDelayMs = 0;
  private lookups = 0;
  /** The most manifest lookups that were in flight at once. */
  maxLookups = 0;

  private has(repo: string, digest: string): boolean {
    return this.blobs.get(repo)?.has(digest) ?? false;
  }
  private add(repo: string, digest: string): void {
    let s = this.blobs.get(repo);
    if (!s) this.blobs.set(repo, (s = new Set()));
    s.add(digest);
  }
  async hasBlob(repo: string, digest: string): Promise<boolean> {
    return this.has(repo, digest);
  }
  async mountBlob(repo: string, digest: string, from: string): Promise<MountResult> {
    this.mounts++;
    if (this.refuseMounts || !this.has(from, digest)) {
      this.sessions++;
      return { mounted: false, session: { repo } };
    }
    this.add(repo, digest);
    return { mounted: true };
  }
  async cancelSession(): Promise<void> {
    this.cancelled++;
  }
  async putBlob(repo: string, expected: { digest?: string | undefined; size?: number | undefined }, body: BlobBody): Promise<BlobResult> {
    const c = new DigestCounter();
    if (body.kind === 'bytes') c.update(body.data);
    else {
      for await (const chunk of body.open()) {
        c.update(chunk);
        if (this.cutStreamsOver !== undefined && c.bytes > this.cutStreamsOver && !body.reopenable) {
          this.cutStreamsOver = undefined;
          throw Object.assign(new MirrorError('NETWORK', 'connection cut'), { streamConsumed: true });
        }
      }
    }
    const digest = c.digest();
    if (expected.digest !== undefined && digest !== expected.digest) throw new MirrorError('DIGEST_MISMATCH', `bad ${expected.digest}`);
    this.add(repo, digest);
    this.uploads.push({ repo, digest });
    return { digest, size: c.bytes };
  }
  async manifestDigest(repo: string, reference: string): Promise<string | undefined> {
    this.maxLookups = Math.max(this.maxLookups, ++this.lookups);
    try {
      if (this.lookupDelayMs > 0) await new Promise((r) => setTimeout(r, this.lookupDelayMs));
      return this.manifests.get(`${repo}:${reference}`);
    } finally {
      this.lookups--;
    }
  }
  async putManifest(image: DestinationImage, reference: string, bytes: Uint8Array): Promise<void> {
    const c = new DigestCounter();
    c.update(bytes);
    const digest = c.digest();
    this.manifests.set(`${image.repository}:${reference}`, digest);
    this.manifests.set(`${image.repository}:${digest}`, digest);
  }
  async commit(): Promise<void> {}
  async close(): Promise<void> {}
}

describe('bundle adapter: the pass and the copy engine (in-memory destination)', function () {
  this.timeout(120_000);
  let work: string;
  before(async () => {
    work = await mkdtemp(join(tmpdir(), 'mirror-engine-'));
  });
  after(async () => rm(work, { recursive: true, force: true }));

  async function bundle(name: string, order: 'metadata-first' | 'metadata-last', layerBytes: number): Promise<{ file: string; refs: string[] }> {
    const layout = await buildOciLayout({
      seed: name,
      images: [
        { ref: 'gcr.io/a/base:1', layers: [{ files: 1, sizeBytes: layerBytes }] },
        { ref: 'gcr.io/b/child:1', sharedBaseWith: 'gcr.io/a/base:1', layers: [{ files: 1, sizeBytes: 2000 }] },
      ],
    });
    const file = join(work, `${name}.tar`);
    await writeTarBundle(layout.files, file, { order, compression: 'none' });
    return { file, refs: layout.images.map((i) => i.ref!) };
  }

  const target = parseTarget('registry.local:5000/ns');
  const run = async (file: string, dest: MemoryRegistry, memoryBlobMax?: number, jobs?: number, rereadPasses?: number) => {
    const source = await openBundleSource(file, { layerCachePath: null });
    try {
      return await copyBundle(source, dest, {
        map: (img) => destinationFor(target, img),
        stagingRepository: 'ns/mirror-staging',
        memoryBlobMax,
        jobs,
        rereadPasses,
      });
    } finally {
      await source.close();
    }
  };

  it('uploads each blob once and mounts it into the other repositories (metadata first)', async () => {
    const { file } = await bundle('first', 'metadata-first', 50_000);
    const dest = new MemoryRegistry();
    const r = await run(file, dest);
    assert.deepEqual(r.images.map((i) => i.status), ['pushed', 'pushed']);
    const perDigest = new Map<string, number>();
    for (const u of dest.uploads) perDigest.set(u.digest, (perDigest.get(u.digest) ?? 0) + 1);
    assert.ok([...perDigest.values()].every((n) => n === 1), 'no blob uploaded twice');
    assert.equal(r.blobs.mounted, 1, 'the shared base layer was mounted into the second repository');
    assert.equal(r.passes, 1);
  });

  it('when mounts are refused (202), reads the bundle again for the layers that went to staging and tags every image', async () => {
    const { file } = await bundle('refused', 'metadata-last', 300_000);
    const dest = new MemoryRegistry();
    dest.refuseMounts = true;
    // Everything over 100 kB counts as large here, so the shared base layer is streamed.
    const r = await run(file, dest, 100_000);
    assert.deepEqual(r.images.map((i) => i.status), ['pushed', 'pushed']);
    assert.ok(r.passes >= 2, `the bundle was read again (${r.passes} passes)`);
    for (const repo of ['ns/a/base', 'ns/b/child']) {
      assert.ok(dest.manifests.get(`${repo}:1`), `${repo}:1 is tagged`);
    }
  });

  it('reads the bundle again for a large blob whose upload was cut, and tags nothing before it is in place', async () => {
    // Entries up to 4 MiB are read whole by the bundle source, and blobs up to memoryBlobMax by the engine: a
    // 5 MiB layer with a 1 MiB memoryBlobMax is streamed.
    const { file } = await bundle('cut', 'metadata-last', 5 * 1024 * 1024);
    const dest = new MemoryRegistry();
    dest.cutStreamsOver = 1024 * 1024;
    const r = await run(file, dest, 1024 * 1024);
    assert.deepEqual(r.images.map((i) => i.status), ['pushed', 'pushed']);
    assert.equal(dest.cutStreamsOver, undefined, 'the cut happened');
    assert.equal(r.passes, 2);
  });

  it('a second run over the same destination uploads nothing and skips every image', async () => {
    const { file } = await bundle('again', 'metadata-last', 50_000);
    const dest = new MemoryRegistry();
    await run(file, dest);
    const before = dest.uploads.length;
    const r = await run(file, dest);
    assert.equal(dest.uploads.length, before);
    assert.deepEqual(r.images.map((i) => i.status), ['skipped', 'skipped']);
  });

  it('keeps manifest lookups within --jobs, however many images finish at once', async () => {
    const layout = await buildOciLayout({
      seed: 'many',
      images: Array.from({ length: 12 }, (_, i) => ({ ref: `gcr.io/many/img-${i}:v${i}`, layers: [{ files: 1, sizeBytes: 500 }] })),
    });
    const file = join(work, 'many.tar');
    await writeTarBundle(layout.files, file, { order: 'metadata-last', compression: 'none' });
    const dest = new MemoryRegistry();
    dest.lookupDelayMs = 20;
    const r = await run(file, dest, undefined, 3);
    assert.equal(r.images.filter((i) => i.status === 'pushed').length, 12);
    assert.ok(dest.maxLookups >= 2, `lookups overlap (${dest.maxLookups})`);
    assert.ok(dest.maxLookups <= 3, `at most 3 manifest lookups at once, saw ${dest.maxLookups}`);
  });

  it('a blob that went by in the stream is not uploaded from nowhere: the mount session is cancelled, and with no re-read left the image fails with the reads it had', async () => {
    const { file } = await bundle('gone', 'metadata-last', 300_000);
    const dest = new MemoryRegistry();
    dest.refuseMounts = true;
    const r = await run(file, dest, 100_000, undefined, 0);
    assert.equal(r.passes, 1);
    assert.ok(r.images.some((i) => i.status === 'failed' && /could not be uploaded after 0 extra reads of the bundle/.test(i.error ?? '')), JSON.stringify(r.images));
    assert.ok(dest.sessions > 0, 'mounts were refused with a session');
    assert.equal(dest.cancelled, dest.sessions, 'every session a refused mount opened was cancelled');
  });

  it('into oci:DIR, an image known only by digest is recorded in index.json even when another image put its manifest first', async () => {
    const layout = await buildOciLayout({
      seed: 'digest-child',
      images: [{ ref: 'gcr.io/t/app:1', platforms: [{ os: 'linux', arch: 'amd64' }, { os: 'linux', arch: 'arm64' }], layers: [{ files: 1 }] }],
    });
    const child = layout.images[0]!.manifests[0]!;
    const index = JSON.parse(layout.files.get('index.json')!.toString('utf8')) as { manifests: Descriptor[] };
    index.manifests.push({ mediaType: child.mediaType, digest: child.digest, size: child.size, annotations: { 'io.containerd.image.name': `gcr.io/t/app@${child.digest}` } });
    layout.files.set('index.json', Buffer.from(JSON.stringify(index)));
    const file = join(work, 'digest-child.tar');
    await writeTarBundle(layout.files, file, { order: 'metadata-first', compression: 'none' });
    const out = join(work, 'digest-child-out');
    const dest = await openLayoutDestination(out);
    const source = await openBundleSource(file, { layerCachePath: null });
    try {
      // One image at a time, in bundle order: the index puts the child's manifest first; the child, by digest, is not
      // in index.json as such yet, so it is written (its entry added; its manifest and blobs are there already).
      const r = await copyBundle(source, dest, { map: (img) => destinationFor(parseTarget(`oci:${out}`), img), jobs: 1 });
      assert.deepEqual(r.images.map((i) => i.status), ['pushed', 'pushed']);
    } finally {
      await source.close();
      await dest.close();
    }
    const written = JSON.parse(await readFile(join(out, 'index.json'), 'utf8')) as { manifests: Descriptor[] };
    assert.ok(written.manifests.some((m) => m.digest === child.digest), `the digest-only image is listed: ${JSON.stringify(written.manifests)}`);
  });
});

/** oneImageSource serves one image (a config and a layer) from memory, with the optional contracts a bundle uses. */
function oneImageSource(extra: Pick<ImageSource, 'check' | 'unavailable' | 'holds'>, foreign = false): { source: ImageSource; root: Descriptor; layer: Descriptor } {
  const layerBytes = Buffer.from('layer bytes');
  // One diff_id for the one layer (the copy of a local source checks they agree).
  const config = Buffer.from(JSON.stringify({ architecture: 'amd64', os: 'linux', rootfs: { type: 'layers', diff_ids: [sha256Digest(layerBytes)] } }));
  const configDesc: Descriptor = { mediaType: 'application/vnd.oci.image.config.v1+json', digest: sha256Digest(config), size: config.byteLength };
  const layer: Descriptor = foreign
    ? { mediaType: 'application/vnd.oci.image.layer.nondistributable.v1.tar', digest: sha256Digest(layerBytes), size: layerBytes.byteLength, urls: ['https://example.invalid/layer'] }
    : { mediaType: 'application/vnd.oci.image.layer.v1.tar', digest: sha256Digest(layerBytes), size: layerBytes.byteLength };
  const manifest = Buffer.from(JSON.stringify({ schemaVersion: 2, mediaType: 'application/vnd.oci.image.manifest.v1+json', config: configDesc, layers: [layer] }));
  const root: Descriptor = { mediaType: 'application/vnd.oci.image.manifest.v1+json', digest: sha256Digest(manifest), size: manifest.byteLength };
  const blobs = new Map<string, Uint8Array>([
    [configDesc.digest, config],
    [layer.digest, layerBytes],
  ]);
  const source: ImageSource = {
    kind: 'random',
    description: 'memory',
    resolve: async () => root,
    manifest: async (_r, digest) => ({ digest, mediaType: root.mediaType, bytes: manifest }),
    openBlob: async (_r, desc) =>
      (async function* one() {
        yield blobs.get(desc.digest)!;
      })(),
    ...extra,
    close: async () => {},
  };
  return { source, root, layer };
}

describe('copy engine: optional source contracts', () => {
  const target: DestinationImage = { repository: 'ns/app', tag: '1', name: 'registry.local/ns/app:1' };
  const copyOne = async (source: ImageSource, dest: MemoryRegistry) => {
    const run = copyImagesFrom([{ source, image: { repository: '' }, name: 'memory/app:1', destination: target }], dest);
    const out = [];
    for await (const o of run.outcomes) out.push(o);
    return out;
  };

  it('check: a descriptor the source knows to be bad fails the image before anything is sent', async () => {
    const dest = new MemoryRegistry();
    const { source, layer } = oneImageSource({ check: (d) => (d.digest === sha256Digest('layer bytes') ? new MirrorError('DIGEST_MISMATCH', `blob ${d.digest}: bad bytes`) : undefined) });
    const [o] = await copyOne(source, dest);
    assert.equal(o?.status, 'failed');
    assert.match(o?.error ?? '', new RegExp(`blob ${layer.digest}: bad bytes`));
    assert.equal(dest.uploads.length, 0);
    assert.equal(dest.manifests.size, 0);
  });

  it('unavailable: a blob the source cannot give now fails with its reason, and no upload is tried', async () => {
    const dest = new MemoryRegistry();
    const opened: string[] = [];
    const { source, layer } = oneImageSource({ unavailable: (d) => (d.digest === sha256Digest('layer bytes') ? new MirrorError('BAD_INPUT', `blob ${d.digest} went by`) : undefined) });
    const open = source.openBlob.bind(source);
    source.openBlob = async (r, d, o) => {
      opened.push(d.digest);
      return open(r, d, o);
    };
    const [o] = await copyOne(source, dest);
    assert.equal(o?.status, 'failed');
    assert.match(o?.error ?? '', new RegExp(`blob ${layer.digest} went by`));
    assert.ok(!dest.uploads.some((u) => u.digest === layer.digest), 'the layer was not uploaded');
    assert.ok(opened.length > 0 && !opened.includes(layer.digest), `only the config was opened: ${opened.join(', ')}`);
  });

  it('holds: a non-distributable layer is copied when the source holds it, left to its URLs when it does not', async () => {
    for (const held of [true, false]) {
      const dest = new MemoryRegistry();
      const { source, layer } = oneImageSource({ holds: () => held }, true);
      const [o] = await copyOne(source, dest);
      assert.equal(o?.status, 'pushed');
      assert.equal(dest.uploads.some((u) => u.digest === layer.digest), held, `held: ${held}`);
    }
  });
});
