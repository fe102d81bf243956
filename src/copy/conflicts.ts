/**
 * Two images never claim one tag silently. Images of one run that map to the same destination reference
 * (repository and tag) with different digests are a conflict: `docker.io/team/app:1.0` and `quay.io/team/app:1.0`
 * pushed into one namespace (the host is dropped), two `index.json` entries with one name, or a `docker save`
 * manifest.json with one RepoTag twice. The same image (same digest) named twice is not a conflict, and neither is a
 * tag that already exists at the destination (it is overwritten): only claims made in one run count.
 */
import { MirrorError } from '../errors/index.js';
import type { ImageConflict } from './result.js';

/** ConflictPolicy says what happens to images that claim one destination reference with different digests. */
export type ConflictPolicy =
  /** Every image claiming the reference fails (exit 7 when others went through); the rest of the run goes on. */
  | 'fail'
  /** The first image in bundle order wins; the others are reported as `skipped-conflict`. */
  | 'first';

/** CONFLICT_POLICIES lists the values of {@link ConflictPolicy}, for flags. */
export const CONFLICT_POLICIES: readonly ConflictPolicy[] = ['fail', 'first'];

/** DEFAULT_CONFLICT_POLICY is `fail`: nothing is chosen for the user. */
export const DEFAULT_CONFLICT_POLICY: ConflictPolicy = 'fail';

/** CONFLICT_LIST_MAX bounds how many claimants a message names. */
const CONFLICT_LIST_MAX = 3;

/** Claim is what the check needs to know of one image of the run. */
export interface Claim {
  /** The source name, for messages. */
  source: string;
  /** The source registry host, when known (a hint offers --keep-registry-host only when hosts differ). */
  sourceRegistry: string | undefined;
  /** The full destination reference, for messages. */
  destination: string;
  /** Destination repository and tag; claims without a tag (digest-only images) never conflict. */
  repository: string;
  tag: string | undefined;
  /** The root manifest digest the tag would point at. */
  digest: string;
  /** True when the image fails anyway for a reason of its own: it cannot win a tag. */
  failed: boolean;
}

/** ConflictDecision is what the policy decided for one claim that is part of a conflict. */
export interface ConflictDecision {
  conflict: ImageConflict;
  /** Set when the image must fail because of the conflict (`fail`). */
  error?: MirrorError | undefined;
}

/**
 * settleConflicts finds the destination references claimed with different digests and applies the policy. It gives
 * a decision for each claim (by its position in `claims`) that takes part in a conflict; claims not in the map are
 * untouched. The order of `claims` is the bundle order.
 */
export function settleConflicts(claims: readonly Claim[], policy: ConflictPolicy): Map<number, ConflictDecision> {
  const groups = new Map<string, number[]>();
  for (const [i, c] of claims.entries()) {
    if (c.tag === undefined) continue;
    const key = `${c.repository}:${c.tag}`;
    let group = groups.get(key);
    if (!group) groups.set(key, (group = []));
    group.push(i);
  }
  const out = new Map<number, ConflictDecision>();
  for (const members of groups.values()) {
    if (new Set(members.map((i) => claims[i]!.digest)).size < 2) continue;
    const list = members.map((i) => claims[i]!);
    const reference = list[0]!.destination;
    const entries = list.map((c) => ({ source: c.source, digest: c.digest }));
    if (policy === 'first') {
      const winner = list.find((c) => !c.failed);
      for (const [j, i] of members.entries()) {
        const c = list[j]!;
        const resolution = winner !== undefined && c.digest === winner.digest ? 'won' : 'skipped';
        out.set(i, { conflict: { reference, claims: entries, resolution, ...(winner ? { winner: winner.source } : {}) } });
      }
      continue;
    }
    const hosts = new Set(list.map((c) => c.sourceRegistry));
    const hint = hosts.size > 1 ? 'use --on-conflict first, or --keep-registry-host' : 'use --on-conflict first';
    const error = new MirrorError('BAD_INPUT', `${reference} is claimed by different images: ${describeClaims(list)}`, { hint });
    for (const i of members) out.set(i, { conflict: { reference, claims: entries, resolution: 'failed' }, error });
  }
  return out;
}

/** describeClaims names the claimants of one reference with their short digests (`a (sha256:0123…) and b (…)`). */
export function describeClaims(list: ReadonlyArray<{ source: string; digest: string }>): string {
  const shown = list.slice(0, CONFLICT_LIST_MAX).map((c) => `${c.source} (${shortDigest(c.digest)})`);
  const more = list.length - shown.length;
  if (more > 0) return `${shown.join(', ')} and ${more} more`;
  return shown.length <= 2 ? shown.join(' and ') : `${shown.slice(0, -1).join(', ')} and ${shown[shown.length - 1]!}`;
}

function shortDigest(d: string): string {
  const i = d.indexOf(':');
  return i < 0 ? d.slice(0, 12) : d.slice(0, i + 13);
}
