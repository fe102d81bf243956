/**
 * An incomplete certificate chain (the registry serves its leaf without the intermediate): the push fails with the
 * TLS exit code and a cause that says the chain may be incomplete; with the intermediate served it goes through.
 */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ExitCode } from '../../src/errors/index.js';
import { assertOneLineError, runCli } from '../helpers/cli.js';
import { startRegistry, type TestRegistry } from '../helpers/registry.js';

const DEMO = join(process.cwd(), 'testdata', 'bundles', 'demo.tar.xz');

function openssl(args: string[], cwd: string): void {
  execFileSync('openssl', args, { cwd, stdio: 'ignore', timeout: 30_000 });
}

/** makeChain writes root CA -> intermediate CA -> leaf (127.0.0.1) into `dir`. */
function makeChain(dir: string): void {
  const key = (name: string): void => openssl(['ecparam', '-name', 'prime256v1', '-genkey', '-noout', '-out', `${name}.key`], dir);
  for (const n of ['root', 'inter', 'leaf']) key(n);
  openssl(['req', '-x509', '-new', '-key', 'root.key', '-subj', '/CN=mirror chain root', '-days', '2', '-out', 'root.crt'], dir);
  writeFileSync(join(dir, 'ca.ext'), 'basicConstraints=critical,CA:TRUE\nkeyUsage=critical,keyCertSign,cRLSign\n');
  openssl(['req', '-new', '-key', 'inter.key', '-subj', '/CN=mirror chain intermediate', '-out', 'inter.csr'], dir);
  openssl(['x509', '-req', '-in', 'inter.csr', '-CA', 'root.crt', '-CAkey', 'root.key', '-CAcreateserial', '-days', '2', '-extfile', 'ca.ext', '-out', 'inter.crt'], dir);
  writeFileSync(join(dir, 'leaf.ext'), 'basicConstraints=CA:FALSE\nsubjectAltName=IP:127.0.0.1,DNS:localhost\nextendedKeyUsage=serverAuth\n');
  openssl(['req', '-new', '-key', 'leaf.key', '-subj', '/CN=localhost', '-out', 'leaf.csr'], dir);
  openssl(['x509', '-req', '-in', 'leaf.csr', '-CA', 'inter.crt', '-CAkey', 'inter.key', '-CAcreateserial', '-days', '2', '-extfile', 'leaf.ext', '-out', 'leaf.crt'], dir);
  writeFileSync(join(dir, 'fullchain.crt'), readFileSync(join(dir, 'leaf.crt'), 'utf8') + readFileSync(join(dir, 'inter.crt'), 'utf8'));
}

describe('TLS: incomplete certificate chain', function () {
  this.timeout(120_000);
  let dir: string;
  let leafOnly: TestRegistry;
  let full: TestRegistry;

  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'mirror-chain-'));
    makeChain(dir);
    leafOnly = await startRegistry({ tls: { certFile: join(dir, 'leaf.crt'), keyFile: join(dir, 'leaf.key') } });
    full = await startRegistry({ tls: { certFile: join(dir, 'fullchain.crt'), keyFile: join(dir, 'leaf.key') } });
  });
  after(async () => {
    await leafOnly?.stop();
    await full?.stop();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  it('names the incomplete chain, with the TLS exit code, in one line and within seconds', async () => {
    const started = Date.now();
    const r = await runCli(['push', '--source', DEMO, '--private-registry', `${leafOnly.host}/x`, '--cacert', join(dir, 'root.crt'), '--retry-times', '0']);
    assert.ok(Date.now() - started < 10_000);
    assert.equal(r.code, ExitCode.TLS, r.stderr);
    assertOneLineError(r.stderr, /incomplete chain/, '--cacert');
  });

  it('goes through when the registry serves the intermediate', async () => {
    const r = await runCli(['push', '--source', DEMO, '--private-registry', `${full.host}/x`, '--cacert', join(dir, 'root.crt')]);
    assert.equal(r.code, 0, r.stderr);
  });
});
