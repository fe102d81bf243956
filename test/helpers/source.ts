/** Helpers for the tests of image sources: read a blob body whole, expect a MirrorError of a code. */
import assert from 'node:assert/strict';
import { MirrorError } from '../../src/errors/index.js';

/** collect reads a blob body whole. */
export async function collect(it: AsyncIterable<Uint8Array>): Promise<Buffer> {
  const parts: Buffer[] = [];
  for await (const c of it) parts.push(Buffer.from(c));
  return Buffer.concat(parts);
}

/** rejectsWith expects `p` to fail with a MirrorError of `code` whose description matches `pattern`, and gives it. */
export async function rejectsWith(p: Promise<unknown>, code: string, pattern: RegExp): Promise<MirrorError> {
  try {
    await p;
  } catch (e) {
    assert.ok(e instanceof MirrorError, String(e));
    assert.equal(e.code, code, e.message);
    assert.match(e.describe(), pattern);
    return e;
  }
  assert.fail('expected a failure');
}
