/**
 * Where `mirror login` keeps a credential, through the built binary and a real registry (plain HTTP, htpasswd):
 * - through the credential helper config.json names (credsStore), with only `"HOST": {}` left in the file, and a
 *   later push finds it there;
 * - N logins at once, for N hosts (forwarders on N ports in front of one registry, which hold each login's check
 *   until all have asked, so they all write at the same moment), into one config.json: none lost;
 * - a login killed (SIGKILL) between writing its temporary file and renaming it: the next login takes over its lock
 *   at once and removes the temporary file, so the secret in it does not outlive that run.
 */
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, realpathSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { Agent, createServer as createHttpServer, request as httpRequest } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { ExitCode } from '../../src/errors/index.js';
import { buildOciLayout, DEMO_SPEC, writeTarBundle } from '../../testdata/make-fixtures.js';
import { makeRecordingHelper } from '../auth/support.js';
import { assertNoSecrets, homeMaker, isolatedEnv } from '../helpers/auth-env.js';
import { runCli, type CliResult } from '../helpers/cli.js';
import { listenLocal, stopAll, trackSockets } from '../helpers/proc.js';
import { startRegistry, type TestRegistry } from '../helpers/registry.js';

const USER = 'robot';
const PASSWORD = 'St0re:S3cret "pw"';
const KILLED_USER = 'killed';
const KILLED_PASSWORD = 'K1lled-S3cret-pw';
const b64 = (s: string): string => Buffer.from(s, 'utf8').toString('base64');
const CONCURRENT = 8;

/**
 * Barrier holds the registry's answers to authenticated `GET /v2/` (each login's check of its credential) until
 * `count` logins have asked, then lets them all go at once, so the logins write config.json at the same moment
 * rather than one after another as node start-up would spread them. Bounded: after `timeoutMs` it opens anyway.
 */
class Barrier {
  private waiting: Array<() => void> = [];
  private open = false;
  private readonly timer: NodeJS.Timeout;

  constructor(private readonly count: number, timeoutMs: number) {
    this.timer = setTimeout(() => this.release(), timeoutMs);
  }

  wait(): Promise<void> {
    if (this.open) return Promise.resolve();
    const p = new Promise<void>((resolve) => this.waiting.push(resolve));
    if (this.waiting.length >= this.count) this.release();
    return p;
  }

  release(): void {
    this.open = true;
    clearTimeout(this.timer);
    for (const go of this.waiting.splice(0)) go();
  }
}

/** forwarder is one more HOST:PORT for the registry (an HTTP proxy on 127.0.0.1) whose credential checks meet at `barrier`. */
async function forwarder(upstreamPort: number, barrier: Barrier): Promise<{ host: string; stop: () => Promise<void> }> {
  const agent = new Agent({ keepAlive: true });
  const server = createHttpServer((req, res) => {
    const up = httpRequest({ host: '127.0.0.1', port: upstreamPort, method: req.method, path: req.url, headers: req.headers, agent }, (upRes) => {
      const checked = req.headers.authorization !== undefined && (req.url ?? '').split('?')[0] === '/v2/';
      void (checked ? barrier.wait() : Promise.resolve()).then(() => {
        res.writeHead(upRes.statusCode ?? 502, upRes.headers);
        upRes.pipe(res);
      });
    });
    up.on('error', () => {
      if (!res.headersSent) res.writeHead(502);
      res.end();
    });
    req.pipe(up);
  });
  const tracker = trackSockets(server);
  const own = await listenLocal(server);
  return {
    host: `127.0.0.1:${own}`,
    stop: async () => {
      agent.destroy();
      await tracker.stop();
    },
  };
}

describe('mirror login: credential helper, concurrent logins, a killed login (integration: docker-registry)', function () {
  this.timeout(240_000);
  let work: string;
  let registry: TestRegistry;
  const home = homeMaker(() => work);
  const mirror = (args: string[], h: string, options: { input?: string; env?: NodeJS.ProcessEnv } = {}): Promise<CliResult> =>
    runCli(args, { env: isolatedEnv(h, options.env), input: options.input });

  before(async () => {
    work = mkdtempSync(join(tmpdir(), 'mirror-login-store-'));
    registry = await startRegistry({ users: { [USER]: PASSWORD, [KILLED_USER]: KILLED_PASSWORD } });
  });
  after(async () => {
    await registry?.stop();
    await stopAll();
    if (work) rmSync(work, { recursive: true, force: true });
  });

  it('credsStore: login stores through docker-credential-NAME, the file keeps "HOST": {}; a later push finds the credential', async () => {
    const h = home();
    const helper = await makeRecordingHelper(h);
    const config = join(h, '.docker', 'config.json');
    mkdirSync(join(h, '.docker'));
    writeFileSync(config, JSON.stringify({ auths: { [registry.host]: { auth: b64(`${USER}:old-password`) } }, credsStore: helper.name }));
    const env = { PATH: helper.env['PATH'] };
    const r = await mirror(['login', `http://${registry.host}`, '--username', USER, '--password-stdin', '--json'], h, { input: PASSWORD, env });
    assert.equal(r.code, 0, r.stderr);
    assert.deepEqual(JSON.parse(r.stdout), {
      status: 'ok',
      host: registry.host,
      username: USER,
      checked: true,
      storedIn: 'helper',
      helper: 'docker-credential-recorder',
      path: config,
      warnings: [],
    });
    const calls = await helper.calls();
    assert.deepEqual(calls.map((c) => c.action), ['store']);
    assert.deepEqual(JSON.parse(calls[0]?.input ?? '{}'), { ServerURL: registry.host, Username: USER, Secret: PASSWORD });
    const text = readFileSync(config, 'utf8');
    assert.deepEqual(JSON.parse(text), { auths: { [registry.host]: {} }, credsStore: 'recorder' });
    assertNoSecrets('config.json', text, [PASSWORD, 'old-password'], USER);
    assertNoSecrets('login output', r.stdout + r.stderr, [PASSWORD], USER);

    const demo = await buildOciLayout(DEMO_SPEC);
    const bundle = join(h, 'demo.tar');
    await writeTarBundle(demo.files, bundle, { order: 'metadata-first', compression: 'none' });
    const pushed = await mirror(['push', '--source', bundle, '--private-registry', `http://${registry.host}/via-helper`, '--debug'], h, { env });
    assert.equal(pushed.code, 0, pushed.stderr);
    assert.match(pushed.stderr, /using basic credentials from docker-credential-recorder/);
    assertNoSecrets('push output', pushed.stdout + pushed.stderr, [PASSWORD], USER);

    const plain = await mirror(['login', `http://${registry.host}`, '--username', USER, '--password-stdin'], h, { input: PASSWORD, env });
    assert.match(plain.stdout, /stored in docker-credential-recorder \(configured in .*config\.json\)/);
  });

  it(`${CONCURRENT} logins at once, one host each, into one config.json: every entry is there`, async () => {
    const h = home();
    const barrier = new Barrier(CONCURRENT, 60_000);
    const forwarders = await Promise.all(Array.from({ length: CONCURRENT }, () => forwarder(registry.port, barrier)));
    try {
      const file = join(h, 'shared', 'config.json');
      const runs = await Promise.all(
        forwarders.map((f) =>
          mirror(['login', `http://${f.host}`, '--username', USER, '--password-stdin', '--store', 'config', '--docker-config', file], h, { input: PASSWORD }),
        ),
      );
      for (const r of runs) assert.equal(r.code, 0, r.stderr);
      const auths = (JSON.parse(readFileSync(file, 'utf8')) as { auths: Record<string, { auth?: string }> }).auths;
      assert.deepEqual(Object.keys(auths).sort(), forwarders.map((f) => f.host).sort());
      for (const f of forwarders) assert.equal(auths[f.host]?.auth, b64(`${USER}:${PASSWORD}`));
      assert.deepEqual(readdirSync(join(h, 'shared')), ['config.json'], 'no lock or temporary file left');
      assert.equal(statSync(file).mode & 0o777, 0o600);
      assert.equal(statSync(join(h, 'shared')).mode & 0o777, 0o700);
    } finally {
      barrier.release();
      for (const f of forwarders) await f.stop();
    }
  });

  it('a login killed between writing and renaming: the next login takes over its lock and removes the secret it left', async () => {
    const h = home();
    const dir = join(h, 'killed');
    mkdirSync(dir);
    const file = join(dir, 'config.json');
    writeFileSync(file, JSON.stringify({ auths: { 'keep.example.com': { auth: b64('k:k') } } }), { mode: 0o600 });
    const preload = pathToFileURL(fileURLToPath(new URL('./children/kill-before-rename.js', import.meta.url))).href;
    const killed = await mirror(['login', `http://${registry.host}`, '--username', KILLED_USER, '--password-stdin', '--store', 'config', '--docker-config', file], h, {
      input: KILLED_PASSWORD,
      env: { NODE_OPTIONS: `--import=${preload}`, MIRROR_TEST_KILL_BEFORE_RENAME_TO: realpathSync(file) },
    });
    assert.equal(killed.code, null, `killed by SIGKILL: ${killed.stderr}`);
    const leftovers = readdirSync(dir).filter((n) => n !== 'config.json');
    assert.ok(leftovers.some((n) => n.endsWith('.tmp')), `a temporary file was left: ${leftovers.join(', ')}`);
    assert.ok(leftovers.includes('config.json.lock'), 'and its lock');
    const secretFiles = (): string[] => readdirSync(dir).filter((n) => readFileSync(join(dir, n), 'utf8').includes(b64(`${KILLED_USER}:${KILLED_PASSWORD}`)));
    assert.ok(secretFiles().length > 0, 'the temporary file holds the secret (the kill came at the worst moment)');

    const started = Date.now();
    const next = await mirror(['login', `http://${registry.host}`, '--username', USER, '--password-stdin', '--store', 'config', '--docker-config', file], h, { input: PASSWORD });
    assert.equal(next.code, 0, next.stderr);
    assert.ok(Date.now() - started < 8_000, 'the dead process lock did not make it wait');
    assert.deepEqual(readdirSync(dir), ['config.json']);
    assert.deepEqual(secretFiles(), [], 'no file holds the killed run’s secret');
    const auths = (JSON.parse(readFileSync(file, 'utf8')) as { auths: Record<string, { auth?: string }> }).auths;
    assert.deepEqual(Object.keys(auths).sort(), ['keep.example.com', registry.host].sort());
    assert.equal(auths[registry.host]?.auth, b64(`${USER}:${PASSWORD}`));
  });

  it('login --help says where the credential goes, in which order', async () => {
    const r = await mirror(['login', '--help'], home());
    assert.equal(r.code, ExitCode.OK);
    assert.match(r.stdout, /WHERE THE CREDENTIAL GOES/);
    assert.match(r.stdout, /1\. the credential helper config\.json names for HOST \(credHelpers,\s+else credsStore\)/);
    assert.match(r.stdout, /comes before the OS keychain/);
  });
});
