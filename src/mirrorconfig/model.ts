/**
 * The model every `mirror config` generator reads: which source registries have a mirror, where (scheme, host and
 * the repository path in front of every source repository), with what TLS settings, and whether nodes may still
 * fall back to the source. Built from push/copy reports or from flags; each target only writes it out.
 */
import { DEFAULT_REGISTRY } from '../reference/reference.js';

/** CONFIG_TARGETS are the configurations `mirror config` writes. */
export const CONFIG_TARGETS = ['containerd', 'cri-o', 'rke2', 'k3s', 'openshift', 'bmctl', 'pull-secret'] as const;

/** ConfigTarget is one of {@link CONFIG_TARGETS}. */
export type ConfigTarget = (typeof CONFIG_TARGETS)[number];

/** TARGET_ALIASES are other names for a target: podman and skopeo read CRI-O's `registries.conf`. */
export const TARGET_ALIASES: Readonly<Record<string, ConfigTarget>> = { crio: 'cri-o', podman: 'cri-o', skopeo: 'cri-o' };

/** DOCKER_HUB_ENDPOINT is where containerd and RKE2 send `docker.io` pulls that have no mirror. */
export const DOCKER_HUB_ENDPOINT = 'https://registry-1.docker.io';

/** MirrorEndpoint is the registry that holds the mirrored images, as nodes reach it. */
export interface MirrorEndpoint {
  /** `http` for a plain-HTTP registry. */
  readonly scheme: 'http' | 'https';
  /** Host with optional port, e.g. `172.18.0.20:5000`. */
  readonly host: string;
}

/**
 * MirrorRoute says that the images of one source registry are at an endpoint under a path: the source repository
 * `a/b` of `gcr.io` is the repository `PREFIX/a/b` at the endpoint (`a/b` when the prefix is empty).
 */
export interface MirrorRoute {
  /** The source registry host, normalized as docker does (`docker.io`, never `index.docker.io`). */
  readonly source: string;
  readonly endpoint: MirrorEndpoint;
  /** Repository path in front of every source repository: the namespace (`ns`), with `--keep-registry-host` `ns/gcr.io`. */
  readonly prefix: string;
  /** Source repositories known to be there (from reports), sorted; empty when the route came from flags. */
  readonly repositories: readonly string[];
}

/** PemFile is a certificate or key given on the command line: its absolute path and its bytes. */
export interface PemFile {
  readonly path: string;
  readonly content: Buffer;
}

/** MirrorTls is how nodes reach an https mirror. */
export interface MirrorTls {
  /** CA certificate(s) to trust for the mirror (`--cacert`). */
  readonly ca?: PemFile | undefined;
  /** Client certificate and key for mutual TLS (`--cert`/`--key`). */
  readonly cert?: PemFile | undefined;
  readonly key?: PemFile | undefined;
  /** Skip certificate verification (`--insecure`). */
  readonly insecureSkipVerify: boolean;
}

/** MirrorPlan is everything a generator needs. */
export interface MirrorPlan {
  /** Routes sorted by source registry, then in input order (the order nodes try the mirrors in). */
  readonly routes: readonly MirrorRoute[];
  readonly tls: MirrorTls;
  /** Whether nodes may still pull from the source registry when the mirror fails (false with `--no-fallback`). */
  readonly fallback: boolean;
  /** Where the plan came from, for the header comments (`report push.json`, `--mirror https://... --source-registry gcr.io`). */
  readonly origin: string;
}

/** RouteInput is one image (or one flag) that says a source registry is mirrored under a prefix. */
export interface RouteInput {
  readonly source: string;
  readonly endpoint: MirrorEndpoint;
  readonly prefix: string;
  /** The source repository, when known. */
  readonly repository?: string | undefined;
}

/**
 * buildRoutes groups inputs into routes: one per (source registry, endpoint, prefix), in first-seen order within a
 * source registry, source registries sorted, so the same inputs always give the same routes.
 */
export function buildRoutes(inputs: readonly RouteInput[]): MirrorRoute[] {
  const byKey = new Map<string, { route: Omit<MirrorRoute, 'repositories'>; repositories: Set<string>; order: number }>();
  for (const i of inputs) {
    const key = `${i.source} ${i.endpoint.scheme}://${i.endpoint.host}/${i.prefix}`;
    let entry = byKey.get(key);
    if (!entry) {
      entry = { route: { source: i.source, endpoint: i.endpoint, prefix: i.prefix }, repositories: new Set(), order: byKey.size };
      byKey.set(key, entry);
    }
    if (i.repository !== undefined) entry.repositories.add(i.repository);
  }
  return [...byKey.values()]
    .sort((a, b) => (a.route.source < b.route.source ? -1 : a.route.source > b.route.source ? 1 : a.order - b.order))
    .map((e) => ({ ...e.route, repositories: [...e.repositories].sort() }));
}

/** sourcesOf gives the source registries of a plan, sorted, each once. */
export function sourcesOf(plan: Pick<MirrorPlan, 'routes'>): string[] {
  return [...new Set(plan.routes.map((r) => r.source))].sort();
}

/** routesBySource groups a plan's routes by source registry (sorted), keeping their order. */
export function routesBySource(plan: Pick<MirrorPlan, 'routes'>): Array<[string, MirrorRoute[]]> {
  const map = new Map<string, MirrorRoute[]>();
  for (const r of plan.routes) map.set(r.source, [...(map.get(r.source) ?? []), r]);
  return [...map.entries()].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
}

/** endpointsOf gives the distinct endpoints of a plan, sorted by host then scheme. */
export function endpointsOf(plan: Pick<MirrorPlan, 'routes'>): MirrorEndpoint[] {
  const map = new Map<string, MirrorEndpoint>();
  for (const r of plan.routes) map.set(`${r.endpoint.host} ${r.endpoint.scheme}`, r.endpoint);
  return [...map.entries()].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)).map(([, e]) => e);
}

/** mirrorLocation writes where a route's images are without a scheme: `HOST:PORT/PREFIX` (registries.conf, OpenShift). */
export function mirrorLocation(r: Pick<MirrorRoute, 'endpoint' | 'prefix'>): string {
  return r.prefix === '' ? r.endpoint.host : `${r.endpoint.host}/${r.prefix}`;
}

/**
 * mirrorApiUrl writes a route as containerd and bmctl take a mirror endpoint: `https://HOST:PORT/v2/PREFIX`, the
 * registry API root of the namespace (`https://HOST:PORT` for the registry root).
 */
export function mirrorApiUrl(r: Pick<MirrorRoute, 'endpoint' | 'prefix'>): string {
  const base = `${r.endpoint.scheme}://${r.endpoint.host}`;
  return r.prefix === '' ? base : `${base}/v2/${r.prefix}`;
}

/** upstreamUrl is the default endpoint containerd uses for a source registry (`docker.io` is served by registry-1). */
export function upstreamUrl(source: string): string {
  return source === DEFAULT_REGISTRY ? DOCKER_HUB_ENDPOINT : `https://${source}`;
}

/** derivePrefix gives the path in front of a source repository at the mirror, or undefined when it was renamed. */
export function derivePrefix(sourceRepository: string, destinationRepository: string): string | undefined {
  if (destinationRepository === sourceRepository) return '';
  if (destinationRepository.endsWith(`/${sourceRepository}`)) return destinationRepository.slice(0, -sourceRepository.length - 1);
  return undefined;
}

/** applyPrefix gives the repository a source repository has at the mirror. */
export function applyPrefix(prefix: string, sourceRepository: string): string {
  return prefix === '' ? sourceRepository : `${prefix}/${sourceRepository}`;
}
