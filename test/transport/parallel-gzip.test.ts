import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { gunzipSync } from 'node:zlib';
import { parallelGzip } from '../../src/transport/bundle/parallel-gzip.js';
import { compressorId, convertLayer, type ConvertOptions } from '../../src/transport/bundle/convert.js';
import { findProgram } from '../../src/archive/decompress.js';
import { sha256Digest } from '../../src/oci/digest.js';
import { MediaType } from '../../src/oci/media-types.js';

async function* chunks(data: Buffer, size: number): AsyncGenerator<Uint8Array> {
  for (let i = 0; i < data.length; i += size) yield data.subarray(i, i + size);
}

async function gz(data: Buffer, blockSize: number, chunk = 70_000): Promise<Buffer> {
  const out: Uint8Array[] = [];
  for await (const c of parallelGzip(chunks(data, chunk), { level: 1, blockSize })) out.push(c);
  return Buffer.concat(out);
}

describe('transport/bundle parallel gzip', () => {
  // Compressible text with long repeats across block boundaries, plus incompressible bytes.
  const text = Buffer.from(Array.from({ length: 40_000 }, (_, i) => `line ${i % 977} of a layer file\n`).join(''));
  const data = Buffer.concat([text, randomBytes(300_000), text]);

  it('writes one gzip member that gunzip reads back exactly', async () => {
    for (const blockSize of [64 * 1024, 256 * 1024, 4 * 1024 * 1024]) {
      const out = await gz(data, blockSize);
      assert.deepEqual(gunzipSync(out), data, `block size ${blockSize}`);
    }
    assert.deepEqual(gunzipSync(await gz(Buffer.alloc(0), 1024)), Buffer.alloc(0));
  });

  it('is deterministic whatever the input chunking', async () => {
    const a = await gz(data, 128 * 1024, 1000);
    const b = await gz(data, 128 * 1024, 333_333);
    assert.equal(sha256Digest(a), sha256Digest(b));
  });

  it('convertLayer compresses a tar, reports its diff_id, and passes compressed layers through', async () => {
    const conv = convertLayer(chunks(data, 50_000), { compression: 'gzip', name: 'layer.tar' });
    const out: Uint8Array[] = [];
    for await (const c of conv.stream) out.push(c);
    assert.equal(conv.mediaType(), MediaType.DOCKER_LAYER_GZIP);
    assert.equal(conv.diffId(), sha256Digest(data));
    assert.deepEqual(gunzipSync(Buffer.concat(out)), data);
    const again = convertLayer(chunks(Buffer.concat(out), 10_000), { compression: 'gzip', name: 'x' });
    const passed: Uint8Array[] = [];
    for await (const c of again.stream) passed.push(c);
    assert.deepEqual(Buffer.concat(passed), Buffer.concat(out), 'already gzip: unchanged');
    assert.equal(again.diffId(), undefined);
    const none = convertLayer(chunks(data, 50_000), { compression: 'none', name: 'y' });
    for await (const _ of none.stream) void _;
    assert.equal(none.mediaType(), MediaType.OCI_LAYER);
    assert.equal(none.diffId(), sha256Digest(data));
  });

  async function convert(input: Buffer, options: Omit<ConvertOptions, 'name'>): Promise<{ out: Buffer; diffId: string | undefined; mediaType: string }> {
    const conv = convertLayer(chunks(input, 40_000), { ...options, name: 'layer.tar' });
    const out: Uint8Array[] = [];
    for await (const c of conv.stream) out.push(c);
    return { out: Buffer.concat(out), diffId: conv.diffId(), mediaType: conv.mediaType() };
  }

  it('compresses with igzip when it is installed and no level is asked for: valid, deterministic gzip with no timestamp', async function () {
    if (findProgram('igzip') === undefined) this.skip();
    const id = compressorId({ compression: 'gzip' });
    assert.match(id, /^gzip:igzip-\d+\.\d+[.\d]*:1$/);
    const a = await convert(data, { compression: 'gzip' });
    const b = await convert(data, { compression: 'gzip', gzipEncoder: 'igzip' });
    assert.equal(a.mediaType, MediaType.DOCKER_LAYER_GZIP);
    assert.deepEqual(gunzipSync(a.out), data);
    assert.equal(a.diffId, sha256Digest(data));
    assert.equal(sha256Digest(a.out), sha256Digest(b.out), 'same bytes every time');
    assert.deepEqual([...a.out.subarray(4, 8)], [0, 0, 0, 0], 'no modification time in the gzip header');
    const z = await convert(data, { compression: 'gzip', gzipEncoder: 'zlib' });
    assert.deepEqual(gunzipSync(z.out), data);
    assert.notEqual(sha256Digest(z.out), sha256Digest(a.out), 'zlib makes other bytes, so it must be recorded under another name');
    assert.notEqual(compressorId({ compression: 'gzip', gzipEncoder: 'zlib' }), id);
  });

  it('a large layer through igzip read slowly (its input waits for room many times) leaves no listeners behind', async function () {
    if (findProgram('igzip') === undefined) this.skip();
    this.timeout(60_000);
    const warnings: string[] = [];
    const onWarning = (w: Error): void => void warnings.push(`${w.name}: ${w.message}`);
    process.on('warning', onWarning);
    try {
      const big = Buffer.concat(Array.from({ length: 48 }, () => randomBytes(1024 * 1024)));
      const c = convertLayer(chunks(big, 64 * 1024), { name: 'big', compression: 'gzip' });
      let n = 0;
      for await (const out of c.stream) {
        n += out.byteLength;
        // A slow reader: igzip's output waits, so its input fills up and the writer waits for 'drain' again and again.
        await new Promise((r) => setImmediate(r));
      }
      assert.ok(n > big.length / 2);
      await new Promise((r) => setImmediate(r));
      assert.deepEqual(warnings.filter((w) => /MaxListenersExceeded/.test(w)), []);
    } finally {
      process.off('warning', onWarning);
    }
  });

  it('takes zlib for an explicit gzip level, and refuses an igzip level it does not have', async function () {
    assert.match(compressorId({ compression: 'gzip', level: 6 }), /^gzip:zlib-.*:6$/);
    assert.match(compressorId({ compression: 'gzip', gzipEncoder: 'zlib' }), /^gzip:zlib-.*:1$/);
    const six = await convert(data, { compression: 'gzip', level: 6 });
    assert.deepEqual(gunzipSync(six.out), data);
    if (findProgram('igzip') === undefined) this.skip();
    assert.match(compressorId({ compression: 'gzip', gzipEncoder: 'igzip', level: 3 }), /:igzip-.*:3$/);
    assert.throws(() => compressorId({ compression: 'gzip', gzipEncoder: 'igzip', level: 6 }), /igzip has levels 0-3, not 6/);
  });

  it('passes a zstd layer through whole, also one that starts with a skippable frame (as pzstd writes)', async () => {
    const frame = Buffer.from([0x28, 0xb5, 0x2f, 0xfd, 0x00, 0x00, 0x01, 0x00, 0x00]);
    const skippable = Buffer.concat([Buffer.from([0x50, 0x2a, 0x4d, 0x18, 4, 0, 0, 0]), Buffer.from('pzst'), frame]);
    for (const layer of [frame, skippable]) {
      const conv = convertLayer(chunks(layer, 1 << 20), { compression: 'gzip', name: 'layer.tar' });
      const out: Uint8Array[] = [];
      for await (const c of conv.stream) out.push(c);
      assert.deepEqual(Buffer.concat(out), layer, 'unchanged');
      assert.equal(conv.mediaType(), MediaType.OCI_LAYER_ZSTD);
      assert.equal(conv.diffId(), undefined);
    }
  });
});
