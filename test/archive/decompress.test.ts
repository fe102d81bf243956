import assert from 'node:assert/strict';
import { access, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import zlib from 'node:zlib';
import { findProgram, hasLzmaNative, openDecompressed, type DecoderChoice } from '../../src/archive/index.js';
import { collect, expectMirrorError, pidAlive, sh, tempDir, trackUnhandled, waitFor } from './helpers.js';

async function exists(path: string): Promise<boolean> {
  return access(path).then(
    () => true,
    () => false,
  );
}

const hasNodeZstd = typeof (zlib as unknown as { createZstdDecompress?: unknown }).createZstdDecompress === 'function';

describe('archive/decompress', function () {
  this.timeout(120_000);
  let dir: string;
  let remove: () => Promise<void>;
  let original: Buffer;
  let checkUnhandled: () => void;

  before(async () => {
    checkUnhandled = trackUnhandled();
    ({ dir, remove } = await tempDir('decompress'));
    // ~3 MB: text-like and random parts, so that xz makes several blocks with a small block size.
    await sh(
      'head -c 1500000 /dev/urandom > plain && (for i in $(seq 1 40000); do echo "line $i of a text-like file"; done) >> plain',
      { cwd: dir },
    );
    original = await readFile(join(dir, 'plain'));
    await sh(
      [
        'xz -T2 --block-size=262144 -3 -c plain > multi.xz',
        'xz -T1 -0 -c plain > single.xz',
        'head -c 100000 plain | xz -c > part1.xz && tail -c +100001 plain | xz -c > part2.xz && cat part1.xz part2.xz > concat.xz',
        'gzip -6 -c plain > plain.gz',
        // Zero padding after the last member (a tape block, a fixed-size medium): gzip -d ignores it.
        'cp plain.gz padded.gz && head -c 10240 /dev/zero >> padded.gz',
        'head -c 100000 plain | gzip -c > m1.gz && tail -c +100001 plain | gzip -c > m2.gz && cat m1.gz m2.gz > multi.gz',
        '(! command -v zstd >/dev/null || zstd -q -c plain > plain.zst)',
        // `--long=31` from a pipe: the frame declares a 2 GiB window, beyond the decoders' default 128 MiB limit.
        '(! command -v zstd >/dev/null || cat plain | zstd -q --long=31 -c > long.zst)',
        '(! command -v bzip2 >/dev/null || bzip2 -c plain > plain.bz2)',
        'for f in multi.xz plain.gz plain.zst plain.bz2; do [ -f $f ] || continue; s=$(stat -c %s $f); head -c $((s / 2)) $f > trunc-$f; done',
        'cp multi.xz flipped.xz && printf "\\xff\\xff\\xff\\xff" | dd of=flipped.xz bs=1 seek=200000 conv=notrunc status=none',
      ].join(' && '),
      { cwd: dir },
    );
  });

  after(async () => {
    await remove();
    checkUnhandled();
  });

  const cases: { file: string; compression: string; decoder: DecoderChoice; label: RegExp }[] = [
    { file: 'multi.xz', compression: 'xz', decoder: 'xz', label: /^xz -dc -T0$/ },
    { file: 'multi.xz', compression: 'xz', decoder: 'lzma-native', label: /^lzma-native$/ },
    { file: 'single.xz', compression: 'xz', decoder: 'xz', label: /^xz/ },
    { file: 'single.xz', compression: 'xz', decoder: 'lzma-native', label: /^lzma-native$/ },
    { file: 'concat.xz', compression: 'xz', decoder: 'xz', label: /^xz/ },
    { file: 'concat.xz', compression: 'xz', decoder: 'lzma-native', label: /^lzma-native$/ },
    { file: 'plain.gz', compression: 'gzip', decoder: 'auto', label: /^node:zlib gunzip$/ },
    { file: 'plain.gz', compression: 'gzip', decoder: 'program', label: /gzip -dc$/ },
    { file: 'multi.gz', compression: 'gzip', decoder: 'auto', label: /^node:zlib gunzip$/ },
    { file: 'padded.gz', compression: 'gzip', decoder: 'auto', label: /^node:zlib gunzip$/ },
    { file: 'padded.gz', compression: 'gzip', decoder: 'program', label: /gzip -dc$/ },
    { file: 'plain.zst', compression: 'zstd', decoder: 'auto', label: /^zstd -dc/ },
    { file: 'plain.zst', compression: 'zstd', decoder: 'library', label: /^node:zlib zstd$/ },
    { file: 'long.zst', compression: 'zstd', decoder: 'auto', label: /^zstd -dc/ },
    { file: 'long.zst', compression: 'zstd', decoder: 'library', label: /^node:zlib zstd$/ },
    { file: 'plain.bz2', compression: 'bzip2', decoder: 'auto', label: /bzip2 -dc$/ },
    { file: 'plain', compression: 'none', decoder: 'auto', label: /^none$/ },
  ];

  for (const c of cases) {
    it(`decodes ${c.file} with ${c.decoder} to the original bytes`, async function () {
      if (c.label.source.includes('zstd$') && !hasNodeZstd) this.skip();
      if (c.decoder === 'lzma-native' && !hasLzmaNative()) this.skip();
      if (!(await exists(join(dir, c.file)))) this.skip(); // zstd or bzip2 not installed
      if (c.decoder === 'program' && findProgram('gzip') === undefined && findProgram('pigz') === undefined) this.skip();
      const path = join(dir, c.file);
      let reported = 0;
      const d = await openDecompressed(path, { decoder: c.decoder, onCompressedBytes: (n) => (reported += n) });
      assert.equal(d.compression, c.compression);
      assert.match(d.decoder, c.label);
      const out = await collect(d.stream);
      assert.equal(out.byteLength, original.byteLength);
      assert.ok(out.equals(original), 'decoded bytes differ');
      assert.equal(d.compressedBytesRead(), d.totalBytes);
      assert.equal(reported, d.totalBytes);
      await d.close();
    });
  }

  it('says UNSUPPORTED for zstd without the program on a Node without zstd', async function () {
    if (hasNodeZstd || !(await exists(join(dir, 'plain.zst')))) this.skip();
    await expectMirrorError(openDecompressed(join(dir, 'plain.zst'), { decoder: 'library' }), 'UNSUPPORTED', ['plain.zst', 'zstd']);
  });

  for (const [file, decoder] of [
    ['trunc-multi.xz', 'xz'],
    ['trunc-multi.xz', 'lzma-native'],
    ['flipped.xz', 'xz'],
    ['flipped.xz', 'lzma-native'],
    ['trunc-plain.gz', 'auto'],
    ['trunc-plain.zst', 'auto'],
    ['trunc-plain.bz2', 'auto'],
  ] as const) {
    it(`reports ${file} decoded by ${decoder} as CORRUPT_ARCHIVE naming the file`, async function () {
      const path = join(dir, file);
      if (!(await exists(path))) this.skip();
      if (decoder === 'lzma-native' && !hasLzmaNative()) this.skip();
      const d = await openDecompressed(path, { decoder });
      const err = await expectMirrorError(collect(d.stream), 'CORRUPT_ARCHIVE', [path]);
      assert.equal(err.context.file, path);
      // the decoder's cause, not a stack or an exit status alone
      assert.doesNotMatch(err.message, /exit status/);
      if (file.startsWith('trunc') && file.endsWith('.xz')) assert.match(err.message, /Unexpected end of input/);
      if (d.pid !== undefined) assert.equal(await waitFor(async () => !(await pidAlive(d.pid ?? 0)), 2000), true);
    });
  }

  it('reports a missing file as BAD_INPUT "no such file"', async () => {
    await expectMirrorError(openDecompressed(join(dir, 'nope.xz')), 'BAD_INPUT', [`no such file: ${join(dir, 'nope.xz')}`]);
  });

  it('finds the xz program on PATH once', () => {
    const xz = findProgram('xz');
    assert.ok(xz !== undefined && xz.endsWith('/xz'));
    assert.equal(findProgram('xz'), xz);
    assert.equal(findProgram('surely-not-a-program-here'), undefined);
  });

  it('kills the decoder when the reader stops early, and on close() before reading', async () => {
    const d = await openDecompressed(join(dir, 'multi.xz'), { decoder: 'xz', readChunkBytes: 4096 });
    const pid = d.pid;
    assert.ok(pid !== undefined);
    for await (const chunk of d.stream) {
      assert.ok(chunk.byteLength > 0);
      break;
    }
    assert.equal(await pidAlive(pid), false, 'xz still running after break');
    const d2 = await openDecompressed(join(dir, 'multi.xz'), { decoder: 'xz' });
    const pid2 = d2.pid ?? 0;
    await d2.close();
    await d2.close();
    assert.equal(await pidAlive(pid2), false, 'xz still running after close()');
    await expectMirrorError(collect(d2.stream), 'INTERNAL', ['closed']);
  });

  for (const decoder of ['xz', 'lzma-native'] as const) {
    it(`hands on ${decoder}'s output in pieces of at least outputChunkBytes, and the good bytes before a failure`, async function () {
      if (decoder === 'lzma-native' && !hasLzmaNative()) this.skip();
      const d = await openDecompressed(join(dir, 'multi.xz'), { decoder, outputChunkBytes: 200_000 });
      const sizes: number[] = [];
      const parts: Uint8Array[] = [];
      for await (const chunk of d.stream) {
        sizes.push(chunk.byteLength);
        parts.push(chunk);
      }
      assert.deepEqual(Buffer.concat(parts), original);
      assert.ok(sizes.length >= 2, `several pieces (${sizes.length})`);
      for (const n of sizes.slice(0, -1)) assert.ok(n >= 200_000, `a piece of ${n} bytes`);
      // A truncated file: every byte before the cut is handed on before the error, even those not yet a full piece.
      const t = await openDecompressed(join(dir, 'trunc-multi.xz'), { decoder, outputChunkBytes: 64 * 1024 * 1024 });
      const got: Uint8Array[] = [];
      await expectMirrorError(
        (async () => {
          for await (const chunk of t.stream) got.push(chunk);
        })(),
        'CORRUPT_ARCHIVE',
        ['trunc-multi.xz'],
      );
      const good = Buffer.concat(got);
      assert.ok(good.byteLength > 0, 'bytes before the cut were handed on');
      assert.deepEqual(good, original.subarray(0, good.byteLength));
    });
  }
});
