/**
 * Kubernetes (and Rancher, OpenShift) pull credentials: a `kubernetes.io/dockerconfigjson` Secret whose
 * `.dockerconfigjson` is `{"auths": {"HOST:PORT": {"auth", "password", "username"}}}` for each mirror host, as
 * `kubectl create secret docker-registry` writes it. Pods name it in `imagePullSecrets` (or their service account
 * does). The file holds the credential: it is written only under `--output`, mode 0600, never printed.
 */
import { MirrorError } from '../errors/index.js';
import { dockerConfigJson } from './dockerconfig.js';
import { type GenerateContext, type GeneratedFile, header, SECRET_MODE } from './files.js';
import { endpointsOf } from './model.js';
import { yamlDocument } from './text.js';

/** DEFAULT_SECRET_NAME is the Secret's name without `--name`. */
export const DEFAULT_SECRET_NAME = 'mirror-pull-secret';

/** PULL_SECRET_FILE is the file written under `--output`. */
export const PULL_SECRET_FILE = 'pull-secret.yaml';

/** generatePullSecret writes the Secret manifest. */
export function generatePullSecret(ctx: GenerateContext): GeneratedFile[] {
  const hosts = endpointsOf(ctx.plan).map((e) => e.host);
  const missing = hosts.filter((h) => !ctx.credentials.has(h));
  if (missing.length > 0) {
    throw new MirrorError('AUTH', `no credentials for ${missing.join(', ')}: a pull secret needs a username and password`, {
      phase: 'auth',
      hint: 'give them with --username and --password-stdin, mirror login, or --docker-config FILE (not --need-credential=false)',
    });
  }
  const json = dockerConfigJson(ctx.credentials, { basicOnly: true });
  const name = ctx.name ?? DEFAULT_SECRET_NAME;
  const ns = ctx.namespace;
  const notes = [
    `Credentials for ${hosts.join(', ')}: keep this file mode 0600. Install: kubectl apply -f ${PULL_SECRET_FILE}${ns ? '' : ' -n NAMESPACE'} (the pods' namespace), then name it in the pods' imagePullSecrets, or for every pod of the namespace:`,
    `  kubectl patch serviceaccount default${ns ? ` -n ${ns}` : ''} -p '{"imagePullSecrets":[{"name":"${name}"}]}'`,
  ];
  const doc = {
    apiVersion: 'v1',
    kind: 'Secret',
    metadata: { name, namespace: ns },
    type: 'kubernetes.io/dockerconfigjson',
    data: { '.dockerconfigjson': Buffer.from(json, 'utf8').toString('base64') },
  };
  return [{ path: PULL_SECRET_FILE, content: `${header(ctx, PULL_SECRET_FILE, notes)}${yamlDocument(doc)}`, mode: SECRET_MODE, kind: 'config' }];
}
