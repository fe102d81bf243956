/**
 * A tar archive written into a file entry after entry, with positional writes: the 512-byte header of an entry
 * whose size or name is known only once its content has gone by (a layer decompressed on the way, named after its
 * diff_id) is written last, into the place reserved in front of the content; an entry that fails halfway is rolled
 * back, so the archive never holds a half-written entry. Nothing is buffered beyond one write batch, nothing is
 * staged in a temporary directory.
 *
 * Written by hand because tar-stream's `pack()` needs every size before the content and cannot seek back, and its
 * header encoder is not exported: POSIX ustar headers (what Go's archive/tar, docker and skopeo read), a PAX
 * extended header for a path that ustar cannot hold, sizes of 8 GiB and more in base-256 (read by GNU tar, Go and
 * tar-stream), mtime 0, uid/gid 0, as skopeo writes its archives.
 */
import { type FileHandle, open } from 'node:fs/promises';
import { MirrorError } from '../../errors/index.js';

/** BLOCK is the tar block size. */
const BLOCK = 512;
/** WRITE_BATCH is how many content bytes are gathered before one positional write. */
const WRITE_BATCH = 1024 * 1024;
/** MAX_OCTAL_SIZE is the largest size the 11 octal digits of a ustar size field hold (8 GiB - 1). */
const MAX_OCTAL_SIZE = 0o77777777777;

/** EntryType is the kind of a tar entry written here. */
export type EntryType = 'file' | 'directory' | 'symlink' | 'pax';

const TYPEFLAG: Record<EntryType, string> = { file: '0', symlink: '2', directory: '5', pax: 'x' };

/** HeaderFields are the fields of one header. */
export interface HeaderFields {
  name: string;
  type: EntryType;
  size: number;
  mode?: number | undefined;
  linkname?: string | undefined;
}

/** splitUstarName splits a path into ustar's prefix (155 bytes) and name (100 bytes), or undefined when it cannot. */
function splitUstarName(path: string): { prefix: string; name: string } | undefined {
  if (Buffer.byteLength(path) <= 100) return { prefix: '', name: path };
  if (Buffer.byteLength(path) !== path.length) return undefined; // multi-byte: leave it to PAX
  for (let i = path.indexOf('/'); i >= 0; i = path.indexOf('/', i + 1)) {
    const prefix = path.slice(0, i);
    const name = path.slice(i + 1);
    if (prefix.length <= 155 && name.length > 0 && name.length <= 100) return { prefix, name };
  }
  return undefined;
}

/** fitsUstar tells whether a path can be written in a ustar header without a PAX header. */
export function fitsUstar(path: string): boolean {
  return splitUstarName(path) !== undefined;
}

function writeString(block: Buffer, offset: number, length: number, value: string): void {
  block.write(value, offset, length, 'utf8');
}

function writeOctal(block: Buffer, offset: number, length: number, value: number): void {
  // length - 1 digits, zero-padded, then NUL
  block.write(`${value.toString(8).padStart(length - 1, '0')}\0`, offset, length, 'ascii');
}

/** writeSize writes the size field: octal, or base-256 (first byte 0x80, big-endian) above 8 GiB - 1. */
function writeSize(block: Buffer, size: number): void {
  if (size <= MAX_OCTAL_SIZE) {
    writeOctal(block, 124, 12, size);
    return;
  }
  block.fill(0, 124, 136);
  block[124] = 0x80;
  let v = size;
  for (let i = 135; i > 124 && v > 0; i--) {
    block[i] = v % 256;
    v = Math.floor(v / 256);
  }
}

/** encodeHeader gives a ustar header block. `name` must fit ustar (see {@link fitsUstar}) unless a PAX header precedes it. */
export function encodeHeader(h: HeaderFields): Buffer {
  const block = Buffer.alloc(BLOCK);
  const split = splitUstarName(h.name) ?? { prefix: '', name: h.name.slice(-100).replace(/^[^/]*\//, '') };
  writeString(block, 0, 100, split.name);
  writeOctal(block, 100, 8, h.mode ?? (h.type === 'directory' ? 0o755 : h.type === 'symlink' ? 0o777 : 0o644));
  writeOctal(block, 108, 8, 0); // uid
  writeOctal(block, 116, 8, 0); // gid
  writeSize(block, h.size);
  writeOctal(block, 136, 12, 0); // mtime
  block.fill(0x20, 148, 156); // checksum placeholder
  block.write(TYPEFLAG[h.type], 156, 1, 'ascii');
  if (h.linkname !== undefined) writeString(block, 157, 100, h.linkname);
  block.write('ustar\0', 257, 6, 'ascii');
  block.write('00', 263, 2, 'ascii');
  writeOctal(block, 329, 8, 0); // devmajor
  writeOctal(block, 337, 8, 0); // devminor
  writeString(block, 345, 155, split.prefix);
  let sum = 0;
  for (const b of block) sum += b;
  block.write(`${sum.toString(8).padStart(6, '0')}\0 `, 148, 8, 'ascii');
  return block;
}

/** paxRecord encodes one PAX record: `<length> <key>=<value>\n`, where the length counts itself. */
function paxRecord(key: string, value: string): Buffer {
  const body = ` ${key}=${value}\n`;
  const bodyLength = Buffer.byteLength(body);
  let length = bodyLength + String(bodyLength).length;
  if (String(length).length !== String(length - bodyLength).length) length = bodyLength + String(length).length;
  return Buffer.from(`${length}${body}`);
}

function padding(size: number): number {
  return (BLOCK - (size % BLOCK)) % BLOCK;
}

/** EntryEnd is what {@link TarEntryWriter.end} may still set: the name when it was not known at the start. */
export interface EntryEnd {
  /** The entry's path; required when {@link TarFileWriter.begin} was given none. Must fit ustar. */
  name?: string | undefined;
  /** File mode. Default 0644. */
  mode?: number | undefined;
}

/** TarEntryWriter writes one entry's content; its header is written by {@link TarEntryWriter.end}. */
export interface TarEntryWriter {
  /** write appends content. */
  write(chunk: Uint8Array): Promise<void>;
  /** end writes the header in front of the content (now that its size is known) and the padding after it. */
  end(options?: EntryEnd): Promise<void>;
  /** rollback drops the entry: the archive ends where it ended before {@link TarFileWriter.begin}. */
  rollback(): void;
  /** Content bytes written so far. */
  readonly size: number;
}

/** TarFileWriter writes a tar archive into a new file, one entry at a time. */
export class TarFileWriter {
  private position = 0;
  private open: TarEntryWriter | undefined;
  private closed = false;

  private constructor(
    private readonly handle: FileHandle,
    /** The file written. */
    readonly path: string,
  ) {}

  /** create opens a new file (it must not exist) for writing a tar. */
  static async create(path: string): Promise<TarFileWriter> {
    const handle = await open(path, 'wx', 0o644);
    return new TarFileWriter(handle, path);
  }

  /** Bytes of complete entries written so far. */
  get bytes(): number {
    return this.position;
  }

  private async writeAt(data: Uint8Array, position: number): Promise<void> {
    let done = 0;
    while (done < data.byteLength) {
      const { bytesWritten } = await this.handle.write(data, done, data.byteLength - done, position + done);
      if (bytesWritten <= 0) throw new MirrorError('INTERNAL', `cannot write ${this.path}: no progress`, { file: this.path });
      done += bytesWritten;
    }
  }

  private check(): void {
    if (this.closed) throw new MirrorError('INTERNAL', `${this.path} is already closed`, { file: this.path });
    if (this.open !== undefined) throw new MirrorError('INTERNAL', `${this.path}: an entry is still being written`, { file: this.path });
  }

  private async append(data: Uint8Array): Promise<void> {
    await this.writeAt(data, this.position);
    this.position += data.byteLength;
  }

  /** paxFor gives the PAX extended header (and its records) that carries a path ustar cannot hold, if needed. */
  private paxFor(name: string): Buffer | undefined {
    if (fitsUstar(name)) return undefined;
    const records = paxRecord('path', name);
    const base = name.split('/').pop() ?? 'entry';
    const header = encodeHeader({ name: `PaxHeaders/${base.slice(0, 80)}`, type: 'pax', size: records.byteLength });
    return Buffer.concat([header, records, Buffer.alloc(padding(records.byteLength))]);
  }

  /** addFile writes a whole file held in memory. */
  async addFile(name: string, data: Uint8Array, options: { mode?: number | undefined } = {}): Promise<void> {
    this.check();
    const pax = this.paxFor(name);
    const header = encodeHeader({ name, type: 'file', size: data.byteLength, mode: options.mode });
    await this.append(Buffer.concat([...(pax ? [pax] : []), header, data, Buffer.alloc(padding(data.byteLength))]));
  }

  /** addDirectory writes a directory entry (`name` without a trailing slash). */
  async addDirectory(name: string): Promise<void> {
    this.check();
    const full = `${name.replace(/\/+$/, '')}/`;
    const pax = this.paxFor(full);
    await this.append(Buffer.concat([...(pax ? [pax] : []), encodeHeader({ name: full, type: 'directory', size: 0 })]));
  }

  /** addSymlink writes a symbolic link (its target must fit ustar's 100 bytes). */
  async addSymlink(name: string, target: string): Promise<void> {
    this.check();
    if (Buffer.byteLength(target) > 100) throw new MirrorError('INTERNAL', `symlink target too long for a tar header: ${target.slice(0, 40)}`);
    const pax = this.paxFor(name);
    await this.append(Buffer.concat([...(pax ? [pax] : []), encodeHeader({ name, type: 'symlink', size: 0, linkname: target })]));
  }

  /**
   * begin starts an entry whose content is written piece by piece. With `name`, a path too long for ustar gets its
   * PAX header now; without, the name is given to `end` and must fit ustar.
   */
  async begin(options: { name?: string | undefined } = {}): Promise<TarEntryWriter> {
    this.check();
    const start = this.position;
    const pax = options.name !== undefined ? this.paxFor(options.name) : undefined;
    const headerAt = start + (pax?.byteLength ?? 0);
    const contentAt = headerAt + BLOCK;
    if (pax) await this.writeAt(pax, start);
    let size = 0;
    let batch: Uint8Array[] = [];
    let batched = 0;
    let settled = false;
    const flush = async (): Promise<void> => {
      if (batched === 0) return;
      const data = batch.length === 1 ? batch[0]! : Buffer.concat(batch, batched);
      const at = contentAt + size - batched;
      batch = [];
      batched = 0;
      await this.writeAt(data, at);
    };
    const entry: TarEntryWriter = {
      get size() {
        return size;
      },
      write: async (chunk) => {
        if (settled) throw new MirrorError('INTERNAL', `${this.path}: write after the entry ended`);
        if (chunk.byteLength === 0) return;
        batch.push(chunk);
        batched += chunk.byteLength;
        size += chunk.byteLength;
        if (batched >= WRITE_BATCH) await flush();
      },
      end: async (end = {}) => {
        if (settled) throw new MirrorError('INTERNAL', `${this.path}: entry ended twice`);
        const name = end.name ?? options.name;
        if (name === undefined) throw new MirrorError('INTERNAL', `${this.path}: an entry needs a name`);
        if (pax === undefined && !fitsUstar(name)) throw new MirrorError('INTERNAL', `${this.path}: entry name too long for a late header: ${name.slice(0, 40)}`);
        await flush();
        const pad = padding(size);
        if (pad > 0) await this.writeAt(Buffer.alloc(pad), contentAt + size);
        await this.writeAt(encodeHeader({ name, type: 'file', size, mode: end.mode }), headerAt);
        settled = true;
        this.position = contentAt + size + pad;
        this.open = undefined;
      },
      rollback: () => {
        if (settled) return;
        settled = true;
        batch = [];
        this.position = start;
        this.open = undefined;
      },
    };
    this.open = entry;
    return entry;
  }

  /** finish writes the end-of-archive marker (two zero blocks), cuts anything a rolled-back entry left after it, syncs and closes. */
  async finish(): Promise<void> {
    this.check();
    await this.append(Buffer.alloc(2 * BLOCK));
    await this.handle.truncate(this.position);
    await this.handle.sync();
    this.closed = true;
    await this.handle.close();
  }

  /** abandon closes the file without finishing it (the caller removes it). Never throws. */
  async abandon(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    this.open = undefined;
    await this.handle.close().catch(() => {});
  }
}
