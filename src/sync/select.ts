/**
 * Tag selection for a listed repository: include and exclude regular expressions, a version range, then the newest
 * N (by version, or by the `created` time of each image's config). Tags stream through; only `newest` holds tags
 * back, and then never more than N of them.
 */
import semver from 'semver';
import type { TagRule } from './config/model.js';
import { parseTagVersion, versionInRange } from './semver.js';

/** CreatedOf gives an image's creation time (epoch ms) by tag, or undefined when its config does not say. */
export type CreatedOf = (tag: string) => Promise<number | undefined>;

/** passes tells whether a tag passes a rule's include, exclude and version filters. */
export function passes(tag: string, rule: TagRule | undefined): boolean {
  if (rule === undefined) return true;
  if (rule.include.length > 0 && !rule.include.some((r) => test(r, tag))) return false;
  if (rule.exclude.some((r) => test(r, tag))) return false;
  if (rule.semver !== undefined && !versionInRange(tag, rule.semver)) return false;
  return true;
}

/** test runs a pattern without the state a `g` or `y` flag would keep between calls. */
function test(r: RegExp, text: string): boolean {
  r.lastIndex = 0;
  return r.test(text);
}

/** Ranked is a tag and what orders it. */
interface Ranked {
  tag: string;
  key: semver.SemVer | number;
}

function compare(a: Ranked, b: Ranked): number {
  const byKey = typeof a.key === 'number' ? a.key - (b.key as number) : semver.compare(a.key, b.key as semver.SemVer);
  return byKey !== 0 ? byKey : a.tag < b.tag ? -1 : a.tag > b.tag ? 1 : 0;
}

/**
 * selectTags gives the tags of `listed` the rule keeps. With `newest`, tags that are not versions (by semver), or
 * whose config says no creation time (by created), are left out; ties are broken by the tag's name.
 */
export async function* selectTags(listed: AsyncIterable<string>, rule: TagRule | undefined, createdOf?: CreatedOf): AsyncGenerator<string, void, undefined> {
  const newest = rule?.newest;
  if (newest === undefined) {
    for await (const tag of listed) if (passes(tag, rule)) yield tag;
    return;
  }
  // The N largest so far, smallest first.
  const kept: Ranked[] = [];
  for await (const tag of listed) {
    if (!passes(tag, rule)) continue;
    let key: semver.SemVer | number | undefined;
    if (newest.by === 'semver') key = parseTagVersion(tag);
    else key = createdOf === undefined ? undefined : await createdOf(tag);
    if (key === undefined) continue;
    const item = { tag, key };
    if (kept.length === newest.count && compare(item, kept[0]!) <= 0) continue;
    let i = kept.findIndex((k) => compare(item, k) < 0);
    if (i < 0) i = kept.length;
    kept.splice(i, 0, item);
    if (kept.length > newest.count) kept.shift();
  }
  for (let i = kept.length - 1; i >= 0; i--) yield kept[i]!.tag;
}
