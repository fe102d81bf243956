/**
 * A real registry for tests: Debian's `docker-registry` (distribution 2.8) on 127.0.0.1 with a free port and
 * temporary filesystem storage (delete enabled); plain HTTP by default, TLS (optionally mTLS), htpasswd or token auth.
 * Its log goes to a file in the temp dir and is shown only when it fails to start.
 */
import { randomBytes } from 'node:crypto';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { request as httpRequest } from 'node:http';
import { request as httpsRequest } from 'node:https';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { freePort, run, startProcess } from './proc.js';

/** REGISTRY_BINARY is the registry program. */
export const REGISTRY_BINARY = 'docker-registry';
/** REGISTRY_READY_TIMEOUT_MS bounds the wait for `/v2/` to answer. */
export const REGISTRY_READY_TIMEOUT_MS = 10_000;

/** RegistryOptions choose how the test registry is set up. */
export interface RegistryOptions {
  /** Serve TLS with this certificate and key (files). Default: plain HTTP. */
  tls?: { certFile: string; keyFile: string; clientCaFiles?: string[] | undefined } | undefined;
  /** htpasswd auth with these users (user -> password), written bcrypt with `htpasswd -Bbn`. */
  users?: Record<string, string> | undefined;
  /** Token auth: the registry trusts JWTs signed by a certificate in `rootCertBundle` (a PEM file). */
  token?: { realm: string; service: string; issuer: string; rootCertBundle: string } | undefined;
  /**
   * Regular expressions for URLs allowed in pushed manifests (foreign and non-distributable layers). Default: unset,
   * with which distribution refuses every manifest that has URLs.
   */
  manifestUrlsAllow?: string[] | undefined;
  /**
   * Keep the storage on a tmpfs of this many bytes, mounted in a mount namespace of the registry's own
   * (`unshare -m`, needs root or CAP_SYS_ADMIN; see {@link canMountTmpfs}), so that it fills up as a real disk does.
   * The mount goes away with the registry process (so a restart starts empty). Default: the temporary directory's filesystem.
   */
  storageBytes?: number | undefined;
}

let tmpfsProbe: Promise<boolean> | undefined;

/** canMountTmpfs tells whether this machine lets a test mount a tmpfs in a mount namespace of its own (once). */
export function canMountTmpfs(): Promise<boolean> {
  tmpfsProbe ??= (async () => {
    const dir = mkdtempSync(join(tmpdir(), 'mirror-tmpfs-probe-'));
    try {
      await run('unshare', ['-m', 'sh', '-c', 'mount -t tmpfs -o size=64k tmpfs "$1"', 'probe', dir], { timeoutMs: 10_000 });
      return true;
    } catch {
      return false;
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  })();
  return tmpfsProbe;
}

/** TestRegistry is a running registry. */
export interface TestRegistry {
  /** `127.0.0.1:PORT` */
  host: string;
  /** `http://127.0.0.1:PORT` or `https://...` */
  url: string;
  port: number;
  storageDir: string;
  logFile: string;
  /** Stops the registry process and starts it again: same port, same storage, same secret (upload sessions survive). */
  restart(): Promise<void>;
  /** Stops the registry and removes its temporary directory. */
  stop(): Promise<void>;
}

/** yamlString quotes a value for YAML. */
function q(value: string): string {
  return JSON.stringify(value);
}

/** answers tells whether the registry answers at `url` (any HTTP status; for mTLS a handshake refusal counts too). */
function answers(url: string): Promise<boolean> {
  return new Promise((resolve) => {
    const isHttps = url.startsWith('https:');
    const req = (isHttps ? httpsRequest : httpRequest)(`${url}/v2/`, { method: 'GET', rejectUnauthorized: false, timeout: 1000 }, (res) => {
      res.resume();
      resolve(true);
    });
    req.on('timeout', () => req.destroy(new Error('timeout')));
    req.on('error', (e: NodeJS.ErrnoException) => {
      const code = e.code ?? '';
      resolve(isHttps && code !== 'ECONNREFUSED' && code !== 'ECONNRESET' && /SSL|TLS|EPROTO/.test(`${code} ${e.message}`));
    });
    req.end();
  });
}

/** startRegistry starts a registry and waits until `/v2/` answers (bounded by {@link REGISTRY_READY_TIMEOUT_MS}). */
export async function startRegistry(options: RegistryOptions = {}): Promise<TestRegistry> {
  const dir = mkdtempSync(join(tmpdir(), 'mirror-registry-'));
  const storageDir = join(dir, 'storage');
  mkdirSync(storageDir);
  const port = await freePort();
  const lines: string[] = [
    'version: 0.1',
    'log:',
    '  level: warn',
    '  accesslog:',
    '    disabled: true',
    'storage:',
    '  filesystem:',
    `    rootdirectory: ${q(storageDir)}`,
    '  delete:',
    '    enabled: true',
    '  maintenance:',
    '    uploadpurging:',
    '      enabled: false',
    'http:',
    `  addr: ${q(`127.0.0.1:${port}`)}`,
    `  secret: ${q(randomBytes(16).toString('hex'))}`,
  ];
  if (options.tls !== undefined) {
    lines.push('  tls:', `    certificate: ${q(options.tls.certFile)}`, `    key: ${q(options.tls.keyFile)}`);
    if (options.tls.clientCaFiles !== undefined && options.tls.clientCaFiles.length > 0) {
      lines.push('    clientcas:', ...options.tls.clientCaFiles.map((f) => `      - ${q(f)}`));
    }
  }
  if (options.users !== undefined) {
    const htpasswd = join(dir, 'htpasswd');
    const entries: string[] = [];
    for (const [user, password] of Object.entries(options.users)) {
      entries.push((await run('htpasswd', ['-Bbn', user, password])).trim());
    }
    writeFileSync(htpasswd, `${entries.join('\n')}\n`);
    lines.push('auth:', '  htpasswd:', '    realm: basic-realm', `    path: ${q(htpasswd)}`);
  } else if (options.token !== undefined) {
    const t = options.token;
    lines.push(
      'auth:',
      '  token:',
      `    realm: ${q(t.realm)}`,
      `    service: ${q(t.service)}`,
      `    issuer: ${q(t.issuer)}`,
      `    rootcertbundle: ${q(t.rootCertBundle)}`,
    );
  }
  if (options.manifestUrlsAllow !== undefined) {
    lines.push('validation:', '  manifests:', '    urls:', '      allow:', ...options.manifestUrlsAllow.map((r) => `        - ${q(r)}`));
  }
  const config = join(dir, 'config.yml');
  writeFileSync(config, `${lines.join('\n')}\n`);
  const scheme = options.tls !== undefined ? 'https' : 'http';
  const url = `${scheme}://127.0.0.1:${port}`;
  const logFile = join(dir, 'registry.log');
  // On a tmpfs of its own: unshare gives the registry a private mount namespace, sh mounts, then becomes the registry.
  const tmpfs = options.storageBytes === undefined ? undefined : ['-m', 'sh', '-c', 'mount -t tmpfs -o size="$1" tmpfs "$2" && exec "$3" serve "$4"'];
  const launch = (): ReturnType<typeof startProcess> =>
    startProcess({
      command: tmpfs === undefined ? REGISTRY_BINARY : 'unshare',
      args: tmpfs === undefined ? ['serve', config] : [...tmpfs, 'registry-on-tmpfs', String(options.storageBytes), storageDir, REGISTRY_BINARY, config],
      logFile,
      ready: () => answers(url),
      readyTimeoutMs: REGISTRY_READY_TIMEOUT_MS,
    });
  let started: Awaited<ReturnType<typeof startProcess>>;
  try {
    started = await launch();
  } catch (e) {
    rmSync(dir, { recursive: true, force: true });
    throw e;
  }
  return {
    host: `127.0.0.1:${port}`,
    url,
    port,
    storageDir,
    logFile,
    async restart(): Promise<void> {
      await started.stop();
      started = await launch();
    },
    async stop(): Promise<void> {
      await started.stop();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
