/**
 * What `mirror` prints never holds a secret or a raw control character, through the built binary:
 * - a token server (of our own) whose error quotes the password, and a registry (real, behind a hostile proxy) whose
 *   error quotes the bearer token and carries CR and ESC: the secrets are masked, the controls escaped;
 * - an image name with ESC, C1 and bidi characters in a bundle prints escaped, on stderr, stdout and in --json.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ExitCode } from '../../src/errors/index.js';
import { buildOciLayout, DEMO_SPEC, type BuiltLayout, writeTarBundle } from '../../testdata/make-fixtures.js';
import { assertNoSecrets, homeMaker, isolatedEnv, JWT } from '../helpers/auth-env.js';
import { makeSigningCert } from '../helpers/certs.js';
import { runCli, type CliResult } from '../helpers/cli.js';
import { listenLocal, stopAll } from '../helpers/proc.js';
import { startRegistry, type TestRegistry } from '../helpers/registry.js';
import { startTokenServer, type TokenServer } from '../helpers/token-server.js';
import { startHostileProxy, type HostileProxy } from '../errors/hostile-proxy.js';

const USER = 'robot';
/** A password with the characters JSON escapes, so the JSON-escaped form a server echoes is masked too. */
const PASSWORD = 'Hun"ter\\2-pw';
/** Raw characters that must never reach a terminal (newline and tab aside). */
const RAW_CONTROL = /[\u0000-\u0008\u000b-\u001f\u007f-\u009f\u202a-\u202e\u2066-\u2069]/;
const EVIL_NAME = 'example.com/evil\u001b[2J\u009b31m\u202eabc:1';

describe('mirror: no secret and no raw control character in what is printed (integration)', function () {
  this.timeout(180_000);
  let work: string;
  const home = homeMaker(() => work);
  const mirror = (args: string[], options: { input?: string } = {}): Promise<CliResult> =>
    runCli(args, { env: isolatedEnv(home()), input: options.input });
  let demo: BuiltLayout;
  let bundle: string;

  before(async () => {
    work = mkdtempSync(join(tmpdir(), 'mirror-secrets-'));
    demo = await buildOciLayout(DEMO_SPEC);
    bundle = join(work, 'demo.tar.gz');
    await writeTarBundle(demo.files, bundle, { order: 'metadata-first', compression: 'gzip' });
  });
  after(async () => {
    await stopAll();
    if (work) rmSync(work, { recursive: true, force: true });
  });

  describe('a token server whose error quotes the password', () => {
    let hostile: Server;
    let realm: string;
    let registry: TestRegistry;
    let seen = 0;

    before(async () => {
      hostile = createServer((req, res) => {
        seen++;
        const auth = req.headers.authorization ?? '';
        const decoded = Buffer.from(auth.replace(/^Basic\s+/i, ''), 'base64').toString('utf8');
        const password = decoded.slice(decoded.indexOf(':') + 1);
        const body = JSON.stringify({ errors: [{ code: 'DENIED', message: `invalid password ${password} (you sent ${auth})` }] });
        res.writeHead(400, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) });
        res.end(body);
      });
      realm = `http://127.0.0.1:${await listenLocal(hostile)}/token`;
      const signer = await makeSigningCert(work, 'unused-signer');
      registry = await startRegistry({ token: { realm, service: 'svc', issuer: 'iss', rootCertBundle: signer.certFile } });
    });
    after(async () => {
      await registry?.stop();
      await new Promise<void>((resolve) => hostile?.close(() => resolve()));
    });

    for (const extra of [['--debug'], ['--json']]) {
      it(`push ${extra.join(' ')}: exit 4, the server's words shown, the password (raw, JSON-escaped, base64) masked`, async () => {
        const before = seen;
        const r = await mirror(['push', '--source', bundle, '--private-registry', `http://${registry.host}/ns`, '--username', USER, '--password-stdin', ...extra], {
          input: PASSWORD,
        });
        assert.ok(seen > before, 'the token server was asked');
        assert.equal(r.code, ExitCode.AUTH, r.stdout + r.stderr);
        assert.match(r.stdout + r.stderr, /DENIED invalid password \*\*\*/);
        assertNoSecrets('output', r.stdout + r.stderr, [PASSWORD, JSON.stringify(PASSWORD).slice(1, -1)], USER);
      });
    }
  });

  describe('a registry whose error quotes the bearer token, with CR and ESC in it (real registry, hostile proxy)', () => {
    let tokens: TokenServer;
    let registry: TestRegistry;
    let proxy: HostileProxy;

    before(async () => {
      tokens = await startTokenServer({ users: { [USER]: PASSWORD } });
      registry = await startRegistry({ token: { realm: tokens.realm, service: tokens.service, issuer: tokens.issuer, rootCertBundle: tokens.rootCertBundle } });
      proxy = await startHostileProxy(registry.url, (req) => {
        if (req.method !== 'PUT' || !req.path.includes('/manifests/')) return undefined;
        const message = `manifest refused for ${req.headers.authorization ?? 'nobody'}\r\u001b[2Kall fine\u0007`;
        return { status: 400, body: JSON.stringify({ errors: [{ code: 'MANIFEST_INVALID', message }] }) };
      });
    });
    after(async () => {
      await proxy?.stop();
      await registry?.stop();
      await tokens?.stop();
    });

    it('push --debug: the token is masked, CR, ESC and BEL are shown escaped, on stderr and stdout', async () => {
      const r = await mirror(['push', '--source', bundle, '--private-registry', `http://${proxy.host}/ns`, '--username', USER, '--password-stdin', '--debug'], {
        input: PASSWORD,
      });
      assert.ok(proxy.answered() > 0, 'the proxy answered a manifest PUT');
      assert.notEqual(r.code, ExitCode.OK, r.stderr);
      const out = r.stdout + r.stderr;
      assert.ok(tokens.issued() > 0);
      assertNoSecrets('output', out, [PASSWORD], USER);
      assert.ok(!JWT.test(out));
      assert.match(out, /manifest refused for Bearer \*\*\*\\x0d\\x1b\[2Kall fine\\x07/);
      assert.doesNotMatch(r.stdout, RAW_CONTROL);
      assert.doesNotMatch(r.stderr, RAW_CONTROL);
    });

    it('push --json: the document holds neither', async () => {
      const r = await mirror(['push', '--source', bundle, '--private-registry', `http://${proxy.host}/ns`, '--username', USER, '--password-stdin', '--json'], {
        input: PASSWORD,
      });
      assert.notEqual(r.code, ExitCode.OK);
      JSON.parse(r.stdout);
      assertNoSecrets('output', r.stdout + r.stderr, [PASSWORD], USER);
      assert.doesNotMatch(r.stdout, RAW_CONTROL);
    });
  });

  describe('an image name with ESC, C1 and bidi characters in the bundle', () => {
    let registry: TestRegistry;
    let evilBundle: string;

    before(async () => {
      registry = await startRegistry();
      const files = new Map(demo.files);
      const index = JSON.parse((files.get('index.json') ?? Buffer.from('{}')).toString('utf8')) as { manifests: Array<{ annotations?: Record<string, string> }> };
      const first = index.manifests[0];
      assert.ok(first?.annotations);
      first.annotations['io.containerd.image.name'] = EVIL_NAME;
      files.set('index.json', Buffer.from(JSON.stringify(index)));
      evilBundle = join(work, 'evil.tar');
      await writeTarBundle(files, evilBundle, { order: 'metadata-first', compression: 'none' });
    });
    after(async () => {
      await registry?.stop();
    });

    it('push: the name prints escaped on stderr and stdout; the other images are pushed', async () => {
      const r = await mirror(['push', '--source', evilBundle, '--private-registry', `http://${registry.host}/ns`]);
      assert.equal(r.code, ExitCode.PARTIAL, r.stderr);
      assert.doesNotMatch(r.stdout, RAW_CONTROL);
      assert.doesNotMatch(r.stderr, RAW_CONTROL);
      assert.ok(r.stderr.includes('evil\\x1b[2J\\u009b31m\\u202eabc'), r.stderr);
      assert.ok(r.stdout.includes('evil\\x1b[2J\\u009b31m\\u202eabc'), r.stdout);
    });

    it('push --dry-run and --json: escaped too; the JSON still parses', async () => {
      const dry = await mirror(['push', '--source', evilBundle, '--private-registry', `http://${registry.host}/ns`, '--dry-run']);
      assert.doesNotMatch(dry.stdout + dry.stderr, RAW_CONTROL);
      assert.ok(dry.stdout.includes('evil\\x1b[2J'), dry.stdout);
      const json = await mirror(['push', '--source', evilBundle, '--private-registry', `http://${registry.host}/ns`, '--json']);
      assert.doesNotMatch(json.stdout, RAW_CONTROL);
      const doc = JSON.parse(json.stdout) as { images: Array<{ source: string }> };
      assert.ok(doc.images.some((i) => i.source.includes('evil')));
    });
  });
});
