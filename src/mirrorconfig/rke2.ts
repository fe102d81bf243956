/**
 * RKE2 and K3s: `registries.yaml`, with `mirrors` (per source registry: the mirror's endpoint `https://HOST:PORT`
 * and, when the images sit under a namespace, the `rewrite` `"^(.*)$": "NS/$1"`, since an endpoint there cannot
 * carry a path) and `configs` (per mirror host: `auth` from the credential chain, only into a file written with
 * `--output`, mode 0600; and `tls`). The rewrite applies to
 * the repository as containerd gets it (`library/busybox` for `busybox`). RKE2 and K3s always fall back to the
 * source ("default endpoint") unless the node runs with `disable-default-registry-endpoint: true`: with
 * `--no-fallback` that setting is written as a `config.yaml.d` drop-in.
 */
import type { Credential } from '../auth/types.js';
import { MirrorError } from '../errors/index.js';
import { type GenerateContext, type GeneratedFile, header, PUBLIC_MODE, SECRET_MODE } from './files.js';
import { endpointsOf, routesBySource } from './model.js';
import { yamlDocument, type YamlMap } from './text.js';

/** REWRITE_ALL is the rewrite rule's pattern: the whole repository. */
export const REWRITE_ALL = '^(.*)$';

/** rancherDir is where the distribution keeps its configuration. */
function rancherDir(target: string): string {
  return target === 'k3s' ? '/etc/rancher/k3s' : '/etc/rancher/rke2';
}

/** authOf writes a credential as registries.yaml takes it, or undefined (with a warning) when it cannot. */
function authOf(ctx: GenerateContext, host: string, c: Credential): YamlMap | undefined {
  if (c.kind === 'basic') return { username: c.username, password: c.password };
  if (c.kind === 'identity-token') return { identity_token: c.token };
  if (c.kind === 'registry-token') {
    ctx.events({ type: 'warning', message: `the credential for ${host} is a bearer token, which registries.yaml cannot hold; no auth written for it` });
  }
  return undefined;
}

/** generateRke2 writes registries.yaml (and, with `--no-fallback`, the config.yaml.d drop-in). */
export function generateRke2(ctx: GenerateContext): GeneratedFile[] {
  const { plan } = ctx;
  const dir = rancherDir(ctx.target);
  const product = ctx.target === 'k3s' ? 'k3s' : 'rke2';
  const mirrors: Record<string, YamlMap> = {};
  for (const [source, routes] of routesBySource(plan)) {
    const prefixes = [...new Set(routes.map((r) => r.prefix))];
    if (prefixes.length > 1) {
      throw new MirrorError('BAD_INPUT', `${source} is mirrored under ${prefixes.map((p) => p || '(the root)').join(' and ')}; registries.yaml has one rewrite per registry`, {
        hint: 'give the reports of one mirror layout, or write one file per report',
      });
    }
    const prefix = prefixes[0] ?? '';
    mirrors[source] = {
      endpoint: routes.map((r) => `${r.endpoint.scheme}://${r.endpoint.host}`),
      rewrite: prefix === '' ? undefined : { [REWRITE_ALL]: `${prefix}/$1` },
    };
  }
  const configs: Record<string, YamlMap> = {};
  let secret = false;
  const printed = ctx.layout === 'stream';
  for (const e of endpointsOf(plan)) {
    const c = ctx.credentials.get(e.host);
    let auth = c ? authOf(ctx, e.host, c) : undefined;
    if (auth && printed) {
      // Credentials go only into a file of mode 0600, never to standard output.
      ctx.events({ type: 'warning', message: `configs.auth for ${e.host} is left out on standard output: write the file with --output DIR (mode 0600) to have it` });
      auth = undefined;
    }
    if (auth) secret = true;
    const t = plan.tls;
    const tls: YamlMap | undefined =
      e.scheme === 'https' && (t.ca || t.cert || t.insecureSkipVerify)
        ? {
            ca_file: t.ca?.path,
            cert_file: t.cert && t.key ? t.cert.path : undefined,
            key_file: t.cert && t.key ? t.key.path : undefined,
            insecure_skip_verify: t.insecureSkipVerify ? true : undefined,
          }
        : undefined;
    if (auth || tls) configs[e.host] = { auth, tls };
  }
  const doc: YamlMap = { mirrors, configs: Object.keys(configs).length > 0 ? configs : undefined };
  const notes = [
    plan.fallback
      ? `Pulls go to the mirror first and then to the source registry (${product}'s default endpoint); --no-fallback writes config.yaml.d/50-mirror.yaml, which turns that off.`
      : `With config.yaml.d/50-mirror.yaml (disable-default-registry-endpoint), pulls go only to the mirror.`,
    `Install: copy it to ${dir}/registries.yaml on every node (servers and agents), then restart ${product === 'k3s' ? 'k3s (or k3s-agent)' : 'rke2-server or rke2-agent'}.`,
  ];
  if (plan.tls.ca || plan.tls.cert) notes.push('The certificate paths below must exist on every node.');
  if (secret) notes.push('It holds registry credentials: keep it mode 0600, owned by root.');
  const path = 'registries.yaml';
  const files: GeneratedFile[] = [{ path, content: `${header(ctx, path, notes)}${yamlDocument(doc)}`, mode: secret ? SECRET_MODE : PUBLIC_MODE, kind: 'config' }];
  if (!plan.fallback) {
    const drop = 'config.yaml.d/50-mirror.yaml';
    const dropNotes = [
      `Pull only from the mirrors of registries.yaml, never from the source registries (${product} v1.26.13, v1.27.10, v1.28.6, v1.29.1 and later).`,
      `Install: copy it to ${dir}/${drop}, then restart ${product === 'k3s' ? 'k3s' : 'rke2-server or rke2-agent'}.`,
    ];
    files.push({ path: drop, content: `${header(ctx, drop, dropNotes)}${yamlDocument({ 'disable-default-registry-endpoint': true })}`, mode: PUBLIC_MODE, kind: 'config' });
  }
  return files;
}
