/**
 * The two text formats the generated files are written in, kept to what those files need: TOML (containerd's
 * `hosts.toml`, `registries.conf`) and YAML (RKE2, OpenShift, bmctl, Kubernetes). Every scalar goes through one
 * quoting rule per format, so any string (a path with quotes, a password with control characters) comes out as
 * the same string when the file is read, and the same input always gives the same bytes.
 */

/** HEADER_WIDTH is the width header comments are wrapped at. */
export const HEADER_WIDTH = 118;

/** unicodeEscape writes one character as a `\uXXXX` escape (both formats read it). */
function unicodeEscape(ch: string): string {
  return `\\u${ch.charCodeAt(0).toString(16).toUpperCase().padStart(4, '0')}`;
}

/**
 * tomlString writes a TOML basic string: `"` and `\` escaped, and every control character (U+0000-U+001F but tab,
 * U+007F), which TOML does not allow raw in a basic string.
 */
export function tomlString(s: string): string {
  return doubleQuoted(s, (c) => c < 0x20 || c === 0x7f || (c >= 0xd800 && c <= 0xdfff));
}

/**
 * doubleQuoted writes `s` in double quotes with `"`, `\`, newline, return and tab escaped as `\"`, `\\`, `\n`, `\r`,
 * `\t`, and every other code point `mustEscape` names as a `\u`/`\U` escape: the string syntax TOML and YAML share.
 */
function doubleQuoted(s: string, mustEscape: (codePoint: number) => boolean): string {
  let out = '"';
  for (const ch of s) {
    const c = ch.codePointAt(0)!;
    if (ch === '"') out += '\\"';
    else if (ch === '\\') out += '\\\\';
    else if (ch === '\n') out += '\\n';
    else if (ch === '\r') out += '\\r';
    else if (ch === '\t') out += '\\t';
    else if (mustEscape(c)) out += unicodeEscape(ch);
    else out += ch;
  }
  return `${out}"`;
}

/** tomlKey writes a TOML key: bare when it is only letters, digits, `_` and `-`, else a quoted string. */
export function tomlKey(k: string): string {
  return /^[A-Za-z0-9_-]+$/.test(k) ? k : tomlString(k);
}

/** tomlArray writes an inline array of strings (or of arrays of strings). */
export function tomlArray(items: ReadonlyArray<string | readonly string[]>): string {
  return `[${items.map((i) => (typeof i === 'string' ? tomlString(i) : tomlArray(i))).join(', ')}]`;
}

/** YAML_KEYWORDS are plain words YAML 1.1 (go-yaml v2, PyYAML) or 1.2 reads as something other than a string. */
const YAML_KEYWORDS = new Set(['y', 'n', 'yes', 'no', 'on', 'off', 'true', 'false', 'null', '~']);

/**
 * yamlString writes a YAML scalar for a string: plain when it is a letter followed by letters, digits and `._/-`
 * and no YAML 1.1 keyword (`yes`, `on`, `null`...), else double-quoted with `"`, `\` and every character outside
 * YAML's printable set (C0 and C1 controls, DEL, U+2028/U+2029, U+FEFF, lone surrogates) escaped. A number, a
 * `host:port`, a regular expression or an empty string is always quoted, so every YAML reader gets a string back.
 */
export function yamlString(s: string): string {
  if (/^[A-Za-z][A-Za-z0-9._/-]*$/.test(s) && !YAML_KEYWORDS.has(s.toLowerCase())) return s;
  return doubleQuoted(s, (c) => c < 0x20 || (c >= 0x7f && c <= 0x9f) || c === 0x2028 || c === 0x2029 || c === 0xfeff || (c >= 0xd800 && c <= 0xdfff));
}

/** YamlValue is what {@link yamlLines} writes: strings, booleans, lists and maps (keys kept in insertion order). */
export type YamlValue = string | boolean | readonly YamlValue[] | YamlMap;

/** YamlMap is a YAML mapping; undefined values are left out. */
export interface YamlMap {
  readonly [key: string]: YamlValue | undefined;
}

/** isMap tells a mapping from the other values. */
function isMap(v: YamlValue): v is YamlMap {
  return typeof v === 'object' && !Array.isArray(v);
}

/** scalar writes a string or boolean. */
function scalar(v: string | boolean): string {
  return typeof v === 'boolean' ? String(v) : yamlString(v);
}

/**
 * literalSafe tells whether a multi-line string can be written as a literal block (`|`): it ends with exactly one
 * newline, its first line does not start with a space, and it has only printable characters, tabs and newlines.
 */
function literalSafe(s: string): boolean {
  if (!s.endsWith('\n') || s.endsWith('\n\n') || !s.slice(0, -1).includes('\n') || /^[ \t]/.test(s)) return false;
  return !/[\u0000-\u0008\u000b-\u001f\u007f-\u009f\u2028\u2029\ufeff\ud800-\udfff]/.test(s);
}

/** entries gives a map's entries without the undefined ones. */
function entries(m: YamlMap): Array<[string, YamlValue]> {
  return Object.entries(m).filter((e): e is [string, YamlValue] => e[1] !== undefined);
}

/**
 * yamlLines writes a value in block style, two spaces per level, list items indented under their key
 * (`key:\n  - item`); an empty list or map is written inline (`[]`, `{}`).
 */
export function yamlLines(value: YamlValue, indent = 0): string[] {
  const pad = ' '.repeat(indent);
  if (typeof value === 'string' || typeof value === 'boolean') return [`${pad}${scalar(value)}`];
  if (Array.isArray(value)) {
    if (value.length === 0) return [`${pad}[]`];
    const out: string[] = [];
    for (const item of value as readonly YamlValue[]) {
      if (typeof item === 'string' || typeof item === 'boolean') {
        out.push(`${pad}- ${scalar(item)}`);
        continue;
      }
      // A map or list in a list: its first line goes after the dash, the rest lines up under it.
      const inner = yamlLines(item, indent + 2);
      const first = inner[0] ?? '';
      out.push(`${pad}- ${first.slice(indent + 2)}`, ...inner.slice(1));
    }
    return out;
  }
  const map = value as YamlMap;
  const list = entries(map);
  if (list.length === 0) return [`${pad}{}`];
  const out: string[] = [];
  for (const [k, v] of list) {
    const key = yamlString(k);
    if (typeof v === 'string' && literalSafe(v)) {
      out.push(`${pad}${key}: |`, ...v.slice(0, -1).split('\n').map((l) => (l === '' ? '' : `${pad}  ${l}`)));
    } else if (typeof v === 'string' || typeof v === 'boolean') out.push(`${pad}${key}: ${scalar(v)}`);
    else if (Array.isArray(v) && v.length === 0) out.push(`${pad}${key}: []`);
    else if (isMap(v) && entries(v).length === 0) out.push(`${pad}${key}: {}`);
    else out.push(`${pad}${key}:`, ...yamlLines(v, indent + 2));
  }
  return out;
}

/** yamlDocument writes a mapping as a YAML document (no `---`), ending with a newline. */
export function yamlDocument(value: YamlMap): string {
  return `${yamlLines(value).join('\n')}\n`;
}

/**
 * commentBlock writes text as `#` comment lines: each paragraph wrapped at {@link HEADER_WIDTH}; a line that
 * starts with two spaces is kept as it is (a command to copy). Control characters are replaced, so nothing taken
 * from the input can end the comment.
 */
export function commentBlock(paragraphs: readonly string[]): string {
  const out: string[] = [];
  for (const raw of paragraphs) {
    const p = raw.replace(/[\u0000-\u001f\u007f-\u009f\u2028\u2029]/g, '?');
    if (p.startsWith('  ')) {
      out.push(`#${p}`);
      continue;
    }
    let line = '#';
    for (const word of p.split(' ').filter((w) => w !== '')) {
      if (line.length > 1 && line.length + 1 + word.length > HEADER_WIDTH) {
        out.push(line);
        line = '#  ';
      }
      line += line.endsWith(' ') ? word : ` ${word}`;
    }
    out.push(line);
  }
  return `${out.join('\n')}\n`;
}
