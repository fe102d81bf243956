/**
 * OpenShift: an ImageDigestMirrorSet and an ImageTagMirrorSet (config.openshift.io/v1), one entry per source
 * registry with its mirrors as `HOST:PORT/NS` (the source prefix is replaced by it, as in registries.conf, which
 * the Machine Config Operator writes from these); `mirrorSourcePolicy: NeverContactSource` with `--no-fallback`.
 * `--legacy-icsp` writes the older ImageContentSourcePolicy (operator.openshift.io/v1alpha1), which mirrors digest
 * pulls only and cannot forbid the source. A private CA becomes a ConfigMap for `image.config.openshift.io/cluster`
 * `additionalTrustedCA` (the key is the host with `..` for the port's `:`).
 */
import { MirrorError } from '../errors/index.js';
import { type GenerateContext, type GeneratedFile, header, PUBLIC_MODE } from './files.js';
import { endpointsOf, mirrorLocation, routesBySource } from './model.js';
import { yamlDocument, type YamlMap } from './text.js';

/** DEFAULT_OPENSHIFT_NAME is the objects' name without `--name`. */
export const DEFAULT_OPENSHIFT_NAME = 'mirror';

/**
 * IMAGE_MIRROR_PATTERN is the schema's pattern for a mirror (and a non-wildcard source): `host[:port][/path]`, a
 * DNS name or IPv4 address, lower-case path components (openshift/api config/v1 ImageMirror).
 */
export const IMAGE_MIRROR_PATTERN =
  /^((?:[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9])(?:(?:\.(?:[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9]))+)?(?::[0-9]+)?)(?:(?:\/[a-z0-9]+(?:(?:(?:[._]|__|[-]*)[a-z0-9]+)+)?)+)?$/;

/** caKey writes a host as image.config.openshift.io wants it as a ConfigMap key (`host..port`). */
export function caKey(host: string): string {
  return host.replace(/:(\d+)$/, '..$1');
}

/** checked refuses a location the schema would reject (an IPv6 literal, for one), naming it. */
function checked(location: string, what: string): string {
  if (!IMAGE_MIRROR_PATTERN.test(location)) {
    throw new MirrorError('BAD_INPUT', `${what} ${location} cannot be written in an OpenShift mirror set (host[:port][/path] with a DNS name or IPv4 address)`);
  }
  return location;
}

/** generateOpenshift writes the mirror sets (or the ICSP) and the CA ConfigMap. */
export function generateOpenshift(ctx: GenerateContext): GeneratedFile[] {
  const { plan } = ctx;
  const name = ctx.name ?? DEFAULT_OPENSHIFT_NAME;
  const entries = routesBySource(plan).map(([source, routes]) => ({
    source: checked(source, 'source registry'),
    mirrors: [...new Set(routes.map((r) => checked(mirrorLocation(r), 'mirror')))],
  }));
  const insecure = endpointsOf(plan).filter((e) => e.scheme === 'http' || plan.tls.insecureSkipVerify).map((e) => e.host);
  const common = [
    'Install: oc apply -f on this file; the Machine Config Operator writes it into /etc/containers/registries.conf on every node and rolls the nodes.',
    'Credentials for the mirror go into the global pull secret (openshift-config/pull-secret; see mirror config pull-secret).',
  ];
  if (insecure.length > 0) {
    common.push(`The mirror ${insecure.join(', ')} is plain http or unverified: add it to spec.registrySources.insecureRegistries of image.config.openshift.io/cluster.`);
  }
  const files: GeneratedFile[] = [];
  const add = (path: string, notes: string[], doc: YamlMap): void => {
    files.push({ path, content: `${header(ctx, path, [...notes, ...common])}${yamlDocument(doc)}`, mode: PUBLIC_MODE, kind: 'config' });
  };
  const policy = plan.fallback ? undefined : 'NeverContactSource';
  if (ctx.legacyIcsp) {
    if (!plan.fallback) {
      ctx.events({ type: 'warning', message: 'an ImageContentSourcePolicy cannot forbid the source registry; drop --legacy-icsp for ImageDigestMirrorSet with NeverContactSource (OpenShift 4.13 and later)' });
    }
    add('imagecontentsourcepolicy.yaml', ['ImageContentSourcePolicy (OpenShift before 4.13): only pulls by digest use the mirrors.'], {
      apiVersion: 'operator.openshift.io/v1alpha1',
      kind: 'ImageContentSourcePolicy',
      metadata: { name },
      spec: { repositoryDigestMirrors: entries.map((e) => ({ mirrors: e.mirrors, source: e.source })) },
    });
  } else {
    const fallbackNote = plan.fallback
      ? 'The source registry is tried when every mirror fails (--no-fallback sets NeverContactSource).'
      : 'mirrorSourcePolicy NeverContactSource: the source registry is never contacted.';
    add('imagedigestmirrorset.yaml', [`Pulls by digest use the mirrors. ${fallbackNote}`], {
      apiVersion: 'config.openshift.io/v1',
      kind: 'ImageDigestMirrorSet',
      metadata: { name },
      spec: { imageDigestMirrors: entries.map((e) => ({ mirrors: e.mirrors, source: e.source, mirrorSourcePolicy: policy })) },
    });
    add('imagetagmirrorset.yaml', [`Pulls by tag use the mirrors. ${fallbackNote}`], {
      apiVersion: 'config.openshift.io/v1',
      kind: 'ImageTagMirrorSet',
      metadata: { name },
      spec: { imageTagMirrors: entries.map((e) => ({ mirrors: e.mirrors, source: e.source, mirrorSourcePolicy: policy })) },
    });
  }
  const ca = plan.tls.ca;
  const https = endpointsOf(plan).filter((e) => e.scheme === 'https');
  if (ca && https.length > 0) {
    const data: Record<string, string> = {};
    const pem = ca.content.toString('utf8');
    for (const e of https) data[caKey(e.host)] = pem.endsWith('\n') ? pem : `${pem}\n`;
    const cmName = `${name}-registry-ca`;
    const path = 'registry-ca-configmap.yaml';
    files.push({
      path,
      content:
        header(ctx, path, [
          `The mirror's CA (${ca.path}), for the cluster to trust: oc apply -f on this file, then`,
          `  oc patch image.config.openshift.io/cluster --type merge -p '{"spec":{"additionalTrustedCA":{"name":"${cmName}"}}}'`,
        ]) + yamlDocument({ apiVersion: 'v1', kind: 'ConfigMap', metadata: { name: cmName, namespace: 'openshift-config' }, data }),
      mode: PUBLIC_MODE,
      kind: 'config',
    });
  }
  return files;
}
