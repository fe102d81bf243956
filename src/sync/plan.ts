/**
 * The sync plan, as a stream: entry by entry, repository by repository (a prefix is listed from the registry's
 * catalog, page by page), tag by tag (tag lists are paged), each selected image becomes a copy job the moment it is
 * known. Nothing is collected: memory stays flat in the number of tags (only `newest` holds N tags of one
 * repository back). A repository outside this run's shard is skipped before its tags are listed.
 */
import type { RegistryClient } from '../registry/index.js';
import type { CopyJob } from '../copy/copy.js';
import { isFatal } from '../copy/copy.js';
import { errorMessage, isMirrorError, MirrorError } from '../errors/index.js';
import type { EventSink } from '../events/index.js';
import { parseManifest } from '../oci/manifest.js';
import type { ImageSource } from '../transport/types.js';
import type { SyncConfig, SyncEntry } from './config/model.js';
import { destinationFor, destinationRepository, formatSource, type SourceName } from './naming.js';
import { selectTags } from './select.js';
import { inShard, type Shard } from './shard.js';
import { parseJson } from '../oci/json.js';
import { isReferrerTag } from './prune.js';

/** CONFIG_READ_LIMIT is the most bytes of an image config read for its creation time. */
export const CONFIG_READ_LIMIT = 1024 * 1024;

/** SourceConnection is a source registry, connected. */
export interface SourceConnection {
  source: ImageSource;
  /** The client of the source host: its catalog lists repositories under a prefix. */
  catalog: Pick<RegistryClient, 'repositories'>;
}

/** SyncJob is a copy job with the entry it came from. */
export interface SyncJob extends CopyJob {
  entry: SyncEntry;
  sourceName: SourceName;
}

/** PlanProblem is something that failed before any image of it could be tried (a listing, a name). */
export interface PlanProblem {
  entry: SyncEntry;
  /** The source repository concerned, when one is. */
  repository?: string | undefined;
  error: MirrorError;
}

/** RepositoryDone says that every selected image of a destination repository has been planned (for `--prune`). */
export interface RepositoryDone {
  repository: string;
  /** The destination tags planned. */
  tags: ReadonlySet<string>;
  /** The digests the config selects (pinned), which stay whatever tags go. */
  digests: ReadonlySet<string>;
  /** False when a listing failed, so the set may miss tags that are still selected upstream. */
  complete: boolean;
}

/** PlanContext is what the planner needs. */
export interface PlanContext {
  config: SyncConfig;
  shard?: Shard | undefined;
  /** Connects (once) to a source registry, by the key of its settings (an entry's `settings`, else its registry). */
  connect(key: string): Promise<SourceConnection>;
  /** Called for each problem; the plan goes on. */
  onProblem(problem: PlanProblem): void;
  /** Called once per destination repository when `track` is set. */
  onRepository?: ((done: RepositoryDone) => void) | undefined;
  /**
   * Called when an entry over many repositories (a prefix) could not be listed (its registry unreachable, its catalog
   * refused): which destination repositories it selects is not known, so nothing may be pruned.
   */
  onUnlisted?: ((entry: SyncEntry, why: MirrorError) => void) | undefined;
  /**
   * Whether referrers travel with their subjects (the run's --referrers, else the entry's, else this default): then
   * the referrer tags a listing gives (`sha256-<hex>`, cosign's `.sig`/`.att`/`.sbom`) are not images of their own,
   * as copying the source's fallback index over the destination's would drop what the destination recorded.
   */
  referrers?: { override: boolean | undefined; fallback: boolean } | undefined;
  events: EventSink;
  signal?: AbortSignal | undefined;
  /** Repositories listed ahead of the one being handed out. Default: {@link PLAN_LOOKAHEAD}. */
  lookahead?: number | undefined;
}

/** asMirrorError wraps anything thrown into a MirrorError. */
function asMirrorError(e: unknown): MirrorError {
  return isMirrorError(e) ? e : new MirrorError('REGISTRY', errorMessage(e), { cause: e });
}

/** rethrowIfRunWide throws the errors that stop a whole run (auth, TLS, network, interrupt). */
function rethrowIfRunWide(e: unknown, signal: AbortSignal | undefined): void {
  if (signal?.aborted || isFatal(e)) throw e;
}

/**
 * PLAN_LOOKAHEAD is how many repositories are listed ahead of the one whose jobs are being handed out: each lists
 * its first page of tags (or, with `newest`, reads what it needs) while earlier repositories' images are copied, so
 * a sync of many repositories never waits for one tag list at a time (measured: 24 serial tag lists held back the
 * last, largest images of the bench by 2.4 s under load). At most this many first pages sit in memory.
 */
export const PLAN_LOOKAHEAD = 8;

/** planJobs streams the copy jobs of a config, repository after repository, listing up to {@link PLAN_LOOKAHEAD} ahead. */
export async function* planJobs(ctx: PlanContext): AsyncGenerator<SyncJob, void, undefined> {
  yield* listedAhead(repositoryPlans(ctx), ctx.lookahead ?? PLAN_LOOKAHEAD);
}

/** repositoryPlans gives, entry by entry (a prefix's repositories from the catalog, page by page), each repository's plan, not yet started. */
async function* repositoryPlans(ctx: PlanContext): AsyncGenerator<AsyncGenerator<SyncJob, void, undefined>, void, undefined> {
  for (const entry of ctx.config.entries) {
    let conn: SourceConnection;
    try {
      conn = await ctx.connect(entry.settings ?? entry.registry);
    } catch (e) {
      if (ctx.signal?.aborted) throw e;
      // A source registry that cannot be reached (down, silent, refusing the credentials or the TLS handshake) fails
      // its own entries, each with the registry's error; the other registries' entries go on. What they select is
      // then unknown: their destination repositories are not pruned (another entry may land in the same one).
      ctx.onProblem({ entry, error: asMirrorError(e) });
      unlisted(ctx, entry, asMirrorError(e));
      continue;
    }
    if (entry.kind === 'repository') {
      yield planRepository(ctx, entry, conn, entry.path);
      continue;
    }
    // Every repository under the prefix, from the catalog: a registry that does not list it fails this entry only.
    const listing = conn.catalog.repositories(entry.path, { signal: ctx.signal })[Symbol.asyncIterator]();
    let count = 0;
    let failed = false;
    for (;;) {
      let next: IteratorResult<string>;
      try {
        next = await listing.next();
      } catch (e) {
        if (ctx.signal?.aborted) throw e;
        const why = asMirrorError(e);
        // Refused credentials are said as such (exit 4), not blamed on a registry that does not list its catalog.
        const error =
          why.code === 'AUTH'
            ? new MirrorError('AUTH', `${entry.origin}: ${entry.registry} refused to list its repositories: ${why.describe()}`, { cause: e })
            : new MirrorError('REGISTRY', `${entry.origin}: ${entry.registry} does not list its repositories (GET /v2/_catalog: ${why.describe()})`, {
                cause: e,
                hint: 'name each repository in a "repository:" entry instead',
              });
        ctx.onProblem({ entry, error });
        unlisted(ctx, entry, error);
        failed = true;
        break;
      }
      if (next.done) break;
      count++;
      yield planRepository(ctx, entry, conn, next.value, true);
    }
    if (count === 0 && !failed) ctx.events({ type: 'warning', message: `${entry.origin}: no repository of ${entry.registry} is under "${entry.path}"` });
  }
}

/**
 * unlisted records that an entry selected nothing it could know of: a repository entry's destination repository is
 * incomplete (not pruned); a prefix entry's destination repositories are not known at all.
 */
function unlisted(ctx: PlanContext, entry: SyncEntry, why: MirrorError): void {
  if (entry.kind === 'prefix') {
    ctx.onUnlisted?.(entry, why);
    return;
  }
  let destRepo: string;
  try {
    destRepo = destinationRepository(entry.registry, entry.path, ctx.config.destination);
  } catch {
    return; // Named as a problem when its plan runs; nothing of it was planned.
  }
  if (inShard(destRepo, ctx.shard)) ctx.onRepository?.({ repository: destRepo, tags: new Set(), digests: new Set(), complete: false });
}

/** Started is a repository's plan whose first job is being looked for. */
interface Started {
  plan: AsyncGenerator<SyncJob, void, undefined>;
  first: Promise<IteratorResult<SyncJob, void>>;
}

/**
 * listedAhead hands out the jobs of each plan in order, while the next `depth` plans already look for their first job
 * (their first tag page is listed). A failure of a plan started ahead is thrown when its turn comes; plans started
 * but not reached (the consumer stopped) are closed.
 */
async function* listedAhead(plans: AsyncGenerator<AsyncGenerator<SyncJob, void, undefined>, void, undefined>, depth: number): AsyncGenerator<SyncJob, void, undefined> {
  const queue: Started[] = [];
  let more = true;
  const fill = async (): Promise<void> => {
    while (more && queue.length < depth) {
      const next = await plans.next();
      if (next.done) {
        more = false;
        break;
      }
      const plan = next.value;
      const first = plan.next();
      // Looked at when its turn comes; until then a rejection is not unhandled.
      first.catch(() => {});
      queue.push({ plan, first });
    }
  };
  try {
    for (;;) {
      const head = queue.shift();
      await fill();
      if (head === undefined) {
        if (queue.length === 0) return;
        continue;
      }
      const first = await head.first;
      if (first.done) continue;
      yield first.value;
      yield* head.plan;
    }
  } finally {
    for (const s of queue) void s.first.then(() => s.plan.return(undefined)).catch(() => {});
    await plans.return(undefined);
  }
}

/** planRepository gives the jobs of one source repository of an entry. */
async function* planRepository(ctx: PlanContext, entry: SyncEntry, conn: SourceConnection, repository: string, fromCatalog = false): AsyncGenerator<SyncJob, void, undefined> {
  const dest = ctx.config.destination;
  let destRepo: string;
  try {
    destRepo = destinationRepository(entry.registry, repository, dest);
  } catch (e) {
    ctx.onProblem({ entry, repository, error: asMirrorError(e) });
    return;
  }
  if (!inShard(destRepo, ctx.shard)) return;
  const planned = new Set<string>();
  const tags = new Set<string>();
  const digests = new Set<string>();
  let complete = true;
  const jobOf = (name: SourceName): SyncJob | undefined => {
    let target;
    try {
      target = destinationFor(name, dest, destRepo);
    } catch (e) {
      ctx.onProblem({ entry, repository, error: asMirrorError(e) });
      return undefined;
    }
    const key = target.tag !== undefined ? `:${target.tag}` : `@${target.digest}`;
    if (planned.has(key)) return undefined;
    planned.add(key);
    if (target.tag !== undefined && ctx.onRepository) tags.add(target.tag);
    if (name.digest !== undefined && ctx.onRepository) digests.add(name.digest);
    return {
      entry,
      sourceName: name,
      source: conn.source,
      image: { repository, tag: name.tag, digest: name.digest },
      name: formatSource(name),
      reference: { registry: name.registry, repository, tag: name.tag, digest: name.digest },
      // Under a directory each image is a directory of its own, its tag in its name; the tag stays, so that two images
      // the naming sends to one directory conflict as two claiming one tag do.
      destination: { repository: target.path ?? destRepo, tag: target.tag, name: target.name },
      platforms: entry.platforms,
      referrers: entry.referrers,
    };
  };
  const listed =
    entry.tags !== undefined
      ? fromArray(entry.tags)
      : selectTags(conn.source.tags!(repository, { signal: ctx.signal }), entry.rule, (tag) =>
          createdTime(conn.source, repository, tag, ctx.signal).catch((e: unknown) => {
            // A source that fails (a 5xx, a cut connection) fails the listing, hence the repository: which tags are
            // the newest is then not known, and another tag must not take the place of one that could not be read.
            // A tag gone since the listing, or one whose manifest or config cannot be read as one, is left out.
            rethrowIfRunWide(e, ctx.signal);
            if (!isMirrorError(e) || (e.code !== 'NOT_FOUND' && e.code !== 'BAD_INPUT')) throw e;
            ctx.events({ type: 'warning', message: `${entry.registry}/${repository}:${tag} left out of "newest": its creation time could not be read (${asMirrorError(e).describe()})` });
            return undefined;
          }),
        );
  const travel = ctx.referrers !== undefined && (ctx.referrers.override ?? entry.referrers ?? ctx.referrers.fallback);
  try {
    for await (const tag of listed) {
      if (travel && entry.tags === undefined && isReferrerTag(tag)) {
        ctx.events({ type: 'debug', message: `${entry.registry}/${repository}:${tag} is a referrer tag: it goes with its subject` });
        continue;
      }
      const job = jobOf({ registry: entry.registry, repository, tag });
      if (job) yield job;
    }
  } catch (e) {
    // Only the source is asked here: its failures (down, refusing) fail this repository; the others go on.
    if (ctx.signal?.aborted) throw e;
    if (fromCatalog && isMirrorError(e) && e.context.status === 404) {
      // Listed in the catalog but without tags (an upload area such as push's staging repository): nothing to sync.
      ctx.events({ type: 'debug', message: `${entry.registry}/${repository} has no tags` });
      ctx.onRepository?.({ repository: destRepo, tags, digests, complete });
      return;
    }
    complete = false;
    // A refused credential keeps its code (exit 4); its hint is in what it describes.
    const why = asMirrorError(e);
    ctx.onProblem({
      entry,
      repository,
      error: new MirrorError(why.code === 'AUTH' ? 'AUTH' : 'REGISTRY', `cannot list the tags of ${entry.registry}/${repository}: ${why.describe()}`, { cause: e }),
    });
  }
  for (const digest of entry.digests) {
    const job = jobOf({ registry: entry.registry, repository, digest });
    if (job) yield job;
  }
  if (planned.size === 0 && complete) ctx.events({ type: 'warning', message: `${entry.origin}: nothing selected in ${entry.registry}/${repository}` });
  ctx.onRepository?.({ repository: destRepo, tags, digests, complete });
}

async function* fromArray(list: readonly string[]): AsyncGenerator<string, void, undefined> {
  yield* list;
}

/**
 * createdTime reads an image's creation time from its config (`created`): a HEAD, the manifest, for an index the
 * linux/amd64 (else first) image manifest, and the config blob: two or three GETs per tag. Undefined when absent.
 */
export async function createdTime(source: ImageSource, repository: string, tag: string, signal?: AbortSignal): Promise<number | undefined> {
  const root = await source.resolve({ repository, tag }, { signal });
  let m = await source.manifest(repository, root.digest, { signal });
  let parsed = parseManifest(m.bytes, m.mediaType, { image: `${repository}:${tag}` });
  if (parsed.kind === 'index') {
    const list = parsed.index.manifests.filter((d) => d.platform?.os !== 'unknown');
    const pick = list.find((d) => d.platform?.os === 'linux' && d.platform.architecture === 'amd64') ?? list[0];
    if (pick === undefined) return undefined;
    m = await source.manifest(repository, pick.digest, { signal });
    parsed = parseManifest(m.bytes, m.mediaType, { image: `${repository}:${tag}` });
    if (parsed.kind !== 'image') return undefined;
  }
  const config = parsed.manifest.config;
  if (config.size > CONFIG_READ_LIMIT) return undefined;
  const chunks: Uint8Array[] = [];
  let size = 0;
  for await (const chunk of await source.openBlob(repository, config, { signal })) {
    size += chunk.byteLength;
    if (size > CONFIG_READ_LIMIT) return undefined;
    chunks.push(chunk);
  }
  try {
    const created = (parseJson(Buffer.concat(chunks).toString('utf8')) as { created?: unknown }).created;
    const when = typeof created === 'string' ? Date.parse(created) : NaN;
    return Number.isNaN(when) ? undefined : when;
  } catch {
    return undefined;
  }
}
