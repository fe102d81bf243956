/**
 * `--prune`: delete destination tags of synced repositories that are no longer selected upstream (vanished, or no
 * longer passing the filters). The distribution API deletes a manifest by digest only, which removes every tag on
 * it: a digest still tagged by a tag that stays (or that is a child of an index that stays) is not deleted, with a
 * warning. Referrer tags (`sha256-<hex>`, cosign's `.sig`/`.att`/`.sbom`) go with their subject and are never pruned
 * on their own. A repository whose tag listing failed, or a run that was stopped, prunes nothing.
 */
import { isMirrorError, errorMessage } from '../errors/index.js';
import type { EventSink } from '../events/index.js';
import { parseManifest } from '../oci/manifest.js';
import { isIndexMediaType } from '../oci/media-types.js';
import type { RegistryClient } from '../registry/index.js';

/** REFERRER_TAG matches the referrers fallback tag and cosign's tags: `<alg>-<hex>[.sig|.att|.sbom]`. */
const REFERRER_TAG = /^(sha256|sha512)-([0-9a-f]{64}|[0-9a-f]{128})(\.(sig|att|sbom))?$/;

/** isReferrerTag tells whether a tag is the referrers fallback tag of a digest or one of cosign's (`sha256-<hex>.sig`). */
export function isReferrerTag(tag: string): boolean {
  return REFERRER_TAG.test(tag);
}

/** PruneTarget is a destination repository the run synced, and the tags it keeps. */
export interface PruneTarget {
  repository: string;
  kept: ReadonlySet<string>;
  /** Digests the config selects (pinned): never deleted, whatever tags still name them. Default: none. */
  digests?: ReadonlySet<string> | undefined;
  complete: boolean;
}

/** PruneAction is what pruning did (or would do) with one digest of a repository. */
export interface PruneAction {
  repository: string;
  digest: string;
  /** The tags that are no longer selected and pointed at the digest. */
  tags: string[];
  action: 'deleted' | 'would delete' | 'kept' | 'failed';
  /** Why a digest was kept, or why deleting failed. */
  reason?: string | undefined;
}

/** PruneContext is what pruning needs. */
export interface PruneContext {
  client: RegistryClient;
  /** skopeo's --append-suffix: only tags that end with it are this sync's. */
  suffix: string;
  dryRun: boolean;
  events: EventSink;
  signal?: AbortSignal | undefined;
}

/** pruneRepository prunes one repository. */
export async function pruneRepository(target: PruneTarget, ctx: PruneContext): Promise<PruneAction[]> {
  const { client, signal } = ctx;
  const repo = target.repository;
  if (!target.complete) {
    ctx.events({ type: 'warning', message: `${repo} not pruned: its source listing failed, so what is still selected is not known` });
    return [];
  }
  const all: string[] = [];
  try {
    for await (const tag of client.tags(repo, { signal })) all.push(tag);
  } catch (e) {
    // Nothing of it was ever written (every image failed): nothing to prune.
    if (isMirrorError(e) && e.context.status === 404) return [];
    throw e;
  }
  const ours = (tag: string): boolean => !REFERRER_TAG.test(tag) && (ctx.suffix === '' || tag.endsWith(ctx.suffix));
  const stale = all.filter((t) => ours(t) && !target.kept.has(t));
  if (stale.length === 0) return [];
  // Which digest each tag names, and what must stay.
  const digestOf = new Map<string, string>();
  const protectedBy = new Map<string, string>();
  for (const digest of target.digests ?? []) protectedBy.set(digest, 'selected by digest in the config');
  for (const tag of all) {
    const info = await client.headManifest(repo, tag, { signal });
    if (info === undefined) continue;
    digestOf.set(tag, info.digest);
    if (stale.includes(tag) || REFERRER_TAG.test(tag)) continue;
    if (!protectedBy.has(info.digest)) protectedBy.set(info.digest, tag);
    if (isIndexMediaType(info.mediaType)) {
      const m = await client.getManifest(repo, info.digest, { signal });
      const parsed = parseManifest(m.bytes, m.mediaType, { image: `${repo}:${tag}` });
      if (parsed.kind === 'index') for (const d of parsed.index.manifests) if (!protectedBy.has(d.digest)) protectedBy.set(d.digest, `${tag} (in its index)`);
    }
  }
  const byDigest = new Map<string, string[]>();
  for (const tag of stale) {
    const d = digestOf.get(tag);
    if (d === undefined) continue;
    byDigest.set(d, [...(byDigest.get(d) ?? []), tag]);
  }
  const actions: PruneAction[] = [];
  const deleted = new Set<string>();
  const remove = async (digest: string, tags: string[]): Promise<void> => {
    const keeper = protectedBy.get(digest);
    if (keeper !== undefined) {
      const reason = target.digests?.has(digest)
        ? `${keeper}; deleting the tag would delete the manifest`
        : `still tagged ${keeper}; the registry deletes manifests by digest, which would remove that tag too`;
      ctx.events({ type: 'warning', message: `${repo}:${tags.join(', :')} is no longer selected but not deleted: ${digest} is ${reason}` });
      actions.push({ repository: repo, digest, tags, action: 'kept', reason });
      return;
    }
    if (ctx.dryRun) {
      actions.push({ repository: repo, digest, tags, action: 'would delete' });
      deleted.add(digest);
      return;
    }
    try {
      await ctx.client.deleteManifest(repo, digest, { signal });
      deleted.add(digest);
      actions.push({ repository: repo, digest, tags, action: 'deleted' });
    } catch (e) {
      if (signal?.aborted || (isMirrorError(e) && (e.code === 'AUTH' || e.code === 'INTERRUPTED'))) throw e;
      actions.push({ repository: repo, digest, tags, action: 'failed', reason: errorMessage(e) });
    }
  };
  for (const [digest, tags] of byDigest) await remove(digest, tags);
  // Referrer tags whose subject is gone go with it.
  for (const tag of all) {
    const m = REFERRER_TAG.exec(tag);
    const own = digestOf.get(tag);
    if (m === null || own === undefined || !deleted.has(`${m[1]}:${m[2]}`) || deleted.has(own)) continue;
    await remove(own, [tag]);
  }
  return actions;
}
