/**
 * `mirror push` against registries that want credentials and TLS, as users meet them: every credential source
 * (flags, environment, Docker config files and helpers, the OS keychain, the terminal prompt), every TLS option
 * (--cacert on top of the system roots, certs.d, client certificates, skipping verification, plain HTTP), bearer
 * tokens (exact scopes, 2-second lifetimes, refresh tokens), proxies (HTTPS_PROXY through a CONNECT proxy of ours,
 * NO_PROXY), and the failures (unknown CA, name mismatch, expired, wrong password, no credentials and no terminal),
 * each fast, on one line, with its own exit code. Every push is read back with skopeo; no output holds a secret.
 */
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { rootCertificates } from 'node:tls';
import { fileURLToPath } from 'node:url';
import { DEFAULT_STAGING_REPOSITORY } from '../../src/copy/bundle.js';
import { ExitCode } from '../../src/errors/index.js';
import { defaultCaCertificates, tlsOptions } from '../../src/net/http.js';
import { createHostSettingsResolver } from '../../src/net/settings.js';
import { sha256Digest } from '../../src/oci/digest.js';
import { buildOciLayout, DEMO_SPEC, type BuiltLayout, writeTarBundle } from '../../testdata/make-fixtures.js';
import { commandExists, makeTestHelper } from '../auth/support.js';
import { assertNoSecrets, assertOneLineError, childEnv, isolatedEnv, runCliOnPty, runInKeyringSession, homeMaker, writeCertDir } from '../helpers/auth-env.js';
import { makeCerts, type TestCerts } from '../helpers/certs.js';
import { runCli, type CliResult } from '../helpers/cli.js';
import { startConnectProxy, type ConnectProxy } from '../helpers/connect-proxy.js';
import { stopAll } from '../helpers/proc.js';
import { startRegistry, type TestRegistry } from '../helpers/registry.js';
import { skopeoCopyToOci, skopeoInspectRaw, type SkopeoOptions } from '../helpers/skopeo.js';
import { startTokenServer, type TokenServer } from '../helpers/token-server.js';

const USER = 'pusher';
const PASSWORD = 'Pu5h:S3cret pw!';
const REFRESH_TOKEN = 'refresh-7c1d0b5e-do-not-print';
const b64 = (s: string): string => Buffer.from(s, 'utf8').toString('base64');
/** A failure must come within this many milliseconds (node start included). */
const FAST_MS = 8_000;

/** destPath maps a full source ref into `ns` as bmctl does (drop the host, keep the path). */
function destPath(ref: string, ns: string): string {
  return `${ns}/${ref.slice(ref.indexOf('/') + 1)}`;
}

/** The repositories a push of `layout` into `ns` writes (plus the staging repository for metadata-last bundles). */
function targetRepos(layout: BuiltLayout, ns: string): string[] {
  const repos = layout.images.filter((i) => i.ref).map((i) => destPath((i.ref ?? '').replace(/[:@][^/]*$/, ''), ns));
  return [...repos, `${ns}/${DEFAULT_STAGING_REPOSITORY}`];
}

describe('mirror push: credentials, TLS and proxies (integration: docker-registry, token server, skopeo)', function () {
  this.timeout(300_000);
  let work: string;
  let certs: TestCerts;
  let demo: BuiltLayout;
  let bundle: string;
  /** skopeo's --cert-dir: the test CA as ca.crt. */
  let caDir: string;
  let tlsReg: TestRegistry;
  /** home makes a fresh HOME for one run (no config files, no keychain). */
  const home = homeMaker(() => work);
  let copies = 0;

  before(async () => {
    work = mkdtempSync(join(tmpdir(), 'mirror-push-auth-'));
    certs = await makeCerts({ expired: true, withoutIpSan: true, client: true });
    caDir = writeCertDir(join(work, 'skopeo-ca'), { ca: certs.ca.cert });
    demo = await buildOciLayout(DEMO_SPEC);
    bundle = join(work, 'demo.tar.gz');
    await writeTarBundle(demo.files, bundle, { order: 'metadata-last', compression: 'gzip' });
    tlsReg = await startRegistry({ tls: { certFile: certs.server.certFile, keyFile: certs.server.keyFile }, users: { [USER]: PASSWORD } });
  });
  after(async () => {
    await tlsReg?.stop();
    await stopAll();
    if (work) rmSync(work, { recursive: true, force: true });
    if (certs) rmSync(certs.dir, { recursive: true, force: true });
  });

  /** push runs `mirror push` of the demo bundle into HOST/NS in an isolated environment. */
  function push(host: string, ns: string, args: string[], options: { env?: NodeJS.ProcessEnv; input?: string; home?: string; source?: string } = {}): Promise<CliResult> {
    return runCli(['push', '--source', options.source ?? bundle, '--private-registry', `${host}/${ns}`, ...args], {
      env: isolatedEnv(options.home ?? home(), options.env),
      input: options.input,
    });
  }

  /** assertPushed reads every image back with skopeo (manifest bytes by tag and by digest), and copies one out whole. */
  async function assertPushed(host: string, ns: string, skopeo: SkopeoOptions, layout: BuiltLayout = demo): Promise<void> {
    for (const img of layout.images) {
      if (!img.ref) continue;
      const dest = destPath(img.ref, ns);
      const raw = await skopeoInspectRaw(`docker://${host}/${dest}`, skopeo);
      assert.equal(sha256Digest(raw), img.digest, `${dest} has the bundle's manifest digest`);
      for (const m of img.manifests) {
        const child = await skopeoInspectRaw(`docker://${host}/${dest.replace(/:[^/:]*$/, '')}@${m.digest}`, skopeo);
        assert.equal(sha256Digest(child), m.digest);
      }
    }
    // skopeo copies the multi-platform image out, checking every blob against its digest.
    const multi = layout.images.find((i) => i.manifests.length > 1) ?? layout.images[0];
    if (multi?.ref) await skopeoCopyToOci(`docker://${host}/${destPath(multi.ref, ns)}`, join(work, `out-${ns}-${++copies}`), skopeo);
  }

  const authed: SkopeoOptions = { tlsVerify: true, creds: `${USER}:${PASSWORD}` };

  /** expectPushed checks a run succeeded without printing a secret, and skopeo reads the images back. */
  async function expectPushed(r: CliResult, host: string, ns: string, skopeo: SkopeoOptions = { ...authed, certDir: caDir }): Promise<void> {
    assert.equal(r.code, 0, r.stderr + r.stdout);
    assertNoSecrets('push output', r.stdout + r.stderr, [PASSWORD, REFRESH_TOKEN], USER);
    await assertPushed(host, ns, skopeo);
  }

  describe('every credential source, against a TLS + htpasswd registry', () => {
    it('--username with --password-stdin', async () => {
      const r = await push(tlsReg.host, 'src-stdin', ['--cacert', certs.ca.certFile, '--username', USER, '--password-stdin'], { input: `${PASSWORD}\n` });
      await expectPushed(r, tlsReg.host, 'src-stdin');
    });

    it('--password, with the warning on stderr and the password nowhere in the output', async () => {
      const r = await push(tlsReg.host, 'src-password', ['--cacert', certs.ca.certFile, '--username', USER, '--password', PASSWORD, '--debug']);
      assert.match(r.stderr, /warning: --password shows the password in the process list and shell history; use --password-stdin instead/);
      await expectPushed(r, tlsReg.host, 'src-password');
    });

    it('MIRROR_USERNAME and MIRROR_PASSWORD (--debug names the source, not the secret)', async () => {
      const r = await push(tlsReg.host, 'src-env', ['--cacert', certs.ca.certFile, '--debug'], { env: { MIRROR_USERNAME: USER, MIRROR_PASSWORD: PASSWORD } });
      assert.match(r.stderr, /using basic credentials from MIRROR_USERNAME\/MIRROR_PASSWORD/);
      await expectPushed(r, tlsReg.host, 'src-env');
    });

    for (const [i, form] of ['HOST:PORT', 'https://HOST:PORT', 'https://HOST:PORT/v1/'].entries()) {
      it(`--docker-config FILE, "auths" key written ${form}`, async () => {
        const h = home();
        const key = form.replace('HOST:PORT', tlsReg.host);
        const file = join(h, 'auth.json');
        writeFileSync(file, JSON.stringify({ auths: { 'other.example.com': { auth: b64('someone:else') }, [key]: { auth: b64(`${USER}:${PASSWORD}`) } } }));
        const r = await push(tlsReg.host, `src-file${i}`, ['--cacert', certs.ca.certFile, '--docker-config', file, '--debug'], { home: h });
        assert.ok(r.stderr.includes(`using basic credentials from ${file} auths`), r.stderr);
        await expectPushed(r, tlsReg.host, `src-file${i}`);
      });
    }

    it('REGISTRY_AUTH_FILE (username/password fields)', async () => {
      const h = home();
      const file = join(h, 'containers-auth.json');
      writeFileSync(file, JSON.stringify({ auths: { [tlsReg.host]: { username: USER, password: PASSWORD } } }));
      const r = await push(tlsReg.host, 'src-authfile', ['--cacert', certs.ca.certFile, '--debug'], { home: h, env: { REGISTRY_AUTH_FILE: file } });
      assert.ok(r.stderr.includes(`credentials from ${file} auths`), r.stderr);
      await expectPushed(r, tlsReg.host, 'src-authfile');
    });

    it('DOCKER_CONFIG directory', async () => {
      const h = home();
      const dir = join(h, 'docker-conf');
      mkdirSync(dir);
      writeFileSync(join(dir, 'config.json'), JSON.stringify({ auths: { [`https://${tlsReg.host}`]: { auth: b64(`${USER}:${PASSWORD}`) } } }));
      const r = await push(tlsReg.host, 'src-dockerconfig', ['--cacert', certs.ca.certFile, '--debug'], { home: h, env: { DOCKER_CONFIG: dir } });
      assert.ok(r.stderr.includes(`credentials from ${join(dir, 'config.json')} auths`), r.stderr);
      await expectPushed(r, tlsReg.host, 'src-dockerconfig');
    });

    it('credsStore: docker-credential-testhelper on PATH (the helper protocol, "get" with the server on stdin)', async () => {
      const h = home();
      const helper = await makeTestHelper(h);
      await helper.put(tlsReg.host, USER, PASSWORD);
      const file = join(h, 'config.json');
      writeFileSync(file, JSON.stringify({ credsStore: 'testhelper' }));
      const r = await push(tlsReg.host, 'src-credsstore', ['--cacert', certs.ca.certFile, '--docker-config', file, '--debug'], {
        home: h,
        env: { PATH: helper.env['PATH'], TESTHELPER_STORE: helper.storeDir },
      });
      assert.ok(r.stderr.includes(`credentials from docker-credential-testhelper (credsStore in ${file})`), r.stderr);
      assert.deepEqual(await helper.calls(), [`get ${tlsReg.host}`]);
      await expectPushed(r, tlsReg.host, 'src-credsstore');
    });

    it('credHelpers: the per-host helper wins over credsStore', async () => {
      const h = home();
      const helper = await makeTestHelper(h);
      await helper.put(tlsReg.host, USER, PASSWORD);
      const file = join(h, 'config.json');
      writeFileSync(file, JSON.stringify({ credsStore: 'brokenhelper', credHelpers: { [tlsReg.host]: 'testhelper' } }));
      const r = await push(tlsReg.host, 'src-credhelpers', ['--cacert', certs.ca.certFile, '--docker-config', file, '--debug'], {
        home: h,
        env: { PATH: helper.env['PATH'], TESTHELPER_STORE: helper.storeDir },
      });
      assert.ok(r.stderr.includes(`credentials from docker-credential-testhelper (credHelpers in ${file})`), r.stderr);
      await expectPushed(r, tlsReg.host, 'src-credhelpers');
    });

    it('the OS keychain after `mirror login` (gnome-keyring under dbus-run-session); config.json holds no secret', async function () {
      for (const cmd of ['dbus-run-session', 'gnome-keyring-daemon']) {
        if (!(await commandExists(cmd))) {
          console.log(`      skipped: ${cmd} not installed`);
          this.skip();
        }
      }
      const h = home();
      const config = join(h, '.docker', 'config.json');
      const plan = join(h, 'plan.json');
      const pushArgs = ['push', '--source', bundle, '--private-registry', `${tlsReg.host}/src-keychain`, '--cacert', certs.ca.certFile];
      writeFileSync(
        plan,
        JSON.stringify({
          steps: [
            { args: ['login', tlsReg.host, '--username', USER, '--password-stdin', '--cacert', certs.ca.certFile], input: PASSWORD, read: [config] },
            { args: [...pushArgs, '--debug', '--report', join(h, 'report.json')], read: [join(h, 'report.json')] },
            { args: ['logout', tlsReg.host] },
            { args: pushArgs },
          ],
        }),
      );
      const child = fileURLToPath(new URL('../commands/children/session-steps.js', import.meta.url));
      const r = await runInKeyringSession(child, [plan], childEnv(h), 120_000);
      assert.equal(r.timedOut, false, `the session timed out: ${r.stderr}`);
      const { results } = JSON.parse(r.stdout) as { results: Array<CliResult & { files: Record<string, string | null> }> };
      const [login, pushed, logout, after] = results;
      assert.ok(login && pushed && logout && after, r.stdout + r.stderr);
      assert.equal(login.code, 0, login.stderr);
      assert.match(login.stdout, /stored in the OS keychain/);
      assert.doesNotMatch(login.stderr, /warning/, 'no fallback to config.json');
      const configText = login.files[config] ?? '';
      assert.ok(!configText.includes(PASSWORD) && !configText.includes(b64(`${USER}:${PASSWORD}`)), 'config.json holds no secret');
      assert.equal(pushed.code, 0, pushed.stderr);
      assert.match(pushed.stderr, /using basic credentials from keychain/);
      for (const x of [login, pushed, logout, after]) assertNoSecrets('output', x.stdout + x.stderr, [PASSWORD], USER);
      assertNoSecrets('report', Object.values(pushed.files).join(''), [PASSWORD], USER);
      await assertPushed(tlsReg.host, 'src-keychain', { ...authed, certDir: caDir });
      assert.equal(logout.code, 0, logout.stderr);
      assert.match(logout.stdout, /Removed the credentials for .* from keychain/);
      assert.equal(after.code, ExitCode.AUTH, 'after logout, nothing is found and there is no terminal');
      assertOneLineError(after.stderr, 'no credentials for');
    });

    it('the terminal prompt (pseudo-terminal): username echoed, password not', async function () {
      if (!(await commandExists('script'))) this.skip();
      const h = home();
      const r = await runCliOnPty(
        ['push', '--source', bundle, '--private-registry', `${tlsReg.host}/src-prompt`, '--cacert', certs.ca.certFile],
        childEnv(h),
        [
          { after: `Username for ${tlsReg.host} (empty to use a Docker config file instead): `, send: `${USER}\r` },
          { after: 'Password: ', send: `${PASSWORD}\r` },
        ],
      );
      assert.equal(r.code, 0, r.screen);
      assert.ok(r.screen.includes(USER), 'the username is echoed');
      assertNoSecrets('terminal', r.screen, [PASSWORD], USER);
      assert.match(r.screen, /3 images to .*: 3 pushed/);
      await assertPushed(tlsReg.host, 'src-prompt', { ...authed, certDir: caDir });
    });

    it('the terminal prompt: an empty username takes the credential from a Docker config file named there', async function () {
      if (!(await commandExists('script'))) this.skip();
      const h = home();
      const file = join(h, 'named.json');
      writeFileSync(file, JSON.stringify({ auths: { [tlsReg.host]: { auth: b64(`${USER}:${PASSWORD}`) } } }));
      const r = await runCliOnPty(
        ['push', '--source', bundle, '--private-registry', `${tlsReg.host}/src-prompt-file`, '--cacert', certs.ca.certFile],
        childEnv(h),
        [
          { after: `Username for ${tlsReg.host} (empty to use a Docker config file instead): `, send: '\r' },
          { after: 'Path of a Docker config file: ', send: `${file}\r` },
        ],
      );
      assert.equal(r.code, 0, r.screen);
      await assertPushed(tlsReg.host, 'src-prompt-file', { ...authed, certDir: caDir });
    });
  });

  describe('TLS options', () => {
    it('--cacert is added to the system roots, never replacing them (a token realm trusted through NODE_EXTRA_CA_CERTS still works)', async () => {
      // The settings handed to the connection: every system root, then the extra CA.
      const settings = await createHostSettingsResolver({ cacert: [certs.ca.certFile], certsDirs: [] }).forHost(tlsReg.host, 'https');
      const ca = tlsOptions(settings).ca ?? [];
      assert.ok(rootCertificates.every((c) => ca.includes(c)), "Node's bundled roots kept");
      assert.ok(defaultCaCertificates().every((c) => ca.includes(c)), 'NODE_EXTRA_CA_CERTS kept');
      assert.equal(ca.at(-1), certs.ca.cert);

      // End to end: the registry's CA comes from --cacert; its token server's CA is "system" trust only.
      const other = await makeCerts();
      const tokens = await startTokenServer({ users: { [USER]: PASSWORD }, https: { cert: other.server.cert, key: other.server.key } });
      const reg = await startRegistry({
        tls: { certFile: certs.server.certFile, keyFile: certs.server.keyFile },
        token: { realm: tokens.realm, service: tokens.service, issuer: tokens.issuer, rootCertBundle: tokens.rootCertBundle },
      });
      try {
        const args = ['--cacert', certs.ca.certFile, '--username', USER, '--password-stdin'];
        const r = await push(reg.host, 'sysroots', args, { input: PASSWORD, env: { NODE_EXTRA_CA_CERTS: other.ca.certFile } });
        // skopeo checks the realm with the registry's certificates: both CAs in its --cert-dir.
        const both = writeCertDir(join(work, 'skopeo-both'), { ca: certs.ca.cert });
        writeFileSync(join(both, 'realm-ca.crt'), other.ca.cert);
        await expectPushed(r, reg.host, 'sysroots', { ...authed, certDir: both });
        assert.ok(tokens.issued() > 0, 'tokens came from the https realm');
        // Without that system trust, the realm's certificate is refused: the realm gets the same TLS checks.
        const refused = await push(reg.host, 'sysroots2', args, { input: PASSWORD, env: { NODE_EXTRA_CA_CERTS: undefined } });
        assert.equal(refused.code, ExitCode.TLS, refused.stderr);
        assertOneLineError(refused.stderr, /unknown CA/, new URL(tokens.realm).host);
      } finally {
        await reg.stop();
        await tokens.stop();
        rmSync(other.dir, { recursive: true, force: true });
      }
    });

    it('a certs.d directory via --cert-dir DIR (DIR/HOST:PORT/ca.crt)', async () => {
      const dir = join(work, 'certs.d');
      writeCertDir(join(dir, tlsReg.host), { ca: certs.ca.cert });
      const r = await push(tlsReg.host, 'tls-certsd', ['--cert-dir', dir, '--username', USER, '--password-stdin'], { input: PASSWORD });
      await expectPushed(r, tlsReg.host, 'tls-certsd');
    });

    describe('client certificates (registry with clientcas)', () => {
      let mtls: TestRegistry;
      let clientDir: string;
      before(async () => {
        mtls = await startRegistry({
          tls: { certFile: certs.server.certFile, keyFile: certs.server.keyFile, clientCaFiles: [certs.clientCa?.certFile ?? ''] },
          users: { [USER]: PASSWORD },
        });
        clientDir = writeCertDir(join(work, 'skopeo-mtls'), { ca: certs.ca.cert, clientCert: certs.client?.cert, clientKey: certs.client?.key });
      });
      after(async () => mtls?.stop());

      it('--cert and --key', async () => {
        const r = await push(mtls.host, 'mtls-flags', ['--cacert', certs.ca.certFile, '--cert', certs.client?.certFile ?? '', '--key', certs.client?.keyFile ?? '', '--username', USER, '--password-stdin'], {
          input: PASSWORD,
        });
        await expectPushed(r, mtls.host, 'mtls-flags', { ...authed, certDir: clientDir });
      });

      it('client.cert and client.key in the certs.d directory', async () => {
        const dir = join(work, 'certs.d-mtls');
        writeCertDir(join(dir, mtls.host), { ca: certs.ca.cert, clientCert: certs.client?.cert, clientKey: certs.client?.key });
        const r = await push(mtls.host, 'mtls-certsd', ['--cert-dir', dir, '--username', USER, '--password-stdin'], { input: PASSWORD });
        await expectPushed(r, mtls.host, 'mtls-certsd', { ...authed, certDir: clientDir });
      });

      it('without a client certificate: refused, fast, on one line', async () => {
        const started = Date.now();
        const r = await push(mtls.host, 'mtls-none', ['--cacert', certs.ca.certFile, '--username', USER, '--password-stdin', '--retry-times', '0'], { input: PASSWORD });
        assert.ok(Date.now() - started < FAST_MS, `failed within ${FAST_MS} ms`);
        // undici only sees a closed socket; a TLS probe after the failure reads the registry's certificate alert.
        assert.equal(r.code, ExitCode.TLS, r.stderr);
        assertOneLineError(r.stderr, mtls.host);
        assert.match(r.stderr, /asks for a client certificate.*--cert FILE --key FILE/);
      });
    });

    it('--insecure-skip-tls-verify', async () => {
      const r = await push(tlsReg.host, 'tls-insecure', ['--insecure-skip-tls-verify', '--username', USER, '--password-stdin'], { input: PASSWORD });
      await expectPushed(r, tlsReg.host, 'tls-insecure');
    });

    describe('plain HTTP, only when asked', () => {
      let plain: TestRegistry;
      before(async () => {
        plain = await startRegistry({ users: { [USER]: PASSWORD } });
      });
      after(async () => plain?.stop());

      it('http://HOST', async () => {
        const r = await push(`http://${plain.host}`, 'plain-scheme', ['--username', USER, '--password-stdin'], { input: PASSWORD });
        await expectPushed(r, plain.host, 'plain-scheme', { tlsVerify: false, creds: authed.creds });
      });

      it('--plain-http', async () => {
        const r = await push(plain.host, 'plain-flag', ['--plain-http', '--username', USER, '--password-stdin'], { input: PASSWORD });
        await expectPushed(r, plain.host, 'plain-flag', { tlsVerify: false, creds: authed.creds });
      });

      it('without either, https to the plain registry says it answered in plain HTTP', async () => {
        const r = await push(plain.host, 'plain-none', ['--username', USER, '--password-stdin'], { input: PASSWORD });
        assert.equal(r.code, ExitCode.TLS);
        assertOneLineError(r.stderr, 'plain HTTP', '--plain-http');
      });
    });
  });

  describe('failures: fast, one line, distinct exit codes', () => {
    const failures: Array<{ name: string; code: number; registry: () => Promise<TestRegistry>; args: () => string[]; input?: string; names: Array<string | RegExp> }> = [
      {
        name: 'unknown CA (no --cacert): TLS, naming the CA problem and the flag that fixes it',
        code: ExitCode.TLS,
        registry: async () => tlsReg,
        args: () => ['--username', USER, '--password-stdin'],
        input: PASSWORD,
        names: [/unknown CA/, '--cacert', '--insecure-skip-tls-verify'],
      },
      {
        name: 'a certificate without the IP SAN: TLS, naming the mismatch',
        code: ExitCode.TLS,
        registry: () => startRegistry({ tls: { certFile: certs.noIp?.certFile ?? '', keyFile: certs.noIp?.keyFile ?? '' }, users: { [USER]: PASSWORD } }),
        args: () => ['--cacert', certs.ca.certFile, '--username', USER, '--password-stdin'],
        input: PASSWORD,
        names: ['IP address 127.0.0.1 is not in the certificate', 'subjectAltName'],
      },
      {
        name: 'an expired certificate: TLS, saying so',
        code: ExitCode.TLS,
        registry: () => startRegistry({ tls: { certFile: certs.expired?.certFile ?? '', keyFile: certs.expired?.keyFile ?? '' }, users: { [USER]: PASSWORD } }),
        args: () => ['--cacert', certs.ca.certFile, '--username', USER, '--password-stdin'],
        input: PASSWORD,
        names: ['the certificate has expired', 'renew'],
      },
      {
        name: 'a wrong password: AUTH, naming the source of the refused credential',
        code: ExitCode.AUTH,
        registry: async () => tlsReg,
        args: () => ['--cacert', certs.ca.certFile, '--username', USER, '--password-stdin'],
        input: 'not-the-password',
        names: ['refused', '--username/--password-stdin'],
      },
      {
        name: 'no credentials and no terminal: AUTH at once, saying how to give them',
        code: ExitCode.AUTH,
        registry: async () => tlsReg,
        args: () => ['--cacert', certs.ca.certFile],
        names: ['no credentials for', 'no terminal to ask', '--password-stdin', 'mirror login', '--docker-config'],
      },
    ];
    const codes = new Map<string, number>();
    for (const f of failures) {
      it(f.name, async () => {
        const reg = await f.registry();
        try {
          const started = Date.now();
          const r = await push(reg.host, 'fail', f.args(), { input: f.input });
          const ms = Date.now() - started;
          assert.ok(ms < FAST_MS, `failed in ${ms} ms, expected under ${FAST_MS}`);
          assert.equal(r.code, f.code, r.stderr);
          assertOneLineError(r.stderr, ...f.names);
          assertNoSecrets('stderr', r.stderr, [PASSWORD, 'not-the-password'], USER);
          codes.set(f.name, r.code ?? -1);
        } finally {
          if (reg !== tlsReg) await reg.stop();
        }
      });
    }

    it('nothing listening: NETWORK, a third exit code', async () => {
      const r = await push('127.0.0.1:9', 'fail', ['--retry-times', '0', '--username', USER, '--password-stdin'], { input: PASSWORD });
      assert.equal(r.code, ExitCode.NETWORK, r.stderr);
      assertOneLineError(r.stderr, 'connection refused');
      // TLS, AUTH and the rest each have their own code.
      const seen = new Set([...codes.values(), r.code]);
      assert.deepEqual([...seen].sort(), [ExitCode.AUTH, ExitCode.TLS, ExitCode.NETWORK].sort());
    });
  });

  describe('bearer tokens (registry with auth.token behind our token server)', () => {
    let tokens: TokenServer;
    let reg: TestRegistry;
    before(async () => {
      tokens = await startTokenServer({ users: { [USER]: PASSWORD }, refreshTokens: { [REFRESH_TOKEN]: USER } });
      reg = await startRegistry({
        tls: { certFile: certs.server.certFile, keyFile: certs.server.keyFile },
        token: { realm: tokens.realm, service: tokens.service, issuer: tokens.issuer, rootCertBundle: tokens.rootCertBundle },
      });
    });
    after(async () => {
      await reg?.stop();
      await tokens?.stop();
    });

    it('pushes with exact scopes: pull,push on target repositories, pull on another only when mounting from it', async () => {
      const ns = 'tok-scopes';
      const before = tokens.log.length;
      const report = join(work, 'tok-report.json');
      const r = await push(reg.host, ns, ['--cacert', certs.ca.certFile, '--username', USER, '--password-stdin', '--report', report], { input: PASSWORD });
      await expectPushed(r, reg.host, ns);
      const asked = tokens.log.slice(before).filter((e) => e.grant === 'basic');
      assert.ok(asked.length > 0);
      assert.ok(asked.every((e) => e.status === 200 && e.user === USER && e.account === USER));
      const targets = new Set(targetRepos(demo, ns));
      const pushed = new Set<string>();
      let mounts = 0;
      for (const e of asked) {
        const scopes = e.scopes.map((s) => /^repository:(.+):(pull|pull,push)$/.exec(s));
        assert.ok(scopes.every((m) => m !== null), `only pull or pull,push on repositories: ${e.scopes.join(' ')}`);
        const parsed = scopes.map((m) => ({ repo: m?.[1] ?? '', actions: m?.[2] ?? '' }));
        for (const p of parsed) assert.ok(targets.has(p.repo), `${p.repo} is a repository of this push`);
        for (const p of parsed) if (p.actions === 'pull,push') pushed.add(p.repo);
        if (parsed.length === 0) continue; // the login check: a token without scope
        if (parsed.length === 1) continue; // one repository: HEAD (pull) or upload/manifest (pull,push)
        // Several scopes: only a mount, push,pull on the target and pull on the source.
        assert.equal(parsed.length, 2, e.scopes.join(' '));
        assert.deepEqual(parsed.map((p) => p.actions).sort(), ['pull', 'pull,push'], e.scopes.join(' '));
        assert.notEqual(parsed[0]?.repo, parsed[1]?.repo);
        mounts++;
      }
      // The staging repository is used only for blobs met before their metadata that are too large to hold in memory
      // until it comes (small ones go straight to their repositories): it may take none here.
      const staging = `${ns}/${DEFAULT_STAGING_REPOSITORY}`;
      for (const t of targets) if (t !== staging) assert.ok(pushed.has(t), `pull,push asked for ${t}`);
      const summary = (JSON.parse(readFileSync(report, 'utf8')) as { summary: { blobsMounted: number } }).summary;
      assert.ok(summary.blobsMounted > 0, 'this bundle mounts blobs');
      assert.ok(mounts > 0 && mounts <= summary.blobsMounted, `${mounts} mount scope sets for ${summary.blobsMounted} mounts`);
    });

    it('a refresh token (identitytoken in the Docker config) goes through the OAuth2 POST', async () => {
      const h = home();
      const file = join(h, 'config.json');
      writeFileSync(file, JSON.stringify({ auths: { [tlsReg.host]: { auth: b64(`${USER}:${PASSWORD}`) }, [reg.host]: { auth: b64(`${USER}:`), identitytoken: REFRESH_TOKEN } } }));
      const before = tokens.log.length;
      const r = await push(reg.host, 'tok-refresh', ['--cacert', certs.ca.certFile, '--docker-config', file, '--debug'], { home: h });
      const asked = tokens.log.slice(before);
      await expectPushed(r, reg.host, 'tok-refresh');
      assert.match(r.stderr, /using identity-token credentials from/);
      assert.ok(asked.length > 0);
      assert.ok(
        asked.every((e) => e.method === 'POST' && e.grant === 'refresh_token' && e.clientId === 'mirror' && e.status === 200),
        JSON.stringify(asked.map((e) => [e.method, e.grant, e.clientId, e.status])),
      );
    });

    it('no secret in the output, --debug, --json, the report, or the registry error lines', async () => {
      const report = join(work, 'secret-report.json');
      const debug = await push(reg.host, 'tok-secret', ['--cacert', certs.ca.certFile, '--username', USER, '--password-stdin', '--debug', '--report', report], { input: PASSWORD });
      assert.equal(debug.code, 0, debug.stderr);
      assert.match(debug.stderr, /debug: .*token for repository:tok-secret\//, '--debug shows token requests (scopes, not tokens)');
      const json = await push(reg.host, 'tok-secret-json', ['--cacert', certs.ca.certFile, '--username', USER, '--password', PASSWORD, '--json', '--debug']);
      assert.equal(json.code, 0, json.stderr);
      const refused = await push(reg.host, 'tok-secret-bad', ['--cacert', certs.ca.certFile, '--username', USER, '--password-stdin', '--debug'], { input: `${PASSWORD}x` });
      assert.equal(refused.code, ExitCode.AUTH);
      for (const [what, text] of [
        ['--debug output', debug.stdout + debug.stderr],
        ['--json output', json.stdout + json.stderr],
        ['refused output', refused.stdout + refused.stderr],
        ['report', readFileSync(report, 'utf8')],
      ] as const) {
        assertNoSecrets(what, text, [PASSWORD, `${PASSWORD}x`, REFRESH_TOKEN], USER);
      }
    });
  });

  describe('tokens that expire after 2 seconds, during a push that lasts longer', () => {
    let slowBundle: string;
    let slow: BuiltLayout;
    let proxy: ConnectProxy;
    before(async () => {
      slow = await buildOciLayout({
        seed: 'token-expiry',
        images: [
          { ref: 'example.com/slow/one:1', layers: [{ files: 2, sizeBytes: 1_200_000 }, { files: 1, sizeBytes: 300_000 }] },
          { ref: 'example.com/slow/two:1', layers: [{ files: 2, sizeBytes: 1_200_000 }] },
        ],
      });
      slowBundle = join(work, 'slow.tar');
      await writeTarBundle(slow.files, slowBundle, { order: 'metadata-last', compression: 'none' });
      // ~2.7 MB through a proxy passing 500 kB/s: the push lasts over 5 s, more than two token lifetimes.
      proxy = await startConnectProxy({ bytesPerSecond: 500_000 });
    });
    after(async () => proxy?.stop());

    for (const variant of [
      { name: 'expires_in honest: renewed before they run out', advertised: undefined },
      { name: 'expires_in says 300 s: renewed when the registry answers 401 in the middle', advertised: 300 },
    ]) {
      it(variant.name, async () => {
        const tokens = await startTokenServer({ users: { [USER]: PASSWORD }, lifetimeSeconds: 2, advertisedExpiresIn: variant.advertised });
        const reg = await startRegistry({
          tls: { certFile: certs.server.certFile, keyFile: certs.server.keyFile },
          token: { realm: tokens.realm, service: tokens.service, issuer: tokens.issuer, rootCertBundle: tokens.rootCertBundle },
        });
        try {
          const ns = `expiry${variant.advertised ?? ''}`;
          const started = Date.now();
          const r = await push(reg.host, ns, ['--cacert', certs.ca.certFile, '--username', USER, '--password-stdin', '--jobs', '1', '--debug'], {
            input: PASSWORD,
            source: slowBundle,
            env: { HTTPS_PROXY: proxy.url },
          });
          const ms = Date.now() - started;
          assert.equal(r.code, 0, r.stderr + r.stdout);
          assert.ok(ms > 4_000, `the push lasted ${ms} ms, longer than two tokens`);
          const perScope = new Map<string, number>();
          for (const e of tokens.log) if (e.status === 200) perScope.set(e.scopes.join(' '), (perScope.get(e.scopes.join(' ')) ?? 0) + 1);
          const renewed = [...perScope.values()].filter((n) => n > 1).length;
          assert.ok(renewed > 0, `some scope got a new token: ${JSON.stringify([...perScope])}`);
          assert.ok(tokens.issued() > perScope.size, `${tokens.issued()} tokens for ${perScope.size} scope sets`);
          // 401s met in the middle of the push (the first GET /v2/ is the login check).
          const midPush = r.stderr.split('\n').filter((l) => /^debug: [A-Z]+ \/v2\/.+: 401/.test(l));
          if (variant.advertised !== undefined) assert.ok(midPush.length > 0, 'the registry refused a token that had run out, and it was renewed');
          console.log(`      ${ms} ms, ${tokens.issued()} tokens for ${perScope.size} scope sets; ${midPush.length} refused mid-push: ${[...new Set(midPush.map((l) => l.replace(/^debug: ([A-Z]+) \/v2\/\S*?(blobs\/uploads|blobs|manifests).*$/, '$1 $2')))].join(', ')}`);
          assertNoSecrets('push output', r.stdout + r.stderr, [PASSWORD], USER);
          await assertPushed(reg.host, ns, { ...authed, certDir: caDir }, slow);
        } finally {
          await reg.stop();
          await tokens.stop();
        }
      });
    }
  });

  describe('proxies: HTTPS_PROXY through a CONNECT proxy, NO_PROXY honoured', () => {
    let tokens: TokenServer;
    let reg: TestRegistry;
    let proxy: ConnectProxy;
    before(async () => {
      tokens = await startTokenServer({ users: { [USER]: PASSWORD } });
      reg = await startRegistry({
        tls: { certFile: certs.server.certFile, keyFile: certs.server.keyFile },
        token: { realm: tokens.realm, service: tokens.service, issuer: tokens.issuer, rootCertBundle: tokens.rootCertBundle },
      });
      proxy = await startConnectProxy();
    });
    after(async () => {
      await proxy?.stop();
      await reg?.stop();
      await tokens?.stop();
    });
    beforeEach(() => proxy.reset());

    const args = (): string[] => ['--cacert', certs.ca.certFile, '--username', USER, '--password-stdin'];
    const realmHost = (): string => new URL(tokens.realm).host;

    it('HTTPS_PROXY and HTTP_PROXY: the registry and the token realm are reached through the proxy', async () => {
      const r = await push(reg.host, 'proxy-on', args(), { input: PASSWORD, env: { HTTPS_PROXY: proxy.url, HTTP_PROXY: proxy.url } });
      await expectPushed(r, reg.host, 'proxy-on');
      const targets = proxy.targets();
      assert.ok(targets.includes(reg.host), `registry through the proxy: ${targets.join(', ')}`);
      assert.ok(targets.includes(realmHost()), `token realm through the proxy: ${targets.join(', ')}`);
      assert.ok(proxy.log.filter((e) => e.method === 'CONNECT').length > 0, 'CONNECT tunnels');
    });

    it('lower-case https_proxy, with a no_proxy entry that does not match', async () => {
      const r = await push(reg.host, 'proxy-lower', args(), { input: PASSWORD, env: { https_proxy: proxy.url, http_proxy: proxy.url, no_proxy: 'localhost,example.com' } });
      await expectPushed(r, reg.host, 'proxy-lower');
      assert.ok(proxy.targets().includes(reg.host));
    });

    for (const [i, [name, env]] of [
      ['NO_PROXY=127.0.0.1', { NO_PROXY: '127.0.0.1' }],
      ['no_proxy=127.0.0.0/8 (CIDR)', { no_proxy: '127.0.0.0/8' }],
    ].entries()) {
      it(`${String(name)}: nothing goes through the proxy`, async () => {
        const r = await push(reg.host, `proxy-off${i}`, args(), { input: PASSWORD, env: { HTTPS_PROXY: proxy.url, HTTP_PROXY: proxy.url, ...(env as NodeJS.ProcessEnv) } });
        await expectPushed(r, reg.host, `proxy-off${i}`);
        assert.deepEqual(proxy.log, [], 'the proxy saw nothing');
      });
    }
  });
});
