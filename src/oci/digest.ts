import { createHash, type Hash } from 'node:crypto';
import { DigestMismatchError, MirrorError, type MirrorErrorOptions } from '../errors/index.js';
import { clipInput } from '../errors/quote.js';

/**
 * DIGEST_ALGORITHMS are the digest algorithms content is verified with (the OCI image spec registers sha256 and
 * sha512; sha384 is accepted by registries too). A digest with another algorithm cannot be verified and is refused.
 */
export const DIGEST_ALGORITHMS: ReadonlySet<string> = new Set(['sha256', 'sha384', 'sha512']);

/** HEX_LENGTH is the length of each algorithm's hex encoding. */
const HEX_LENGTH: Record<string, number> = { sha256: 64, sha384: 96, sha512: 128 };

/**
 * isContentDigest tells whether a reference is a digest this tool verifies (`sha256:` and 64 hex digits, or sha384,
 * sha512), as opposed to a name: the OCI grammar takes `busybox:latest` for a digest of algorithm `busybox`, so a
 * reference that may be either (an `oci:` REF, an archive's name) is told apart by this test.
 */
export function isContentDigest(reference: string): boolean {
  const i = reference.indexOf(':');
  const length = i < 0 ? undefined : HEX_LENGTH[reference.slice(0, i)];
  return length !== undefined && reference.length === i + 1 + length && /^[a-f0-9]+$/.test(reference.slice(i + 1));
}

/** digestAlgorithm gives the algorithm of a digest (`sha512:abc` -> `sha512`); `sha256` when it names none. */
export function digestAlgorithm(digest: string): string {
  const i = digest.indexOf(':');
  return i < 0 ? 'sha256' : digest.slice(0, i);
}

/** checkAlgorithm throws UNSUPPORTED for a digest whose algorithm cannot be verified here. */
function checkAlgorithm(algorithm: string, context: MirrorErrorOptions = {}): void {
  if (!DIGEST_ALGORITHMS.has(algorithm)) {
    throw new MirrorError('UNSUPPORTED', `digest algorithm "${clipInput(algorithm, 32)}" cannot be verified (sha256, sha384 and sha512 can)`, context);
  }
}

/** sha256Digest gives the `sha256:<hex>` digest of bytes. */
export function sha256Digest(data: Uint8Array | string): string {
  return `sha256:${createHash('sha256').update(data).digest('hex')}`;
}

/**
 * digestLike gives the digest of bytes with the algorithm of `like` (a digest or a bare algorithm name: `sha512:...`
 * gives `sha512:<hex>`); sha256 when `like` is undefined. Throws UNSUPPORTED for an algorithm that cannot be computed.
 */
export function digestLike(data: Uint8Array | string, like: string | undefined): string {
  const algorithm = like === undefined ? 'sha256' : like.includes(':') ? digestAlgorithm(like) : like;
  if (algorithm === 'sha256') return sha256Digest(data);
  checkAlgorithm(algorithm);
  return `${algorithm}:${createHash(algorithm).update(data).digest('hex')}`;
}

/** digestHex gives the encoded part of a digest (`sha256:abc` -> `abc`). */
export function digestHex(digest: string): string {
  const i = digest.indexOf(':');
  return i < 0 ? digest : digest.slice(i + 1);
}

/**
 * verifyBytes checks bytes against a digest (with the digest's own algorithm) and size; throws
 * {@link DigestMismatchError} when they differ, UNSUPPORTED for an algorithm that cannot be verified.
 */
export function verifyBytes(data: Uint8Array, digest: string, size?: number, context: MirrorErrorOptions = {}): void {
  if (size !== undefined && data.byteLength !== size) {
    throw new DigestMismatchError(digest, digestLike(data, digest), { ...context, expectedSize: size, actualSize: data.byteLength });
  }
  const actual = digestLike(data, digest);
  if (actual !== digest) throw new DigestMismatchError(digest, actual, context);
}

/** DigestCounter hashes and counts bytes as they pass. */
export class DigestCounter {
  private readonly hash: Hash;
  /** Bytes seen so far. */
  bytes = 0;

  /** @param algorithm the hash (`sha256`, `sha384`, `sha512`). Default: sha256. */
  constructor(readonly algorithm = 'sha256') {
    if (algorithm !== 'sha256') checkAlgorithm(algorithm);
    this.hash = createHash(algorithm);
  }

  /** update adds a chunk. */
  update(chunk: Uint8Array): void {
    this.hash.update(chunk);
    this.bytes += chunk.byteLength;
  }

  /** digest finishes the hash (call once). */
  digest(): string {
    return `${this.algorithm}:${this.hash.digest('hex')}`;
  }
}

/** VerifyOptions tune {@link verifyingStream}. */
export interface VerifyOptions extends MirrorErrorOptions {
  /** Called with each chunk's length as it passes (for progress). */
  onBytes?: (n: number) => void;
}

/**
 * verifyingStream passes chunks through while hashing them (with the digest's own algorithm), and holds back the last
 * chunk until the whole stream has been checked against `digest` and `size`: a consumer that sends the chunks on (an HTTP body, a file) never
 * receives the complete content of a blob that does not match, so nothing unverified is ever committed.
 */
export async function* verifyingStream(
  source: AsyncIterable<Uint8Array>,
  digest: string,
  size: number | undefined,
  options: VerifyOptions = {},
): AsyncGenerator<Uint8Array, void, undefined> {
  const { onBytes, ...context } = options;
  const algorithm = digestAlgorithm(digest);
  checkAlgorithm(algorithm, context);
  const counter = new DigestCounter(algorithm);
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
