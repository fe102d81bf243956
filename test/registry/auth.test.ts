/** Challenge parsing, and Basic (htpasswd) and bearer-token auth against a real registry and our token server. */
import assert from 'node:assert/strict';
import { createServer, type Server } from 'node:http';
import type { Credential, CredentialResolver, ResolvedCredential } from '../../src/auth/types.js';
import { MirrorError } from '../../src/errors/index.js';
import type { ProgressEvent } from '../../src/events/index.js';
import { closeAll } from '../../src/net/http.js';
import { parseWwwAuthenticate, RegistryClient } from '../../src/registry/index.js';
import { Authenticator, isLoopbackHost, newAuthAttempt } from '../../src/registry/auth.js';
import { chunksOf, makeImage, randomBlob, staticSettings } from '../helpers/image.js';
import { listenLocal, stopAll } from '../helpers/proc.js';
import { startRegistry, type TestRegistry } from '../helpers/registry.js';
import { skopeoInspectRawDigest } from '../helpers/skopeo.js';
import { startTokenServer, type TokenServer } from '../helpers/token-server.js';

const PASSWORD = 'correct horse battery staple';
const WRONG = 'Tr0ub4dor&3-wrong';

/** A resolver that hands out credentials in order and counts calls. */
class ScriptedResolver implements CredentialResolver {
  calls: Array<{ host: string; retry: boolean }> = [];
  constructor(private readonly answers: Credential[], private readonly source = 'test config /tmp/x/config.json') {}
  async resolve(host: string, options: { retry?: boolean } = {}): Promise<ResolvedCredential> {
    this.calls.push({ host, retry: options.retry === true });
    const credential = this.answers[Math.min(this.calls.length - 1, this.answers.length - 1)] ?? { kind: 'anonymous' };
    return { credential, source: this.source };
  }
}

/** assertNoSecrets checks that nothing a test saw carries a secret. */
function assertNoSecrets(what: unknown, secrets: string[]): void {
  const text = JSON.stringify(what, (_k, v: unknown) => (v instanceof Error ? { message: v.message, cause: v.cause, context: (v as MirrorError).context, hint: (v as MirrorError).hint } : v));
  for (const s of secrets) {
    assert.ok(!text.includes(s), 'a secret leaked');
    assert.ok(!text.includes(Buffer.from(s).toString('base64').slice(0, 12)), 'an encoded secret leaked');
  }
}

describe('WWW-Authenticate parsing', () => {
  it('parses a Bearer challenge with quoted values containing commas', () => {
    assert.deepEqual(
      parseWwwAuthenticate('Bearer realm="https://auth.example.com/token",service="registry.example.com",scope="repository:a/b:pull,push"'),
      [{ scheme: 'bearer', params: { realm: 'https://auth.example.com/token', service: 'registry.example.com', scope: 'repository:a/b:pull,push' } }],
    );
  });

  it('parses Basic, spaces around "=", token values, escaped quotes and several challenges in one header', () => {
    assert.deepEqual(parseWwwAuthenticate('Basic realm="basic-realm"'), [{ scheme: 'basic', params: { realm: 'basic-realm' } }]);
    assert.deepEqual(parseWwwAuthenticate('Basic realm = "a \\"quoted\\" realm" , charset=UTF-8, Bearer realm="https://t/x",error="insufficient_scope"'), [
      { scheme: 'basic', params: { realm: 'a "quoted" realm', charset: 'UTF-8' } },
      { scheme: 'bearer', params: { realm: 'https://t/x', error: 'insufficient_scope' } },
    ]);
    assert.deepEqual(parseWwwAuthenticate('BEARER Realm=https://t/x'), [{ scheme: 'bearer', params: { realm: 'https://t/x' } }]);
  });

  it('survives garbage', () => {
    assert.deepEqual(parseWwwAuthenticate(undefined), []);
    assert.deepEqual(parseWwwAuthenticate(''), []);
    assert.deepEqual(parseWwwAuthenticate('realm="x"'), []);
    assert.deepEqual(parseWwwAuthenticate('Bearer realm="unterminated'), [{ scheme: 'bearer', params: { realm: 'unterminated' } }]);
    assert.deepEqual(parseWwwAuthenticate(', ,Negotiate'), [{ scheme: 'negotiate', params: {} }]);
  });
});

describe('a plain-http token realm of an https registry', () => {
  const challenge = (realm: string): string => `Bearer realm="${realm}",service="reg"`;
  const scopes = [{ repository: 'a/b', actions: ['pull'] as Array<'pull'> }];
  const failure = { status: 401, method: 'GET', url: new URL('https://reg.example/v2/a/b/manifests/v1') };
  /** authorize learns the challenge and the credential as a first 401 does, then asks for the header (no request is sent before the refusal). */
  const authorize = async (realm: string, tls: { insecureSkipVerify?: boolean } = {}): Promise<string | undefined> => {
    const auth = new Authenticator({
      host: 'reg.example',
      credentials: new ScriptedResolver([{ kind: 'basic', username: 'alice', password: PASSWORD }]),
      // Every request goes to a proxy on a closed loopback port: no name is ever looked up, nothing leaves the machine.
      settings: staticSettings({ scheme: 'https', tls, proxy: 'http://127.0.0.1:1' }),
      registryScheme: async () => 'https',
      retry: { retries: 0, baseDelayMs: 1 },
    });
    const attempt = newAuthAttempt();
    assert.deepEqual(await auth.unauthorized(challenge(realm), scopes, attempt, failure), { retry: true });
    return auth.authorization(scopes, newAuthAttempt());
  };

  it('on another host, with TLS verified: refused before the credential is sent (AUTH, naming the realm)', async () => {
    await assert.rejects(authorize('http://tokens.example/token'), (e: unknown) => {
      assert.ok(e instanceof MirrorError);
      assert.equal(e.code, 'AUTH');
      assert.match(e.message, /reg\.example is reached over https but names a plain-http token realm \(http:\/\/tokens\.example\): the credential is not sent there unencrypted/);
      assertNoSecrets(e, [PASSWORD]);
      return true;
    });
  });

  it('loopback realms and registries whose TLS is not verified go on (a warning; the request is made)', async () => {
    assert.ok(isLoopbackHost('127.0.0.1') && isLoopbackHost('localhost') && isLoopbackHost('[::1]') && !isLoopbackHost('tokens.example') && !isLoopbackHost('128.0.0.1'));
    // Past the check, the token request itself fails here (the proxy's port is closed): not the refusal.
    const past = (e: unknown): boolean => e instanceof MirrorError && !/not sent there unencrypted/.test(e.message) && /127\.0\.0\.1:1|refused/i.test(e.describe());
    await assert.rejects(authorize('http://tokens.example/token', { insecureSkipVerify: true }), past);
    await assert.rejects(authorize('http://127.0.0.1:9/token'), past);
  });
});

describe('Basic auth against an htpasswd registry', function () {
  this.timeout(60_000);
  let registry: TestRegistry;

  before(async () => {
    registry = await startRegistry({ users: { alice: PASSWORD } });
  });
  after(async () => {
    await closeAll();
    await registry?.stop();
    await stopAll();
  });

  const clientWith = (resolver: CredentialResolver, events: ProgressEvent[] = []): RegistryClient =>
    new RegistryClient({
      host: registry.host,
      settings: staticSettings({ scheme: 'http' }),
      credentials: resolver,
      retry: { retries: 1, baseDelayMs: 5 },
      events: (e) => events.push(e),
    });

  it('asks for credentials lazily and once, sends Basic on every request, and skopeo reads the image back', async () => {
    const resolver = new ScriptedResolver([{ kind: 'basic', username: 'alice', password: PASSWORD }]);
    const events: ProgressEvent[] = [];
    const client = clientWith(resolver, events);
    assert.deepEqual(await client.ping(), { scheme: 'http', auth: 'basic' });
    assert.equal(resolver.calls.length, 0, 'ping does not ask for credentials');
    const image = makeImage(1000);
    for (const b of [image.config, image.layer]) {
      if (!(await client.blobExists('basic/app', b.digest))) await client.uploadBlob('basic/app', { kind: 'bytes', data: b.data }, { digest: b.digest });
    }
    await client.putManifest('basic/app', 'v1', image.manifest.data, image.mediaType);
    assert.deepEqual(resolver.calls, [{ host: registry.host, retry: false }]);
    assert.deepEqual(await client.ping({ authenticate: true }), { scheme: 'http', auth: 'basic', credentialSource: 'test config /tmp/x/config.json' });
    assert.ok(events.some((e) => e.type === 'debug' && e.message.includes('test config /tmp/x/config.json')), 'the source is named in a debug event');
    assertNoSecrets(events, [PASSWORD]);
    assert.equal(await skopeoInspectRawDigest(`docker://${registry.host}/basic/app:v1`, { creds: `alice:${PASSWORD}` }), image.manifest.digest);
  });

  it('asks again once when refused, and fails with AUTH naming the source, never the password', async () => {
    const resolver = new ScriptedResolver([{ kind: 'basic', username: 'alice', password: WRONG }]);
    const events: ProgressEvent[] = [];
    let error: unknown;
    try {
      await clientWith(resolver, events).blobExists('basic/app', randomBlob(1).digest);
    } catch (e) {
      error = e;
    }
    assert.ok(error instanceof MirrorError);
    assert.equal(error.code, 'AUTH');
    assert.equal(error.exitCode, 4);
    assert.equal(error.context.status, 401);
    assert.match(error.message, new RegExp(`authentication to ${registry.host.replace(/\./g, '\\.')} failed with credentials from test config /tmp/x/config.json \\(HTTP 401`));
    assert.deepEqual(resolver.calls.map((c) => c.retry), [false, true]);
    assertNoSecrets([error, events], [WRONG]);
  });

  it('uses the credential given on the second ask (a prompt after a refusal)', async () => {
    const resolver = new ScriptedResolver([
      { kind: 'basic', username: 'alice', password: WRONG },
      { kind: 'basic', username: 'alice', password: PASSWORD },
    ]);
    const blob = randomBlob(5000);
    const result = await clientWith(resolver).uploadBlob('basic/second', { kind: 'bytes', data: blob.data });
    assert.equal(result.digest, blob.digest);
    assert.deepEqual(resolver.calls.map((c) => c.retry), [false, true]);
  });

  it('says when no credentials were found', async () => {
    const resolver = new ScriptedResolver([{ kind: 'anonymous' }], 'anonymous');
    await assert.rejects(clientWith(resolver).listTags('basic/app'), (e: unknown) => {
      assert.ok(e instanceof MirrorError && e.code === 'AUTH');
      assert.match(e.message, /no credentials were found/);
      assert.match(e.hint ?? '', /--username/);
      return true;
    });
  });
});

describe('bearer tokens from a token server', function () {
  this.timeout(60_000);
  let tokens: TokenServer;
  let registry: TestRegistry;

  const basic: Credential = { kind: 'basic', username: 'bob', password: PASSWORD };

  const clientWith = (resolver: CredentialResolver, events: ProgressEvent[] = [], r: TestRegistry = registry): RegistryClient =>
    new RegistryClient({
      host: r.host,
      settings: staticSettings({ scheme: 'http' }),
      credentials: resolver,
      retry: { retries: 2, baseDelayMs: 5 },
      events: (e) => events.push(e),
    });

  before(async () => {
    tokens = await startTokenServer({
      users: { bob: PASSWORD, carol: 'carol-pass' },
      refreshTokens: { 'refresh-token-of-bob': 'bob' },
      // carol may not read the "secret" repository
      authorize: (user, repo, actions) => (user === undefined ? [] : user === 'carol' && repo.startsWith('tok/secret') ? [] : actions),
    });
    registry = await startRegistry({ token: { realm: tokens.realm, service: tokens.service, issuer: tokens.issuer, rootCertBundle: tokens.rootCertBundle } });
  });
  after(async () => {
    await closeAll();
    await registry?.stop();
    await tokens?.stop();
    await stopAll();
  });
  beforeEach(() => {
    tokens.log.length = 0;
  });

  it('fetches tokens with exact scopes, caches them, and a push token serves reads too', async () => {
    const resolver = new ScriptedResolver([basic]);
    const events: ProgressEvent[] = [];
    const client = clientWith(resolver, events);
    assert.equal((await client.ping()).auth, 'bearer');
    const image = makeImage(1000);
    for (const b of [image.config, image.layer]) {
      if (!(await client.blobExists('tok/app', b.digest))) await client.uploadBlob('tok/app', { kind: 'bytes', data: b.data });
    }
    await client.putManifest('tok/app', 'v1', image.manifest.data, image.mediaType);
    assert.equal((await client.headManifest('tok/app', 'v1'))?.digest, image.manifest.digest);
    assert.deepEqual(
      tokens.log.map((l) => [l.method, l.grant, l.scopes.join(' '), l.account, l.status]),
      [
        ['GET', 'basic', 'repository:tok/app:pull', 'bob', 200],
        ['GET', 'basic', 'repository:tok/app:pull,push', 'bob', 200],
      ],
    );
    assert.equal(resolver.calls.length, 1);
    assertNoSecrets(events, [PASSWORD]);
    assert.equal(await skopeoInspectRawDigest(`docker://${registry.host}/tok/app:v1`, { creds: `bob:${PASSWORD}` }), image.manifest.digest);
  });

  it('mounts with one token for push,pull on the target and pull on the source', async () => {
    const client = clientWith(new ScriptedResolver([basic]));
    const blob = randomBlob(20_000);
    await client.uploadBlob('tok/a', { kind: 'bytes', data: blob.data });
    tokens.log.length = 0;
    assert.deepEqual(await client.mountBlob('tok/b', blob.digest, 'tok/a'), { mounted: true });
    assert.deepEqual(tokens.log.map((l) => l.scopes), [['repository:tok/b:pull,push', 'repository:tok/a:pull']]);
  });

  it('falls back to {mounted:false} without a session when the source may not be read', async () => {
    const bob = clientWith(new ScriptedResolver([basic]));
    const blob = randomBlob(20_000);
    await bob.uploadBlob('tok/secret', { kind: 'bytes', data: blob.data });
    const carol = clientWith(new ScriptedResolver([{ kind: 'basic', username: 'carol', password: 'carol-pass' }]));
    const result = await carol.mountBlob('tok/carol', blob.digest, 'tok/secret');
    assert.deepEqual(result, { mounted: false });
    // and carol uploads normally
    assert.equal((await carol.uploadBlob('tok/carol', { kind: 'bytes', data: blob.data })).digest, blob.digest);
  });

  it('a refused password is asked again once, then AUTH names the source and the token server', async () => {
    const resolver = new ScriptedResolver([{ kind: 'basic', username: 'bob', password: WRONG }], 'docker config /x/config.json');
    const events: ProgressEvent[] = [];
    let error: unknown;
    try {
      await clientWith(resolver, events).uploadBlob('tok/app', { kind: 'bytes', data: randomBlob(10).data });
    } catch (e) {
      error = e;
    }
    assert.ok(error instanceof MirrorError);
    assert.equal(error.code, 'AUTH');
    assert.match(error.message, /authentication to 127\.0\.0\.1:\d+ failed with credentials from docker config \/x\/config\.json \(token server 127\.0\.0\.1:\d+\) \(HTTP 401 UNAUTHORIZED\)/);
    assert.deepEqual(resolver.calls.map((c) => c.retry), [false, true]);
    assert.deepEqual(tokens.log.map((l) => l.status), [401, 401]);
    assertNoSecrets([error, events], [WRONG]);
  });

  it('exchanges an identity token through the OAuth2 POST flow', async () => {
    const client = clientWith(new ScriptedResolver([{ kind: 'identity-token', token: 'refresh-token-of-bob' }]));
    const blob = randomBlob(1000);
    assert.equal((await client.uploadBlob('tok/oauth', { kind: 'bytes', data: blob.data })).digest, blob.digest);
    assert.deepEqual(tokens.log.map((l) => [l.method, l.grant, l.clientId, l.scopes.join(' ')]), [['POST', 'refresh_token', 'mirror', 'repository:tok/oauth:pull,push']]);
  });

  it('sends a registry token as is', async () => {
    const res = await fetch(`${tokens.realm}?service=${tokens.service}&scope=repository:tok/direct:pull,push`, {
      headers: { authorization: `Basic ${Buffer.from(`bob:${PASSWORD}`).toString('base64')}` },
    });
    const { token } = (await res.json()) as { token: string };
    tokens.log.length = 0;
    const client = clientWith(new ScriptedResolver([{ kind: 'registry-token', token }]));
    const blob = randomBlob(1000);
    assert.equal((await client.uploadBlob('tok/direct', { kind: 'bytes', data: blob.data })).digest, blob.digest);
    assert.equal(tokens.log.length, 0, 'the token server was not asked');
  });

  describe('with 2-second tokens', () => {
    let shortTokens: TokenServer;
    let shortRegistry: TestRegistry;
    let lyingTokens: TokenServer;
    let lyingRegistry: TestRegistry;

    before(async () => {
      shortTokens = await startTokenServer({ users: { bob: PASSWORD }, lifetimeSeconds: 2 });
      shortRegistry = await startRegistry({
        token: { realm: shortTokens.realm, service: shortTokens.service, issuer: shortTokens.issuer, rootCertBundle: shortTokens.rootCertBundle },
      });
      // Says an hour, lives 2 s: the client only learns of the expiry from a 401.
      lyingTokens = await startTokenServer({ users: { bob: PASSWORD }, lifetimeSeconds: 2, advertisedExpiresIn: 3600 });
      lyingRegistry = await startRegistry({
        token: { realm: lyingTokens.realm, service: lyingTokens.service, issuer: lyingTokens.issuer, rootCertBundle: lyingTokens.rootCertBundle },
      });
    });
    after(async () => {
      await closeAll();
      await shortRegistry?.stop();
      await lyingRegistry?.stop();
      await shortTokens?.stop();
      await lyingTokens?.stop();
    });

    it('renews tokens before they expire during an upload that spans their lifetime', async () => {
      const events: ProgressEvent[] = [];
      const client = clientWith(new ScriptedResolver([basic]), events, shortRegistry);
      const blob = randomBlob(12 * 32 * 1024);
      const started = Date.now();
      const result = await client.uploadBlob(
        'short/app',
        { kind: 'stream', open: () => chunksOf(blob.data, 32 * 1024, 300), reopenable: false },
        { digest: blob.digest, size: blob.size, mode: 'chunked', chunkSize: 32 * 1024 },
      );
      assert.ok(Date.now() - started > 3000, 'the upload outlived a token');
      assert.equal(result.digest, blob.digest);
      const pushTokens = shortTokens.log.filter((l) => l.scopes.join(' ') === 'repository:short/app:pull,push' && l.status === 200);
      assert.ok(pushTokens.length >= 2, `renewed: ${pushTokens.length} tokens`);
      const unauthorized = events.filter((e) => e.type === 'debug' && /: 401/.test(e.message));
      assert.equal(unauthorized.length, 1, 'only the first request met a 401: renewal came before expiry');
      assert.deepEqual(await client.blobExists('short/app', blob.digest), { size: blob.size });
    });

    it('renews a token on 401 in the middle of a chunked upload and resends the chunk', async () => {
      const events: ProgressEvent[] = [];
      const client = clientWith(new ScriptedResolver([basic]), events, lyingRegistry);
      const blob = randomBlob(8 * 32 * 1024);
      const result = await client.uploadBlob(
        'lying/app',
        { kind: 'stream', open: () => chunksOf(blob.data, 32 * 1024, 400), reopenable: false },
        { digest: blob.digest, size: blob.size, mode: 'chunked', chunkSize: 32 * 1024 },
      );
      assert.equal(result.digest, blob.digest);
      const pushTokens = lyingTokens.log.filter((l) => l.scopes.join(' ') === 'repository:lying/app:pull,push');
      assert.ok(pushTokens.length >= 2, `a new token after the 401: ${pushTokens.length}`);
      const unauthorized = events.filter((e) => e.type === 'debug' && /PATCH .*: 401/.test(e.message));
      assert.ok(unauthorized.length >= 1, 'a PATCH met a 401 from an expired token');
      assert.ok(!events.some((e) => e.type === 'retry' && e.method === 'UPLOAD'), 'no whole-upload restart was needed');
      assert.deepEqual(await client.blobExists('lying/app', blob.digest), { size: blob.size });
    });
  });
});

describe('a token server that answers garbage', function () {
  this.timeout(30_000);
  let server: Server;
  let host: string;
  let token: Buffer = Buffer.alloc(0);

  before(async () => {
    server = createServer((req, res) => {
      if (req.url?.startsWith('/token') === true) {
        res.writeHead(200, { 'content-type': 'application/json', 'content-length': String(token.byteLength) });
        res.end(token);
        return;
      }
      res.writeHead(401, { 'www-authenticate': `Bearer realm="http://${host}/token",service="x"`, 'content-type': 'application/json' });
      res.end('{"errors":[{"code":"UNAUTHORIZED"}]}');
    });
    host = `127.0.0.1:${await listenLocal(server)}`;
  });
  after(async () => {
    await closeAll();
    server?.closeAllConnections();
    await new Promise<void>((resolve) => (server ? server.close(() => resolve()) : resolve()));
  });

  const headManifest = (): Promise<unknown> =>
    new RegistryClient({
      host,
      settings: staticSettings({ scheme: 'http' }),
      credentials: new ScriptedResolver([{ kind: 'anonymous' }]),
      retry: { retries: 0 },
    }).headManifest('some/repo', 'latest');

  it('more than 1 MiB: AUTH saying so, not "not JSON"', async () => {
    token = Buffer.from(`{"token":"${'x'.repeat(2 * 1024 * 1024)}"}`);
    await assert.rejects(headManifest(), (e: unknown) => {
      assert.ok(e instanceof MirrorError, String(e));
      assert.equal(e.code, 'AUTH');
      assert.equal(e.message, `token server ${host} answered with more than 1 MiB, where a token takes a few KB`);
      assert.equal(e.context.registry, host, 'the failure names the registry the token was for');
      return true;
    });
  });

  it('not JSON: AUTH saying so', async () => {
    token = Buffer.from('<html>sign in</html>');
    await assert.rejects(headManifest(), (e: unknown) => e instanceof MirrorError && e.code === 'AUTH' && e.message === `token server ${host} answered something that is not JSON`);
  });
});
