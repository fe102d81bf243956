/**
 * The transfer stage: one blob scheduler for a run. Each distinct blob crosses the wire at most once per destination
 * (single flight per digest); another repository of the same registry gets it by cross-repository mount, from a
 * destination repository known to hold it or, when source and destination are one registry, from the source
 * repository; otherwise a HEAD first, and only a missing blob is streamed from the source to the destination
 * (nothing on local disk; the destination verifies digest and size on the way). Network calls take a slot of the
 * transfer pool; waiting for another image's transfer never does, so overlapping stages cannot deadlock.
 */
import pLimit from 'p-limit';
import { MirrorError } from '../errors/index.js';
import { type EventSink } from '../events/index.js';
import type { Descriptor } from '../oci/manifest.js';
import type { BlobBody, DestinationCapabilities, ImageDestination, ImageSource } from '../transport/types.js';

/** BlobOrigin says where a blob can be read: a source and the repository in it. */
export interface BlobOrigin {
  source: ImageSource;
  repository: string;
  /** Told the bytes uploaded for the caller that started the upload (an image's own count). */
  onBytes?: ((n: number) => void) | undefined;
}

/** TransferStats count what the scheduler did. */
export interface TransferStats {
  uploaded: number;
  mounted: number;
  skipped: number;
  bytesUploaded: number;
}

/** SchedulerOptions tune a {@link BlobScheduler}. */
export interface SchedulerOptions {
  /** Network operations at once (HEAD, mount, upload). */
  concurrency: number;
  events: EventSink;
  signal: AbortSignal;
  /** Blobs known to be at the destination already, by digest: the repositories that hold them (`''` for a global store). */
  located?: ReadonlyMap<string, ReadonlySet<string>> | undefined;
}

/** BlobScheduler places blobs at one destination. */
export class BlobScheduler {
  readonly stats: TransferStats = { uploaded: 0, mounted: 0, skipped: 0, bytesUploaded: 0 };
  private readonly pool: ReturnType<typeof pLimit>;
  private readonly caps: DestinationCapabilities;
  /** Repositories known to hold a digest (`''` for a destination with one blob store). */
  private readonly located = new Map<string, Set<string>>();
  /** Blobs known to be at the destination before the run (a bundle's pass placed them), by digest. */
  private readonly known: ReadonlyMap<string, ReadonlySet<string>> | undefined;
  /** The placement of a blob into a repository, once per `repo@digest` (a failure may be tried again). */
  private readonly ensured = new Map<string, Promise<void>>();
  /**
   * The first placement of each digest still in flight, claimed before its first request: a placement of the same
   * digest into another repository waits for it, then mounts, so two images that share a layer and start together
   * never upload it twice.
   */
  private readonly placing = new Map<string, Promise<void>>();
  /** Whether a blob may be offered by a mount from its own repository (see `untagged`); off once refused. */
  private selfMount = true;

  constructor(
    private readonly dest: ImageDestination,
    caps: DestinationCapabilities,
    private readonly options: SchedulerOptions,
  ) {
    this.caps = caps;
    this.pool = pLimit(Math.max(1, options.concurrency));
    // `options.located` is read through, not copied: a bundle of thousands of images knows a place for every blob.
    this.known = options.located;
  }

  /** holds tells whether the run knows the repository holds the blob. */
  holds(repo: string, digest: string): boolean {
    const key = this.repoKey(repo);
    return (this.located.get(digest)?.has(key) ?? false) || (this.known?.get(digest)?.has(key) ?? false);
  }

  /** inFlight tells whether a placement of the blob (into any repository) is under way. */
  inFlight(digest: string): boolean {
    return this.placing.has(digest);
  }

  /** locate records that a repository holds a blob. */
  locate(repo: string, digest: string): void {
    let set = this.located.get(digest);
    if (!set) this.located.set(digest, (set = new Set()));
    set.add(this.repoKey(repo));
  }

  /** ensure places a blob into a repository of the destination (present, mounted, or streamed from `origin`). */
  ensure(repo: string, desc: Descriptor, origin: BlobOrigin): Promise<void> {
    const key = `${this.repoKey(repo)}@${desc.digest}`;
    let p = this.ensured.get(key);
    if (p === undefined) {
      const d = desc.digest;
      const ahead = this.placing.get(d);
      const placed = this.ensureOnce(repo, desc, origin, ahead);
      p = placed;
      this.ensured.set(key, placed);
      // Once placed, `holds` answers for it (a failure may be tried again): the entry is not kept.
      const forget = (): void => {
        if (this.ensured.get(key) === placed) this.ensured.delete(key);
      };
      placed.then(forget, forget);
      if (ahead === undefined) {
        this.placing.set(d, placed);
        const clear = (): void => {
          if (this.placing.get(d) === placed) this.placing.delete(d);
        };
        placed.then(clear, clear);
      }
    }
    return p;
  }

  /**
   * selfMountRefused takes a registry's refusal (a 4xx other than auth) of a mount from the repository itself: no
   * such mount is asked again this run, and the blob is checked with HEAD. Anything else is the blob's failure.
   */
  private selfMountRefused(e: unknown): undefined {
    const status = e instanceof MirrorError ? e.context.status : undefined;
    if (status === undefined || status < 400 || status >= 500 || status === 429) throw e;
    this.selfMount = false;
    this.options.events({ type: 'debug', message: `the destination refused a mount from the repository itself (${status}); blobs are checked with HEAD` });
    return undefined;
  }

  private repoKey(repo: string): string {
    return this.caps.blobScope === 'global' ? '' : repo;
  }

  private async ensureOnce(repo: string, desc: Descriptor, origin: BlobOrigin, ahead: Promise<void> | undefined): Promise<void> {
    const d = desc.digest;
    const signal = this.options.signal;
    // The source may be writing this blob itself (a bundle's pass): wait for that write instead of sending it again.
    const own = origin.source.settling?.(d);
    if (own !== undefined) for (const r of await own) this.locate(r, d);
    if (this.holds(repo, d)) return;
    if (ahead !== undefined) {
      // Another repository's placement of this digest goes first (outside the pool: waiting takes no slot).
      await ahead.catch(() => {});
      if (this.holds(repo, d)) return;
    }
    let session: unknown;
    let present = false;
    if (this.caps.blobScope === 'repository') {
      // Another repository of this registry holds it: a mount answers 201 even when this one holds it too.
      const from = [...(this.located.get(d) ?? []), ...(this.known?.get(d) ?? [])].find((r) => r !== repo);
      const sameRegistry = origin.source.registry !== undefined && origin.source.registry === this.caps.registry && origin.repository !== repo;
      const mountFrom = from ?? (sameRegistry ? origin.repository : undefined);
      if (mountFrom !== undefined) {
        let m = await this.pool(() => this.dest.mountBlob(repo, d, mountFrom, { signal }));
        // distribution links a mounted blob under its sha256 digest only: a blob named by another digest (sha512) is
        // checked, and sent when the mount did not make it visible under that name.
        if (m.mounted && !d.startsWith('sha256:') && !(await this.pool(() => this.dest.hasBlob(repo, d, { signal })))) m = { mounted: false };
        if (m.mounted) {
          this.locate(repo, d);
          this.stats.mounted++;
          this.options.events({ type: 'blob', digest: d, size: desc.size, repository: repo, action: 'mounted' });
          return;
        }
        session = m.session;
      } else if (this.selfMount && d.startsWith('sha256:') && (await this.dest.untagged?.(repo)) === true) {
        // A repository found without tags: one mount from itself says "present" (201) or opens the upload (202).
        const m = await this.pool(() => this.dest.mountBlob(repo, d, repo, { signal })).catch((e: unknown) => this.selfMountRefused(e));
        if (m?.mounted === true) present = true;
        else session = m?.session;
      }
    }
    if (!present && session === undefined) present = await this.pool(() => this.dest.hasBlob(repo, d, { signal }));
    if (present) {
      this.locate(repo, d);
      this.stats.skipped++;
      this.options.events({ type: 'blob', digest: d, size: desc.size, repository: repo, action: 'skipped' });
      return;
    }
    // A source that cannot give the bytes now (a bundle's went by in its stream) fails the blob before any upload.
    const unavailable = origin.source.unavailable?.(desc);
    if (unavailable !== undefined) {
      if (session !== undefined) await this.dest.cancelSession(session).catch(() => {});
      throw unavailable;
    }
    await this.pool(() => this.upload(repo, desc, origin, session));
  }

  private async upload(repo: string, desc: Descriptor, origin: BlobOrigin, session: unknown): Promise<void> {
    const signal = this.options.signal;
    const held = origin.source.heldBytes?.(desc);
    const body: BlobBody =
      held !== undefined
        ? { kind: 'bytes', data: held }
        : {
            kind: 'stream',
            reopenable: true,
            open: () => lazyBlob(origin, desc, signal),
          };
    const r = await this.dest.putBlob(repo, { digest: desc.digest, size: desc.size }, body, {
      signal,
      session,
      onBytes: (n) => {
        this.stats.bytesUploaded += n;
        origin.onBytes?.(n);
        this.options.events({ type: 'bytes', bytes: n });
      },
    });
    this.locate(repo, r.digest);
    // A registry may name what it stored by another digest (sha256 for a sha512 upload): both name it here.
    if (r.digest !== desc.digest) this.locate(repo, desc.digest);
    this.stats.uploaded++;
    this.options.events({ type: 'blob', digest: r.digest, size: r.size, repository: repo, action: 'uploaded' });
  }
}

/** lazyBlob opens a blob at the source only when the destination starts reading it. */
async function* lazyBlob(origin: BlobOrigin, desc: Descriptor, signal: AbortSignal): AsyncGenerator<Uint8Array, void, undefined> {
  yield* await origin.source.openBlob(origin.repository, desc, { signal });
}
