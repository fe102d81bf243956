/**
 * Decoding a compressed layer while it streams through (for `docker-archive`, which stores layers uncompressed):
 * gzip by node:zlib, zstd by the `zstd` program (with `--long=31`, so frames written with large windows decode), or
 * node:zlib where the running Node has zstd and the program is missing — the same choices the bundle reader makes
 * (src/archive/decompress.ts). Backpressure holds end to end: the input is read only as fast as the output is taken.
 */
import { spawn } from 'node:child_process';
import type { Duplex, Writable } from 'node:stream';
import zlib from 'node:zlib';
import { findProgram } from '../../archive/decompress.js';
import { abortError, MirrorError } from '../../errors/index.js';

/** LayerCompression is how a layer blob is compressed, as its media type says. */
export type LayerCompression = 'gzip' | 'zstd' | 'none';

/** STDERR_KEEP bounds what is kept of a decoder program's complaints. */
const STDERR_KEEP = 2048;

/** DecodeOptions tune {@link decodeStream}. */
export interface DecodeOptions {
  /** What is decoded, for messages (`layer sha256:...`). */
  what: string;
  signal?: AbortSignal | undefined;
}

/** waitWritable resolves when `w` drains, and rejects when it fails or closes first. */
function waitWritable(w: Writable): Promise<void> {
  return new Promise((resolve, reject) => {
    const cleanup = (): void => {
      w.off('drain', onDrain);
      w.off('error', onError);
      w.off('close', onClose);
    };
    const onDrain = (): void => {
      cleanup();
      resolve();
    };
    const onError = (e: unknown): void => {
      cleanup();
      reject(e);
    };
    const onClose = (): void => {
      cleanup();
      reject(new Error('the decoder closed its input'));
    };
    w.on('drain', onDrain);
    w.on('error', onError);
    w.on('close', onClose);
  });
}

/** feed writes every input chunk into `w` (respecting backpressure), then ends it; any failure is returned, not thrown. */
async function feed(input: AsyncIterable<Uint8Array>, w: Writable): Promise<unknown> {
  try {
    for await (const chunk of input) {
      if (w.destroyed) return undefined;
      if (!w.write(chunk)) await waitWritable(w);
    }
    w.end();
    return undefined;
  } catch (e) {
    return e;
  }
}

/**
 * decodeStream decompresses `input` as it is read. A failure of the input (a digest mismatch found by a verifying
 * stream) is thrown as it is; a decoding failure is CORRUPT_ARCHIVE naming `what`.
 */
export async function* decodeStream(input: AsyncIterable<Uint8Array>, compression: LayerCompression, options: DecodeOptions): AsyncGenerator<Uint8Array, void, undefined> {
  if (compression === 'none') {
    yield* input;
    return;
  }
  const corrupt = (why: string, cause?: unknown): MirrorError =>
    new MirrorError('CORRUPT_ARCHIVE', `${options.what} does not decode as ${compression}: ${why}`, { phase: 'write', cause });
  const program = compression === 'zstd' ? findProgram('zstd') : undefined;
  if (program !== undefined) {
    yield* viaProgram(input, program, ['-dc', '-q', '--no-progress', '--long=31'], corrupt, options.signal);
    return;
  }
  let decoder: Duplex;
  if (compression === 'gzip') decoder = zlib.createGunzip();
  else {
    const make = (zlib as unknown as { createZstdDecompress?: () => Duplex }).createZstdDecompress;
    if (typeof make !== 'function') throw new MirrorError('UNSUPPORTED', `cannot decode ${options.what}: zstd needs the zstd program on PATH or Node 22.15 or later`, { hint: 'install zstd' });
    decoder = make();
  }
  let inputError: unknown;
  const fed = feed(input, decoder).then((e) => {
    if (e !== undefined) {
      inputError = e;
      decoder.destroy();
    }
  });
  try {
    for await (const chunk of decoder as AsyncIterable<Uint8Array>) yield chunk;
  } catch (e) {
    await fed;
    if (inputError !== undefined) throw inputError;
    if (options.signal?.aborted) throw abortError(options.signal);
    throw corrupt(e instanceof Error ? e.message : String(e), e);
  } finally {
    decoder.destroy();
  }
  await fed;
  if (inputError !== undefined) throw inputError;
}

/** viaProgram decodes through a program reading stdin and writing stdout; its exit status and stderr say what went wrong. */
async function* viaProgram(
  input: AsyncIterable<Uint8Array>,
  program: string,
  args: string[],
  corrupt: (why: string, cause?: unknown) => MirrorError,
  signal: AbortSignal | undefined,
): AsyncGenerator<Uint8Array, void, undefined> {
  const child = spawn(program, args, { stdio: ['pipe', 'pipe', 'pipe'], windowsHide: true, env: { ...process.env, LC_ALL: 'C' } });
  let stderr = '';
  child.stderr.on('data', (d: Buffer) => {
    if (stderr.length < STDERR_KEEP) stderr += d.toString('utf8');
  });
  child.stdin.on('error', () => {});
  child.stdout.on('error', () => {});
  child.stderr.on('error', () => {});
  const exited = new Promise<{ code: number | null; error?: unknown }>((resolve) => {
    child.once('close', (code) => resolve({ code }));
    child.once('error', (error) => resolve({ code: null, error }));
  });
  let inputError: unknown;
  const fed = feed(input, child.stdin).then((e) => {
    if (e !== undefined) {
      inputError = e;
      child.kill('SIGKILL');
    }
  });
  let finished = false;
  try {
    for await (const chunk of child.stdout as AsyncIterable<Uint8Array>) yield chunk;
    finished = true;
  } finally {
    // Stopped early (the consumer failed or left): the program goes at once; the input is not waited for.
    if (!finished && child.exitCode === null) child.kill('SIGKILL');
  }
  await fed;
  const status = await exited;
  if (status.error !== undefined) throw new MirrorError('INTERNAL', `cannot run ${program}: ${(status.error as Error).message}`, { cause: status.error });
  if (inputError !== undefined) throw inputError;
  if (signal?.aborted) throw abortError(signal);
  if (status.code !== 0) throw corrupt(stderr.split('\n').find((l) => l.trim() !== '')?.trim().slice(0, 200) ?? `exit status ${status.code}`);
}
