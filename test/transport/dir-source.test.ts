/**
 * `dir:DIR` as a `mirror copy` source: what skopeo's directory transport writes (version, manifest.json, blobs named
 * by their sha256 hex, `<hex>.manifest.json` for the instances of an index copied with --all) read as written,
 * manifests verified, missing and escaping files refused; and against a real registry, images skopeo wrote with
 * `dir:` (one platform, and a whole index) copied with their digests kept, read back by skopeo; and the other way,
 * an index mirror wrote to `dir:` copied by skopeo with every digest kept.
 */
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, symlinkSync, unlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { MirrorError } from '../../src/errors/index.js';
import { closeAll } from '../../src/net/http.js';
import { MediaType } from '../../src/oci/media-types.js';
import { openDirSource } from '../../src/transport/dir/source.js';
import { parseTransportRef } from '../../src/transport/refs.js';
import { buildOciLayout, writeDirectory, type BuiltLayout } from '../../testdata/make-fixtures.js';
import { homeMaker, isolatedEnv } from '../helpers/auth-env.js';
import { runCli } from '../helpers/cli.js';
import { run, stopAll } from '../helpers/proc.js';
import { startRegistry, type TestRegistry } from '../helpers/registry.js';
import { skopeoInspectRaw, skopeoInspectRawDigest, SKOPEO_TIMEOUT_MS } from '../helpers/skopeo.js';
import { collect, rejectsWith } from '../helpers/source.js';

const sha256 = (b: Uint8Array): string => `sha256:${createHash('sha256').update(b).digest('hex')}`;
const hexOf = (d: string): string => d.slice(d.indexOf(':') + 1);
const VERSION = 'Directory Transport Version: 1.1\n';

describe('dir: source (skopeo directory transport)', () => {
  let work: string;
  const layer = Buffer.from('layer bytes '.repeat(5000));
  const config = Buffer.from(JSON.stringify({ architecture: 'amd64', os: 'linux', rootfs: { type: 'layers', diff_ids: [] } }));
  /** An OCI manifest written without a mediaType field (as the OCI spec allows). */
  const manifest = Buffer.from(
    JSON.stringify({
      schemaVersion: 2,
      config: { mediaType: MediaType.OCI_CONFIG, digest: sha256(config), size: config.length },
      layers: [{ mediaType: MediaType.OCI_LAYER_GZIP, digest: sha256(layer), size: layer.length }],
    }),
  );
  const index = Buffer.from(
    JSON.stringify({ schemaVersion: 2, mediaType: MediaType.OCI_INDEX, manifests: [{ mediaType: MediaType.OCI_MANIFEST, digest: sha256(manifest), size: manifest.length, platform: { os: 'linux', architecture: 'amd64' } }] }),
  );

  /** image writes a dir: image: one manifest, or (with `asIndex`) an index with the manifest as its instance. */
  function image(name: string, asIndex = false): string {
    const dir = join(work, name);
    mkdirSync(dir);
    writeFileSync(join(dir, 'version'), VERSION);
    writeFileSync(join(dir, hexOf(sha256(config))), config);
    writeFileSync(join(dir, hexOf(sha256(layer))), layer);
    if (asIndex) {
      writeFileSync(join(dir, 'manifest.json'), index);
      writeFileSync(join(dir, `${hexOf(sha256(manifest))}.manifest.json`), manifest);
    } else writeFileSync(join(dir, 'manifest.json'), manifest);
    return dir;
  }

  before(() => {
    work = mkdtempSync(join(tmpdir(), 'mirror-dir-source-'));
  });
  after(() => rmSync(work, { recursive: true, force: true }));

  it('parses dir:DIR with the whole rest as the directory (colons included); dir: alone is a usage error', () => {
    assert.deepEqual(parseTransportRef('dir:/media/usb/app:1.0'), { transport: 'dir', path: '/media/usb/app:1.0' });
    assert.throws(() => parseTransportRef('dir:'), (e: unknown) => e instanceof MirrorError && e.code === 'USAGE' && /dir: needs a directory/.test(e.message));
  });

  it('resolves manifest.json (its media type read from its fields when it names none) and opens blobs by their hex, at an offset', async () => {
    const s = await openDirSource(image('one'));
    const root = await s.resolve({ repository: '' });
    assert.deepEqual(root, { mediaType: MediaType.OCI_MANIFEST, digest: sha256(manifest), size: manifest.length });
    assert.deepEqual(Buffer.from((await s.manifest('', root.digest, {})).bytes), manifest);
    const desc = { mediaType: MediaType.OCI_LAYER_GZIP, digest: sha256(layer), size: layer.length };
    assert.deepEqual(await collect(await s.openBlob('', desc, {})), layer);
    assert.deepEqual(await collect(await s.openBlob('', desc, { offset: 1000 })), layer.subarray(1000));
    assert.deepEqual(await s.referrers(), []);
    assert.match(s.description, /^directory .*one$/);
  });

  it('an index copied with --all: manifest.json is the index, its instance read from <hex>.manifest.json and verified', async () => {
    const dir = image('all', true);
    const s = await openDirSource(dir);
    const root = await s.resolve({ repository: '' });
    assert.equal(root.digest, sha256(index));
    assert.equal(root.mediaType, MediaType.OCI_INDEX);
    assert.deepEqual(Buffer.from((await s.manifest('', sha256(manifest), {})).bytes), manifest);
    writeFileSync(join(dir, `${hexOf(sha256(manifest))}.manifest.json`), Buffer.concat([manifest, Buffer.from(' ')]));
    await rejectsWith(s.manifest('', sha256(manifest), {}), 'DIGEST_MISMATCH', new RegExp(hexOf(sha256(manifest)).slice(0, 12)));
    await rejectsWith(s.manifest('', `sha256:${'e'.repeat(64)}`, {}), 'NOT_FOUND', /manifest sha256:e+ is missing from dir:.*does not exist/);
  });

  it('refuses what is not a dir: image, another version, a missing blob and a blob that leads out of DIR, naming the file', async () => {
    const layoutLike = join(work, 'layout-like');
    mkdirSync(layoutLike);
    writeFileSync(join(layoutLike, 'index.json'), '{}');
    await rejectsWith(openDirSource(layoutLike), 'BAD_INPUT', /layout-like is not a dir: image .*: it has no version and manifest\.json.*oci:DIR/);
    await rejectsWith(openDirSource(join(work, 'nowhere')), 'BAD_INPUT', /no such directory: .*nowhere/);
    const v2 = image('v2');
    writeFileSync(join(v2, 'version'), 'Directory Transport Version: 2.0\n');
    await rejectsWith(openDirSource(v2), 'UNSUPPORTED', /v2\/version says "Directory Transport Version: 2\.0"; Directory Transport Version 1\.x is read/);
    const gone = image('gone');
    unlinkSync(join(gone, hexOf(sha256(layer))));
    const s = await openDirSource(gone);
    await rejectsWith(s.openBlob('', { mediaType: MediaType.OCI_LAYER_GZIP, digest: sha256(layer), size: layer.length }, {}), 'BAD_INPUT', new RegExp(`blob ${sha256(layer)} is missing`));
    const out = image('out');
    writeFileSync(join(work, 'secret'), layer);
    unlinkSync(join(out, hexOf(sha256(layer))));
    symlinkSync(join(work, 'secret'), join(out, hexOf(sha256(layer))));
    const t = await openDirSource(out);
    await rejectsWith(t.openBlob('', { mediaType: MediaType.OCI_LAYER_GZIP, digest: sha256(layer), size: layer.length }, {}), 'UNSAFE_ENTRY', /leads out of the layout/);
  });
});

describe('dir: source: mirror copy of what skopeo wrote (integration: docker-registry, skopeo)', function () {
  this.timeout(300_000);
  let work: string;
  let dst: TestRegistry;
  let layout: BuiltLayout;
  const home = homeMaker(() => work);

  before(async () => {
    work = mkdtempSync(join(tmpdir(), 'mirror-dir-copy-'));
    layout = await buildOciLayout({
      seed: 'dir-source',
      images: [
        { ref: 'docker.io/library/multi:1.0', platforms: [{ os: 'linux', arch: 'amd64' }, { os: 'linux', arch: 'arm64', variant: 'v8' }], layers: [{ files: 2, sizeBytes: 200_000 }] },
        { ref: 'quay.io/team/small:2.0', layers: [{ files: 2, sizeBytes: 300_000 }, { files: 1, sizeBytes: 700 }] },
      ],
    });
    await writeDirectory(layout.files, join(work, 'layout'));
    dst = await startRegistry();
    const skopeo = (args: string[]): Promise<string> => run('skopeo', args, { timeoutMs: SKOPEO_TIMEOUT_MS });
    await skopeo(['copy', `oci:${join(work, 'layout')}:2.0`, `dir:${join(work, 'small')}`]);
    await skopeo(['copy', '--all', `oci:${join(work, 'layout')}:1.0`, `dir:${join(work, 'multi')}`]);
  });
  after(async () => {
    await closeAll();
    await dst?.stop();
    await stopAll();
    if (work) rmSync(work, { recursive: true, force: true });
  });

  const copy = (args: string[]) => runCli(['copy', '--dest-tls-verify=false', ...args], { env: isolatedEnv(home()) });

  it('an image skopeo wrote to dir: lands with its digest; skopeo reads it back', async () => {
    const small = layout.images.find((i) => i.ref === 'quay.io/team/small:2.0')!;
    assert.equal(sha256(readFileSync(join(work, 'small', 'manifest.json'))), small.digest, 'skopeo kept the digest');
    const r = await copy([`dir:${join(work, 'small')}`, `docker://${dst.host}/team/small:2.0`]);
    assert.equal(r.code, 0, r.stderr + r.stdout);
    assert.match(r.stdout, new RegExp(`copied dir:.*small -> docker://${dst.host}/team/small:2\\.0 ${small.digest.slice(0, 19)}`));
    assert.equal(await skopeoInspectRawDigest(`docker://${dst.host}/team/small:2.0`), small.digest);
  });

  it('an index skopeo wrote with --all lands whole, digest kept, each instance with it; again, it is skipped', async () => {
    const multi = layout.images.find((i) => i.ref === 'docker.io/library/multi:1.0')!;
    const r = await copy([`dir:${join(work, 'multi')}`, `docker://${dst.host}/library/multi:1.0`]);
    assert.equal(r.code, 0, r.stderr + r.stdout);
    assert.equal(await skopeoInspectRawDigest(`docker://${dst.host}/library/multi:1.0`), multi.digest);
    for (const m of multi.manifests) {
      assert.equal(sha256(await skopeoInspectRaw(`docker://${dst.host}/library/multi@${m.digest}`)), m.digest);
    }
    const again = await copy([`dir:${join(work, 'multi')}`, `docker://${dst.host}/library/multi:1.0`]);
    assert.equal(again.code, 0, again.stderr);
    assert.match(again.stdout, /skipped|already present/);
  });

  it('mirror inspect reads it as copy does; dir: to dir: keeps every file skopeo wrote, byte for byte', async () => {
    const small = layout.images.find((i) => i.ref === 'quay.io/team/small:2.0')!;
    const seen = await runCli(['inspect', '--json', `dir:${join(work, 'small')}`], { env: isolatedEnv(home()) });
    assert.equal(seen.code, 0, seen.stderr);
    assert.equal((JSON.parse(seen.stdout) as { digest: string }).digest, small.digest);
    for (const name of ['small', 'multi']) {
      const r = await copy([`dir:${join(work, name)}`, `dir:${join(work, `${name}-copy`)}`]);
      assert.equal(r.code, 0, r.stderr);
      const files = (d: string): string[] => readdirSync(d).filter((n) => !/^signature-/.test(n)).sort();
      assert.deepEqual(files(join(work, `${name}-copy`)), files(join(work, name)));
      for (const f of files(join(work, name))) assert.ok(readFileSync(join(work, name, f)).equals(readFileSync(join(work, `${name}-copy`, f))), `${name}/${f}`);
    }
  });

  it('mirror copy docker://... dir:DIR, then skopeo copy --all dir:DIR docker://...: every digest kept', async () => {
    const multi = layout.images.find((i) => i.ref === 'docker.io/library/multi:1.0')!;
    const skopeo = (args: string[]): Promise<string> => run('skopeo', args, { timeoutMs: SKOPEO_TIMEOUT_MS });
    await skopeo(['copy', '--all', '--dest-tls-verify=false', `oci:${join(work, 'layout')}:1.0`, `docker://${dst.host}/src/multi:1.0`]);
    const out = join(work, 'out');
    const r = await runCli(['copy', '--src-tls-verify=false', `docker://${dst.host}/src/multi:1.0`, `dir:${out}`], { env: isolatedEnv(home()) });
    assert.equal(r.code, 0, r.stderr + r.stdout);
    assert.match(r.stdout, new RegExp(`dir:${out}`));
    await skopeo(['copy', '--all', '--dest-tls-verify=false', `dir:${out}`, `docker://${dst.host}/again/multi:1.0`]);
    assert.equal(await skopeoInspectRawDigest(`docker://${dst.host}/again/multi:1.0`), multi.digest);
    for (const m of multi.manifests) assert.equal(sha256(await skopeoInspectRaw(`docker://${dst.host}/again/multi@${m.digest}`)), m.digest);
    // A place that is not a dir: image: exit 3, one line naming it.
    const foreign = join(work, 'foreign');
    mkdirSync(foreign);
    writeFileSync(join(foreign, 'x'), 'y');
    const refused = await runCli(['copy', '--src-tls-verify=false', `docker://${dst.host}/src/multi:1.0`, `dir:${foreign}`], { env: isolatedEnv(home()) });
    assert.equal(refused.code, 3, refused.stderr);
    assert.match(refused.stderr, /dir:.*foreign: it is not empty \(x\) and is not a dir: image/);
  });
});
