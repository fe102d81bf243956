/**
 * The copy engine: one engine for every pair of ends. It reads a source (a bundle read front to back, or a source
 * that can open anything at any time), sends each distinct blob once per destination and links it into other
 * repositories by cross-repository mount, verifies everything on the way, and writes manifests after their blobs,
 * an index after its children, and tags last. It never prints; it emits typed events.
 */
import pLimit from 'p-limit';
import { abortError, DigestMismatchError, errorMessage, isMirrorError, MirrorError } from '../errors/index.js';
import { type EventSink, noEvents } from '../events/index.js';
import { DigestCounter, verifyBytes } from '../oci/digest.js';
import { blobDescriptors, type Descriptor, parseManifest } from '../oci/manifest.js';
import { missingPlatforms, type PlatformSpec, selectPlatforms } from '../oci/platform.js';
import {
  type BlobBody,
  type Catalog,
  type DestinationImage,
  type ImageDestination,
  isStreamConsumed,
  type SourceImage,
  type StreamBlob,
  type StreamSource,
} from '../transport/types.js';
import { ByteBudget, collect } from './budget.js';
import { MAX_MANIFESTS_PER_IMAGE, referrerEntry, subjectOf } from './copy.js';
import { type ConflictPolicy, DEFAULT_CONFLICT_POLICY, settleConflicts } from './conflicts.js';
import type { CopyResult, ImageConflict, ImageOutcome, ManifestNode } from './result.js';

/** DEFAULT_JOBS is how many blob and image operations run at once. */
export const DEFAULT_JOBS = 4;
/** DEFAULT_MEMORY_BLOB_MAX: blobs up to this size are read into memory so the stream can go on while they upload. */
export const DEFAULT_MEMORY_BLOB_MAX = 16 * 1024 * 1024;
/** DEFAULT_MEMORY_BUDGET bounds the bytes of in-memory blobs waiting for upload. */
export const DEFAULT_MEMORY_BUDGET = 96 * 1024 * 1024;
/** DEFAULT_REREAD_PASSES bounds how often a bundle is read again for blobs whose upload was cut. */
export const DEFAULT_REREAD_PASSES = 3;
/** DEFAULT_STAGING_REPOSITORY is the repository (under the namespace) that takes blobs met before the metadata. */
export const DEFAULT_STAGING_REPOSITORY = 'mirror-staging';

/** CopyOptions tune {@link copyImages}. */
export interface CopyOptions {
  /** Where each source image goes; a MirrorError fails that image only. */
  map: (image: SourceImage) => DestinationImage | MirrorError;
  /** Concurrent operations. Default {@link DEFAULT_JOBS}. */
  jobs?: number | undefined;
  /** Largest blob read into memory. Default {@link DEFAULT_MEMORY_BLOB_MAX}. */
  memoryBlobMax?: number | undefined;
  /** Bytes of in-memory blobs held at once. Default {@link DEFAULT_MEMORY_BUDGET}. */
  memoryBudget?: number | undefined;
  /** Full repository name that takes blobs met before the metadata that names their images. */
  stagingRepository?: string | undefined;
  /** How many times a stream source may be read again for blobs whose upload was cut. Default {@link DEFAULT_REREAD_PASSES}. */
  rereadPasses?: number | undefined;
  /**
   * Push only these platforms of multi-platform images (`--platform`): one platform puts that platform's manifest
   * alone under the name, several a new index of just those; single-platform images pass when they match. Default:
   * every image whole, as the source has it. See {@link selectPlatforms}.
   */
  platforms?: readonly PlatformSpec[] | undefined;
  /** Read the source, plan, and send nothing. Default false. */
  dryRun?: boolean | undefined;
  /** What happens to images that claim one destination reference with different digests. Default {@link DEFAULT_CONFLICT_POLICY}. */
  onConflict?: ConflictPolicy | undefined;
  /** Progress events. */
  events?: EventSink | undefined;
  signal?: AbortSignal | undefined;
}

/**
 * MIN_BLOB_CHARGE is the least a blob held in memory for upload counts against the memory budget: its records and the
 * upload queued for it cost memory too, so 100,000 blobs of a few bytes cannot all be queued at once.
 */
const MIN_BLOB_CHARGE = 16 * 1024;

function charge(size: number): number {
  return Math.max(size, MIN_BLOB_CHARGE);
}

/** FATAL_CODES are error codes that stop the whole run instead of failing one image. */
const FATAL_CODES = new Set(['AUTH', 'TLS', 'INTERRUPTED', 'NETWORK', 'USAGE']);

function isFatal(e: unknown): boolean {
  return isMirrorError(e) && FATAL_CODES.has(e.code) && !isStreamConsumed(e);
}

/** Deferred is thrown inside an image's finish when a blob must wait for a re-read pass. */
class Deferred {
  constructor(readonly digest: string) {}
}

interface PlannedImage {
  image: SourceImage;
  dest: DestinationImage | undefined;
  /** Manifests in push order: children first, the root last. */
  manifests: ManifestNode[];
  /** Distinct blobs of all manifests. */
  blobs: Descriptor[];
  error: MirrorError | undefined;
  /** Set when another image of the run claims the same destination reference (see {@link CopyRun.checkConflicts}). */
  conflict?: ImageConflict | undefined;
  outcome?: ImageOutcome;
  /** The root pushed when it is not the source's (platforms chosen), and what that changed. */
  chosen?: { descriptor: Descriptor; converted: string | undefined };
}

/** lostConflict tells whether another image of the run got this image's destination reference (`--on-conflict first`). */
function lostConflict(p: PlannedImage): boolean {
  return p.error === undefined && p.conflict?.resolution === 'skipped';
}

/** What runs that stopped had done, by the error they stopped with. */
const partialResults = new WeakMap<object, CopyResult>();

/**
 * partialResultOf gives what a run that {@link copyImages} ended with `error` had done: images finished (pushed or
 * already present) keep their outcome, the others are `failed` with the stop's code; blob counts are those reached.
 * Undefined for an error that did not come from a run. `images` is empty when the run stopped before it knew them.
 */
export function partialResultOf(error: unknown): CopyResult | undefined {
  return typeof error === 'object' && error !== null ? partialResults.get(error) : undefined;
}

/**
 * copyImages copies every image of `source` into `destination`. Per-image failures are recorded in the result
 * (the other images go on); failures that concern everything (authentication, TLS, network, interruption) throw.
 * A failure that ends the run stops everything in flight at once (every request and backoff sleep gets the run's
 * abort) and is thrown only once all of it has settled, so nothing is sent after it; {@link partialResultOf} tells
 * what was done.
 */
export async function copyImages(source: StreamSource, destination: ImageDestination | undefined, options: CopyOptions): Promise<CopyResult> {
  const run = new CopyRun(source, destination, options);
  return run.run();
}

/** MAX_SETTLE_ROUNDS bounds the rounds of waiting for work in flight after a stop (work can start work). */
const MAX_SETTLE_ROUNDS = 1000;
/**
 * SETTLE_TIMEOUT_MS bounds the wait for work in flight after a stop. Everything in flight has the run's abort and ends
 * within moments (an upload session's cancel is bounded by CANCEL_TIMEOUT_MS of src/registry/upload.ts); this is a
 * safety net so a stopped run always returns.
 */
export const SETTLE_TIMEOUT_MS = 15_000;

class CopyRun {
  private readonly events: EventSink;
  /** The run's abort: fired by the caller's signal or by the first failure that ends the run; every call gets it. */
  private readonly stopper = new AbortController();
  private readonly signal: AbortSignal;
  /** The first failure that ended the run. */
  private stopError: unknown;
  /** Work that must settle before the run returns or throws. */
  private readonly inflight = new Set<Promise<unknown>>();
  private plans: PlannedImage[] | undefined;
  /** Set once the image count went out early (from the source, before planning). */
  private countShown = false;
  private readonly onOuterAbort = (): void => this.stop(abortError(this.options.signal));
  private readonly limit: ReturnType<typeof pLimit>;
  private readonly budget: ByteBudget;
  private readonly memoryBlobMax: number;
  private readonly started = Date.now();
  /** Repositories known to hold a blob (`''` for a destination with one blob store). */
  private readonly located = new Map<string, Set<string>>();
  /** HEAD results and in-flight writes per `repo@digest`. */
  private readonly ensured = new Map<string, Promise<void>>();
  /** Small blobs held in memory while their first upload is in flight (bounded by the byte budget). */
  private readonly memory = new Map<string, Uint8Array>();
  /** Blobs whose bytes did not verify. */
  private readonly badBlobs = new Map<string, MirrorError>();
  /** Blobs that failed for another per-blob reason. */
  private readonly failedBlobs = new Map<string, MirrorError>();
  /** Entry key of each blob seen in a stream, to read it again. */
  private readonly keyOf = new Map<string, string>();
  /** Entry keys of blobs whose bytes must be read from the stream again, and the repositories that need them. */
  private readonly needReread = new Map<string, Set<string>>();
  /** Uploads in flight per digest, so a second repository mounts instead of sending the bytes again. */
  private readonly uploading = new Map<string, Promise<void>>();
  /** Uploads of converted blobs (digest known only once written), settled before the catalog is built. */
  private readonly conversions: Promise<void>[] = [];
  /** Background uploads started while a stream is read. */
  private readonly background: Promise<void>[] = [];
  private readonly stats = { uploaded: 0, mounted: 0, skipped: 0, bytesUploaded: 0 };
  private passes = 0;
  private catalog: Catalog | undefined;

  constructor(
    private readonly source: StreamSource,
    private readonly dest: ImageDestination | undefined,
    private readonly options: CopyOptions,
  ) {
    this.events = options.events ?? noEvents;
    this.signal = this.stopper.signal;
    this.limit = pLimit(Math.max(1, options.jobs ?? DEFAULT_JOBS));
    this.budget = new ByteBudget(options.memoryBudget ?? DEFAULT_MEMORY_BUDGET);
    this.memoryBlobMax = options.memoryBlobMax ?? DEFAULT_MEMORY_BLOB_MAX;
  }

  async run(): Promise<CopyResult> {
    const outer = this.options.signal;
    if (outer?.aborted) this.stop(abortError(outer));
    else outer?.addEventListener('abort', this.onOuterAbort, { once: true });
    try {
      return await this.runStages();
    } catch (e) {
      this.stop(e);
      await this.settleAll();
      const err = this.stopError ?? e;
      if (typeof err === 'object' && err !== null) partialResults.set(err, this.partialResult(err));
      throw err;
    } finally {
      outer?.removeEventListener('abort', this.onOuterAbort);
    }
  }

  /**
   * stop ends the run at once: the run's abort fires, so requests in flight, backoff sleeps, queued work and the
   * source read all end; the first failure given is the one the run throws. Work in flight gets an INTERRUPTED
   * error, which nothing retries.
   */
  private stop(e: unknown): void {
    if (this.stopper.signal.aborted) return;
    this.stopError = e;
    const reason = isMirrorError(e) && e.code === 'INTERRUPTED' ? e : new MirrorError('INTERRUPTED', `stopped: ${errorMessage(e)}`, { cause: e });
    this.stopper.abort(reason);
  }

  /** keep tracks work the run must wait for before it returns or throws. */
  private keep<T>(p: Promise<T>): Promise<T> {
    this.inflight.add(p);
    const drop = (): void => {
      this.inflight.delete(p);
    };
    p.then(drop, drop);
    return p;
  }

  /** settleAll waits until nothing is in flight (bounded in rounds and by {@link SETTLE_TIMEOUT_MS}). */
  private async settleAll(): Promise<void> {
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

  /** partialResult is what a stopped run had done: finished images as they ended, the others failed with the stop. */
  private partialResult(err: object): CopyResult {
    const cause = isMirrorError(err) ? err : new MirrorError('INTERNAL', errorMessage(err));
    const notDone = new MirrorError(cause.code, `not finished: ${cause.message}`);
    return this.result((this.plans ?? []).map((p) => p.outcome ?? this.outcome(p, 'failed', notDone)));
  }

  private async runStages(): Promise<CopyResult> {
    const src = this.source;
    this.events({ type: 'phase', phase: 'read', detail: src.description });
    this.passes = 1;
    let catalog = await src.scan(
      { blob: (b) => this.onStreamBlob(b, undefined), flush: () => this.settleConversions() },
      { signal: this.signal, onSourceBytes: (bytes, total) => this.events({ type: 'source-bytes', bytes, total }) },
    );
    // Uploads of blobs whose digests were known may still be finishing: images that need them wait for them
    // (ensureBlob awaits the upload in flight) while the others are finished.
    const maxPasses = this.options.rereadPasses ?? DEFAULT_REREAD_PASSES;
    // Blobs cut halfway while the stream went by are read again before planning: a converted layer's digest, which
    // its manifest needs, is only known once it has been sent whole.
    for (let round = 0; this.needReread.size > 0 && round < maxPasses; round++) catalog = await this.rereadPass(src);
    this.catalog = catalog;

    const plans = catalog.images.map((img) => this.planImage(img, catalog));
    this.checkConflicts(plans);
    this.plans = plans;
    this.events({ type: 'plan', images: plans.filter((p) => !lostConflict(p)).length });
    if (this.options.dryRun || this.dest === undefined) {
      return this.result(plans.map((p) => this.outcome(p, p.error ? 'failed' : lostConflict(p) ? 'skipped-conflict' : 'planned', p.error)));
    }

    this.events({ type: 'phase', phase: 'finish' });
    let pending = plans.filter((p) => p.error === undefined && !lostConflict(p));
    for (const p of plans) if (p.error) this.fail(p, p.error);
    for (const p of plans) if (lostConflict(p)) p.outcome = this.outcome(p, 'skipped-conflict');
    for (let round = 0; pending.length > 0; round++) {
      const deferred: PlannedImage[] = [];
      await Promise.all(
        pending.map((p) =>
          this.keep(
            this.finishImage(p).then((r) => {
              if (r === 'deferred') deferred.push(p);
            }),
          ),
        ),
      );
      if (deferred.length === 0) break;
      if (round >= maxPasses) {
        for (const p of deferred) {
          this.fail(p, new MirrorError('NETWORK', `blobs of ${p.image.name} could not be uploaded after ${maxPasses} extra reads of the bundle`, { image: p.image.name }));
        }
        break;
      }
      this.catalog = await this.rereadPass(src);
      pending = deferred;
    }
    await this.settleBackground();
    await this.dest.commit({ signal: this.signal });
    return this.result(plans.map((p) => p.outcome ?? this.outcome(p, 'failed', new MirrorError('INTERNAL', 'image was not finished'))));
  }

  // ---------------------------------------------------------------- reading the stream

  private async onStreamBlob(b: StreamBlob, rereadTargets: Set<string> | undefined): Promise<void> {
    if (b.digest !== undefined) this.keyOf.set(b.digest, b.key);
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
        const bytes = await this.measure(body);
        b.resolved(bytes);
        return;
      }
      return;
    }
    if (b.digest !== undefined && (this.badBlobs.has(b.digest) || this.failedBlobs.has(b.digest))) return;

    const targets = rereadTargets ?? this.targetsOf(b);
    if (targets.size === 0) return;

    if (b.digest === undefined && b.knownAs !== undefined && rereadTargets === undefined) {
      // A converted blob written by an earlier run: present under its recorded digest means nothing to send.
      const known = b.knownAs;
      for (const repo of targets) {
        if (this.isLocated(repo, known.digest) || (await this.dest.hasBlob(repo, known.digest, { signal: this.signal }))) {
          this.locate(repo, known.digest);
          this.keyOf.set(known.digest, b.key);
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
        if (await this.dest.hasBlob(repo, digest, { signal: this.signal })) {
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

  /** track records an upload in flight for a digest until it settles. */
  private track(digest: string | undefined, job: Promise<void>): Promise<void> {
    this.keep(job);
    if (digest === undefined) {
      // A blob converted on the way: the source needs its digest before it can build the catalog.
      this.conversions.push(job);
      return job;
    }
    this.uploading.set(digest, job);
    const clear = (): void => {
      if (this.uploading.get(digest) === job) this.uploading.delete(digest);
    };
    job.then(clear, clear);
    return job;
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
      this.keyOf.set(r.digest, b.key);
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
        this.badBlob(b.digest, e);
        return;
      }
      if (isFatal(e)) {
        this.stop(e);
        throw e;
      }
      const err = isMirrorError(e) ? e : new MirrorError('REGISTRY', errorMessage(e), { cause: e, digest: b.digest });
      if (b.digest !== undefined) this.failedBlobs.set(b.digest, err);
      b.rejected?.(err);
      this.events({ type: 'warning', message: `blob ${b.digest ?? b.key} failed: ${errorMessage(err)}` });
    }
  }

  private badBlob(digest: string, e: MirrorError): void {
    this.badBlobs.set(digest, e);
    this.events({ type: 'warning', message: errorMessage(e) });
  }

  private async settleConversions(): Promise<void> {
    const results = await Promise.allSettled(this.conversions.splice(0));
    for (const r of results) if (r.status === 'rejected') throw r.reason;
  }

  private async settleBackground(): Promise<void> {
    // Background uploads record their own per-blob failures; a run-wide failure is re-thrown here.
    while (this.background.length > 0) {
      const batch = this.background.splice(0);
      const results = await Promise.allSettled(batch);
      for (const r of results) if (r.status === 'rejected') throw r.reason;
    }
  }

  private async measure(body: BlobBody): Promise<{ digest: string; size: number }> {
    const c = new DigestCounter();
    if (body.kind === 'bytes') c.update(body.data);
    else for await (const chunk of body.open()) c.update(chunk);
    return { digest: c.digest(), size: c.bytes };
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

  private repoKey(repo: string): string {
    return this.dest?.blobScope === 'global' ? '' : repo;
  }

  private isLocated(repo: string, digest: string): boolean {
    return this.located.get(digest)?.has(this.repoKey(repo)) ?? false;
  }

  private locate(repo: string, digest: string): void {
    let set = this.located.get(digest);
    if (!set) this.located.set(digest, (set = new Set()));
    set.add(this.repoKey(repo));
  }

  private blobEvent(digest: string, size: number, repository: string, action: 'uploaded' | 'mounted' | 'skipped'): void {
    if (action === 'skipped') this.stats.skipped++;
    this.events({ type: 'blob', digest, size, repository, action });
  }

  // ---------------------------------------------------------------- planning

  private planImage(image: SourceImage, catalog: Catalog): PlannedImage {
    const plan: PlannedImage = { image, dest: undefined, manifests: [], blobs: [], error: image.error };
    if (plan.error) return plan;
    const mapped = this.options.map(image);
    if (mapped instanceof MirrorError) {
      plan.error = mapped;
      return plan;
    }
    plan.dest = mapped;
    try {
      const blobs = new Map<string, Descriptor>();
      const seen = new Set<string>();
      // A new index made by choosing platforms is not in the catalog: its bytes are kept here.
      const made = new Map<string, Uint8Array>();
      const lookup = (d: string): Uint8Array | undefined => made.get(d) ?? catalog.bytes(d);
      let root = image.descriptor;
      if (this.options.platforms !== undefined && this.options.platforms.length > 0) {
        const chosen = selectPlatforms(image.descriptor, this.options.platforms, lookup, image.name);
        if (chosen.warning) this.events({ type: 'warning', message: chosen.warning });
        if (chosen.bytes) made.set(chosen.descriptor.digest, chosen.bytes);
        if (chosen.descriptor !== image.descriptor) plan.chosen = { descriptor: chosen.descriptor, converted: chosen.converted };
        root = chosen.descriptor;
      }
      const walk = (desc: Descriptor, depth: number): void => {
        if (depth > 8) throw new MirrorError('BAD_INPUT', `index nesting deeper than 8 levels at ${desc.digest}`, { image: image.name, digest: desc.digest });
        if (seen.has(desc.digest)) return;
        seen.add(desc.digest);
        if (seen.size > MAX_MANIFESTS_PER_IMAGE) throw new MirrorError('BAD_INPUT', `${image.name} has more than ${MAX_MANIFESTS_PER_IMAGE} manifests`, { image: image.name });
        const bytes = lookup(desc.digest);
        const problem = catalog.problem?.(desc.digest, desc.size);
        if (problem) throw problem;
        if (bytes === undefined) {
          throw new MirrorError('BAD_INPUT', `manifest ${desc.digest} of ${image.name} is missing from the bundle`, { image: image.name, digest: desc.digest });
        }
        verifyBytes(bytes, desc.digest, desc.size, { image: image.name, phase: 'read' });
        const parsed = parseManifest(bytes, desc.mediaType ?? catalog.mediaTypeOf(desc.digest), { image: image.name, digest: desc.digest });
        if (parsed.kind === 'index') {
          // An index exported without all its platforms: say which it lacks and what to do, not just "missing".
          const lacking = missingPlatforms(image.name, parsed.index, (d) => lookup(d) ?? (catalog.problem?.(d) ? bytes : undefined));
          if (lacking) throw lacking;
          for (const child of parsed.index.manifests) walk(child, depth + 1);
        } else {
          for (const b of blobDescriptors(parsed.manifest, (d) => catalog.has?.(d) ?? false)) {
            // A blob whose bytes are bad, or whose size is not the one declared here, fails the image now (a dry run says so too).
            const bad = catalog.problem?.(b.digest, b.size);
            if (bad) throw bad;
            if (!blobs.has(b.digest)) blobs.set(b.digest, b);
          }
        }
        plan.manifests.push({ digest: desc.digest, mediaType: parsed.mediaType, size: bytes.byteLength, platform: desc.platform, bytes });
      };
      walk(root, 0);
      plan.blobs = [...blobs.values()];
    } catch (e) {
      if (isFatal(e)) throw e;
      plan.error = isMirrorError(e) ? e : new MirrorError('BAD_INPUT', errorMessage(e), { image: image.name, cause: e });
    }
    return plan;
  }

  /**
   * checkConflicts applies the conflict policy to images that claim one destination reference with different
   * digests: with `fail` each of them fails, with `first` the first in bundle order keeps it and the others are held.
   */
  private checkConflicts(plans: PlannedImage[]): void {
    const decisions = settleConflicts(
      plans.map((p) => ({
        source: p.image.name,
        sourceRegistry: p.image.reference?.registry,
        destination: p.dest?.name ?? '',
        repository: p.dest?.repository ?? '',
        tag: p.dest?.tag,
        digest: p.chosen?.descriptor.digest ?? p.image.descriptor.digest,
        failed: p.error !== undefined,
      })),
      this.options.onConflict ?? DEFAULT_CONFLICT_POLICY,
    );
    for (const [i, d] of decisions) {
      const p = plans[i]!;
      p.conflict = d.conflict;
      if (d.error && !p.error) p.error = d.error;
      if (d.conflict.resolution === 'skipped') {
        this.events({ type: 'warning', message: `${p.image.name} not pushed: ${d.conflict.reference} goes to ${d.conflict.winner ?? 'no image'} (first in the bundle)` });
      }
    }
  }

  // ---------------------------------------------------------------- finishing: blobs into place, manifests, tags

  private async finishImage(p: PlannedImage): Promise<'done' | 'deferred' | 'failed'> {
    const dest = this.dest!;
    const target = p.dest!;
    const signal = this.signal;
    const root = p.manifests[p.manifests.length - 1]!;
    const done = (pushed: boolean): 'done' => {
      const status = pushed ? 'pushed' : 'skipped';
      p.outcome = this.outcome(p, status);
      this.events({ type: 'image', source: p.image.name, destination: target.name, digest: root.digest, status });
      return 'done';
    };
    try {
      // Already in place (the tag, or for a digest-only image the manifest, names this root): nothing to send.
      // A registry only accepts a manifest whose blobs and children it holds, so this covers the whole image.
      const rootRef = target.tag ?? root.digest;
      if ((await this.limit(() => dest.manifestDigest(target.repository, rootRef, { signal }))) === root.digest) {
        this.events({ type: 'manifest', reference: `${target.repository}${target.tag ? `:${target.tag}` : `@${root.digest}`}`, digest: root.digest, action: 'skipped' });
        if (target.tag === undefined && dest.blobScope === 'global') {
          await this.limit(() => dest.putManifest(target, root.digest, root.bytes, root.mediaType, { signal, root: true, descriptor: p.chosen?.descriptor ?? p.image.descriptor }));
        }
        return done(false);
      }
      const waits = p.blobs.map((b) => this.limit(() => this.ensureBlob(target.repository, b)));
      const results = await Promise.allSettled(waits);
      let deferred = false;
      for (const r of results) {
        if (r.status === 'rejected') {
          if (r.reason instanceof Deferred) deferred = true;
          else throw r.reason;
        }
      }
      if (deferred) return 'deferred';
      // Children first (by digest), then the root: by its tag when it has one (which also stores it by digest).
      for (const m of p.manifests.slice(0, -1)) {
        const have = await this.limit(() => dest.manifestDigest(target.repository, m.digest, { signal }));
        if (have === m.digest) continue;
        await this.limit(() => dest.putManifest(target, m.digest, m.bytes, m.mediaType, { signal }));
        this.events({ type: 'manifest', reference: `${target.repository}@${m.digest}`, digest: m.digest, action: 'pushed' });
      }
      const answer = await this.limit(() => dest.putManifest(target, rootRef, root.bytes, root.mediaType, { signal, root: true, descriptor: p.chosen?.descriptor ?? p.image.descriptor }));
      this.events({ type: 'manifest', reference: `${target.repository}${target.tag ? `:${target.tag}` : `@${root.digest}`}`, digest: root.digest, action: 'pushed' });
      // An artifact with a subject (an SBOM, a signature): listed in its subject's fallback tag where the registry
      // does not index subjects itself, as `mirror copy` does.
      const subject = subjectOf(root);
      if (subject !== undefined && !(answer && answer.subjectIndexed) && dest.registerReferrer !== undefined) {
        const entry = referrerEntry(root, { mediaType: root.mediaType, digest: root.digest, size: root.size });
        await this.registerFor(target.repository, subject, entry);
      }
      return done(true);
    } catch (e) {
      if (isFatal(e)) {
        this.stop(e);
        throw e;
      }
      this.fail(p, isMirrorError(e) ? e : new MirrorError('REGISTRY', errorMessage(e), { cause: e, image: p.image.name }));
      return 'failed';
    }
  }

  /** Fallback-tag merges in flight per `repo@subject`, one at a time. */
  private readonly referrerLocks = new Map<string, Promise<void>>();

  /** registerFor merges a referrer into its subject's fallback tag index, one merge per subject at a time. */
  private async registerFor(repository: string, subject: string, entry: Descriptor): Promise<void> {
    const dest = this.dest!;
    const key = `${repository}@${subject}`;
    const prior = this.referrerLocks.get(key) ?? Promise.resolve();
    const next = prior.catch(() => {}).then(() => this.limit(() => dest.registerReferrer!(repository, subject, entry, { signal: this.signal })));
    this.referrerLocks.set(key, next);
    try {
      await next;
    } finally {
      if (this.referrerLocks.get(key) === next) this.referrerLocks.delete(key);
    }
  }

  /** ensureBlob makes sure a repository holds a blob: present, mounted, or sent from memory. */
  private ensureBlob(repo: string, desc: Descriptor): Promise<void> {
    const key = `${this.repoKey(repo)}@${desc.digest}`;
    let p = this.ensured.get(key);
    if (!p) {
      p = this.ensureBlobOnce(repo, desc);
      this.ensured.set(key, p);
      // A deferred or failed attempt may be tried again in a later round.
      p.catch(() => this.ensured.delete(key));
    }
    return p;
  }

  private async ensureBlobOnce(repo: string, desc: Descriptor): Promise<void> {
    const dest = this.dest!;
    const d = desc.digest;
    const bad = this.badBlobs.get(d) ?? this.catalog?.problem?.(d, desc.size);
    if (bad) throw bad;
    if (this.isLocated(repo, d)) return;
    const inflight = this.uploading.get(d);
    if (inflight) {
      await inflight.catch(() => {});
      if (this.isLocated(repo, d)) return;
    }
    const from = [...(this.located.get(d) ?? [])].find((r) => r !== this.repoKey(repo));
    // With a repository of this registry known to hold it, mount at once: a mount of a blob the repository already
    // holds answers 201 too, so a HEAD first would only add a request.
    if (from === undefined && (await dest.hasBlob(repo, d, { signal: this.signal }))) {
      this.locate(repo, d);
      this.blobEvent(d, desc.size, repo, 'skipped');
      return;
    }
    const bytes = this.memory.get(d) ?? this.catalog?.bytes(d);
    let session: unknown;
    if (from !== undefined && dest.blobScope === 'repository') {
      let m = await dest.mountBlob(repo, d, from, { signal: this.signal });
      // distribution links a mounted blob under its sha256 digest only: a blob named by another digest (sha512) is
      // checked, and sent when the mount did not make it visible under that name.
      if (m.mounted && !d.startsWith('sha256:') && !(await dest.hasBlob(repo, d, { signal: this.signal }))) m = { mounted: false };
      if (m.mounted) {
        this.locate(repo, d);
        this.stats.mounted++;
        this.blobEvent(d, desc.size, repo, 'mounted');
        return;
      }
      session = m.session;
    }
    if (bytes !== undefined) {
      const send = async (): Promise<void> => {
        const r = await dest.putBlob(repo, { digest: d, size: desc.size }, { kind: 'bytes', data: bytes }, {
          signal: this.signal,
          session,
          onBytes: (n) => {
            this.stats.bytesUploaded += n;
            this.events({ type: 'bytes', bytes: n });
          },
        });
        this.locate(repo, r.digest);
        this.locate(repo, d);
        this.stats.uploaded++;
        this.blobEvent(d, desc.size, repo, 'uploaded');
      };
      return this.track(d, send());
    }
    if (session !== undefined) await dest.cancelSession(session).catch(() => {});
    const failed = this.failedBlobs.get(d);
    if (failed) throw failed;
    const key = this.keyOf.get(d);
    if (key !== undefined) {
      // The bytes went by in the stream; read them again for this repository.
      this.rereadLater(key, repo);
      throw new Deferred(d);
    }
    throw new MirrorError('BAD_INPUT', `blob ${d} is missing from the bundle`, { digest: d });
  }

  private rereadLater(key: string, repo: string): void {
    let set = this.needReread.get(key);
    if (!set) this.needReread.set(key, (set = new Set()));
    set.add(repo);
  }

  /** rereadPass reads the stream source again, sending only the blobs that still need their bytes. */
  private async rereadPass(src: StreamSource): Promise<Catalog> {
    const targetsByKey = new Map<string, Set<string>>(this.needReread);
    this.needReread.clear();
    const keys = new Set(targetsByKey.keys());
    this.passes++;
    this.events({ type: 'phase', phase: 'reread', detail: `${keys.size} blob(s)` });
    const catalog = await src.scan(
      {
        blob: async (b) => {
          const repos = targetsByKey.get(b.key);
          // Forget the blob's earlier location so it is uploaded, not mounted from a repository that lacks it.
          if (repos) await this.onStreamBlob(b, new Set([[...repos][0]!]));
        },
        flush: () => this.settleBackground(),
      },
      { signal: this.signal, only: keys, onSourceBytes: (bytes, total) => this.events({ type: 'source-bytes', bytes, total }) },
    );
    await this.settleBackground();
    return catalog;
  }

  // ---------------------------------------------------------------- results

  private fail(p: PlannedImage, e: MirrorError): void {
    p.outcome = this.outcome(p, 'failed', e);
    this.events({ type: 'image', source: p.image.name, destination: p.dest?.name ?? '', status: 'failed', error: errorMessage(e) });
  }

  private outcome(p: PlannedImage, status: ImageOutcome['status'], error?: MirrorError): ImageOutcome {
    const root = p.manifests[p.manifests.length - 1];
    return {
      source: p.image.name,
      destination: p.dest?.name,
      sourceReference: p.image.reference,
      destinationImage: p.dest ? { repository: p.dest.repository, tag: p.dest.tag } : undefined,
      conflict: p.conflict,
      digest: root?.digest ?? p.image.descriptor.digest,
      mediaType: root?.mediaType ?? p.image.descriptor.mediaType,
      status,
      error: error ? errorMessage(error) : undefined,
      errorCode: error?.code,
      converted: [p.image.converted, p.chosen?.converted].filter((c) => c !== undefined).join('; ') || undefined,
      children: p.manifests.slice(0, -1).map((m) => ({ digest: m.digest, mediaType: m.mediaType, platform: m.platform })),
      blobs: p.blobs.length,
      size: p.manifests.length === 0 ? undefined : p.blobs.reduce((n, b) => n + b.size, 0) + p.manifests.reduce((n, m) => n + m.size, 0),
    };
  }

  private result(images: ImageOutcome[]): CopyResult {
    return {
      images,
      blobs: {
        uploaded: this.stats.uploaded,
        mounted: this.stats.mounted,
        skipped: this.stats.skipped,
        failed: this.badBlobs.size + this.failedBlobs.size,
        bytesUploaded: this.stats.bytesUploaded,
      },
      passes: this.passes,
      durationMs: Date.now() - this.started,
    };
  }
}

/** watchEnd passes chunks through and calls `done` when the source has ended (or failed, or was left). */
async function* watchEnd(source: AsyncIterable<Uint8Array>, done: () => void): AsyncGenerator<Uint8Array> {
  try {
    yield* source;
  } finally {
    done();
  }
}
