/**
 * Layer conversion for `docker save` archives, whose layers are uncompressed tars: compress them on the way
 * (gzip by default), hashing the uncompressed bytes so the config's diff_ids can be checked. Layers that are
 * already compressed pass through unchanged.
 */
import { execFileSync, spawn } from 'node:child_process';
import { once } from 'node:events';
import { Readable, type Writable } from 'node:stream';
import zlib from 'node:zlib';
import { findProgram } from '../../archive/decompress.js';
import { sniffCompression } from '../../archive/sniff.js';
import { MirrorError } from '../../errors/index.js';
import { clipInput } from '../../errors/quote.js';
import { DigestCounter } from '../../oci/digest.js';
import { MediaType } from '../../oci/media-types.js';
import type { LayerCompression } from './layout-state.js';
import { parallelGzip } from './parallel-gzip.js';

/** DEFAULT_GZIP_LEVEL is the gzip level for compressed docker-save layers. */
export const DEFAULT_GZIP_LEVEL = 1;
/** DEFAULT_ZSTD_LEVEL is the zstd level for compressed docker-save layers. */
export const DEFAULT_ZSTD_LEVEL = 3;

/** DEFAULT_IGZIP_LEVEL is igzip's level for gzip layers (its scale is 0-3; 1 compresses about as well as zlib's 1). */
export const DEFAULT_IGZIP_LEVEL = 1;

/**
 * GzipEncoder chooses what makes gzip layers: `auto` (default) takes `igzip` (Intel ISA-L, Debian package `isal`)
 * when it is on PATH and no level was asked for, and zlib on all cores otherwise; `igzip` insists on it (levels 0-3);
 * `zlib` insists on zlib (levels 1-9). Measured on a 204 MB layer: igzip -1 takes 0.35 CPU-s for 99.5 MB, zlib level 1
 * about 3 CPU-s for 99.1 MB.
 */
export type GzipEncoder = 'auto' | 'igzip' | 'zlib';

/** ConvertOptions tune {@link convertLayer}. */
export interface ConvertOptions {
  compression: LayerCompression;
  /**
   * gzip level (zlib 1-9, default {@link DEFAULT_GZIP_LEVEL}; igzip 0-3, default {@link DEFAULT_IGZIP_LEVEL}) or
   * zstd level 1-19 (default {@link DEFAULT_ZSTD_LEVEL}).
   */
  level?: number | undefined;
  /** What makes gzip layers. Default: `auto`. */
  gzipEncoder?: GzipEncoder | undefined;
  /** Entry name, for messages. */
  name: string;
}

/** The compressor a {@link ConvertOptions} resolves to. */
type Compressor = { id: string; mediaType: string } & (
  | { kind: 'none' }
  | { kind: 'zlib'; level: number }
  | { kind: 'program'; program: string; args: string[]; label: string }
  | { kind: 'zlib-zstd'; level: number }
);

let igzipFound: { path: string; version: string } | null | undefined;

/** igzip finds the igzip program and its version (once; the answer is cached), or undefined. */
function igzip(): { path: string; version: string } | undefined {
  if (igzipFound === undefined) {
    const path = findProgram('igzip');
    igzipFound = null;
    if (path !== undefined) {
      try {
        const out = execFileSync(path, ['-V'], { encoding: 'utf8', timeout: 10_000, stdio: ['ignore', 'pipe', 'ignore'] });
        igzipFound = { path, version: /(\d+\.\d+(?:\.\d+)?)/.exec(out)?.[1] ?? 'unknown' };
      } catch {
        // not usable
      }
    }
  }
  return igzipFound ?? undefined;
}

/**
 * resolveCompressor picks the compressor for a layer conversion, or throws UNSUPPORTED. Its `id` names everything
 * the compressed bytes depend on (program and version, level, block scheme), so recorded conversions are reused only
 * where the same bytes would come out again.
 */
function resolveCompressor(options: Omit<ConvertOptions, 'name'>): Compressor {
  const { level } = options;
  switch (options.compression) {
    case 'none':
      return { kind: 'none', id: 'none', mediaType: MediaType.OCI_LAYER };
    case 'gzip': {
      const encoder = options.gzipEncoder ?? 'auto';
      const ig = encoder === 'zlib' || (encoder === 'auto' && level !== undefined) ? undefined : igzip();
      if (ig !== undefined) {
        const l = level ?? DEFAULT_IGZIP_LEVEL;
        if (l > 3) throw new MirrorError('UNSUPPORTED', `igzip has levels 0-3, not ${l}`);
        const id = `gzip:igzip-${ig.version}:${l}`;
        return { kind: 'program', program: ig.path, args: ['-c', '-n', `-${l}`], label: 'igzip', id, mediaType: MediaType.DOCKER_LAYER_GZIP };
      }
      if (encoder === 'igzip') throw new MirrorError('UNSUPPORTED', 'the igzip program is not on PATH', { hint: 'install the isal package' });
      const l = level ?? DEFAULT_GZIP_LEVEL;
      return { kind: 'zlib', level: l, id: `gzip:zlib-${process.versions.zlib}:pgzip-m9:${l}`, mediaType: MediaType.DOCKER_LAYER_GZIP };
    }
    case 'zstd': {
      const l = level ?? DEFAULT_ZSTD_LEVEL;
      const program = findProgram('zstd');
      const mediaType = MediaType.OCI_LAYER_ZSTD;
      if (program) return { kind: 'program', program, args: ['-q', '-c', `-${l}`, '-T0'], label: 'zstd', id: `zstd:program:${l}`, mediaType };
      if (nodeZstdCompress()) return { kind: 'zlib-zstd', level: l, id: `zstd:zlib-${process.versions.zstd ?? ''}:${l}`, mediaType };
      throw new MirrorError('UNSUPPORTED', '--layer-compression zstd needs the zstd program or Node.js 22.15+');
    }
  }
}

/**
 * compressorId names the compressor that {@link convertLayer} would use with these options (see resolveCompressor);
 * throws UNSUPPORTED when there is none.
 */
export function compressorId(options: Omit<ConvertOptions, 'name'>): string {
  return resolveCompressor(options).id;
}

type ZstdCompressFactory = (o?: { params?: Record<number, number> }) => NodeJS.ReadWriteStream;

/** zstdLevelOptions sets the level of node:zlib's zstd compressor (its constants are missing from Node 20's types). */
function zstdLevelOptions(level: number): { params?: Record<number, number> } {
  const key = (zlib.constants as unknown as Record<string, number | undefined>).ZSTD_c_compressionLevel;
  return key === undefined ? {} : { params: { [key]: level } };
}

function nodeZstdCompress(): ZstdCompressFactory | undefined {
  const f = (zlib as unknown as { createZstdCompress?: ZstdCompressFactory }).createZstdCompress;
  return typeof f === 'function' ? f : undefined;
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

/**
 * roomOrGone waits for a sink's 'drain' or 'close', whichever comes first, and removes both listeners then (racing two
 * `once()` promises left the loser's listener behind at every wait: a large layer piled them up past Node's warning).
 */
function roomOrGone(sink: Writable): Promise<void> {
  return new Promise((resolve) => {
    const done = (): void => {
      sink.off('drain', done);
      sink.off('close', done);
      resolve();
    };
    sink.on('drain', done);
    sink.on('close', done);
  });
}

async function writeAll(input: AsyncIterable<Uint8Array>, first: Uint8Array | undefined, sink: Writable, counter: DigestCounter): Promise<void> {
  const write = async (c: Uint8Array): Promise<boolean> => {
    counter.update(c);
    if (sink.destroyed) return false;
    if (!sink.write(c)) {
      // Wait for room, or for the sink to go away (the reader stopped early).
      await roomOrGone(sink);
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
    const came = sniffCompression(first);
    if (came === 'gzip' || came === 'zstd') {
      compressedInput = true;
      mediaType = came === 'gzip' ? MediaType.DOCKER_LAYER_GZIP : MediaType.OCI_LAYER_ZSTD;
      yield first;
      yield* rest;
      ended = true;
      return;
    }
    const c = resolveCompressor(options);
    mediaType = c.mediaType;
    switch (c.kind) {
      case 'none':
        yield* hashed(first, rest, counter);
        break;
      case 'zlib':
        yield* parallelGzip(hashed(first, rest, counter), { level: c.level });
        break;
      case 'program': {
        const child = spawn(c.program, c.args, { stdio: ['pipe', 'pipe', 'pipe'] });
        let stderr = '';
        child.stderr.setEncoding('utf8').on('data', (d: string) => (stderr += d.slice(0, 2000)));
        const exit = once(child, 'close');
        const pump = writeAll(rest, first, child.stdin, counter).catch(() => child.kill());
        try {
          for await (const out of child.stdout as Readable) yield out as Uint8Array;
          await pump;
          const [code] = (await exit) as [number | null];
          if (code !== 0) throw new MirrorError('INTERNAL', `${c.label} failed compressing layer ${clipInput(options.name)}: ${stderr.trim().split('\n')[0] ?? code}`);
        } finally {
          if (child.exitCode === null) child.kill();
        }
        break;
      }
      case 'zlib-zstd': {
        const z = (nodeZstdCompress() as ZstdCompressFactory)(zstdLevelOptions(c.level)) as unknown as Writable &
          AsyncIterable<Uint8Array>;
        const pump = writeAll(rest, first, z, counter).catch(() => z.destroy());
        for await (const out of z) yield out;
        await pump;
        break;
      }
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
