import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { join } from 'node:path';
import { hasLzmaNative, openBundleInput, openDecompressed } from '../../src/archive/index.js';
import { expectMirrorError, pidAlive, sh, tempDir, trackUnhandled, waitFor } from './helpers.js';

const MB = 1024 * 1024;
const BIG = 300 * MB;
const RSS_BUDGET = 100 * MB;

/** slowConsumer hashes every chunk and pauses now and then, so the decoder is always ahead of it. */
async function slowConsume(stream: AsyncIterable<Uint8Array>, onChunk: () => void): Promise<number> {
  const h = createHash('sha256');
  let n = 0;
  let i = 0;
  for await (const c of stream) {
    h.update(c);
    n += c.byteLength;
    if (++i % 64 === 0) await new Promise((r) => setTimeout(r, 1));
    onChunk();
  }
  return n;
}

describe('archive: bounded memory and abort on a 300 MB stream', function () {
  this.timeout(180_000);
  let dir: string;
  let remove: () => Promise<void>;
  let checkUnhandled: () => void;

  before(async () => {
    checkUnhandled = trackUnhandled();
    ({ dir, remove } = await tempDir('memory'));
    // 300 MB of zeros-ish data (a sparse file, so the disk holds almost nothing), in a tar, xz -0 multi-threaded.
    await sh(
      [
        'mkdir src && truncate -s 300M src/big.bin && printf "not only zeros" | dd of=src/big.bin bs=1 seek=123456789 conv=notrunc status=none',
        'tar --format=posix -cf - -C src big.bin | xz -T0 -0 -c > big.tar.xz',
        'truncate -s 300M big.raw && xz -T0 -0 -c < big.raw > big.xz && rm big.raw',
      ].join(' && '),
      { cwd: dir },
    );
  });

  after(async () => {
    await remove();
    checkUnhandled();
  });

  for (const decoder of ['xz', 'lzma-native'] as const) {
    it(`keeps RSS growth under 100 MB decoding 300 MB with ${decoder} for a slow reader`, async function () {
      if (decoder === 'lzma-native' && !hasLzmaNative()) this.skip();
      const base = process.memoryUsage.rss();
      let peak = base;
      const d = await openDecompressed(join(dir, 'big.xz'), { decoder });
      const n = await slowConsume(d.stream, () => {
        const r = process.memoryUsage.rss();
        if (r > peak) peak = r;
      });
      assert.equal(n, BIG);
      assert.ok(peak - base < RSS_BUDGET, `RSS grew by ${Math.round((peak - base) / MB)} MB`);
    });
  }

  it('keeps RSS growth under 100 MB reading a 300 MB tar entry of a .tar.xz through openBundleInput', async () => {
    const base = process.memoryUsage.rss();
    let peak = base;
    const input = await openBundleInput(join(dir, 'big.tar.xz'));
    assert.equal(input.kind, 'file');
    if (input.kind !== 'file') return;
    let total = 0;
    for await (const e of input.entries()) {
      assert.equal(e.name, 'big.bin');
      assert.equal(e.size, BIG);
      total += await slowConsume(e.body, () => {
        const r = process.memoryUsage.rss();
        if (r > peak) peak = r;
      });
    }
    assert.equal(total, BIG);
    assert.equal(input.compressedBytesRead(), input.totalBytes);
    assert.ok(peak - base < RSS_BUDGET, `RSS grew by ${Math.round((peak - base) / MB)} MB`);
  });

  it('abort kills the xz subprocess and the read ends with INTERRUPTED', async () => {
    const ac = new AbortController();
    const d = await openDecompressed(join(dir, 'big.xz'), { decoder: 'xz', signal: ac.signal });
    const pid = d.pid;
    assert.ok(pid !== undefined);
    assert.equal(await pidAlive(pid), true);
    let chunks = 0;
    const reading = (async () => {
      for await (const c of d.stream) {
        void c;
        if (++chunks === 10) ac.abort();
      }
    })();
    await expectMirrorError(reading, 'INTERRUPTED');
    assert.equal(await waitFor(async () => !(await pidAlive(pid)), 3000), true, 'xz still alive after abort');
  });

  it('abort in the middle of a tar entry stops the pass and kills the decoder', async () => {
    const ac = new AbortController();
    const input = await openBundleInput(join(dir, 'big.tar.xz'), { signal: ac.signal });
    if (input.kind !== 'file') throw new Error('not a file');
    const pass = (async () => {
      for await (const e of input.entries()) {
        let n = 0;
        for await (const c of e.body) {
          n += c.byteLength;
          if (n > 10 * MB) ac.abort();
        }
      }
    })();
    await expectMirrorError(pass, 'INTERRUPTED');
    // no xz child of this process is left (running or zombie)
    const children = await sh(`pgrep -P ${process.pid} -x xz || true`);
    assert.equal(children.trim(), '', 'xz processes left running');
  });
});
