/**
 * What the two archive destinations share: one tar written as a stream into `FILE.tmp-*` (created at the first
 * write, so a dry run or a copy that fails before writing leaves nothing), one write at a time, blobs kept once per
 * archive (`blobScope: 'global'`), no mounts, and the temporary file removed unless the archive was committed.
 */
import { abortError, errorMessage, MirrorError, throwIfAborted } from '../../errors/index.js';
import type { DestinationCapabilities, ImageDestination, MountResult } from '../types.js';
import { ArchiveOutput } from './output.js';
import type { TarEntryWriter, TarFileWriter } from './tar-writer.js';

/** ArchiveTransportName names the archive transports, for messages. */
export type ArchiveTransportName = 'oci-archive' | 'docker-archive';

/** TarDestination is the base of the archive destinations. */
export abstract class TarDestination implements Pick<ImageDestination, 'blobScope' | 'mountBlob' | 'cancelSession' | 'close' | 'description'> {
  readonly blobScope = 'global' as const;
  abstract readonly capabilities: DestinationCapabilities;
  private output: ArchiveOutput | undefined;
  private queue: Promise<unknown> = Promise.resolve();
  /** Signals whose abort removes the temporary file. */
  private readonly watched = new WeakSet<AbortSignal>();
  /** Set once the archive was committed or discarded: nothing more can be written. */
  protected ended = false;

  constructor(
    /** The archive file. */
    protected readonly file: string,
    /** The transport name, for messages. */
    protected readonly transport: ArchiveTransportName,
  ) {}

  get description(): string {
    return `${this.transport}:${this.file}`;
  }

  /** The temporary file being written, once started (for messages and tests). */
  get tempName(): string | undefined {
    return this.output?.tempName;
  }

  /** serialize runs writes one at a time, in call order, whatever the caller's concurrency. */
  protected serialize<T>(work: () => Promise<T>): Promise<T> {
    const run = this.queue.then(work, work);
    this.queue = run.catch(() => {});
    return run;
  }

  /**
   * tar gives the archive being written, creating the temporary file at the first call. With the run's signal, an
   * abort removes the temporary file at once.
   */
  protected async tar(signal?: AbortSignal | undefined): Promise<TarFileWriter> {
    if (this.ended) throw new MirrorError('INTERNAL', `${this.description} was already committed or discarded`);
    throwIfAborted(signal);
    this.output ??= await ArchiveOutput.create(this.file, this.transport);
    const output = this.output;
    if (signal !== undefined && !this.watched.has(signal)) {
      this.watched.add(signal);
      signal.addEventListener('abort', () => output.discardNow(), { once: true });
    }
    if (signal?.aborted) {
      // Aborted while the file was being created: the listener came too late to fire.
      output.discardNow();
      throw abortError(signal);
    }
    return output.tar;
  }

  /** started tells whether anything was written. */
  protected get started(): boolean {
    return this.output !== undefined;
  }

  /**
   * pump writes `chunks` into an entry (checking for an abort between pieces); on any failure the entry is rolled
   * back, so the archive holds no partial entry. The caller ends the entry.
   */
  protected async pump(entry: TarEntryWriter, chunks: AsyncIterable<Uint8Array>, signal: AbortSignal | undefined): Promise<void> {
    try {
      for await (const chunk of chunks) {
        throwIfAborted(signal);
        await entry.write(chunk);
      }
    } catch (e) {
      entry.rollback();
      if (signal?.aborted) throw abortError(signal);
      throw e;
    }
  }

  /** endEntry ends an entry, rolling it back when that fails. */
  protected async endEntry(entry: TarEntryWriter, name?: string): Promise<void> {
    try {
      await entry.end({ name });
    } catch (e) {
      entry.rollback();
      throw e;
    }
  }

  /** commitOutput renames the finished archive into place (an empty run writes no file at all). */
  protected async commitOutput(): Promise<void> {
    this.ended = true;
    await this.output?.commit();
  }

  async mountBlob(): Promise<MountResult> {
    return { mounted: false };
  }

  async cancelSession(): Promise<void> {}

  /** close removes the temporary file unless the archive was committed. */
  async close(): Promise<void> {
    // Not waiting for a write in flight: it fails on the closed file and rolls back; the file is gone either way.
    this.ended = true;
    await this.output?.discard();
  }
}

/** bodyChunks gives a blob body's bytes. */
export function bodyChunks(body: { kind: 'bytes'; data: Uint8Array } | { kind: 'stream'; open: () => AsyncIterable<Uint8Array> }): AsyncIterable<Uint8Array> {
  return body.kind === 'bytes' ? once(body.data) : body.open();
}

async function* once(data: Uint8Array): AsyncGenerator<Uint8Array, void, undefined> {
  yield data;
}

/** blobPath gives a blob's path in an OCI layout: `blobs/<alg>/<hex>`. */
export function blobPath(digest: string): string {
  const i = digest.indexOf(':');
  return `blobs/${digest.slice(0, i)}/${digest.slice(i + 1)}`;
}

/**
 * incompleteError says why an archive is not committed: blobs that images named in it need were never written
 * (their writes failed). It keeps the code of the first failure, so the exit code says what went wrong.
 */
export function incompleteError(description: string, missing: string[], failures: ReadonlyMap<string, unknown>): MirrorError {
  const first = missing[0] ?? '';
  const cause = failures.get(first);
  const why = cause === undefined ? 'it was never written' : errorMessage(cause);
  const code = cause instanceof MirrorError ? cause.code : 'INTERNAL';
  return new MirrorError(code, `${description} was not written: ${missing.length} blob(s) of the images it names are missing (${first}: ${why})`, {
    digest: first,
    cause,
  });
}
