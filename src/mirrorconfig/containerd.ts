/**
 * containerd: one `certs.d/<source registry>/hosts.toml` per mirrored registry (containerd's `config_path`, and
 * `ctr --hosts-dir`). The mirror is a `[host."https://HOST:PORT/v2/NS"]` entry with `override_path = true` — the
 * URL is the registry API root of the namespace, so `gcr.io/a/b` is fetched as `/v2/NS/a/b/...` — and the pull
 * and resolve capabilities. `server` is the source registry itself, tried last (`registry-1.docker.io` for
 * `docker.io`, as containerd does); with `--no-fallback` the last mirror is also the `server`, so the source is
 * never contacted. TLS: `ca`, `client` and `skip_verify` on the mirror entry; with `--output` the certificate and
 * key are copied into each host directory and named relative to it (containerd reads relative paths from there), on
 * standard output they are named by their absolute paths.
 */
import { DEFAULT_REGISTRY } from '../reference/reference.js';
import { type GenerateContext, type GeneratedFile, header, PUBLIC_MODE, SECRET_MODE } from './files.js';
import { endpointsOf, mirrorApiUrl, type MirrorEndpoint, type MirrorRoute, routesBySource, upstreamUrl } from './model.js';
import { tomlArray, tomlKey, tomlString } from './text.js';

/** CA_COPY is the name of the mirror CA's copy in each host directory. */
export const CA_COPY = 'mirror-ca.crt';
/** CLIENT_CERT_COPY is the name of the client certificate's copy in each host directory. */
export const CLIENT_CERT_COPY = 'mirror-client.cert';
/** CLIENT_KEY_COPY is the name of the client key's copy (mode 0600) in each host directory. */
export const CLIENT_KEY_COPY = 'mirror-client.key';

/** CONTAINERD_CERTS_D is where the host directories go on a node. */
export const CONTAINERD_CERTS_D = '/etc/containerd/certs.d';

/** tlsLines writes the TLS keys of one mirror entry (none for plain http). */
function tlsLines(ctx: GenerateContext, endpoint: MirrorEndpoint, indent: string): string[] {
  if (endpoint.scheme !== 'https') return [];
  const tls = ctx.plan.tls;
  const copies = ctx.layout === 'directory';
  const out: string[] = [];
  if (tls.ca) out.push(`${indent}ca = ${tomlString(copies ? CA_COPY : tls.ca.path)}`);
  if (tls.cert && tls.key) {
    out.push(`${indent}client = ${tomlArray([[copies ? CLIENT_CERT_COPY : tls.cert.path, copies ? CLIENT_KEY_COPY : tls.key.path]])}`);
  }
  if (tls.insecureSkipVerify) out.push(`${indent}skip_verify = true`);
  return out;
}

/** mirrorLines writes the settings of one mirror (as a `[host]` table body or at the top for `server`). */
function mirrorLines(ctx: GenerateContext, route: MirrorRoute, indent: string): string[] {
  return [
    `${indent}capabilities = ${tomlArray(['pull', 'resolve'])}`,
    ...(route.prefix === '' ? [] : [`${indent}override_path = true`]),
    ...tlsLines(ctx, route.endpoint, indent),
  ];
}

/** describeRoute says in words where a route sends pulls, for the header. */
function describeRoute(r: MirrorRoute): string {
  return `${mirrorApiUrl(r)}${r.prefix === '' ? '' : ` (the repository ${r.prefix}/REPO)`}`;
}

/** hostsToml writes the hosts.toml of one source registry. */
function hostsToml(ctx: GenerateContext, source: string, routes: readonly MirrorRoute[], path: string): string {
  const fallback = ctx.plan.fallback;
  const notes = [
    `Pulls of ${source}/REPO go to ${routes.map(describeRoute).join(', then ')}` +
      (fallback ? `, then to ${upstreamUrl(source)} itself (--no-fallback drops that).` : `, and nowhere else (--no-fallback): ${source} is never contacted.`),
    `Install: copy the certs.d directory to ${CONTAINERD_CERTS_D}/ and set config_path = "${CONTAINERD_CERTS_D}" in the [plugins."io.containerd.grpc.v1.cri".registry] section of /etc/containerd/config.toml (restart containerd once after setting config_path; later changes to these files apply at the next pull). ctr reads them with: ctr images pull --hosts-dir ${CONTAINERD_CERTS_D} ${source}/REPO:TAG`,
  ];
  if (ctx.layout === 'directory' && ctx.plan.tls.ca) notes.push(`${CA_COPY} next to this file is a copy of ${ctx.plan.tls.ca.path}.`);
  const lines: string[] = [];
  if (fallback) {
    lines.push(`server = ${tomlString(upstreamUrl(source))}`);
    for (const r of routes) lines.push('', `[host.${tomlKey(mirrorApiUrl(r))}]`, ...mirrorLines(ctx, r, '  '));
  } else {
    // containerd always tries `server` last and puts the source there when it is not set; a file without a [host]
    // table is refused ("invalid host tree") and the source used. So the last mirror is also the server: an image
    // missing from it is asked for twice, and the source never.
    const last = routes[routes.length - 1]!;
    lines.push(`server = ${tomlString(mirrorApiUrl(last))}`, ...mirrorLines(ctx, last, ''));
    for (const r of routes) lines.push('', `[host.${tomlKey(mirrorApiUrl(r))}]`, ...mirrorLines(ctx, r, '  '));
  }
  return `${header(ctx, path, notes)}\n${lines.join('\n')}\n`;
}

/** mirrorHostToml writes a hosts.toml for the mirror's own name, so direct pulls from it get the same TLS settings. */
function mirrorHostToml(ctx: GenerateContext, endpoint: MirrorEndpoint, path: string): string {
  const notes = [`TLS settings for pulls that name the mirror ${endpoint.host} itself (${endpoint.host}/REPO:TAG).`];
  // A [host] table is needed (see hostsToml); it repeats the server's settings.
  const url = `https://${endpoint.host}`;
  const lines = [`server = ${tomlString(url)}`, ...tlsLines(ctx, endpoint, ''), '', `[host.${tomlKey(url)}]`, ...tlsLines(ctx, endpoint, '  ')];
  return `${header(ctx, path, notes)}\n${lines.join('\n')}\n`;
}

/** tlsCopies gives the certificate and key copies for one host directory (with `--output` only). */
function tlsCopies(ctx: GenerateContext, dir: string): GeneratedFile[] {
  const tls = ctx.plan.tls;
  if (ctx.layout !== 'directory') return [];
  const out: GeneratedFile[] = [];
  if (tls.ca) out.push({ path: `${dir}/${CA_COPY}`, content: tls.ca.content, mode: PUBLIC_MODE, kind: 'data' });
  if (tls.cert && tls.key) {
    out.push({ path: `${dir}/${CLIENT_CERT_COPY}`, content: tls.cert.content, mode: PUBLIC_MODE, kind: 'data' });
    out.push({ path: `${dir}/${CLIENT_KEY_COPY}`, content: tls.key.content, mode: SECRET_MODE, kind: 'data' });
  }
  return out;
}

/** hasTls tells whether the plan has TLS settings for https mirrors. */
function hasTls(ctx: GenerateContext): boolean {
  const t = ctx.plan.tls;
  return t.ca !== undefined || t.cert !== undefined || t.insecureSkipVerify;
}

/** generateContainerd writes the certs.d host directories. */
export function generateContainerd(ctx: GenerateContext): GeneratedFile[] {
  const files: GeneratedFile[] = [];
  const sources = new Set<string>();
  for (const [source, routes] of routesBySource(ctx.plan)) {
    sources.add(source);
    const dir = `certs.d/${source}`;
    const path = `${dir}/hosts.toml`;
    files.push({ path, content: hostsToml(ctx, source, routes, path), mode: PUBLIC_MODE, kind: 'config' });
    if (routes.some((r) => r.endpoint.scheme === 'https')) files.push(...tlsCopies(ctx, dir));
  }
  if (hasTls(ctx)) {
    for (const e of endpointsOf(ctx.plan)) {
      if (e.scheme !== 'https' || sources.has(e.host) || e.host === DEFAULT_REGISTRY) continue;
      const dir = `certs.d/${e.host}`;
      const path = `${dir}/hosts.toml`;
      files.push({ path, content: mirrorHostToml(ctx, e, path), mode: PUBLIC_MODE, kind: 'config' });
      files.push(...tlsCopies(ctx, dir));
    }
  }
  return files;
}
