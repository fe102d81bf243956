/**
 * Settings for reaching each registry host: TLS material from flags and certs.d directories (as docker and
 * containers do), plain HTTP when asked for, and the proxy from the environment. Results are cached per host.
 *
 * certs.d layout (`<dir>/<host[:port]>/`): every `*.crt` is a CA added to the system roots; every `*.cert` with the
 * `*.key` of the same name is a client certificate and key (a `.cert` without its `.key`, or the reverse, is an
 * error, as in docker). Directories looked in: `--cert-dir DIR` alone when given (`DIR/<host:port>/`, or `DIR`
 * itself when it holds certificate files, as skopeo's `--cert-dir`); else `/etc/docker/certs.d`,
 * `/etc/containers/certs.d` and `$XDG_CONFIG_HOME/containers/certs.d` (`~/.config/...`), all of them, CAs merged.
 * For port 443 the directory without the port is looked at too.
 */
import { X509Certificate } from 'node:crypto';
import { readFile, readdir } from 'node:fs/promises';
import { homedir } from 'node:os';
import { join } from 'node:path';
import { MirrorError } from '../errors/index.js';
import { normalizeProxyUrl, proxyEnvFrom, selectProxy, splitHostPort } from './proxy.js';
import type { HostSettings, HostSettingsResolver, TlsSettings } from './types.js';

/** SYSTEM_CERTS_DIRS are docker's and containers' system certs.d roots. */
export const SYSTEM_CERTS_DIRS = ['/etc/docker/certs.d', '/etc/containers/certs.d'];

/** HostSettingsOptions tune {@link createHostSettingsResolver}. Every field is optional. */
export interface HostSettingsOptions {
  /** `--cacert` files (PEM, or DER): CAs for every host, added to the system roots. Default: none. */
  cacert?: string[] | undefined;
  /** `--cert-dir`: replaces the system certs.d directories. Default: the system and user certs.d directories. */
  certDir?: string | undefined;
  /** `--cert`: client certificate (PEM) for every host; needs `key`. Wins over certs.d client certificates. */
  cert?: string | undefined;
  /** `--key`: client private key (PEM) for `cert`. */
  key?: string | undefined;
  /** `--insecure-skip-tls-verify`: true for every host, or a list of `host[:port]`. Default: false. */
  insecureSkipVerify?: boolean | string[] | undefined;
  /** Plain HTTP: true for every host, or a list of `host[:port]`. Default: false (https unless the caller asks for http). */
  plainHttp?: boolean | string[] | undefined;
  /** Per-host proxy override: a proxy URL, or false for a direct connection. Wins over the environment. */
  proxy?: Record<string, string | false> | undefined;
  /** Environment (`HTTPS_PROXY`, `NO_PROXY`, `XDG_CONFIG_HOME`, ...). Default: `process.env`. */
  env?: NodeJS.ProcessEnv | undefined;
  /** Home directory for `~/.config/containers/certs.d`. Default: `os.homedir()`. */
  homeDir?: string | undefined;
  /** The certs.d roots used when `certDir` is not given. Default: {@link defaultCertsDirs}. */
  certsDirs?: string[] | undefined;
}

/** defaultCertsDirs lists the certs.d roots looked in when `--cert-dir` is not given. */
export function defaultCertsDirs(env: NodeJS.ProcessEnv = process.env, home: string = homedir()): string[] {
  const config = env['XDG_CONFIG_HOME'] || join(home, '.config');
  return [...SYSTEM_CERTS_DIRS, join(config, 'containers', 'certs.d')];
}

function badFile(path: string, why: string, cause?: unknown): MirrorError {
  return new MirrorError('BAD_INPUT', `cannot use ${path}: ${why}`, { phase: 'tls', file: path, cause });
}

function ioReason(e: unknown): string {
  const code = (e as NodeJS.ErrnoException).code;
  if (code === 'ENOENT') return 'no such file';
  if (code === 'EACCES' || code === 'EPERM') return 'permission denied';
  if (code === 'EISDIR') return 'is a directory';
  return 'unreadable';
}

async function readBytes(path: string): Promise<Buffer> {
  try {
    return await readFile(path);
  } catch (e) {
    throw badFile(path, ioReason(e), e);
  }
}

/** readCertificates reads a CA or certificate file: PEM (one or more certificates) or a single DER certificate, as PEM. */
export async function readCertificates(path: string): Promise<string> {
  const bytes = await readBytes(path);
  const text = bytes.toString('utf8');
  if (text.includes('-----BEGIN CERTIFICATE-----')) return text;
  try {
    return new X509Certificate(bytes).toString();
  } catch {
    throw badFile(path, 'not a PEM or DER certificate');
  }
}

/** readPrivateKey reads a PEM private key file. */
export async function readPrivateKey(path: string): Promise<string> {
  const text = (await readBytes(path)).toString('utf8');
  if (!/-----BEGIN [A-Z0-9 ]*PRIVATE KEY-----/.test(text)) throw badFile(path, 'not a PEM private key');
  return text;
}

function inList(list: boolean | string[] | undefined, host: string): boolean {
  if (list === true) return true;
  if (!Array.isArray(list)) return false;
  const want = host.toLowerCase();
  return list.some((h) => h.trim().toLowerCase() === want);
}

/** hostDirNames are the certs.d directory names for a host: `host:port`, and `host` too when the port is 443. */
export function hostDirNames(host: string): string[] {
  const h = host.toLowerCase();
  const names = [h];
  const { port } = splitHostPort(h);
  if (port === 443) names.push(h.slice(0, h.lastIndexOf(':')));
  return names;
}

async function listDir(dir: string): Promise<string[] | undefined> {
  try {
    return (await readdir(dir)).sort();
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    if (code === 'ENOENT' || code === 'ENOTDIR') return undefined;
    throw badFile(dir, ioReason(e), e);
  }
}

/** CertsDirResult is what one certs.d host directory holds. */
export interface CertsDirResult {
  /** CA certificates (PEM). */
  ca: string[];
  /** Client certificate and key (PEM), the first pair by name. */
  client?: { cert: string; key: string; certPath: string; keyPath: string } | undefined;
  /** The files used. */
  files: string[];
}

/** readCertsDir reads one certs.d host directory (`*.crt`, `*.cert` + `*.key`); undefined when it does not exist. */
export async function readCertsDir(dir: string): Promise<CertsDirResult | undefined> {
  const names = await listDir(dir);
  if (names === undefined) return undefined;
  const result: CertsDirResult = { ca: [], files: [] };
  for (const name of names) {
    const path = join(dir, name);
    if (name.endsWith('.crt')) {
      result.ca.push(await readCertificates(path));
      result.files.push(path);
    } else if (name.endsWith('.cert')) {
      const keyName = `${name.slice(0, -'.cert'.length)}.key`;
      if (!names.includes(keyName)) throw badFile(path, `client certificate without its key ${keyName}`);
      if (!result.client) {
        const keyPath = join(dir, keyName);
        const cert = await readCertificates(path);
        const key = await readPrivateKey(keyPath);
        result.client = { cert, key, certPath: path, keyPath };
        result.files.push(path, keyPath);
      }
    } else if (name.endsWith('.key')) {
      const certName = `${name.slice(0, -'.key'.length)}.cert`;
      if (!names.includes(certName)) throw badFile(path, `key without its client certificate ${certName}`);
    }
  }
  return result;
}

/** CachedHostSettingsResolver is a {@link HostSettingsResolver} whose answers are cached per host and scheme. */
export interface CachedHostSettingsResolver extends HostSettingsResolver {
  /** Forget cached answers (after files changed). */
  clear(): void;
}

/**
 * createHostSettingsResolver builds the resolver the registry client asks for each host's TLS, scheme and proxy.
 * Flag files that cannot be read are BAD_INPUT errors naming the file; so are broken certs.d files.
 */
export function createHostSettingsResolver(options: HostSettingsOptions = {}): CachedHostSettingsResolver {
  const env = options.env ?? process.env;
  const proxyEnv = proxyEnvFrom(env);
  if ((options.cert === undefined) !== (options.key === undefined)) {
    throw new MirrorError('USAGE', options.cert === undefined ? '--key needs --cert' : '--cert needs --key');
  }
  let flagCa: Promise<{ ca: string[]; origins: string[] }> | undefined;
  const readFlagCa = (): Promise<{ ca: string[]; origins: string[] }> => {
    flagCa ??= (async () => {
      const ca: string[] = [];
      const origins: string[] = [];
      for (const file of options.cacert ?? []) {
        ca.push(await readCertificates(file));
        origins.push(`--cacert ${file}`);
      }
      return { ca, origins };
    })();
    return flagCa;
  };
  let flagClient: Promise<{ cert: string; key: string } | undefined> | undefined;
  const readFlagClient = (): Promise<{ cert: string; key: string } | undefined> => {
    flagClient ??= (async () => {
      if (options.cert === undefined || options.key === undefined) return undefined;
      return { cert: await readCertificates(options.cert), key: await readPrivateKey(options.key) };
    })();
    return flagClient;
  };

  const hostDirs = async (host: string): Promise<string[]> => {
    const dirs: string[] = [];
    if (options.certDir !== undefined) {
      for (const name of hostDirNames(host)) dirs.push(join(options.certDir, name));
      const found: string[] = [];
      for (const d of dirs) if ((await listDir(d)) !== undefined) found.push(d);
      if (found.length > 0) return found;
      const top = await listDir(options.certDir);
      if (top === undefined) throw badFile(options.certDir, 'no such directory');
      return top.some((n) => /\.(crt|cert|key)$/.test(n)) ? [options.certDir] : [];
    }
    const roots = options.certsDirs ?? defaultCertsDirs(env, options.homeDir ?? homedir());
    for (const root of roots) for (const name of hostDirNames(host)) dirs.push(join(root, name));
    return dirs;
  };

  const build = async (host: string, wanted: 'http' | 'https'): Promise<HostSettings> => {
    const scheme: 'http' | 'https' = wanted === 'http' || inList(options.plainHttp, host) ? 'http' : 'https';
    const tls: TlsSettings = {};
    const flag = await readFlagCa();
    const ca = [...flag.ca];
    const origins = [...flag.origins];
    let client = await readFlagClient();
    if (client && options.cert && options.key) origins.push(`--cert ${options.cert}`, `--key ${options.key}`);
    for (const dir of await hostDirs(host)) {
      const found = await readCertsDir(dir);
      if (!found) continue;
      ca.push(...found.ca);
      if (!client && found.client) {
        client = { cert: found.client.cert, key: found.client.key };
      } else if (found.client) {
        found.files = found.files.filter((f) => f !== found.client?.certPath && f !== found.client?.keyPath);
      }
      origins.push(...found.files);
    }
    if (ca.length > 0) tls.ca = ca;
    if (client) {
      tls.cert = client.cert;
      tls.key = client.key;
    }
    if (inList(options.insecureSkipVerify, host)) tls.insecureSkipVerify = true;
    if (origins.length > 0) tls.origins = origins;

    let proxy: string | undefined;
    const override = options.proxy ? Object.entries(options.proxy).find(([h]) => h.toLowerCase() === host) : undefined;
    if (override) proxy = override[1] === false ? undefined : normalizeProxyUrl(override[1], `the proxy for ${host}`);
    else proxy = selectProxy({ host, scheme, env: proxyEnv });
    return { scheme, tls, proxy };
  };

  const cache = new Map<string, Promise<HostSettings>>();
  return {
    forHost(host, scheme) {
      const h = host.trim().toLowerCase();
      const key = `${scheme} ${h}`;
      let p = cache.get(key);
      if (!p) {
        p = build(h, scheme);
        cache.set(key, p);
      }
      return p;
    },
    clear() {
      cache.clear();
      flagCa = undefined;
      flagClient = undefined;
    },
  };
}
