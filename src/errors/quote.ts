/**
 * The one rule for putting text that came from input (a bundle's names, tags, annotation values and file names, a
 * server's answer) into a message: at most a short prefix of it, and how long it really was. A hostile bundle can name
 * an image with 100,000 characters; a message that quoted it whole would be neither one line nor readable.
 */

/** INPUT_QUOTE_MAX is how many characters of an input string a message quotes by default. */
export const INPUT_QUOTE_MAX = 80;

/**
 * clipInput gives `value` as it may appear in a message: whole when it has at most `max` characters, else its first
 * `max` characters, `…` and the full length (`gcr.io/aaaa… (100007 characters)`). A value that is not a string is
 * described by its type (`an object`), never serialized, so a deeply nested or huge JSON value is never walked.
 */
export function clipInput(value: unknown, max: number = INPUT_QUOTE_MAX): string {
  if (typeof value !== 'string') {
    if (typeof value === 'number' || typeof value === 'boolean' || value === null || value === undefined) return clipInput(String(value), max);
    return Array.isArray(value) ? 'a list' : `a${typeof value === 'object' ? 'n' : ''} ${typeof value}`;
  }
  if (value.length <= max) return value;
  let cut = Math.max(0, max);
  // Never split a surrogate pair.
  const code = value.charCodeAt(cut - 1);
  if (code >= 0xd800 && code <= 0xdbff) cut--;
  return `${value.slice(0, cut)}… (${value.length} characters)`;
}
