/**
 * Streaming decompression of a bundle file with the fastest decoder at hand: the `xz` / `zstd` / `bzip2` programs
 * when they are on PATH (xz decodes multi-block files on several cores with `-T0`), in-process libraries otherwise
 * (lzma-native for xz, node:zlib for gzip and, on a Node that has it, zstd). Nothing is extracted to disk; memory
 * stays bounded because every stage respects backpressure (file -> counter -> decoder -> consumer).
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { accessSync, constants as fsConstants, readFileSync, statSync } from 'node:fs';
import { type FileHandle, open } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { basename, delimiter, join } from 'node:path';
import { type Duplex, Readable, Transform, type TransformCallback } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import zlib from 'node:zlib';
import { abortError, MirrorError, throwIfAborted } from '../errors/index.js';
import { type Compression, SNIFF_BYTES, sniffCompression } from './sniff.js';

/**
 * DecoderChoice selects the decoder: `auto` (default) takes the external program when it is on PATH and the
 * in-process library otherwise (except gzip, which node:zlib decodes as fast as `gzip` does, in-process);
 * `program` insists on the external program; `library` insists on the in-process decoder. `xz` and `lzma-native`
 * are the same as `program` and `library` for xz streams and leave other formats on `auto`.
 */
export type DecoderChoice = 'auto' | 'program' | 'library' | 'xz' | 'lzma-native';

/** OpenDecompressedOptions tune {@link openDecompressed}. */
export interface OpenDecompressedOptions {
  /** Which decoder to use. Default: `auto`. */
  decoder?: DecoderChoice;
  /** Decoder threads for the xz program (`-T<n>`); 0 means one per core. Default: 0. */
  threads?: number;
  /** Aborting kills the decoder process and makes the stream throw an INTERRUPTED error. */
  signal?: AbortSignal;
  /** The compression, when already known; skips sniffing. Default: sniffed from the first bytes. */
  compression?: Compression;
  /** Size of the reads from the file. Default: 256 KiB. */
  readChunkBytes?: number;
  /** Decoded bytes are handed on in pieces of at least this size (the last one may be shorter). Default: 256 KiB. */
  outputChunkBytes?: number;
  /**
   * Largest piece of compressed input handed to an in-process decoder at once. Those decoders expand a whole input
   * piece before looking at backpressure, so pieces are sized from the last piece's expansion ratio to yield about
   * 1 MiB of output each, between 256 bytes and this limit; it bounds the burst when the data turns from incompressible
   * to extremely compressible (up to a few thousand times for xz). Measured: piece size does not change decode speed.
   * Default: 4 KiB.
   */
  libraryInputBytes?: number;
  /** Called as compressed bytes are read from the file, with the delta and the file size (for progress bars). */
  onCompressedBytes?: (delta: number, totalBytes: number) => void;
}

/** DecompressedStream is an open, decompressing read of a file. */
export interface DecompressedStream {
  /**
   * The decompressed bytes. Iterate it once, to the end or until you stop (breaking out cleans up). A corrupt or
   * truncated input makes the iteration throw CORRUPT_ARCHIVE after the last good bytes.
   */
  readonly stream: AsyncIterable<Uint8Array>;
  /** The compression of the file. */
  readonly compression: Compression;
  /** The decoder in use, for messages (`xz -dc -T0`, `lzma-native`, `node:zlib gunzip`, `none`, ...). */
  readonly decoder: string;
  /** The size of the (compressed) file in bytes. */
  readonly totalBytes: number;
  /** The decoder process id, when the decoder is a program (for diagnostics and tests). */
  readonly pid: number | undefined;
  /** Compressed bytes read from the file so far. */
  compressedBytesRead(): number;
  /** close stops reading, kills a decoder process and waits for it to exit; safe to call more than once. */
  close(): Promise<void>;
}

const DEFAULT_READ_CHUNK = 256 * 1024;
const DEFAULT_OUTPUT_CHUNK = 256 * 1024;
const DEFAULT_LIBRARY_INPUT = 4 * 1024;
const MIN_LIBRARY_INPUT = 256;
const LIBRARY_TARGET_OUTPUT = 1024 * 1024;
const STDERR_KEEP = 4096;
const KILL_GRACE_MS = 2000;

const programCache = new Map<string, string | undefined>();

/** canShareFd tells whether a decoder program can read our descriptor and /proc can tell how far it got (Linux). */
function canShareFd(fd: number): boolean {
  return process.platform === 'linux' && fdPosition(fd) !== undefined;
}

/** fdPosition reads the file offset of one of our descriptors from /proc (shared with a child that inherited it). */
function fdPosition(fd: number): number | undefined {
  try {
    const m = /^pos:\s*(\d+)/m.exec(readFileSync(`/proc/self/fdinfo/${fd}`, 'utf8'));
    return m ? Number(m[1]) : undefined;
  } catch {
    return undefined;
  }
}

/** findProgram finds an executable on PATH (once per name; the answer is cached), or undefined. */
export function findProgram(name: string): string | undefined {
  if (programCache.has(name)) return programCache.get(name);
  let found: string | undefined;
  const dirs = (process.env.PATH ?? '').split(delimiter).filter((d) => d !== '');
  const exts = process.platform === 'win32' ? ['', ...(process.env.PATHEXT ?? '.EXE;.CMD;.BAT').split(';')] : [''];
  search: for (const dir of dirs) {
    for (const ext of exts) {
      const candidate = join(dir, name + ext);
      try {
        accessSync(candidate, fsConstants.X_OK);
        if (statSync(candidate).isFile()) {
          found = candidate;
          break search;
        }
      } catch {
        // not here
      }
    }
  }
  programCache.set(name, found);
  return found;
}

/** LzmaNative is the part of lzma-native used here. */
interface LzmaNative {
  createDecompressor(options?: { synchronous?: boolean; memlimit?: number; bufsize?: number }): Duplex;
}

let lzmaNative: LzmaNative | null | undefined;

/** loadLzmaNative loads lzma-native lazily (its native part may be missing on an unusual platform). */
function loadLzmaNative(): LzmaNative | undefined {
  if (lzmaNative === undefined) {
    try {
      const req = createRequire(import.meta.url);
      const mod = req('lzma-native') as Partial<LzmaNative>;
      lzmaNative = typeof mod.createDecompressor === 'function' ? (mod as LzmaNative) : null;
    } catch {
      lzmaNative = null;
    }
  }
  return lzmaNative ?? undefined;
}

/** hasLzmaNative tells whether the in-process xz decoder (lzma-native) loads on this machine. */
export function hasLzmaNative(): boolean {
  return loadLzmaNative() !== undefined;
}

type ZstdFactory = (options?: zlib.ZlibOptions) => Transform;

/** nodeZstd gives node:zlib's zstd decompressor factory when the running Node has one (22.15+, 23.8+). */
function nodeZstd(): ZstdFactory | undefined {
  const f = (zlib as unknown as { createZstdDecompress?: ZstdFactory }).createZstdDecompress;
  return typeof f === 'function' ? f : undefined;
}

/** ZSTD_WINDOW_LOG_MAX is the largest zstd window accepted (2^31 bytes, the most `zstd --long` writes). */
export const ZSTD_WINDOW_LOG_MAX = 31;

/** zstdDecodeOptions raises node:zlib's zstd window limit to {@link ZSTD_WINDOW_LOG_MAX} (its default is 2^27). */
function zstdDecodeOptions(): zlib.ZlibOptions {
  const key = (zlib.constants as unknown as Record<string, number | undefined>).ZSTD_d_windowLogMax;
  return key === undefined ? {} : ({ params: { [key]: ZSTD_WINDOW_LOG_MAX } } as unknown as zlib.ZlibOptions);
}

/** DecoderPlan is how one stream will be decoded. */
type DecoderPlan =
  | { kind: 'none'; label: string }
  | { kind: 'program'; program: string; args: string[]; label: string }
  | { kind: 'library'; create: () => Duplex; label: string };

function unsupported(message: string, hint?: string): MirrorError {
  return new MirrorError('UNSUPPORTED', message, hint === undefined ? {} : { hint });
}

/** planDecoder picks the decoder for a compression and a choice, or throws UNSUPPORTED. */
function planDecoder(compression: Compression, file: string, options: OpenDecompressedOptions): DecoderPlan {
  let choice = options.decoder ?? 'auto';
  if (choice === 'xz' || choice === 'lzma-native') {
    choice = compression !== 'xz' ? 'auto' : choice === 'xz' ? 'program' : 'library';
  }
  const threads = Math.max(0, Math.floor(options.threads ?? 0));
  const program = (names: string[], args: string[]): DecoderPlan | undefined => {
    for (const name of names) {
      const path = findProgram(name);
      if (path !== undefined) return { kind: 'program', program: path, args, label: [name, ...args].join(' ') };
    }
    return undefined;
  };
  switch (compression) {
    case 'none':
      return { kind: 'none', label: 'none' };
    case 'xz': {
      const prog = choice === 'library' ? undefined : program(['xz'], ['-dc', `-T${threads}`]);
      if (prog) return prog;
      if (choice === 'program') throw unsupported(`cannot decode ${file}: the xz program is not on PATH`, 'install xz-utils, or use the lzma-native decoder');
      const lib = loadLzmaNative();
      if (lib) return { kind: 'library', create: () => lib.createDecompressor({ synchronous: false }), label: 'lzma-native' };
      throw unsupported(`cannot decode ${file}: neither the xz program nor lzma-native is available`, 'install xz-utils');
    }
    case 'gzip': {
      if (choice === 'program') {
        const prog = program(['pigz', 'gzip'], ['-dc']);
        if (prog) return prog;
        throw unsupported(`cannot decode ${file}: neither pigz nor gzip is on PATH`);
      }
      return { kind: 'library', create: () => zlib.createGunzip(), label: 'node:zlib gunzip' };
    }
    case 'zstd': {
      // Frames written with `--long=N` (windows above the decoder's default 128 MiB limit, up to 2 GiB) are refused
      // unless the limit is raised; raising it costs nothing for other frames (the window a frame declares is what is
      // allocated).
      const prog = choice === 'library' ? undefined : program(['zstd'], ['-dc', '-q', '--no-progress', `--long=${ZSTD_WINDOW_LOG_MAX}`]);
      if (prog) return prog;
      if (choice === 'program') throw unsupported(`cannot decode ${file}: the zstd program is not on PATH`, 'install zstd');
      const make = nodeZstd();
      if (make) return { kind: 'library', create: () => make(zstdDecodeOptions()), label: 'node:zlib zstd' };
      throw unsupported(`cannot decode ${file}: zstd needs the zstd program on PATH or Node 22.15 or later`, 'install zstd');
    }
    case 'bzip2': {
      if (choice !== 'library') {
        const prog = program(['lbzip2', 'bzip2'], ['-dc']);
        if (prog) return prog;
      }
      throw unsupported(`cannot decode ${file}: bzip2 needs the bzip2 program on PATH`, 'install bzip2, or recompress the bundle with xz, zstd or gzip');
    }
  }
}

/** fileError turns an fs error about a bundle file into a BAD_INPUT error naming it. */
export function fileError(file: string, e: unknown): MirrorError {
  const code = (e as NodeJS.ErrnoException | undefined)?.code;
  if (code === 'ENOENT') return new MirrorError('BAD_INPUT', `no such file: ${file}`, { file, cause: e });
  if (code === 'EACCES' || code === 'EPERM') return new MirrorError('BAD_INPUT', `cannot read ${file}: permission denied`, { file, cause: e });
  if (code === 'EISDIR') return new MirrorError('BAD_INPUT', `${file} is a directory`, { file, cause: e });
  const text = e instanceof Error ? (e.message.split('\n')[0] ?? e.name) : String(e);
  return new MirrorError('BAD_INPUT', `cannot read ${file}: ${text}`, { file, cause: e });
}

/** oneLine gives the first meaningful line of a decoder's stderr or error message, without the program prefix. */
function oneLine(text: string, program: string): string {
  const lines = text
    .split(/\r?\n/)
    .map((l) => l.trim())
    .filter((l) => l !== '');
  let line = lines[0] ?? '';
  const prefixes = [`${program}: `, `${basename(program)}: `];
  for (let changed = true; changed; ) {
    changed = false;
    for (const p of prefixes) {
      if (line.startsWith(p)) {
        line = line.slice(p.length);
        changed = true;
      }
    }
    // how decoders name their standard input: xz `(stdin): `, zstd `/*stdin*\ : `
    const stdin = /^(?:\(stdin\)|\/\*stdin\*\\|\*stdin\*|stdin)\s*:\s*/.exec(line);
    if (stdin) {
      line = line.slice(stdin[0].length);
      changed = true;
    }
  }
  return line.length > 300 ? `${line.slice(0, 300)}...` : line;
}

/** errnoCode gives the `code` of an fs/stream error, if any. */
function errnoCode(e: unknown): string | undefined {
  const c = (e as { code?: unknown } | null | undefined)?.code;
  return typeof c === 'string' ? c : undefined;
}

const DOWNSTREAM_CODES = new Set(['EPIPE', 'ECONNRESET', 'ERR_STREAM_PREMATURE_CLOSE', 'ERR_STREAM_DESTROYED', 'ERR_STREAM_WRITE_AFTER_END']);

/** isDownstreamError tells whether an error on the file stream came from a stage after it (a pipe, a decoder). */
function isDownstreamError(e: unknown): boolean {
  const err = e as NodeJS.ErrnoException | null | undefined;
  return (err?.code !== undefined && DOWNSTREAM_CODES.has(err.code)) || err?.syscall === 'write';
}

/** CountingTransform passes bytes through, counting them. */
class CountingTransform extends Transform {
  constructor(private readonly onBytes: (n: number) => void) {
    super();
  }

  override _transform(chunk: Buffer, _enc: BufferEncoding, cb: TransformCallback): void {
    this.onBytes(chunk.byteLength);
    cb(null, chunk);
  }
}

/**
 * untilProcessed runs `act` on a transform and resolves when `act` reports completion, or rejects when the transform
 * fails or closes first.
 */
function untilProcessed(w: Duplex, act: (done: (e?: Error | null) => void) => void): Promise<void> {
  return new Promise<void>((resolve, reject) => {
    if (w.destroyed) {
      reject(new Error('decoder closed'));
      return;
    }
    const cleanup = (): void => {
      w.off('error', onError);
      w.off('close', onClose);
    };
    const onError = (e: unknown): void => {
      cleanup();
      reject(e);
    };
    const onClose = (): void => {
      cleanup();
      reject(new Error('decoder closed'));
    };
    w.on('error', onError);
    w.on('close', onClose);
    act((e) => {
      cleanup();
      if (e) reject(e);
      else resolve();
    });
  });
}

/** writeProcessed writes one piece into a transform and resolves once the transform has processed it. */
function writeProcessed(w: Duplex, piece: Buffer): Promise<void> {
  return untilProcessed(w, (done) => w.write(piece, done));
}

/** endProcessed ends a transform's input and resolves once everything written has been processed. */
function endProcessed(w: Duplex): Promise<void> {
  return untilProcessed(w, (done) => {
    w.once('finish', () => done());
    w.end();
  });
}

interface ExitStatus {
  code: number | null;
  signal: NodeJS.Signals | null;
}

/** DecompressionRun is one open read of a file through one decoder. */
class DecompressionRun implements DecompressedStream {
  readonly stream: AsyncIterable<Uint8Array>;
  readonly pid: number | undefined;
  private readonly input: Readable;
  private readonly output: Readable;
  private readonly child: ChildProcess | undefined;
  private readonly exited: Promise<ExitStatus> | undefined;
  private readonly feeding: Promise<void>;
  private bytesRead = 0;
  private bytesOut = 0;
  private readError: unknown;
  private decodeError: unknown;
  private spawnError: unknown;
  private stderrText = '';
  private disposed: Promise<void> | undefined;
  private aborted = false;
  private killedByUs = false;
  private started = false;
  private readonly onAbort = (): void => this.abort();
  /** The file descriptor the decoder program reads directly, when it does. */
  private readonly directFd: number | undefined;

  constructor(
    private readonly file: string,
    handle: FileHandle,
    readonly totalBytes: number,
    readonly compression: Compression,
    private readonly plan: DecoderPlan,
    private readonly options: OpenDecompressedOptions,
  ) {
    // A decoder program on Linux reads the file itself (its stdin is our descriptor), so the compressed bytes never
    // pass through this process; the shared file offset, read from /proc, tells how far it got.
    this.directFd = plan.kind === 'program' && options.onCompressedBytes === undefined && canShareFd(handle.fd) ? handle.fd : undefined;
    this.input =
      this.directFd !== undefined
        ? Readable.from([])
        : handle.createReadStream({ start: 0, highWaterMark: options.readChunkBytes ?? DEFAULT_READ_CHUNK, autoClose: true });
    this.input.on('error', (e) => {
      // pipeline() destroys the file stream with whatever broke downstream (EPIPE when a decoder exits early): only
      // the file's own failures are read errors.
      if (!isDownstreamError(e)) this.readError ??= e;
    });
    const count = (n: number): void => {
      this.bytesRead += n;
      options.onCompressedBytes?.(n, totalBytes);
    };
    const record = (e: unknown): void => {
      // A decoder whose output has ended (gzip followed by padding it ignores, as gzip -d does: tape blocks, zeros)
      // is destroyed by the reader with an AbortError that is no failure: what it gave is whole.
      if (this.output.readableEnded) return;
      this.decodeError ??= e;
    };
    if (plan.kind === 'program') {
      const child = spawn(plan.program, plan.args, {
        stdio: [this.directFd ?? 'pipe', 'pipe', 'pipe'],
        windowsHide: true,
        env: { ...process.env, LC_ALL: 'C', LANG: 'C' },
      });
      this.child = child;
      this.pid = child.pid;
      this.exited = new Promise<ExitStatus>((resolve) => {
        child.once('close', (code, signal) => resolve({ code, signal }));
        child.once('error', (e) => {
          this.spawnError ??= e;
          // A program that never started emits no 'close' on every Node version: do not wait for one.
          if (child.pid === undefined) resolve({ code: null, signal: null });
        });
      });
      child.stderr?.on('data', (d: Buffer) => {
        if (this.stderrText.length < STDERR_KEEP) this.stderrText += d.toString('utf8');
      });
      child.stderr?.on('error', () => {});
      child.stdout?.on('error', () => {});
      child.stdin?.on('error', () => {});
      const stdin = child.stdin;
      const stdout = child.stdout;
      if ((stdin === null && this.directFd === undefined) || stdout === null) throw new MirrorError('INTERNAL', `cannot run ${plan.label}: no pipes`);
      this.output = stdout;
      if (this.directFd !== undefined || stdin === null) {
        // The program holds its own copy of the descriptor; ours is closed once it has exited.
        this.feeding = this.exited
          .then(() => {
            this.compressedBytesRead();
            return handle.close();
          })
          .catch(() => {});
      } else {
        // The pipe from the file into the program fails with EPIPE when the program stops early; its exit status says why.
        this.feeding = pipeline(this.input, new CountingTransform(count), stdin).catch(() => {});
      }
    } else if (plan.kind === 'library') {
      const decoder = plan.create();
      decoder.on('error', record);
      this.output = decoder;
      this.feeding = this.feedLibrary(decoder, count, options.libraryInputBytes ?? DEFAULT_LIBRARY_INPUT);
    } else {
      const counter = new CountingTransform(count);
      this.output = counter;
      this.feeding = pipeline(this.input, counter).catch(() => {});
    }
    const signal = options.signal;
    if (signal) {
      if (signal.aborted) this.abort();
      else signal.addEventListener('abort', this.onAbort, { once: true });
    }
    this.stream = this.iterate();
  }

  /**
   * feedLibrary hands the file to an in-process decoder one piece at a time, waiting for each piece to be decoded
   * (which waits for the consumer), sizing the next piece from the last one's expansion. Never rejects.
   */
  private async feedLibrary(decoder: Duplex, count: (n: number) => void, maxPiece: number): Promise<void> {
    const max = Math.max(MIN_LIBRARY_INPUT, maxPiece);
    let piece = MIN_LIBRARY_INPUT;
    const produced = (): number => this.bytesOut + decoder.readableLength;
    try {
      for await (const chunk of this.input as AsyncIterable<Buffer>) {
        count(chunk.byteLength);
        for (let off = 0; off < chunk.byteLength; ) {
          const slice = chunk.subarray(off, off + piece);
          off += slice.byteLength;
          const before = produced();
          await writeProcessed(decoder, slice);
          const ratio = Math.max(1, (produced() - before) / slice.byteLength);
          piece = Math.min(max, Math.max(MIN_LIBRARY_INPUT, Math.floor(LIBRARY_TARGET_OUTPUT / ratio)));
        }
      }
      await endProcessed(decoder);
    } catch (e) {
      // A read error is recorded by the input's listener, a decoding error by the decoder's; end the output either way.
      // Input the decoder no longer takes once its output has ended (padding after the last gzip member) is ignored.
      if (this.readError === undefined && !decoder.readableEnded) this.decodeError ??= e;
      decoder.destroy();
    }
  }

  get decoder(): string {
    return this.plan.label;
  }

  compressedBytesRead(): number {
    if (this.directFd !== undefined) {
      const pos = fdPosition(this.directFd);
      if (pos !== undefined) this.bytesRead = Math.max(this.bytesRead, Math.min(pos, this.totalBytes));
    }
    return this.bytesRead;
  }

  private abort(): void {
    if (this.aborted) return;
    this.aborted = true;
    this.kill();
    const err = abortError(this.options.signal);
    this.input.destroy();
    this.output.destroy(err);
  }

  private kill(): void {
    const child = this.child;
    if (!child || child.exitCode !== null || child.signalCode !== null) return;
    this.killedByUs = true;
    child.kill('SIGTERM');
    const timer = setTimeout(() => {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
    }, KILL_GRACE_MS);
    timer.unref();
    void this.exited?.then(() => clearTimeout(timer));
  }

  /** failure explains why reading stopped: abort, an unreadable file, or the decoder's complaint. */
  private async failure(readingError: unknown): Promise<MirrorError | undefined> {
    const file = this.file;
    if (this.aborted || this.options.signal?.aborted) return abortError(this.options.signal);
    if (this.readError !== undefined) return fileError(file, this.readError);
    if (this.plan.kind === 'program') {
      const status = this.exited ? await this.exited : { code: 0, signal: null };
      if (this.aborted) return abortError(this.options.signal);
      const name = basename(this.plan.program).replace(/\.exe$/i, '');
      if (this.spawnError !== undefined) {
        return new MirrorError('INTERNAL', `cannot run ${name} to decode ${file}: ${oneLine(String((this.spawnError as Error).message ?? this.spawnError), name)}`, {
          file,
          cause: this.spawnError,
        });
      }
      if (this.killedByUs) return new MirrorError('INTERNAL', `the decompressed stream of ${file} was closed while being read`, { file });
      if (status.signal === 'SIGINT' || status.signal === 'SIGTERM' || status.signal === 'SIGHUP') {
        // Ctrl-C in a terminal reaches the whole process group: the decoder may stop before this process hears of it.
        return new MirrorError('INTERRUPTED', `${name} was stopped by ${status.signal} while decoding ${file}`, { file });
      }
      if (status.signal !== null) {
        return new MirrorError('INTERNAL', `${name} was killed by ${status.signal} while decoding ${file}`, { file });
      }
      if (status.code !== 0) {
        const cause = oneLine(this.stderrText, this.plan.program) || `exit status ${status.code ?? '?'}`;
        return new MirrorError('CORRUPT_ARCHIVE', `${file} is corrupt or truncated: ${name}: ${cause}`, { file, phase: 'read' });
      }
      if (readingError !== undefined) return this.corrupt(readingError);
      return undefined;
    }
    const e = this.decodeError ?? readingError;
    if (e !== undefined) return this.corrupt(e);
    return undefined;
  }

  private corrupt(e: unknown): MirrorError {
    if (e instanceof MirrorError) return e;
    const name = this.plan.label;
    const lzmaName = (e as { name?: unknown } | null | undefined)?.name;
    // liblzma says "No progress is possible" (LZMA_BUF_ERROR) when the input ends early: say what it means.
    const text = lzmaName === 'LZMA_BUF_ERROR' ? 'Unexpected end of input' : e instanceof Error ? e.message : String(e);
    const code = errnoCode(e);
    const cause = oneLine(text, name) || code || 'decoding failed';
    return new MirrorError('CORRUPT_ARCHIVE', `${this.file} is corrupt or truncated: ${name}: ${cause}`, { file: this.file, phase: 'read', cause: e });
  }

  private async *iterate(): AsyncGenerator<Uint8Array, void, undefined> {
    if (this.started) throw new MirrorError('INTERNAL', `the decompressed stream of ${this.file} was read twice`);
    this.started = true;
    try {
      throwIfAborted(this.options.signal);
      if (this.disposed !== undefined) throw new MirrorError('INTERNAL', `the decompressed stream of ${this.file} was closed before it was read`);
      const it = (this.output as AsyncIterable<Buffer>)[Symbol.asyncIterator]();
      // Decoders write small pieces (xz: about 16 KiB); joining them into pieces of `target` bytes costs one copy and
      // saves every later stage (tar parsing, hashing, HTTP writes, the registry's reads) most of its per-piece work.
      const target = this.options.outputChunkBytes ?? DEFAULT_OUTPUT_CHUNK;
      let parts: Buffer[] = [];
      let held = 0;
      const take = (): Buffer => {
        const out = parts.length === 1 ? (parts[0] as Buffer) : Buffer.concat(parts, held);
        parts = [];
        held = 0;
        return out;
      };
      for (;;) {
        let r: IteratorResult<Buffer>;
        try {
          r = await it.next();
        } catch (e) {
          if (held > 0) yield take(); // the good bytes before the failure still count
          throw (await this.failure(e)) ?? this.corrupt(e);
        }
        if (r.done) break;
        this.bytesOut += r.value.byteLength;
        parts.push(r.value);
        held += r.value.byteLength;
        if (held >= target) yield take();
      }
      if (held > 0) yield take();
      await this.feeding;
      const err = await this.failure(undefined);
      if (err) throw err;
    } finally {
      await this.dispose();
    }
  }

  close(): Promise<void> {
    return this.dispose();
  }

  private dispose(): Promise<void> {
    this.disposed ??= (async () => {
      this.options.signal?.removeEventListener('abort', this.onAbort);
      this.kill();
      this.input.destroy();
      this.output.destroy();
      if (this.exited) await this.exited;
      await this.feeding;
    })();
    return this.disposed;
  }
}

/**
 * openDecompressed opens a file for a streaming, decompressing read. The compression is sniffed from the magic bytes
 * (not the name); xz goes through `xz -dc -T0` when xz is on PATH (else lzma-native), gzip through node:zlib, zstd
 * through `zstd -dc` (else node:zlib where the running Node has zstd), an uncompressed file is read as is.
 * A missing file is BAD_INPUT; a format with no decoder here is UNSUPPORTED; corruption surfaces while reading.
 * Call `close()` when not reading the stream to its end.
 */
export async function openDecompressed(file: string, options: OpenDecompressedOptions = {}): Promise<DecompressedStream> {
  throwIfAborted(options.signal);
  let handle: FileHandle;
  try {
    handle = await open(file, 'r');
  } catch (e) {
    throw fileError(file, e);
  }
  try {
    const st = await handle.stat();
    if (st.isDirectory()) throw new MirrorError('BAD_INPUT', `${file} is a directory`, { file });
    let compression = options.compression;
    if (compression === undefined) {
      const head = Buffer.alloc(SNIFF_BYTES);
      const { bytesRead } = await handle.read(head, 0, SNIFF_BYTES, 0);
      compression = sniffCompression(head.subarray(0, bytesRead));
    }
    const plan = planDecoder(compression, file, options);
    return new DecompressionRun(file, handle, st.size, compression, plan, options);
  } catch (e) {
    await handle.close().catch(() => {});
    if (e instanceof MirrorError) throw e;
    throw fileError(file, e);
  }
}

/** describeDecoder tells which decoder {@link openDecompressed} would use for a compression, without opening anything. */
export function describeDecoder(
  compression: Compression,
  options: Pick<OpenDecompressedOptions, 'decoder' | 'threads'> = {},
  file = 'the bundle',
): string {
  return planDecoder(compression, file, options).label;
}
