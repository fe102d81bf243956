/** Checks of single values in a sync config: each gives what is wrong, or undefined. */
import { setFlagsFromString } from 'node:v8';
import { parsePlatform, type PlatformSpec } from '../../copy/platform.js';
import { isMirrorError } from '../../errors/index.js';
import { isValidDigest, isValidHost, isValidRepository, isValidTag } from '../../reference/reference.js';
import { parseVersionRange } from '../semver.js';
import { shorten } from './shape.js';

let linearFallback = false;

/**
 * useLinearFallback has V8 run a regular expression that backtracks without end (`^(a+)+$` against a long tag) on its
 * linear-time engine instead, as Go's RE2 always does: a pattern from a config file must not hang a cron run that
 * neither --max-duration nor SIGTERM could then stop (the event loop never turns). Set once, before any pattern is
 * compiled; a Node.js without the flag goes on without it.
 */
function useLinearFallback(): void {
  if (linearFallback) return;
  linearFallback = true;
  try {
    setFlagsFromString('--enable-experimental-regexp-engine-on-excessive-backtracks');
  } catch {
    // Not this V8: patterns run as they are.
  }
}

/**
 * FoldedRegExp matches without regard to case by lower-casing the pattern and the text: V8's linear-time engine does
 * not take the `i` flag, so `(?i)` patterns fold case this way and keep the fallback. Tags and repository paths are
 * ASCII, where lower-casing is exact.
 */
class FoldedRegExp extends RegExp {
  override exec(text: string): RegExpExecArray | null {
    return super.exec(text.toLowerCase());
  }
}

/** lowerPattern lower-cases a pattern's letters except those of escapes (`\D`, `\W`, `\S` keep their meaning). */
function lowerPattern(text: string): string {
  return text.replace(/\\.|[A-Z]+/gs, (s) => (s.startsWith('\\') ? s : s.toLowerCase()));
}

/**
 * compileRegex compiles a pattern written for Go's regexp (skopeo, RKE2) as a JavaScript RegExp: a leading `(?i)`
 * folds case, `(?s)` is the `s` flag; Go's `(?P<name>` is a named group and `\z` the end of the text; the rest of
 * RE2's syntax that matters here (classes, anchors, groups) is the same. Matching runs in linear time when a pattern
 * would backtrack without end (see {@link useLinearFallback}).
 */
export function compileRegex(source: string): RegExp | string {
  useLinearFallback();
  let text = source;
  let fold = false;
  let flags = '';
  const m = /^\(\?([is]+)\)/.exec(text);
  if (m) {
    fold = m[1]!.includes('i');
    flags = m[1]!.includes('s') ? 's' : '';
    text = text.slice(m[0].length);
  }
  text = text.replace(/\(\?P</g, '(?<').replace(/\\z/g, '$');
  try {
    return fold ? new FoldedRegExp(lowerPattern(text), flags) : new RegExp(text, flags);
  } catch (e) {
    return `not a valid regular expression: ${(e as Error).message.replace(/^Invalid regular expression: /, '').slice(0, 120)}`;
  }
}

/** checkRegex is a check for a regular expression. */
export function checkRegex(source: string): string | undefined {
  const r = compileRegex(source);
  return typeof r === 'string' ? r : undefined;
}

/** checkVersionRange is a check for a version range. */
export function checkVersionRange(text: string): string | undefined {
  const r = parseVersionRange(text);
  return typeof r === 'string' ? r : undefined;
}

/** checkPlatform is a check for `OS/ARCH[/VARIANT]`. */
export function checkPlatform(text: string): string | undefined {
  try {
    parsePlatform(text);
    return undefined;
  } catch (e) {
    return isMirrorError(e) ? `"${shorten(text)}" is not a platform: use OS/ARCH[/VARIANT], e.g. linux/amd64 or linux/arm64/v8` : String(e);
  }
}

/** platformsOf parses checked platform strings. */
export function platformsOf(list: readonly string[] | undefined): PlatformSpec[] | undefined {
  return list === undefined ? undefined : list.map(parsePlatform);
}

/** checkDigest is a check for a digest (`sha256:<64 hex>`). */
export function checkDigest(text: string): string | undefined {
  return isValidDigest(text) ? undefined : `"${shorten(text)}" is not a digest (sha256:<64 hex digits>)`;
}

/** checkTagOrDigest is a check for an entry of skopeo's `images` lists. */
export function checkTagOrDigest(text: string): string | undefined {
  if (/^[a-z0-9]+(?:[.+_-][a-z0-9]+)*:/.test(text)) return checkDigest(text);
  return isValidTag(text) ? undefined : `"${shorten(text)}" is not a tag or a digest`;
}

/** checkHost is a check for a registry host with an optional port. */
export function checkHost(text: string): string | undefined {
  return isValidHost(text) ? undefined : `"${shorten(text)}" is not a registry host ([HOST][:PORT])`;
}

/** checkRepositoryPath is a check for a repository path (lower-case components). */
export function checkRepositoryPath(text: string): string | undefined {
  return isValidRepository(text) ? undefined : `"${shorten(text)}" is not a repository path (lower-case letters, digits, '.', '_', '-', separated by '/')`;
}

/** checkEnvName is a check for an environment variable name. */
export function checkEnvName(text: string): string | undefined {
  return /^[A-Za-z_][A-Za-z0-9_]*$/.test(text) ? undefined : `"${shorten(text)}" is not an environment variable name`;
}

/** checkHelperName is a check for a credential helper name (the part after `docker-credential-`). */
export function checkHelperName(text: string): string | undefined {
  return /^[A-Za-z0-9][A-Za-z0-9._-]*$/.test(text) ? undefined : `"${shorten(text)}" is not a credential helper name (e.g. "pass", "ecr-login")`;
}
