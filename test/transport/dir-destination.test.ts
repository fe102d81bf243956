/**
 * `dir:DIR` as a `mirror copy` destination: written as skopeo's directory transport writes it (version, manifest.json,
 * blobs named by their hex, `<hex>.manifest.json` for the instances of an index); what DIR may be (new, empty, a dir:
 * image); an image already there skipped; a replaced image never half-written, its leftovers removed after commit; a
 * failed copy leaving nothing it added. Read back by mirror's dir: source here, and by skopeo into a real registry
 * in ./dir-source.test.ts (its integration part, which has the registry and what skopeo wrote).
 */
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { copyImage, type CopyImageResult } from '../../src/copy/copy-image.js';
import type { ProgressEvent } from '../../src/events/index.js';
import { openDirSource } from '../../src/transport/dir/source.js';
import type { SideContext } from '../../src/transport/index.js';
import { buildOciLayout, type BuiltImage, type BuiltLayout, writeDirectory } from '../../testdata/make-fixtures.js';

/** SIDE stands for both sides' connection settings: the file transports need none. */
const SIDE = {} as unknown as SideContext;
const sha256 = (b: Uint8Array): string => `sha256:${createHash('sha256').update(b).digest('hex')}`;
const hexOf = (d: string): string => d.slice(d.indexOf(':') + 1);

function copy(source: string, destination: string, extra: Partial<Parameters<typeof copyImage>[0]> = {}): Promise<CopyImageResult> {
  return copyImage({ source, destination, src: SIDE, dest: SIDE, ...extra });
}

/** dirFiles is what a dir: image of `image` holds, as skopeo writes it. */
function dirFiles(image: BuiltImage): string[] {
  const instances = new Set(image.manifests.map((m) => m.digest));
  const files = image.blobs.filter((b) => b !== image.digest).map((b) => (instances.has(b) && b !== image.digest ? `${hexOf(b)}.manifest.json` : hexOf(b)));
  return ['manifest.json', 'version', ...files].sort();
}

describe('dir: destination (skopeo directory transport)', function () {
  this.timeout(60_000);
  let work: string;
  let layout: BuiltLayout;
  let layoutDir: string;
  let multi: BuiltImage;
  let small: BuiltImage;

  before(async () => {
    work = mkdtempSync(join(tmpdir(), 'mirror-dir-dest-'));
    layout = await buildOciLayout({
      seed: 'dir-dest',
      images: [
        { ref: 'docker.io/library/multi:1.0', platforms: [{ os: 'linux', arch: 'amd64' }, { os: 'linux', arch: 'arm64', variant: 'v8' }], layers: [{ files: 2, sizeBytes: 100_000 }, { files: 1, sizeBytes: 900 }] },
        { ref: 'quay.io/team/small:2.0', layers: [{ files: 2, sizeBytes: 5000 }] },
      ],
    });
    layoutDir = join(work, 'layout');
    await writeDirectory(layout.files, layoutDir);
    multi = layout.images[0]!;
    small = layout.images[1]!;
  });
  after(() => rmSync(work, { recursive: true, force: true }));

  it('writes one image as skopeo does: version, manifest.json, blobs by hex; the dir: source reads it back, digest kept', async () => {
    const out = join(work, 'small');
    const r = await copy(`oci:${layoutDir}:2.0`, `dir:${out}`);
    assert.equal(r.outcome.status, 'pushed', r.outcome.error);
    assert.equal(readFileSync(join(out, 'version'), 'utf8'), 'Directory Transport Version: 1.1\n');
    assert.equal(sha256(readFileSync(join(out, 'manifest.json'))), small.digest);
    assert.deepEqual(readdirSync(out).sort(), dirFiles(small));
    for (const name of readdirSync(out).filter((n) => /^[0-9a-f]{64}$/.test(n))) assert.equal(hexOf(sha256(readFileSync(join(out, name)))), name);
    const source = await openDirSource(out);
    assert.equal((await source.resolve({ repository: '' })).digest, small.digest);
  });

  it('an index: manifest.json is the index, each instance in <hex>.manifest.json; a second copy is skipped and rewrites nothing', async () => {
    const out = join(work, 'multi');
    const r = await copy(`oci:${layoutDir}:1.0`, `dir:${out}`);
    assert.equal(r.outcome.status, 'pushed', r.outcome.error);
    assert.equal(sha256(readFileSync(join(out, 'manifest.json'))), multi.digest);
    assert.deepEqual(readdirSync(out).sort(), dirFiles(multi));
    for (const m of multi.manifests) assert.equal(sha256(readFileSync(join(out, `${hexOf(m.digest)}.manifest.json`))), m.digest);
    const before = statSync(join(out, 'manifest.json')).mtimeMs;
    const again = await copy(`oci:${layoutDir}:1.0`, `dir:${out}`);
    assert.equal(again.outcome.status, 'skipped', again.outcome.error);
    assert.equal(statSync(join(out, 'manifest.json')).mtimeMs, before);
    // One platform picked: the instance alone is the image.
    const one = join(work, 'one');
    const p = await copy(`oci:${layoutDir}:1.0`, `dir:${one}`, { platforms: [{ os: 'linux', architecture: 'arm64', variant: 'v8' }] });
    assert.equal(p.outcome.status, 'pushed', p.outcome.error);
    const arm = multi.manifests.find((m) => m.platform.arch === 'arm64')!;
    assert.equal(sha256(readFileSync(join(one, 'manifest.json'))), arm.digest);
    assert.ok(!readdirSync(one).some((n) => n.endsWith('.manifest.json')));
  });

  it('replacing a dir: image: the new one in place, the old one\'s blobs, instances and signatures removed, other files kept', async () => {
    const out = join(work, 'replaced');
    assert.equal((await copy(`oci:${layoutDir}:1.0`, `dir:${out}`)).outcome.status, 'pushed');
    writeFileSync(join(out, 'signature-1'), 'a signature of the old image');
    writeFileSync(join(out, 'NOTES'), 'kept: not a file of the image format');
    const r = await copy(`oci:${layoutDir}:2.0`, `dir:${out}`);
    assert.equal(r.outcome.status, 'pushed', r.outcome.error);
    assert.equal(sha256(readFileSync(join(out, 'manifest.json'))), small.digest);
    assert.deepEqual(readdirSync(out).sort(), [...dirFiles(small), 'NOTES'].sort());
  });

  it('refuses what is not new, empty or a dir: image, before writing anything; a dry run writes nothing', async () => {
    const foreign = join(work, 'foreign');
    mkdirSync(foreign);
    writeFileSync(join(foreign, 'report.txt'), 'mine');
    await assert.rejects(copy(`oci:${layoutDir}:2.0`, `dir:${foreign}`), /dir:.*foreign: it is not empty \(report\.txt\) and is not a dir: image/);
    assert.deepEqual(readdirSync(foreign), ['report.txt']);
    const file = join(work, 'a-file');
    writeFileSync(file, 'x');
    await assert.rejects(copy(`oci:${layoutDir}:2.0`, `dir:${file}`), /it is not a directory/);
    await assert.rejects(copy(`oci:${layoutDir}:2.0`, `dir:${layoutDir}`), /not a dir: image/);
    assert.ok(!readdirSync(layoutDir).includes('version'));
    const dry = join(work, 'dry');
    const seen: ProgressEvent[] = [];
    const d = await copy(`oci:${layoutDir}:2.0`, `dir:${dry}`, { dryRun: true, events: (e) => seen.push(e) });
    assert.equal(d.outcome.status, 'planned', d.outcome.error);
    // The progress line of a dry run says what it would do (it said "already present").
    assert.deepEqual(seen.filter((e) => e.type === 'image').map((e) => e.status), ['planned']);
    assert.throws(() => statSync(dry));
  });

  it('a copy that fails leaves nothing it added: a new DIR is removed, an existing image stays whole', async () => {
    const bad = join(work, 'bad-layout');
    await writeDirectory(layout.files, bad);
    const layer = small.manifests[0]!.layers[0]!;
    const path = join(bad, 'blobs', 'sha256', hexOf(layer.digest));
    const bytes = readFileSync(path);
    bytes[bytes.length - 20] = (bytes[bytes.length - 20] ?? 0) ^ 0xff;
    writeFileSync(path, bytes);
    const fresh = join(work, 'fresh');
    const r = await copy(`oci:${bad}:2.0`, `dir:${fresh}`);
    assert.equal(r.outcome.errorCode, 'DIGEST_MISMATCH');
    assert.throws(() => statSync(fresh), 'the directory the run made is gone');
    const kept = join(work, 'kept');
    assert.equal((await copy(`oci:${layoutDir}:1.0`, `dir:${kept}`)).outcome.status, 'pushed');
    const before = readdirSync(kept).sort();
    const failed = await copy(`oci:${bad}:2.0`, `dir:${kept}`);
    assert.equal(failed.outcome.errorCode, 'DIGEST_MISMATCH');
    assert.deepEqual(readdirSync(kept).sort(), before);
    assert.equal(sha256(readFileSync(join(kept, 'manifest.json'))), multi.digest);
  });
});
