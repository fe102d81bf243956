/**
 * JSON from outside (registries, token servers, archives, layouts) is checked for nesting on its text, before
 * JSON.parse builds anything: a 4 MiB document of `[[[[...` is two million nested arrays, which JSON.parse accepts
 * at a cost of hundreds of megabytes (and which crash every recursive walk afterwards).
 */

/**
 * MAX_JSON_DEPTH bounds how deep the JSON documents read from outside may nest arrays and objects. Real ones
 * (index.json, manifest.json, manifests, image configs, tag lists, token answers) nest 5 or 6 levels; Go's
 * encoding/json, which the registries and containerd use, stops at 10,000.
 */
export const MAX_JSON_DEPTH = 256;

/** JsonTooDeepError is thrown by {@link parseJson} for a document nested deeper than its bound (a SyntaxError, as JSON.parse's own). */
export class JsonTooDeepError extends SyntaxError {
  constructor(readonly maxDepth: number) {
    super(`JSON nested deeper than ${maxDepth} levels`);
    this.name = 'JsonTooDeepError';
  }
}

const QUOTE = 0x22;
const BACKSLASH = 0x5c;
const OPEN_BRACKET = 0x5b;
const CLOSE_BRACKET = 0x5d;
const OPEN_BRACE = 0x7b;
const CLOSE_BRACE = 0x7d;

/**
 * jsonTextNestsDeeper tells whether JSON text (a string, or its UTF-8 bytes) opens more than `max` arrays and objects
 * inside each other, skipping the brackets inside strings. One pass, no allocation; for text that is not valid JSON
 * the answer only bounds the work (JSON.parse then refuses it).
 */
export function jsonTextNestsDeeper(text: string | Uint8Array, max: number = MAX_JSON_DEPTH): boolean {
  const bytes = typeof text !== 'string';
  const n = bytes ? text.byteLength : text.length;
  let depth = 0;
  let inString = false;
  for (let i = 0; i < n; i++) {
    // Multi-byte UTF-8 sequences never hold an ASCII byte, so the bytes can be scanned as the characters are.
    const c = bytes ? text[i]! : text.charCodeAt(i);
    if (inString) {
      if (c === BACKSLASH) i++;
      else if (c === QUOTE) inString = false;
    } else if (c === QUOTE) inString = true;
    else if (c === OPEN_BRACKET || c === OPEN_BRACE) {
      if (++depth > max) return true;
    } else if (c === CLOSE_BRACKET || c === CLOSE_BRACE) depth--;
  }
  return false;
}

/**
 * parseJson is JSON.parse for text from outside: a document nested deeper than `max` is refused with a
 * {@link JsonTooDeepError} before it is parsed. Bytes are read as UTF-8.
 */
export function parseJson(text: string | Uint8Array, max: number = MAX_JSON_DEPTH): unknown {
  if (jsonTextNestsDeeper(text, max)) throw new JsonTooDeepError(max);
  return JSON.parse(typeof text === 'string' ? text : Buffer.from(text.buffer, text.byteOffset, text.byteLength).toString('utf8')) as unknown;
}
