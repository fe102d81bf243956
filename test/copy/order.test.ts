import assert from 'node:assert/strict';
import { byHeight, waves } from '../../src/copy/order.js';
import type { ManifestNode } from '../../src/copy/result.js';

const node = (digest: string): ManifestNode => ({ digest, mediaType: 'm', size: 1, bytes: new Uint8Array() });

describe('copy commit order (byHeight, waves)', () => {
  it('a manifest listed by a sibling index goes before it, though the walk met the index first', () => {
    // outer -> [inner, x, y], inner -> [x]: the walk gives inner, x, y, outer.
    const listed = new Map([
      ['outer', ['inner', 'x', 'y']],
      ['inner', ['x']],
    ]);
    const ordered = byHeight(['inner', 'x', 'y', 'outer'].map(node), listed);
    assert.deepEqual(
      ordered.map((m) => [m.digest, m.height]),
      [
        ['x', 0],
        ['y', 0],
        ['inner', 1],
        ['outer', 2],
      ],
    );
    assert.deepEqual(
      waves(ordered).map((w) => w.map((m) => m.digest)),
      [['x', 'y'], ['inner'], ['outer']],
    );
  });

  it('an index of image manifests: every platform manifest in one wave, the index after; one image alone is one wave', () => {
    const ordered = byHeight(['a', 'b', 'c', 'idx'].map(node), new Map([['idx', ['a', 'b', 'c']]]));
    assert.deepEqual(waves(ordered).map((w) => w.map((m) => m.digest)), [['a', 'b', 'c'], ['idx']]);
    assert.deepEqual(waves(byHeight([node('only')], new Map())).map((w) => w.length), [1]);
  });

  it('stays finite on a listing that loops (which no digest can make)', () => {
    const ordered = byHeight(['p', 'q'].map(node), new Map([['p', ['q']], ['q', ['p']]]));
    assert.equal(ordered.length, 2);
  });
});
