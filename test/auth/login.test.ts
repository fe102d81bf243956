import assert from 'node:assert/strict';
import { readFile, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { login, logout } from '../../src/auth/login.js';
import type { Keychain } from '../../src/auth/keychain.js';
import type { Credential } from '../../src/auth/types.js';
import { MirrorError } from '../../src/errors/index.js';
import { makeTestHelper, memoryKeychain, tempDir } from './support.js';

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
});
