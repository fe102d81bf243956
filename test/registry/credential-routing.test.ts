/**
 * Credentials go only to the scheme, host and port they belong to. A hostile front proxy before a real
 * `docker-registry` rewrites every URL the registry hands back — upload `Location`s, tag-list `Link`s — to another
 * origin, or answers blob reads with redirects there; the relay at that origin records what it receives and forwards
 * the request with credentials of its own, so every upload step (POST's Location, PATCH, PUT, status GET, cancel
 * DELETE) and redirect reaches it. With Basic and with bearer auth, it must never see an Authorization header.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { closeAll } from '../../src/net/http.js';
import { RegistryClient } from '../../src/registry/index.js';
import { basicHeader } from '../../src/registry/auth.js';
import { sha256Digest } from '../../src/oci/digest.js';
import { buildOciLayout, DEMO_SPEC, type BuiltLayout, writeTarBundle } from '../../testdata/make-fixtures.js';
import { assertOneLineError, isolatedEnv, homeMaker } from '../helpers/auth-env.js';
import { makeCerts, type TestCerts } from '../helpers/certs.js';
import { runCli, type CliResult } from '../helpers/cli.js';
import { startElsewhere, startFront, type Hop } from '../helpers/hostile-proxy.js';
import { staticSettings } from '../helpers/image.js';
import { stopAll } from '../helpers/proc.js';
import { startRegistry, type TestRegistry } from '../helpers/registry.js';
import { skopeoInspectRaw } from '../helpers/skopeo.js';
import { startTokenServer, type TokenServer } from '../helpers/token-server.js';

const USER = 'pusher';
const PASSWORD = 'R0ute:S3cret';

/** destPath maps a full source ref into `ns` (drop the host, keep the path). */
function destPath(ref: string, ns: string): string {
  return `${ns}/${ref.slice(ref.indexOf('/') + 1)}`;
}

/** AuthKind is how the registry behind the proxies authenticates. */
type AuthKind = 'basic' | 'bearer';

describe('credentials stay with their origin: hostile Location, Link and redirects (docker-registry, skopeo)', function () {
  this.timeout(300_000);
  let work: string;
  let certs: TestCerts;
  let demo: BuiltLayout;
  let bundle: string;
  const home = homeMaker(() => work);

  before(async () => {
    work = mkdtempSync(join(tmpdir(), 'mirror-cred-routing-'));
    certs = await makeCerts();
    demo = await buildOciLayout(DEMO_SPEC);
    bundle = join(work, 'demo.tar.gz');
    await writeTarBundle(demo.files, bundle, { order: 'metadata-first', compression: 'gzip' });
  });
  after(async () => {
    await closeAll();
    await stopAll();
    if (work) rmSync(work, { recursive: true, force: true });
    if (certs) rmSync(certs.dir, { recursive: true, force: true });
  });

  /** push runs `mirror push` of the demo bundle into TARGET with the test credentials on stdin. */
  function push(target: string, args: string[] = []): Promise<CliResult> {
    return runCli(['push', '--source', bundle, '--private-registry', target, '--username', USER, '--password-stdin', ...args], {
      env: isolatedEnv(home()),
      input: PASSWORD,
    });
  }

  /** assertPushed reads every image back from the registry itself with skopeo, by tag, checking its digest. */
  async function assertPushed(reg: TestRegistry, ns: string): Promise<void> {
    for (const img of demo.images) {
      if (!img.ref) continue;
      const raw = await skopeoInspectRaw(`docker://${reg.host}/${destPath(img.ref, ns)}`, { creds: `${USER}:${PASSWORD}` });
      assert.equal(sha256Digest(raw), img.digest, `${img.ref} read back with its digest`);
    }
  }

  /** assertNoCredentials checks a hop got requests, none with an Authorization header (and, when given, these methods). */
  function assertNoCredentials(hop: Hop, methods: string[] = []): void {
    assert.ok(hop.requests.length > 0, 'the other origin was reached');
    const carried = hop.requests.filter((r) => r.authorization !== undefined);
    assert.deepEqual(carried.map((r) => `${r.method} ${r.path}`), [], 'no request to another origin carries credentials');
    for (const m of methods) assert.ok(hop.requests.some((r) => r.method === m), `${m} reached the other origin: ${JSON.stringify(hop.requests.map((r) => r.method))}`);
  }

  for (const kind of ['basic', 'bearer'] as AuthKind[]) {
    describe(`${kind} auth`, () => {
      let reg: TestRegistry;
      let tokens: TokenServer | undefined;
      /** Tokens the relay fetched for itself, per repository. */
      const relayTokens = new Map<string, string>();

      /** relayAuth is the relay's own Authorization for a request it forwards (the test's credentials). */
      const relayAuth = async (req: { path: string }): Promise<string | undefined> => {
        if (kind === 'basic') return basicHeader(USER, PASSWORD);
        const repo = /^\/v2\/(.+?)\/(?:blobs|manifests|tags)\//.exec(req.path)?.[1];
        if (repo === undefined || tokens === undefined) return undefined;
        let token = relayTokens.get(repo);
        if (token === undefined) {
          const url = new URL(tokens.realm);
          url.searchParams.set('service', tokens.service);
          url.searchParams.set('scope', `repository:${repo}:pull,push`);
          const res = await fetch(url, { headers: { authorization: basicHeader(USER, PASSWORD) } });
          token = ((await res.json()) as { token: string }).token;
          relayTokens.set(repo, token);
        }
        return `Bearer ${token}`;
      };

      before(async () => {
        if (kind === 'basic') reg = await startRegistry({ users: { [USER]: PASSWORD } });
        else {
          tokens = await startTokenServer({ users: { [USER]: PASSWORD } });
          reg = await startRegistry({ token: { realm: tokens.realm, service: tokens.service, issuer: tokens.issuer, rootCertBundle: tokens.rootCertBundle } });
        }
      });
      after(async () => {
        await reg?.stop();
        await tokens?.stop();
      });

      /** withHops runs `body` with a relay and a front proxy that sends upload Locations (and Links) to the relay. */
      async function withHops(
        options: {
          faults?: Parameters<typeof startElsewhere>[0]['faults'];
          redirectBlobs?: boolean;
          rewriteUploads?: boolean;
          addNextLink?: Parameters<typeof startFront>[0]['addNextLink'];
        },
        body: (front: Hop, relay: Hop) => Promise<void>,
      ): Promise<void> {
        const relay = await startElsewhere({ upstream: reg.url, authorize: relayAuth, faults: options.faults });
        const front = await startFront({
          upstream: reg.url,
          redirectBlobsTo: options.redirectBlobs ? relay.url : undefined,
          addNextLink: options.addNextLink,
          rewrite: (url) => (options.rewriteUploads === false ? undefined : `${relay.url}${url.pathname}${url.search}`),
        });
        try {
          await body(front, relay);
        } finally {
          await front.stop();
          await relay.stop();
        }
      }

      it('monolithic uploads: the PUT to a Location on another origin goes without credentials, and the push completes', async () => {
        await withHops({}, async (front, relay) => {
          const r = await push(`http://${front.host}/${kind}-mono`);
          assert.equal(r.code, 0, r.stderr + r.stdout);
          assertNoCredentials(relay, ['PUT']);
          assert.ok(front.requests.some((q) => q.authorization !== undefined), 'the registry itself got the credentials');
          await assertPushed(reg, `${kind}-mono`);
        });
      });

      it('chunked uploads through a cut PATCH and a lost session: PATCH, status GET, cancel DELETE and PUT all go without credentials', async () => {
        await withHops(
          {
            faults: [
              { method: 'PATCH', nth: 1, kind: 'cut' },
              { method: 'PUT', nth: 1, kind: { status: 404, code: 'BLOB_UPLOAD_UNKNOWN' } },
            ],
          },
          async (front, relay) => {
            const r = await push(`http://${front.host}/${kind}-chunked`, ['--upload-mode', 'chunked']);
            assert.equal(r.code, 0, r.stderr + r.stdout);
            assertNoCredentials(relay, ['PATCH', 'GET', 'DELETE', 'PUT']);
            await assertPushed(reg, `${kind}-chunked`);
          },
        );
      });

      it('blob reads redirected to another origin are followed without credentials', async () => {
        await withHops({ redirectBlobs: true, rewriteUploads: false }, async (front, relay) => {
          const r = await push(`http://${front.host}/${kind}-redirect`);
          assert.equal(r.code, 0, r.stderr + r.stdout);
          assertNoCredentials(relay, ['HEAD']);
          await assertPushed(reg, `${kind}-redirect`);
        });
      });

      it('tag-list Link headers that name another origin: every page is read, none with credentials', async () => {
        // distribution 2.8 does not page tag lists: the front adds the Link of a second page, as a paging registry would.
        const addNextLink = (req: { path: string; query: string }): string | undefined =>
          req.path.endsWith('/tags/list') && !req.query.includes('last=') ? `${req.path}?n=1&last=1.36` : undefined;
        await withHops({ addNextLink }, async (front, relay) => {
          const repo = `${kind}-mono/library/busybox`;
          const client = new RegistryClient({
            host: front.host,
            settings: staticSettings({ scheme: 'http' }),
            credentials: { resolve: async () => ({ credential: { kind: 'basic', username: USER, password: PASSWORD }, source: 'test' }) },
            retry: { retries: 0 },
          });
          // A second tag, so the list has two pages of one.
          const m = await client.getManifest(repo, '1.36');
          await client.putManifest(repo, 'second', m.bytes, m.mediaType);
          relay.requests.length = 0;
          const tags = await client.listTags(repo, { pageSize: 1 });
          assert.deepEqual([...new Set(tags)].sort(), ['1.36', 'second']);
          assertNoCredentials(relay, ['GET']);
        });
      });
    });
  }

  describe('https registries (a TLS-terminating front proxy)', () => {
    let reg: TestRegistry;
    before(async () => {
      reg = await startRegistry({ users: { [USER]: PASSWORD } });
    });
    after(async () => reg?.stop());

    it('a plain-http upload Location on the registry\'s own host (proxy without X-Forwarded-Proto) is refused, naming the misconfiguration; nothing is sent', async () => {
      const front = await startFront({ upstream: reg.url, tls: { cert: certs.server.cert, key: certs.server.key }, forwardedProto: false });
      try {
        const r = await push(`${front.host}/downgrade`, ['--cacert', certs.ca.certFile]);
        assert.equal(r.code, 5, r.stderr + r.stdout);
        assertOneLineError(r.stderr, 'X-Forwarded-Proto', front.host);
        assert.equal(front.tlsErrors, 0, 'no plain-http request was sent to the TLS port');
        assert.ok(!front.requests.some((q) => q.method === 'PUT' || q.method === 'PATCH'), 'no upload data went anywhere');
        await assert.rejects(skopeoInspectRaw(`docker://${reg.host}/downgrade/library/busybox:1.36`, { creds: `${USER}:${PASSWORD}` }), 'nothing was tagged');
      } finally {
        await front.stop();
      }
    });

    it('a plain-http Location on another host is followed without credentials (as docker does)', async () => {
      const relay = await startElsewhere({ upstream: reg.url, authorize: async () => basicHeader(USER, PASSWORD) });
      // `localhost` is another host name than the registry's 127.0.0.1.
      const front = await startFront({
        upstream: reg.url,
        tls: { cert: certs.server.cert, key: certs.server.key },
        rewrite: (url) => (url.pathname.includes('/blobs/uploads/') ? `http://localhost:${relay.port}${url.pathname}${url.search}` : undefined),
      });
      try {
        const r = await push(`${front.host}/elsewhere-http`, ['--cacert', certs.ca.certFile]);
        assert.equal(r.code, 0, r.stderr + r.stdout);
        assertNoCredentials(relay, ['PUT']);
        await assertPushed(reg, 'elsewhere-http');
      } finally {
        await front.stop();
        await relay.stop();
      }
    });

    it('a plain-http token realm for an https registry: a warning, once', async () => {
      const tokens = await startTokenServer({ users: { [USER]: PASSWORD } });
      const treg = await startRegistry({ token: { realm: tokens.realm, service: tokens.service, issuer: tokens.issuer, rootCertBundle: tokens.rootCertBundle } });
      const front = await startFront({ upstream: treg.url, tls: { cert: certs.server.cert, key: certs.server.key } });
      try {
        const r = await push(`${front.host}/http-realm`, ['--cacert', certs.ca.certFile]);
        assert.equal(r.code, 0, r.stderr + r.stdout);
        const warnings = r.stderr.split('\n').filter((l) => /plain-http token realm/.test(l));
        assert.equal(warnings.length, 1, r.stderr);
        assert.ok(!r.stderr.includes(PASSWORD));
      } finally {
        await front.stop();
        await treg.stop();
        await tokens.stop();
      }
    });
  });
});
