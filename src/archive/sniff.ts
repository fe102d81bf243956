/**
 * Format sniffing by content, never by file name: compression magic bytes and tar headers.
 */

/** Compression is a compression format recognized by its magic bytes; `none` means no known magic. */
export type Compression = 'xz' | 'gzip' | 'zstd' | 'bzip2' | 'none';

/** SNIFF_BYTES is how many leading bytes {@link sniffCompression} and {@link looksLikeTar} want to see. */
export const SNIFF_BYTES = 512;

const XZ_MAGIC = [0xfd, 0x37, 0x7a, 0x58, 0x5a, 0x00];
const GZIP_MAGIC = [0x1f, 0x8b];
const ZSTD_MAGIC = [0x28, 0xb5, 0x2f, 0xfd];

function startsWith(head: Uint8Array, magic: readonly number[]): boolean {
  if (head.byteLength < magic.length) return false;
  return magic.every((b, i) => head[i] === b);
}

/**
 * sniffCompression tells the compression of a stream from its first bytes: xz (`FD 37 7A 58 5A 00`),
 * gzip (`1F 8B`), zstd (`28 B5 2F FD`, or a skippable frame `5? 2A 4D 18` as pzstd writes), bzip2 (`BZh1`..`BZh9`);
 * anything else is `none`.
 */
export function sniffCompression(head: Uint8Array): Compression {
  if (startsWith(head, XZ_MAGIC)) return 'xz';
  if (startsWith(head, GZIP_MAGIC)) return 'gzip';
  if (startsWith(head, ZSTD_MAGIC)) return 'zstd';
  const b0 = head[0];
  if (head.byteLength >= 4 && b0 !== undefined && (b0 & 0xf0) === 0x50 && head[1] === 0x2a && head[2] === 0x4d && head[3] === 0x18) {
    return 'zstd';
  }
  const level = head[3];
  if (head.byteLength >= 4 && head[0] === 0x42 && head[1] === 0x5a && head[2] === 0x68 && level !== undefined && level >= 0x31 && level <= 0x39) {
    return 'bzip2';
  }
  return 'none';
}

/** parseOctal reads a NUL- or space-terminated octal field of a tar header; undefined when it is not octal. */
function parseOctal(block: Uint8Array, offset: number, length: number): number | undefined {
  let i = offset;
  const end = offset + length;
  while (i < end && (block[i] === 0x20 || block[i] === 0x00)) i++;
  if (i === end) return undefined;
  let value = 0;
  let digits = 0;
  for (; i < end; i++) {
    const c = block[i];
    if (c === undefined || c === 0x00 || c === 0x20) break;
    if (c < 0x30 || c > 0x37) return undefined;
    value = value * 8 + (c - 0x30);
    digits++;
  }
  return digits === 0 ? undefined : value;
}

/** tarChecksumOk checks the header checksum of a 512-byte block (unsigned sum, or the signed sum old tars wrote). */
function tarChecksumOk(block: Uint8Array): boolean {
  const stored = parseOctal(block, 148, 8);
  if (stored === undefined) return false;
  let unsigned = 0;
  let signed = 0;
  for (let i = 0; i < 512; i++) {
    const b = i >= 148 && i < 156 ? 0x20 : (block[i] ?? 0);
    unsigned += b;
    signed += b >= 0x80 ? b - 0x100 : b;
  }
  return stored === unsigned || stored === signed;
}

/**
 * looksLikeTar tells whether the first 512 bytes are a tar header: the `ustar` magic at offset 257 (POSIX and GNU),
 * or a valid header checksum with a name (old v7 tars have no magic). An all-zero block (an empty archive) is not a tar
 * here: there is nothing in it to push.
 */
export function looksLikeTar(head: Uint8Array): boolean {
  if (head.byteLength < 512) return false;
  const block = head.subarray(0, 512);
  const magic = block.subarray(257, 262);
  const isUstar = magic[0] === 0x75 && magic[1] === 0x73 && magic[2] === 0x74 && magic[3] === 0x61 && magic[4] === 0x72;
  if (isUstar) return true;
  // v7: no magic, so insist on a valid checksum and a printable, non-empty name.
  if (block[0] === 0x00) return false;
  return tarChecksumOk(block);
}
