/**
 * Docker's `config.json` as pull credentials: what bmctl's `pullCredentialConfigPath` names and what a
 * `kubernetes.io/dockerconfigjson` Secret holds. Keys are sorted, so the same credentials give the same bytes.
 */
import type { Credential } from '../auth/types.js';
import { MirrorError } from '../errors/index.js';
import type { EventSink } from '../events/index.js';

/** DockerConfigOptions tune {@link dockerConfigJson}. */
export interface DockerConfigOptions {
  /** Indent with two spaces and end with a newline (a file), else one compact line (a Secret's data). Default: false. */
  pretty?: boolean | undefined;
  /**
   * Only username and password are usable (kubelet reads `username`, `password` and `auth` of a pull Secret): a
   * token is refused with an AUTH error naming the host. Default: false (tokens are written as Docker does).
   */
  basicOnly?: boolean | undefined;
  events?: EventSink | undefined;
}

/** authEntry writes one credential as a Docker config `auths` entry. */
function authEntry(host: string, c: Credential, options: DockerConfigOptions): Record<string, string> | undefined {
  if (c.kind === 'basic') {
    return { auth: Buffer.from(`${c.username}:${c.password}`, 'utf8').toString('base64'), password: c.password, username: c.username };
  }
  if (options.basicOnly && c.kind !== 'anonymous') {
    throw new MirrorError('AUTH', `the credential for ${host} is a token; a pull secret needs a username and password`, {
      phase: 'auth',
      hint: `give them with --username and --password-stdin`,
    });
  }
  if (c.kind === 'identity-token') {
    return { ...(c.username ? { auth: Buffer.from(`${c.username}:`, 'utf8').toString('base64') } : {}), identitytoken: c.token };
  }
  if (c.kind === 'registry-token') return { registrytoken: c.token };
  return undefined;
}

/** dockerConfigJson writes `{"auths": {HOST: {...}}}` for the given hosts (sorted). */
export function dockerConfigJson(credentials: ReadonlyMap<string, Credential>, options: DockerConfigOptions = {}): string {
  const auths: Record<string, Record<string, string>> = {};
  for (const host of [...credentials.keys()].sort()) {
    const entry = authEntry(host, credentials.get(host)!, options);
    if (entry) auths[host] = entry;
  }
  const doc = { auths };
  return options.pretty ? `${JSON.stringify(doc, null, 2)}\n` : JSON.stringify(doc);
}
