/**
 * The one place that knows the live secrets of a run, and the one scrubber applied to text before people see it.
 *
 * The credential chain and the token fetcher register each secret as they learn it (a password, a bearer or
 * identity token, a refresh token); {@link safeText} then takes them out of any text (a token server's error body,
 * a credential helper's stderr, a registry message that quotes what it was sent), removes credentials written into
 * URLs, and escapes control characters (ESC, CR, BEL, the other C0 and C1 controls, bidi overrides) so a name from a
 * bundle or a message from a server can never drive the terminal.
 */

/** SECRET_MASK replaces a secret in printed text. */
export const SECRET_MASK = '***';

/**
 * MIN_SUBSTRING_SECRET is the shortest secret taken out wherever it occurs (tokens); a shorter one (most passwords)
 * is taken out only where it stands alone, between characters that are not letters or digits (`user:pass`,
 * `"pass"`, `p=pass&`). Masking a short one inside words would mangle the tool's own text (`--password` printed as
 * `--***word`) and, worse, tell the reader which word the password is part of.
 */
export const MIN_SUBSTRING_SECRET = 16;

/** MIN_SECRET is the shortest secret remembered at all: one character would mask that letter everywhere. */
export const MIN_SECRET = 2;

/** MAX_SECRETS bounds how many secrets are remembered (tokens renewed during a long run); the oldest go first. */
export const MAX_SECRETS = 512;

const secrets = new Set<string>();
let compiled: RegExp | undefined;
let compiledFor = -1;
let generation = 0;

function escapeRegExp(s: string): string {
  return s.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&');
}

function add(secret: string): void {
  if (secret.length < MIN_SECRET || secrets.has(secret)) return;
  secrets.add(secret);
  while (secrets.size > MAX_SECRETS) {
    const oldest = secrets.values().next().value;
    if (oldest === undefined) break;
    secrets.delete(oldest);
  }
  generation++;
}

/**
 * registerSecret remembers a secret so that {@link scrubSecrets} takes it out of any text, in the forms a server
 * or helper may echo it: as is, JSON-escaped (inside a quoted JSON string) and URL-encoded. Values that are not
 * non-empty strings are ignored, so a caller can hand over a field it has not checked.
 */
export function registerSecret(...values: unknown[]): void {
  for (const value of values) {
    if (typeof value !== 'string' || value === '') continue;
    add(value);
    add(JSON.stringify(value).slice(1, -1));
    add(encodeURIComponent(value));
  }
}

/** forgetSecrets drops every registered secret (tests; a process that is done with its credentials). */
export function forgetSecrets(): void {
  secrets.clear();
  generation++;
}

/** knownSecretCount says how many secret forms are registered (tests). */
export function knownSecretCount(): number {
  return secrets.size;
}

function pattern(): RegExp | undefined {
  if (secrets.size === 0) return undefined;
  if (compiled !== undefined && compiledFor === generation) return compiled;
  // Longest first, so a secret that contains another is taken out whole.
  const alternatives = [...secrets]
    .sort((a, b) => b.length - a.length)
    .map((s) => (s.length >= MIN_SUBSTRING_SECRET ? escapeRegExp(s) : `(?<![\\p{L}\\p{N}])${escapeRegExp(s)}(?![\\p{L}\\p{N}])`));
  compiled = new RegExp(alternatives.join('|'), 'gu');
  compiledFor = generation;
  return compiled;
}

/** scrubSecrets replaces every registered secret in `text` with {@link SECRET_MASK}. */
export function scrubSecrets(text: string): string {
  const re = pattern();
  if (re === undefined) return text;
  re.lastIndex = 0;
  return text.replace(re, SECRET_MASK);
}

const URL_USERINFO = /\b([a-z][a-z0-9+.-]*:\/\/)[^\s/?#@"'<>]*@/gi;

/** redactUserinfo removes credentials written into URLs inside a text (`https://user:pass@host` → `https://***@host`). */
export function redactUserinfo(text: string): string {
  return text.replace(URL_USERINFO, `$1${SECRET_MASK}@`);
}

/**
 * Characters that must not reach a terminal raw: C0 controls (ESC, CR, BEL, BS, ...), DEL, C1 controls (a lone
 * U+009B is a CSI on some terminals), the bidi embeddings, overrides and isolates that reorder what is shown
 * (Trojan Source), U+061C, LRM/RLM, and the Unicode line and paragraph separators.
 */
const CONTROL_ALL = /[\u0000-\u001f\u007f-\u009f\u061c\u200e\u200f\u2028\u2029\u202a-\u202e\u2066-\u2069]/g;
/** The same, keeping newline and tab (text of several lines: a stack trace, a pretty-printed JSON document). */
const CONTROL_KEEP_LINES = /[\u0000-\u0008\u000b-\u001f\u007f-\u009f\u061c\u200e\u200f\u2028\u2029\u202a-\u202e\u2066-\u2069]/g;

/**
 * escapeChar writes one control character: C0 as `\x1b` (JSON escapes these itself, so they never reach this raw in
 * a JSON document), everything else as `\u009b`, which is also a valid escape inside a JSON string.
 */
function escapeChar(c: string): string {
  const code = c.charCodeAt(0);
  return code < 0x20 ? `\\x${code.toString(16).padStart(2, '0')}` : `\\u${code.toString(16).padStart(4, '0')}`;
}

/** EscapeOptions tune {@link escapeControl} and {@link safeText}. */
export interface EscapeOptions {
  /** Keep newlines and tabs (text of several lines). Default: false, so the text stays on one line. */
  multiline?: boolean | undefined;
}

/**
 * escapeControl writes control characters visibly: `\x1b` for ESC, `\x0d` for CR, `\u009b` for a C1 CSI, `\u202e`
 * for a bidi override. The `\u` escapes are valid inside a JSON string too, so a JSON document stays one.
 */
export function escapeControl(text: string, options: EscapeOptions = {}): string {
  return text.replace(options.multiline ? CONTROL_KEEP_LINES : CONTROL_ALL, escapeChar);
}

/**
 * safeText makes a text fit to print: registered secrets and URL credentials taken out, control characters
 * escaped. Apply it where messages are made or printed (error lines, warnings, debug lines, JSON output, reports).
 */
export function safeText(text: string, options: EscapeOptions = {}): string {
  return escapeControl(scrubSecrets(redactUserinfo(text)), options);
}

/**
 * safeExcerpt gives the first line of a text fit to print ({@link safeText}), cut to `limit` characters with `...`.
 * Secrets come out before the cut: a cut first would leave the start of a secret that no longer matches it.
 */
export function safeExcerpt(text: string, limit: number): string {
  const line = safeText(text.split('\n')[0] ?? '');
  return line.length > limit ? `${line.slice(0, limit)}...` : line;
}
