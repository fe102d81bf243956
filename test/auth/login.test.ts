import assert from 'node:assert/strict';
import { readFile, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { login, logout } from '../../src/auth/login.js';
import type { Keychain } from '../../src/auth/keychain.js';
import type { Credential } from '../../src/auth/types.js';
import { MirrorError } from '../../src/errors/index.js';
import { makeRecordingHelper, makeTestHelper, memoryKeychain, tempDir } from './support.js';

const SECRET = 'Login-S3cret!';
const b64 = (s: string): string => Buffer.from(s, 'utf8').toString('base64');

async function readText(path: string): Promise<string | undefined> {
  try {
    return await readFile(path, 'utf8');
  } catch {
    return undefined;
  }
}

describe('auth/login', function () {
  this.timeout(20_000);
  let dir: string;
  let cleanup: () => Promise<void>;
  let configPath: string;
  beforeEach(async () => {
    ({ dir, cleanup } = await tempDir());
    configPath = join(dir, 'config.json');
  });
  afterEach(async () => {
    await cleanup();
  });

  const ok = async (): Promise<void> => {};

  it('verifies first, then stores in the keychain; config.json gets no secret', async () => {
    const keychain = memoryKeychain();
    await writeFile(configPath, JSON.stringify({ auths: { 'other.io': { auth: b64('o:p') } } }));
    const seen: Credential[] = [];
    const result = await login({
      host: 'https://Reg.io:5000/v2/',
      username: 'robot$ci',
      password: SECRET,
      verify: async (c) => {
        seen.push(c);
      },
      dockerConfigPath: configPath,
      keychain,
    });
    assert.deepEqual(result, { host: 'reg.io:5000', storedIn: 'keychain' });
    assert.deepEqual(seen, [{ kind: 'basic', username: 'robot$ci', password: SECRET }]);
    assert.deepEqual(keychain.entries.get('reg.io:5000'), { kind: 'basic', username: 'robot$ci', password: SECRET });
    const text = (await readText(configPath)) ?? '';
    assert.ok(!text.includes(SECRET) && !text.includes(b64(`robot$ci:${SECRET}`)));
  });

  it('a refused credential is stored nowhere', async () => {
    const keychain = memoryKeychain();
    await assert.rejects(
      login({
        host: 'reg.io',
        username: 'u',
        password: SECRET,
        verify: async () => {
          throw new MirrorError('AUTH', 'unauthorized: reg.io refused the credentials');
        },
        dockerConfigPath: configPath,
        keychain,
      }),
      /refused/,
    );
    assert.equal(keychain.entries.size, 0);
    assert.equal(await readText(configPath), undefined);
  });

  it('without a keychain, stores in config.json (0600) with a warning', async () => {
    const result = await login({ host: 'reg.io', username: 'u', password: SECRET, verify: ok, dockerConfigPath: configPath, keychain: memoryKeychain(false) });
    assert.equal(result.storedIn, 'config');
    assert.equal(result.path, configPath);
    assert.equal(result.warning, `the password for reg.io is stored base64-encoded, not encrypted, in ${configPath} (the OS keychain is not available: no secret service (test))`);
    assert.equal((await stat(configPath)).mode & 0o777, 0o600);
    const raw = JSON.parse((await readText(configPath)) ?? '{}') as { auths: Record<string, { auth: string }> };
    assert.equal(raw.auths['reg.io']?.auth, b64(`u:${SECRET}`));
  });

  it('a keychain that refuses to store falls back to config.json; store: keychain makes it an error', async () => {
    const refusing: Keychain = {
      ...memoryKeychain(),
      store: async () => {
        throw new Error('the OS keychain refused to store the credential: locked collection');
      },
    };
    const result = await login({ host: 'reg.io', username: 'u', password: SECRET, verify: ok, dockerConfigPath: configPath, keychain: refusing });
    assert.equal(result.storedIn, 'config');
    assert.match(result.warning ?? '', /locked collection/);
    await assert.rejects(
      login({ host: 'reg.io', username: 'u', password: SECRET, verify: ok, dockerConfigPath: configPath, keychain: memoryKeychain(false), store: 'keychain' }),
      (e: unknown) => e instanceof MirrorError && e.code === 'UNSUPPORTED' && /keychain is not available/.test(e.message) && !e.message.includes(SECRET),
    );
  });

  it('store: config skips the keychain', async () => {
    const keychain = memoryKeychain();
    const result = await login({ host: 'docker.io', username: 'u', password: SECRET, verify: ok, dockerConfigPath: configPath, keychain, store: 'config' });
    assert.equal(result.storedIn, 'config');
    assert.equal(keychain.entries.size, 0);
    const raw = JSON.parse((await readText(configPath)) ?? '{}') as { auths: Record<string, unknown> };
    assert.deepEqual(Object.keys(raw.auths), ['https://index.docker.io/v1/']);
  });

  it('logout removes from the keychain, config.json and the configured helper', async () => {
    const helper = await makeTestHelper(dir);
    await helper.put('reg.io', 'u', 'helper-pw');
    await writeFile(configPath, JSON.stringify({ auths: { 'reg.io': { auth: b64('u:pw') }, 'keep.io': {} }, credHelpers: { 'reg.io': 'testhelper' } }));
    const keychain = memoryKeychain();
    keychain.entries.set('reg.io', { kind: 'basic', username: 'u', password: 'kc' });
    const result = await logout({ host: 'REG.io', dockerConfigPath: configPath, keychain, env: helper.env });
    assert.deepEqual(result, { host: 'reg.io', removedFrom: ['keychain', 'docker-credential-testhelper', configPath], warnings: [] });
    assert.equal(keychain.entries.size, 0);
    assert.deepEqual(await helper.calls(), ['erase reg.io']);
    const raw = JSON.parse((await readText(configPath)) ?? '{}') as { auths: Record<string, unknown>; credHelpers: unknown };
    assert.deepEqual(raw.auths, { 'keep.io': {} });
    assert.deepEqual(raw.credHelpers, { 'reg.io': 'testhelper' });
    const again = await logout({ host: 'reg.io', dockerConfigPath: configPath, keychain, env: helper.env });
    assert.deepEqual(again.removedFrom, []);
  });

  it('logout with a missing helper still cleans the rest and warns', async () => {
    await writeFile(configPath, JSON.stringify({ auths: { 'reg.io': { auth: b64('u:pw') } }, credsStore: 'nosuch' }));
    const result = await logout({ host: 'reg.io', dockerConfigPath: configPath, keychain: memoryKeychain(false), env: { PATH: dir } });
    assert.deepEqual(result.removedFrom, [configPath]);
    assert.equal(result.warnings.length, 1);
    assert.match(result.warnings[0] ?? '', /docker-credential-nosuch not found on PATH/);
  });

  describe('a credential helper configured in the config file', () => {
    const SECRET_Q = 'He"lper\\S3cret';

    it('credsStore: the secret goes to the helper (store {ServerURL, Username, Secret}), before the keychain; the file keeps only "host": {}', async () => {
      const helper = await makeRecordingHelper(dir);
      await writeFile(configPath, JSON.stringify({ auths: { 'reg.io:5000': { auth: b64(`old:${SECRET}`) }, 'keep.io': { auth: b64('k:k') } }, credsStore: 'recorder' }));
      const keychain = memoryKeychain();
      const result = await login({ host: 'https://reg.io:5000', username: 'robot', password: SECRET_Q, verify: ok, dockerConfigPath: configPath, keychain, env: helper.env });
      assert.deepEqual(result, { host: 'reg.io:5000', storedIn: 'helper', path: configPath, helper: 'docker-credential-recorder' });
      const calls = await helper.calls();
      assert.deepEqual(calls.map((c) => c.action), ['store']);
      assert.deepEqual(JSON.parse(calls[0]?.input ?? '{}'), { ServerURL: 'reg.io:5000', Username: 'robot', Secret: SECRET_Q });
      assert.equal(keychain.entries.size, 0, 'the keychain is not used');
      const text = (await readText(configPath)) ?? '';
      assert.ok(!text.includes('S3cret') && !text.includes(b64(`robot:${SECRET_Q}`)) && !text.includes(b64(`old:${SECRET}`)), 'no secret in the file');
      const raw = JSON.parse(text) as { auths: Record<string, unknown>; credsStore: string };
      assert.deepEqual(raw.auths, { 'keep.io': { auth: b64('k:k') }, 'reg.io:5000': {} });
      assert.equal(raw.credsStore, 'recorder');
      assert.equal((await stat(configPath)).mode & 0o777, 0o600);
    });

    it('credHelpers for the host wins over credsStore; Docker Hub is stored under its server URL', async () => {
      const per = await makeRecordingHelper(dir, 'perhost');
      const all = await makeRecordingHelper(dir, 'everyone');
      await writeFile(configPath, JSON.stringify({ credsStore: 'everyone', credHelpers: { 'index.docker.io': 'perhost' } }));
      const result = await login({ host: 'docker.io', username: 'u', password: SECRET, verify: ok, dockerConfigPath: configPath, keychain: memoryKeychain(), env: per.env });
      assert.equal(result.helper, 'docker-credential-perhost');
      assert.deepEqual(Object.keys(await per.stored()), ['https://index.docker.io/v1/']);
      assert.deepEqual(await all.calls(), []);
      const raw = JSON.parse((await readText(configPath)) ?? '{}') as { auths: Record<string, unknown> };
      assert.deepEqual(raw.auths, { 'https://index.docker.io/v1/': {} });
    });

    it('a credHelpers entry for another host only: the keychain, as without helpers', async () => {
      const helper = await makeRecordingHelper(dir);
      await writeFile(configPath, JSON.stringify({ credHelpers: { 'other.io': 'recorder' } }));
      const keychain = memoryKeychain();
      const result = await login({ host: 'reg.io', username: 'u', password: SECRET, verify: ok, dockerConfigPath: configPath, keychain, env: helper.env });
      assert.equal(result.storedIn, 'keychain');
      assert.deepEqual(await helper.calls(), []);
    });

    it('store: config uses the helper too (the config file as docker uses it); store: keychain does not', async () => {
      const helper = await makeRecordingHelper(dir);
      await writeFile(configPath, JSON.stringify({ credsStore: 'recorder' }));
      const keychain = memoryKeychain();
      keychain.entries.set('reg.io', { kind: 'basic', username: 'old', password: 'old-pw' });
      const viaConfig = await login({ host: 'reg.io', username: 'u', password: SECRET, verify: ok, dockerConfigPath: configPath, keychain, env: helper.env, store: 'config' });
      assert.equal(viaConfig.storedIn, 'helper');
      assert.equal(keychain.entries.size, 1, '--store config never touches the keychain');
      const viaAuto = await login({ host: 'reg.io', username: 'u', password: SECRET, verify: ok, dockerConfigPath: configPath, keychain, env: helper.env });
      assert.equal(viaAuto.storedIn, 'helper');
      assert.equal(keychain.entries.size, 0, 'auto: an older keychain entry, which pushes would find first, is removed');
      const viaKeychain = await login({ host: 'reg.io', username: 'u', password: SECRET, verify: ok, dockerConfigPath: configPath, keychain, env: helper.env, store: 'keychain' });
      assert.equal(viaKeychain.storedIn, 'keychain');
      assert.deepEqual((await helper.calls()).map((c) => c.action), ['store', 'store']);
    });

    it('a helper that fails: an AUTH error naming it, without the secret it repeats; nothing stored anywhere', async () => {
      const helper = await makeRecordingHelper(dir, 'recorder', { failStore: true });
      await writeFile(configPath, JSON.stringify({ auths: { 'reg.io': { auth: b64(`old:${SECRET}`) } }, credsStore: 'recorder' }));
      const before = await readText(configPath);
      const keychain = memoryKeychain();
      await assert.rejects(
        login({ host: 'reg.io', username: 'u', password: SECRET_Q, verify: ok, dockerConfigPath: configPath, keychain, env: helper.env }),
        (e: unknown) => {
          assert.ok(e instanceof MirrorError && e.code === 'AUTH');
          const line = e.describe();
          assert.match(line, /docker-credential-recorder failed on "store"/);
          assert.match(line, /credsStore in /);
          assert.ok(!line.includes('S3cret'), line);
          return true;
        },
      );
      assert.equal(await readText(configPath), before, 'the file is untouched');
      assert.equal(keychain.entries.size, 0);
    });

    it('a helper that is not installed: an AUTH error; no fallback to the file', async () => {
      await writeFile(configPath, JSON.stringify({ credsStore: 'not-installed' }));
      await assert.rejects(
        login({ host: 'reg.io', username: 'u', password: SECRET, verify: ok, dockerConfigPath: configPath, keychain: memoryKeychain(false), env: { PATH: dir } }),
        /docker-credential-not-installed not found on PATH/,
      );
      assert.ok(!((await readText(configPath)) ?? '').includes(b64(`u:${SECRET}`)));
    });
  });
});
