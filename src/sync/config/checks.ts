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

/** POSIX_CLASSES are RE2's `[[:name:]]` classes, as the ranges JavaScript writes them. */
const POSIX_CLASSES: Record<string, string> = {
  alnum: '0-9A-Za-z',
  alpha: 'A-Za-z',
  ascii: '\\x00-\\x7f',
  blank: '\\t ',
  cntrl: '\\x00-\\x1f\\x7f',
  digit: '0-9',
  graph: '!-~',
  lower: 'a-z',
  print: ' -~',
  punct: '!-\\/:-@\\[-`{-~',
  space: '\\t\\n\\v\\f\\r ',
  upper: 'A-Z',
  word: '0-9A-Za-z_',
  xdigit: '0-9A-Fa-f',
};

/**
 * fromGoSyntax writes what RE2 reads differently from JavaScript in JavaScript's terms: `[[:digit:]]` classes,
 * `\Q...\E` literals, `\pL` (one-letter Unicode classes, which need the `u` flag), `(?P<name>` groups and `\z`.
 * What RE2 does not take at all (lookaround, backreferences) is refused, as skopeo refuses it.
 */
function fromGoSyntax(source: string): { text: string; unicode: boolean; refused?: string | undefined } {
  let out = '';
  let unicode = false;
  let inClass = false;
  for (let i = 0; i < source.length; i++) {
    const c = source[i]!;
    if (c === '\\') {
      const n = source[i + 1] ?? '';
      if (n === 'Q') {
        const end = source.indexOf('\\E', i + 2);
        const literal = source.slice(i + 2, end < 0 ? source.length : end);
        out += literal.replace(/[\\^$.*+?()[\]{}|\/-]/g, '\\$&');
        i = end < 0 ? source.length : end + 1;
        continue;
      }
      if (n === 'z' && !inClass) {
        out += '$';
        i++;
        continue;
      }
      if ((n === 'p' || n === 'P') && /[A-Za-z]/.test(source[i + 2] ?? '')) {
        out += `\\${n}{${source[i + 2]}}`;
        unicode = true;
        i += 2;
        continue;
      }
      if ((n === 'p' || n === 'P') && source[i + 2] === '{') unicode = true;
      if (/[1-9]/.test(n) || n === 'k') return { text: source, unicode, refused: 'a backreference' };
      out += c + n;
      i++;
      continue;
    }
    if (inClass) {
      if (c === '[' && source[i + 1] === ':') {
        const m = /^\[:(\^?)([a-z]+):\]/.exec(source.slice(i));
        const ranges = m ? POSIX_CLASSES[m[2]!] : undefined;
        if (m && ranges !== undefined && m[1] === '') {
          out += ranges;
          i += m[0].length - 1;
          continue;
        }
      }
      if (c === ']') inClass = false;
      out += c;
      continue;
    }
    if (c === '[') {
      inClass = true;
      out += c;
      // A ']' first in a class is a literal one, in RE2 as in POSIX.
      if (source[i + 1] === '^') out += source[++i];
      if (source[i + 1] === ']') {
        out += '\\]';
        i++;
      }
      continue;
    }
    if (c === '(' && source[i + 1] === '?') {
      const rest = source.slice(i + 2);
      if (/^(=|!|<=|<!)/.test(rest)) return { text: source, unicode, refused: 'a lookaround' };
      if (rest.startsWith('P<')) {
        out += '(?<';
        i += 3;
        continue;
      }
    }
    out += c;
  }
  return { text: out, unicode };
}

/**
 * compileRegex compiles a pattern written for Go's regexp (skopeo, RKE2) as a JavaScript RegExp: a leading `(?i)`
 * folds case, `(?s)` is the `s` flag; what RE2 writes otherwise is translated (see {@link fromGoSyntax}); the rest
 * (classes, anchors, groups, repetition) is the same. Matching runs in linear time when a pattern would backtrack
 * without end (see {@link useLinearFallback}).
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
  const go = fromGoSyntax(text);
  if (go.refused !== undefined) return `not a regular expression Go's regexp (RE2) takes, as skopeo reads it: ${go.refused}`;
  text = go.text;
  if (go.unicode) flags += 'u';
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
