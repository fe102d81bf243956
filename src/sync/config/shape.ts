/**
 * One description of a config file's shape, used twice: to validate a parsed YAML document node by node (so every
 * mistake is answered with FILE:LINE:COLUMN and what is wrong), and to write the JSON schema editors use
 * (`docs/sync.schema.json` is generated from it, so the two cannot drift apart).
 */
import { isAlias, isMap, isPair, isScalar, isSeq, LineCounter, parseDocument, type Document, type Node, type Pair, type YAMLMap } from 'yaml';
import { errorMessage, MirrorError } from '../../errors/index.js';

/** Check validates a value that has the right type; it returns what is wrong, or undefined. */
export type Check<T> = (value: T) => string | undefined;

interface Common {
  /** One line for the schema and for messages. */
  description?: string | undefined;
  /** `null` (an empty value in YAML) is accepted and read as absent. Default: false. */
  nullable?: boolean | undefined;
}

/** Shape is the expected shape of a value. */
export type Shape =
  | (Common & { type: 'string'; enum?: readonly string[] | undefined; check?: Check<string> | undefined; format?: string | undefined })
  | (Common & { type: 'integer' | 'number'; minimum?: number | undefined; maximum?: number | undefined; exclusiveMinimum?: number | undefined })
  | (Common & { type: 'boolean' })
  | (Common & { type: 'array'; items: Shape; minItems?: number | undefined })
  | (Common & {
      type: 'object';
      properties: Record<string, Shape>;
      required?: readonly string[] | undefined;
      /** Exactly one of these keys must be present. */
      exactlyOne?: readonly string[] | undefined;
      /** Unknown keys: an error (default) or a warning (formats read as another tool reads them). */
      unknown?: 'error' | 'warn' | undefined;
      /** Checks across keys, once each key is valid. */
      check?: Check<Record<string, unknown>> | undefined;
      /** Said after an unknown key instead of the list of known keys. */
      unknownHint?: string | undefined;
    })
  | (Common & { type: 'map'; keys: { description: string; check?: Check<string> | undefined }; values: Shape });

/** Issue is one mistake (or warning) found in a file. */
export interface Issue {
  line: number;
  column: number;
  /** The dotted path of the value (`sync[2].tags.newest`). */
  path: string;
  message: string;
  /** A warning for a value that failed its check and was left out (with {@link ParseOptions.skipInvalid}). */
  skipped?: boolean | undefined;
}

/** ParseOptions tune {@link parseYaml}. */
export interface ParseOptions {
  /**
   * A value that fails its check (a key, a tag, a pattern) is left out with a warning instead of being a mistake, as
   * skopeo skips an entry it cannot use and syncs the rest. Wrong types are mistakes still. Default: false.
   */
  skipInvalid?: boolean | undefined;
  /**
   * A key given twice in one mapping: `refuse` makes it a mistake; `last` takes the last one and warns about each
   * earlier one, as skopeo 1.x (go-yaml v2) takes the last silently. Default: `refuse`.
   */
  duplicateKeys?: 'refuse' | 'last' | undefined;
}

/** ConfigError is a config file with mistakes: a USAGE error (exit 2) whose message names the first, FILE:LINE:COLUMN. */
export class ConfigError extends MirrorError {
  constructor(
    readonly file: string,
    readonly issues: readonly Issue[],
  ) {
    const first = issues[0];
    const where = first ? `${file}:${first.line}:${first.column}: ${first.path ? `${first.path}: ` : ''}${first.message}` : file;
    super('USAGE', issues.length > 1 ? `${where} (and ${issues.length - 1} more mistake${issues.length > 2 ? 's' : ''})` : where, { file });
    this.name = 'ConfigError';
  }

  /** lines gives every mistake as `FILE:LINE:COLUMN: path: message`. */
  lines(): string[] {
    return this.issues.map((i) => formatIssue(this.file, i));
  }
}

/** formatIssue writes an issue as `FILE:LINE:COLUMN: path: message`. */
export function formatIssue(file: string, i: Issue): string {
  return `${file}:${i.line}:${i.column}: ${i.path ? `${i.path}: ` : ''}${i.message}`;
}

/** Located is a validated value with the position of every object and array in it (by path), for later messages. */
export interface Located {
  value: unknown;
  /** `FILE:LINE:COLUMN` of each node by path (`sync[2]`, `registries."quay.io"`). */
  positions: Map<string, string>;
  warnings: Issue[];
}

/** MAX_ALIASES bounds how many aliases a file may use (go-yaml bounds their expansion too). */
const MAX_ALIASES = 1000;

/** YAML11_BOOLEANS are YAML 1.1's words for true and false. */
const YAML11_BOOLEANS = new Map<string, boolean>([
  ...['y', 'Y', 'yes', 'Yes', 'YES', 'on', 'On', 'ON'].map((w): [string, boolean] => [w, true]),
  ...['n', 'N', 'no', 'No', 'NO', 'off', 'Off', 'OFF'].map((w): [string, boolean] => [w, false]),
]);

/** MAX_ISSUES bounds how many mistakes are collected. */
const MAX_ISSUES = 20;

/** shorten quotes at most a short prefix of a value from the file. */
export function shorten(text: string, max = 60): string {
  const flat = text.replace(/[\u0000-\u001f\u007f]/g, ' ');
  return flat.length > max ? `${flat.slice(0, max)}…` : flat;
}

/** keyPath appends a key to a path, quoted when it is not a plain word. */
export function keyPath(path: string, key: string): string {
  const part = /^[A-Za-z_][A-Za-z0-9_-]*$/.test(key) ? key : JSON.stringify(key);
  return path === '' ? part : `${path}.${part}`;
}

/** closest suggests a known key for an unknown one (edit distance at most 2). */
function closest(key: string, known: string[]): string | undefined {
  let best: string | undefined;
  let bestD = 3;
  for (const k of known) {
    const d = distance(key.toLowerCase(), k.toLowerCase());
    if (d < bestD) {
      bestD = d;
      best = k;
    }
  }
  return best;
}

function distance(a: string, b: string): number {
  const row = Array.from({ length: b.length + 1 }, (_, i) => i);
  for (let i = 1; i <= a.length; i++) {
    let prev = row[0]!;
    row[0] = i;
    for (let j = 1; j <= b.length; j++) {
      const cur = row[j]!;
      row[j] = Math.min(row[j]! + 1, row[j - 1]! + 1, prev + (a[i - 1] === b[j - 1] ? 0 : 1));
      prev = cur;
    }
  }
  return row[b.length]!;
}

/** typeName names what a node holds, for messages. */
function typeName(node: unknown): string {
  if (isMap(node)) return 'a mapping';
  if (isSeq(node)) return 'a list';
  if (isScalar(node)) {
    const v = node.value;
    if (v === null) return 'nothing';
    if (typeof v === 'string') return `"${shorten(v, 40)}"`;
    return String(v);
  }
  return 'something else';
}

/**
 * parseYaml parses `text` (one YAML document) and validates it against `shape`. Syntax errors and mistakes become a
 * {@link ConfigError} listing each with its line and column; unknown keys of `unknown: 'warn'` objects come back as
 * warnings.
 */
export function parseYaml(text: string, file: string, shape: Shape, options: ParseOptions = {}): Located {
  const counter = new LineCounter();
  const lastWins = options.duplicateKeys === 'last';
  // A byte order mark (an editor on Windows) is no part of the text.
  if (text.startsWith('\uFEFF')) text = text.slice(1);
  let doc: Document;
  try {
    doc = parseDocument(text, { lineCounter: counter, prettyErrors: false, uniqueKeys: !lastWins, strict: true });
  } catch (e) {
    // The YAML library recurses per level of nesting: a file nested thousands deep ends its stack.
    throw new ConfigError(file, [{ line: 1, column: 1, path: '', message: e instanceof RangeError ? 'nested too deeply to be a sync file' : `not readable as YAML: ${errorMessage(e)}` }]);
  }
  const issues: Issue[] = [];
  const warnings: Issue[] = [];
  const positions = new Map<string, string>();
  for (const e of doc.errors.slice(0, MAX_ISSUES)) {
    // Where the error is, from its offset (prettyErrors, which would set linePos, also rewrites the message).
    const pos = e.linePos?.[0] ?? counter.linePos(e.pos[0]);
    const message = (e.message.split('\n')[0] ?? 'YAML syntax error').replace(/; please use YAML\.parseAllDocuments\(\)/, ': a sync file is one document');
    issues.push({ line: pos.line, column: pos.col, path: '', message });
  }
  if (issues.length > 0) throw new ConfigError(file, issues);
  const at = (node: { range?: [number, number, number] | null | undefined } | null | undefined, fallback: number): { line: number; column: number } => {
    const offset = node?.range?.[0] ?? fallback;
    const p = counter.linePos(offset);
    return { line: p.line, column: p.col };
  };
  const report = (list: Issue[], node: Node | Pair | null | undefined, path: string, message: string, fallback = 0): void => {
    if (issues.length >= MAX_ISSUES) return;
    const n = isPair(node) ? (node.key as Node | null) : node;
    list.push({ ...at(n, fallback), path, message });
  };
  /** invalid reports a value that failed its check: a mistake, or with skipInvalid a warning (the value left out). */
  const invalid = (node: Node | Pair | null | undefined, path: string, message: string): void => {
    if (options.skipInvalid) warnings.push({ ...at(isPair(node) ? (node.key as Node | null) : node, 0), path, message, skipped: true });
    else report(issues, node, path, message);
  };

  // Aliases (`*name`) stand for what their anchor names, as go-yaml (skopeo) reads them; bounded, so that aliases of
  // aliases cannot make a small file a huge one.
  let aliases = 0;
  const deref = (node: Node | null | undefined, path: string): Node | null | undefined => {
    for (let hops = 0; node !== null && node !== undefined && isAlias(node); hops++) {
      if (++aliases > MAX_ALIASES || hops > 16) throw new ConfigError(file, [{ ...at(node, 0), path, message: `more than ${MAX_ALIASES} aliases: not read` }]);
      const target = node.resolve(doc);
      if (target === undefined) {
        report(issues, node, path, `alias *${node.source} names no anchor`);
        return undefined;
      }
      node = target as Node;
    }
    return node;
  };
  /** lastOfEach keeps the last pair of each plain key, warning about each earlier one (`duplicateKeys: 'last'`). */
  const dropped = new WeakSet<Pair>();
  const lastOfEach = (items: Pair[], path: string): Pair[] => {
    const last = new Map<string, Pair>();
    for (const p of items) if (isScalar(p.key) && p.key.value !== '<<') last.set(String(p.key.value), p);
    if (last.size === items.length) return items;
    return items.filter((p) => {
      if (!isScalar(p.key) || p.key.value === '<<') return true;
      const key = String(p.key.value);
      const kept = last.get(key)!;
      if (kept === p) return true;
      if (dropped.has(p)) return false;
      dropped.add(p);
      const line = at(kept.key as Node, 0).line;
      report(warnings, p, keyPath(path, key), `given again at line ${line}, which is the one used: this one is not`);
      return false;
    });
  };
  /** pairsOf gives a mapping's pairs with YAML merge keys (`<<: *common`) taken in: what the mapping says itself wins. */
  const pairsOf = (node: YAMLMap, path: string): Pair[] => {
    const items = lastWins ? lastOfEach(node.items as Pair[], path) : (node.items as Pair[]);
    const own = items.filter((p) => !(isScalar(p.key) && p.key.value === '<<'));
    if (own.length === items.length) return items;
    const has = new Set(own.map((p) => (isScalar(p.key) ? String(p.key.value) : '')));
    const merged: Pair[] = [...(own as Pair[])];
    for (const p of items) {
      if (!(isScalar(p.key) && p.key.value === '<<')) continue;
      const v = deref(p.value as Node | null, path);
      const sources = isSeq(v) ? v.items.map((i) => deref(i as Node, path)) : [v];
      for (const m of sources) {
        if (!isMap(m)) {
          report(issues, p, keyPath(path, '<<'), `a merge key takes a mapping or a list of them, got ${typeName(m)}`);
          continue;
        }
        for (const q of pairsOf(m, path)) {
          const k = isScalar(q.key) ? String(q.key.value) : '';
          if (has.has(k)) continue;
          has.add(k);
          merged.push(q);
        }
      }
    }
    return merged;
  };

  const walk = (raw: Node | null | undefined, s: Shape, path: string, parentOffset: number): unknown => {
    const node = deref(raw, path);
    const here = node?.range?.[0] ?? parentOffset;
    if (node === null || node === undefined || (isScalar(node) && node.value === null)) {
      if (s.nullable) return undefined;
      report(issues, node, path, `expected ${expected(s)}, got nothing`, here);
      return undefined;
    }
    switch (s.type) {
      case 'string': {
        if (!isScalar(node) || typeof node.value !== 'string') {
          // A number or boolean where text is wanted is text, as YAML readers of other tools take it.
          if (isScalar(node) && (typeof node.value === 'number' || typeof node.value === 'boolean') && s.enum === undefined) {
            const text = String(node.source ?? node.value);
            return checked(node, s, path, text);
          }
          report(issues, node, path, `expected ${expected(s)}, got ${typeName(node)}`);
          return undefined;
        }
        return checked(node, s, path, node.value);
      }
      case 'integer':
      case 'number': {
        const v = isScalar(node) ? node.value : undefined;
        if (typeof v !== 'number' || (s.type === 'integer' && !Number.isInteger(v))) {
          report(issues, node, path, `expected ${expected(s)}, got ${typeName(node)}`);
          return undefined;
        }
        if ((s.minimum !== undefined && v < s.minimum) || (s.maximum !== undefined && v > s.maximum) || (s.exclusiveMinimum !== undefined && v <= s.exclusiveMinimum)) {
          report(issues, node, path, `expected ${expected(s)}, got ${v}`);
          return undefined;
        }
        return v;
      }
      case 'boolean': {
        let v = isScalar(node) ? node.value : undefined;
        // YAML 1.1's words for them, which go-yaml (skopeo) reads into a bool too.
        if (typeof v === 'string' && YAML11_BOOLEANS.has(v)) v = YAML11_BOOLEANS.get(v);
        if (typeof v !== 'boolean') {
          report(issues, node, path, `expected true or false, got ${typeName(node)}`);
          return undefined;
        }
        return v;
      }
      case 'array': {
        if (!isSeq(node)) {
          report(issues, node, path, `expected ${expected(s)}, got ${typeName(node)}`);
          return undefined;
        }
        positions.set(path, `${file}:${at(node, here).line}:${at(node, here).column}`);
        if (s.minItems !== undefined && node.items.length < s.minItems) report(issues, node, path, `expected at least ${s.minItems} item${s.minItems > 1 ? 's' : ''}`);
        return node.items.map((item, i) => {
          const it = deref(item as Node, `${path}[${i}]`);
          // An empty item (`- ~`) where a value is wanted: with skipInvalid it is left out, as skopeo leaves out what it
          // cannot use.
          if (options.skipInvalid && !s.items.nullable && (it === null || it === undefined || (isScalar(it) && it.value === null))) {
            invalid(isScalar(it) ? it : node, `${path}[${i}]`, `expected ${expected(s.items)}, got nothing`);
            return undefined;
          }
          return walk(it, s.items, `${path}[${i}]`, here);
        });
      }
      case 'object':
      case 'map': {
        if (!isMap(node)) {
          report(issues, node, path, `expected ${expected(s)}, got ${typeName(node)}`);
          return undefined;
        }
        const pos = at(node, here);
        positions.set(path, `${file}:${pos.line}:${pos.column}`);
        return s.type === 'map' ? walkMap(node, s, path) : walkObject(node, s, path);
      }
    }
  };

  const checked = (node: Node, s: Extract<Shape, { type: 'string' }>, path: string, text: string): string | undefined => {
    if (s.enum !== undefined && !s.enum.includes(text)) {
      report(issues, node, path, `expected ${s.enum.map((e) => JSON.stringify(e)).join(' or ')}, got "${shorten(text)}"`);
      return undefined;
    }
    const why = s.check?.(text);
    if (why !== undefined) {
      invalid(node, path, why);
      return undefined;
    }
    return text;
  };

  const keyOf = (pair: Pair, path: string): string | undefined => {
    const k = pair.key;
    if (isScalar(k) && (typeof k.value === 'string' || typeof k.value === 'number')) return String(k.value);
    report(issues, pair, path, `expected a plain key, got ${typeName(k)}`);
    return undefined;
  };

  const walkMap = (node: YAMLMap, s: Extract<Shape, { type: 'map' }>, path: string): Record<string, unknown> => {
    const out: Record<string, unknown> = {};
    for (const pair of pairsOf(node, path)) {
      const key = keyOf(pair, path);
      if (key === undefined) continue;
      const sub = keyPath(path, key);
      const why = s.keys.check?.(key);
      if (why !== undefined) {
        invalid(pair, sub, why);
        continue;
      }
      const keyNode = pair.key as Node;
      const valuePos = keyNode.range?.[2] ?? keyNode.range?.[0] ?? 0;
      const pos = at(pair.value as Node | null, valuePos);
      positions.set(sub, `${file}:${pos.line}:${pos.column}`);
      out[key] = walk(pair.value as Node | null, s.values, sub, valuePos);
    }
    return out;
  };

  const walkObject = (node: YAMLMap, s: Extract<Shape, { type: 'object' }>, path: string): Record<string, unknown> => {
    const out: Record<string, unknown> = {};
    const known = Object.keys(s.properties);
    const before = issues.length;
    const pairs = pairsOf(node, path);
    for (const pair of pairs) {
      const key = keyOf(pair, path);
      if (key === undefined) continue;
      const sub = keyPath(path, key);
      const prop = s.properties[key];
      if (prop === undefined) {
        const near = closest(key, known);
        const message = `unknown key "${shorten(key, 40)}"${near ? ` (did you mean "${near}"?)` : s.unknownHint ? ` (${s.unknownHint})` : ` (known: ${known.join(', ')})`}`;
        report(s.unknown === 'warn' ? warnings : issues, pair, sub, message);
        continue;
      }
      const keyNode = pair.key as Node;
      const valuePos = keyNode.range?.[2] ?? keyNode.range?.[0] ?? 0;
      out[key] = walk(pair.value as Node | null, prop, sub, valuePos);
    }
    const present = (k: string): boolean => pairs.some((p) => isScalar(p.key) && String(p.key.value) === k);
    for (const k of s.required ?? []) if (!present(k)) report(issues, node, path, `missing "${k}"${s.properties[k]?.description ? ` (${s.properties[k]!.description})` : ''}`);
    if (s.exactlyOne !== undefined) {
      const given = s.exactlyOne.filter(present);
      if (given.length !== 1) report(issues, node, path, given.length === 0 ? `needs one of ${s.exactlyOne.map((k) => `"${k}"`).join(', ')}` : `give only one of ${given.map((k) => `"${k}"`).join(', ')}`);
    }
    if (s.check !== undefined && issues.length === before) {
      const why = s.check(out);
      if (why !== undefined) report(issues, node, path, why);
    }
    return out;
  };

  const value = walk(doc.contents as Node | null, shape, '', 0);
  const byPlace = (a: Issue, b: Issue): number => a.line - b.line || a.column - b.column;
  issues.sort(byPlace);
  if (issues.length > 0) throw new ConfigError(file, issues);
  return { value, positions, warnings: warnings.sort(byPlace) };
}

/** expected says what a shape wants, for messages. */
function expected(s: Shape): string {
  switch (s.type) {
    case 'string':
      return s.enum ? s.enum.map((e) => JSON.stringify(e)).join(' or ') : s.description && s.description.length < 60 ? `a string (${s.description})` : 'a string';
    case 'integer':
    case 'number': {
      const kind = s.type === 'integer' ? 'an integer' : 'a number';
      if (s.minimum !== undefined && s.maximum !== undefined) return `${kind} from ${s.minimum} to ${s.maximum}`;
      if (s.exclusiveMinimum !== undefined) return `${kind} above ${s.exclusiveMinimum}`;
      if (s.minimum !== undefined) return `${kind} of at least ${s.minimum}`;
      return kind;
    }
    case 'boolean':
      return 'true or false';
    case 'array':
      return 'a list';
    case 'object':
    case 'map':
      return 'a mapping';
  }
}

/** toJsonSchema writes a shape as JSON Schema (draft 2020-12). */
export function toJsonSchema(s: Shape): Record<string, unknown> {
  const base: Record<string, unknown> = {};
  if (s.description !== undefined) base['description'] = s.description;
  const typed = (t: string): unknown => (s.nullable ? [t, 'null'] : t);
  switch (s.type) {
    case 'string':
      return { ...base, type: typed('string'), ...(s.enum ? { enum: [...s.enum] } : {}), ...(s.format ? { format: s.format } : {}) };
    case 'integer':
    case 'number':
      return {
        ...base,
        type: typed(s.type),
        ...(s.minimum !== undefined ? { minimum: s.minimum } : {}),
        ...(s.maximum !== undefined ? { maximum: s.maximum } : {}),
        ...(s.exclusiveMinimum !== undefined ? { exclusiveMinimum: s.exclusiveMinimum } : {}),
      };
    case 'boolean':
      return { ...base, type: typed('boolean') };
    case 'array':
      return { ...base, type: typed('array'), items: toJsonSchema(s.items), ...(s.minItems !== undefined ? { minItems: s.minItems } : {}) };
    case 'map':
      return { ...base, type: typed('object'), propertyNames: { description: s.keys.description }, additionalProperties: toJsonSchema(s.values) };
    case 'object': {
      const properties: Record<string, unknown> = {};
      for (const [k, v] of Object.entries(s.properties)) properties[k] = toJsonSchema(v);
      const out: Record<string, unknown> = { ...base, type: typed('object'), properties, additionalProperties: s.unknown === 'warn' };
      if (s.required && s.required.length > 0) out['required'] = [...s.required];
      if (s.exactlyOne) out['oneOf'] = s.exactlyOne.map((k) => ({ required: [k] }));
      return out;
    }
  }
}
