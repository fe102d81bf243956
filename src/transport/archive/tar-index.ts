/**
 * Random access into a plain (uncompressed) tar file: one scan of the headers indexes every entry (name, offset,
 * size, links), seeking past the contents; entries are then read whole (small ones: manifests, configs) or opened as
 * a stream at an offset (blobs). Headers are checked (checksum, sizes inside the file, the end-of-archive marker), so
 * a truncated or corrupt archive is CORRUPT_ARCHIVE naming the file before anything is copied. ustar, GNU long names
 * (`L`/`K`) and pax headers (`path`, `linkpath`, `size`) are read; names are normalized and checked as the stream
 * reader checks them (nothing absolute, no `..`).
 */
import { type FileHandle, open } from 'node:fs/promises';
import { posix } from 'node:path';
import { addAbortSignal } from 'node:stream';
import { fileError, normalizeEntryName, sparseEntryName } from '../../archive/index.js';
import { MirrorError } from '../../errors/index.js';

/** MAX_TAR_ENTRIES bounds the entries indexed (a docker save of many images has a few thousand). */
export const MAX_TAR_ENTRIES = 1_000_000;
/** MAX_EXTENDED_HEADER_BYTES bounds a pax or GNU long-name header's data. */
const MAX_EXTENDED_HEADER_BYTES = 1024 * 1024;
/** MAX_LINK_HOPS bounds link chains followed. */
const MAX_LINK_HOPS = 16;
const BLOCK = 512;

/** IndexedEntry is one entry of an indexed tar. */
export interface IndexedEntry {
  /** Normalized name. */
  name: string;
  /** Byte offset of its data in the file. */
  offset: number;
  /** Data size. */
  size: number;
  type: 'file' | 'dir' | 'symlink' | 'link' | 'other';
  /** For links: the archive path it points at (a symlink's target resolved against its directory). */
  linkTarget?: string | undefined;
}

/** TarIndexOptions tune {@link openTarIndex}. */
export interface TarIndexOptions {
  /** The name used in messages (the archive as the user named it). Default: the path. */
  display?: string | undefined;
  signal?: AbortSignal | undefined;
}

/** parseOctal reads a numeric header field: octal text, or GNU's base-256 when the high bit is set. */
function parseNumber(buf: Buffer, start: number, length: number): number | undefined {
  const field = buf.subarray(start, start + length);
  if ((field[0]! & 0x80) !== 0) {
    let v = field[0]! & 0x7f;
    for (let i = 1; i < field.length; i++) v = v * 256 + field[i]!;
    return Number.isSafeInteger(v) ? v : undefined;
  }
  const text = field.toString('latin1').replace(/\0.*$/s, '').trim();
  if (text === '') return 0;
  if (!/^[0-7]+$/.test(text)) return undefined;
  return parseInt(text, 8);
}

/** cString reads a NUL-terminated header string. */
function cString(buf: Buffer, start: number, length: number): string {
  const field = buf.subarray(start, start + length);
  const end = field.indexOf(0);
  return field.subarray(0, end < 0 ? field.length : end).toString('utf8');
}

/** checksumOk checks a header's checksum (unsigned, or signed as some old tars computed it). */
function checksumOk(h: Buffer): boolean {
  const stored = parseNumber(h, 148, 8);
  if (stored === undefined) return false;
  let unsigned = 0;
  let signed = 0;
  for (let i = 0; i < BLOCK; i++) {
    const b = i >= 148 && i < 156 ? 0x20 : h[i]!;
    unsigned += b;
    signed += b > 127 ? b - 256 : b;
  }
  return stored === unsigned || stored === signed;
}

/** parsePax reads pax records (`<len> key=value\n`). */
function parsePax(data: Buffer): Map<string, string> {
  const out = new Map<string, string>();
  let i = 0;
  while (i < data.length) {
    const space = data.indexOf(0x20, i);
    if (space < 0) break;
    const len = Number(data.subarray(i, space).toString('latin1'));
    if (!Number.isSafeInteger(len) || len <= 0 || i + len > data.length) break;
    const record = data.subarray(space + 1, i + len - 1).toString('utf8');
    const eq = record.indexOf('=');
    if (eq > 0) out.set(record.slice(0, eq), record.slice(eq + 1));
    i += len;
  }
  return out;
}

/** TarIndex is an indexed tar file, open for reading. */
export class TarIndex {
  private constructor(
    /** The file read. */
    readonly path: string,
    /** The name for messages. */
    readonly display: string,
    private readonly handle: FileHandle,
    /** Entries by normalized name (a later entry of the same name replaces an earlier one, as extraction would). */
    readonly entries: ReadonlyMap<string, IndexedEntry>,
    /** The file's size. */
    readonly fileSize: number,
  ) {}

  /** open indexes `path` (one pass over its headers). The caller closes it. */
  static async open(path: string, options: TarIndexOptions = {}): Promise<TarIndex> {
    const display = options.display ?? path;
    let handle: FileHandle;
    try {
      handle = await open(path, 'r');
    } catch (e) {
      throw fileError(display, e);
    }
    try {
      const st = await handle.stat();
      if (!st.isFile()) throw new MirrorError('BAD_INPUT', `${display} is not a regular file`, { file: display });
      const entries = await scan(handle, st.size, display, options.signal);
      return new TarIndex(path, display, handle, entries, st.size);
    } catch (e) {
      await handle.close().catch(() => {});
      throw e;
    }
  }

  /** find gives the regular file an archive path names, following links; undefined when there is none. */
  find(name: string): IndexedEntry | undefined {
    const check = normalizeEntryName(name);
    if (!check.ok) return undefined;
    let entry = this.entries.get(check.name);
    for (let hops = 0; entry !== undefined && (entry.type === 'symlink' || entry.type === 'link'); hops++) {
      if (hops >= MAX_LINK_HOPS || entry.linkTarget === undefined) return undefined;
      entry = this.entries.get(entry.linkTarget);
    }
    return entry?.type === 'file' ? entry : undefined;
  }

  /** read reads a whole entry into memory, refusing one larger than `max`. */
  async read(entry: IndexedEntry, max: number, what: string): Promise<Buffer> {
    if (entry.size > max) {
      throw new MirrorError('BAD_INPUT', `${what} ${entry.name} in ${this.display} is larger than the ${Math.round(max / 1024 / 1024)} MiB limit`, { file: this.display });
    }
    const buf = Buffer.alloc(entry.size);
    let done = 0;
    while (done < entry.size) {
      const { bytesRead } = await this.handle.read(buf, done, entry.size - done, entry.offset + done);
      if (bytesRead === 0) throw new MirrorError('CORRUPT_ARCHIVE', `${this.display} ends inside ${entry.name}`, { file: this.display });
      done += bytesRead;
    }
    return buf;
  }

  /** head reads up to `n` first bytes of an entry (to sniff its compression). */
  async head(entry: IndexedEntry, n: number): Promise<Buffer> {
    const buf = Buffer.alloc(Math.min(n, entry.size));
    const { bytesRead } = await this.handle.read(buf, 0, buf.length, entry.offset);
    return buf.subarray(0, bytesRead);
  }

  /** stream opens an entry's data from `start` (positional reads: any number may be open at once). */
  stream(entry: IndexedEntry, options: { start?: number | undefined; signal?: AbortSignal | undefined } = {}): AsyncIterable<Uint8Array> {
    const start = Math.min(options.start ?? 0, entry.size);
    if (start >= entry.size) return (async function* () {})();
    const s = this.handle.createReadStream({ start: entry.offset + start, end: entry.offset + entry.size - 1, autoClose: false, highWaterMark: 256 * 1024 });
    if (options.signal !== undefined) addAbortSignal(options.signal, s);
    return s;
  }

  /** close closes the file. */
  async close(): Promise<void> {
    await this.handle.close().catch(() => {});
  }
}

/** scan reads every header of the tar once, seeking past contents. */
async function scan(handle: FileHandle, fileSize: number, display: string, signal: AbortSignal | undefined): Promise<Map<string, IndexedEntry>> {
  const corrupt = (why: string): MirrorError =>
    new MirrorError('CORRUPT_ARCHIVE', `${display} is not a readable tar archive: ${why}`, { file: display, hint: 'the file may be truncated or damaged; fetch it again' });
  const entries = new Map<string, IndexedEntry>();
  const header = Buffer.alloc(BLOCK);
  let pos = 0;
  let count = 0;
  let longName: string | undefined;
  let longLink: string | undefined;
  let pax: Map<string, string> | undefined;
  const readData = async (at: number, size: number): Promise<Buffer> => {
    if (size > MAX_EXTENDED_HEADER_BYTES) throw corrupt(`an extended header of ${size} bytes at offset ${at}`);
    const buf = Buffer.alloc(size);
    const { bytesRead } = await handle.read(buf, 0, size, at);
    if (bytesRead < size) throw corrupt(`it ends inside an extended header at offset ${at}`);
    return buf;
  };
  for (;;) {
    if (signal?.aborted) throw signal.reason instanceof Error ? signal.reason : new MirrorError('INTERRUPTED', 'interrupted');
    if (pos + BLOCK > fileSize) {
      if (count === 0) throw corrupt(fileSize === 0 ? 'it is empty' : 'it is shorter than one tar header');
      throw corrupt(`it ends after ${count} entries without the end-of-archive marker (truncated?)`);
    }
    const { bytesRead } = await handle.read(header, 0, BLOCK, pos);
    if (bytesRead < BLOCK) throw corrupt(`it ends inside a header at offset ${pos}`);
    if (header.every((b) => b === 0)) {
      if (count === 0) throw corrupt('it holds no entry');
      return entries;
    }
    if (!checksumOk(header)) throw corrupt(`the header at offset ${pos} has a bad checksum`);
    if (++count > MAX_TAR_ENTRIES) throw corrupt(`more than ${MAX_TAR_ENTRIES} entries`);
    const typeflag = String.fromCharCode(header[156]!);
    let size = parseNumber(header, 124, 12);
    if (size === undefined) throw corrupt(`the header at offset ${pos} has an invalid size`);
    const paxSize = pax?.get('size');
    if (paxSize !== undefined && /^\d+$/.test(paxSize)) size = Number(paxSize);
    const dataAt = pos + BLOCK;
    if (typeflag !== '1' && typeflag !== '2' && typeflag !== '5' && dataAt + size > fileSize) {
      throw corrupt(`entry ${JSON.stringify(cString(header, 0, 100).slice(0, 100))} needs ${size} bytes, the file ends ${fileSize - dataAt} bytes after its header (truncated?)`);
    }
    const next = dataAt + Math.ceil(size / BLOCK) * BLOCK;
    switch (typeflag) {
      case 'L':
        longName = (await readData(dataAt, size)).toString('utf8').replace(/\0+$/, '');
        pos = next;
        continue;
      case 'K':
        longLink = (await readData(dataAt, size)).toString('utf8').replace(/\0+$/, '');
        pos = next;
        continue;
      case 'x':
        pax = parsePax(await readData(dataAt, size));
        pos = next;
        continue;
      case 'g':
        pos = next;
        continue;
    }
    const magic = header.subarray(257, 262).toString('latin1');
    const prefix = magic === 'ustar' ? cString(header, 345, 155) : '';
    const rawName = pax?.get('path') ?? longName ?? (prefix !== '' ? `${prefix}/${cString(header, 0, 100)}` : cString(header, 0, 100));
    const rawLink = pax?.get('linkpath') ?? longLink ?? cString(header, 157, 100);
    const sparseName = sparseEntryName(typeflag, pax?.keys() ?? [], pax?.get('GNU.sparse.name'), rawName);
    if (sparseName !== undefined) {
      throw new MirrorError('UNSUPPORTED', `${display}: entry ${JSON.stringify(sparseName.slice(0, 100))} is a sparse file (tar --sparse), which is not read here; create the archive without --sparse`, {
        file: display,
      });
    }
    longName = longLink = pax = undefined;
    pos = typeflag === '1' || typeflag === '2' || typeflag === '5' ? dataAt + Math.ceil(size / BLOCK) * BLOCK : next;
    const checked = normalizeEntryName(rawName);
    if (!checked.ok) throw new MirrorError('UNSAFE_ENTRY', `${display}: entry ${JSON.stringify(rawName.slice(0, 100))} is refused: ${checked.reason}`, { file: display });
    const name = checked.name;
    if (name === '') continue;
    const type: IndexedEntry['type'] =
      typeflag === '0' || typeflag === '\0' || typeflag === '7' ? 'file' : typeflag === '5' ? 'dir' : typeflag === '2' ? 'symlink' : typeflag === '1' ? 'link' : 'other';
    let linkTarget: string | undefined;
    if (type === 'symlink' || type === 'link') {
      const joined = type === 'symlink' && !rawLink.startsWith('/') ? posix.join(posix.dirname(name), rawLink) : rawLink;
      const t = normalizeEntryName(joined.replace(/^\/+/, ''));
      // A link that leaves the archive is kept unresolvable (find() then says there is no such file).
      linkTarget = t.ok && !joined.startsWith('..') ? t.name : undefined;
    }
    entries.set(name, { name, offset: dataAt, size: type === 'file' ? size : 0, type, linkTarget });
  }
}
