/**
 * CRI-O, podman, skopeo and buildah (containers-registries.conf(5), version 2): a drop-in
 * `registries.conf.d/50-mirror.conf` with one `[[registry]]` per source registry (`prefix` and `location` the
 * source, so `docker.io/library/busybox` and `docker.io/busybox` both match it, since these tools normalize
 * `docker.io` names to `library/` first) and a `[[registry.mirror]]` whose `location` includes the namespace: the
 * matched prefix is replaced by it, `gcr.io/a/b:1` becomes `HOST:PORT/NS/a/b:1`. Mirrors are tried in order for tag
 * and digest pulls alike, the source last; `--no-fallback` sets `blocked = true` on the source, which stops every
 * connection to it while its mirrors are still used (what OpenShift writes for NeverContactSource).
 *
 * These tools take TLS settings per host from `certs.d/HOST:PORT/` (`ca.crt`, `client.cert`, `client.key`), not
 * from registries.conf: with `--output` they are laid out there; `insecure = true` marks a plain-http mirror or
 * `--insecure`.
 */
import { type GenerateContext, type GeneratedFile, header, PUBLIC_MODE, SECRET_MODE } from './files.js';
import { endpointsOf, mirrorLocation, routesBySource } from './model.js';
import { tomlString } from './text.js';

/** CRIO_DROP_IN is the drop-in file, under `--output` and under /etc/containers. */
export const CRIO_DROP_IN = 'registries.conf.d/50-mirror.conf';

/** CONTAINERS_CERTS_D is where containers/image looks for per-host certificates. */
export const CONTAINERS_CERTS_D = '/etc/containers/certs.d';

/** generateCrio writes the registries.conf drop-in and, with `--output`, the certs.d directories of the mirrors. */
export function generateCrio(ctx: GenerateContext): GeneratedFile[] {
  const { plan } = ctx;
  const tls = plan.tls;
  const https = endpointsOf(plan).filter((e) => e.scheme === 'https');
  const notes = [
    plan.fallback
      ? 'Each mirror is tried first, by tag and by digest; the source registry after them (--no-fallback blocks it).'
      : 'The source registries are blocked (--no-fallback): only their mirrors are contacted.',
    `Install: copy it to /etc/containers/${CRIO_DROP_IN} (podman, skopeo and buildah read it at once; CRI-O on \`systemctl reload crio\`).`,
  ];
  if ((tls.ca || tls.cert) && https.length > 0) {
    notes.push(
      ctx.layout === 'directory'
        ? `Copy certs.d/ to ${CONTAINERS_CERTS_D}/ too: it holds the mirror's CA${tls.cert ? ' and client certificate' : ''}.`
        : `Copy ${tls.ca ? `${tls.ca.path} to ${CONTAINERS_CERTS_D}/HOST:PORT/ca.crt` : ''}${tls.ca && tls.cert ? ', ' : ''}${tls.cert && tls.key ? `${tls.cert.path} and ${tls.key.path} to ${CONTAINERS_CERTS_D}/HOST:PORT/client.cert and client.key` : ''} for ${https.map((e) => e.host).join(', ')}.`,
    );
  }
  const lines: string[] = [];
  for (const [source, routes] of routesBySource(plan)) {
    if (lines.length > 0) lines.push('');
    lines.push('[[registry]]', `prefix = ${tomlString(source)}`, `location = ${tomlString(source)}`);
    if (!plan.fallback) lines.push('blocked = true');
    for (const r of routes) {
      lines.push('', '[[registry.mirror]]', `location = ${tomlString(mirrorLocation(r))}`);
      if (r.endpoint.scheme === 'http' || tls.insecureSkipVerify) lines.push('insecure = true');
    }
  }
  const files: GeneratedFile[] = [{ path: CRIO_DROP_IN, content: `${header(ctx, CRIO_DROP_IN, notes)}\n${lines.join('\n')}\n`, mode: PUBLIC_MODE, kind: 'config' }];
  if (ctx.layout === 'directory') {
    for (const e of https) {
      const dir = `certs.d/${e.host}`;
      if (tls.ca) files.push({ path: `${dir}/ca.crt`, content: tls.ca.content, mode: PUBLIC_MODE, kind: 'data' });
      if (tls.cert && tls.key) {
        files.push({ path: `${dir}/client.cert`, content: tls.cert.content, mode: PUBLIC_MODE, kind: 'data' });
        files.push({ path: `${dir}/client.key`, content: tls.key.content, mode: SECRET_MODE, kind: 'data' });
      }
    }
  }
  return files;
}
