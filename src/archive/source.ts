/**
 * Opening what the user passed as `--source`: a tar archive (compressed or not), read as a stream and re-readable
 * from the start for a second pass, or a directory (an OCI layout or an unpacked `docker save`).
 */
import { createReadStream, type Stats } from 'node:fs';
import { lstat, open, readdir, realpath, stat } from 'node:fs/promises';
import { join, relative, sep } from 'node:path';
import { abortError, MirrorError, throwIfAborted } from '../errors/index.js';
import { clipInput } from '../errors/quote.js';
import { type DecoderChoice, type DecompressedStream, describeDecoder, fileError, openDecompressed } from './decompress.js';
import { type Compression, looksLikeTar, SNIFF_BYTES, sniffCompression } from './sniff.js';
import { normalizeEntryName, readTar, type ReadTarOptions, type TarEntry } from './tar.js';

/** BundleInputOptions tune {@link openBundleInput}. */
export interface BundleInputOptions {
  /** The xz (and zstd) decoder to use; see {@link DecoderChoice}. Default: `auto`. */
  decoder?: DecoderChoice;
  /** xz decoder threads (`-T<n>`), 0 for one per core. Default: 0. */
  threads?: number;
  /** Check at open time that a compressed file holds a tar (decodes its first block). Default: true. */
  probe?: boolean;
  /** Links inside a tar: see {@link ReadTarOptions.links}. Default: `reject`. */
  links?: 'reject' | 'yield';
  /** Called as compressed bytes are read, with the delta and the file size (for progress bars). */
  onCompressedBytes?: (delta: number, totalBytes: number) => void;
  /** Aborts the open (and the probe). */
  signal?: AbortSignal;
}

/** EntriesOptions tune one pass over a tar bundle. */
export interface EntriesOptions {
  /** Aborting stops the pass with INTERRUPTED and kills the decoder. */
  signal?: AbortSignal;
}

/** FileBundleInput is a bundle that is one tar file, compressed or not. */
export interface FileBundleInput {
  readonly kind: 'file';
  /** The path as given. */
  readonly path: string;
  /** The compression, sniffed from the magic bytes. */
  readonly compression: Compression;
  /** The decoder each pass uses (`xz -dc -T0`, `lzma-native`, `node:zlib gunzip`, `none`, ...). */
  readonly decoder: string;
  /** The file size in bytes (the total for progress). */
  readonly totalBytes: number;
  /**
   * entries reads the archive from the start, entry by entry (read or drain each body before the next). Each call is
   * a new pass over the file: calling it again re-reads the bundle, e.g. for a second pass over blobs seen before
   * their manifests. Breaking out of the loop stops the decoder.
   */
  entries(options?: EntriesOptions): AsyncIterable<TarEntry>;
  /** Compressed bytes read by the current (or last) pass. */
  compressedBytesRead(): number;
  /** close stops the decoder the open-time check started, when no pass has taken it over; safe to call again. */
  close(): Promise<void>;
}

/** DirectoryStat is what {@link DirectoryBundleInput.stat} tells about a file. */
export interface DirectoryStat {
  /** Size in bytes. */
  size: number;
}

/** DirectoryBundleInput is a bundle unpacked in a directory. */
export interface DirectoryBundleInput {
  readonly kind: 'directory';
  /** The directory as given. */
  readonly path: string;
  /** list gives every regular file below the directory as a `/`-separated relative path, sorted. */
  list(): Promise<string[]>;
  /** open reads one file (a relative path as {@link list} gives it). */
  open(relPath: string, options?: EntriesOptions): AsyncIterable<Uint8Array>;
  /** stat gives a file's size. */
  stat(relPath: string): Promise<DirectoryStat>;
  /** readFile reads a small file whole; BAD_INPUT when it is larger than `maxBytes` (default 64 MiB). */
  readFile(relPath: string, maxBytes?: number): Promise<Buffer>;
}

/** BundleInput is an opened `--source`. */
export type BundleInput = FileBundleInput | DirectoryBundleInput;

const READ_CHUNK = 256 * 1024;
const DEFAULT_MAX_FILE = 64 * 1024 * 1024;

function notABundle(path: string, why?: string): MirrorError {
  return new MirrorError('BAD_INPUT', `${path} is not a bundle (not a tar archive, compressed or not)${why ? `: ${why}` : ''}`, { file: path });
}

/** HeldStream is the decoded stream the open-time check started, kept for the first pass. */
interface HeldStream {
  readonly d: DecompressedStream;
  /** The bytes the check read. */
  readonly head: Uint8Array[];
  /** The rest of the stream, from where the check stopped. */
  readonly rest: AsyncIterator<Uint8Array>;
}

/**
 * probeTar decodes the start of a compressed file and checks it is a tar header. The stream is kept open and given
 * back, so that the first pass goes on from there instead of starting the decoder again.
 */
async function probeTar(path: string, compression: Compression, options: BundleInputOptions): Promise<HeldStream> {
  const d = await openDecompressed(path, { compression, decoder: options.decoder, threads: options.threads, signal: options.signal });
  const head: Uint8Array[] = [];
  let have = 0;
  let kept = false;
  try {
    const rest = d.stream[Symbol.asyncIterator]();
    while (have < SNIFF_BYTES) {
      const r = await rest.next();
      if (r.done) break;
      head.push(r.value);
      have += r.value.byteLength;
    }
    if (!looksLikeTar(Buffer.concat(head))) throw notABundle(path, `it is ${d.compression}-compressed, but what is inside is not a tar archive`);
    kept = true;
    return { d, head, rest };
  } finally {
    if (!kept) await d.close();
  }
}

/** resumed is a held stream as one iterable: the bytes already read, then the rest. */
async function* resumed(h: HeldStream): AsyncGenerator<Uint8Array, void, undefined> {
  yield* h.head;
  for (;;) {
    const r = await h.rest.next();
    if (r.done) return;
    yield r.value;
  }
}

/** openFileInput opens a tar bundle file. */
async function openFileInput(path: string, st: Stats, options: BundleInputOptions): Promise<FileBundleInput> {
  let head: Buffer;
  try {
    const fh = await open(path, 'r');
    try {
      head = Buffer.alloc(SNIFF_BYTES);
      const { bytesRead } = await fh.read(head, 0, SNIFF_BYTES, 0);
      head = head.subarray(0, bytesRead);
    } finally {
      await fh.close();
    }
  } catch (e) {
    throw fileError(path, e);
  }
  if (head.byteLength === 0) throw notABundle(path, 'it is empty');
  const compression = sniffCompression(head);
  if (compression === 'none' && !looksLikeTar(head)) throw notABundle(path);
  const decoder = describeDecoder(compression, options, path);
  let held = compression !== 'none' && options.probe !== false ? await probeTar(path, compression, options) : undefined;
  let lastRead: (() => number) | undefined;
  const totalBytes = st.size;
  return {
    kind: 'file',
    path,
    compression,
    decoder,
    totalBytes,
    compressedBytesRead: () => lastRead?.() ?? 0,
    entries(pass: EntriesOptions = {}): AsyncIterable<TarEntry> {
      const signal = pass.signal ?? options.signal;
      return {
        async *[Symbol.asyncIterator](): AsyncGenerator<TarEntry, void, undefined> {
          // The first pass takes over the stream the open-time check started (when it answers to the same signal and
          // progress callback); any other pass starts the decoder again.
          const h = held;
          held = undefined;
          const reuse = h !== undefined && signal === options.signal && options.onCompressedBytes === undefined ? h : undefined;
          if (h !== undefined && reuse === undefined) await h.d.close();
          const d =
            reuse?.d ??
            (await openDecompressed(path, {
              compression,
              decoder: options.decoder,
              threads: options.threads,
              signal,
              onCompressedBytes: options.onCompressedBytes,
            }));
          lastRead = () => d.compressedBytesRead();
          try {
            yield* readTar(reuse ? resumed(reuse) : d.stream, { file: path, signal, links: options.links });
          } finally {
            await d.close();
          }
        },
      };
    },
    async close(): Promise<void> {
      const h = held;
      held = undefined;
      await h?.d.close();
    },
  };
}

/** isInside tells whether `child` is `root` or below it (both absolute, resolved). */
function isInside(root: string, child: string): boolean {
  if (child === root) return true;
  const rel = relative(root, child);
  return rel !== '' && !rel.startsWith('..') && !rel.startsWith(sep) && !/^[A-Za-z]:/.test(rel);
}

/** openDirectoryInput opens a directory bundle. */
async function openDirectoryInput(path: string, options: BundleInputOptions): Promise<DirectoryBundleInput> {
  let root: string;
  try {
    root = await realpath(path);
  } catch (e) {
    throw fileError(path, e);
  }
  const shown = (rel: string): string => join(path, rel);

  /** resolveFile checks a relative path and gives the real path of the regular file it names. */
  const resolveFile = async (relPath: string): Promise<{ real: string; size: number }> => {
    const checked = normalizeEntryName(relPath);
    if (!checked.ok || checked.name === '') {
      throw new MirrorError('UNSAFE_ENTRY', `unsafe path "${clipInput(relPath)}" in ${path}: ${checked.ok ? 'empty' : checked.reason}`, { file: path });
    }
    const full = join(root, ...checked.name.split('/'));
    let real: string;
    try {
      real = await realpath(full);
    } catch (e) {
      throw fileError(shown(checked.name), e);
    }
    if (!isInside(root, real)) {
      throw new MirrorError('UNSAFE_ENTRY', `${shown(checked.name)} is a symbolic link that leads outside ${path}`, { file: shown(checked.name) });
    }
    const st = await stat(real).catch((e: unknown) => {
      throw fileError(shown(checked.name), e);
    });
    if (!st.isFile()) throw new MirrorError('BAD_INPUT', `${shown(checked.name)} is not a regular file`, { file: shown(checked.name) });
    return { real, size: st.size };
  };

  return {
    kind: 'directory',
    path,
    async list(): Promise<string[]> {
      const out: string[] = [];
      const seen = new Set<string>([root]);
      const walk = async (dirReal: string, prefix: string): Promise<void> => {
        throwIfAborted(options.signal);
        let names: string[];
        try {
          names = await readdir(dirReal);
        } catch (e) {
          throw fileError(prefix === '' ? path : shown(prefix), e);
        }
        names.sort();
        for (const name of names) {
          const rel = prefix === '' ? name : `${prefix}/${name}`;
          const full = join(dirReal, name);
          let st = await lstat(full);
          let real = full;
          if (st.isSymbolicLink()) {
            try {
              real = await realpath(full);
            } catch (e) {
              throw new MirrorError('BAD_INPUT', `${shown(rel)} is a broken symbolic link`, { file: shown(rel), cause: e });
            }
            if (!isInside(root, real)) {
              throw new MirrorError('UNSAFE_ENTRY', `${shown(rel)} is a symbolic link that leads outside ${path}`, { file: shown(rel) });
            }
            st = await stat(real);
          }
          if (st.isDirectory()) {
            if (seen.has(real)) continue;
            seen.add(real);
            await walk(real, rel);
          } else if (st.isFile()) {
            out.push(rel);
          }
          // sockets, FIFOs and devices are not bundle content: skipped
        }
      };
      await walk(root, '');
      return out.sort();
    },
    open(relPath: string, pass: EntriesOptions = {}): AsyncIterable<Uint8Array> {
      const signal = pass.signal ?? options.signal;
      return {
        async *[Symbol.asyncIterator](): AsyncGenerator<Uint8Array, void, undefined> {
          throwIfAborted(signal);
          const { real } = await resolveFile(relPath);
          const rs = createReadStream(real, { highWaterMark: READ_CHUNK, signal });
          try {
            for await (const chunk of rs as AsyncIterable<Buffer>) yield chunk;
          } catch (e) {
            if (signal?.aborted) throw abortError(signal);
            throw fileError(shown(relPath), e);
          } finally {
            rs.destroy();
          }
        },
      };
    },
    async stat(relPath: string): Promise<DirectoryStat> {
      const { size } = await resolveFile(relPath);
      return { size };
    },
    async readFile(relPath: string, maxBytes = DEFAULT_MAX_FILE): Promise<Buffer> {
      const { real, size } = await resolveFile(relPath);
      if (size > maxBytes) {
        throw new MirrorError('BAD_INPUT', `${shown(relPath)} is ${size} bytes, more than the ${maxBytes} bytes read into memory`, { file: shown(relPath) });
      }
      const parts: Buffer[] = [];
      const rs = createReadStream(real, { highWaterMark: READ_CHUNK, signal: options.signal });
      try {
        for await (const chunk of rs as AsyncIterable<Buffer>) parts.push(chunk);
      } catch (e) {
        if (options.signal?.aborted) throw abortError(options.signal);
        throw fileError(shown(relPath), e);
      }
      return Buffer.concat(parts);
    },
  };
}

/**
 * openBundleInput opens a `--source`: a directory, or a file that is a tar archive, plain or compressed with xz,
 * gzip, zstd or bzip2 (sniffed from its bytes, not its name). A missing path is BAD_INPUT "no such file: X"; a file
 * that is neither is BAD_INPUT "X is not a bundle (...)".
 */
export async function openBundleInput(path: string, options: BundleInputOptions = {}): Promise<BundleInput> {
  throwIfAborted(options.signal);
  let st: Stats;
  try {
    st = await stat(path);
  } catch (e) {
    throw fileError(path, e);
  }
  if (st.isDirectory()) return openDirectoryInput(path, options);
  if (!st.isFile()) throw notABundle(path, 'it is not a regular file or a directory');
  return openFileInput(path, st, options);
}
