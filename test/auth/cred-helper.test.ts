import assert from 'node:assert/strict';
import { isAbsolute, join, relative } from 'node:path';
import { findHelper, helperCommand, helperErase, helperGet, helperStore } from '../../src/auth/cred-helper.js';
import { MirrorError } from '../../src/errors/index.js';
import { makeRecordingHelper, makeTestHelper, tempDir, type TestHelper } from './support.js';

describe('auth/cred-helper', function () {
  this.timeout(20_000);
  let cleanup: () => Promise<void>;
  let dir: string;
  let helper: TestHelper;
  beforeEach(async () => {
    const t = await tempDir();
    cleanup = t.cleanup;
    dir = t.dir;
    helper = await makeTestHelper(t.dir);
  });
  afterEach(async () => {
    await cleanup();
  });

  it('stores, gets and erases through the protocol', async () => {
    const env = helper.env;
    assert.equal(await helperGet('testhelper', 'reg.io:5000', { env }), undefined, 'not found is no credential');
    await helperStore('testhelper', { serverUrl: 'reg.io:5000', username: 'robot$ci', secret: 'pa ss"word' }, { env });
    assert.deepEqual(await helperGet('testhelper', 'reg.io:5000', { env }), { kind: 'basic', username: 'robot$ci', password: 'pa ss"word' });
    await helperStore('testhelper', { serverUrl: 'tok.io', username: '<token>', secret: 'refresh' }, { env });
    assert.deepEqual(await helperGet('testhelper', 'tok.io', { env }), { kind: 'identity-token', token: 'refresh' });
    assert.equal(await helperErase('testhelper', 'reg.io:5000', { env }), true);
    assert.equal(await helperErase('testhelper', 'reg.io:5000', { env }), false);
    assert.equal(await helperGet('testhelper', 'reg.io:5000', { env }), undefined);
  });

  it('a helper that is not installed is a clear AUTH error', async () => {
    await assert.rejects(helperGet('nosuchhelper', 'reg.io', { env: helper.env, configuredIn: 'credsStore in /x/config.json' }), (e: unknown) => {
      assert.ok(e instanceof MirrorError);
      assert.equal(e.code, 'AUTH');
      assert.equal(e.message, 'credential helper docker-credential-nosuchhelper not found on PATH');
      assert.equal(e.hint, 'install docker-credential-nosuchhelper or edit credsStore in /x/config.json');
      return true;
    });
  });

  it('a helper found only through a relative PATH entry (., an empty one) is refused, never run; an absolute one later is used', async () => {
    const rel = relative(process.cwd(), helper.binDir);
    assert.ok(!isAbsolute(rel));
    const env = { ...helper.env, PATH: `${rel}:/usr/bin:/bin` };
    await assert.rejects(helperStore('testhelper', { serverUrl: 'reg.io', username: 'u', secret: 'pw-never-sent' }, { env }), (e: unknown) => {
      assert.ok(e instanceof MirrorError);
      assert.equal(e.code, 'AUTH');
      assert.match(e.message, /docker-credential-testhelper resolves to an executable in the current directory \(.*bin\/docker-credential-testhelper\), which is never run/);
      return true;
    });
    assert.deepEqual(await helper.calls(), [], 'the planted helper never ran');
    assert.equal(await findHelper('docker-credential-testhelper', { PATH: `${rel}:${helper.binDir}` }), join(helper.binDir, 'docker-credential-testhelper'));
    assert.equal(await findHelper('docker-credential-testhelper', { PATH: '/usr/bin:/bin' }), undefined);
  });

  it('a helper that hangs is killed after the timeout', async () => {
    const started = Date.now();
    await assert.rejects(helperGet('slowhelper', 'reg.io', { env: helper.env, timeoutMs: 300 }), /did not answer "get" within/);
    assert.ok(Date.now() - started < 3000);
  });

  it('a failing helper is an AUTH error that never repeats the secret', async () => {
    await assert.rejects(
      helperStore('brokenhelper', { serverUrl: 'reg.io', username: 'u', secret: 'TOPSECRET' }, { env: helper.env }),
      (e: unknown) => e instanceof MirrorError && e.code === 'AUTH' && /backend exploded/.test(e.message) && !e.message.includes('TOPSECRET'),
    );
  });

  it('a failing helper that repeats its input (the secret JSON-escaped in it): the message shows neither form', async () => {
    const echoing = await makeRecordingHelper(dir, 'echoing', { failStore: true });
    const secret = 'TOP"SECRET\\pw';
    await assert.rejects(helperStore('echoing', { serverUrl: 'reg.io', username: 'u', secret }, { env: echoing.env }), (e: unknown) => {
      assert.ok(e instanceof MirrorError && e.code === 'AUTH');
      assert.match(e.describe(), /failed on "store" \(exit status 1\): cannot store \{"ServerURL":"reg\.io","Username":"u","Secret":"\*\*\*"\}/);
      assert.ok(!e.describe().includes('SECRET'), e.describe());
      return true;
    });
  });

  it('rejects helper names that are paths', () => {
    assert.throws(() => helperCommand('../../bin/sh'), /invalid credential helper name/);
    assert.equal(helperCommand('ecr-login'), 'docker-credential-ecr-login');
  });

  it('an abort kills the helper', async () => {
    const ac = new AbortController();
    setTimeout(() => ac.abort(), 100);
    await assert.rejects(helperGet('slowhelper', 'reg.io', { env: helper.env, signal: ac.signal }), (e: unknown) => e instanceof MirrorError && e.code === 'INTERRUPTED');
  });
});
