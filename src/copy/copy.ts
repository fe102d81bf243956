/**
 * The copy engine, in three stages over a random-access source:
 * - *plan* reads manifests only: resolve the source name, HEAD the destination and skip an unchanged image before any
 *   blob is touched, select platforms, walk the manifest graph (a visited set and a depth limit), find referrers and
 *   two images claiming one destination tag;
 * - *transfer* hands every blob to one {@link BlobScheduler} (single flight per digest, mounts within a registry);
 * - *commit* writes children before parents, the tag last, and referrers after their subject (the referrers API where
 *   the destination indexes subjects, else merged into the fallback tag).
 * Jobs come in as an async iterable and outcomes go out as they finish, so a plan of 10,000 tags never sits in memory:
 * at most `jobs` images are planned and `jobs` written at once, and at most `ahead` more wait planned (a write slot
 * takes the largest waiting image first). A destination that must see metadata before blobs (a tar stream: its
 * capabilities say `writeOrder: 'metadata-first'`) is served differently: every image is planned first, then every
 * manifest is put, then the blobs (see `runMetadataFirst`); its plans are held in memory, which that order needs.
 * A failure that concerns the whole run (authentication, TLS, the network after retries, an interrupt) stops
 * everything in flight at once and is thrown; any other failure fails its image only.
 */
import { setMaxListeners } from 'node:events';
import pLimit from 'p-limit';
import { errorMessage, isMirrorError, MirrorError } from '../errors/index.js';
import { type EventSink, noEvents } from '../events/index.js';
import { sha256Digest } from '../oci/digest.js';
import { blobDescriptors, type Descriptor, type ImageManifest, layersAgainstConfig, layersMismatchError, parseManifest, type Platform } from '../oci/manifest.js';
import { isIndexMediaType, MediaType } from '../oci/media-types.js';
import type { ImageReference } from '../reference/reference.js';
import type { DestinationCapabilities, DestinationImage, ImageDestination, ImageName, ImageSource, ManifestBytes, Referrer } from '../transport/types.js';
import { collect } from './budget.js';
import { byHeight, waves } from './order.js';
import { formatPlatform, platformMatches, type PlatformSpec } from './platform.js';
import type { ImageOutcome, ManifestNode } from './result.js';
import { BlobScheduler, type TransferStats } from './transfer.js';
import { parseJson } from '../oci/json.js';

/** DEFAULT_COPY_JOBS is how many images are planned and committed at once. */
export const DEFAULT_COPY_JOBS = 4;
/** MAX_MANIFEST_DEPTH bounds index nesting. */
export const MAX_MANIFEST_DEPTH = 8;
/** MAX_MANIFESTS_PER_IMAGE bounds the manifests one image may have (an index fanning out without end is refused). */
export const MAX_MANIFESTS_PER_IMAGE = 4096;
/** MAX_CHECKED_CONFIG is the largest image config read to check its layer count (a larger one is copied unchecked). */
const MAX_CHECKED_CONFIG = 4 * 1024 * 1024;
/** COMMIT_CONCURRENCY bounds the manifests of one height written at once (the platform manifests of an index). */
export const COMMIT_CONCURRENCY = 8;

/** CopyJob is one image to copy. */
export interface CopyJob {
  /** Where the image is read from. */
  source: ImageSource;
  /** The image in the source. */
  image: ImageName;
  /** Its name for messages and reports (`quay.io/team/app:1.0`, `oci:./dir:app`). */
  name: string;
  /** The structured source reference, when the source has registry names (for reports). */
  reference?: ImageReference | undefined;
  /** Where it goes. */
  destination: DestinationImage;
  /** Platforms for this job alone (`sync` entries choose their own); undefined: the run's `platforms`. */
  platforms?: readonly PlatformSpec[] | undefined;
  /** Referrers for this job alone; undefined: the run's `referrers`. */
  referrers?: boolean | undefined;
  /**
   * The source's descriptor of the image's root (its annotations, platform, artifactType), for a destination that
   * lists its images with descriptors (an OCI layout's index.json): the root is put with it, and an unchanged image
   * without a tag is recorded there again when the destination has one blob store (its manifest may be held only as
   * another image's child). Default: none.
   */
  descriptor?: Descriptor | undefined;
}

/** CopyEngineOptions tune {@link copyImagesFrom}. */
export interface CopyEngineOptions {
  /** Images planned and committed at once. Default {@link DEFAULT_COPY_JOBS}. */
  jobs?: number | undefined;
  /**
   * Images held planned beyond the `jobs` being written, the one with the most bytes to place written first. Their
   * manifests are held in memory. Default: 0 (an image is written as soon as it is planned, in the order planned).
   */
  ahead?: number | undefined;
  /** Blob operations (HEAD, mount, upload) at once. Default: `jobs`. */
  transfers?: number | undefined;
  /**
   * Platforms to copy out of multi-platform images. Undefined: an index is copied whole, digest kept. One platform:
   * that manifest alone goes under the tag. Several: a new index of just those (its digest differs; the outcome says so).
   */
  platforms?: readonly PlatformSpec[] | undefined;
  /** Copy an index without its platform manifests (skopeo's `--multi-arch index-only`). Default: false. */
  indexOnly?: boolean | undefined;
  /** Copy referrers (signatures, SBOMs, attestations) after their subject. Default: true. */
  referrers?: boolean | undefined;
  /** Plan only: resolve, compare with the destination, walk manifests; write nothing. Default: false. */
  dryRun?: boolean | undefined;
  /** Two images claiming one destination reference: `fail` the later one (default), or keep the `first`. */
  onConflict?: 'fail' | 'first' | undefined;
  /** What a conflict's message says to do, in the caller's own terms. Default: push's and copy's flags. */
  conflictHint?: string | undefined;
  /** Blobs already at the destination, by digest: the repositories holding them (a bundle's first pass placed them). */
  located?: ReadonlyMap<string, ReadonlySet<string>> | undefined;
  /**
   * Tells whether a failure stops the whole run (everything in flight aborted, the error thrown) rather than failing
   * its image alone. Default: {@link isFatal} (authentication, TLS, the network after retries, an interrupt). A sync
   * narrows it: a source registry that is down fails its own images, the others go on.
   */
  runWide?: ((e: unknown) => boolean) | undefined;
  events?: EventSink | undefined;
  signal?: AbortSignal | undefined;
}

/** CopyOutcome is what happened to one job. */
export interface CopyOutcome extends ImageOutcome {
  /** The job. */
  job: CopyJob;
  /** Referrers copied (or found present) with it. */
  referrers: number;
  /** Bytes uploaded for this image's blobs. */
  bytes: number;
  /** Seconds from planning to commit. */
  seconds: number;
}

/** CopyRunSummary is what a whole run did, once its outcomes have all been read. */
export interface CopyRunSummary {
  blobs: TransferStats & { failed: number };
  durationMs: number;
}

/** FATAL_CODES are error codes that stop the whole run instead of failing one image. */
const FATAL_CODES = new Set(['AUTH', 'TLS', 'INTERRUPTED', 'NETWORK', 'USAGE']);

/** isFatal tells whether an error concerns the whole run. */
export function isFatal(e: unknown): boolean {
  return isMirrorError(e) && FATAL_CODES.has(e.code) && (e as { streamConsumed?: boolean }).streamConsumed !== true;
}

/** Plan is one image (or referrer) ready to be written. */
interface Plan {
  job: CopyJob;
  /** Manifests to write, children first, the root last. */
  manifests: ManifestNode[];
  /** Distinct blobs of all of them. */
  blobs: Descriptor[];
  /** What changed on the way (a platform selection). */
  converted?: string | undefined;
  /** Referrers to write after the root. */
  referrers: ReferrerPlan[];
  /** Set for an image already at the destination whose referrers still have to be written (metadata-first runs). */
  skipped?: Omit<CopyOutcome, 'job' | 'seconds' | 'bytes'> | undefined;
}

/** Slot is one job, from planning to its outcome. */
interface Slot {
  job: CopyJob;
  t0: number;
  plan?: Plan | undefined;
}

/** ReferrerPlan is a referrer and its own manifests and blobs. */
interface ReferrerPlan {
  referrer: Referrer;
  subject: string;
  /** Already at the destination (listed for its subject there, or its tag points at it): nothing is written. */
  present: boolean;
  /** Its manifests, children first (empty when present). */
  manifests: ManifestNode[];
  blobs: Descriptor[];
}

/** MAX_REFERRER_DEPTH bounds referrers of referrers (a signature of an image's SBOM is at depth 2). */
export const MAX_REFERRER_DEPTH = 4;
/** MAX_REFERRERS_PER_IMAGE bounds the referrers one image brings, at every depth together. */
export const MAX_REFERRERS_PER_IMAGE = 1024;

/** SKIPPABLE_REFERRER_CODES are failures that leave one referrer behind (with a warning) rather than fail its image. */
const SKIPPABLE_REFERRER_CODES = new Set(['NOT_FOUND', 'BAD_INPUT', 'UNSUPPORTED', 'DIGEST_MISMATCH']);

/**
 * subjectOf gives the digest a manifest names as its `subject` (an SBOM, a signature), or undefined. Bytes that do not
 * parse have none (they were verified and parsed before, this only reads the field).
 */
export function subjectOf(node: Pick<ManifestNode, 'bytes' | 'mediaType' | 'digest'>): string | undefined {
  // Most manifests have none: not parsed again for that.
  if (!Buffer.from(node.bytes.buffer, node.bytes.byteOffset, node.bytes.byteLength).includes('"subject"')) return undefined;
  try {
    const parsed = parseManifest(node.bytes, node.mediaType, { digest: node.digest });
    return (parsed.kind === 'index' ? parsed.index.subject : parsed.manifest.subject)?.digest;
  } catch {
    return undefined;
  }
}

/**
 * referrerEntry is how a referrer is listed for its subject in a fallback tag index: `artifactType` from the manifest
 * (else an image manifest's config media type) and its annotations, as the referrers API lists them; what the source
 * listed fills what the manifest does not say.
 */
export function referrerEntry(top: ManifestNode, listed: Descriptor): Descriptor {
  const out: Descriptor = { mediaType: top.mediaType, digest: top.digest, size: top.size };
  let doc: { artifactType?: unknown; config?: { mediaType?: unknown }; annotations?: unknown } = {};
  try {
    const v = parseJson(top.bytes) as unknown;
    if (typeof v === 'object' && v !== null) doc = v;
  } catch {
    // Not JSON: the source's listing is all there is.
  }
  const artifactType =
    typeof doc.artifactType === 'string' && doc.artifactType !== '' ? doc.artifactType : typeof doc.config?.mediaType === 'string' ? doc.config.mediaType : listed.artifactType;
  if (artifactType !== undefined) out.artifactType = artifactType;
  const annotations = typeof doc.annotations === 'object' && doc.annotations !== null && !Array.isArray(doc.annotations) ? (doc.annotations as Record<string, string>) : listed.annotations;
  if (annotations !== undefined) out.annotations = annotations;
  return out;
}

/** MANIFEST_CACHE_BYTES bounds the manifests a run keeps after reading them (verified bytes, named by their digest). */
export const MANIFEST_CACHE_BYTES = 4 * 1024 * 1024;

/**
 * ManifestCache keeps a run's manifest reads by source, repository and digest: a read in flight is shared, and a read
 * manifest is kept, least recently used first out, while the kept bytes stay within `maxBytes` (a digest names its
 * bytes for good, so a kept manifest is never stale). A failed read is not kept.
 */
export class ManifestCache {
  private readonly entries = new Map<string, { read: Promise<ManifestBytes>; size: number }>();
  private readonly ids = new WeakMap<ImageSource, number>();
  private nextId = 0;
  private bytes = 0;

  constructor(private readonly maxBytes: number) {}

  /** put holds a manifest read otherwise (by tag), so the next `get` of its digest does not read it again. */
  put(source: ImageSource, repository: string, manifest: ManifestBytes): void {
    void this.get(source, repository, manifest.digest, () => Promise.resolve(manifest));
  }

  /** get gives the manifest `digest` of `repository` at `source`, from `read()` only when not read (or being read) already. */
  get(source: ImageSource, repository: string, digest: string, read: () => Promise<ManifestBytes>): Promise<ManifestBytes> {
    let id = this.ids.get(source);
    if (id === undefined) this.ids.set(source, (id = this.nextId++));
    const key = `${id}\n${repository}@${digest}`;
    const hit = this.entries.get(key);
    if (hit !== undefined) {
      // Most recently used last.
      this.entries.delete(key);
      this.entries.set(key, hit);
      return hit.read;
    }
    const entry = { read: read(), size: 0 };
    this.entries.set(key, entry);
    entry.read.then(
      (m) => {
        if (this.entries.get(key) !== entry) return;
        entry.size = m.bytes.byteLength;
        this.bytes += entry.size;
        for (const [k, e] of this.entries) {
          if (this.bytes <= this.maxBytes) break;
          if (e.size === 0) continue; // still being read
          this.entries.delete(k);
          this.bytes -= e.size;
        }
      },
      () => {
        if (this.entries.get(key) === entry) this.entries.delete(key);
      },
    );
    return entry.read;
  }
}

/** Ref names a destination reference for messages: `repo:tag` or `repo@digest`. */
function destRef(repo: string, tag: string | undefined, digest: string): string {
  return tag !== undefined ? `${repo}:${tag}` : `${repo}@${digest}`;
}

/**
 * copyImagesFrom copies each job's image into `destination`, yielding outcomes as images finish. The run's totals
 * are in `summary()` once the iteration has ended. Failures that concern everything throw out of the iteration.
 */
export function copyImagesFrom(
  jobs: AsyncIterable<CopyJob> | Iterable<CopyJob>,
  destination: ImageDestination,
  options: CopyEngineOptions = {},
): { outcomes: AsyncGenerator<CopyOutcome, void, undefined>; summary: () => CopyRunSummary } {
  const run = new CopyEngine(destination, options);
  return { outcomes: run.run(jobs), summary: () => run.summary() };
}

class CopyEngine {
  private readonly events: EventSink;
  private readonly abort = new AbortController();
  private readonly signal: AbortSignal;
  private readonly caps: DestinationCapabilities;
  private readonly scheduler: BlobScheduler;
  private readonly jobs: number;
  /** Images held planned beyond those being written. */
  private readonly ahead: number;
  private readonly started = Date.now();
  /** Destination references claimed in this run: what digest and which source. */
  private readonly claims = new Map<string, { digest: string; name: string }>();
  /** Fallback-tag merges in flight per subject, one at a time. */
  private readonly referrerLocks = new Map<string, Promise<void>>();
  private failedBlobs = 0;
  /** The destination wants every manifest before any blob (and this run writes). */
  private readonly metadataFirst: boolean;
  /** Referrers are looked for: asked for, and the destination can hold them. */
  private readonly wantReferrers: boolean;
  /** Bytes uploaded by each job in flight. */
  private readonly sent = new WeakMap<CopyJob, { bytes: number }>();
  /** Manifests read in this run (and reads in flight), so tags of one image share one read: see {@link ManifestCache}. */
  private readonly manifestCache = new ManifestCache(MANIFEST_CACHE_BYTES);

  constructor(
    private readonly dest: ImageDestination,
    private readonly options: CopyEngineOptions,
  ) {
    this.events = options.events ?? noEvents;
    if (options.signal !== undefined) {
      const outer = options.signal;
      if (outer.aborted) this.abort.abort(outer.reason);
      else outer.addEventListener('abort', () => this.abort.abort(outer.reason), { once: true });
    }
    this.signal = this.abort.signal;
    // Every request in flight listens on it: with many images at once that is more than Node's default of 10.
    setMaxListeners(0, this.signal);
    this.caps = dest.capabilities ?? { blobScope: dest.blobScope, writeOrder: 'blobs-first', parallelBlobWrites: true };
    this.jobs = Math.max(1, options.jobs ?? DEFAULT_COPY_JOBS);
    this.ahead = Math.max(0, options.ahead ?? 0);
    this.metadataFirst = this.caps.writeOrder === 'metadata-first' && !options.dryRun;
    this.wantReferrers = options.referrers !== false && this.caps.referrers !== false;
    this.scheduler = new BlobScheduler(dest, this.caps, {
      concurrency: this.caps.parallelBlobWrites ? Math.max(1, options.transfers ?? this.jobs) : 1,
      events: this.events,
      signal: this.signal,
      located: options.located,
    });
  }

  /** wantsReferrers tells whether a job's referrers travel: its own choice (a sync entry's), else the run's. */
  private wantsReferrers(job: CopyJob): boolean {
    return job.referrers === undefined ? this.wantReferrers : job.referrers && this.caps.referrers !== false;
  }

  summary(): CopyRunSummary {
    return { blobs: { ...this.scheduler.stats, failed: this.failedBlobs }, durationMs: Date.now() - this.started };
  }

  /**
   * run takes jobs as they come and yields each outcome as it is known. At most `jobs` images are planned at once and
   * at most `jobs` are written at once; with `ahead`, up to that many more images wait planned, and a free write slot
   * takes the one with the most bytes still to place (the largest first: a long transfer started late is what keeps
   * the others waiting at the end of a run). Without it, an image is written as soon as it is planned.
   */
  async *run(jobs: AsyncIterable<CopyJob> | Iterable<CopyJob>): AsyncGenerator<CopyOutcome, void, undefined> {
    if (this.metadataFirst) {
      yield* this.runMetadataFirst(jobs);
      return;
    }
    const source: AsyncIterator<CopyJob> | Iterator<CopyJob> = Symbol.asyncIterator in jobs ? jobs[Symbol.asyncIterator]() : jobs[Symbol.iterator]();
    const window = this.jobs + this.ahead;
    const planning = new Set<Promise<void>>();
    const writing = new Set<Promise<void>>();
    const waiting: { slot: Slot; plan: Plan }[] = [];
    const ready: CopyOutcome[] = [];
    let fatal: unknown;
    let pulling = false;
    let exhausted = false;
    let pullError: { error: unknown } | undefined;
    // Resolved whenever something changes (a job pulled, a plan or a write done); the loop then looks again.
    let wake!: () => void;
    let changed = new Promise<void>((r) => (wake = r));
    const notify = (): void => {
      wake();
      changed = new Promise<void>((r) => (wake = r));
    };
    const stopRun = (e: unknown): void => {
      // A failure of the whole run: stop everything in flight now, report it once the others have stopped.
      if (fatal === undefined) fatal = e;
      this.abort.abort(e);
    };
    const track = (set: Set<Promise<void>>, task: Promise<void>): void => {
      const tracked = task.catch(stopRun).finally(() => {
        set.delete(tracked);
        notify();
      });
      set.add(tracked);
    };
    const startWrite = (slot: Slot, plan: Plan): void => {
      track(writing, this.writeOne(slot, plan).then((o) => void ready.push(o)));
    };
    const startPlan = (job: CopyJob): void => {
      const slot: Slot = { job, t0: Date.now() };
      track(
        planning,
        this.planOne(slot).then((r) => {
          if ('outcome' in r) ready.push(r.outcome);
          else waiting.push({ slot, plan: r.plan });
        }),
      );
    };
    const pull = (): void => {
      pulling = true;
      Promise.resolve(source.next()).then(
        (r) => {
          pulling = false;
          if (r.done) exhausted = true;
          else if (fatal === undefined && !this.signal.aborted) startPlan(r.value);
          notify();
        },
        (e: unknown) => {
          // The jobs themselves failed (a sync's plan stopped): what is in flight stops too.
          pulling = false;
          exhausted = true;
          pullError = { error: e };
          if (planning.size + writing.size > 0) this.abort.abort(new MirrorError('INTERRUPTED', 'copy stopped'));
          notify();
        },
      );
    };
    const stopped = (): boolean => fatal !== undefined || pullError !== undefined || this.signal.aborted;
    try {
      for (;;) {
        // Taken before the state is looked at: a change from here on (one may come while an outcome is handed out
        // below) wakes the wait at the end of this turn instead of being missed.
        const next = changed;
        while (!stopped() && writing.size < this.jobs && waiting.length > 0) {
          const chosen = this.largest(waiting);
          startWrite(chosen.slot, chosen.plan);
        }
        if (!stopped() && !exhausted && !pulling && planning.size < this.jobs && planning.size + waiting.length + writing.size < window) pull();
        yield* ready.splice(0);
        if (planning.size === 0 && writing.size === 0 && !pulling && (exhausted || stopped())) break;
        await next;
      }
    } finally {
      if (planning.size + writing.size > 0 || pulling) {
        // The consumer stopped early (or threw): stop the rest.
        this.abort.abort(new MirrorError('INTERRUPTED', 'copy stopped'));
        await Promise.allSettled([...planning, ...writing]);
      }
      if (!exhausted) await Promise.resolve(source.return?.(undefined)).catch(() => {});
    }
    if (pullError !== undefined) throw pullError.error;
    if (fatal !== undefined) throw fatal;
    if (this.signal.aborted) throw this.signal.reason instanceof Error ? this.signal.reason : new MirrorError('INTERRUPTED', 'interrupted');
    yield* ready.splice(0);
  }

  /**
   * largest takes out of `waiting` the plan with the most blob bytes still to send: not held by its destination
   * repository, nor being placed already (another tag of the same image would only wait for that transfer, holding a
   * write slot). The first of equals.
   */
  private largest(waiting: { slot: Slot; plan: Plan }[]): { slot: Slot; plan: Plan } {
    let best = 0;
    let most = -1;
    for (let i = 0; i < waiting.length; i++) {
      const { plan } = waiting[i]!;
      const repo = plan.job.destination.repository;
      let bytes = 0;
      for (const b of plan.blobs) if (!this.scheduler.holds(repo, b.digest) && !this.scheduler.inFlight(b.digest)) bytes += b.size;
      if (bytes > most) {
        most = bytes;
        best = i;
      }
    }
    return waiting.splice(best, 1)[0]!;
  }

  /** planOne plans a job: an unchanged, failed or dry-run image comes back as its outcome; run-wide failures throw. */
  private async planOne(slot: Slot): Promise<{ plan: Plan } | { outcome: CopyOutcome }> {
    const { job } = slot;
    const bytes0 = this.scheduler.stats.bytesUploaded;
    // Bytes this image's own uploads send (other images' uploads run at the same time).
    this.sent.set(job, { bytes: 0 });
    try {
      const plan = await this.plan(job);
      if ('status' in plan) return { outcome: this.finish(slot, plan, bytes0) };
      if (this.options.dryRun) return { outcome: this.finish(slot, this.outcomeOf(plan, 'planned'), bytes0) };
      return { plan };
    } catch (e) {
      return { outcome: this.failed(slot, e, bytes0) };
    }
  }

  /** writeOne writes a planned image: transfer, then commit. Per-image failures become a failed outcome; run-wide ones throw. */
  private async writeOne(slot: Slot, plan: Plan): Promise<CopyOutcome> {
    const bytes0 = this.scheduler.stats.bytesUploaded;
    try {
      await this.write(plan);
      return this.finish(slot, this.outcomeOf(plan, 'pushed'), bytes0);
    } catch (e) {
      return this.failed(slot, e, bytes0);
    }
  }

  /** finish completes an outcome (time; the bytes of the image's own uploads, else those uploaded since `bytes0`) and reports it. */
  private finish(slot: Slot, o: Omit<CopyOutcome, 'job' | 'seconds' | 'bytes'>, bytes0: number): CopyOutcome {
    const { job } = slot;
    const bytes = this.sent.get(job)?.bytes ?? this.scheduler.stats.bytesUploaded - bytes0;
    const out: CopyOutcome = { ...o, job, seconds: (Date.now() - slot.t0) / 1000, bytes };
    this.events({ type: 'image', source: job.name, destination: job.destination.name, digest: out.digest, status: out.status, error: out.error });
    return out;
  }

  /** failed turns a per-image failure into its outcome; a failure of the whole run (or after an abort) is thrown. */
  private failed(slot: Slot, e: unknown, bytes0: number): CopyOutcome {
    const { job } = slot;
    const runWide = (this.options.runWide ?? isFatal)(e);
    if (runWide || this.signal.aborted) throw this.signal.aborted && !runWide ? (this.signal.reason ?? e) : e;
    const err = isMirrorError(e) ? e : new MirrorError('REGISTRY', errorMessage(e), { cause: e, image: job.name });
    return this.finish(
      slot,
      {
        source: job.name,
        destination: job.destination.name,
        digest: undefined,
        mediaType: undefined,
        status: 'failed',
        error: errorMessage(err),
        errorCode: err.code,
        children: [],
        blobs: 0,
        referrers: 0,
      },
      bytes0,
    );
  }

  /**
   * runMetadataFirst serves a destination that must see metadata before blobs (a tar stream): every job is planned
   * first (`jobs` at a time; the plans are held), then every manifest is put — each image's, children first, then its
   * referrers' — and only then the blobs, image by image. Failed and unchanged images are reported once planning is
   * over, the others as their blobs are placed.
   */
  private async *runMetadataFirst(jobs: AsyncIterable<CopyJob> | Iterable<CopyJob>): AsyncGenerator<CopyOutcome, void, undefined> {
    const limit = pLimit(this.jobs);
    const slots: Slot[] = [];
    const early: CopyOutcome[] = [];
    const tasks: Promise<void>[] = [];
    let fatal: unknown;
    const stop = (e: unknown): void => {
      if (fatal === undefined) fatal = e;
      this.abort.abort(e);
    };
    for await (const job of jobs) {
      if (fatal !== undefined || this.signal.aborted) break;
      const slot: Slot = { job, t0: Date.now() };
      slots.push(slot);
      const task = limit(async () => {
        if (this.signal.aborted) return;
        try {
          const plan = await this.plan(job);
          if ('status' in plan) early.push(this.finish(slot, plan, this.scheduler.stats.bytesUploaded));
          else slot.plan = plan;
        } catch (e) {
          early.push(this.failed(slot, e, this.scheduler.stats.bytesUploaded));
        }
      }).catch(stop);
      tasks.push(task);
    }
    await Promise.all(tasks);
    if (fatal !== undefined) throw fatal;
    if (this.signal.aborted) throw this.signal.reason instanceof Error ? this.signal.reason : new MirrorError('INTERRUPTED', 'interrupted');
    yield* early;
    const signal = this.signal;
    for (const slot of slots) {
      const plan = slot.plan;
      if (plan === undefined) continue;
      try {
        await this.putImageManifests(plan);
        for (const r of plan.referrers) await this.putReferrerManifests(slot.job, r);
      } catch (e) {
        slot.plan = undefined;
        yield this.failed(slot, e, this.scheduler.stats.bytesUploaded);
      }
    }
    for (const slot of slots) {
      const plan = slot.plan;
      if (plan === undefined) continue;
      const bytes0 = this.scheduler.stats.bytesUploaded;
      let outcome: CopyOutcome;
      try {
        await this.placeBlobs(slot.job, [...plan.blobs, ...plan.referrers.flatMap((r) => r.blobs)]);
        outcome = this.finish(slot, this.outcomeOf(plan, plan.skipped ? 'skipped' : 'pushed'), bytes0);
      } catch (e) {
        outcome = this.failed(slot, e, bytes0);
      }
      yield outcome;
    }
    if (signal.aborted) throw signal.reason instanceof Error ? signal.reason : new MirrorError('INTERRUPTED', 'interrupted');
  }

  // ---------------------------------------------------------------- plan

  /** plan reads manifests only; an unchanged image comes back as its (skipped) outcome. */
  private async plan(job: CopyJob): Promise<Plan | Omit<CopyOutcome, 'job' | 'seconds' | 'bytes'>> {
    const { source, image, destination: target } = job;
    const signal = this.signal;
    const platforms = job.platforms ?? this.options.platforms;
    const selecting = platforms !== undefined && platforms.length > 0;
    const comparing = !selecting && !this.options.indexOnly;
    // A tag the destination most likely lacks is read at once (its digest is that of the bytes): the image is about
    // to be copied, and a HEAD and then a GET would take two requests.
    const readNow =
      comparing && image.tag !== undefined && image.digest === undefined && target.tag !== undefined && source.resolveRead !== undefined && (await this.dest.likelyMissing?.(target.repository, target.tag)) === true;
    // A destination tag is asked for while the source resolves (one round trip per image instead of two).
    const tagged = comparing && target.tag !== undefined ? this.dest.manifestDigest(target.repository, target.tag, { signal }) : undefined;
    tagged?.catch(() => {});
    let root: Descriptor;
    if (readNow) {
      const read = await source.resolveRead!(image, { signal });
      root = read.descriptor;
      if (source.manifestsInMemory !== true) this.manifestCache.put(source, image.repository, read.manifest);
    } else root = await source.resolve(image, { signal });
    // Unchanged at the destination: nothing else is read (the referrers of an unchanged image still travel).
    if (comparing) {
      const have = await (tagged ?? this.dest.manifestDigest(target.repository, target.tag ?? root.digest, { signal }));
      if (have === root.digest) {
        const referrers = this.wantsReferrers(job) ? await this.referrerPlans(job, root.digest) : [];
        this.claim(job, root.digest);
        this.events({ type: 'manifest', reference: destRef(target.repository, target.tag, root.digest), digest: root.digest, action: 'skipped' });
        if (job.descriptor !== undefined && target.tag === undefined && this.caps.blobScope === 'global' && !this.options.dryRun) {
          const top = await this.fetch(source, image.repository, root);
          await this.dest.putManifest(target, top.digest, top.bytes, top.mediaType, { signal, root: true, descriptor: job.descriptor });
        }
        return this.skippedWith(job, referrers, {
          source: job.name,
          destination: target.name,
          digest: root.digest,
          mediaType: root.mediaType,
          status: 'skipped',
          children: [],
          blobs: 0,
          referrers: referrers.length,
        });
      }
    }
    const top = await this.fetch(source, image.repository, root);
    let rootNode = top;
    // A manifest the source made itself (a docker archive's) is one of mirror's digests: the outcome says so.
    let converted: string | undefined = source.converted?.(top.digest);
    let children: Descriptor[] | undefined;
    if (isIndexMediaType(top.mediaType) && (selecting || this.options.indexOnly)) {
      const parsed = parseManifest(top.bytes, top.mediaType, { image: job.name, digest: top.digest });
      if (parsed.kind !== 'index') throw new MirrorError('BAD_INPUT', `${job.name} is not an index`, { image: job.name });
      if (this.options.indexOnly) children = [];
      else {
        const all = parsed.index.manifests;
        const chosen = all.filter((d) => platforms!.some((p) => platformMatches(p, d.platform)));
        const missing = platforms!.filter((p) => !all.some((d) => platformMatches(p, d.platform)));
        if (chosen.length === 0 || missing.length > 0) {
          const has = all.map((d) => formatPlatform(d.platform ?? {})).join(', ');
          throw new MirrorError('NOT_FOUND', `${job.name} has no ${missing.map(formatPlatform).join(', ') || 'matching'} platform (it has ${has})`, { image: job.name });
        }
        if (chosen.length === all.length) {
          // Every platform wanted: the index itself, digest kept.
        } else if (chosen.length === 1) {
          rootNode = await this.fetch(source, image.repository, chosen[0]!);
          converted = `platform ${formatPlatform(chosen[0]!.platform ?? {})} of ${top.digest} copied alone (skopeo's default without --all)`;
        } else {
          const bytes = Buffer.from(JSON.stringify({ ...(parseJson(top.bytes) as Record<string, unknown>), manifests: chosen }));
          rootNode = { digest: sha256Digest(bytes), mediaType: top.mediaType, size: bytes.byteLength, bytes, platform: undefined };
          converted = `an index of ${chosen.length} of the ${all.length} platforms was written: digest ${rootNode.digest} instead of ${top.digest}`;
        }
      }
      const have = await this.dest.manifestDigest(target.repository, target.tag ?? rootNode.digest, { signal });
      if (have === rootNode.digest) {
        this.claim(job, rootNode.digest);
        const referrers = this.wantsReferrers(job) ? await this.referrerPlans(job, rootNode.digest) : [];
        return this.skippedWith(job, referrers, { source: job.name, destination: target.name, digest: rootNode.digest, mediaType: rootNode.mediaType, status: 'skipped', children: [], blobs: 0, referrers: referrers.length, converted });
      }
    }
    this.claim(job, rootNode.digest);
    // The referrers are looked for while the image's manifests are read: neither waits for the other.
    const [{ manifests, blobs }, referrers] = await Promise.all([
      this.walk(job, rootNode, children),
      this.wantsReferrers(job) ? this.referrerPlans(job, rootNode.digest) : [],
    ]);
    return { job, manifests, blobs, converted, referrers };
  }

  /**
   * skippedWith finishes planning an image already at the destination: its referrers still travel, written now, or
   * (metadata-first) returned as a plan of referrers only, to be written with the other metadata before any blob.
   */
  private async skippedWith(job: CopyJob, referrers: ReferrerPlan[], skipped: Omit<CopyOutcome, 'job' | 'seconds' | 'bytes'>): Promise<Plan | Omit<CopyOutcome, 'job' | 'seconds' | 'bytes'>> {
    if (this.options.dryRun || referrers.length === 0) return skipped;
    if (this.metadataFirst) return { job, manifests: [], blobs: [], converted: undefined, referrers, skipped };
    await this.writeReferrers(job, referrers);
    return skipped;
  }

  /** claim records the destination reference a job writes; a second image claiming it is a conflict. */
  private claim(job: CopyJob, digest: string): void {
    const t = job.destination;
    const key = `${t.repository}:${t.tag ?? digest}`;
    const prior = this.claims.get(key);
    if (prior === undefined) {
      this.claims.set(key, { digest, name: job.name });
      return;
    }
    if (prior.digest === digest) return;
    const how = this.options.onConflict === 'first' ? `${prior.name} was copied there first (--on-conflict first)` : `${prior.name} (${prior.digest}) claims it too`;
    throw new MirrorError('BAD_INPUT', `conflict: ${job.name} (${digest}) and another image map to ${t.name}: ${how}`, {
      image: job.name,
      hint: this.options.conflictHint ?? 'map them apart (e.g. --keep-registry-host), or choose with --on-conflict first',
    });
  }

  /** fetch reads one manifest's verified bytes (after the source's own check of its descriptor). */
  private async fetch(source: ImageSource, repository: string, desc: Descriptor): Promise<ManifestNode> {
    const problem = source.check?.(desc);
    if (problem) throw problem;
    // Jobs that reach the same manifest (an image under several tags) share one read of it; a source that holds its
    // manifests in memory is read directly.
    const read = (): Promise<ManifestBytes> => source.manifest(repository, desc.digest, { signal: this.signal });
    const m = await (source.manifestsInMemory === true ? read() : this.manifestCache.get(source, repository, desc.digest, read));
    return { digest: m.digest, mediaType: m.mediaType || desc.mediaType, size: m.bytes.byteLength, platform: desc.platform, bytes: m.bytes };
  }

  /**
   * walk reads the manifest graph under a root (children of an index, fetched a few at a time), with a visited set,
   * a depth limit and a bound on the count, and gives the manifests children first and the distinct blobs.
   */
  private async walk(job: CopyJob, root: ManifestNode, only?: Descriptor[]): Promise<{ manifests: ManifestNode[]; blobs: Descriptor[] }> {
    const source = job.source;
    const repo = job.image.repository;
    const manifests: ManifestNode[] = [];
    const blobs = new Map<string, Descriptor>();
    const seen = new Set<string>();
    // The manifests each index lists (also those met earlier under another index): the order of the commit.
    const listed = new Map<string, string[]>();
    // Children of an index are fetched a few at a time (made only for an index: most images have none).
    let limit: ReturnType<typeof pLimit> | undefined;
    const visit = async (node: ManifestNode, depth: number): Promise<void> => {
      if (depth > MAX_MANIFEST_DEPTH) throw new MirrorError('BAD_INPUT', `index nesting deeper than ${MAX_MANIFEST_DEPTH} levels at ${node.digest}`, { image: job.name, digest: node.digest });
      const parsed = parseManifest(node.bytes, node.mediaType, { image: job.name, digest: node.digest });
      if (parsed.kind === 'index') {
        const list = depth === 0 && only !== undefined ? only : parsed.index.manifests;
        listed.set(node.digest, list.map((d) => d.digest));
        const fresh = list.filter((d) => !seen.has(d.digest));
        for (const d of fresh) seen.add(d.digest);
        if (seen.size > MAX_MANIFESTS_PER_IMAGE) throw new MirrorError('BAD_INPUT', `${job.name} lists more than ${MAX_MANIFESTS_PER_IMAGE} manifests`, { image: job.name });
        const fetchLimit = (limit ??= pLimit(4));
        const nodes = await Promise.all(fresh.map((d) => fetchLimit(() => this.fetch(source, repo, d))));
        for (const n of nodes) await visit(n, depth + 1);
      } else {
        await this.checkLayerCount(job, parsed.manifest, node.digest);
        for (const b of blobDescriptors(parsed.manifest, (d) => source.holds?.(d) ?? false)) {
          const problem = source.check?.(b);
          if (problem) throw problem;
          if (!blobs.has(b.digest)) blobs.set(b.digest, b);
        }
      }
      manifests.push({ ...node, mediaType: parsed.mediaType });
    };
    seen.add(root.digest);
    await visit(root, 0);
    return { manifests: byHeight(manifests, listed), blobs: [...blobs.values()] };
  }

  /**
   * checkLayerCount refuses an image of a local source (a layout or an archive) whose manifest lists fewer layers
   * than its config has diff_ids, as Docker 25.0.0's docker save writes them: copied, it would lack its files.
   * A registry's images are copied as they are (reading every config would cost a request each); a bundle's were
   * checked when it was planned.
   */
  private async checkLayerCount(job: CopyJob, manifest: ImageManifest, digest: string): Promise<void> {
    const source = job.source;
    if (source.registry !== undefined || source.manifestsInMemory === true || manifest.config.size > MAX_CHECKED_CONFIG) return;
    if (manifest.config.mediaType !== MediaType.OCI_CONFIG && manifest.config.mediaType !== MediaType.DOCKER_CONFIG) return;
    const config = await collect(await source.openBlob(job.image.repository, manifest.config, { signal: this.signal }));
    const counts = layersAgainstConfig(manifest, config);
    if (counts) {
      const fix = 'export the image again (a docker save of Docker 25.0.0 lists the layers in its manifest.json: read it as docker-archive:FILE)';
      throw layersMismatchError(job.name, digest, manifest.config.digest, counts, fix);
    }
  }

  /**
   * referrerPlans finds a subject's referrers at the source (the referrers API or fallback tag, and cosign's tags),
   * then their own referrers (a signature of an SBOM), level by level down to {@link MAX_REFERRER_DEPTH}, with a
   * visited set and a bound on the count. A referrer the destination already records for its subject (its referrers
   * list, or its cosign tag pointing at the same digest) is present: nothing of it is read or written again. Any other
   * is planned with its manifests and blobs. A referrer the source lists but cannot give (gone, or not a manifest
   * this tool copies) is left behind with a warning; the image still goes.
   */
  private async referrerPlans(job: CopyJob, subject: string): Promise<ReferrerPlan[]> {
    const signal = this.signal;
    const repo = job.image.repository;
    const target = job.destination.repository;
    const out: ReferrerPlan[] = [];
    const visited = new Set<string>([subject]);
    let level = [subject];
    for (let depth = 0; depth < MAX_REFERRER_DEPTH && level.length > 0; depth++) {
      const next: string[] = [];
      for (const s of level) {
        // Cosign attaches its tags to images; below the first level only subjects are followed.
        const found = (await job.source.referrers?.(repo, s, { signal, tagged: depth === 0 })) ?? [];
        const fresh = found.filter((r) => {
          const key = r.tag ?? r.descriptor.digest;
          if (visited.has(key)) return false;
          visited.add(key);
          return true;
        });
        if (fresh.length === 0) continue;
        if (out.length + fresh.length > MAX_REFERRERS_PER_IMAGE) {
          throw new MirrorError('BAD_INPUT', `${job.name} has more than ${MAX_REFERRERS_PER_IMAGE} referrers`, { image: job.name, hint: '--referrers=false copies the image alone' });
        }
        // What the destination records for this subject: one question, whatever the number of referrers.
        const recorded =
          fresh.some((r) => r.via === 'subject') && this.dest.referrers !== undefined
            ? new Set((await this.dest.referrers(target, s, { signal })).descriptors.map((d) => d.digest))
            : new Set<string>();
        for (const referrer of fresh) {
          const digest = referrer.descriptor.digest;
          const present =
            referrer.via === 'subject' ? recorded.has(digest) : (await this.dest.manifestDigest(target, referrer.tag ?? digest, { signal })) === digest;
          if (present) {
            out.push({ referrer, subject: s, present, manifests: [], blobs: [] });
          } else {
            try {
              const node = await this.fetch(job.source, repo, referrer.descriptor);
              const { manifests, blobs } = await this.walk(job, node);
              out.push({ referrer, subject: s, present, manifests, blobs });
            } catch (e) {
              if (isFatal(e) || signal.aborted || !isMirrorError(e) || !SKIPPABLE_REFERRER_CODES.has(e.code)) throw e;
              this.events({ type: 'warning', message: `${job.name}: referrer ${referrer.tag ?? digest} of ${s} left behind: ${errorMessage(e)}` });
              continue;
            }
          }
          // A referrer's own referrers are found through their subject (cosign's tagged manifests have none).
          visited.add(digest);
          if (referrer.via === 'subject') next.push(digest);
        }
      }
      level = next;
    }
    return out;
  }

  // ---------------------------------------------------------------- transfer and commit

  /** write places the blobs, then the manifests (children first, the root by its tag last), then the referrers. */
  private async write(plan: Plan): Promise<void> {
    await this.placeBlobs(plan.job, plan.blobs);
    await this.putImageManifests(plan);
    await this.writeReferrers(plan.job, plan.referrers);
  }

  /** putImageManifests puts an image's manifests, children first, the root by its tag last; a destination's note on what it changed joins the plan's. */
  private async putImageManifests(plan: Plan): Promise<void> {
    const target = plan.job.destination;
    const signal = this.signal;
    const root = plan.manifests[plan.manifests.length - 1];
    if (root === undefined) return;
    await this.putChildren(target, plan.manifests, { report: true });
    const descriptor = plan.job.descriptor?.digest === root.digest ? plan.job.descriptor : undefined;
    const answer = await this.dest.putManifest(target, target.tag ?? root.digest, root.bytes, root.mediaType, { signal, root: true, descriptor });
    if (answer && answer.converted) plan.converted = plan.converted ? `${plan.converted}; ${answer.converted}` : answer.converted;
    this.events({ type: 'manifest', reference: destRef(target.repository, target.tag, root.digest), digest: root.digest, action: 'pushed' });
    // An image that is itself a referrer (an SBOM copied by digest): listed for its subject where the registry does not.
    const subject = subjectOf(root);
    if (subject !== undefined && !(answer && answer.subjectIndexed)) {
      await this.registerFor(target.repository, subject, referrerEntry(root, { mediaType: root.mediaType, digest: root.digest, size: root.size }));
    }
  }

  /**
   * putChildren puts the manifests under a root (all of `manifests` but the last, ordered by height: see ./order.ts),
   * each height after the one below it, those of one height at once (the platform manifests of an index), one at a
   * time where the destination takes writes one at a time. `report` emits a manifest event for each.
   */
  private async putChildren(target: DestinationImage, manifests: ManifestNode[], options: { report: boolean }): Promise<void> {
    const signal = this.signal;
    const put = async (m: ManifestNode): Promise<void> => {
      await this.dest.putManifest(target, m.digest, m.bytes, m.mediaType, { signal });
      if (options.report) this.events({ type: 'manifest', reference: `${target.repository}@${m.digest}`, digest: m.digest, action: 'pushed' });
    };
    for (const wave of waves(manifests.slice(0, -1))) {
      if (wave.length === 1 || !this.caps.parallelBlobWrites) for (const m of wave) await put(m);
      else {
        const limit = pLimit(COMMIT_CONCURRENCY);
        await Promise.all(wave.map((m) => limit(() => put(m))));
      }
    }
  }

  /** registerFor merges a referrer into its subject's fallback tag index, one merge per subject at a time. */
  private async registerFor(repository: string, subject: string, entry: Descriptor): Promise<void> {
    if (this.dest.registerReferrer === undefined) return;
    const key = `${repository}@${subject}`;
    const prior = this.referrerLocks.get(key) ?? Promise.resolve();
    const next = prior.catch(() => {}).then(() => this.dest.registerReferrer!(repository, subject, entry, { signal: this.signal }));
    this.referrerLocks.set(key, next);
    try {
      await next;
    } finally {
      if (this.referrerLocks.get(key) === next) this.referrerLocks.delete(key);
    }
  }

  /** placeBlobs has the scheduler place every blob in the job's destination repository; the first failure throws. */
  private async placeBlobs(job: CopyJob, blobs: Descriptor[]): Promise<void> {
    const sent = this.sent.get(job);
    const origin = { source: job.source, repository: job.image.repository, onBytes: sent && ((n: number) => void (sent.bytes += n)) };
    const results = await Promise.allSettled(blobs.map((b) => this.scheduler.ensure(job.destination.repository, b, origin)));
    const failed = results.filter((r): r is PromiseRejectedResult => r.status === 'rejected');
    this.failedBlobs += failed.length;
    const fatal = failed.find((r) => isFatal(r.reason));
    if (fatal) throw fatal.reason;
    if (failed[0]) throw failed[0].reason;
  }

  /**
   * writeReferrers writes each referrer after its subject (a referrer of a referrer after that one): its blobs, then
   * its manifests (see {@link putReferrerManifests}). A referrer already present is not written again.
   */
  private async writeReferrers(job: CopyJob, referrers: ReferrerPlan[]): Promise<void> {
    for (const r of referrers) {
      if (!r.present) await this.placeBlobs(job, r.blobs);
      await this.putReferrerManifests(job, r);
    }
  }

  /**
   * putReferrerManifests puts a referrer's manifests, the top one by digest or under its cosign tag. Where the
   * destination did not answer `OCI-Subject` (it does not index subjects), the referrer is merged into the subject's
   * fallback tag index, one merge per subject at a time, keeping every entry another tool put there. A referrer
   * already present is only reported.
   */
  private async putReferrerManifests(job: CopyJob, r: ReferrerPlan): Promise<void> {
    const target = job.destination;
    const signal = this.signal;
    const top = r.manifests[r.manifests.length - 1];
    if (r.present || top === undefined) {
      const reference = r.referrer.tag !== undefined ? `${target.repository}:${r.referrer.tag}` : `${target.repository}@${r.referrer.descriptor.digest}`;
      this.events({ type: 'manifest', reference, digest: r.referrer.descriptor.digest, action: 'skipped' });
      return;
    }
    await this.putChildren(target, r.manifests, { report: false });
    // Named after its own tag alone: the subject's recorded names (an OCI layout's ref.name, containerd's image name)
    // stay the subject's, where a signature took the image's place in index.json.
    const image: DestinationImage = { repository: target.repository, tag: r.referrer.tag, name: destRef(target.repository, r.referrer.tag, top.digest), refName: r.referrer.tag };
    const answer = await this.dest.putManifest(image, r.referrer.tag ?? top.digest, top.bytes, top.mediaType, { signal, root: r.referrer.via === 'tag' });
    this.events({ type: 'manifest', reference: image.name, digest: top.digest, action: 'pushed' });
    if (r.referrer.via === 'subject' && !(answer && answer.subjectIndexed)) await this.registerFor(target.repository, r.subject, referrerEntry(top, r.referrer.descriptor));
  }

  private outcomeOf(plan: Plan, status: CopyOutcome['status']): Omit<CopyOutcome, 'job' | 'seconds' | 'bytes'> {
    if (plan.skipped) return plan.skipped;
    const root = plan.manifests[plan.manifests.length - 1]!;
    return {
      source: plan.job.name,
      destination: plan.job.destination.name,
      digest: root.digest,
      mediaType: root.mediaType,
      status,
      converted: plan.converted,
      children: plan.manifests.slice(0, -1).map((m) => ({ digest: m.digest, mediaType: m.mediaType, platform: m.platform as Platform | undefined })),
      blobs: plan.blobs.length,
      referrers: plan.referrers.length,
    };
  }
}
