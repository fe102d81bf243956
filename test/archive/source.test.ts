import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { chmod, mkdir, readFile, symlink, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { findProgram } from '../../src/archive/index.js';
import zlib from 'node:zlib';
import { openBundleInput, type DirectoryBundleInput, type FileBundleInput } from '../../src/archive/index.js';
import {
  buildDockerSave,
  buildOciLayout,
  DEMO_SPEC,
  DOCKER_SAVE_SPEC,
  writeBadFixtures,
  writeDirectory,
  writeTarBundle,
  type BadFixtures,
  type BuiltLayout,
} from '../../testdata/make-fixtures.js';
import { collect, expectMirrorError, readAllEntries, sha256, tempDir, trackUnhandled } from './helpers.js';

const hasNodeZstd = typeof (zlib as unknown as { createZstdDecompress?: unknown }).createZstdDecompress === 'function';

async function openFile(path: string, options: Parameters<typeof openBundleInput>[1] = {}): Promise<FileBundleInput> {
  const input = await openBundleInput(path, options);
  assert.equal(input.kind, 'file');
  return input as FileBundleInput;
}

describe('archive/source', function () {
  this.timeout(60_000);
  let dir: string;
  let remove: () => Promise<void>;
  let layout: BuiltLayout;
  let bad: BadFixtures;
  let checkUnhandled: () => void;

  before(async () => {
    checkUnhandled = trackUnhandled();
    ({ dir, remove } = await tempDir('source'));
    layout = await buildOciLayout(DEMO_SPEC);
    bad = await writeBadFixtures(join(dir, 'bad'));
  });

  after(async () => {
    await remove();
    checkUnhandled();
  });

  for (const compression of ['xz', 'gzip', 'zstd', 'none'] as const) {
    for (const order of ['metadata-first', 'metadata-last'] as const) {
      it(`reads a ${order} ${compression} bundle, twice, reporting compressed bytes`, async () => {
        const path = join(dir, `demo-${order}.tar.${compression}`);
        await writeTarBundle(layout.files, path, { order, compression });
        let progress = 0;
        const input = await openFile(path, { onCompressedBytes: (n, total) => ((progress += n), assert.equal(total, input.totalBytes)) });
        assert.equal(input.compression, compression);
        const first = await readAllEntries(input.entries());
        assert.equal(input.compressedBytesRead(), input.totalBytes);
        const second = await readAllEntries(input.entries());
        assert.deepEqual([...second.entries()], [...first.entries()]);
        assert.equal(progress, 2 * input.totalBytes);
        assert.equal(first.size, layout.files.size);
        for (const [name, bytes] of layout.files) assert.equal(first.get(name), sha256(bytes), name);
      });
    }
  }

  it('decodes xz with lzma-native when asked, and zstd with node:zlib where Node has it', async function () {
    const path = join(dir, 'demo-metadata-last.tar.xz');
    const input = await openFile(path, { decoder: 'lzma-native' });
    assert.equal(input.decoder, 'lzma-native');
    assert.equal((await readAllEntries(input.entries())).size, layout.files.size);
    if (!hasNodeZstd) return;
    const z = await openFile(join(dir, 'demo-metadata-last.tar.zstd'), { decoder: 'library' });
    assert.equal(z.decoder, 'node:zlib zstd');
    assert.equal((await readAllEntries(z.entries())).size, layout.files.size);
  });

  it('stops the decoder when a pass is abandoned half-way, and can start again', async () => {
    const input = await openFile(join(dir, 'demo-metadata-last.tar.xz'));
    for await (const e of input.entries()) {
      assert.ok(e.name.length > 0);
      break;
    }
    assert.equal((await readAllEntries(input.entries())).size, layout.files.size);
  });

  it('says "no such file" for a missing path', async () => {
    const missing = join(dir, 'missing.tar.xz');
    await expectMirrorError(openBundleInput(missing), 'BAD_INPUT', [`no such file: ${missing}`]);
  });

  it('says "not a bundle" for random bytes, an empty file and a compressed non-tar', async () => {
    await expectMirrorError(openBundleInput(bad.notABundle), 'BAD_INPUT', [`${bad.notABundle} is not a bundle (not a tar archive, compressed or not)`]);
    const empty = join(dir, 'empty.tar');
    await writeFile(empty, '');
    await expectMirrorError(openBundleInput(empty), 'BAD_INPUT', [`${empty} is not a bundle`]);
    const gz = join(dir, 'text.gz');
    await writeFile(gz, zlib.gzipSync(Buffer.from('just some text, not a tar\n'.repeat(100))));
    await expectMirrorError(openBundleInput(gz), 'BAD_INPUT', [`${gz} is not a bundle`, 'gzip']);
  });

  it('reports a truncated .tar.xz as CORRUPT_ARCHIVE, with either decoder', async () => {
    for (const decoder of ['xz', 'lzma-native'] as const) {
      const input = await openFile(bad.truncated, { decoder });
      await expectMirrorError(readAllEntries(input.entries()), 'CORRUPT_ARCHIVE', [bad.truncated]);
    }
  });

  it('refuses unsafe entries while reading a file bundle', async () => {
    for (const path of [bad.dotDot, bad.absolute, bad.symlink, bad.device]) {
      const input = await openFile(path);
      await expectMirrorError(readAllEntries(input.entries()), 'UNSAFE_ENTRY', [path]);
    }
  });

  it('reads bad-digest and missing-manifest bundles (those are for the bundle reader to refuse)', async () => {
    const bd = await openFile(bad.badDigest.path);
    const got = await readAllEntries(bd.entries());
    const mismatched = [...got].filter(([name, digest]) => name.startsWith('blobs/') && digest !== `sha256:${name.slice(13)}`);
    assert.deepEqual(
      mismatched.map(([n]) => n),
      [`blobs/sha256/${bad.badDigest.brokenDigest.slice(7)}`],
    );
    const mm = await openFile(bad.missingManifest.path);
    const names = [...(await readAllEntries(mm.entries())).keys()];
    assert.ok(!names.includes(`blobs/sha256/${bad.missingManifest.missingDigest.slice(7)}`));
    assert.ok(names.includes('index.json'));
  });

  describe('directory bundles', () => {
    let layoutDir: string;
    let input: DirectoryBundleInput;

    before(async () => {
      layoutDir = join(dir, 'layout');
      await writeDirectory(layout.files, layoutDir);
      const opened = await openBundleInput(layoutDir);
      assert.equal(opened.kind, 'directory');
      input = opened as DirectoryBundleInput;
    });

    it('lists, stats and reads every file', async () => {
      const list = await input.list();
      assert.deepEqual(list, [...layout.files.keys()].sort());
      for (const name of list) {
        const expected = layout.files.get(name) ?? Buffer.alloc(0);
        assert.equal((await input.stat(name)).size, expected.byteLength);
        assert.ok((await collect(input.open(name))).equals(expected));
        assert.ok((await input.readFile(name)).equals(expected));
      }
      await expectMirrorError(input.readFile('index.json', 10), 'BAD_INPUT', ['index.json']);
    });

    it('follows symlinks that stay inside and refuses those that leave the directory', async () => {
      const d = join(dir, 'links');
      await writeDirectory(layout.files, d);
      await symlink('index.json', join(d, 'alias.json'));
      const inside = (await openBundleInput(d)) as DirectoryBundleInput;
      assert.ok((await inside.list()).includes('alias.json'));
      assert.ok((await collect(inside.open('alias.json'))).equals(layout.files.get('index.json') ?? Buffer.alloc(0)));
      await symlink('/etc/hostname', join(d, 'blobs', 'outside'));
      const outside = (await openBundleInput(d)) as DirectoryBundleInput;
      await expectMirrorError(outside.list(), 'UNSAFE_ENTRY', [join(d, 'blobs/outside'), 'outside']);
      await expectMirrorError(collect(outside.open('blobs/outside')), 'UNSAFE_ENTRY', ['outside']);
      await expectMirrorError(collect(outside.open('../etc/hostname')), 'UNSAFE_ENTRY', ['..']);
      await expectMirrorError(outside.stat('/etc/hostname'), 'UNSAFE_ENTRY', ['absolute']);
    });

    it('reads an unpacked docker save directory', async () => {
      const save = await buildDockerSave(DOCKER_SAVE_SPEC);
      const d = join(dir, 'docker-save');
      await mkdir(d);
      await writeDirectory(save.files, d);
      const opened = (await openBundleInput(d)) as DirectoryBundleInput;
      const list = await opened.list();
      assert.ok(list.includes('manifest.json'));
      for (const img of save.images) {
        for (const [i, p] of img.layerPaths.entries()) assert.equal(sha256(await collect(opened.open(p))), img.diffIds[i]);
      }
    });
  });

  it('starts the decoder once: the first pass goes on with the stream the open-time check started; close() stops it unused', async function () {
    const xz = findProgram('xz');
    if (xz === undefined) this.skip();
    const file = join(dir, 'once.tar.xz');
    await writeTarBundle(layout.files, file, { order: 'metadata-last', compression: 'xz' });
    // An xz on PATH that records each start (exec keeps the pid), in a fresh process so the program lookup sees it.
    const bin = join(dir, 'counting-bin');
    const log = join(dir, 'xz-starts.log');
    await mkdir(bin, { recursive: true });
    await writeFile(join(bin, 'xz'), `#!/bin/sh\necho $$ >> '${log}'\nexec '${xz}' "$@"\n`);
    await chmod(join(bin, 'xz'), 0o755);
    const source = new URL('../../src/archive/index.js', import.meta.url).href;
    const child = `
      import { readFileSync } from 'node:fs';
      import { openBundleInput } from ${JSON.stringify(source)};
      const starts = () => readFileSync(${JSON.stringify(log)}, 'utf8').trim().split('\\n').map(Number);
      const alive = (pid) => { try { process.kill(pid, 0); return true; } catch { return false; } };
      const a = await openBundleInput(process.argv[1]);
      let entries = 0;
      for await (const e of a.entries()) entries++;
      const afterPass = starts().length;
      const b = await openBundleInput(process.argv[1]);
      const unused = starts().at(-1);
      const aliveBefore = alive(unused);
      await b.close();
      await b.close();
      await new Promise((r) => setTimeout(r, 200));
      console.log(JSON.stringify({ entries, afterPass, aliveBefore, aliveAfter: alive(unused) }));
    `;
    const { stdout } = await promisify(execFile)(process.execPath, ['--input-type=module', '-e', child, file], {
      env: { ...process.env, PATH: `${bin}:${process.env.PATH ?? ''}` },
      timeout: 30_000,
    });
    const r = JSON.parse(stdout) as { entries: number; afterPass: number; aliveBefore: boolean; aliveAfter: boolean };
    assert.ok(r.entries > 5, `the pass read the bundle (${r.entries} entries)`);
    assert.equal(r.afterPass, 1, 'one decoder for the open-time check and the first pass');
    assert.equal((await readFile(log, 'utf8')).trim().split('\n').length, 2);
    assert.equal(r.aliveBefore, true, 'the checked stream is held open for the first pass');
    assert.equal(r.aliveAfter, false, 'close() stops a held decoder no pass took over');
  });
});
