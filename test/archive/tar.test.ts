import assert from 'node:assert/strict';
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { drain, normalizeEntryName, readTar, type ReadTarOptions, type TarEntry } from '../../src/archive/index.js';
import {
  buildDockerSave,
  buildOciLayout,
  bundleTar,
  DEMO_SPEC,
  DOCKER_SAVE_SPEC,
  packTar,
  writeBadFixtures,
  type BadFixtures,
  type BuiltLayout,
} from '../../testdata/make-fixtures.js';
import { collect, expectMirrorError, sh, sha256, tempDir, trackUnhandled } from './helpers.js';

/** chunked gives bytes as an async iterable of small chunks (like a decoder would). */
async function* chunked(bytes: Buffer, size = 1000): AsyncGenerator<Uint8Array> {
  for (let i = 0; i < bytes.byteLength; i += size) {
    await Promise.resolve();
    yield bytes.subarray(i, i + size);
  }
}

function tar(bytes: Buffer, options: Partial<ReadTarOptions> = {}): AsyncGenerator<TarEntry> {
  return readTar(chunked(bytes), { file: 'bundle.tar', ...options });
}

async function names(entries: AsyncIterable<TarEntry>): Promise<string[]> {
  const out: string[] = [];
  for await (const e of entries) {
    out.push(e.name);
    await e.drain();
  }
  return out;
}

describe('archive/tar', function () {
  this.timeout(60_000);
  let layout: BuiltLayout;
  let dir: string;
  let remove: () => Promise<void>;
  let bad: BadFixtures;
  let checkUnhandled: () => void;

  before(async () => {
    checkUnhandled = trackUnhandled();
    layout = await buildOciLayout(DEMO_SPEC);
    ({ dir, remove } = await tempDir('tar'));
    bad = await writeBadFixtures(join(dir, 'bad'));
  });

  after(async () => {
    await remove();
    checkUnhandled();
  });

  for (const format of ['gnu', 'pax']) {
    it(`a sparse entry (GNU tar --sparse, ${format} format) is UNSUPPORTED, named by its real name with the fix`, async () => {
      await sh(
        `rm -rf holey && mkdir holey && printf tail > holey/blob && truncate -s 4M holey/blob && printf end >> holey/blob && tar -C holey --sparse --format=${format} --sparse-version=1.0 -cf sparse-${format}.tar blob 2>/dev/null || tar -C holey --sparse --format=${format} -cf sparse-${format}.tar blob`,
        { cwd: dir },
      );
      const bytes = await readFile(join(dir, `sparse-${format}.tar`));
      await expectMirrorError(names(tar(bytes)), 'UNSUPPORTED', ['entry "blob" in bundle.tar (entry 1) is a sparse file (tar --sparse)', 'without --sparse']);
    });
  }

  for (const order of ['metadata-first', 'metadata-last'] as const) {
    it(`reads every file of a ${order} bundle with its bytes, skipping directories`, async () => {
      const bytes = await bundleTar(layout.files, { order });
      const seen: string[] = [];
      for await (const e of tar(bytes)) {
        assert.equal(e.type, 'file');
        assert.equal(e.position > 0, true);
        const body = await collect(e.body);
        assert.equal(body.byteLength, e.size);
        const expected = layout.files.get(e.name);
        assert.ok(expected, `unexpected entry ${e.name}`);
        assert.ok(body.equals(expected), `${e.name} differs`);
        if (e.name.startsWith('blobs/sha256/')) assert.equal(sha256(body), `sha256:${e.name.slice(13)}`);
        seen.push(e.name);
      }
      assert.deepEqual([...seen].sort(), [...layout.files.keys()].sort());
      if (order === 'metadata-first') {
        assert.deepEqual(seen.slice(0, 2), ['oci-layout', 'index.json']);
        // manifests and configs (small JSON) come before any layer
        const firstLayer = seen.findIndex((n) => layout.images.some((i) => i.manifests.some((m) => m.layers.some((l) => n.endsWith(l.digest.slice(7))))));
        const lastJson = Math.max(...layout.images.flatMap((i) => i.manifests.map((m) => seen.indexOf(`blobs/sha256/${m.config.digest.slice(7)}`))));
        assert.ok(lastJson < firstLayer, 'a config comes after a layer');
      } else {
        assert.deepEqual(seen.slice(-2), ['oci-layout', 'index.json'].sort());
      }
    });
  }

  it('normalizes ./ prefixes and numbers entries by position', async () => {
    const bytes = await bundleTar(layout.files, { order: 'metadata-last', dotSlash: true });
    const entries: { name: string; position: number }[] = [];
    for await (const e of tar(bytes)) entries.push({ name: e.name, position: e.position });
    assert.ok(entries.every((e) => !e.name.startsWith('./') && !e.name.startsWith('/')));
    assert.ok(entries.some((e) => e.name === 'index.json'));
    // positions count directories too (./, blobs/, blobs/sha256/ come first)
    assert.equal(entries[0]?.position, 4);
    assert.deepEqual(normalizeEntryName('./a//b/./c'), { ok: true, name: 'a/b/c' });
    assert.equal(normalizeEntryName('a/../b').ok, false);
    assert.equal(normalizeEntryName('C:/x').ok, false);
  });

  it('reads a docker save archive (legacy layout) including manifest.json and repositories', async () => {
    const save = await buildDockerSave(DOCKER_SAVE_SPEC);
    const bytes = await bundleTar(save.files, { order: 'metadata-last' });
    const got = new Map<string, string>();
    for await (const e of tar(bytes)) got.set(e.name, sha256(await collect(e.body)));
    assert.equal(got.size, save.files.size);
    for (const img of save.images) img.layerPaths.forEach((p, i) => assert.equal(got.get(p), img.diffIds[i]));
  });

  it('handles GNU long names and PAX long names', async () => {
    const long = `${'d'.repeat(60)}/${'e'.repeat(60)}/${'f'.repeat(80)}.json`;
    await sh(`mkdir -p gnu/$(dirname ${long}) && echo '{}' > gnu/${long} && tar --format=gnu -cf gnu.tar -C gnu ${long}`, { cwd: dir });
    const gnu = await readFile(join(dir, 'gnu.tar'));
    assert.ok(gnu.includes(Buffer.from('././@LongLink')), 'not a GNU long-name tar');
    assert.deepEqual(await names(tar(gnu)), [long]);
    const pax = await packTar([{ name: long, data: '{}' }]);
    assert.deepEqual(await names(tar(pax)), [long]);
  });

  it('drains bodies the consumer skips or leaves half-read', async () => {
    const bytes = await bundleTar(layout.files, { order: 'metadata-last' });
    let i = 0;
    const seen: string[] = [];
    for await (const e of tar(bytes)) {
      seen.push(e.name);
      if (i++ % 2 === 0) continue; // not read at all
      for await (const c of e.body) {
        assert.ok(c.byteLength > 0);
        break; // half read
      }
    }
    assert.equal(seen.length, layout.files.size);
  });

  it('refuses to read a body after moving on, and reads small bodies whole with a limit', async () => {
    const bytes = await bundleTar(layout.files, { order: 'metadata-last' });
    const it = tar(bytes);
    const first = (await it.next()).value;
    assert.ok(first);
    await it.next();
    await expectMirrorError(collect(first.body), 'INTERNAL', ['after moving on']);
    await it.return(undefined);
    for await (const e of tar(bytes)) {
      if (e.name === 'index.json') {
        const json = await e.bytes();
        assert.ok(json.equals(layout.files.get('index.json') ?? Buffer.alloc(0)));
      } else if (e.size > 100) {
        await expectMirrorError(e.bytes(100), 'BAD_INPUT', [e.name, 'bundle.tar']);
      } else {
        await drain(e);
      }
    }
  });

  const unsafe: [string, () => string, string[]][] = [
    ['an entry named ../evil', () => bad.dotDot, ['"../evil"', '..']],
    ['an entry named /abs/path', () => bad.absolute, ['"/abs/path"', 'absolute']],
    ['a symlink entry', () => bad.symlink, ['"latest"', 'symbolic link']],
    ['a device entry', () => bad.device, ['"dev/null"', 'character device']],
  ];
  for (const [what, path, mentions] of unsafe) {
    it(`refuses ${what} with UNSAFE_ENTRY naming the entry and the file`, async () => {
      const file = path();
      const bytes = await readFile(file);
      const err = await expectMirrorError(names(readTar(chunked(bytes), { file })), 'UNSAFE_ENTRY', [file, ...mentions]);
      assert.match(err.message, /entry \d+/);
      assert.equal(err.context.file, file);
    });
  }

  it('passes links on when asked, with their resolved target, but never one leading outside', async () => {
    const ok: TarEntry[] = [];
    for await (const e of readTar(chunked(await readFile(bad.symlink)), { file: bad.symlink, links: 'yield' })) {
      ok.push(e);
      await e.drain();
    }
    const link = ok.find((e) => e.name === 'latest');
    assert.equal(link?.type, 'symlink');
    assert.match(link?.linkTarget ?? '', /^blobs\/sha256\/[0-9a-f]{64}$/);
    // a docker save legacy layer symlink: <id>/layer.tar -> ../<other>/layer.tar
    const hard = await packTar([
      { name: 'a/layer.tar', data: 'x' },
      { name: 'b/layer.tar', type: 'symlink', linkname: '../a/layer.tar' },
      { name: 'c/layer.tar', type: 'link', linkname: 'a/layer.tar' },
    ]);
    const targets: Record<string, string | undefined> = {};
    for await (const e of tar(hard, { links: 'yield' })) targets[e.name] = e.linkTarget;
    assert.deepEqual(targets, { 'a/layer.tar': undefined, 'b/layer.tar': 'a/layer.tar', 'c/layer.tar': 'a/layer.tar' });
    await expectMirrorError(
      names(readTar(chunked(await readFile(bad.symlinkEscape)), { file: bad.symlinkEscape, links: 'yield' })),
      'UNSAFE_ENTRY',
      ['"escape"', 'outside'],
    );
  });

  it('reports garbage after a valid header as CORRUPT_ARCHIVE naming the file', async () => {
    await expectMirrorError(names(readTar(chunked(await readFile(bad.garbageTar)), { file: bad.garbageTar })), 'CORRUPT_ARCHIVE', [bad.garbageTar]);
    await expectMirrorError(names(tar(Buffer.from('definitely not a tar archive'.repeat(40)))), 'CORRUPT_ARCHIVE', ['bundle.tar']);
  });

  it('reports a tar cut inside an entry, or between entries, as truncated', async () => {
    const bytes = await bundleTar(layout.files, { order: 'metadata-last' });
    await expectMirrorError(names(tar(bytes.subarray(0, Math.floor(bytes.byteLength / 2) + 7))), 'CORRUPT_ARCHIVE', ['bundle.tar', 'truncated']);
    // cut exactly after an entry's padded data: only the missing end-of-archive marker tells
    const entries: { offset: number; size: number }[] = [];
    for await (const e of tar(bytes)) entries.push({ offset: e.offset, size: e.size });
    const third = entries[2];
    assert.ok(third);
    const cut = third.offset + Math.ceil(third.size / 512) * 512;
    await expectMirrorError(names(tar(bytes.subarray(0, cut))), 'CORRUPT_ARCHIVE', ['truncated', 'end-of-archive']);
    assert.equal((await names(tar(bytes.subarray(0, cut), { requireEndMarker: false }))).length, 3);
    await expectMirrorError(names(tar(Buffer.alloc(0))), 'CORRUPT_ARCHIVE', ['empty']);
  });

  it('passes an error of the source through unchanged', async () => {
    const { MirrorError } = await import('../../src/errors/index.js');
    const bytes = await bundleTar(layout.files, { order: 'metadata-last' });
    async function* failing(): AsyncGenerator<Uint8Array> {
      yield bytes.subarray(0, 3000);
      throw new MirrorError('CORRUPT_ARCHIVE', 'x.tar.xz is corrupt or truncated: xz: Unexpected end of input', { file: 'x.tar.xz' });
    }
    await expectMirrorError(names(readTar(failing(), { file: 'x.tar.xz' })), 'CORRUPT_ARCHIVE', ['xz: Unexpected end of input']);
  });

  it('stops with INTERRUPTED when aborted', async () => {
    const bytes = await bundleTar(layout.files, { order: 'metadata-last' });
    const ac = new AbortController();
    const run = (async () => {
      for await (const e of tar(bytes, { signal: ac.signal })) {
        ac.abort();
        await collect(e.body);
      }
    })();
    await expectMirrorError(run, 'INTERRUPTED');
  });

  it('writes the bundle files it reads unchanged (round trip through a file)', async () => {
    const path = join(dir, 'round.tar');
    await writeFile(path, await bundleTar(layout.files, { order: 'metadata-first' }));
    const got = new Map<string, Buffer>();
    for await (const e of readTar(chunked(await readFile(path), 65536), { file: path })) got.set(e.name, await e.bytes());
    assert.equal(got.size, layout.files.size);
  });
});
