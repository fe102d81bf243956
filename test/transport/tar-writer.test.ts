/**
 * The archive tar writer: entries read back by the project's tar reader (tar-stream) and by GNU tar; late headers
 * (size and name known after the content), rolled-back entries, PAX headers for long paths, base-256 sizes.
 */
import assert from 'node:assert/strict';
import { createReadStream, mkdtempSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { readTar } from '../../src/archive/tar.js';
import { encodeHeader, fitsUstar, TarFileWriter } from '../../src/transport/archive/tar-writer.js';
import { run } from '../helpers/proc.js';

/** readBack lists a tar's entries with their bodies (links with their targets). */
async function readBack(file: string): Promise<Array<{ name: string; type: string; data: Buffer; link: string | undefined }>> {
  const out: Array<{ name: string; type: string; data: Buffer; link: string | undefined }> = [];
  for await (const e of readTar(createReadStream(file), { file, links: 'yield' })) {
    out.push({ name: e.name, type: e.type, data: e.type === 'file' ? await e.bytes() : Buffer.alloc(0), link: e.linkTarget });
  }
  return out;
}

describe('tar writer (archive destinations)', () => {
  let dir: string;
  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), 'mirror-tarw-'));
  });
  afterEach(() => rmSync(dir, { recursive: true, force: true }));

  it('writes files, directories, symlinks and entries whose name and size come after their content', async () => {
    const file = join(dir, 'a.tar');
    const tar = await TarFileWriter.create(file);
    await tar.addFile('oci-layout', Buffer.from('{"imageLayoutVersion":"1.0.0"}'));
    await tar.addDirectory('abc');
    const big = randomBytes(3 * 1024 * 1024 + 17);
    const entry = await tar.begin();
    for (let i = 0; i < big.length; i += 100_000) await entry.write(big.subarray(i, i + 100_000));
    await entry.end({ name: 'late.tar' });
    await tar.addSymlink('abc/layer.tar', '../late.tar');
    await tar.finish();
    const entries = await readBack(file);
    assert.deepEqual(entries.map((e) => [e.name, e.type]), [['oci-layout', 'file'], ['late.tar', 'file'], ['abc/layer.tar', 'symlink']]);
    assert.ok(entries[1]!.data.equals(big));
    assert.equal(entries[2]!.link, 'late.tar');
    assert.equal(statSync(file).size % 512, 0);
    const listing = await run('tar', ['tvf', file]);
    assert.match(listing, /late\.tar/);
    assert.match(listing, /abc\/layer\.tar -> \.\.\/late\.tar/);
    assert.match(listing, /1970-01-01/);
  });

  it('a rolled-back entry leaves nothing: the next entry takes its place and the file is cut at the end', async () => {
    const file = join(dir, 'b.tar');
    const tar = await TarFileWriter.create(file);
    await tar.addFile('first', Buffer.from('one'));
    const entry = await tar.begin({ name: 'dropped' });
    await entry.write(randomBytes(2 * 1024 * 1024));
    entry.rollback();
    await tar.addFile('second', Buffer.from('two'));
    await tar.finish();
    const entries = await readBack(file);
    assert.deepEqual(entries.map((e) => [e.name, e.data.toString()]), [['first', 'one'], ['second', 'two']]);
    assert.equal(statSync(file).size, 512 * 2 + 512 * 2 + 1024, 'nothing of the dropped entry is left');
  });

  it('a path too long for ustar gets a PAX header (sha512 blob paths)', async () => {
    const name = `blobs/sha512/${'ab'.repeat(64)}`;
    assert.equal(fitsUstar(name), false);
    const file = join(dir, 'c.tar');
    const tar = await TarFileWriter.create(file);
    await tar.addFile(name, Buffer.from('x'));
    const entry = await tar.begin({ name: `${name}-2` });
    await entry.write(Buffer.from('yy'));
    await entry.end();
    await tar.finish();
    const entries = await readBack(file);
    assert.deepEqual(entries.map((e) => [e.name, e.data.toString()]), [[name, 'x'], [`${name}-2`, 'yy']]);
    assert.match(await run('tar', ['tf', file]), new RegExp(`${name}-2`));
  });

  it('sizes of 8 GiB and more are written in base-256', () => {
    const size = 2 ** 33 + 5;
    const block = encodeHeader({ name: 'huge.tar', type: 'file', size });
    assert.equal(block[124], 0x80);
    let v = 0;
    for (let i = 125; i < 136; i++) v = v * 256 + block[i]!;
    assert.equal(v, size);
    const small = encodeHeader({ name: 'small', type: 'file', size: 8 * 1024 ** 3 - 1 });
    assert.equal(small.subarray(124, 136).toString('ascii'), '77777777777\0');
  });

  it('refuses to overwrite an existing file', async () => {
    const file = join(dir, 'd.tar');
    await (await TarFileWriter.create(file)).abandon();
    await assert.rejects(TarFileWriter.create(file), /EEXIST/);
  });
});
