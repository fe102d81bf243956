/** The conflict rule on its own: which claims conflict, and what each policy decides. End to end: push-conflicts.test.ts. */
import assert from 'node:assert/strict';
import { type Claim, describeClaims, settleConflicts } from '../../src/copy/conflicts.js';

const D1 = `sha256:${'1'.repeat(64)}`;
const D2 = `sha256:${'2'.repeat(64)}`;
const D3 = `sha256:${'3'.repeat(64)}`;

function claim(source: string, repository: string, tag: string | undefined, digest: string, failed = false): Claim {
  return { source, sourceRegistry: source.split('/')[0], destination: `reg/${repository}${tag ? `:${tag}` : `@${digest}`}`, repository, tag, digest, failed };
}

describe('settleConflicts', () => {
  it('two different images at one repository:tag conflict; with fail both fail, naming both sources and digests', () => {
    const claims = [claim('docker.io/team/app:1.0', 'ns/team/app', '1.0', D1), claim('quay.io/team/app:1.0', 'ns/team/app', '1.0', D2), claim('gcr.io/x/y:1', 'ns/x/y', '1', D3)];
    const d = settleConflicts(claims, 'fail');
    assert.deepEqual([...d.keys()], [0, 1], 'the third image is not part of it');
    for (const i of [0, 1]) {
      const x = d.get(i)!;
      assert.equal(x.conflict.resolution, 'failed');
      assert.equal(x.error?.code, 'BAD_INPUT');
      const line = x.error!.describe();
      for (const s of ['reg/ns/team/app:1.0', 'docker.io/team/app:1.0', 'quay.io/team/app:1.0', 'sha256:111111111111', 'sha256:222222222222', '--keep-registry-host']) {
        assert.ok(line.includes(s), `${s} in: ${line}`);
      }
      assert.deepEqual(x.conflict.claims, [{ source: 'docker.io/team/app:1.0', digest: D1 }, { source: 'quay.io/team/app:1.0', digest: D2 }]);
    }
  });

  it('the same digest twice under one name is no conflict; digest-only images never conflict', () => {
    assert.equal(settleConflicts([claim('a.io/x:1', 'ns/x', '1', D1), claim('b.io/x:1', 'ns/x', '1', D1)], 'fail').size, 0);
    assert.equal(settleConflicts([claim('a.io/x', 'ns/x', undefined, D1), claim('b.io/x', 'ns/x', undefined, D2)], 'fail').size, 0);
    assert.equal(settleConflicts([claim('a.io/x:1', 'ns/x', '1', D1), claim('a.io/x:2', 'ns/x', '2', D2)], 'fail').size, 0, 'other tag');
  });

  it('one name given twice offers only --on-conflict first (the host is the same)', () => {
    const d = settleConflicts([claim('a.io/x:1', 'ns/x', '1', D1), claim('a.io/x:1', 'ns/x', '1', D2)], 'fail');
    assert.equal(d.size, 2);
    assert.doesNotMatch(d.get(0)!.error!.describe(), /keep-registry-host/);
  });

  it('with first, the first in order wins, its same-digest twins too, and the others are skipped', () => {
    const claims = [claim('a.io/x:1', 'ns/x', '1', D1), claim('b.io/x:1', 'ns/x', '1', D2), claim('c.io/x:1', 'ns/x', '1', D1)];
    const d = settleConflicts(claims, 'first');
    assert.deepEqual([0, 1, 2].map((i) => d.get(i)?.conflict.resolution), ['won', 'skipped', 'won']);
    assert.ok([0, 1, 2].every((i) => d.get(i)?.error === undefined && d.get(i)?.conflict.winner === 'a.io/x:1'));
  });

  it('with first, an image that fails anyway cannot win', () => {
    const d = settleConflicts([claim('a.io/x:1', 'ns/x', '1', D1, true), claim('b.io/x:1', 'ns/x', '1', D2)], 'first');
    assert.equal(d.get(1)?.conflict.resolution, 'won');
    assert.equal(d.get(0)?.conflict.resolution, 'skipped');
  });

  it('names at most three claimants in a message', () => {
    const many = Array.from({ length: 50 }, (_, i) => ({ source: `r${i}.io/x:1`, digest: `sha256:${String(i).padStart(64, '0')}` }));
    const text = describeClaims(many);
    assert.match(text, /and 47 more$/);
    assert.ok(text.length < 200, text);
    assert.equal(describeClaims(many.slice(0, 3)).split(' and ').length, 2);
  });
});
