/**
 * The sync documentation agrees with the code: docs/sync.schema.json is what the validating shape writes (so the
 * two cannot drift apart), and docs/sync.example.yaml is a valid file that uses every key the format has.
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { NATIVE_SHAPE, parseNativeYaml } from '../../src/sync/config/native.js';
import { syncJsonSchemaText } from '../../src/sync/config/schema.js';
import type { Shape } from '../../src/sync/config/shape.js';

const DOCS = join(dirname(fileURLToPath(import.meta.url)), '..', '..', '..', 'docs');

/** keys lists every property name of a shape. */
function keys(s: Shape): string[] {
  if (s.type === 'object') return Object.entries(s.properties).flatMap(([k, v]) => [k, ...keys(v)]);
  if (s.type === 'array') return keys(s.items);
  if (s.type === 'map') return keys(s.values);
  return [];
}

describe('sync docs', () => {
  it('docs/sync.schema.json is generated from the shape that validates (npm run sync-schema)', () => {
    assert.equal(readFileSync(join(DOCS, 'sync.schema.json'), 'utf8'), syncJsonSchemaText());
  });

  it('docs/sync.example.yaml is valid and uses every key', () => {
    const text = readFileSync(join(DOCS, 'sync.example.yaml'), 'utf8');
    const config = parseNativeYaml(text, 'docs/sync.example.yaml');
    assert.equal(config.entries.length, 4);
    for (const k of new Set(keys(NATIVE_SHAPE))) assert.match(text, new RegExp(`(^|[\\s{,])${k}:`, 'm'), `the example shows ${k}`);
  });
});
