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

/**
 * parseTarget reads `--private-registry`: `host[:port][/namespace]`, `https://host[:port][/namespace]`,
 * `http://host[:port][/namespace]` (plain HTTP, as RKE2 spells it), the containerd mirror form
 * `https://host:port/v2/namespace`, or `oci:DIR` for a local OCI image layout.
 */
export function parseTarget(input: string, options: TargetOptions = {}): Target {
  const bad = (why: string): MirrorError =>
    new MirrorError('USAGE', `invalid --private-registry "${input}": ${why}`, {
      hint: 'use HOST[:PORT][/NAMESPACE], https://HOST[:PORT]/v2/NAMESPACE, http://HOST[:PORT] or oci:DIR',
    });
  const text = input.trim();
  if (text.startsWith('oci:')) {
    const path = text.slice(4);
    if (path === '') throw bad('oci: needs a directory');
    return { kind: 'oci-layout', path };
  }
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
  const host = (slash < 0 ? rest : rest.slice(0, slash)).toLowerCase();
  let ns = slash < 0 ? '' : rest.slice(slash + 1);
  if (!isValidHost(host)) throw bad(`bad host "${host}"`);
  // containerd's mirror endpoint form: https://host:port/v2/namespace
  if (ns === 'v2') ns = '';
  else if (ns.startsWith('v2/')) ns = ns.slice(3);
  ns = ns.replace(/^\/+|\/+$/g, '');
  if (ns !== '' && !isValidRepository(ns)) throw bad(`bad namespace "${ns}" (lower-case letters, digits and separators only)`);
  return { kind: 'registry', host, namespace: ns, scheme, explicitScheme };
}

/**
 * mapRepository gives the destination repository of a source reference: the source registry host is dropped, the
 * path kept, and the namespace put in front (`gcr.io/a/b` into `ns` is `ns/a/b`; `docker.io/library/x` keeps `library/`).
 */
export function mapRepository(source: ImageReference, namespace: string): string {
  return namespace === '' ? source.repository : `${namespace}/${source.repository}`;
}

/** mapReference gives the full destination reference of a source reference pushed into a registry target. */
export function mapReference(source: ImageReference, target: RegistryTarget): ImageReference {
  return {
    registry: target.host,
    repository: mapRepository(source, target.namespace),
    tag: source.tag,
    digest: source.digest,
  };
}

/** describeTarget writes a target back for messages (`http://host:5000/ns`, `oci:./out`). */
export function describeTarget(t: Target): string {
  if (t.kind === 'oci-layout') return `oci:${t.path}`;
  const base = t.explicitScheme || t.scheme === 'http' ? `${t.scheme}://${t.host}` : t.host;
  return t.namespace ? `${base}/${t.namespace}` : base;
}
