/** Blob reads that the registry redirects to storage elsewhere: followed, without the registry's credentials. */
import assert from 'node:assert/strict';
import { createServer, type IncomingHttpHeaders, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { DigestMismatchError } from '../../src/errors/index.js';
import { closeAll } from '../../src/net/http.js';
import { RegistryClient } from '../../src/registry/index.js';
import { randomBlob, staticSettings } from '../helpers/image.js';

/** listen starts a server on 127.0.0.1 and gives its `host:port`. */
async function listen(server: Server): Promise<string> {
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', () => resolve()));
  return `127.0.0.1:${(server.address() as AddressInfo).port}`;
}

describe('blob redirects', () => {
  const blob = randomBlob(50_000);
  const storageSeen: IncomingHttpHeaders[] = [];
  const registrySeen: IncomingHttpHeaders[] = [];
  let storage: Server;
  let registry: Server;
  let registryHost: string;
  let served: Uint8Array = blob.data;

  before(async () => {
    storage = createServer((req, res) => {
      storageSeen.push(req.headers);
      res.writeHead(200, { 'content-length': served.byteLength });
      res.end(served);
    });
    const storageHost = await listen(storage);
    // A stand-in for a registry whose storage driver redirects reads (S3, GCS): Basic auth, then 307.
    registry = createServer((req, res) => {
      registrySeen.push(req.headers);
      if (req.headers.authorization === undefined) {
        res.writeHead(401, { 'www-authenticate': 'Basic realm="r"', 'content-type': 'application/json' });
        res.end('{"errors":[{"code":"UNAUTHORIZED","message":"authentication required"}]}');
        return;
      }
      res.writeHead(307, { location: `http://${storageHost}/bucket/blob?X-Amz-Signature=SIGNED` });
      res.end();
    });
    registryHost = await listen(registry);
  });
  after(async () => {
    await closeAll();
    for (const s of [storage, registry]) {
      s.closeAllConnections();
      await new Promise<void>((resolve) => s.close(() => resolve()));
    }
  });

  const client = (): RegistryClient =>
    new RegistryClient({
      host: registryHost,
      settings: staticSettings({ scheme: 'http' }),
      credentials: { resolve: async () => ({ credential: { kind: 'basic', username: 'u', password: 'p' }, source: 'test' }) },
      retry: { retries: 0 },
    });

  it('follows the redirect and never sends the Authorization header to storage', async () => {
    const reader = await client().getBlob('r', blob.digest);
    const parts: Uint8Array[] = [];
    for await (const chunk of reader.body) parts.push(chunk);
    assert.ok(Buffer.concat(parts).equals(Buffer.from(blob.data)));
    assert.ok(registrySeen.some((h) => h.authorization !== undefined), 'the registry got credentials');
    assert.ok(storageSeen.length > 0 && storageSeen.every((h) => h.authorization === undefined), 'storage did not');
  });

  it('verifies the bytes: wrong content from storage is a DigestMismatchError', async () => {
    served = randomBlob(50_000).data;
    const reader = await client().getBlob('r', blob.digest);
    await assert.rejects(
      (async () => {
        for await (const _ of reader.body) void _;
      })(),
      DigestMismatchError,
    );
    served = blob.data;
  });
});
