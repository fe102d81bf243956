/**
 * Proxy selection from the environment, as Go programs (docker, containerd, skopeo) do it, plus CIDR and IPv6 in
 * `NO_PROXY`. Pure functions, no I/O.
 *
 * - `HTTPS_PROXY` (or `https_proxy`) for https, `HTTP_PROXY` (or `http_proxy`) for http, `ALL_PROXY` (or
 *   `all_proxy`) for either when the scheme's own variable is unset; upper case wins; empty means unset.
 *   A value without a scheme (`proxy:3128`) means `http://proxy:3128`.
 * - `NO_PROXY` (or `no_proxy`), comma-separated: `*` (everything direct); a host name, which matches itself and its
 *   subdomains (`example.com` and `.example.com` and `*.example.com` all match `example.com` and
 *   `a.example.com`); an IP address (`10.1.2.3`, `::1`, `[::1]`); a CIDR block (`10.0.0.0/8`, `fd00::/8`); any of
 *   the names or addresses with `:port` to match only that port (the default port is 443 for https, 80 for http).
 * - Loopback and `localhost` are NOT excluded automatically (unlike Go): tests and some setups proxy to loopback
 *   on purpose. Put `localhost,127.0.0.0/8,::1` in `NO_PROXY` to reach them directly.
 * - No DNS lookups: a CIDR block matches only hosts written as IP addresses.
 */
import { BlockList, isIP } from 'node:net';
import { MirrorError } from '../errors/index.js';

/** NoProxyRule is one parsed `NO_PROXY` entry. */
export type NoProxyRule =
  | { kind: 'all' }
  | { kind: 'domain'; name: string; port?: number | undefined }
  | { kind: 'ip'; address: string; family: 'ipv4' | 'ipv6'; port?: number | undefined }
  | { kind: 'cidr'; block: string; list: BlockList };

/** HostPort is a host split from its port; IPv6 addresses are without brackets. */
export interface HostPort {
  host: string;
  port?: number | undefined;
}

/** ProxyEnv is the proxy environment, read once. Values are as set (with any credentials in them). */
export interface ProxyEnv {
  httpsProxy?: string | undefined;
  httpProxy?: string | undefined;
  allProxy?: string | undefined;
  noProxy?: string | undefined;
}

function envAny(env: NodeJS.ProcessEnv, ...names: string[]): string | undefined {
  for (const name of names) {
    const v = env[name];
    if (v !== undefined && v.trim() !== '') return v.trim();
  }
  return undefined;
}

/** proxyEnvFrom reads the proxy variables, upper case first (`HTTPS_PROXY` before `https_proxy`); empty is unset. */
export function proxyEnvFrom(env: NodeJS.ProcessEnv): ProxyEnv {
  return {
    httpsProxy: envAny(env, 'HTTPS_PROXY', 'https_proxy'),
    httpProxy: envAny(env, 'HTTP_PROXY', 'http_proxy'),
    allProxy: envAny(env, 'ALL_PROXY', 'all_proxy'),
    noProxy: envAny(env, 'NO_PROXY', 'no_proxy'),
  };
}

function parsePort(text: string): number | undefined {
  if (!/^\d{1,5}$/.test(text)) return undefined;
  const n = Number(text);
  return n > 0 && n <= 65535 ? n : undefined;
}

/** splitHostPort splits `host`, `host:port`, `[v6]`, `[v6]:port` or a bare IPv6 address; lower case, no trailing dot. */
export function splitHostPort(value: string): HostPort {
  const s = value.trim().toLowerCase();
  if (s.startsWith('[')) {
    const end = s.indexOf(']');
    if (end > 0) {
      const host = s.slice(1, end);
      const rest = s.slice(end + 1);
      return { host, port: rest.startsWith(':') ? parsePort(rest.slice(1)) : undefined };
    }
  }
  if (isIP(s) === 6) return { host: s };
  const colon = s.lastIndexOf(':');
  if (colon > 0 && s.indexOf(':') === colon) {
    const port = parsePort(s.slice(colon + 1));
    if (port !== undefined) return { host: s.slice(0, colon).replace(/\.$/, ''), port };
  }
  return { host: s.replace(/\.$/, '') };
}

function familyOf(address: string): 'ipv4' | 'ipv6' | undefined {
  const v = isIP(address);
  return v === 4 ? 'ipv4' : v === 6 ? 'ipv6' : undefined;
}

/** parseNoProxy parses a `NO_PROXY` value; entries that mean nothing (bad CIDR, empty) are dropped. */
export function parseNoProxy(value: string | undefined): NoProxyRule[] {
  const rules: NoProxyRule[] = [];
  for (const raw of (value ?? '').split(',')) {
    const entry = raw.trim().toLowerCase();
    if (entry === '') continue;
    if (entry === '*') {
      rules.push({ kind: 'all' });
      continue;
    }
    const slash = entry.indexOf('/');
    if (slash >= 0) {
      const address = entry.slice(0, slash).replace(/^\[|\]$/g, '');
      const prefixText = entry.slice(slash + 1);
      const family = familyOf(address);
      const prefix = /^\d{1,3}$/.test(prefixText) ? Number(prefixText) : NaN;
      if (!family || !Number.isInteger(prefix) || prefix > (family === 'ipv4' ? 32 : 128)) continue;
      const list = new BlockList();
      list.addSubnet(address, prefix, family);
      rules.push({ kind: 'cidr', block: entry, list });
      continue;
    }
    const { host, port } = splitHostPort(entry);
    const family = familyOf(host);
    if (family) {
      rules.push({ kind: 'ip', address: host, family, port });
      continue;
    }
    const name = host.replace(/^\*?\./, '');
    if (name === '') continue;
    rules.push({ kind: 'domain', name, port });
  }
  return rules;
}

/** defaultPort is the port a scheme implies. */
export function defaultPort(scheme: 'http' | 'https'): number {
  return scheme === 'https' ? 443 : 80;
}

/**
 * matchesNoProxy tells whether `host[:port]` must be reached directly according to `NO_PROXY` (a value or parsed
 * rules); `scheme` gives the port when the host has none.
 */
export function matchesNoProxy(noProxy: string | NoProxyRule[] | undefined, hostPort: string, scheme: 'http' | 'https'): boolean {
  const rules = typeof noProxy === 'string' || noProxy === undefined ? parseNoProxy(noProxy) : noProxy;
  if (rules.length === 0) return false;
  const { host, port: given } = splitHostPort(hostPort);
  const port = given ?? defaultPort(scheme);
  const family = familyOf(host);
  for (const rule of rules) {
    switch (rule.kind) {
      case 'all':
        return true;
      case 'cidr':
        if (family && rule.list.check(host, family)) return true;
        break;
      case 'ip': {
        if (!family || family !== rule.family) break;
        if (rule.port !== undefined && rule.port !== port) break;
        const one = new BlockList();
        one.addAddress(rule.address, rule.family);
        if (one.check(host, family)) return true;
        break;
      }
      case 'domain':
        if (family) break;
        if (rule.port !== undefined && rule.port !== port) break;
        if (host === rule.name || host.endsWith(`.${rule.name}`)) return true;
        break;
    }
  }
  return false;
}

/**
 * normalizeProxyUrl checks a proxy value and adds `http://` when it has no scheme. The value is never repeated in the
 * error (it may hold a password).
 */
export function normalizeProxyUrl(value: string, variable: string): string {
  const withScheme = /^[a-z][a-z0-9+.-]*:\/\//i.test(value) ? value : `http://${value}`;
  let url: URL;
  try {
    url = new URL(withScheme);
  } catch {
    throw new MirrorError('BAD_INPUT', `${variable} is not a valid proxy URL`, { phase: 'proxy' });
  }
  if (!['http:', 'https:', 'socks5:', 'socks5h:', 'socks4:', 'socks:'].includes(url.protocol) || url.hostname === '') {
    throw new MirrorError('BAD_INPUT', `${variable} is not a valid proxy URL (scheme ${url.protocol.replace(/:$/, '')})`, { phase: 'proxy' });
  }
  return withScheme;
}

/** SelectProxyOptions are the inputs of {@link selectProxy}. */
export interface SelectProxyOptions {
  /** `host[:port]` to reach. */
  host: string;
  scheme: 'http' | 'https';
  /** The proxy environment: raw variables or {@link proxyEnvFrom}'s result. */
  env: NodeJS.ProcessEnv | ProxyEnv;
}

function isProxyEnv(env: NodeJS.ProcessEnv | ProxyEnv): env is ProxyEnv {
  return 'httpsProxy' in env || 'httpProxy' in env || 'allProxy' in env || 'noProxy' in env;
}

/** selectProxy gives the proxy URL for a host, or undefined for a direct connection. */
export function selectProxy(options: SelectProxyOptions): string | undefined {
  const penv = isProxyEnv(options.env) ? options.env : proxyEnvFrom(options.env);
  const own = options.scheme === 'https' ? penv.httpsProxy : penv.httpProxy;
  const value = own ?? penv.allProxy;
  if (value === undefined) return undefined;
  if (matchesNoProxy(penv.noProxy, options.host, options.scheme)) return undefined;
  const variable = own !== undefined ? (options.scheme === 'https' ? 'HTTPS_PROXY' : 'HTTP_PROXY') : 'ALL_PROXY';
  return normalizeProxyUrl(value, variable);
}
