import assert from 'node:assert/strict';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { PassThrough } from 'node:stream';
import { createCredentialResolver, noCredentialsMessage, passwordFlagWarning } from '../../src/auth/chain.js';
import { MirrorError } from '../../src/errors/index.js';
import { collect, fakeTerminal, here, makeTestHelper, memoryKeychain, runBounded, tempDir, waitFor } from './support.js';

const b64 = (s: string): string => Buffer.from(s, 'utf8').toString('base64');
const HOST = 'reg.example.com:5000';

const noTerminal = { terminal: false } as const;

function secretsAbsent(text: string, secrets: string[]): void {
  for (const s of secrets) assert.ok(!text.includes(s), `secret ${s} leaked into: ${text}`);
}

describe('auth/chain', function () {
  this.timeout(20_000);
  let dir: string;
  let cleanup: () => Promise<void>;
  let configPath: string;
  beforeEach(async () => {
    ({ dir, cleanup } = await tempDir());
    configPath = join(dir, 'config.json');
    await writeFile(configPath, JSON.stringify({ auths: { [HOST]: { auth: b64('cfguser:cfg-secret') } } }));
  });
  afterEach(async () => {
    await cleanup();
  });

  it('first match wins: flags, environment, keychain, Docker config, anonymous', async () => {
    const keychain = memoryKeychain();
    keychain.entries.set(HOST, { kind: 'basic', username: 'kcuser', password: 'kc-secret' });
    const env = { MIRROR_USERNAME: 'envuser', MIRROR_PASSWORD: 'env-secret', PATH: '/nonexistent' };
    const base = { keychain, dockerConfigPath: configPath, prompt: noTerminal };
    const flags = createCredentialResolver({ ...base, env, username: 'flaguser', password: 'flag-secret' });
    assert.deepEqual(await flags.resolve(HOST), { credential: { kind: 'basic', username: 'flaguser', password: 'flag-secret' }, source: '--username/--password' });
    const fromEnv = createCredentialResolver({ ...base, env });
    assert.deepEqual(await fromEnv.resolve(HOST), { credential: { kind: 'basic', username: 'envuser', password: 'env-secret' }, source: 'MIRROR_USERNAME/MIRROR_PASSWORD' });
    const fromKeychain = createCredentialResolver({ ...base, env: {} });
    assert.equal((await fromKeychain.resolve(HOST)).source, 'keychain');
    const fromConfig = createCredentialResolver({ ...base, env: {}, keychain: memoryKeychain() });
    assert.deepEqual(await fromConfig.resolve(`HTTPS://${HOST.toUpperCase()}`), {
      credential: { kind: 'basic', username: 'cfguser', password: 'cfg-secret' },
      source: `${configPath} auths`,
    });
    assert.deepEqual(await fromConfig.resolve('other.io'), { credential: { kind: 'anonymous' }, source: 'anonymous' });
  });

  it('flag and environment credentials can be limited to some hosts', async () => {
    const r = createCredentialResolver({
      username: 'u',
      password: 'p',
      flagHosts: [HOST],
      env: { MIRROR_USERNAME: 'e', MIRROR_PASSWORD: 'ep' },
      keychain: false,
      dockerConfigPath: configPath,
      prompt: noTerminal,
    });
    assert.equal((await r.resolve(HOST)).source, '--username/--password');
    assert.equal((await r.resolve('docker.io')).source, 'anonymous');
  });

  it('--password-stdin is read once, one newline dropped', async () => {
    const stdin = new PassThrough();
    stdin.end('pa:ss word\r\n');
    const r = createCredentialResolver({ username: 'robot$x', passwordStdin: true, stdin, keychain: false, env: {}, prompt: noTerminal });
    const [a, b] = await Promise.all([r.resolve('a.io'), r.resolve('b.io')]);
    assert.deepEqual(a, { credential: { kind: 'basic', username: 'robot$x', password: 'pa:ss word' }, source: '--username/--password-stdin' });
    assert.deepEqual(b.credential, a.credential);
    const empty = new PassThrough();
    empty.end('\n');
    const r2 = createCredentialResolver({ username: 'u', passwordStdin: true, stdin: empty, keychain: false, env: {}, prompt: noTerminal });
    await assert.rejects(r2.resolve('a.io'), (e: unknown) => e instanceof MirrorError && e.code === 'USAGE' && /empty/.test(e.message));
  });

  it('rejects flag combinations that cannot work', () => {
    assert.throws(() => createCredentialResolver({ password: 'x' }), (e: unknown) => e instanceof MirrorError && e.code === 'USAGE');
    assert.throws(() => createCredentialResolver({ username: 'u', password: 'x', passwordStdin: true }), /not both/);
    assert.match(passwordFlagWarning(), /process list/);
  });

  it('--username without a password and no terminal is a USAGE error; on a terminal only the password is asked', async () => {
    const r = createCredentialResolver({ username: 'u', keychain: false, env: {}, prompt: noTerminal });
    await assert.rejects(r.resolve(HOST), (e: unknown) => e instanceof MirrorError && e.code === 'USAGE');
    const t = fakeTerminal();
    const r2 = createCredentialResolver({ username: 'u', keychain: false, env: {}, prompt: { input: t.input, output: t.output } });
    const p = r2.resolve(HOST);
    await waitFor(() => t.written().includes('Password: '), 2000, 'the password question');
    assert.ok(!t.written().includes('Username'));
    t.input.write('typed\r');
    assert.deepEqual(await p, { credential: { kind: 'basic', username: 'u', password: 'typed' }, source: '--username/prompt' });
  });

  it('needCredential: false is anonymous always, even with credentials around', async () => {
    const r = createCredentialResolver({ needCredential: false, dockerConfigPath: configPath, env: { MIRROR_USERNAME: 'a', MIRROR_PASSWORD: 'b' } });
    assert.equal((await r.resolve(HOST)).source, 'anonymous');
    await assert.rejects(r.resolve(HOST, { retry: true }), (e: unknown) => e instanceof MirrorError && e.code === 'AUTH' && /--need-credential=false/.test(e.message));
  });

  it('needCredential: true with nothing found and no terminal fails at once with the AUTH message', async () => {
    const events = collect();
    const r = createCredentialResolver({ needCredential: true, keychain: memoryKeychain(false), env: { HOME: dir }, homeDir: dir, prompt: noTerminal, events: events.sink });
    const started = Date.now();
    await assert.rejects(r.resolve(HOST), (e: unknown) => {
      assert.ok(e instanceof MirrorError);
      assert.equal(e.code, 'AUTH');
      assert.equal(e.exitCode, 4);
      assert.equal(
        e.message,
        'no credentials for reg.example.com:5000 and no terminal to ask: use --username with --password-stdin, `mirror login reg.example.com:5000`, or --docker-config FILE',
      );
      assert.equal(e.message, noCredentialsMessage(HOST));
      return true;
    });
    assert.ok(Date.now() - started < 2000);
  });

  it('with the default chain and no terminal, a child process fails in under 2 s', async () => {
    const child = join(here, 'children', 'no-tty-child.js');
    const env: NodeJS.ProcessEnv = { ...process.env, HOME: dir, DOCKER_CONFIG: join(dir, 'nodocker'), XDG_RUNTIME_DIR: '', XDG_CONFIG_HOME: join(dir, 'xdg'), REGISTRY_AUTH_FILE: '' };
    delete env['MIRROR_USERNAME'];
    delete env['MIRROR_PASSWORD'];
    const r = await runBounded(process.execPath, [child, HOST], { env, timeoutMs: 10_000 });
    assert.equal(r.timedOut, false);
    const out = JSON.parse(r.stdout) as { ok: boolean; code: string; message: string; ms: number };
    assert.equal(out.ok, false);
    assert.equal(out.code, 'AUTH');
    assert.equal(out.message, noCredentialsMessage(HOST));
    assert.ok(out.ms < 2000, `took ${out.ms} ms`);
  });

  it('by default nothing found is anonymous; when anonymous is refused and there is no terminal, the AUTH message', async () => {
    const r = createCredentialResolver({ keychain: false, env: {}, homeDir: dir, prompt: noTerminal });
    assert.equal((await r.resolve(HOST)).source, 'anonymous');
    await assert.rejects(r.resolve(HOST, { retry: true }), { message: noCredentialsMessage(HOST) });
  });

  it('a refused credential without a terminal is an AUTH error naming its source', async () => {
    const events = collect();
    const r = createCredentialResolver({ keychain: false, env: {}, dockerConfigPath: configPath, prompt: noTerminal, events: events.sink });
    await r.resolve(HOST);
    await assert.rejects(r.resolve(HOST, { retry: true }), (e: unknown) => {
      assert.ok(e instanceof MirrorError);
      assert.equal(e.code, 'AUTH');
      assert.equal(e.message, `the credentials for ${HOST} from ${configPath} auths were refused`);
      secretsAbsent(e.describe() + events.text(), ['cfg-secret']);
      return true;
    });
  });

  it('on a terminal a refusal re-prompts once, then fails', async () => {
    const t = fakeTerminal();
    const keychain = memoryKeychain();
    keychain.entries.set(HOST, { kind: 'basic', username: 'old', password: 'old-secret' });
    const r = createCredentialResolver({ keychain, env: {}, homeDir: dir, prompt: { input: t.input, output: t.output } });
    assert.equal((await r.resolve(HOST)).source, 'keychain');
    const p = r.resolve(HOST, { retry: true });
    await waitFor(() => t.written().includes('Username for reg.example.com:5000'), 2000, 'the username question');
    assert.match(t.written(), /The credentials for reg\.example\.com:5000 from keychain were refused\./);
    t.input.write('newuser\r');
    await waitFor(() => t.written().includes('Password: '), 2000, 'the password question');
    t.input.write('new-secret\r');
    assert.deepEqual(await p, { credential: { kind: 'basic', username: 'newuser', password: 'new-secret' }, source: 'prompt' });
    assert.equal((await r.resolve(HOST)).source, 'prompt', 'the new answer is cached');
    const before = t.written().length;
    await assert.rejects(r.resolve(HOST, { retry: true }), (e: unknown) => {
      assert.ok(e instanceof MirrorError);
      assert.equal(e.code, 'AUTH');
      assert.equal(e.message, `the credentials for ${HOST} from prompt were refused`);
      secretsAbsent(e.describe(), ['new-secret', 'old-secret']);
      return true;
    });
    assert.equal(t.written().length, before, 'no second prompt');
    secretsAbsent(t.written(), ['new-secret', 'old-secret']);
  });

  it('on a terminal, needCredential: true prompts at once; by default the prompt waits for anonymous to be refused', async () => {
    const t = fakeTerminal();
    const r = createCredentialResolver({ needCredential: true, keychain: false, env: {}, homeDir: dir, prompt: { input: t.input, output: t.output } });
    t.input.write('alice\rpw1\r');
    assert.deepEqual(await r.resolve(HOST), { credential: { kind: 'basic', username: 'alice', password: 'pw1' }, source: 'prompt' });

    const t2 = fakeTerminal();
    const r2 = createCredentialResolver({ keychain: false, env: {}, homeDir: dir, prompt: { input: t2.input, output: t2.output } });
    assert.equal((await r2.resolve(HOST)).source, 'anonymous');
    assert.equal(t2.written(), '', 'nothing asked while anonymous may do');
    t2.input.write('bob\rpw2\r');
    assert.deepEqual(await r2.resolve(HOST, { retry: true }), { credential: { kind: 'basic', username: 'bob', password: 'pw2' }, source: 'prompt' });
    assert.match(t2.written(), /reg\.example\.com:5000 asks for credentials\./);
  });

  it('caches per host: a helper is asked once', async () => {
    const helper = await makeTestHelper(dir);
    await helper.put(HOST, 'hu', 'helper-secret');
    await writeFile(configPath, JSON.stringify({ credsStore: 'testhelper', auths: {} }));
    const r = createCredentialResolver({ keychain: false, env: helper.env, dockerConfigPath: configPath, prompt: noTerminal });
    const answers = await Promise.all([r.resolve(HOST), r.resolve(HOST), r.resolve(HOST.toUpperCase())]);
    for (const a of answers) assert.equal(a.source, `docker-credential-testhelper (credsStore in ${configPath})`);
    assert.deepEqual(await helper.calls(), [`get ${HOST}`]);
  });

  it('uses credHelpers over credsStore, and a missing helper is a warning mentioned in the final AUTH error', async () => {
    const helper = await makeTestHelper(dir);
    await helper.put('per.io', 'peruser', 'per-secret');
    await writeFile(configPath, JSON.stringify({ credsStore: 'missinghelper', credHelpers: { 'per.io': 'testhelper' } }));
    const events = collect();
    const r = createCredentialResolver({ needCredential: true, keychain: false, env: helper.env, dockerConfigPath: configPath, prompt: noTerminal, events: events.sink });
    assert.equal((await r.resolve('per.io')).source, `docker-credential-testhelper (credHelpers in ${configPath})`);
    await assert.rejects(r.resolve('else.io'), (e: unknown) => {
      assert.ok(e instanceof MirrorError);
      assert.equal(e.message, noCredentialsMessage('else.io'));
      assert.match(e.hint ?? '', /docker-credential-missinghelper not found on PATH/);
      return true;
    });
    assert.match(events.text(), /missinghelper not found/);
    secretsAbsent(events.text(), ['per-secret']);
  });
});
