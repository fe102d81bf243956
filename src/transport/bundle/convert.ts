/**
 * Layer conversion for `docker save` archives, whose layers are uncompressed tars: compress them on the way
 * (gzip by default), hashing the uncompressed bytes so the config's diff_ids can be checked. Layers that are
 * already compressed pass through unchanged.
 */
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { Readable, type Writable } from 'node:stream';
import zlib from 'node:zlib';
import { findProgram } from '../../archive/decompress.js';
import { MirrorError } from '../../errors/index.js';
import { DigestCounter } from '../../oci/digest.js';
import { MediaType } from '../../oci/media-types.js';
import type { LayerCompression } from './layout-state.js';
import { parallelGzip } from './parallel-gzip.js';

/** DEFAULT_GZIP_LEVEL is the gzip level for compressed docker-save layers. */
export const DEFAULT_GZIP_LEVEL = 1;
/** DEFAULT_ZSTD_LEVEL is the zstd level for compressed docker-save layers. */
export const DEFAULT_ZSTD_LEVEL = 3;

/** ConvertOptions tune {@link convertLayer}. */
export interface ConvertOptions {
  compression: LayerCompression;
  /** gzip level 1-9 (default {@link DEFAULT_GZIP_LEVEL}) or zstd level 1-19 (default {@link DEFAULT_ZSTD_LEVEL}). */
  level?: number | undefined;
  /** Entry name, for messages. */
  name: string;
}

/** ConvertedLayerStream is a layer body as it will be pushed. */
export interface ConvertedLayerStream {
  /** The bytes to push. */
  stream: AsyncIterable<Uint8Array>;
  /** Media type of the pushed layer (known once the first bytes were seen: call after reading starts). */
  mediaType(): string;
  /** sha256 of the uncompressed tar, once the stream has ended (undefined for a layer that came compressed). */
  diffId(): string | undefined;
}

function isGzip(b: Uint8Array): boolean {
  return b.length >= 2 && b[0] === 0x1f && b[1] === 0x8b;
}
function isZstd(b: Uint8Array): boolean {
  return b.length >= 4 && b[0] === 0x28 && b[1] === 0xb5 && b[2] === 0x2f && b[3] === 0xfd;
}

async function writeAll(input: AsyncIterable<Uint8Array>, first: Uint8Array | undefined, sink: Writable, counter: DigestCounter): Promise<void> {
  const write = async (c: Uint8Array): Promise<boolean> => {
    counter.update(c);
    if (sink.destroyed) return false;
    if (!sink.write(c)) {
      // Wait for room, or for the sink to go away (the reader stopped early).
      await Promise.race([once(sink, 'drain'), once(sink, 'close')]);
    }
    return !sink.destroyed;
  };
  if (first && !(await write(first))) return;
  for await (const c of input) {
    if (!(await write(c))) return;
  }
  if (!sink.destroyed) sink.end();
}

async function* hashed(first: Uint8Array, rest: AsyncIterable<Uint8Array>, counter: DigestCounter): AsyncGenerator<Uint8Array> {
  counter.update(first);
  yield first;
  for await (const c of rest) {
    counter.update(c);
    yield c;
  }
}

/** convertLayer turns a docker-save layer body into the stream to push. */
export function convertLayer(input: AsyncIterable<Uint8Array>, options: ConvertOptions): ConvertedLayerStream {
  const counter = new DigestCounter();
  let mediaType: string = MediaType.OCI_LAYER;
  let compressedInput = false;
  let ended = false;
  let diff: string | undefined;
  const stream = (async function* (): AsyncGenerator<Uint8Array> {
    const it = input[Symbol.asyncIterator]();
    const head = await it.next();
    if (head.done) {
      ended = true;
      return;
    }
    const first = head.value;
    const rest: AsyncIterable<Uint8Array> = { [Symbol.asyncIterator]: () => it };
    if (isGzip(first) || isZstd(first)) {
      compressedInput = true;
      mediaType = isGzip(first) ? MediaType.DOCKER_LAYER_GZIP : MediaType.OCI_LAYER_ZSTD;
      yield first;
      yield* rest;
      ended = true;
      return;
    }
    if (options.compression === 'none') {
      mediaType = MediaType.OCI_LAYER;
      yield* hashed(first, rest, counter);
      ended = true;
      return;
    }
    if (options.compression === 'gzip') {
      mediaType = MediaType.DOCKER_LAYER_GZIP;
      yield* parallelGzip(hashed(first, rest, counter), { level: options.level ?? DEFAULT_GZIP_LEVEL });
      ended = true;
      return;
    }
    // zstd
    mediaType = MediaType.OCI_LAYER_ZSTD;
    const level = options.level ?? DEFAULT_ZSTD_LEVEL;
    const program = findProgram('zstd');
    const zlibZstd = (zlib as unknown as { createZstdCompress?: (o?: object) => NodeJS.ReadWriteStream }).createZstdCompress;
    if (program) {
      const child = spawn(program, ['-q', '-c', `-${level}`, '-T0'], { stdio: ['pipe', 'pipe', 'pipe'] });
      let stderr = '';
      child.stderr.setEncoding('utf8').on('data', (d: string) => (stderr += d.slice(0, 2000)));
      const exit = once(child, 'close');
      const pump = writeAll(rest, first, child.stdin, counter).catch(() => child.kill());
      try {
        for await (const out of child.stdout as Readable) yield out as Uint8Array;
        await pump;
        const [code] = (await exit) as [number | null];
        if (code !== 0) throw new MirrorError('INTERNAL', `zstd failed compressing layer ${options.name}: ${stderr.trim().split('\n')[0] ?? code}`);
      } finally {
        if (child.exitCode === null) child.kill();
      }
    } else if (zlibZstd) {
      const z = zlibZstd() as unknown as Writable & AsyncIterable<Uint8Array>;
      const pump = writeAll(rest, first, z, counter).catch(() => z.destroy());
      for await (const out of z) yield out;
      await pump;
    } else {
      throw new MirrorError('UNSUPPORTED', `--layer-compression zstd needs the zstd program or Node.js 22.15+ (layer ${options.name})`);
    }
    ended = true;
  })();
  return {
    stream,
    mediaType: () => mediaType,
    diffId: () => {
      if (!ended || compressedInput) return undefined;
      diff ??= counter.digest();
      return diff;
    },
  };
}
