/**
 * `mirror sync`, as one library call: take the lock, connect the destination (credentials proven first) and each
 * source registry as the plan reaches it, stream the plan's jobs through the copy engine (an unchanged image costs
 * one manifest HEAD on each side and no blob request), hand each image's record to the caller as it finishes, then
 * prune when asked. A failing image fails alone, and so do the images of a source registry that is down; the
 * destination's authentication, TLS and network failures stop the run; the time
 * limit stops starting images and aborts those in flight (tags are written last: nothing is half-tagged). The
 * source may be a directory of dir: images instead (--src dir, ./dir-tree.ts), the destination a directory that
 * receives each image as one (--dest dir, src/transport/dir/tree.ts).
 */
import { setMaxListeners } from 'node:events';
import { DOCKER_HUB_ALIASES } from '../auth/docker-config.js';
import { copyImagesFrom, isFatal, type CopyOutcome, type CopyRunSummary } from '../copy/copy.js';
import type { PlatformSpec } from '../copy/platform.js';
import { ExitCode, isMirrorError, MirrorError, type ErrorCode, type ExitCodeValue } from '../errors/index.js';
import type { EventSink } from '../events/index.js';
import { createHostSettingsResolver } from '../net/settings.js';
import { DEFAULT_RETRY_TIMES } from '../net/types.js';
import type { RegistryTarget } from '../reference/destination.js';
import { RequestLimiter, type RegistryClient } from '../registry/index.js';
import { connectRegistry, type RegistrySide } from '../transport/registry/connect.js';
import { openRegistryDestination } from '../transport/registry/destination.js';
import { openRegistrySource } from '../transport/registry/source.js';
import { DirTreeDestination } from '../transport/dir/tree.js';
import type { SideContext } from '../transport/index.js';
import type { ImageDestination } from '../transport/types.js';
import type { RegistryConfig, SyncConfig, SyncEntry } from './config/model.js';
import { referenceResolver } from './credentials.js';
import { dirTreeJobs } from './dir-tree.js';
import { acquireLock, type Lock, type LockOwner } from './lock.js';
import { planJobs, type PlanProblem, type SourceConnection, type SyncJob } from './plan.js';
import { pruneRepository, type PruneAction } from './prune.js';
import type { Shard } from './shard.js';

/** DEFAULT_SYNC_JOBS is how many images a sync has in flight: most of a sync's work is two HEADs per image. */
export const DEFAULT_SYNC_JOBS = 8;

/**
 * SYNC_AHEAD is how many planned images may wait for a write slot: the one with the most bytes to send is written
 * first, so the largest images of a run are not the last to start (measured on the bench, where they come last in
 * the file). Each waiting image holds its manifests in memory.
 */
export const SYNC_AHEAD = 64;

/** ImageAction is what happened to one image: `copy`/`skip` are a dry run's plan. */
export type ImageAction = 'copied' | 'skipped' | 'failed' | 'copy' | 'skip';

/** ImageRecord is one image of a run, as the JSON log line and the report give it. */
export interface ImageRecord {
  action: ImageAction;
  /** The source reference (`quay.io/team/app:1.0`), or the entry when the failure came before any image. */
  source: string;
  /** The destination reference, when known. */
  destination?: string | undefined;
  digest?: string | undefined;
  mediaType?: string | undefined;
  /** Bytes uploaded for it. */
  bytes: number;
  seconds: number;
  referrers?: number | undefined;
  /** Set when the image was changed on the way (a platform selected out of an index). */
  converted?: string | undefined;
  errorCode?: ErrorCode | undefined;
  error?: string | undefined;
  /** Where the entry it came from is written. */
  entry?: string | undefined;
}

/** SyncRunOptions configure {@link runSync}. */
export interface SyncRunOptions {
  config: SyncConfig;
  /** How sources are reached by default (the `--src-*` flags); a registry's settings in the file win. */
  src: SideContext;
  /** How the destination is reached (the `--dest-*` flags); its settings in the file win. */
  dest: SideContext;
  /** Images planned, and images written, at once (up to {@link SYNC_AHEAD} more wait planned). Default: the file's `defaults.jobs`, else {@link DEFAULT_SYNC_JOBS}. */
  jobs?: number | undefined;
  /** Retries per request. Default: the file's, else {@link DEFAULT_RETRY_TIMES}. */
  retries?: number | undefined;
  /** Platforms for every entry (wins over the file). */
  platforms?: PlatformSpec[] | undefined;
  /** Referrers for every entry (wins over the file). Default: the file's, else true for a native file, false for skopeo's. */
  referrers?: boolean | undefined;
  /** Plan only: resolve, compare, print; write and delete nothing. Default: false. */
  dryRun?: boolean | undefined;
  /** Delete destination tags of synced repositories no longer selected upstream. Default: false. */
  prune?: boolean | undefined;
  shard?: Shard | undefined;
  /** End the run cleanly after this long. Default: none. */
  maxDurationMs?: number | undefined;
  /** The run lock. Default: none. */
  lock?: { path: string; waitMs?: number | undefined } | undefined;
  events: EventSink;
  signal?: AbortSignal | undefined;
  /** Each image's record, as it finishes. */
  onImage?: ((record: ImageRecord) => void) | undefined;
  /** Each prune action. */
  onPrune?: ((action: PruneAction) => void) | undefined;
  /** Called when another run holds the lock and this one waits. */
  onLockWait?: ((owner: LockOwner) => void) | undefined;
}

/** SyncStatus sums up a run. */
export type SyncStatus = 'ok' | 'partial' | 'failed' | 'stopped';

/** MAX_LISTED_FAILURES bounds the failures kept for the summary (the report and the log have all of them). */
export const MAX_LISTED_FAILURES = 200;

/** SyncRunResult is what a run did. */
export interface SyncRunResult {
  status: SyncStatus;
  exitCode: ExitCodeValue;
  dryRun: boolean;
  counts: { copied: number; skipped: number; failed: number; copy: number; skip: number; pruned: number; pruneKept: number; pruneFailed: number };
  /** The first {@link MAX_LISTED_FAILURES} failures. */
  failures: ImageRecord[];
  pruned: PruneAction[];
  /** Set when the time limit stopped the run. */
  stopped?: { afterMs: number; inFlight: number } | undefined;
  /** Set when a failure stopped the whole run (auth, TLS, network, interrupt). */
  fatal?: MirrorError | undefined;
  /** A stale lock this run took over. */
  tookOver?: LockOwner | undefined;
  blobs?: CopyRunSummary['blobs'] | undefined;
  bytes: number;
  durationMs: number;
}

/** MAX_TIMER_MS is the longest delay a Node.js timer takes (2^31 - 1 ms); a longer one fires after 1 ms. */
const MAX_TIMER_MS = 2 ** 31 - 1;

/** Sides connects to each registry once, with the file's settings for it over the command line's. */
class Sides {
  private readonly limiters = new Map<string, RequestLimiter>();
  private readonly sources = new Map<string, Promise<SourceConnection>>();

  constructor(
    private readonly config: SyncConfig,
    private readonly base: { src: SideContext; dest: SideContext },
    private readonly retries: number,
    private readonly events: EventSink,
    private readonly signal: AbortSignal,
  ) {}

  /**
   * side gives how to reach `host`, with the settings the config keeps under `key`. A skopeo YAML names sources only:
   * the destination never takes the settings of a source key on the same host (its credentials would be pushed with).
   */
  side(host: string, role: 'src' | 'dest', key = host): RegistrySide & { limits?: RequestLimiter | undefined } {
    const base = this.base[role];
    const reg: RegistryConfig | undefined = role === 'dest' && this.config.format !== 'native' ? undefined : this.config.registries.get(key);
    const out: RegistrySide & { limits?: RequestLimiter | undefined } = { ...base, limits: undefined, retry: { ...base.retry, retries: this.retries }, events: this.events };
    const tls = reg?.tls;
    if (tls !== undefined && (tls.ca !== undefined || tls.clientCert !== undefined || tls.certDir !== undefined || tls.insecure !== undefined || tls.plainHttp !== undefined || tls.verify !== undefined)) {
      const skip = tls.insecure === true || tls.verify === false;
      out.settings = createHostSettingsResolver({
        cacert: tls.ca !== undefined ? [tls.ca] : undefined,
        cert: tls.clientCert,
        key: tls.clientKey,
        certDir: tls.certDir,
        insecureSkipVerify: skip ? [host] : false,
        plainHttp: tls.plainHttp ? [host] : false,
      });
      if (tls.verify !== undefined) out.tlsVerify = tls.verify;
      if (tls.plainHttp) out.plainHttp = true;
    }
    if (reg?.credentials !== undefined) out.credentials = referenceResolver(reg.credentials, { events: this.events });
    if (reg?.requests !== undefined) {
      let limiter = this.limiters.get(host);
      if (limiter === undefined) this.limiters.set(host, (limiter = new RequestLimiter(reg.requests)));
      out.limits = limiter;
    }
    return out;
  }

  /** source connects once to a source registry, by the key of its settings (see SyncEntry.settings). */
  source(key: string): Promise<SourceConnection> {
    let p = this.sources.get(key);
    if (p === undefined) {
      const host = this.config.registries.get(key)?.host ?? key;
      p = (async () => {
        const side = this.side(host, 'src', key);
        const { client, scheme } = await connectRegistry(host, side, { signal: this.signal });
        return { source: openRegistrySource(client, { scheme }), catalog: client };
      })();
      this.sources.set(key, p);
    }
    return p;
  }

  /** destination connects to the destination, proving its credentials (a directory, --dest dir, is opened as it is written). */
  async destination(dryRun: boolean): Promise<{ destination: ImageDestination; client?: RegistryClient | undefined }> {
    const d = this.config.destination;
    if (d.dir !== undefined) return { destination: new DirTreeDestination(d.dir, dryRun) };
    const side = this.side(d.host, 'dest');
    if (d.scheme === 'http') side.plainHttp = true;
    const { client, scheme } = await connectRegistry(d.host, side, { authenticate: true, signal: this.signal });
    const target: RegistryTarget = { kind: 'registry', host: d.host, namespace: d.namespace, scheme, explicitScheme: true };
    const destination = await openRegistryDestination(target, { ...side, client, signal: this.signal, learnTags: true });
    return { destination, client };
  }
}

/**
 * sourceSideFailure makes the test of whether a failure came from a source registry and not from the destination:
 * the registry the failed request was made for (the first `registry` or `url` in the error and its causes: a token
 * server's failure names the registry it was asked for) is one of the sources and not the destination. A failure
 * that names no request is not attributed.
 */
export function sourceSideFailure(sourceHosts: readonly string[], destinationHost: string): (e: unknown) => boolean {
  const sources = new Set<string>();
  for (const h of sourceHosts) for (const alias of DOCKER_HUB_ALIASES.has(h) ? DOCKER_HUB_ALIASES : [h]) sources.add(alias);
  sources.delete(destinationHost);
  return (e) => {
    for (let cur: unknown = e, depth = 0; cur instanceof Error && depth < 8; cur = cur.cause, depth++) {
      if (!isMirrorError(cur)) continue;
      if (cur.context.registry !== undefined) return sources.has(cur.context.registry);
      const url = cur.context.url;
      if (url === undefined) continue;
      try {
        return sources.has(new URL(url).host);
      } catch {
        return false;
      }
    }
    return false;
  };
}

/** recordOf turns an engine outcome into a record. */
function recordOf(o: CopyOutcome, dryRun: boolean): ImageRecord {
  const action: ImageAction =
    o.status === 'failed' ? 'failed' : o.status === 'planned' ? 'copy' : o.status === 'pushed' ? 'copied' : dryRun ? 'skip' : 'skipped';
  const job = o.job as SyncJob;
  return {
    action,
    source: o.source,
    destination: o.destination,
    digest: o.digest,
    mediaType: o.mediaType,
    bytes: o.bytes,
    seconds: Math.round(o.seconds * 1000) / 1000,
    referrers: o.referrers,
    converted: o.converted,
    errorCode: o.errorCode,
    error: o.error,
    entry: job.entry?.origin,
  };
}

/** problemRecord turns a planning problem into a failed record. */
function problemRecord(p: PlanProblem): ImageRecord {
  return {
    action: 'failed',
    source: p.repository !== undefined ? `${p.entry.registry}/${p.repository}` : p.entry.label,
    bytes: 0,
    seconds: 0,
    errorCode: p.error.code,
    error: p.error.describe(),
    entry: p.entry.origin,
  };
}

/** runSync runs one sync. Failures of the whole run come back as `fatal` (after what was done is recorded). */
export async function runSync(options: SyncRunOptions): Promise<SyncRunResult> {
  const t0 = Date.now();
  const { config, events } = options;
  const dryRun = options.dryRun ?? false;
  const lock: Lock | undefined = options.lock ? await acquireLock(options.lock.path, { waitMs: options.lock.waitMs, signal: options.signal, onWait: options.onLockWait }) : undefined;
  if (lock?.tookOver !== undefined) {
    events({ type: 'warning', message: `took over the lock ${lock.path} left by a run that is gone (pid ${lock.tookOver.pid}, started ${lock.tookOver.started})` });
  }
  const stop = new AbortController();
  const signal = options.signal ? AbortSignal.any([stop.signal, options.signal]) : stop.signal;
  setMaxListeners(0, signal);
  let timer: NodeJS.Timeout | undefined;
  // A limit beyond what a timer holds (about 24.8 days) is no limit: such a timer would fire at once.
  if (options.maxDurationMs !== undefined && options.maxDurationMs <= MAX_TIMER_MS) {
    const ms = options.maxDurationMs;
    timer = setTimeout(() => stop.abort(new MirrorError('STOPPED', `stopped at --max-duration (${Math.round(ms / 1000)}s)`)), ms);
    timer.unref();
  }
  const counts = { copied: 0, skipped: 0, failed: 0, copy: 0, skip: 0, pruned: 0, pruneKept: 0, pruneFailed: 0 };
  const failures: ImageRecord[] = [];
  const pruned: PruneAction[] = [];
  let bytes = 0;
  const emit = (r: ImageRecord): void => {
    counts[r.action]++;
    bytes += r.bytes;
    if (r.action === 'failed' && failures.length < MAX_LISTED_FAILURES) failures.push(r);
    options.onImage?.(r);
  };
  const retries = options.retries ?? config.defaults.retries ?? DEFAULT_RETRY_TIMES;
  const sides = new Sides(config, { src: options.src, dest: options.dest }, retries, events, signal);
  const tracked = new Map<string, { tags: Set<string>; digests: Set<string>; complete: boolean }>();
  /** Set when an entry over many repositories could not be listed: then nothing is pruned. */
  let unlistedEntry: { entry: SyncEntry; why: MirrorError } | undefined;
  let started = 0;
  let finished = 0;
  let summary: CopyRunSummary | undefined;
  let fatal: MirrorError | undefined;
  let stopped: SyncRunResult['stopped'];
  let opened: ImageDestination | undefined;
  try {
    // The source registries are reached while the destination is: one round trip less before the first image.
    for (const key of new Set(config.entries.map((e) => e.settings ?? e.registry))) sides.source(key).catch(() => {});
    const dest = await sides.destination(dryRun);
    opened = dest.destination;
    const platforms = options.platforms;
    const referrers = options.referrers ?? config.defaults.referrers ?? config.format === 'native';
    // An image two entries select (a repository entry and a prefix over it, skopeo's images and images-by-semver) is
    // copied once: the same source to the same destination reference (the engine holds one key a reference anyway).
    const seen = new Set<string>();
    const jobs = (async function* counted(): AsyncGenerator<SyncJob, void, undefined> {
      // A directory of dir: images (--src dir) is walked; a config's entries are planned from their registries.
      const planned =
        config.sourceDir !== undefined
          ? dirTreeJobs({ config, root: config.sourceDir, shard: options.shard, onProblem: (p) => emit(problemRecord(p)), events, signal })
          : planJobs({
              config,
              shard: options.shard,
              connect: (host) => sides.source(host),
              onProblem: (p) => emit(problemRecord(p)),
              onRepository: options.prune
                ? (done) => {
                    const t = tracked.get(done.repository) ?? { tags: new Set<string>(), digests: new Set<string>(), complete: true };
                    for (const tag of done.tags) t.tags.add(tag);
                    for (const digest of done.digests) t.digests.add(digest);
                    t.complete &&= done.complete;
                    tracked.set(done.repository, t);
                  }
                : undefined,
              onUnlisted: (entry, why) => (unlistedEntry ??= { entry, why }),
              referrers: { override: options.referrers, fallback: referrers },
              events,
              signal,
            });
      for await (const job of planned) {
        const key = `${job.name}\n${job.destination.name}`;
        if (seen.has(key)) {
          events({ type: 'debug', message: `${job.name} -> ${job.destination.name} is selected again by ${job.entry.origin}: copied once` });
          continue;
        }
        seen.add(key);
        started++;
        yield { ...job, platforms: platforms ?? job.platforms ?? config.defaults.platforms, referrers: options.referrers ?? job.referrers };
      }
    })();
    const sourceOnly = sourceSideFailure(config.entries.map((e) => e.registry), config.destination.host);
    const run = copyImagesFrom(jobs, dest.destination, {
      jobs: options.jobs ?? config.defaults.jobs ?? DEFAULT_SYNC_JOBS,
      ahead: SYNC_AHEAD,
      // A source registry that is down (or refuses TLS) fails its own images; the destination's failures stop the run.
      runWide: (e) => isFatal(e) && !sourceOnly(e),
      conflictHint: 'map them apart in the config (destination.keepRegistryHost, or a destination.rewrite rule), or select only one of them',
      referrers,
      dryRun,
      events: (e) => {
        if (e.type === 'warning' || e.type === 'retry' || e.type === 'debug' || e.type === 'blob') events(e);
      },
      signal,
    });
    try {
      for await (const o of run.outcomes) {
        finished++;
        emit(recordOf(o, dryRun));
      }
    } finally {
      summary = run.summary();
    }
    if (options.prune && unlistedEntry !== undefined) {
      const { entry, why } = unlistedEntry;
      events({ type: 'warning', message: `nothing pruned: ${entry.origin} (${entry.label}) could not be listed (${why.message}), so which destination repositories it selects is not known` });
    } else if (options.prune) {
      const suffix = config.destination.naming.kind === 'skopeo' ? config.destination.naming.appendSuffix : '';
      for (const [repository, t] of tracked) {
        let actions: PruneAction[];
        try {
          if (dest.client === undefined) throw new MirrorError('USAGE', '--prune deletes tags in a registry; a directory destination has none');
          actions = await pruneRepository({ repository, kept: t.tags, digests: t.digests, complete: t.complete }, { client: dest.client, suffix, dryRun, events, signal });
        } catch (e) {
          if (signal.aborted || (isMirrorError(e) && (e.code === 'AUTH' || e.code === 'TLS' || e.code === 'NETWORK'))) throw e;
          actions = [{ repository, digest: '', tags: [], action: 'failed', reason: isMirrorError(e) ? e.describe() : String(e) }];
        }
        for (const a of actions) {
          if (a.action === 'deleted' || a.action === 'would delete') counts.pruned++;
          else if (a.action === 'kept') counts.pruneKept++;
          else counts.pruneFailed++;
          pruned.push(a);
          options.onPrune?.(a);
        }
      }
    }
  } catch (e) {
    const reason: unknown = stop.signal.aborted ? stop.signal.reason : undefined;
    if (reason instanceof MirrorError && reason.code === 'STOPPED' && !options.signal?.aborted) {
      stopped = { afterMs: Date.now() - t0, inFlight: Math.max(0, started - finished) };
    } else {
      fatal = isMirrorError(e) ? e : new MirrorError('INTERNAL', String(e), { cause: e });
    }
  } finally {
    if (timer !== undefined) clearTimeout(timer);
    // What images that did not finish left (under a directory destination) goes before the lock does.
    await opened?.close().catch(() => {});
    await lock?.release();
  }
  const ok = counts.copied + counts.skipped + counts.copy + counts.skip;
  const bad = counts.failed + counts.pruneFailed;
  let status: SyncStatus;
  let exitCode: ExitCodeValue;
  if (fatal !== undefined) {
    status = 'failed';
    exitCode = fatal.exitCode;
  } else if (stopped !== undefined) {
    status = 'stopped';
    exitCode = ExitCode.STOPPED;
  } else if (bad === 0) {
    status = 'ok';
    exitCode = ExitCode.OK;
  } else if (ok > 0 || counts.pruned > 0) {
    status = 'partial';
    exitCode = ExitCode.PARTIAL;
  } else {
    status = 'failed';
    const codes = new Set(failures.map((f) => (f.errorCode ? new MirrorError(f.errorCode, '').exitCode : ExitCode.FAILURE)));
    exitCode = codes.size === 1 ? [...codes][0]! : ExitCode.FAILURE;
  }
  return {
    status,
    exitCode,
    dryRun,
    counts,
    failures,
    pruned,
    stopped,
    fatal,
    tookOver: lock?.tookOver,
    blobs: summary?.blobs,
    bytes: summary?.blobs.bytesUploaded ?? bytes,
    durationMs: Date.now() - t0,
  };
}
