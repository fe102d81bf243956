import { MirrorError } from '../errors/index.js';
import { clipInput } from '../errors/quote.js';

/** DEFAULT_REGISTRY is the registry host an unqualified name belongs to, as docker normalizes it. */
export const DEFAULT_REGISTRY = 'docker.io';
/** DEFAULT_TAG is the tag of a name that has neither tag nor digest. */
export const DEFAULT_TAG = 'latest';

const PATH_COMPONENT = /^[a-z0-9]+(?:(?:\.|_|__|-+)[a-z0-9]+)*$/;
const TAG = /^[\w][\w.-]{0,127}$/;
const DIGEST = /^[a-z0-9]+(?:[.+_-][a-z0-9]+)*:[a-zA-Z0-9=_-]+$/;
const SHA256 = /^sha256:[a-f0-9]{64}$/;
const HOST = /^(?:[a-zA-Z0-9](?:[a-zA-Z0-9-]*[a-zA-Z0-9])?(?:\.[a-zA-Z0-9](?:[a-zA-Z0-9-]*[a-zA-Z0-9])?)*|\[[0-9a-fA-F:.]+\])(?::[0-9]+)?$/;

/** ImageReference is a normalized image reference: `registry/repository[:tag][@digest]`. */
export interface ImageReference {
  /** Registry host with optional port, e.g. `docker.io`, `172.18.0.20:5000`. */
  readonly registry: string;
  /** Repository path, e.g. `library/busybox`. */
  readonly repository: string;
  /** Tag, when the reference has one. */
  readonly tag?: string | undefined;
  /** Digest, when the reference has one. */
  readonly digest?: string | undefined;
}

/** ParseOptions tune {@link parseReference}. */
export interface ParseOptions {
  /** Add `latest` when neither tag nor digest is given. Default: true. */
  defaultTag?: boolean;
}

/** isValidDigest tells whether a string is a well-formed digest (`algorithm:encoded`). */
export function isValidDigest(d: string): boolean {
  if (!DIGEST.test(d)) return false;
  if (d.startsWith('sha256:')) return SHA256.test(d);
  if (d.startsWith('sha512:')) return /^sha512:[a-f0-9]{128}$/.test(d);
  return true;
}

/** isValidTag tells whether a string is a valid tag. */
export function isValidTag(t: string): boolean {
  return TAG.test(t);
}

/** isValidRepository tells whether a repository path is valid (lower-case components separated by `/`). */
export function isValidRepository(repo: string): boolean {
  return repo.length > 0 && repo.length <= 255 && repo.split('/').every((c) => PATH_COMPONENT.test(c));
}

/** isValidHost tells whether a string is a valid registry host with optional port. */
export function isValidHost(host: string): boolean {
  return HOST.test(host);
}

function looksLikeHost(component: string): boolean {
  return component.includes('.') || component.includes(':') || component === 'localhost' || /[A-Z]/.test(component);
}

/**
 * parseReference parses and normalizes an image reference as docker does: `busybox` is
 * `docker.io/library/busybox:latest`, `index.docker.io` is `docker.io`. Throws a USAGE error naming the reference.
 */
export function parseReference(input: string, options: ParseOptions = {}): ImageReference {
  // The reference may come from a bundle (100,000 characters of it): messages quote a short prefix (clipInput).
  const bad = (why: string): MirrorError => new MirrorError('USAGE', `invalid image reference "${clipInput(input)}": ${why}`, { image: clipInput(input) });
  let rest = input.trim();
  if (rest === '') throw bad('empty');
  let digest: string | undefined;
  const at = rest.indexOf('@');
  if (at >= 0) {
    digest = rest.slice(at + 1);
    rest = rest.slice(0, at);
    if (!isValidDigest(digest)) throw bad(`bad digest "${clipInput(digest)}"`);
  }
  let tag: string | undefined;
  const lastSlash = rest.lastIndexOf('/');
  const colon = rest.lastIndexOf(':');
  if (colon > lastSlash) {
    tag = rest.slice(colon + 1);
    rest = rest.slice(0, colon);
    if (!isValidTag(tag)) throw bad(`bad tag "${clipInput(tag, 40)}"`);
  }
  let registry = DEFAULT_REGISTRY;
  let repository = rest;
  const slash = rest.indexOf('/');
  if (slash >= 0 && looksLikeHost(rest.slice(0, slash))) {
    registry = rest.slice(0, slash);
    repository = rest.slice(slash + 1);
  }
  if (registry.length > 255 || !isValidHost(registry)) throw bad(`bad registry host "${clipInput(registry, 40)}"`);
  registry = registry.toLowerCase();
  if (registry === 'index.docker.io' || registry === 'registry-1.docker.io') registry = DEFAULT_REGISTRY;
  if (registry === DEFAULT_REGISTRY && !repository.includes('/')) repository = `library/${repository}`;
  if (!isValidRepository(repository)) throw bad(`bad repository name "${clipInput(repository, 40)}" (lower-case letters, digits and separators only)`);
  if (tag === undefined && digest === undefined && options.defaultTag !== false) tag = DEFAULT_TAG;
  return { registry, repository, tag, digest };
}

/** tryParseReference is {@link parseReference} returning undefined instead of throwing. */
export function tryParseReference(input: string, options: ParseOptions = {}): ImageReference | undefined {
  try {
    return parseReference(input, options);
  } catch {
    return undefined;
  }
}

/** isFullReference tells whether a string names a registry host explicitly (e.g. `gcr.io/x/y:1`, not `y:1`). */
export function isFullReference(input: string): boolean {
  const slash = input.indexOf('/');
  return slash > 0 && looksLikeHost(input.slice(0, slash)) && tryParseReference(input) !== undefined;
}

/** formatReference writes a reference back as `registry/repository[:tag][@digest]`. */
export function formatReference(ref: ImageReference): string {
  let s = `${ref.registry}/${ref.repository}`;
  if (ref.tag !== undefined) s += `:${ref.tag}`;
  if (ref.digest !== undefined) s += `@${ref.digest}`;
  return s;
}
