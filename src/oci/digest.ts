import { createHash, type Hash } from 'node:crypto';
import { DigestMismatchError, type MirrorErrorOptions } from '../errors/index.js';

/** sha256Digest gives the `sha256:<hex>` digest of bytes. */
export function sha256Digest(data: Uint8Array | string): string {
  return `sha256:${createHash('sha256').update(data).digest('hex')}`;
}

/** digestHex gives the encoded part of a digest (`sha256:abc` -> `abc`). */
export function digestHex(digest: string): string {
  const i = digest.indexOf(':');
  return i < 0 ? digest : digest.slice(i + 1);
}

/** verifyBytes checks bytes against a digest and size; throws {@link DigestMismatchError} when they differ. */
export function verifyBytes(data: Uint8Array, digest: string, size?: number, context: MirrorErrorOptions = {}): void {
  if (size !== undefined && data.byteLength !== size) {
    throw new DigestMismatchError(digest, sha256Digest(data), { ...context, expectedSize: size, actualSize: data.byteLength });
  }
  const actual = sha256Digest(data);
  if (actual !== digest) throw new DigestMismatchError(digest, actual, context);
}

/** DigestCounter hashes and counts bytes as they pass. */
export class DigestCounter {
  private readonly hash: Hash = createHash('sha256');
  /** Bytes seen so far. */
  bytes = 0;

  /** update adds a chunk. */
  update(chunk: Uint8Array): void {
    this.hash.update(chunk);
    this.bytes += chunk.byteLength;
  }

  /** digest finishes the hash (call once). */
  digest(): string {
    return `sha256:${this.hash.digest('hex')}`;
  }
}

/** VerifyOptions tune {@link verifyingStream}. */
export interface VerifyOptions extends MirrorErrorOptions {
  /** Called with each chunk's length as it passes (for progress). */
  onBytes?: (n: number) => void;
}

/**
 * verifyingStream passes chunks through while hashing them, and holds back the last chunk until the whole stream
 * has been checked against `digest` and `size`: a consumer that sends the chunks on (an HTTP body, a file) never
 * receives the complete content of a blob that does not match, so nothing unverified is ever committed.
 */
export async function* verifyingStream(
  source: AsyncIterable<Uint8Array>,
  digest: string,
  size: number | undefined,
  options: VerifyOptions = {},
): AsyncGenerator<Uint8Array, void, undefined> {
  const { onBytes, ...context } = options;
  const counter = new DigestCounter();
  let held: Uint8Array | undefined;
  for await (const chunk of source) {
    if (chunk.byteLength === 0) continue;
    counter.update(chunk);
    if (size !== undefined && counter.bytes > size) {
      throw new DigestMismatchError(digest, 'unknown', { ...context, expectedSize: size, actualSize: counter.bytes });
    }
    if (held !== undefined) {
      yield held;
      onBytes?.(held.byteLength);
    }
    held = chunk;
  }
  const actual = counter.digest();
  if (size !== undefined && counter.bytes !== size) {
    throw new DigestMismatchError(digest, actual, { ...context, expectedSize: size, actualSize: counter.bytes });
  }
  if (actual !== digest) throw new DigestMismatchError(digest, actual, context);
  if (held !== undefined) {
    yield held;
    onBytes?.(held.byteLength);
  }
}
