/**
 * Trees of dir: images, both halves of carrying images into an air gap, against a real docker-registry and skopeo:
 * - `mirror sync --src dir --dest docker SOURCE DEST`: a tree skopeo wrote lands where `skopeo sync --src dir` puts
 *   it, with the same digests; --scoped and --append-suffix name as skopeo does; a second run copies nothing; a
 *   broken image among good ones fails alone (exit 7); --prune is refused;
 * - `mirror sync --src docker|yaml --dest dir SOURCE DEST`: the same files, byte for byte, as `skopeo sync --dest dir`
 *   writes; blobs shared by images are linked, not sent twice; a second run writes nothing; a directory in the way
 *   fails its image alone.
 */
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { cpSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { splitName } from '../../src/sync/dir-tree.js';
import { buildOciLayout, type BuiltLayout, writeDirectory } from '../../testdata/make-fixtures.js';
import { homeMaker, isolatedEnv } from '../helpers/auth-env.js';
import { runCli, type CliResult } from '../helpers/cli.js';
import { run, stopAll } from '../helpers/proc.js';
import { startRegistry, type TestRegistry } from '../helpers/registry.js';
import { skopeoInspectRawDigest, skopeoListTags, SKOPEO_TIMEOUT_MS } from '../helpers/skopeo.js';

describe('sync --src dir: splitName', () => {
  it('reads a directory name as skopeo reads a docker reference: tag, digest, or latest', () => {
    const d = `sha256:${'a'.repeat(64)}`;
    assert.deepEqual(splitName('busybox:1.36'), { path: 'busybox', tag: '1.36' });
    assert.deepEqual(splitName('quay.io/team/app:1.0'), { path: 'quay.io/team/app', tag: '1.0' });
    assert.deepEqual(splitName(`team/app@${d}`), { path: 'team/app', digest: d });
    assert.deepEqual(splitName('localhost:5000/app'), { path: 'localhost:5000/app', tag: 'latest' });
    assert.deepEqual(splitName('app'), { path: 'app', tag: 'latest' });
  });
});

describe('mirror sync with trees of dir: images (integration: docker-registry, skopeo)', function () {
  this.timeout(300_000);
  let work: string;
  let reg: TestRegistry;
  let layout: BuiltLayout;
  let tree: string;
  const home = homeMaker(() => work);
  const digestOf = (ref: string): string => layout.images.find((i) => i.ref === ref)!.digest;
  const sync = (args: string[]): Promise<CliResult> => runCli(['sync', '--src-tls-verify=false', ...args], { env: isolatedEnv(home()) });
  const fromDir = (args: string[]): Promise<CliResult> => runCli(['sync', '--src', 'dir', '--dest', 'docker', '--dest-tls-verify=false', ...args], { env: isolatedEnv(home()) });
  const skopeo = (args: string[]): Promise<string> => run('skopeo', args, { timeoutMs: SKOPEO_TIMEOUT_MS });
  /** files lists a tree's files (signatures aside: skopeo stores the registry's, which has none to give). */
  const files = (root: string): string[] =>
    readdirSync(root, { recursive: true, encoding: 'utf8' })
      .filter((f) => statSync(join(root, f)).isFile() && !/signature-\d+$/.test(f))
      .sort();

  before(async () => {
    work = mkdtempSync(join(tmpdir(), 'mirror-sync-dir-'));
    layout = await buildOciLayout({
      seed: 'sync-dir',
      images: [
        { ref: 'docker.io/library/multi:1.0', platforms: [{ os: 'linux', arch: 'amd64' }, { os: 'linux', arch: 'arm64', variant: 'v8' }], layers: [{ files: 2, sizeBytes: 30_000 }] },
        { ref: 'quay.io/team/app:2.0', layers: [{ files: 2, sizeBytes: 40_000 }] },
        { ref: 'quay.io/team/app:2.1', sharedBaseWith: 'quay.io/team/app:2.0', layers: [{ files: 2, sizeBytes: 40_000 }, { files: 1, sizeBytes: 900 }] },
      ],
    });
    const oci = join(work, 'layout');
    await writeDirectory(layout.files, oci);
    reg = await startRegistry();
    // The tree, as `skopeo sync --src docker --dest dir --scoped` and `skopeo copy ... dir:` write one.
    tree = join(work, 'usb');
    mkdirSync(join(tree, 'quay.io', 'team'), { recursive: true });
    mkdirSync(join(tree, 'docker.io', 'library'), { recursive: true });
    await skopeo(['copy', '--all', `oci:${oci}:1.0`, `dir:${join(tree, 'docker.io', 'library', 'multi:1.0')}`]);
    await skopeo(['copy', `oci:${oci}:2.0`, `dir:${join(tree, 'quay.io', 'team', 'app:2.0')}`]);
    await skopeo(['copy', `oci:${oci}:2.1`, `dir:${join(tree, 'quay.io', 'team', 'app:2.1')}`]);
    // Named without a tag: latest, as skopeo names it.
    cpSync(join(tree, 'quay.io', 'team', 'app:2.1'), join(tree, 'quay.io', 'team', 'tool'), { recursive: true });
    // The source registry of --dest dir; another app:2.0, a different image, which unscoped names the same directory.
    await skopeo(['copy', '--all', '--dest-tls-verify=false', `oci:${oci}:1.0`, `docker://${reg.host}/src/multi:1.0`]);
    await skopeo(['copy', '--dest-tls-verify=false', `oci:${oci}:2.0`, `docker://${reg.host}/src/team/app:2.0`]);
    await skopeo(['copy', '--dest-tls-verify=false', `oci:${oci}:2.1`, `docker://${reg.host}/src/team/app:2.1`]);
    await skopeo(['copy', '--dest-tls-verify=false', `oci:${oci}:2.1`, `docker://${reg.host}/src/other/app:2.0`]);
  });
  after(async () => {
    await reg?.stop();
    await stopAll();
    if (work) rmSync(work, { recursive: true, force: true });
  });

  it('lands where skopeo sync --src dir puts it, with the same digests, unscoped and --scoped; a second run copies nothing', async () => {
    await skopeo(['sync', '--all', '--src', 'dir', '--dest', 'docker', '--dest-tls-verify=false', tree, `${reg.host}/by-skopeo`]);
    const r = await fromDir([tree, `${reg.host}/by-mirror`]);
    assert.equal(r.code, 0, r.stderr + r.stdout);
    assert.match(r.stdout, /synced: 4 copied, 0 unchanged, 0 failed/);
    const expected: Record<string, string[]> = { multi: ['1.0'], app: ['2.0', '2.1'], tool: ['latest'] };
    for (const [repo, tags] of Object.entries(expected)) {
      assert.deepEqual((await skopeoListTags(`docker://${reg.host}/by-skopeo/${repo}`)).sort(), tags, `skopeo: ${repo}`);
      assert.deepEqual((await skopeoListTags(`docker://${reg.host}/by-mirror/${repo}`)).sort(), tags, `mirror: ${repo}`);
      for (const tag of tags) {
        assert.equal(await skopeoInspectRawDigest(`docker://${reg.host}/by-mirror/${repo}:${tag}`), await skopeoInspectRawDigest(`docker://${reg.host}/by-skopeo/${repo}:${tag}`), `${repo}:${tag}`);
      }
    }
    assert.equal(await skopeoInspectRawDigest(`docker://${reg.host}/by-mirror/multi:1.0`), digestOf('docker.io/library/multi:1.0'));
    assert.equal(await skopeoInspectRawDigest(`docker://${reg.host}/by-mirror/app:2.1`), digestOf('quay.io/team/app:2.1'));
    const again = await fromDir(['--log-format', 'json', tree, `${reg.host}/by-mirror`]);
    assert.equal(again.code, 0, again.stderr);
    const lines = again.stdout.trim().split('\n').map((l) => JSON.parse(l) as Record<string, unknown>);
    assert.deepEqual(lines.filter((l) => l['event'] === 'image').map((l) => l['action']), ['skipped', 'skipped', 'skipped', 'skipped']);
    assert.equal(lines.at(-1)!['bytes'], 0);
    // --scoped keeps the path under SOURCE; --append-suffix goes on the tag.
    const scoped = await fromDir(['--scoped', '--append-suffix', '-usb', tree, `${reg.host}/scoped`]);
    assert.equal(scoped.code, 0, scoped.stderr + scoped.stdout);
    assert.deepEqual((await skopeoListTags(`docker://${reg.host}/scoped/quay.io/team/app`)).sort(), ['2.0-usb', '2.1-usb']);
    assert.equal(await skopeoInspectRawDigest(`docker://${reg.host}/scoped/docker.io/library/multi:1.0-usb`), digestOf('docker.io/library/multi:1.0'));
    // SOURCE that is itself an image is named by its own name.
    const one = await fromDir([join(tree, 'quay.io', 'team', 'app:2.0'), `${reg.host}/single`]);
    assert.equal(one.code, 0, one.stderr + one.stdout);
    assert.equal(await skopeoInspectRawDigest(`docker://${reg.host}/single/app:2.0`), digestOf('quay.io/team/app:2.0'));
  });

  it('a broken image among good ones fails alone, named (exit 7); --prune and a missing SOURCE are usage errors (exit 2)', async () => {
    const mixed = join(work, 'mixed');
    cpSync(join(tree, 'quay.io', 'team', 'app:2.0'), join(mixed, 'good:1'), { recursive: true });
    mkdirSync(join(mixed, 'broken:1'), { recursive: true });
    writeFileSync(join(mixed, 'broken:1', 'manifest.json'), '{}');
    mkdirSync(join(mixed, 'Upper:1'), { recursive: true });
    cpSync(join(tree, 'quay.io', 'team', 'app:2.0'), join(mixed, 'Upper:1'), { recursive: true });
    const r = await fromDir([mixed, `${reg.host}/mixed`]);
    assert.equal(r.code, 7, r.stderr + r.stdout);
    assert.match(r.stdout + r.stderr, /broken:1 is not a dir: image .* it has no version/);
    assert.match(r.stdout + r.stderr, /Upper:1 would land at .*\/mixed\/Upper: not a valid repository path/);
    assert.equal(await skopeoInspectRawDigest(`docker://${reg.host}/mixed/good:1`), digestOf('quay.io/team/app:2.0'));
    const prune = await fromDir(['--prune', mixed, `${reg.host}/mixed`]);
    assert.equal(prune.code, 2, prune.stderr);
    assert.match(prune.stderr, /--prune .* --src dir/);
    const missing = await fromDir([join(work, 'nowhere'), `${reg.host}/mixed`]);
    assert.equal(missing.code, 2, missing.stderr);
    assert.match(missing.stderr, /nowhere/);
  });

  it('writes what skopeo sync --dest dir writes, byte for byte (unscoped and --scoped); shared blobs linked; a second run writes nothing', async () => {
    for (const scoped of [[], ['--scoped']]) {
      const theirs = join(work, `skopeo${scoped.length}`);
      const ours = join(work, `mirror${scoped.length}`);
      await skopeo(['sync', '--all', ...scoped, '--src', 'docker', '--dest', 'dir', '--src-tls-verify=false', `${reg.host}/src/team/app`, theirs]);
      const r = await sync(['--src', 'docker', '--dest', 'dir', ...scoped, `${reg.host}/src/team/app`, ours]);
      assert.equal(r.code, 0, r.stderr + r.stdout);
      assert.match(r.stdout, /synced: 2 copied, 0 unchanged, 0 failed/);
      assert.deepEqual(files(ours), files(theirs));
      for (const f of files(theirs)) assert.ok(readFileSync(join(ours, f)).equals(readFileSync(join(theirs, f))), f);
    }
    const ours = join(work, 'mirror0');
    assert.equal(readFileSync(join(ours, 'app:2.1', 'manifest.json')).length > 0, true);
    assert.ok(files(join(work, 'mirror1')).some((f) => f.startsWith(`${reg.host}/src/team/app:2.0/`)), 'scoped: HOST/PATH:TAG kept');
    // The base layer both images hold is one file linked twice: sent once.
    const shared = readdirSync(join(ours, 'app:2.0')).filter((f) => /^[0-9a-f]{64}$/.test(f) && readdirSync(join(ours, 'app:2.1')).includes(f));
    assert.ok(shared.length > 0);
    for (const f of shared) assert.equal(statSync(join(ours, 'app:2.0', f)).ino, statSync(join(ours, 'app:2.1', f)).ino, f);
    const before = statSync(join(ours, 'app:2.0', 'manifest.json')).mtimeMs;
    const again = await sync(['--src', 'docker', '--dest', 'dir', '--log-format', 'json', '--digestfile', join(work, 'digests'), `${reg.host}/src/team/app`, ours]);
    assert.equal(again.code, 0, again.stderr);
    const lines = again.stdout.trim().split('\n').map((l) => JSON.parse(l) as Record<string, unknown>);
    assert.deepEqual(lines.filter((l) => l['event'] === 'image').map((l) => l['action']), ['skipped', 'skipped']);
    assert.equal(statSync(join(ours, 'app:2.0', 'manifest.json')).mtimeMs, before);
    assert.equal(readFileSync(join(work, 'digests'), 'utf8'), `${digestOf('quay.io/team/app:2.0')} dir:${join(ours, 'app:2.0')}\n${digestOf('quay.io/team/app:2.1')} dir:${join(ours, 'app:2.1')}\n`);
    // Carried across: the tree read back with --src dir lands with the source digests.
    const back = await runCli(['sync', '--src', 'dir', '--dest', 'docker', '--dest-tls-verify=false', ours, `${reg.host}/back`], { env: isolatedEnv(home()) });
    assert.equal(back.code, 0, back.stderr + back.stdout);
    assert.equal(await skopeoInspectRawDigest(`docker://${reg.host}/back/app:2.1`), digestOf('quay.io/team/app:2.1'));
  });

  it('a skopeo YAML into a directory; a directory in the way fails its image alone (exit 7), untouched; --prune refused', async () => {
    const yaml = join(work, 'sync.yaml');
    writeFileSync(yaml, `${reg.host}:\n  tls-verify: false\n  images:\n    src/multi: []\n    src/team/app: ["2.0"]\n`);
    const out = join(work, 'from-yaml');
    mkdirSync(join(out, 'app:2.0'), { recursive: true });
    writeFileSync(join(out, 'app:2.0', 'mine.txt'), 'not an image');
    const r = await sync(['--src', 'yaml', '--dest', 'dir', yaml, out]);
    assert.equal(r.code, 7, r.stderr + r.stdout);
    assert.match(r.stdout + r.stderr, /app:2\.0: it is not empty \(mine\.txt\) and is not a dir: image/);
    assert.deepEqual(readdirSync(join(out, 'app:2.0')), ['mine.txt']);
    assert.equal(createHash('sha256').update(readFileSync(join(out, 'multi:1.0', 'manifest.json'))).digest('hex'), digestOf('docker.io/library/multi:1.0').slice(7));
    // Two images the naming sends to one directory conflict, as two claiming one tag do: one is written, whole.
    const both = join(work, 'sync-both.yaml');
    writeFileSync(both, `${reg.host}:\n  tls-verify: false\n  images:\n    src/team/app: ["2.0"]\n    src/other/app: ["2.0"]\n`);
    const clash = join(work, 'clash');
    const c = await sync(['--src', 'yaml', '--dest', 'dir', '--jobs', '1', both, clash]);
    assert.equal(c.code, 7, c.stderr + c.stdout);
    assert.match(c.stdout + c.stderr, /conflict: .*app:2\.0 .* map to dir:.*clash\/app:2\.0/);
    assert.equal(`sha256:${createHash('sha256').update(readFileSync(join(clash, 'app:2.0', 'manifest.json'))).digest('hex')}`, digestOf('quay.io/team/app:2.0'));
    const prune = await sync(['--src', 'yaml', '--dest', 'dir', '--prune', yaml, out]);
    assert.equal(prune.code, 2, prune.stderr);
    assert.match(prune.stderr, /--prune .*--dest dir/);
  });
});
