/**
 * `mirror login` and `mirror logout` end to end, through the built binary: the credential is checked against real
 * registries (TLS + htpasswd, plain HTTP, bearer tokens behind our token server) before it is stored; it goes to the
 * OS keychain when a secret service answers (gnome-keyring under dbus-run-session), else to config.json (0600) with a
 * warning; a later push finds it; the secret is never printed. Failures are fast, one line, with their exit code.
 */
import assert from 'node:assert/strict';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { ExitCode } from '../../src/errors/index.js';
import { sha256Digest } from '../../src/oci/digest.js';
import { buildOciLayout, DEMO_SPEC, type BuiltLayout, writeTarBundle } from '../../testdata/make-fixtures.js';
import { commandExists, makeTestHelper } from '../auth/support.js';
import { assertNoSecrets, assertOneLineError, childEnv, isolatedEnv, runCliOnPty, runInKeyringSession, homeMaker, writeCertDir } from '../helpers/auth-env.js';
import { makeCerts, type TestCerts } from '../helpers/certs.js';
import { runCli, type CliResult } from '../helpers/cli.js';
import { stopAll } from '../helpers/proc.js';
import { startRegistry, type TestRegistry } from '../helpers/registry.js';
import { skopeoInspectRaw } from '../helpers/skopeo.js';
import { startTokenServer, type TokenServer } from '../helpers/token-server.js';

const USER = 'robot$ci';
const PASSWORD = 'L0gin:S3cret pw!';
const b64 = (s: string): string => Buffer.from(s, 'utf8').toString('base64');
const FAST_MS = 8_000;

interface LoginJson {
  status: string;
  host: string;
  username: string;
  checked: boolean;
  storedIn: 'keychain' | 'config';
  path?: string;
  warnings: string[];
}

describe('mirror login / mirror logout (integration: docker-registry, token server)', function () {
  this.timeout(180_000);
  let work: string;
  let certs: TestCerts;
  let tlsReg: TestRegistry;
  let plainReg: TestRegistry;
  let openReg: TestRegistry;
  let tokens: TokenServer;
  let tokenReg: TestRegistry;
  let demo: BuiltLayout;
  let bundle: string;
  /** home makes a fresh HOME for one run (no config files, no keychain). */
  const home = homeMaker(() => work);

  before(async () => {
    work = mkdtempSync(join(tmpdir(), 'mirror-login-'));
    certs = await makeCerts();
    tlsReg = await startRegistry({ tls: { certFile: certs.server.certFile, keyFile: certs.server.keyFile }, users: { [USER]: PASSWORD } });
    plainReg = await startRegistry({ users: { [USER]: PASSWORD } });
    openReg = await startRegistry({ tls: { certFile: certs.server.certFile, keyFile: certs.server.keyFile } });
    tokens = await startTokenServer({ users: { [USER]: PASSWORD } });
    tokenReg = await startRegistry({
      tls: { certFile: certs.server.certFile, keyFile: certs.server.keyFile },
      token: { realm: tokens.realm, service: tokens.service, issuer: tokens.issuer, rootCertBundle: tokens.rootCertBundle },
    });
    demo = await buildOciLayout(DEMO_SPEC);
    bundle = join(work, 'demo.tar.gz');
    await writeTarBundle(demo.files, bundle, { order: 'metadata-last', compression: 'gzip' });
  });
  after(async () => {
    for (const r of [tlsReg, plainReg, openReg, tokenReg]) await r?.stop();
    await tokens?.stop();
    await stopAll();
    if (work) rmSync(work, { recursive: true, force: true });
    if (certs) rmSync(certs.dir, { recursive: true, force: true });
  });

  const mirror = (args: string[], h: string, options: { input?: string; env?: NodeJS.ProcessEnv } = {}): Promise<CliResult> =>
    runCli(args, { env: isolatedEnv(h, options.env), input: options.input });

  const clean = (what: string, r: CliResult): void => assertNoSecrets(what, r.stdout + r.stderr, [PASSWORD], USER);

  const configOf = (path: string): { auths: Record<string, { auth?: string }> } => JSON.parse(readFileSync(path, 'utf8')) as { auths: Record<string, { auth?: string }> };

  describe('storing', () => {
    it('checks the credential, then (no keychain here) stores it in ~/.docker/config.json 0600 with a warning; push finds it', async () => {
      const h = home();
      const r = await mirror(['login', tlsReg.host, '--username', USER, '--password-stdin', '--cacert', certs.ca.certFile], h, { input: `${PASSWORD}\n` });
      assert.equal(r.code, 0, r.stderr);
      const path = join(h, '.docker', 'config.json');
      assert.equal(r.stdout, `Login succeeded: ${USER}@${tlsReg.host} accepted; stored in ${path}\n`);
      assert.match(r.stderr, new RegExp(`warning: the password for ${tlsReg.host.replace(/\./g, '\\.')} is stored base64-encoded, not encrypted, in ${path}`));
      assert.match(r.stderr, /the OS keychain is not available/);
      clean('login output', r);
      assert.equal(statSync(path).mode & 0o777, 0o600);
      assert.equal(configOf(path).auths[tlsReg.host]?.auth, b64(`${USER}:${PASSWORD}`));

      const pushed = await mirror(['push', '--source', bundle, '--private-registry', `${tlsReg.host}/after-login`, '--cacert', certs.ca.certFile, '--debug'], h);
      assert.equal(pushed.code, 0, pushed.stderr);
      assert.ok(pushed.stderr.includes(`using basic credentials from ${path} auths`), pushed.stderr);
      clean('push output', pushed);
      const certDir = writeCertDir(join(work, 'skopeo-ca'), { ca: certs.ca.cert });
      const img = demo.images[0];
      assert.ok(img?.ref);
      const raw = await skopeoInspectRaw(`docker://${tlsReg.host}/after-login/${img.ref.slice(img.ref.indexOf('/') + 1)}`, {
        tlsVerify: true,
        certDir,
        creds: `${USER}:${PASSWORD}`,
      });
      assert.equal(sha256Digest(raw), img.digest);
    });

    it('--store config --docker-config FILE --json: the file named, a JSON answer, no secret printed', async () => {
      const h = home();
      const file = join(h, 'elsewhere', 'auth.json');
      const r = await mirror(['login', tlsReg.host, '--username', USER, '--password-stdin', '--cacert', certs.ca.certFile, '--store', 'config', '--docker-config', file, '--json'], h, {
        input: PASSWORD,
      });
      assert.equal(r.code, 0, r.stderr);
      const out = JSON.parse(r.stdout) as LoginJson;
      assert.deepEqual({ ...out, warnings: out.warnings.length }, { status: 'ok', host: tlsReg.host, username: USER, checked: true, storedIn: 'config', path: file, warnings: 1 });
      assert.match(out.warnings[0] ?? '', /stored base64-encoded, not encrypted/);
      assert.doesNotMatch(out.warnings[0] ?? '', /keychain/, '--store config does not try the keychain');
      assert.equal(r.stderr, '', '--json prints nothing else');
      clean('login --json', r);
      assert.equal(configOf(file).auths[tlsReg.host]?.auth, b64(`${USER}:${PASSWORD}`));
      assert.ok(!existsSync(join(h, '.docker', 'config.json')));
    });

    it('--password works, warns that it shows in the process list, and is never printed', async () => {
      const h = home();
      const r = await mirror(['login', tlsReg.host, '--username', USER, '--password', PASSWORD, '--cacert', certs.ca.certFile, '--debug'], h);
      assert.equal(r.code, 0, r.stderr);
      assert.match(r.stderr, /warning: --password shows the password in the process list and shell history; use --password-stdin instead/);
      clean('login output', r);
    });

    it('http://HOST: a plain-HTTP registry', async () => {
      const h = home();
      const r = await mirror(['login', `http://${plainReg.host}`, '--username', USER, '--password-stdin', '--store', 'config'], h, { input: PASSWORD });
      assert.equal(r.code, 0, r.stderr);
      assert.equal(configOf(join(h, '.docker', 'config.json')).auths[plainReg.host]?.auth, b64(`${USER}:${PASSWORD}`));
    });

    it('TLS flags: --cert-dir and --insecure-skip-tls-verify', async () => {
      const dir = join(work, 'login-certs.d');
      writeCertDir(join(dir, tlsReg.host), { ca: certs.ca.cert });
      const viaDir = await mirror(['login', tlsReg.host, '--username', USER, '--password-stdin', '--cert-dir', dir, '--store', 'config'], home(), { input: PASSWORD });
      assert.equal(viaDir.code, 0, viaDir.stderr);
      const insecure = await mirror(['login', tlsReg.host, '--username', USER, '--password-stdin', '--insecure-skip-tls-verify', '--store', 'config'], home(), { input: PASSWORD });
      assert.equal(insecure.code, 0, insecure.stderr);
    });

    it('a bearer-token registry: the credential is proven by getting a token from its realm', async () => {
      const h = home();
      const before = tokens.log.length;
      const r = await mirror(['login', `https://${tokenReg.host}/v2/`, '--username', USER, '--password-stdin', '--cacert', certs.ca.certFile, '--store', 'config'], h, { input: PASSWORD });
      assert.equal(r.code, 0, r.stderr);
      const asked = tokens.log.slice(before);
      assert.deepEqual(
        asked.map((e) => ({ grant: e.grant, scopes: e.scopes, user: e.user, status: e.status })),
        [{ grant: 'basic', scopes: [], user: USER, status: 200 }],
      );
      assert.ok(configOf(join(h, '.docker', 'config.json')).auths[tokenReg.host], 'stored under HOST:PORT');
      clean('login output', r);
    });

    it('a registry that asks for no credentials: stored, with a warning that nothing was checked', async () => {
      const h = home();
      const r = await mirror(['login', openReg.host, '--username', USER, '--password-stdin', '--cacert', certs.ca.certFile, '--store', 'config'], h, { input: PASSWORD });
      assert.equal(r.code, 0, r.stderr);
      assert.match(r.stdout, /not checked/);
      assert.match(r.stderr, /did not ask for credentials, so they were stored without being checked/);
    });
  });

  describe('refusals: nothing stored, fast, one line, the exit code of the cause', () => {
    const cases: Array<{ name: string; code: number; args: () => string[]; input?: string; names: () => Array<string | RegExp> }> = [
      {
        name: 'a wrong password (Basic): AUTH',
        code: ExitCode.AUTH,
        args: () => ['login', tlsReg.host, '--username', USER, '--password-stdin', '--cacert', certs.ca.certFile],
        input: 'wrong-password',
        names: () => [`authentication to ${tlsReg.host} failed`, '--username/--password-stdin', 'HTTP 401'],
      },
      {
        name: 'a wrong password (token server): AUTH',
        code: ExitCode.AUTH,
        args: () => ['login', tokenReg.host, '--username', USER, '--password-stdin', '--cacert', certs.ca.certFile],
        input: 'wrong-password',
        names: () => [`authentication to ${tokenReg.host} failed`, 'token server'],
      },
      {
        name: 'an unknown CA: TLS, naming the problem and --cacert',
        code: ExitCode.TLS,
        args: () => ['login', tlsReg.host, '--username', USER, '--password-stdin'],
        input: PASSWORD,
        names: () => [/unknown CA/, '--cacert'],
      },
      {
        name: 'no username and no terminal: AUTH at once, saying what to pass',
        code: ExitCode.AUTH,
        args: () => ['login', tlsReg.host, '--cacert', certs.ca.certFile],
        names: () => ['no terminal to ask', '--username with --password-stdin'],
      },
      {
        name: '--username without a password and no terminal: USAGE',
        code: ExitCode.USAGE,
        args: () => ['login', tlsReg.host, '--username', USER, '--cacert', certs.ca.certFile],
        names: () => ['--username needs --password-stdin or --password'],
      },
      {
        name: '--password with --password-stdin: USAGE',
        code: ExitCode.USAGE,
        args: () => ['login', tlsReg.host, '--username', USER, '--password', 'x', '--password-stdin'],
        names: () => ['either --password or --password-stdin'],
      },
      {
        name: '--password-stdin without --username: USAGE',
        code: ExitCode.USAGE,
        args: () => ['login', tlsReg.host, '--password-stdin'],
        input: PASSWORD,
        names: () => ['--password-stdin needs --username'],
      },
      {
        name: '--store with an unknown value: USAGE',
        code: ExitCode.USAGE,
        args: () => ['login', tlsReg.host, '--store', 'vault'],
        names: () => ['--store'],
      },
      {
        name: 'no HOST: USAGE',
        code: ExitCode.USAGE,
        args: () => ['login', '--username', USER],
        names: () => [/host/i],
      },
      {
        name: 'a bad HOST: USAGE',
        code: ExitCode.USAGE,
        args: () => ['login', 'not a host!', '--username', USER, '--password-stdin'],
        input: PASSWORD,
        names: () => ['invalid registry'],
      },
      {
        name: '--store keychain without a secret service: nothing stored, the reason given',
        code: ExitCode.BAD_INPUT,
        args: () => ['login', tlsReg.host, '--username', USER, '--password-stdin', '--cacert', certs.ca.certFile, '--store', 'keychain'],
        input: PASSWORD,
        names: () => ['keychain is not available', 'secret service'],
      },
    ];
    for (const c of cases) {
      it(c.name, async () => {
        const h = home();
        const started = Date.now();
        const r = await mirror(c.args(), h, { input: c.input });
        const ms = Date.now() - started;
        assert.ok(ms < FAST_MS, `took ${ms} ms`);
        assert.equal(r.code, c.code, r.stderr);
        assertOneLineError(r.stderr, ...c.names());
        assert.equal(r.stdout, '');
        assertNoSecrets('stderr', r.stderr, [PASSWORD, 'wrong-password'], USER);
        assert.ok(!existsSync(join(h, '.docker', 'config.json')), 'nothing stored');
      });
    }
  });

  describe('on a terminal (pseudo-terminal)', () => {
    before(async function () {
      if (!(await commandExists('script'))) this.skip();
    });

    it('asks for the username and the password (not echoed), then stores', async () => {
      const h = home();
      const r = await runCliOnPty(['login', tlsReg.host, '--cacert', certs.ca.certFile, '--store', 'config'], childEnv(h), [
        { after: `Username for ${tlsReg.host} (empty to use a Docker config file instead): `, send: `${USER}\r` },
        { after: 'Password: ', send: `${PASSWORD}\r` },
      ]);
      assert.equal(r.code, 0, r.screen);
      assert.ok(r.screen.includes(USER), 'the username is echoed');
      assertNoSecrets('terminal', r.screen, [PASSWORD], USER);
      assert.match(r.screen, /Login succeeded/);
      assert.equal(configOf(join(h, '.docker', 'config.json')).auths[tlsReg.host]?.auth, b64(`${USER}:${PASSWORD}`));
    });

    it('with --username, asks only for the password; a wrong one is refused (exit 4)', async () => {
      const h = home();
      const r = await runCliOnPty(['login', tlsReg.host, '--username', USER, '--cacert', certs.ca.certFile], childEnv(h), [
        { after: 'Password: ', send: 'Not-It-123\r' },
      ]);
      assert.equal(r.code, ExitCode.AUTH, r.screen);
      assert.ok(!r.screen.includes('Username for'), 'the username was not asked');
      assert.ok(!r.screen.includes('Not-It-123'), 'the password is not echoed');
      assert.match(r.screen, /mirror: error: authentication to .* failed/);
      assert.ok(!existsSync(join(h, '.docker', 'config.json')));
    });
  });

  describe('the OS keychain (gnome-keyring under dbus-run-session)', () => {
    before(async function () {
      for (const cmd of ['dbus-run-session', 'gnome-keyring-daemon']) {
        if (!(await commandExists(cmd))) {
          console.log(`      skipped: ${cmd} not installed`);
          this.skip();
        }
      }
    });

    it('login stores in the keychain only (config.json holds no secret); logout removes it', async () => {
      const h = home();
      const config = join(h, '.docker', 'config.json');
      // config.json already holds other entries: login must leave them alone and add no secret.
      mkdirSync(join(h, '.docker'));
      writeFileSync(config, JSON.stringify({ auths: { 'other.example.com': { auth: b64('someone:else') } } }));
      const plan = join(h, 'plan.json');
      const login = ['login', tlsReg.host, '--username', USER, '--password-stdin', '--cacert', certs.ca.certFile];
      writeFileSync(
        plan,
        JSON.stringify({
          steps: [
            { args: [...login, '--store', 'keychain', '--json', '--debug'], input: PASSWORD, read: [config] },
            { args: ['push', '--source', bundle, '--private-registry', `${tlsReg.host}/kc`, '--cacert', certs.ca.certFile, '--debug'] },
            { args: ['logout', tlsReg.host, '--json'] },
            { args: ['logout', tlsReg.host] },
          ],
        }),
      );
      const child = fileURLToPath(new URL('./children/session-steps.js', import.meta.url));
      const r = await runInKeyringSession(child, [plan], childEnv(h), 120_000);
      assert.equal(r.timedOut, false, r.stderr);
      const { results } = JSON.parse(r.stdout) as { results: Array<CliResult & { files: Record<string, string | null> }> };
      const [stored, pushed, removed, again] = results;
      assert.ok(stored && pushed && removed && again, r.stdout + r.stderr);
      assert.equal(stored.code, 0, stored.stderr + stored.stdout);
      const out = JSON.parse(stored.stdout) as LoginJson;
      assert.deepEqual(out, { status: 'ok', host: tlsReg.host, username: USER, checked: true, storedIn: 'keychain', warnings: [] });
      const text = stored.files[config] ?? '';
      assert.ok(!text.includes(PASSWORD) && !text.includes(b64(`${USER}:${PASSWORD}`)), 'config.json holds no secret');
      assert.deepEqual(Object.keys(configOf(config).auths), ['other.example.com'], 'config.json untouched');
      assert.equal(pushed.code, 0, pushed.stderr);
      assert.match(pushed.stderr, /using basic credentials from keychain/);
      assert.equal(removed.code, 0, removed.stderr);
      assert.deepEqual(JSON.parse(removed.stdout), { status: 'ok', host: tlsReg.host, removedFrom: ['keychain'], warnings: [] });
      assert.equal(again.stdout, `No credentials were stored for ${tlsReg.host}\n`);
      for (const x of results) assertNoSecrets('output', x.stdout + x.stderr, [PASSWORD], USER);
    });
  });

  describe('logout', () => {
    it('removes the config.json entry (any key form) and the helper entry; a second logout finds nothing', async () => {
      const h = home();
      const helper = await makeTestHelper(h);
      await helper.put(tlsReg.host, USER, PASSWORD);
      const file = join(h, 'config.json');
      writeFileSync(
        file,
        JSON.stringify({
          auths: { [`https://${tlsReg.host}/v1/`]: { auth: b64(`${USER}:${PASSWORD}`) }, 'keep.example.com': { auth: b64('k:k') } },
          credHelpers: { [tlsReg.host]: 'testhelper' },
        }),
      );
      const env = { PATH: helper.env['PATH'], TESTHELPER_STORE: helper.storeDir };
      const r = await mirror(['logout', `https://${tlsReg.host}`, '--docker-config', file], h, { env });
      assert.equal(r.code, 0, r.stderr);
      assert.equal(r.stdout, `Removed the credentials for ${tlsReg.host} from docker-credential-testhelper, ${file}\n`);
      assert.deepEqual(Object.keys(configOf(file).auths), ['keep.example.com']);
      assert.deepEqual(await helper.calls(), [`erase ${tlsReg.host}`]);
      const again = await mirror(['logout', tlsReg.host, '--docker-config', file], h, { env });
      assert.equal(again.code, 0);
      assert.equal(again.stdout, `No credentials were stored for ${tlsReg.host}\n`);
    });
  });

  it('--help of login and logout shows usage and examples', async () => {
    const h = home();
    const login = await mirror(['login', '--help'], h);
    assert.equal(login.code, 0);
    assert.match(login.stdout, /USAGE\s+\$ mirror login HOST/);
    assert.match(login.stdout, /EXAMPLES/);
    assert.match(login.stdout, /--password-stdin/);
    assert.match(login.stdout, /EXIT CODES/);
    const logout = await mirror(['logout', '--help'], h);
    assert.equal(logout.code, 0);
    assert.match(logout.stdout, /USAGE\s+\$ mirror logout HOST/);
  });
});
