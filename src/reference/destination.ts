import { MirrorError } from '../errors/index.js';
import { type ImageReference, isValidHost, isValidRepository } from './reference.js';

/** RegistryTarget is a registry namespace to push into. */
export interface RegistryTarget {
  readonly kind: 'registry';
  /** Host with optional port, e.g. `172.18.0.20:5000`. */
  readonly host: string;
  /** Namespace prefix without slashes at either end; empty for the registry root. */
  readonly namespace: string;
  /** `http` when the user asked for plain HTTP (`http://...` or `--plain-http`), else `https`. */
  readonly scheme: 'http' | 'https';
  /** True when the scheme was spelled out by the user (so it is not a default). */
  readonly explicitScheme: boolean;
}

/** LayoutTarget is a local OCI image layout directory (`oci:DIR`). */
export interface LayoutTarget {
  readonly kind: 'oci-layout';
  /** The directory. */
  readonly path: string;
}

/** Target is where a push writes to. */
export type Target = RegistryTarget | LayoutTarget;

/** TargetOptions tune {@link parseTarget}. */
export interface TargetOptions {
  /** Force plain HTTP (`--plain-http`). Default: false. */
  plainHttp?: boolean;
}

/** USERINFO_REFUSED says why credentials written into a registry address are refused, and what to use instead. */
export const USERINFO_REFUSED = 'credentials in the address would show in the process list; use --username with --password-stdin, or mirror login';

/** RegistryAddressCredentials is what {@link findAddressCredentials} found. */
export interface RegistryAddressCredentials {
  /** The address with the user information replaced by `***` (`http://***@host:5000/ns`), safe to print. */
  redacted: string;
}

/**
 * findAddressCredentials looks for user information in a registry address (`http://user:pass@host/ns`,
 * `user:pass@host:5000`): everything up to the last `@`, which no host or namespace may contain (so a password
 * with a `/` in it is caught whole too). Undefined when there is none.
 */
export function findAddressCredentials(input: string): RegistryAddressCredentials | undefined {
  const m = /^(\s*(?:[a-zA-Z][a-zA-Z0-9+.-]*:\/\/)?)([^]*)@/.exec(input);
  if (!m) return undefined;
  return { redacted: `${m[1] ?? ''}***@${input.slice(m[0].length)}` };
}

/**
 * parseTarget reads `--private-registry`: `host[:port][/namespace]`, `https://host[:port][/namespace]`,
 * `http://host[:port][/namespace]` (plain HTTP, as RKE2 spells it), the containerd mirror form
 * `https://host:port/v2/namespace`, or `oci:DIR` for a local OCI image layout. Credentials written into the address
 * (`http://user:pass@host`) are a USAGE error that never repeats them ({@link USERINFO_REFUSED}).
 */
export function parseTarget(input: string, options: TargetOptions = {}): Target {
  const text = input.trim();
  const credentials = text.startsWith('oci:') ? undefined : findAddressCredentials(text);
  const shown = credentials?.redacted ?? input;
  const bad = (why: string): MirrorError =>
    new MirrorError('USAGE', `invalid --private-registry "${shown}": ${why}`, {
      hint: 'expected HOST[:PORT][/NAMESPACE], http(s)://HOST[:PORT][/v2]/NAMESPACE or oci:DIR',
    });
  if (text.startsWith('oci:')) {
    const path = text.slice(4);
    if (path === '') throw bad('oci: needs a directory');
    return { kind: 'oci-layout', path };
  }
  if (credentials) throw new MirrorError('USAGE', `invalid --private-registry "${shown}": ${USERINFO_REFUSED}`);
  let rest = text;
  let scheme: 'http' | 'https' = 'https';
  let explicitScheme = false;
  const m = /^([a-zA-Z][a-zA-Z0-9+.-]*):\/\//.exec(rest);
  if (m) {
    const s = m[1]!.toLowerCase();
    if (s !== 'http' && s !== 'https') throw bad(`unsupported scheme "${s}"`);
    scheme = s;
    explicitScheme = true;
    rest = rest.slice(m[0].length);
  }
  if (options.plainHttp) {
    if (explicitScheme && scheme === 'https') throw bad('--plain-http conflicts with https://');
    scheme = 'http';
  }
  rest = rest.replace(/\/+$/, '');
  const slash = rest.indexOf('/');
  const typedHost = slash < 0 ? rest : rest.slice(0, slash);
  const host = typedHost.toLowerCase();
  let ns = slash < 0 ? '' : rest.slice(slash + 1);
  const problem = hostProblem(typedHost, scheme);
  if (problem !== undefined) throw bad(problem);
  // containerd's mirror endpoint form: https://host:port/v2/namespace
  if (ns === 'v2') ns = '';
  else if (ns.startsWith('v2/')) ns = ns.slice(3);
  ns = ns.replace(/^\/+|\/+$/g, '');
  if (ns !== '' && !isValidRepository(ns)) throw bad(`bad namespace "${ns}" (lower-case letters, digits and separators only)`);
  return { kind: 'registry', host, namespace: ns, scheme, explicitScheme };
}

/** MappingOptions choose how a source reference is placed under a registry namespace. */
export interface MappingOptions {
  /**
   * Keep the source registry host as the first path component under the namespace (`quay.io/team/app` into `ns` is
   * `ns/quay.io/team/app`), so that images of different registries never share a repository; a port becomes `_PORT`
   * (see {@link registryPathComponent}). Default: false (the host is dropped, as bmctl and actl do).
   */
  keepRegistryHost?: boolean | undefined;
}

/**
 * hostProblem says what is wrong with a typed `host[:port]` (a port that is not a number or out of range, a name
 * no URL can hold), or undefined when it is fine.
 */
function hostProblem(typed: string, scheme: 'http' | 'https'): string | undefined {
  const port = /^(?:\[[^\]]*\]|[^:]*):(.*)$/.exec(typed)?.[1];
  if (port !== undefined && !/^[0-9]+$/.test(port)) return `port "${port}" is not a number`;
  if (port !== undefined && (Number(port) < 1 || Number(port) > 65535)) return `port ${port} is out of range (1-65535)`;
  if (!isValidHost(typed.toLowerCase())) return `bad host "${typed}"`;
  try {
    new URL(`${scheme}://${typed}/`);
  } catch {
    return `bad host "${typed}"`;
  }
  return undefined;
}

/**
 * registryPathComponent gives the repository path component that stands for a source registry host with
 * {@link MappingOptions.keepRegistryHost}. A host name is a valid component as it is (`quay.io`, `docker.io`); a
 * port's `:` is not allowed in a repository path, so `localhost:5000` becomes `localhost_5000` (`_` never occurs in
 * a host name, so no two hosts give the same component). skopeo sync --scoped keeps the host as it is and so fails
 * on a host with a port ("invalid reference format"). An IPv6 literal (`[::1]:5000`) has no such spelling: undefined.
 */
export function registryPathComponent(host: string): string | undefined {
  if (host.startsWith('[')) return undefined;
  const component = host.toLowerCase().replace(/:(\d+)$/, '_$1');
  return isValidRepository(component) && !component.includes('/') ? component : undefined;
}

/**
 * mapRepository gives the destination repository of a source reference: the source registry host is dropped (or,
 * with `keepRegistryHost`, kept as the first component), the path kept, and the namespace put in front
 * (`gcr.io/a/b` into `ns` is `ns/a/b`, or `ns/gcr.io/a/b`; `docker.io/library/x` keeps `library/`). Throws a
 * BAD_INPUT error naming the image when the host has no repository spelling (an IPv6 literal).
 */
export function mapRepository(source: ImageReference, namespace: string, options: MappingOptions = {}): string {
  let path = source.repository;
  if (options.keepRegistryHost) {
    const host = registryPathComponent(source.registry);
    if (host === undefined) {
      throw new MirrorError('BAD_INPUT', `registry host ${source.registry} of ${source.registry}/${source.repository} cannot be kept in a repository path`, {
        image: `${source.registry}/${source.repository}`,
        hint: 'push it without --keep-registry-host',
      });
    }
    path = `${host}/${path}`;
  }
  return namespace === '' ? path : `${namespace}/${path}`;
}

/** mapReference gives the full destination reference of a source reference pushed into a registry target. */
export function mapReference(source: ImageReference, target: RegistryTarget, options: MappingOptions = {}): ImageReference {
  return {
    registry: target.host,
    repository: mapRepository(source, target.namespace, options),
    tag: source.tag,
    digest: source.digest,
  };
}

/**
 * TargetEndpoint is a target as data, for reports and for `mirror config`: a registry's scheme, host (with port) and
 * namespace, or a layout's directory.
 */
export type TargetEndpoint =
  | { kind: 'registry'; scheme: 'http' | 'https'; host: string; namespace: string }
  | { kind: 'oci-layout'; path: string };

/** targetEndpoint gives a target as data (never with credentials: a target holds none). */
export function targetEndpoint(t: Target): TargetEndpoint {
  if (t.kind === 'oci-layout') return { kind: 'oci-layout', path: t.path };
  return { kind: 'registry', scheme: t.scheme, host: t.host, namespace: t.namespace };
}

/** describeTarget writes a target back for messages (`http://host:5000/ns`, `oci:./out`). */
export function describeTarget(t: Target): string {
  if (t.kind === 'oci-layout') return `oci:${t.path}`;
  const base = t.explicitScheme || t.scheme === 'http' ? `${t.scheme}://${t.host}` : t.host;
  return t.namespace ? `${base}/${t.namespace}` : base;
}
