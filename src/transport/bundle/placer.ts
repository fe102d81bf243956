/**
 * The bundle's own pass: a bundle read front to back hands over every blob once, and the placer puts each where it
 * will be needed while the stream goes by: into the repositories of the images that need it when the metadata came
 * first, into a staging repository when it comes last (the images then mount it from there). Small blobs are read
 * into memory within a byte budget so the stream goes on while they upload; an upload cut after its bytes had left
 * the stream is marked for a re-read pass. What it placed (`located`), what failed, and what must be read again are
 * kept for the copy engine that finishes the images afterwards (see `./catalog-source.ts` and `src/copy/bundle.ts`).
 * It never prints; it emits typed events.
 */
import pLimit from 'p-limit';
import { ByteBudget, collect } from '../../copy/budget.js';
import { abortError, DigestMismatchError, errorMessage, isMirrorError, MirrorError } from '../../errors/index.js';
import type { EventSink } from '../../events/index.js';
import { DigestCounter } from '../../oci/digest.js';
import {
  type BlobBody,
  type Catalog,
  type DestinationImage,
  type ImageDestination,
  isStreamConsumed,
  type SourceImage,
  type StreamBlob,
  type StreamSource,
} from '../types.js';
import { blobDigestOfPath } from './layout-state.js';

/** DEFAULT_MEMORY_BLOB_MAX: blobs up to this size are read into memory so the stream can go on while they upload. */
export const DEFAULT_MEMORY_BLOB_MAX = 16 * 1024 * 1024;
/** DEFAULT_MEMORY_BUDGET bounds the bytes of in-memory blobs waiting for upload. */
export const DEFAULT_MEMORY_BUDGET = 96 * 1024 * 1024;
/** DEFAULT_REREAD_PASSES bounds how often a bundle is read again for blobs whose upload was cut. */
export const DEFAULT_REREAD_PASSES = 3;
/** DEFAULT_PLACER_JOBS is how many uploads run at once while the bundle is read. */
export const DEFAULT_PLACER_JOBS = 4;

/**
 * MIN_BLOB_CHARGE is the least a blob held in memory for upload counts against the memory budget: its records and the
 * upload queued for it cost memory too, so 100,000 blobs of a few bytes cannot all be queued at once.
 */
const MIN_BLOB_CHARGE = 16 * 1024;

function charge(size: number): number {
  return Math.max(size, MIN_BLOB_CHARGE);
}

/** FATAL_CODES are error codes that stop the whole run instead of failing one blob. */
const FATAL_CODES = new Set(['AUTH', 'TLS', 'INTERRUPTED', 'NETWORK', 'USAGE']);

/** isRunFatal tells whether an error concerns the whole run (a stream used up by a cut upload is read again instead). */
export function isRunFatal(e: unknown): boolean {
  return isMirrorError(e) && FATAL_CODES.has(e.code) && !isStreamConsumed(e);
}

/** MAX_SETTLE_ROUNDS bounds the rounds of waiting for work in flight after a stop (work can start work). */
const MAX_SETTLE_ROUNDS = 1000;
/**
 * SETTLE_TIMEOUT_MS bounds the wait for work in flight after a stop. Everything in flight has the run's abort and ends
 * within moments (an upload session's cancel is bounded by CANCEL_TIMEOUT_MS of src/registry/upload.ts); this is a
 * safety net so a stopped run always returns.
 */
export const SETTLE_TIMEOUT_MS = 15_000;

/** PlacerOptions tune a {@link BundlePlacer}. */
export interface PlacerOptions {
  /** Where each image goes; images that map to an error need no blob. */
  map: (image: SourceImage) => DestinationImage | MirrorError;
  /** Uploads at once. Default {@link DEFAULT_PLACER_JOBS}. */
  jobs?: number | undefined;
  /** Largest blob read into memory. Default {@link DEFAULT_MEMORY_BLOB_MAX}. */
  memoryBlobMax?: number | undefined;
  /** Bytes of in-memory blobs held at once. Default {@link DEFAULT_MEMORY_BUDGET}. */
  memoryBudget?: number | undefined;
  /** Full repository name that takes blobs met before the metadata that names their images. */
  stagingRepository?: string | undefined;
  /** How many times the bundle may be read again for blobs whose upload was cut. Default {@link DEFAULT_REREAD_PASSES}. */
  rereadPasses?: number | undefined;
  /** Read the bundle and place nothing (converted layers are measured for their digests). Default false. */
  dryRun?: boolean | undefined;
  events: EventSink;
  /** The caller's signal; the placer's own {@link BundlePlacer.signal} follows it. */
  signal?: AbortSignal | undefined;
}

/** PlacerStats count what the pass(es) did. */
export interface PlacerStats {
  uploaded: number;
  mounted: number;
  skipped: number;
  bytesUploaded: number;
}

/**
 * BundlePlacer runs a bundle's pass(es) against a destination (none for a dry run) and keeps what it placed. It also
 * owns the run's stop: {@link signal} fires on the caller's abort or the first failure of the whole run, and
 * {@link settle} waits for everything started to end, so nothing is sent after a stop.
 */
export class BundlePlacer {
  /** Repositories known to hold a blob, by digest (`''` for a destination with one blob store). */
  readonly located = new Map<string, Set<string>>();
  /** Blobs whose bytes did not verify. */
  readonly badBlobs = new Map<string, MirrorError>();
  /** Blobs that failed for another per-blob reason. */
  readonly failedBlobs = new Map<string, MirrorError>();
  readonly stats: PlacerStats = { uploaded: 0, mounted: 0, skipped: 0, bytesUploaded: 0 };
  /** Passes over the bundle so far. */
  passes = 0;
  private readonly events: EventSink;
  private readonly stopper = new AbortController();
  /** The first failure that ended the run. */
  stopError: unknown;
  private readonly inflight = new Set<Promise<unknown>>();
  private readonly onOuterAbort = (): void => this.stop(abortError(this.options.signal));
  private readonly limit: ReturnType<typeof pLimit>;
  private readonly budget: ByteBudget;
  private readonly memoryBlobMax: number;
  /** Set once the image count went out early (from the source, before planning). */
  private countShown = false;
  /** Small blobs held in memory while their first upload is in flight (bounded by the byte budget). */
  private readonly memory = new Map<string, Uint8Array>();
  /** Bodies that can be opened again (a directory bundle), by digest. */
  private readonly reopenable = new Map<string, () => AsyncIterable<Uint8Array>>();
  /** Entry key of each blob seen in a stream, to read it again. */
  private readonly keys = new Map<string, string>();
  /** Entry keys of blobs whose bytes must be read from the stream again, and the repositories that need them. */
  private readonly needReread = new Map<string, Set<string>>();
  /** Uploads of converted blobs (digest known only once written), settled before the catalog is built. */
  private readonly conversions: Promise<void>[] = [];
  /** Background uploads started while a stream is read. */
  private readonly background: Promise<void>[] = [];
  /** Uploads in flight by digest, for {@link settling}. */
  private readonly uploading = new Map<string, Promise<void>>();

  constructor(
    private readonly source: StreamSource,
    private readonly dest: ImageDestination | undefined,
    private readonly options: PlacerOptions,
  ) {
    this.events = options.events;
    this.limit = pLimit(Math.max(1, options.jobs ?? DEFAULT_PLACER_JOBS));
    this.budget = new ByteBudget(options.memoryBudget ?? DEFAULT_MEMORY_BUDGET);
    this.memoryBlobMax = options.memoryBlobMax ?? DEFAULT_MEMORY_BLOB_MAX;
    const outer = options.signal;
    if (outer?.aborted) this.stop(abortError(outer));
    else outer?.addEventListener('abort', this.onOuterAbort, { once: true });
  }

  /** signal is the run's abort: the caller's, or the first failure that ends the run. */
  get signal(): AbortSignal {
    return this.stopper.signal;
  }

  /** rereadPasses is how many extra reads are allowed. */
  get rereadPasses(): number {
    return this.options.rereadPasses ?? DEFAULT_REREAD_PASSES;
  }

  /**
   * stop ends the run at once: the run's abort fires, so requests in flight, backoff sleeps, queued work and the
   * source read all end; the first failure given is the one the run throws. Work in flight gets an INTERRUPTED
   * error, which nothing retries.
   */
  stop(e: unknown): void {
    if (this.stopper.signal.aborted) return;
    this.stopError = e;
    const reason = isMirrorError(e) && e.code === 'INTERRUPTED' ? e : new MirrorError('INTERRUPTED', `stopped: ${errorMessage(e)}`, { cause: e });
    this.stopper.abort(reason);
  }

  /** detach stops following the caller's signal (the run is over). */
  detach(): void {
    this.options.signal?.removeEventListener('abort', this.onOuterAbort);
  }

  /** keep tracks work the run must wait for before it returns or throws. */
  keep<T>(p: Promise<T>): Promise<T> {
    this.inflight.add(p);
    const drop = (): void => {
      this.inflight.delete(p);
    };
    p.then(drop, drop);
    return p;
  }

  /** settle waits until nothing is in flight (bounded in rounds and by {@link SETTLE_TIMEOUT_MS}). */
  async settle(): Promise<void> {
    let timer: NodeJS.Timeout | undefined;
    const deadline = new Promise<void>((resolve) => {
      timer = setTimeout(resolve, SETTLE_TIMEOUT_MS);
      timer.unref();
    });
    let late = false;
    void deadline.then(() => (late = true));
    try {
      for (let round = 0; this.inflight.size > 0 && round < MAX_SETTLE_ROUNDS && !late; round++) {
        await Promise.race([Promise.allSettled([...this.inflight]), deadline]);
      }
    } finally {
      clearTimeout(timer);
    }
  }

  /**
   * scan reads the bundle once, placing blobs as they go by, then reads it again (at most {@link rereadPasses} times)
   * for blobs whose upload was cut after their bytes had left the stream. Resolves with the catalog; uploads may still
   * be in flight (see {@link settling} and {@link settled}).
   */
  async scan(): Promise<Catalog> {
    const src = this.source;
    this.events({ type: 'phase', phase: 'read', detail: src.description });
    this.passes = 1;
    let catalog = await src.scan(
      { blob: (b) => this.onStreamBlob(b, undefined), flush: () => this.settleConversions() },
      { signal: this.signal, onSourceBytes: (bytes, total) => this.events({ type: 'source-bytes', bytes, total }) },
    );
    // Blobs cut halfway while the stream went by are read again before planning: a converted layer's digest, which
    // its manifest needs, is only known once it has been sent whole.
    for (let round = 0; this.needReread.size > 0 && round < this.rereadPasses; round++) catalog = await this.reread();
    // Uploads still in flight are not waited for here: images are finished meanwhile, and one that needs such a blob
    // waits for that upload alone (`settling`); the caller waits for the rest (`settled`) before it commits.
    return catalog;
  }

  /** pendingRereads tells whether blobs wait for a re-read pass. */
  get pendingRereads(): boolean {
    return this.needReread.size > 0;
  }

  /** rereadLater asks for the entry `key` to be read again and sent into `repo`. */
  rereadLater(key: string, repo: string): void {
    let set = this.needReread.get(key);
    if (!set) this.needReread.set(key, (set = new Set()));
    set.add(repo);
  }

  /** keyOf gives the entry key a blob was seen under in the stream, if it was. */
  keyOf(digest: string): string | undefined {
    return this.keys.get(digest);
  }

  /** held gives a blob's bytes while the placer holds them in memory. */
  held(digest: string): Uint8Array | undefined {
    return this.memory.get(digest);
  }

  /** reopen gives a body that can be opened again (a directory bundle's file), if the blob has one. */
  reopen(digest: string): (() => AsyncIterable<Uint8Array>) | undefined {
    return this.reopenable.get(digest);
  }

  /** problem gives what went wrong with a blob while placing it: bad bytes, or another per-blob failure. */
  problem(digest: string): MirrorError | undefined {
    return this.badBlobs.get(digest);
  }

  /** locate records that a repository holds a blob. */
  locate(repo: string, digest: string): void {
    let set = this.located.get(digest);
    if (!set) this.located.set(digest, (set = new Set()));
    set.add(this.repoKey(repo));
  }

  /** reread reads the bundle again, sending only the blobs that still need their bytes; resolves with the catalog. */
  async reread(): Promise<Catalog> {
    const targetsByKey = new Map<string, Set<string>>(this.needReread);
    this.needReread.clear();
    const keys = new Set(targetsByKey.keys());
    const met = new Set<string>();
    this.passes++;
    this.events({ type: 'phase', phase: 'reread', detail: `${keys.size} blob(s)` });
    const catalog = await this.source.scan(
      {
        blob: async (b) => {
          met.add(b.key);
          const repos = targetsByKey.get(b.key);
          // Forget the blob's earlier location so it is uploaded, not mounted from a repository that lacks it.
          if (repos) await this.onStreamBlob(b, new Set([[...repos][0]!]));
        },
        flush: () => this.settleBackground(),
      },
      { signal: this.signal, only: keys, onSourceBytes: (bytes, total) => this.events({ type: 'source-bytes', bytes, total }) },
    );
    await this.settleBackground();
    // A blob looked for by its path that the bundle does not hold (see Catalog.mayHavePassed) is missing, not late.
    for (const key of keys) {
      const digest = met.has(key) ? undefined : blobDigestOfPath(key);
      if (digest !== undefined && !this.failedBlobs.has(digest)) this.failedBlobs.set(digest, new MirrorError('BAD_INPUT', `blob ${digest} is missing from the bundle`, { digest }));
    }
    return catalog;
  }

  private repoKey(repo: string): string {
    return this.dest?.blobScope === 'global' ? '' : repo;
  }

  private isLocated(repo: string, digest: string): boolean {
    return this.located.get(digest)?.has(this.repoKey(repo)) ?? false;
  }

  private blobEvent(digest: string, size: number, repository: string, action: 'uploaded' | 'skipped'): void {
    if (action === 'skipped') this.stats.skipped++;
    this.events({ type: 'blob', digest, size, repository, action });
  }

  private async onStreamBlob(b: StreamBlob, rereadTargets: Set<string> | undefined): Promise<void> {
    if (b.digest !== undefined) this.keys.set(b.digest, b.key);
    // The image count as soon as the source knows it (metadata first), not only once the whole bundle was read.
    if (!this.countShown && b.wanted.known && b.wanted.of !== undefined) {
      this.countShown = true;
      this.events({ type: 'plan', images: b.wanted.of });
    }
    const body = b.body;
    // Returning without reading is how a blob is skipped: the source drains what the sink leaves unread.
    if (this.options.dryRun || this.dest === undefined) {
      if (b.digest === undefined && b.knownAs !== undefined) {
        b.resolved?.(b.knownAs);
        return;
      }
      if (b.digest === undefined && b.resolved) {
        // A converted blob's digest is only known by reading it.
        const bytes = await measure(body);
        b.resolved(bytes);
        return;
      }
      return;
    }
    const dest = this.dest;
    if (b.digest !== undefined && body.kind === 'stream' && body.reopenable) this.reopenable.set(b.digest, body.open);
    if (b.digest !== undefined && (this.badBlobs.has(b.digest) || this.failedBlobs.has(b.digest))) return;

    const targets = rereadTargets ?? this.targetsOf(b);
    if (targets.size === 0) return;

    if (b.digest === undefined && b.knownAs !== undefined && rereadTargets === undefined) {
      // A converted blob written by an earlier run: present under its recorded digest means nothing to send.
      const known = b.knownAs;
      for (const repo of targets) {
        if (this.isLocated(repo, known.digest) || (await dest.hasBlob(repo, known.digest, { signal: this.signal }))) {
          this.locate(repo, known.digest);
          this.keys.set(known.digest, b.key);
          this.blobEvent(known.digest, known.size, repo, 'skipped');
          b.resolved?.(known);
          return;
        }
      }
    }

    if (b.digest !== undefined) {
      const digest = b.digest;
      for (const repo of targets) {
        if (this.isLocated(repo, digest)) return;
      }
      for (const repo of targets) {
        if (await dest.hasBlob(repo, digest, { signal: this.signal })) {
          this.locate(repo, digest);
          this.blobEvent(digest, b.size ?? 0, repo, 'skipped');
          return;
        }
      }
    }
    const repo = [...targets][0]!;

    // Bytes already read (a small entry): upload in the background within the memory budget.
    if (body.kind === 'bytes') {
      const size = charge(body.data.byteLength);
      await this.budget.acquire(size, this.signal);
      const digest = b.digest;
      if (digest !== undefined) this.memory.set(digest, body.data);
      this.background.push(
        this.track(
          digest,
          this.limit(() => this.uploadGuarded(repo, b, body)).finally(() => {
            if (digest !== undefined) this.memory.delete(digest);
            this.budget.release(size);
          }),
        ),
      );
      return;
    }
    // A reopenable body (a directory): upload in the background, retried whole on failure.
    if (body.reopenable) {
      this.background.push(this.track(b.digest, this.limit(() => this.uploadGuarded(repo, b, body))));
      return;
    }
    // A small blob from a one-time stream: read it into memory and let the stream go on.
    if (b.digest !== undefined && b.size !== undefined && b.size <= this.memoryBlobMax) {
      const size = charge(b.size);
      await this.budget.acquire(size, this.signal);
      let data: Uint8Array;
      try {
        // Not hashed here: the destination verifies every byte it writes, and a blob that fails there is marked bad.
        data = await collect(body.open());
      } catch (e) {
        this.budget.release(size);
        throw e;
      }
      const digest = b.digest;
      this.memory.set(digest, data);
      this.background.push(
        this.track(
          digest,
          this.limit(() => this.uploadGuarded(repo, b, { kind: 'bytes', data })).finally(() => {
            this.memory.delete(digest);
            this.budget.release(size);
          }),
        ),
      );
      return;
    }
    // A large blob from a one-time stream: send it while it is read. Once its last byte has been read the stream
    // moves on to the next entry while the registry finishes this upload.
    let readDone!: () => void;
    const read = new Promise<void>((resolve) => (readDone = resolve));
    const watched: BlobBody = { kind: 'stream', reopenable: false, open: () => watchEnd(body.open(), readDone) };
    const job = this.track(b.digest, this.uploadGuarded(repo, b, watched));
    this.background.push(job);
    await Promise.race([read, job]);
  }

  /** track records an upload the run waits for; a converted blob's is settled before the catalog is built. */
  private track(digest: string | undefined, job: Promise<void>): Promise<void> {
    this.keep(job);
    // A blob converted on the way: the source needs its digest before it can build the catalog.
    if (digest === undefined) this.conversions.push(job);
    else {
      this.uploading.set(digest, job);
      const clear = (): void => {
        if (this.uploading.get(digest) === job) this.uploading.delete(digest);
      };
      job.then(clear, clear);
    }
    return job;
  }

  /**
   * settling gives, for a blob whose upload the pass still has in flight, a promise of the repositories that hold it
   * once the upload has settled (empty when it failed; never rejected); undefined when none is in flight.
   */
  settling(digest: string): Promise<Iterable<string>> | undefined {
    const job = this.uploading.get(digest);
    if (job === undefined) return undefined;
    const where = (): Iterable<string> => [...(this.located.get(digest) ?? [])];
    return job.then(where, where);
  }

  /** settled waits for every upload the pass started (a run-wide failure among them is thrown). */
  async settled(): Promise<void> {
    await this.settleBackground();
  }

  /** uploadGuarded uploads one stream blob and records the outcome; only run-wide failures escape. */
  private async uploadGuarded(repo: string, b: StreamBlob, body: BlobBody): Promise<void> {
    const dest = this.dest!;
    let consumed = false;
    const counted: BlobBody =
      body.kind === 'bytes'
        ? body
        : {
            kind: 'stream',
            reopenable: body.reopenable,
            open: () => {
              consumed = true;
              return body.open();
            },
          };
    try {
      const r = await dest.putBlob(repo, { digest: b.digest, size: b.size }, counted, {
        signal: this.signal,
        onBytes: (n) => {
          this.stats.bytesUploaded += n;
          this.events({ type: 'bytes', bytes: n });
        },
      });
      this.keys.set(r.digest, b.key);
      b.resolved?.(r);
      this.locate(repo, r.digest);
      // A registry may answer with its own digest of the blob (sha256 for a sha512 upload): both name it there.
      if (b.digest !== undefined && b.digest !== r.digest) this.locate(repo, b.digest);
      this.stats.uploaded++;
      this.blobEvent(b.digest ?? r.digest, r.size, repo, 'uploaded');
    } catch (e) {
      if (isStreamConsumed(e) && consumed) {
        // No promise here: the line that says the bundle is read again comes when it is (phase `reread`).
        const why = e instanceof Error && e.cause !== undefined ? errorMessage(e.cause) : errorMessage(e);
        this.events({ type: 'warning', message: `upload of ${b.digest ?? b.key} to ${repo} was cut after its bytes had left the bundle stream (${why})` });
        this.rereadLater(b.key, repo);
        return;
      }
      if (e instanceof DigestMismatchError && b.digest !== undefined) {
        this.badBlobs.set(b.digest, e);
        this.events({ type: 'warning', message: errorMessage(e) });
        return;
      }
      if (isRunFatal(e)) {
        this.stop(e);
        throw e;
      }
      const err = isMirrorError(e) ? e : new MirrorError('REGISTRY', errorMessage(e), { cause: e, digest: b.digest });
      if (b.digest !== undefined) this.failedBlobs.set(b.digest, err);
      b.rejected?.(err);
      this.events({ type: 'warning', message: `blob ${b.digest ?? b.key} failed: ${errorMessage(err)}` });
    }
  }

  private async settleConversions(): Promise<void> {
    const results = await Promise.allSettled(this.conversions.splice(0));
    for (const r of results) if (r.status === 'rejected') throw r.reason;
  }

  /** settleBackground waits for the uploads started while the stream was read; a run-wide failure is thrown. */
  private async settleBackground(): Promise<void> {
    while (this.background.length > 0) {
      const batch = this.background.splice(0);
      const results = await Promise.allSettled(batch);
      for (const r of results) if (r.status === 'rejected') throw r.reason;
    }
  }

  /** targetsOf gives the repositories a blob should go to first: its images' repositories, or the staging one. */
  private targetsOf(b: StreamBlob): Set<string> {
    const dest = this.dest!;
    if (dest.blobScope === 'global') return new Set(b.wanted.known && b.wanted.images.length === 0 ? [] : ['']);
    if (!b.wanted.known) {
      const staging = this.options.stagingRepository;
      if (!staging) throw new MirrorError('INTERNAL', 'a staging repository is needed for bundles whose metadata comes last');
      return new Set([staging]);
    }
    const out = new Set<string>();
    for (const img of b.wanted.images) {
      const d = this.options.map(img);
      if (!(d instanceof MirrorError)) out.add(d.repository);
    }
    return out;
  }
}

async function measure(body: BlobBody): Promise<{ digest: string; size: number }> {
  const c = new DigestCounter();
  if (body.kind === 'bytes') c.update(body.data);
  else for await (const chunk of body.open()) c.update(chunk);
  return { digest: c.digest(), size: c.bytes };
}

/** watchEnd passes chunks through and calls `done` when the source has ended (or failed, or was left). */
async function* watchEnd(source: AsyncIterable<Uint8Array>, done: () => void): AsyncGenerator<Uint8Array> {
  try {
    yield* source;
  } finally {
    done();
  }
}
