/**
 * Opening an archive *source* (`oci-archive:FILE`, `docker-archive:FILE`) for random access. A plain tar is indexed in
 * place (src/transport/archive/tar-index.ts). A compressed one (gzip, xz, zstd, bzip2: sniffed by magic bytes, as
 * `mirror push` sniffs bundles) cannot be read at random, so it is decompressed once, with push's decoders
 * (src/archive/decompress.ts), into a private temporary file — as skopeo does for compressed archives — and that file
 * is indexed. The temporary file lives in its own directory under `os.tmpdir()` (`$TMPDIR`), created 0700 with the
 * file 0600, and is removed on every way out: close, a failure while decompressing or indexing, an abort (Ctrl-C),
 * and, as a last resort, when the process exits. A progress event says it is happening, and how large it got.
 */
import { rmSync } from 'node:fs';
import { mkdtemp, open, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileError, openDecompressed, SNIFF_BYTES, sniffCompression, type Compression } from '../../archive/index.js';
import { abortError, errorMessage, isMirrorError, MirrorError, throwIfAborted } from '../../errors/index.js';
import { type EventSink, noEvents } from '../../events/index.js';
import { TarIndex } from './tar-index.js';

/** TEMP_PREFIX names the private directories holding decompressed archives. */
export const TEMP_PREFIX = 'mirror-archive-';

/** Directories still to remove when the process exits (the last resort of the cleanup). */
const live = new Set<string>();
let exitHook = false;

/** removeAtExit removes what is left of every temporary directory when the process exits. */
function removeAtExit(dir: string): void {
  live.add(dir);
  if (exitHook) return;
  exitHook = true;
  process.once('exit', () => {
    for (const d of live) {
      try {
        rmSync(d, { recursive: true, force: true });
      } catch {
        // nothing more can be done while exiting
      }
    }
  });
}

/** OpenArchiveOptions tune {@link openArchive}. */
export interface OpenArchiveOptions {
  /** The transport, for messages (`oci-archive`). */
  transport: string;
  events?: EventSink | undefined;
  signal?: AbortSignal | undefined;
}

/** OpenedArchive is an indexed archive and how to let it go. */
export interface OpenedArchive {
  tar: TarIndex;
  /** How the file was compressed (`none`: read in place). */
  compression: Compression;
  /** The temporary file holding the decompressed tar, when there is one. */
  tempFile: string | undefined;
  /** close closes the file and removes the temporary file; safe to call more than once. */
  close(): Promise<void>;
}

/** openArchive opens `file` for random access, decompressing it into a private temporary file when it is compressed. */
export async function openArchive(file: string, options: OpenArchiveOptions): Promise<OpenedArchive> {
  const events = options.events ?? noEvents;
  throwIfAborted(options.signal);
  let compression: Compression;
  try {
    const h = await open(file, 'r');
    try {
      const st = await h.stat();
      if (st.isDirectory()) throw new MirrorError('BAD_INPUT', `${options.transport}:${file} is a directory`, { file, hint: options.transport === 'oci-archive' ? 'for a layout directory use oci:' : undefined });
      const head = Buffer.alloc(SNIFF_BYTES);
      const { bytesRead } = await h.read(head, 0, SNIFF_BYTES, 0);
      compression = sniffCompression(head.subarray(0, bytesRead));
    } finally {
      await h.close();
    }
  } catch (e) {
    throw isMirrorError(e) ? e : fileError(file, e);
  }
  if (compression === 'none') {
    const tar = await TarIndex.open(file, { display: file, signal: options.signal });
    return { tar, compression, tempFile: undefined, close: () => tar.close() };
  }
  const dir = await mkdtemp(join(tmpdir(), TEMP_PREFIX));
  removeAtExit(dir);
  const temp = join(dir, 'archive.tar');
  let removed: Promise<void> | undefined;
  const remove = (): Promise<void> => {
    removed ??= rm(dir, { recursive: true, force: true }).then(() => {
      live.delete(dir);
    });
    return removed;
  };
  // An abort removes the file at once, whatever is still running.
  const onAbort = (): void => {
    void remove();
  };
  options.signal?.addEventListener('abort', onAbort, { once: true });
  let tar: TarIndex | undefined;
  try {
    events({ type: 'phase', phase: 'decompress', detail: `${options.transport}:${file} is ${compression}-compressed: decompressing it once into a private temporary file in ${tmpdir()} (removed when done)` });
    const written = await decompressTo(file, temp, compression, options.signal, events);
    throwIfAborted(options.signal);
    events({ type: 'debug', message: `${file}: ${written} bytes decompressed into ${temp}` });
    tar = await TarIndex.open(temp, { display: file, signal: options.signal });
  } catch (e) {
    options.signal?.removeEventListener('abort', onAbort);
    await remove();
    if (options.signal?.aborted) throw abortError(options.signal);
    throw e;
  }
  const opened = tar;
  return {
    tar: opened,
    compression,
    tempFile: temp,
    async close() {
      options.signal?.removeEventListener('abort', onAbort);
      await opened.close();
      await remove();
    },
  };
}

/** decompressTo writes the decompressed bytes of `file` into a new 0600 file `temp`; it returns the bytes written. */
async function decompressTo(file: string, temp: string, compression: Compression, signal: AbortSignal | undefined, events: EventSink): Promise<number> {
  const input = await openDecompressed(file, { compression, ...(signal ? { signal } : {}), onCompressedBytes: (delta, total) => events({ type: 'source-bytes', bytes: delta, total }) });
  let out;
  try {
    out = await open(temp, 'wx', 0o600);
  } catch (e) {
    await input.close();
    throw new MirrorError('BAD_INPUT', `cannot create a temporary file in ${tmpdir()} to decompress ${file}: ${errorMessage(e)}`, { file: temp, cause: e, hint: 'set TMPDIR to a directory with room' });
  }
  let written = 0;
  try {
    for await (const chunk of input.stream) {
      if (signal?.aborted) throw abortError(signal);
      let off = 0;
      while (off < chunk.byteLength) {
        const { bytesWritten } = await out.write(chunk, off, chunk.byteLength - off);
        off += bytesWritten;
      }
      written += chunk.byteLength;
    }
  } catch (e) {
    if (isMirrorError(e) && e.code === 'CORRUPT_ARCHIVE' && e.context.file === undefined) {
      throw new MirrorError('CORRUPT_ARCHIVE', `${file}: ${e.message}`, { file, cause: e });
    }
    if (!isMirrorError(e) && (e as NodeJS.ErrnoException).code === 'ENOSPC') {
      throw new MirrorError('BAD_INPUT', `no room in ${tmpdir()} to decompress ${file} (${written} bytes written)`, { file, cause: e, hint: 'set TMPDIR to a directory with room' });
    }
    throw e;
  } finally {
    await input.close();
    await out.close();
  }
  return written;
}
