/** The catalog and manifest deletion against a real registry: with bearer tokens (scope registry:catalog:*) and with Basic auth. */
import assert from 'node:assert/strict';
import { closeAll } from '../../src/net/http.js';
import { RegistryClient } from '../../src/registry/index.js';
import { makeImage, staticSettings } from '../helpers/image.js';
import { stopAll } from '../helpers/proc.js';
import { startRegistry, type TestRegistry } from '../helpers/registry.js';
import { startTokenServer, type TokenServer } from '../helpers/token-server.js';

const USER = 'lister';
const PASSWORD = 'l1st:pw';

describe('registry catalog and manifest deletion (docker-registry)', function () {
  this.timeout(60_000);
  let tokens: TokenServer;
  let reg: TestRegistry;
  before(async () => {
    tokens = await startTokenServer({ users: { [USER]: PASSWORD } });
    reg = await startRegistry({ token: { realm: tokens.realm, service: tokens.service, issuer: tokens.issuer, rootCertBundle: tokens.rootCertBundle } });
  });
  after(async () => {
    await closeAll();
    await reg?.stop();
    await tokens?.stop();
    await stopAll();
  });

  const client = (): RegistryClient =>
    new RegistryClient({
      host: reg.host,
      settings: staticSettings({ scheme: 'http' }),
      credentials: { resolve: async () => ({ credential: { kind: 'basic', username: USER, password: PASSWORD }, source: 'test' }) },
      retry: { retries: 0 },
    });

  /** push puts a small image under repo:tag and gives its manifest digest. */
  async function push(c: RegistryClient, repo: string, tag: string): Promise<string> {
    const img = makeImage();
    for (const b of [img.config, img.layer]) await c.uploadBlob(repo, { kind: "bytes", data: b.data }, { digest: b.digest });
    return c.putManifest(repo, tag, img.manifest.data, img.mediaType);
  }

  it('lists repositories under a prefix with a token for registry:catalog:*, and deletes a manifest by digest', async () => {
    const c = client();
    await push(c, 'team/a', '1');
    await push(c, 'team/b', '1');
    const other = await push(c, 'other/c', '1');
    const listed: string[] = [];
    for await (const r of c.repositories('team')) listed.push(r);
    assert.deepEqual(listed.sort(), ['team/a', 'team/b']);
    assert.ok(tokens.log.some((l) => l.scopes.includes('registry:catalog:*') && l.status === 200), JSON.stringify(tokens.log.map((l) => l.scopes)));
    assert.equal(await c.deleteManifest('other/c', other), true);
    assert.equal(await c.headManifest('other/c', '1'), undefined);
    assert.equal(await c.deleteManifest('other/c', other), false);
  });
});
