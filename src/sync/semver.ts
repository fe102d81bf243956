/**
 * Tags read as versions, and version ranges, the way skopeo's `images-by-semver` reads them (Masterminds/semver):
 * a tag `v1.2`, `1.2.3`, `1.2.3-rc.1` or `2` is a version (missing parts are 0); a range is written as
 * `>=1.2, <2.0` (comma or space: and), `||` (or), `~1.2`, `^1.2`, `1.2.x`, `1.2 - 1.4`. Matching is npm's semver:
 * a pre-release version matches only a range that names a pre-release of the same version, as in Masterminds.
 */
import semver from 'semver';

/** TagVersionRange is a parsed range with the text it was written as. */
export interface TagVersionRange {
  text: string;
  range: semver.Range;
}

const LOOSE_VERSION = /^v?(0|[1-9]\d*)(?:\.(0|[1-9]\d*))?(?:\.(0|[1-9]\d*))?(-[0-9A-Za-z.-]+)?(\+[0-9A-Za-z.-]+)?$/;

/** parseTagVersion reads a tag as a version (`v1.2` is 1.2.0), or undefined when it is not one. */
export function parseTagVersion(tag: string): semver.SemVer | undefined {
  const m = LOOSE_VERSION.exec(tag);
  if (m === null) return undefined;
  const text = `${m[1]}.${m[2] ?? '0'}.${m[3] ?? '0'}${m[4] ?? ''}${m[5] ?? ''}`;
  return semver.parse(text) ?? undefined;
}

/** parseVersionRange reads a range; it gives what is wrong as a string when it does not read. */
export function parseVersionRange(text: string): TagVersionRange | string {
  const trimmed = text.trim();
  if (trimmed === '') return 'an empty version range';
  if (/!=/.test(trimmed)) return `"!=" is not supported in a version range (write the ranges around it with ||)`;
  // Masterminds separates the parts of an "and" with commas; npm's semver with spaces.
  const spaced = trimmed.replace(/\s*,\s*/g, ' ').replace(/(^|\s|\|\|)v(?=\d)/g, '$1').replace(/([<>=~^]+)\s*v?(?=\d)/g, '$1');
  try {
    return { text: trimmed, range: new semver.Range(spaced) };
  } catch {
    return `"${trimmed.slice(0, 60)}" is not a version range (e.g. ">=1.2, <2.0", "~1.4", "^2")`;
  }
}

/** versionInRange tells whether a tag reads as a version within the range. */
export function versionInRange(tag: string, range: TagVersionRange): boolean {
  const v = parseTagVersion(tag);
  return v !== undefined && range.range.test(v);
}
