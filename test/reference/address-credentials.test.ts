/** Credentials written into a registry address are refused, and the refusal never repeats them. */
import assert from 'node:assert/strict';
import { parseLoginTarget } from '../../src/registry/registry-login.js';
import { MirrorError } from '../../src/errors/index.js';
import { findAddressCredentials, parseTarget } from '../../src/reference/destination.js';

const SECRET = 'hunter2';

describe('reference/destination: credentials in the registry address', () => {
  const forms = [
    `http://user:${SECRET}@127.0.0.1:5000/ns`,
    `https://user:${SECRET}@registry.local/v2/ns`,
    `user:${SECRET}@registry.local:5000/ns`,
    `http://user:${SECRET}@bad host/ns`,
    `https://user:p/${SECRET}@host:5000`,
    `https://${SECRET}@host:5000`,
  ];

  it('findAddressCredentials finds them and gives the address with *** in their place', () => {
    assert.deepEqual(findAddressCredentials(`http://user:${SECRET}@127.0.0.1:5000/ns`), { redacted: 'http://***@127.0.0.1:5000/ns' });
    assert.deepEqual(findAddressCredentials(`user:p@ss:${SECRET}@host:5000`), { redacted: '***@host:5000' });
    assert.equal(findAddressCredentials('https://127.0.0.1:5000/v2/ns'), undefined);
    assert.equal(findAddressCredentials('host:5000/ns'), undefined);
  });

  for (const input of forms) {
    it(`--private-registry ${input.replace(SECRET, '<secret>')}: a USAGE error that names the fix and not the secret`, () => {
      assert.throws(
        () => parseTarget(input),
        (e: unknown) => {
          assert.ok(e instanceof MirrorError && e.code === 'USAGE');
          const line = e.describe();
          assert.ok(!line.includes(SECRET), line);
          assert.match(line, /\*\*\*@/);
          assert.match(line, /--username with --password-stdin/);
          return true;
        },
      );
    });
  }

  it('mirror login HOST: the same refusal', () => {
    for (const input of forms.slice(0, 3)) {
      assert.throws(
        () => parseLoginTarget(input),
        (e: unknown) => e instanceof MirrorError && e.code === 'USAGE' && !e.describe().includes(SECRET) && /--password-stdin/.test(e.describe()),
      );
    }
  });

  it('an address without credentials still parses', () => {
    assert.deepEqual(parseTarget('http://127.0.0.1:5000/ns'), { kind: 'registry', host: '127.0.0.1:5000', namespace: 'ns', scheme: 'http', explicitScheme: true });
    assert.deepEqual(parseTarget('oci:./out@2'), { kind: 'oci-layout', path: './out@2' });
  });
});
