/**
 * GDC / Anthos on bare metal (`bmctl`, `actl`): the `registryMirrors` block of the cluster configuration file's
 * header section. Each entry is one mirror endpoint in containerd's form `https://HOST:PORT/v2/NAMESPACE`, with
 * `caCertPath` (the CA file on the admin workstation, where bmctl runs), `pullCredentialConfigPath` (a Docker
 * config file with the mirror's credential, written 0600 next to the block with `--output`) and `hosts`, the source
 * registries the nodes look for in the mirror.
 */
import { resolve } from 'node:path';
import type { Credential } from '../auth/types.js';
import { dockerConfigJson } from './dockerconfig.js';
import { type GenerateContext, type GeneratedFile, header, PUBLIC_MODE, SECRET_MODE } from './files.js';
import { mirrorApiUrl, type MirrorRoute } from './model.js';
import { yamlDocument, type YamlMap } from './text.js';

/** BMCTL_BLOCK is the registryMirrors block written under `--output`. */
export const BMCTL_BLOCK = 'registry-mirrors.yaml';
/** BMCTL_CREDENTIALS is the Docker config with the mirror's credential that `pullCredentialConfigPath` names. */
export const BMCTL_CREDENTIALS = 'pull-credential-config.json';

/** generateBmctl writes the registryMirrors block and, when a credential was found and `--output` is given, the credential file. */
export function generateBmctl(ctx: GenerateContext): GeneratedFile[] {
  const { plan } = ctx;
  // One entry per endpoint URL (scheme, host and path): every source registry served there is one of its hosts.
  const entries = new Map<string, MirrorRoute[]>();
  for (const r of plan.routes) entries.set(mirrorApiUrl(r), [...(entries.get(mirrorApiUrl(r)) ?? []), r]);
  const credentials = new Map<string, Credential>();
  for (const r of plan.routes) {
    const c = ctx.credentials.get(r.endpoint.host);
    if (c) credentials.set(r.endpoint.host, c);
  }
  const files: GeneratedFile[] = [];
  let credentialPath: string | undefined;
  if (credentials.size > 0) {
    if (ctx.layout === 'directory' && ctx.outputDir !== undefined) {
      credentialPath = resolve(ctx.outputDir, BMCTL_CREDENTIALS);
      files.push({ path: BMCTL_CREDENTIALS, content: dockerConfigJson(credentials, { pretty: true, events: ctx.events }), mode: SECRET_MODE, kind: 'data' });
    } else {
      ctx.events({
        type: 'warning',
        message: `pullCredentialConfigPath is left out: the credential file for ${[...credentials.keys()].join(', ')} is written only with --output DIR`,
      });
    }
  }
  const mirrors = [...entries.entries()].map(([endpoint, routes]): YamlMap => {
    const https = routes.some((r) => r.endpoint.scheme === 'https');
    return {
      endpoint,
      caCertPath: https ? plan.tls.ca?.path : undefined,
      pullCredentialConfigPath: credentialPath,
      hosts: [...new Set(routes.map((r) => r.source))].sort(),
    };
  });
  const notes = [
    'Paste it into the header section of the cluster configuration file (before the first --- document, next to sshPrivateKeyPath), then run bmctl create cluster, or bmctl update cluster for an existing admin, hybrid or standalone cluster (user clusters: nodeConfig.registryMirrors in the Cluster spec).',
    plan.fallback
      ? 'containerd falls back to the source registries when the mirror fails; leave gcrKeyPath and privateRegistryConfigPath out, and the hosts out of the proxy allow-list, to forbid that.'
      : '--no-fallback: bmctl has no setting that forbids the source registries; leave gcrKeyPath and privateRegistryConfigPath out and keep the hosts below off the nodes\' proxy allow-list.',
  ];
  if (credentialPath) notes.push(`${BMCTL_CREDENTIALS} (mode 0600) holds the mirror's credential; keep it on the admin workstation.`);
  files.unshift({ path: BMCTL_BLOCK, content: `${header(ctx, BMCTL_BLOCK, notes)}${yamlDocument({ registryMirrors: mirrors })}`, mode: PUBLIC_MODE, kind: 'config' });
  return files;
}
