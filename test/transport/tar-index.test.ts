/**
 * The tar index of archive sources: GNU tar's long names (`L`) and pax headers (`x`), symlinks and hard links
 * followed, reads at an offset, and refusals of a bad checksum, a truncated entry, a missing end marker and `..`.
 */
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, symlinkSync, truncateSync, writeFileSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { MirrorError } from '../../src/errors/index.js';
import { TarIndex } from '../../src/transport/archive/tar-index.js';
import { packTar } from '../../testdata/make-fixtures.js';
import { run } from '../helpers/proc.js';

async function collect(it: AsyncIterable<Uint8Array>): Promise<Buffer> {
  const parts: Buffer[] = [];
  for await (const c of it) parts.push(Buffer.from(c));
  return Buffer.concat(parts);
}

describe('TarIndex', () => {
  let work: string;
  const long = `${'d'.repeat(120)}/${'f'.repeat(130)}.bin`;
  const body = Buffer.from(Array.from({ length: 5000 }, (_, i) => i % 251));
  before(async () => {
    work = mkdtempSync(join(tmpdir(), 'mirror-tar-index-'));
    const src = join(work, 'src');
    mkdirSync(join(src, 'd'.repeat(120)), { recursive: true });
    writeFileSync(join(src, long), body);
    writeFileSync(join(src, 'small.txt'), 'hello');
    symlinkSync('small.txt', join(src, 'link.txt'));
    for (const format of ['gnu', 'pax']) await run('tar', ['-C', src, `--format=${format}`, '-cf', join(work, `${format}.tar`), '.']);
    // A file with a hole, archived by GNU tar --sparse: type S (gnu), GNU.sparse.* keys under a stand-in name (pax 1.0).
    const holey = join(work, 'holey');
    mkdirSync(holey);
    writeFileSync(join(holey, 'blob'), 'tail');
    truncateSync(join(holey, 'blob'), 4 << 20);
    writeFileSync(join(holey, 'blob'), 'end', { flag: 'a' });
    await run('tar', ['-C', holey, '--sparse', '--format=gnu', '-cf', join(work, 'sparse-gnu.tar'), 'blob']);
    await run('tar', ['-C', holey, '--sparse', '--format=pax', '--sparse-version=1.0', '-cf', join(work, 'sparse-pax.tar'), 'blob']);
  });
  after(() => rmSync(work, { recursive: true, force: true }));

  for (const format of ['gnu', 'pax']) {
    it(`${format} tar: long names, symlinks, reads at an offset`, async () => {
      const tar = await TarIndex.open(join(work, `${format}.tar`));
      try {
        const e = tar.find(long);
        assert.ok(e, [...tar.entries.keys()].join(', '));
        assert.deepEqual(await tar.read(e, 1 << 20, 'entry'), body);
        assert.deepEqual(await collect(tar.stream(e, { start: 1234 })), body.subarray(1234));
        const link = tar.find('./link.txt');
        assert.ok(link);
        assert.equal((await tar.read(link, 100, 'entry')).toString(), 'hello');
      } finally {
        await tar.close();
      }
    });
  }

  for (const format of ['gnu', 'pax']) {
    it(`${format} tar with a sparse entry (tar --sparse): UNSUPPORTED naming the entry and the fix`, async () => {
      const f = join(work, `sparse-${format}.tar`);
      await assert.rejects(
        TarIndex.open(f),
        (e: unknown) => e instanceof MirrorError && e.code === 'UNSUPPORTED' && e.message === `${f}: entry "blob" is a sparse file (tar --sparse), which is not read here; create the archive without --sparse`,
      );
    });
  }

  it('refuses a bad checksum, a truncated entry, a missing end marker and a name with ..', async () => {
    const good = readFileSync(join(work, 'gnu.tar'));
    const expectCorrupt = async (bytes: Buffer, name: string, code = 'CORRUPT_ARCHIVE'): Promise<void> => {
      const f = join(work, name);
      writeFileSync(f, bytes);
      await assert.rejects(TarIndex.open(f), (e: unknown) => e instanceof MirrorError && e.code === code && e.message.includes(f));
    };
    const flipped = Buffer.from(good);
    flipped[10] = flipped[10]! ^ 0xff;
    await expectCorrupt(flipped, 'checksum.tar');
    const cut = join(work, 'cut.tar');
    writeFileSync(cut, good);
    truncateSync(cut, 2048);
    await assert.rejects(TarIndex.open(cut), (e: unknown) => e instanceof MirrorError && e.code === 'CORRUPT_ARCHIVE');
    const noEnd = await packTar([{ name: 'a.txt', data: Buffer.from('a') }]);
    await expectCorrupt(noEnd.subarray(0, 1024), 'noend.tar');
    const evil = await packTar([{ name: '../evil.txt', data: Buffer.from('a') }]);
    await expectCorrupt(evil, 'evil.tar', 'UNSAFE_ENTRY');
    assert.ok(statSync(join(work, 'gnu.tar')).size > 0);
  });
});
