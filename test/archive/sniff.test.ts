import assert from 'node:assert/strict';
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { looksLikeTar, sniffCompression } from '../../src/archive/index.js';
import { compress, packTar } from '../../testdata/make-fixtures.js';
import { hasCommand, sh, tempDir } from './helpers.js';

describe('archive/sniff', () => {
  let tar: Buffer;
  before(async () => {
    tar = await packTar([{ name: 'oci-layout', data: '{"imageLayoutVersion":"1.0.0"}' }]);
  });

  it('recognizes xz, gzip, zstd and bzip2 by their magic bytes', async () => {
    assert.equal(sniffCompression(await compress(tar, 'xz')), 'xz');
    assert.equal(sniffCompression(await compress(tar, 'gzip')), 'gzip');
    assert.equal(sniffCompression(await compress(tar, 'zstd')), 'zstd');
    assert.equal(sniffCompression(Buffer.from('BZh91AY&SY')), 'bzip2');
    assert.equal(sniffCompression(tar), 'none');
  });

  it('recognizes a bzip2 file made by bzip2 and a zstd skippable frame', async function () {
    if (!(await hasCommand('bzip2'))) this.skip();
    const { dir, remove } = await tempDir('sniff');
    try {
      await writeFile(join(dir, 'a.tar'), tar);
      await sh('bzip2 -k a.tar', { cwd: dir });
      assert.equal(sniffCompression(await readFile(join(dir, 'a.tar.bz2'))), 'bzip2');
    } finally {
      await remove();
    }
    assert.equal(sniffCompression(Buffer.from([0x50, 0x2a, 0x4d, 0x18, 4, 0, 0, 0])), 'zstd');
  });

  it('does not take a name or short input for a format', () => {
    assert.equal(sniffCompression(Buffer.alloc(0)), 'none');
    assert.equal(sniffCompression(Buffer.from([0xfd, 0x37, 0x7a])), 'none');
    assert.equal(sniffCompression(Buffer.from('BZh0')), 'none');
    assert.equal(sniffCompression(Buffer.from('hello.tar.xz')), 'none');
  });

  it('tells a ustar header, an old v7 header and garbage apart', () => {
    assert.equal(looksLikeTar(tar), true);
    // v7: the same header without the magic, checksum recomputed
    const v7 = Buffer.from(tar.subarray(0, 512));
    v7.fill(0, 257, 512);
    v7.fill(0x20, 148, 156);
    let sum = 0;
    for (const b of v7) sum += b;
    v7.write(`${sum.toString(8).padStart(6, '0')}\0 `, 148, 'latin1');
    assert.equal(looksLikeTar(v7), true);
    const broken = Buffer.from(v7);
    broken[0] = (broken[0] ?? 0) ^ 1;
    assert.equal(looksLikeTar(broken), false);
    assert.equal(looksLikeTar(Buffer.alloc(512)), false);
    assert.equal(looksLikeTar(tar.subarray(0, 300)), false);
    assert.equal(looksLikeTar(Buffer.from('{"schemaVersion":2}'.padEnd(600, ' '))), false);
  });
});
