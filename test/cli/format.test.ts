import { strict as assert } from 'node:assert';
import { subjectAnd } from '../../src/cli/format.js';

describe('cli/format', () => {
  describe('subjectAnd', () => {
    it('puts the subject before a cause that does not name it', () => {
      assert.equal(subjectAnd('gcr.io/a/b:1', 'blob sha256:ab is missing'), 'gcr.io/a/b:1: blob sha256:ab is missing');
    });

    it('gives a cause that starts with the subject alone, so the subject is not written twice', () => {
      const where = 'index.json manifests[0] (sha256:ab)';
      assert.equal(subjectAnd(where, `${where} in b.tar has no image name`), `${where} in b.tar has no image name`);
    });

    it('a cause that names the subject later, or no cause at all, keeps the subject first', () => {
      assert.equal(subjectAnd('a:1', 'conflict: a:1 and b:1'), 'a:1: conflict: a:1 and b:1');
      assert.equal(subjectAnd('a:1', undefined), 'a:1: ');
      assert.equal(subjectAnd('a:1', 'a:10 is not a:1'), 'a:1: a:10 is not a:1', 'another name that begins the same');
    });
  });
});
