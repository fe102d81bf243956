/**
 * Small blobs a bundle reader keeps while it cannot tell yet which images need them (they came before the metadata),
 * kept compactly: their bytes side by side in shared 1 MiB arenas (each prefixed with its length), and one number per
 * blob saying where. 100,000 held blobs of a few bytes cost a few MiB, not an object, a buffer and a name each.
 */

/** ARENA_SIZE is the size of one arena; a blob must fit in one (see {@link HeldBlobs.MAX_BLOB}). */
const ARENA_SIZE = 1024 * 1024;
/** RECORD_OVERHEAD is what a held blob costs beyond its bytes: its digest (the key), its map entry, its length prefix. */
const RECORD_OVERHEAD = 160;

/** HeldBlobs is an insertion-ordered set of small blobs by digest, within a memory budget the caller enforces. */
export class HeldBlobs {
  /** The largest blob it takes. */
  static readonly MAX_BLOB = 64 * 1024;
  /** Where each blob is: arena number * ARENA_SIZE + offset of its length prefix. */
  private readonly where = new Map<string, number>();
  /** Arenas by number; an arena whose blobs are all gone is dropped. */
  private readonly arenas = new Map<number, { buf: Buffer; live: number }>();
  private current = -1;
  private used = ARENA_SIZE;
  /** Bytes counted for the blobs held (their bytes and {@link RECORD_OVERHEAD} each). */
  bytes = 0;

  /** size is the number of blobs held. */
  get size(): number {
    return this.where.size;
  }

  /** add keeps a copy of `data` under `digest` (replacing an earlier one). */
  add(digest: string, data: Uint8Array): void {
    if (data.byteLength > HeldBlobs.MAX_BLOB) throw new RangeError(`a held blob is at most ${HeldBlobs.MAX_BLOB} bytes`);
    this.delete(digest);
    if (this.used + 4 + data.byteLength > ARENA_SIZE) {
      this.current++;
      this.arenas.set(this.current, { buf: Buffer.allocUnsafe(ARENA_SIZE), live: 0 });
      this.used = 0;
    }
    const arena = this.arenas.get(this.current)!;
    arena.buf.writeUInt32LE(data.byteLength, this.used);
    arena.buf.set(data, this.used + 4);
    arena.live++;
    this.where.set(digest, this.current * ARENA_SIZE + this.used);
    this.used += 4 + data.byteLength;
    this.bytes += data.byteLength + RECORD_OVERHEAD;
  }

  /** takeOldest removes the oldest blob and gives it (a copy), or undefined. */
  takeOldest(): { digest: string; data: Uint8Array } | undefined {
    const first = this.where.keys().next();
    if (first.done) return undefined;
    const data = Buffer.from(this.read(first.value)!);
    this.delete(first.value);
    return { digest: first.value, data };
  }

  /** takeAll removes every blob and gives them oldest first, each as its own copy. */
  takeAll(): Array<{ digest: string; data: Uint8Array }> {
    const out: Array<{ digest: string; data: Uint8Array }> = [];
    for (const digest of this.where.keys()) out.push({ digest, data: Buffer.from(this.read(digest)!) });
    this.where.clear();
    this.arenas.clear();
    this.current = -1;
    this.used = ARENA_SIZE;
    this.bytes = 0;
    return out;
  }

  private read(digest: string): Uint8Array | undefined {
    const at = this.where.get(digest);
    if (at === undefined) return undefined;
    const arena = this.arenas.get(Math.floor(at / ARENA_SIZE))!;
    const offset = at % ARENA_SIZE;
    const n = arena.buf.readUInt32LE(offset);
    return arena.buf.subarray(offset + 4, offset + 4 + n);
  }

  private delete(digest: string): void {
    const at = this.where.get(digest);
    if (at === undefined) return;
    const id = Math.floor(at / ARENA_SIZE);
    const arena = this.arenas.get(id)!;
    this.bytes -= arena.buf.readUInt32LE(at % ARENA_SIZE) + RECORD_OVERHEAD;
    this.where.delete(digest);
    if (--arena.live === 0 && id !== this.current) this.arenas.delete(id);
  }
}
