/**
 * Bad input to `mirror push`: each case gives a one-line cause naming the file, entry or digest, a non-zero exit
 * code from the table, no stack trace (unless --debug), and no tag for anything unverified.
 */
import assert from 'node:assert/strict';
import { mkdtemp, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ExitCode } from '../../src/errors/index.js';
import { type BadFixtures, writeBadFixtures } from '../../testdata/make-fixtures.js';
import { assertOneLineError, runCli } from '../helpers/cli.js';
import { startRegistry, type TestRegistry } from '../helpers/registry.js';
import { skopeoInspectRawDigest, skopeoListTags } from '../helpers/skopeo.js';


describe('mirror push: bad input', function () {
  this.timeout(120_000);
  let registry: TestRegistry;
  let work: string;
  let bad: BadFixtures;

  before(async () => {
    registry = await startRegistry();
    work = await mkdtemp(join(tmpdir(), 'mirror-bad-'));
    bad = await writeBadFixtures(join(work, 'bad'));
  });
  after(async () => {
    await registry?.stop();
    if (work) await rm(work, { recursive: true, force: true });
  });

  const push = (source: string, ns: string, ...extra: string[]) =>
    runCli(['push', '--source', source, '--private-registry', `http://${registry.host}/${ns}`, ...extra]);

  it('a missing file', async () => {
    const missing = join(work, 'nope.tar.xz');
    const r = await push(missing, 'x');
    assert.equal(r.code, ExitCode.BAD_INPUT);
    assertOneLineError(r.stderr, missing);
  });

  it('a file that is not a bundle', async () => {
    const r = await push(bad.notABundle, 'x');
    assert.equal(r.code, ExitCode.BAD_INPUT);
    assertOneLineError(r.stderr, bad.notABundle, 'not a bundle');
  });

  it('a truncated .tar.xz, with --debug showing a stack', async () => {
    const r = await push(bad.truncated, 'trunc');
    assert.equal(r.code, ExitCode.BAD_INPUT);
    assertOneLineError(r.stderr, bad.truncated);
    assert.deepEqual(await listRepos(registry), [], 'no tag was set');
    const d = await push(bad.truncated, 'trunc', '--debug');
    assert.equal(d.code, ExitCode.BAD_INPUT);
    assert.match(d.stderr, /\n\s+at /, '--debug shows the stack');
  });

  it('a tar with garbage after the first header', async () => {
    const r = await push(bad.garbageTar, 'garbage');
    assert.equal(r.code, ExitCode.BAD_INPUT);
    assertOneLineError(r.stderr, bad.garbageTar);
  });

  for (const [name, entry] of [
    ['dotDot', '../evil'],
    ['absolute', '/abs/path'],
    ['symlinkEscape', 'escape'],
    ['device', ''],
  ] as const) {
    it(`an unsafe entry (${name}) is refused by name, and nothing is written outside the destination`, async () => {
      const file = bad[name];
      const out = join(work, `layout-${name}`);
      const r = await runCli(['push', '--source', file, '--private-registry', `oci:${out}`]);
      assert.equal(r.code, ExitCode.BAD_INPUT, r.stderr);
      assertOneLineError(r.stderr, file, ...(entry ? [entry] : []));
      assert.deepEqual((await readdir(work)).filter((n) => n === 'evil'), []);
    });
  }

  it('a blob whose bytes do not match its digest: that image fails untagged, the others go through (partial)', async () => {
    const { path, brokenRef, brokenDigest, goodRefs } = bad.badDigest;
    const r = await push(path, 'digest', '--json');
    assert.equal(r.code, ExitCode.PARTIAL, r.stdout + r.stderr);
    const out = JSON.parse(r.stdout) as { images: Array<{ source: string; status: string; error?: string }> };
    const broken = out.images.find((i) => i.source === brokenRef);
    assert.equal(broken?.status, 'failed');
    assert.ok(broken?.error?.includes(brokenDigest), `the error names the digest: ${broken?.error}`);
    const brokenDest = `docker://${registry.host}/digest/${brokenRef.slice(brokenRef.indexOf('/') + 1)}`;
    await assert.rejects(skopeoInspectRawDigest(brokenDest), 'no tag for the broken image');
    for (const ref of goodRefs) {
      await skopeoInspectRawDigest(`docker://${registry.host}/digest/${ref.slice(ref.indexOf('/') + 1)}`);
    }
    const human = await push(path, 'digest2');
    assert.equal(human.code, ExitCode.PARTIAL);
    assert.match(human.stdout, new RegExp(`failed: ${brokenRef.replace(/[.]/g, '\\.')}: .*${brokenDigest}`));
  });

  it('an index.json naming a manifest missing from the archive: that image fails, the others go through', async () => {
    const { path, missingRef, missingDigest, goodRefs } = bad.missingManifest;
    const r = await push(path, 'missing', '--json');
    assert.equal(r.code, ExitCode.PARTIAL, r.stdout + r.stderr);
    const out = JSON.parse(r.stdout) as { images: Array<{ source: string; status: string; error?: string }> };
    const m = out.images.find((i) => i.source === missingRef);
    assert.equal(m?.status, 'failed');
    assert.ok(m?.error?.includes(missingDigest));
    for (const ref of goodRefs) await skopeoInspectRawDigest(`docker://${registry.host}/missing/${ref.slice(ref.indexOf('/') + 1)}`);
  });

  it('bad flags exit with the usage code', async () => {
    const r = await runCli(['push', '--source', bad.notABundle, '--private-registry', 'ftp://x/y']);
    assert.equal(r.code, ExitCode.USAGE);
    assertOneLineError(r.stderr, 'ftp://x/y');
    const m = await runCli(['push', '--private-registry', 'x:5000']);
    assert.equal(m.code, ExitCode.USAGE);
  });

  it('an unreachable registry fails fast with the network code, before reading the bundle', async () => {
    const r = await runCli(['push', '--source', bad.truncated, '--private-registry', 'http://127.0.0.1:9/ns', '--retry-times', '0']);
    assert.equal(r.code, ExitCode.NETWORK, r.stderr);
    assertOneLineError(r.stderr, '127.0.0.1:9');
  });
});

async function listRepos(registry: TestRegistry): Promise<string[]> {
  const res = await fetch(`${registry.url}/v2/_catalog`);
  const body = (await res.json()) as { repositories?: string[] };
  const repos = body.repositories ?? [];
  const tagged: string[] = [];
  for (const r of repos) {
    const tags = await skopeoListTags(`docker://${registry.host}/${r}`).catch(() => []);
    if (tags.length > 0) tagged.push(r);
  }
  return tagged;
}

describe('mirror push: interruption', function () {
  // Most of it is making the 32 MiB xz fixture (xz -6 of random bytes), which takes long on a loaded machine.
  this.timeout(180_000);
  it('Ctrl-C stops with exit code 130 and leaves no index naming anything incomplete', async () => {
    const { spawn } = await import('node:child_process');
    const { writeTarBundle } = await import('../../testdata/make-fixtures.js');
    const { BIN } = await import('../helpers/cli.js');
    const { existsSync } = await import('node:fs');
    const work = await mkdtemp(join(tmpdir(), 'mirror-int-'));
    try {
      const file = join(work, 'big.tar.xz');
      await writeTarBundle(await bigLayout(32 * 1024 * 1024), file, { order: 'metadata-last', compression: 'xz' });
      const out = join(work, 'out');
      const child = spawn(process.execPath, [BIN, 'push', '--source', file, '--private-registry', `oci:${out}`, '--decoder', 'lzma-native'], { stdio: ['ignore', 'pipe', 'pipe'] });
      let stderr = '';
      child.stderr.setEncoding('utf8').on('data', (d: string) => (stderr += d));
      // Interrupt once the push has started writing.
      for (let i = 0; i < 100 && !existsSync(join(out, 'oci-layout')); i++) await new Promise((r) => setTimeout(r, 50));
      await new Promise((r) => setTimeout(r, 200));
      child.kill('SIGINT');
      const code = await new Promise<number | null>((resolve) => child.once('close', resolve));
      assert.equal(code, ExitCode.INTERRUPTED, stderr);
      assert.match(stderr, /interrupted/);
      assert.equal(existsSync(join(out, 'index.json')), false, 'no index.json was written');
      const leftovers = (await readdir(join(out, 'blobs'))).filter((n) => n.startsWith('.tmp-'));
      assert.deepEqual(leftovers, [], 'no temporary blob files left');
    } finally {
      await rm(work, { recursive: true, force: true });
    }
  });
});

/** bigLayout is a one-image OCI layout whose one layer is `size` random bytes (made fast; registries do not look inside). */
async function bigLayout(size: number): Promise<Map<string, Buffer>> {
  const { randomBytes } = await import('node:crypto');
  const { sha256Digest } = await import('../../src/oci/digest.js');
  const layer = randomBytes(size);
  const layerDigest = sha256Digest(layer);
  const config = Buffer.from(JSON.stringify({ architecture: 'amd64', os: 'linux', rootfs: { type: 'layers', diff_ids: [layerDigest] } }));
  const manifest = Buffer.from(
    JSON.stringify({
      schemaVersion: 2,
      mediaType: 'application/vnd.oci.image.manifest.v1+json',
      config: { mediaType: 'application/vnd.oci.image.config.v1+json', digest: sha256Digest(config), size: config.length },
      layers: [{ mediaType: 'application/vnd.oci.image.layer.v1.tar', digest: layerDigest, size }],
    }),
  );
  const index = Buffer.from(
    JSON.stringify({
      schemaVersion: 2,
      manifests: [
        {
          mediaType: 'application/vnd.oci.image.manifest.v1+json',
          digest: sha256Digest(manifest),
          size: manifest.length,
          annotations: { 'io.containerd.image.name': 'gcr.io/int/big:1', 'org.opencontainers.image.ref.name': '1' },
        },
      ],
    }),
  );
  const blob = (b: Buffer): string => `blobs/sha256/${sha256Digest(b).slice(7)}`;
  return new Map([
    ['oci-layout', Buffer.from('{"imageLayoutVersion":"1.0.0"}')],
    ['index.json', index],
    [blob(manifest), manifest],
    [blob(config), config],
    [blob(layer), layer],
  ]);
}
