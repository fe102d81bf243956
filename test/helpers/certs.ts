/**
 * Test certificates made with `openssl` at test time in a temporary directory: a CA and a server certificate for
 * 127.0.0.1 and localhost; optionally an expired server certificate, one without the IP SAN, and a client CA with a
 * client certificate for mTLS.
 */
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { run } from './proc.js';

/** CertOptions choose the extra certificates to make. */
export interface CertOptions {
  /** Directory to write into. Default: a new temporary directory. */
  dir?: string | undefined;
  /** Also make an expired server certificate (`expired.crt`/`expired.key`). */
  expired?: boolean | undefined;
  /** Also make a server certificate with only `DNS:localhost` (`noip.crt`/`noip.key`). */
  withoutIpSan?: boolean | undefined;
  /** Also make a client CA and a client certificate/key for mTLS. */
  client?: boolean | undefined;
}

/** CertPair is a certificate and its key: file paths and PEM text. */
export interface CertPair {
  certFile: string;
  keyFile: string;
  cert: string;
  key: string;
}

/** TestCerts are the files made by {@link makeCerts}. */
export interface TestCerts {
  dir: string;
  /** The CA that signed the server certificates. */
  ca: CertPair;
  /** Server certificate with SANs IP:127.0.0.1 and DNS:localhost. */
  server: CertPair;
  expired?: CertPair | undefined;
  noIp?: CertPair | undefined;
  /** The client CA (for the registry's `clientcas`) and a client certificate it signed. */
  clientCa?: CertPair | undefined;
  client?: CertPair | undefined;
}

/** EC_KEY makes a P-256 key (fast to generate). */
const EC_KEY = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes'];

/** pair reads a certificate and key made in `dir`. */
function pair(dir: string, name: string): CertPair {
  const certFile = join(dir, `${name}.crt`);
  const keyFile = join(dir, `${name}.key`);
  return { certFile, keyFile, cert: readFileSync(certFile, 'utf8'), key: readFileSync(keyFile, 'utf8') };
}

/** makeCa makes a self-signed CA certificate. */
async function makeCa(dir: string, name: string, cn: string): Promise<CertPair> {
  await run('openssl', [
    'req', '-x509', ...EC_KEY,
    '-keyout', join(dir, `${name}.key`), '-out', join(dir, `${name}.crt`),
    '-days', '2', '-subj', `/CN=${cn}`,
    '-addext', 'basicConstraints=critical,CA:TRUE',
    '-addext', 'keyUsage=critical,keyCertSign,cRLSign',
  ]);
  return pair(dir, name);
}

/** makeLeaf makes a key and a certificate signed by `ca` with the given extensions and validity. */
async function makeLeaf(dir: string, name: string, ca: CertPair, cn: string, extensions: string[], days: number): Promise<CertPair> {
  const csr = join(dir, `${name}.csr`);
  const ext = join(dir, `${name}.ext`);
  writeFileSync(ext, `${extensions.join('\n')}\n`);
  await run('openssl', ['req', ...EC_KEY, '-keyout', join(dir, `${name}.key`), '-out', csr, '-subj', `/CN=${cn}`]);
  await run('openssl', [
    'x509', '-req', '-in', csr, '-CA', ca.certFile, '-CAkey', ca.keyFile, '-set_serial', String(Date.now() + Math.floor(Math.random() * 1000)),
    '-days', String(days), '-out', join(dir, `${name}.crt`), '-extfile', ext,
  ]);
  return pair(dir, name);
}

const SERVER_EXT = ['basicConstraints=CA:FALSE', 'keyUsage=critical,digitalSignature,keyEncipherment', 'extendedKeyUsage=serverAuth'];

/** makeCerts makes the CA and server certificate, plus the variants asked for. */
export async function makeCerts(options: CertOptions = {}): Promise<TestCerts> {
  const dir = options.dir ?? mkdtempSync(join(tmpdir(), 'mirror-certs-'));
  const ca = await makeCa(dir, 'ca', 'mirror test CA');
  const server = await makeLeaf(dir, 'server', ca, 'localhost', [...SERVER_EXT, 'subjectAltName=IP:127.0.0.1,DNS:localhost'], 2);
  const out: TestCerts = { dir, ca, server };
  if (options.expired) {
    // -days -1: notAfter lies before now, so the certificate is already expired.
    out.expired = await makeLeaf(dir, 'expired', ca, 'localhost', [...SERVER_EXT, 'subjectAltName=IP:127.0.0.1,DNS:localhost'], -1);
  }
  if (options.withoutIpSan) {
    out.noIp = await makeLeaf(dir, 'noip', ca, 'localhost', [...SERVER_EXT, 'subjectAltName=DNS:localhost'], 2);
  }
  if (options.client) {
    out.clientCa = await makeCa(dir, 'client-ca', 'mirror test client CA');
    out.client = await makeLeaf(dir, 'client', out.clientCa, 'mirror-client', [
      'basicConstraints=CA:FALSE',
      'keyUsage=critical,digitalSignature',
      'extendedKeyUsage=clientAuth',
    ], 2);
  }
  return out;
}

/** makeSigningCert makes an RSA key and a self-signed certificate for signing JWTs (RS256). */
export async function makeSigningCert(dir: string, name = 'token-signer'): Promise<CertPair> {
  await run('openssl', [
    'req', '-x509', '-newkey', 'rsa:2048', '-nodes',
    '-keyout', join(dir, `${name}.key`), '-out', join(dir, `${name}.crt`),
    '-days', '2', '-subj', '/CN=mirror test token signer',
    '-addext', 'basicConstraints=critical,CA:TRUE',
    '-addext', 'keyUsage=critical,digitalSignature,keyCertSign',
  ]);
  return pair(dir, name);
}
