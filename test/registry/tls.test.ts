/** TLS registries: trusted through an extra CA, refused with a clear TLS error otherwise, mTLS, scheme mix-ups. */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { MirrorError } from '../../src/errors/index.js';
import { closeAll } from '../../src/net/http.js';
import type { TlsSettings } from '../../src/net/types.js';
import { RegistryClient } from '../../src/registry/index.js';
import { makeCerts, type TestCerts } from '../helpers/certs.js';
import { makeImage, staticSettings } from '../helpers/image.js';
import { stopAll } from '../helpers/proc.js';
import { startRegistry, type TestRegistry } from '../helpers/registry.js';
import { skopeoInspectRawDigest } from '../helpers/skopeo.js';

describe('registry client over TLS', function () {
  this.timeout(60_000);
  let certs: TestCerts;
  let tlsRegistry: TestRegistry;
  let plainRegistry: TestRegistry;

  const client = (host: string, scheme: 'http' | 'https', tls: TlsSettings = {}): RegistryClient =>
    new RegistryClient({ host, settings: staticSettings({ scheme, tls }), retry: { retries: 1, baseDelayMs: 5 } });

  const tlsError = async (p: Promise<unknown>): Promise<MirrorError> => {
    try {
      await p;
    } catch (e) {
      assert.ok(e instanceof MirrorError, `a MirrorError, not ${String(e)}`);
      return e;
    }
    assert.fail('expected a failure');
  };

  before(async () => {
    certs = await makeCerts({ expired: true, withoutIpSan: true, client: true });
    tlsRegistry = await startRegistry({ tls: { certFile: certs.server.certFile, keyFile: certs.server.keyFile } });
    plainRegistry = await startRegistry();
  });
  after(async () => {
    await closeAll();
    await tlsRegistry?.stop();
    await plainRegistry?.stop();
    await stopAll();
    if (certs) rmSync(certs.dir, { recursive: true, force: true });
  });

  it('pushes with the test CA added to the system roots, and skopeo verifies the same image with that CA', async () => {
    const c = client(tlsRegistry.host, 'https', { ca: [certs.ca.cert], origins: ['--cacert ca.crt'] });
    assert.deepEqual(await c.ping(), { scheme: 'https', auth: 'none' });
    const image = makeImage(500);
    await c.uploadBlob('tls/app', { kind: 'bytes', data: image.config.data });
    await c.uploadBlob('tls/app', { kind: 'bytes', data: image.layer.data });
    await c.putManifest('tls/app', 'v1', image.manifest.data, image.mediaType);
    const certDir = mkdtempSync(join(tmpdir(), 'mirror-certdir-'));
    try {
      writeFileSync(join(certDir, 'ca.crt'), certs.ca.cert);
      assert.equal(await skopeoInspectRawDigest(`docker://${tlsRegistry.host}/tls/app:v1`, { tlsVerify: true, certDir }), image.manifest.digest);
    } finally {
      rmSync(certDir, { recursive: true, force: true });
    }
  });

  it('without the CA, fails with a TLS error naming the CA problem and the fix', async () => {
    const e = await tlsError(client(tlsRegistry.host, 'https').ping());
    assert.equal(e.code, 'TLS');
    assert.equal(e.exitCode, 5);
    assert.match(e.message, /unknown CA/);
    assert.match(e.message, /UNABLE_TO_VERIFY_LEAF_SIGNATURE/);
    assert.match(e.hint ?? '', /--cacert FILE or a certs\.d directory; --insecure-skip-tls-verify/);
    assert.ok(!e.message.includes('\n'), 'one line');
  });

  it('skips verification when asked', async () => {
    assert.equal((await client(tlsRegistry.host, 'https', { insecureSkipVerify: true }).ping()).scheme, 'https');
  });

  it('an expired certificate says so', async () => {
    const r = await startRegistry({ tls: { certFile: certs.expired?.certFile ?? '', keyFile: certs.expired?.keyFile ?? '' } });
    try {
      const e = await tlsError(client(r.host, 'https', { ca: [certs.ca.cert] }).ping());
      assert.equal(e.code, 'TLS');
      assert.match(e.message, /expired/);
    } finally {
      await r.stop();
    }
  });

  it('a certificate without the IP SAN says the IP is not in it', async () => {
    const r = await startRegistry({ tls: { certFile: certs.noIp?.certFile ?? '', keyFile: certs.noIp?.keyFile ?? '' } });
    try {
      const e = await tlsError(client(r.host, 'https', { ca: [certs.ca.cert] }).ping());
      assert.equal(e.code, 'TLS');
      assert.match(e.message, /IP address 127\.0\.0\.1 is not in the certificate/);
    } finally {
      await r.stop();
    }
  });

  it('mTLS: the client certificate is presented; without it the registry refuses', async () => {
    const r = await startRegistry({
      tls: { certFile: certs.server.certFile, keyFile: certs.server.keyFile, clientCaFiles: [certs.clientCa?.certFile ?? ''] },
    });
    try {
      const ok = client(r.host, 'https', { ca: [certs.ca.cert], cert: certs.client?.cert, key: certs.client?.key });
      assert.equal((await ok.ping()).scheme, 'https');
      const e = await tlsError(client(r.host, 'https', { ca: [certs.ca.cert] }).ping());
      assert.ok(e.code === 'TLS' || e.code === 'NETWORK', e.code);
    } finally {
      await r.stop();
    }
  });

  it('https to a plain-HTTP registry says it answered in plain HTTP', async () => {
    const e = await tlsError(client(plainRegistry.host, 'https').ping());
    assert.equal(e.code, 'TLS');
    assert.match(e.message, /answered an https request in plain HTTP/);
    assert.match(e.hint ?? '', /--plain-http/);
  });

  it('plain HTTP to a TLS registry says the registry speaks HTTPS', async () => {
    const e = await tlsError(client(tlsRegistry.host, 'http').ping());
    assert.equal(e.context.status, 400);
    assert.match(e.message, /speaks HTTPS/);
  });
});
