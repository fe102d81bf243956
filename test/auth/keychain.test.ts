import assert from 'node:assert/strict';
import { join } from 'node:path';
import { type KeytarLike, createKeychain, decodeStored, encodeStored, loadKeytar } from '../../src/auth/keychain.js';
import { commandExists, here, runBounded, tempDir } from './support.js';

function fakeKeytar(overrides: Partial<KeytarLike> = {}): KeytarLike & { data: Map<string, string> } {
  const data = new Map<string, string>();
  return {
    data,
    getPassword: async (s, a) => data.get(`${s}/${a}`) ?? null,
    setPassword: async (s, a, p) => {
      data.set(`${s}/${a}`, p);
    },
    deletePassword: async (s, a) => data.delete(`${s}/${a}`),
    ...overrides,
  };
}

const never = <T>(): Promise<T> => new Promise<T>(() => {});

describe('auth/keychain', function () {
  this.timeout(60_000);

  it('stores credentials as JSON {username, secret}, tokens with the <token> username', () => {
    assert.equal(encodeStored({ kind: 'basic', username: 'u', password: 'p' }), '{"username":"u","secret":"p"}');
    assert.deepEqual(decodeStored('{"username":"u","secret":"p"}'), { kind: 'basic', username: 'u', password: 'p' });
    assert.deepEqual(decodeStored(encodeStored({ kind: 'identity-token', token: 't' })), { kind: 'identity-token', token: 't' });
    assert.equal(decodeStored('not json'), undefined);
    assert.equal(decodeStored('{"username":"u"}'), undefined);
  });

  it('round-trips through keytar under service "mirror", account = host', async () => {
    const k = fakeKeytar();
    const keychain = createKeychain({ load: async () => k });
    assert.equal(await keychain.isAvailable(), true);
    await keychain.store('reg.io:5000', { kind: 'basic', username: 'u', password: 'p' });
    assert.deepEqual([...k.data.keys()], ['mirror/reg.io:5000']);
    assert.deepEqual(await keychain.get('reg.io:5000'), { kind: 'basic', username: 'u', password: 'p' });
    assert.equal(await keychain.delete('reg.io:5000'), true);
    assert.equal(await keychain.get('reg.io:5000'), undefined);
  });

  it('keytar missing means not available; get and delete degrade, store explains', async () => {
    const keychain = createKeychain({ load: async () => undefined });
    assert.equal(await keychain.isAvailable(), false);
    assert.match(keychain.unavailableReason() ?? '', /keytar is not installed/);
    assert.equal(await keychain.get('h'), undefined);
    assert.equal(await keychain.delete('h'), false);
    await assert.rejects(keychain.store('h', { kind: 'basic', username: 'u', password: 'SECRETX' }), (e: unknown) => e instanceof Error && !e.message.includes('SECRETX'));
    const throwing = createKeychain({
      load: async () => {
        throw new Error('dlopen failed');
      },
    });
    assert.equal(await throwing.isAvailable(), false);
  });

  it('a secret service that never answers is not available, within the probe timeout', async () => {
    const keychain = createKeychain({ load: async () => fakeKeytar({ getPassword: never }), probeTimeoutMs: 200 });
    const started = Date.now();
    assert.equal(await keychain.isAvailable(), false);
    assert.ok(Date.now() - started < 1500);
    assert.match(keychain.unavailableReason() ?? '', /no secret service answered/);
    assert.equal(await keychain.get('h'), undefined);
  });

  it('a store that hangs or fails is an error without the secret', async () => {
    const hanging = createKeychain({ load: async () => fakeKeytar({ setPassword: never }), timeoutMs: 200 });
    await assert.rejects(hanging.store('h', { kind: 'basic', username: 'u', password: 'SECRETY' }), (e: unknown) => e instanceof Error && /did not answer/.test(e.message) && !e.message.includes('SECRETY'));
    const locked = createKeychain({
      load: async () =>
        fakeKeytar({
          setPassword: async () => {
            throw new Error('Cannot create an item in a locked collection');
          },
        }),
    });
    await assert.rejects(locked.store('h', { kind: 'basic', username: 'u', password: 'p' }), /locked collection/);
  });

  it('loads the real keytar module lazily (it is installed here)', async () => {
    const k = await loadKeytar();
    assert.ok(k, 'keytar should load in this checkout');
    assert.equal(await loadKeytar(), k, 'cached');
  });

  describe('with a real secret service (gnome-keyring under dbus-run-session)', () => {
    let dir: string;
    let cleanup: () => Promise<void>;
    before(async function () {
      const missing: string[] = [];
      for (const cmd of ['dbus-run-session', 'gnome-keyring-daemon']) if (!(await commandExists(cmd))) missing.push(cmd);
      if (missing.length > 0) {
        // The CI installs gnome-keyring and dbus; a developer machine without them skips, saying why.
        console.log(`      skipped: ${missing.join(' and ')} not installed`);
        this.skip();
      }
    });
    beforeEach(async () => {
      ({ dir, cleanup } = await tempDir());
    });
    afterEach(async () => {
      await cleanup();
    });

    function childEnv(extra: NodeJS.ProcessEnv): NodeJS.ProcessEnv {
      const env: NodeJS.ProcessEnv = { ...process.env, HOME: dir, XDG_DATA_HOME: join(dir, 'share'), XDG_RUNTIME_DIR: '', ...extra };
      delete env['DISPLAY'];
      delete env['DBUS_SESSION_BUS_ADDRESS'];
      delete env['GNOME_KEYRING_CONTROL'];
      for (const [k, v] of Object.entries(extra)) if (v === undefined) delete env[k];
      return env;
    }

    it('login stores in the keychain, config.json holds no secret, the chain finds it, logout removes it', async () => {
      const child = join(here, 'children', 'keychain-child.js');
      const script = `echo -n test-keyring-pass | gnome-keyring-daemon --unlock --components=secrets >/dev/null; exec "$0" "$1" "$2"`;
      const r = await runBounded('dbus-run-session', ['--', 'sh', '-c', script, process.execPath, child, dir], { env: childEnv({}), timeoutMs: 40_000 });
      assert.equal(r.timedOut, false, `timed out: ${r.stderr}`);
      const report = JSON.parse(r.stdout) as Record<string, unknown>;
      assert.equal(report['error'], undefined, JSON.stringify(report));
      assert.equal(report['available'], true, `keychain not available: ${String(report['reason'])}`);
      assert.deepEqual(report['directGet'], { kind: 'basic', username: 'direct', password: 'direct-secret' });
      assert.equal(report['directDelete'], true);
      assert.equal(report['directAfter'], null);
      assert.deepEqual(report['login'], { host: 'login.example.com:5000', storedIn: 'keychain' });
      assert.deepEqual(report['verified'], [{ kind: 'basic', username: 'robot$ci', password: 'login-secret-123' }]);
      const config = report['configAfterLogin'];
      assert.ok(config === null || (typeof config === 'string' && !config.includes('login-secret-123') && !config.includes(Buffer.from('robot$ci:login-secret-123').toString('base64'))));
      assert.deepEqual(report['resolved'], { credential: { kind: 'basic', username: 'robot$ci', password: 'login-secret-123' }, source: 'keychain' });
      assert.deepEqual(report['logout'], { host: 'login.example.com:5000', removedFrom: ['keychain'], warnings: [] });
      assert.equal(report['keychainAfterLogout'], null);
    });

    it('without a secret service, login falls back to config.json 0600 with a warning; logout removes it', async () => {
      const child = join(here, 'children', 'keychain-child.js');
      const env = childEnv({ DBUS_SESSION_BUS_ADDRESS: `unix:path=${join(dir, 'no-bus')}` });
      const started = Date.now();
      const r = await runBounded(process.execPath, [child, dir], { env, timeoutMs: 30_000 });
      assert.equal(r.timedOut, false);
      assert.ok(Date.now() - started < 10_000);
      const report = JSON.parse(r.stdout) as Record<string, unknown>;
      assert.equal(report['error'], undefined, JSON.stringify(report));
      assert.equal(report['available'], false);
      const result = report['login'] as { storedIn: string; path: string; warning: string };
      assert.equal(result.storedIn, 'config');
      assert.equal(result.path, join(dir, 'config.json'));
      assert.match(result.warning, /stored base64-encoded, not encrypted, in .*config\.json/);
      assert.ok(!result.warning.includes('login-secret-123'));
      assert.equal(report['configMode'], 0o600);
      const config = JSON.parse(String(report['configAfterLogin'])) as { auths: Record<string, { auth: string }> };
      assert.equal(config.auths['login.example.com:5000']?.auth, Buffer.from('robot$ci:login-secret-123').toString('base64'));
      assert.equal((report['resolved'] as { source: string }).source, `${join(dir, 'config.json')} auths`);
      assert.deepEqual(report['logout'], { host: 'login.example.com:5000', removedFrom: [join(dir, 'config.json')], warnings: [] });
      assert.deepEqual(JSON.parse(String(report['configAfterLogout'])), { auths: {} });
    });
  });
});
