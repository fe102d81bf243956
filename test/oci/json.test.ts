/** JSON from outside: nesting checked on the text before JSON.parse builds anything (src/oci/json.ts). */
import assert from 'node:assert/strict';
import { jsonTextNestsDeeper, JsonTooDeepError, MAX_JSON_DEPTH, parseJson } from '../../src/oci/json.js';
import { decodeJson } from '../../src/oci/manifest.js';
import { MirrorError } from '../../src/errors/index.js';

const nested = (depth: number): string => '['.repeat(depth) + ']'.repeat(depth);

describe('oci/json', () => {
  it('counts arrays and objects inside each other, up to the bound and no further', () => {
    assert.equal(jsonTextNestsDeeper(nested(MAX_JSON_DEPTH)), false);
    assert.equal(jsonTextNestsDeeper(nested(MAX_JSON_DEPTH + 1)), true);
    assert.equal(jsonTextNestsDeeper('{"a":{"b":[{"c":1}]}}', 4), false);
    assert.equal(jsonTextNestsDeeper('{"a":{"b":[{"c":1}]}}', 3), true);
    // Siblings do not add up: depth is how far in, not how many.
    assert.equal(jsonTextNestsDeeper(`[${Array.from({ length: 1000 }, () => '[1]').join(',')}]`, 2), false);
  });

  it('skips brackets inside strings, escaped quotes and backslashes included; bytes read as text is', () => {
    const text = JSON.stringify({ s: '[[[[{{{{ \\" \\\\" [[[[', t: ['x"[[', 'ü[日本]'] });
    assert.equal(jsonTextNestsDeeper(text, 2), false);
    assert.equal(jsonTextNestsDeeper(Buffer.from(text, 'utf8'), 2), false);
    assert.equal(jsonTextNestsDeeper(Buffer.from(nested(3)), 2), true);
    assert.deepEqual(parseJson(Buffer.from(text, 'utf8')), JSON.parse(text));
  });

  it('refuses 4 MiB of [[[[ before parsing: a JsonTooDeepError (a SyntaxError), in milliseconds and without the memory JSON.parse takes', () => {
    const evil = Buffer.alloc(4 * 1024 * 1024, '[');
    const before = process.memoryUsage().heapUsed;
    const t0 = performance.now();
    assert.throws(() => parseJson(evil), (e: unknown) => e instanceof JsonTooDeepError && e instanceof SyntaxError && /deeper than 256 levels/.test(e.message));
    const ms = performance.now() - t0;
    const grown = process.memoryUsage().heapUsed - before;
    assert.ok(ms < 500, `${ms} ms`);
    assert.ok(grown < 16 * 1024 * 1024, `heap grew ${grown} bytes`);
  });

  it('decodeJson names what it read: too deep, or not JSON', () => {
    assert.throws(
      () => decodeJson(Buffer.from(nested(1000)), 'manifest sha256:abc'),
      (e: unknown) => e instanceof MirrorError && e.code === 'BAD_INPUT' && e.message === 'manifest sha256:abc nests JSON deeper than 256 levels, which no image format does; refused',
    );
    assert.throws(() => decodeJson(Buffer.from('{"a":'), 'index.json'), (e: unknown) => e instanceof MirrorError && e.message === 'index.json is not valid JSON');
  });
});
