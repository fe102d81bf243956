/**
 * Reading a tar stream entry by entry with tar-stream, never touching disk. Names are normalized and checked:
 * nothing absolute, nothing with `..`, no links or devices unless asked; directories are skipped.
 *
 * Entries arrive strictly in archive order and share one underlying stream, so each entry's body must be read
 * (or drained) before the next entry can arrive. Asking for the next entry drains what is left of the current body
 * automatically; a body cannot be read once the iteration has moved on.
 */
import { posix } from 'node:path';
import tarStream from 'tar-stream';
import { abortError, MirrorError } from '../errors/index.js';

/** TarEntryType is the kind of an entry {@link readTar} yields: regular files, and links only when asked for. */
export type TarEntryType = 'file' | 'symlink' | 'link';

/** TarEntry is one entry of a tar stream. */
export interface TarEntry {
  /** The path inside the archive, normalized: `/`-separated, no leading `./`, no empty or `.` components. */
  readonly name: string;
  /** The body size in bytes (0 for links). */
  readonly size: number;
  /** The entry kind. */
  readonly type: TarEntryType;
  /**
   * For a link: the archive path it points at, resolved and normalized (a symlink's target is taken relative to the
   * link's directory, a hard link's relative to the archive root). Undefined for files.
   */
  readonly linkTarget: string | undefined;
  /** The file mode bits from the header. */
  readonly mode: number | undefined;
  /** The modification time from the header. */
  readonly mtime: Date | undefined;
  /** 1-based position of the entry among the archive's entries (directories included), for messages. */
  readonly position: number;
  /** The byte offset of the entry's data in the (uncompressed) tar stream. */
  readonly offset: number;
  /** The body. Iterate it at most once, before asking for the next entry. Breaking out early is fine. */
  readonly body: AsyncIterable<Uint8Array>;
  /** drain reads and discards what is left of the body. */
  drain(): Promise<void>;
  /** bytes reads the whole body into memory; BAD_INPUT when it is larger than `maxBytes` (default 64 MiB). */
  bytes(maxBytes?: number): Promise<Buffer>;
}

/** ReadTarOptions tune {@link readTar}. */
export interface ReadTarOptions {
  /** The file (or other source) name used in messages. Required: every error names it. */
  file: string;
  /** Aborting stops the read with an INTERRUPTED error. */
  signal?: AbortSignal;
  /**
   * What to do with symlinks and hard links: `reject` (default) fails with UNSAFE_ENTRY; `yield` passes them on with
   * their resolved {@link TarEntry.linkTarget}, still failing when the target leaves the archive. Links are harmless
   * when nothing is extracted, and `docker save` before Docker 25 writes `<id>/layer.tar` of a repeated layer as a
   * symlink to the first copy, so a docker-archive reader wants `yield`.
   */
  links?: 'reject' | 'yield';
  /**
   * Require the end-of-archive marker (a zero block after the last entry). An archive cut exactly between two entries
   * is otherwise indistinguishable from a complete one. Default: true.
   */
  requireEndMarker?: boolean;
}

/** DEFAULT_MAX_ENTRY_BYTES is the default limit of {@link TarEntry.bytes}. */
export const DEFAULT_MAX_ENTRY_BYTES = 64 * 1024 * 1024;

/** NameCheck is the outcome of {@link normalizeEntryName}. */
export type NameCheck = { ok: true; name: string } | { ok: false; reason: string };

/**
 * normalizeEntryName normalizes an archive path (`./a//b/` -> `a/b`) and refuses what could leave the archive root:
 * absolute paths, drive letters, `..` components, NUL bytes.
 */
export function normalizeEntryName(raw: string): NameCheck {
  if (raw.includes('\0')) return { ok: false, reason: 'its name contains a NUL byte' };
  if (raw.startsWith('/') || /^[A-Za-z]:[/\\]/.test(raw) || raw.startsWith('\\')) return { ok: false, reason: 'its name is an absolute path' };
  const parts: string[] = [];
  for (const part of raw.split('/')) {
    if (part === '' || part === '.') continue;
    if (part === '..') return { ok: false, reason: 'its name has a ".." component' };
    parts.push(part);
  }
  return { ok: true, name: parts.join('/') };
}

/** drain reads and discards an async iterable of chunks (a body the consumer does not need). */
export async function drain(body: AsyncIterable<Uint8Array> | TarEntry): Promise<void> {
  if ('drain' in body && typeof body.drain === 'function') {
    await body.drain();
    return;
  }
  for await (const chunk of body as AsyncIterable<Uint8Array>) void chunk;
}

/** TarHeader is the part of a tar-stream header used here (its own typings omit `byteOffset` and unknown types). */
interface TarHeader {
  name: string;
  size?: number;
  mode?: number;
  mtime?: Date;
  type?: string | null;
  linkname?: string | null;
  byteOffset?: number;
}

/** EntryStream is the part of a tar-stream entry stream (a streamx Readable) used here. */
interface EntryStream {
  header: TarHeader;
  on(event: 'data', listener: (chunk: Buffer) => void): unknown;
  on(event: 'end' | 'close', listener: () => void): unknown;
  on(event: 'error', listener: (e: unknown) => void): unknown;
  pause(): unknown;
  resume(): unknown;
}

/** TarExtract is the part of tar-stream's extract (a streamx Writable) used here. */
interface TarExtract extends AsyncIterable<EntryStream> {
  readonly destroyed: boolean;
  write(chunk: Buffer): boolean;
  end(): unknown;
  destroy(e?: Error): unknown;
  on(event: 'drain' | 'close', listener: () => void): unknown;
  off(event: 'drain' | 'close', listener: () => void): unknown;
}

const createExtract = tarStream.extract as unknown as (options: { allowUnknownFormat: boolean }) => TarExtract;

/** EntryBody reads one entry's stream chunk by chunk without ever destroying it (that would destroy the whole tar). */
class EntryBody {
  private readonly queue: Buffer[] = [];
  private ended = false;
  private closed = false;
  private error: unknown;
  private wake: (() => void) | undefined;
  private discarding = false;
  private claimed = false;
  detached = false;

  constructor(
    private readonly stream: EntryStream,
    private readonly describe: () => string,
    private readonly mapError: (e: unknown) => MirrorError,
  ) {
    stream.on('data', (chunk: Buffer) => {
      if (!this.discarding) {
        this.queue.push(chunk);
        stream.pause();
      }
      this.notify();
    });
    stream.on('end', () => {
      this.ended = true;
      this.notify();
    });
    stream.on('error', (e: unknown) => {
      this.error ??= e;
      this.notify();
    });
    stream.on('close', () => {
      this.closed = true;
      this.notify();
    });
  }

  private notify(): void {
    const w = this.wake;
    this.wake = undefined;
    w?.();
  }

  private wait(): Promise<void> {
    return new Promise<void>((resolve) => {
      this.wake = resolve;
      this.stream.resume();
    });
  }

  /** next gives the next chunk, or null at the end of the body. */
  async next(): Promise<Buffer | null> {
    for (;;) {
      const chunk = this.queue.shift();
      if (chunk !== undefined) return chunk;
      if (this.error !== undefined) throw this.mapError(this.error);
      if (this.ended) return null;
      if (this.closed) throw this.mapError(new Error('Unexpected end of data'));
      await this.wait();
    }
  }

  /** iterate is the body as an async iterable, usable once and only while the entry is current. */
  async *iterate(): AsyncGenerator<Uint8Array, void, undefined> {
    if (this.detached) throw new MirrorError('INTERNAL', `${this.describe()}: body read after moving on to the next entry`);
    if (this.claimed) throw new MirrorError('INTERNAL', `${this.describe()}: body read twice`);
    this.claimed = true;
    for (;;) {
      if (this.detached) throw new MirrorError('INTERNAL', `${this.describe()}: body read after moving on to the next entry`);
      const chunk = await this.next();
      if (chunk === null) return;
      yield chunk;
    }
  }

  /** drain discards the rest of the body. */
  async drain(): Promise<void> {
    this.discarding = true;
    this.queue.length = 0;
    for (;;) {
      if (this.error !== undefined) throw this.mapError(this.error);
      if (this.ended) return;
      if (this.closed) throw this.mapError(new Error('Unexpected end of data'));
      await this.wait();
    }
  }
}

function toBuffer(chunk: Uint8Array): Buffer {
  return Buffer.isBuffer(chunk) ? chunk : Buffer.from(chunk.buffer, chunk.byteOffset, chunk.byteLength);
}

/** waitWritable resolves when a writable wants more data, or has closed. */
function waitWritable(w: TarExtract): Promise<void> {
  return new Promise<void>((resolve) => {
    const done = (): void => {
      w.off('drain', done);
      w.off('close', done);
      resolve();
    };
    w.on('drain', done);
    w.on('close', done);
  });
}

const DEVICE_TYPES: Record<string, string> = {
  'character-device': 'a character device',
  'block-device': 'a block device',
  fifo: 'a FIFO',
};

/**
 * readTar reads a tar stream entry by entry: regular files (and links, when asked) with their bodies; directories are
 * skipped; PAX and GNU long names are applied by tar-stream. Read or drain each body before asking for the next
 * entry (asking drains it). Errors name the file and the entry: UNSAFE_ENTRY for absolute names, `..`, links (by
 * default) and devices; CORRUPT_ARCHIVE for garbage or a truncated archive; errors of the source pass through.
 */
export async function* readTar(source: AsyncIterable<Uint8Array>, options: ReadTarOptions): AsyncGenerator<TarEntry, void, undefined> {
  const { file, signal } = options;
  const links = options.links ?? 'reject';
  const requireEndMarker = options.requireEndMarker ?? true;
  const extract = createExtract({ allowUnknownFormat: true });
  let bytesIn = 0;
  let position = 0;
  let lastName = '';
  let dataEnd = 0;

  const mapError = (e: unknown): MirrorError => {
    if (e instanceof MirrorError) return e;
    if (signal?.aborted) return abortError(signal);
    const text = e instanceof Error ? e.message : String(e);
    if (/unexpected end of data/i.test(text)) {
      const where = lastName === '' ? 'before the first entry' : `in entry ${position} "${lastName}"`;
      return new MirrorError('CORRUPT_ARCHIVE', `${file} is truncated: the tar archive ends ${where}`, { file, phase: 'read', cause: e });
    }
    if (/invalid tar header|unknown format|header exceeds/i.test(text)) {
      const after = lastName === '' ? 'at the start' : `after entry ${position} "${lastName}"`;
      return new MirrorError('CORRUPT_ARCHIVE', `${file} is not a valid tar archive: bad tar header ${after}`, { file, phase: 'read', cause: e });
    }
    return new MirrorError('CORRUPT_ARCHIVE', `${file} is not a valid tar archive: ${text.split('\n')[0] ?? text}`, { file, phase: 'read', cause: e });
  };

  const onAbort = (): void => {
    extract.destroy(abortError(signal));
  };
  if (signal?.aborted) throw abortError(signal);
  signal?.addEventListener('abort', onAbort, { once: true });

  // The pump feeds the extractor with backpressure; it never rejects (its errors destroy the extractor instead).
  const pump = (async (): Promise<void> => {
    try {
      for await (const chunk of source) {
        if (extract.destroyed) return;
        bytesIn += chunk.byteLength;
        if (!extract.write(toBuffer(chunk))) await waitWritable(extract);
        if (extract.destroyed) return;
      }
      extract.end();
    } catch (e) {
      extract.destroy(e instanceof Error ? e : new Error(String(e)));
    }
  })();

  const iterator = extract[Symbol.asyncIterator]();
  let current: EntryBody | undefined;
  try {
    for (;;) {
      if (current !== undefined) {
        await current.drain();
        current.detached = true;
        current = undefined;
      }
      let r: IteratorResult<EntryStream>;
      try {
        r = await iterator.next();
      } catch (e) {
        throw mapError(e);
      }
      if (r.done) break;
      const stream = r.value;
      const header = stream.header;
      position++;
      const rawName = header.name;
      lastName = rawName;
      const size = header.size ?? 0;
      const offset = (header as { byteOffset?: number }).byteOffset ?? 0;
      dataEnd = offset + Math.ceil(size / 512) * 512;
      const here = `entry ${position}`;
      const unsafe = (why: string): MirrorError =>
        new MirrorError('UNSAFE_ENTRY', `unsafe entry "${rawName}" in ${file} (${here}): ${why}`, { file, phase: 'read' });
      const body = new EntryBody(stream, () => `entry "${rawName}" of ${file}`, mapError);
      current = body;

      const checked = normalizeEntryName(rawName);
      if (!checked.ok) throw unsafe(checked.reason);
      const type = header.type ?? null;
      if (type === 'directory') continue;
      const device = type === null ? undefined : DEVICE_TYPES[type];
      if (device !== undefined) throw unsafe(`it is ${device}`);
      if (type === null) {
        throw new MirrorError('UNSUPPORTED', `entry "${rawName}" in ${file} (${here}) has an unsupported tar entry type`, { file, phase: 'read' });
      }
      if (checked.name === '') throw new MirrorError('CORRUPT_ARCHIVE', `${file} has an entry with an empty name (${here})`, { file, phase: 'read' });
      let entryType: TarEntryType = 'file';
      let linkTarget: string | undefined;
      if (type === 'symlink' || type === 'link') {
        const linkname = header.linkname ?? '';
        const kind = type === 'symlink' ? 'a symbolic link' : 'a hard link';
        if (links === 'reject') throw unsafe(`it is ${kind} to "${linkname}"`);
        if (linkname.startsWith('/')) throw unsafe(`it is ${kind} to an absolute path "${linkname}"`);
        // posix.join normalizes: a target that climbs above the root keeps a leading `..`, which the check refuses.
        const joined = posix.join(type === 'symlink' ? posix.dirname(checked.name) : '.', linkname);
        const target = normalizeEntryName(joined);
        if (!target.ok || target.name === '') throw unsafe(`it is ${kind} to "${linkname}", outside the archive`);
        entryType = type;
        linkTarget = target.name;
      }
      const entry: TarEntry = {
        name: checked.name,
        size: entryType === 'file' ? size : 0,
        type: entryType,
        linkTarget,
        mode: header.mode,
        mtime: header.mtime,
        position,
        offset,
        body: { [Symbol.asyncIterator]: () => body.iterate() },
        drain: () => body.drain(),
        bytes: async (maxBytes = DEFAULT_MAX_ENTRY_BYTES): Promise<Buffer> => {
          if (size > maxBytes) {
            throw new MirrorError('BAD_INPUT', `entry "${checked.name}" of ${file} is ${size} bytes, more than the ${maxBytes} bytes read into memory`, {
              file,
            });
          }
          const parts: Buffer[] = [];
          for await (const chunk of body.iterate()) parts.push(toBuffer(chunk));
          return Buffer.concat(parts);
        },
      };
      yield entry;
    }
    if (position === 0 && bytesIn === 0) {
      throw new MirrorError('CORRUPT_ARCHIVE', `${file} is empty: no tar archive in it`, { file, phase: 'read' });
    }
    if (requireEndMarker && bytesIn < dataEnd + 512) {
      const where = position === 0 ? 'before the first entry' : `after entry ${position} "${lastName}"`;
      throw new MirrorError('CORRUPT_ARCHIVE', `${file} is truncated: the tar archive ends ${where} without an end-of-archive marker`, {
        file,
        phase: 'read',
      });
    }
  } finally {
    signal?.removeEventListener('abort', onAbort);
    if (current !== undefined) current.detached = true;
    if (!extract.destroyed) extract.destroy();
    // Do not wait for the pump: it may be waiting on a stalled source that the caller is about to close.
    void pump;
  }
}
