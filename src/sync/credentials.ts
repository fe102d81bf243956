/**
 * Credentials by reference, as the native sync file names them: two environment variables, a file (`user:password`
 * or a token), a Docker config file, or a credential helper; and skopeo's inline `credentials`. Each is read when the
 * registry first asks (a 401), so a cron run picks up a rotated secret; a refused one is an AUTH error naming where
 * it came from, never the secret.
 */
import { readFile } from 'node:fs/promises';
import { helperGet } from '../auth/cred-helper.js';
import { createDockerConfigSource, helperServerUrl } from '../auth/docker-config.js';
import { registerCredentialSecrets } from '../auth/secrets.js';
import type { Credential, CredentialResolver, ResolvedCredential } from '../auth/types.js';
import { MirrorError } from '../errors/index.js';
import type { EventSink } from '../events/index.js';
import type { CredentialRef } from './config/model.js';

/** MAX_SECRET_FILE is the most bytes read from a credential file. */
export const MAX_SECRET_FILE = 64 * 1024;

/** describeRef names where a credential comes from, for messages (never the secret). */
export function describeRef(ref: CredentialRef): string {
  switch (ref.kind) {
    case 'env':
      return `environment ${ref.username}/${ref.password}`;
    case 'file':
      return `file ${ref.path}`;
    case 'docker-config':
      return `Docker config ${ref.path}`;
    case 'helper':
      return `docker-credential-${ref.name}`;
    case 'inline':
      return 'credentials in the sync file';
  }
}

/** readSecretFile reads `user:password` (a basic credential) or a token (sent as a bearer token) from a file. */
async function readSecretFile(path: string): Promise<Credential> {
  let text: string;
  try {
    const bytes = await readFile(path);
    if (bytes.byteLength > MAX_SECRET_FILE) throw new MirrorError('AUTH', `credential file ${path} is larger than ${MAX_SECRET_FILE} bytes`, { file: path, phase: 'auth' });
    text = bytes.toString('utf8').trim();
  } catch (e) {
    if (e instanceof MirrorError) throw e;
    throw new MirrorError('AUTH', `cannot read the credential file ${path}: ${(e as NodeJS.ErrnoException).code ?? 'unreadable'}`, { file: path, phase: 'auth' });
  }
  if (text === '') throw new MirrorError('AUTH', `credential file ${path} is empty`, { file: path, phase: 'auth' });
  const colon = text.indexOf(':');
  if (colon > 0) return { kind: 'basic', username: text.slice(0, colon), password: text.slice(colon + 1) };
  return { kind: 'registry-token', token: text };
}

/** lookup finds the credential a reference names for a host; undefined when the place has none for it. */
async function lookup(ref: CredentialRef, host: string, env: NodeJS.ProcessEnv, events: EventSink, signal?: AbortSignal): Promise<Credential | undefined> {
  switch (ref.kind) {
    case 'inline':
      return { kind: 'basic', username: ref.username, password: ref.password };
    case 'env': {
      const username = env[ref.username];
      const password = env[ref.password];
      const missing = [username === undefined ? ref.username : '', password === undefined ? ref.password : ''].filter(Boolean);
      if (missing.length > 0) throw new MirrorError('AUTH', `the credentials for ${host} come from ${missing.join(' and ')}, which ${missing.length > 1 ? 'are' : 'is'} not set`, { phase: 'auth' });
      return { kind: 'basic', username: username!, password: password! };
    }
    case 'file':
      return readSecretFile(ref.path);
    case 'docker-config': {
      const source = createDockerConfigSource({ path: ref.path, env, events });
      return (await source.get(host, signal))?.credential;
    }
    case 'helper':
      return helperGet(ref.name, helperServerUrl(host), { env, signal, configuredIn: 'the sync file' });
  }
}

/** referenceResolver gives a credential resolver that answers every host from one reference. */
export function referenceResolver(ref: CredentialRef, options: { env?: NodeJS.ProcessEnv | undefined; events: EventSink }): CredentialResolver {
  const env = options.env ?? process.env;
  const source = describeRef(ref);
  const cache = new Map<string, Promise<ResolvedCredential>>();
  return {
    resolve(host, resolveOptions = {}) {
      if (resolveOptions.retry) {
        return Promise.reject(new MirrorError('AUTH', `the credentials for ${host} from ${source} were refused`, { phase: 'auth', hint: `check ${source}` }));
      }
      let p = cache.get(host);
      if (p === undefined) {
        p = lookup(ref, host, env, options.events, resolveOptions.signal).then((credential) => {
          if (credential === undefined) throw new MirrorError('AUTH', `${source} has no credentials for ${host}`, { phase: 'auth' });
          // Masked from here on in every message, log line and report, as the credentials of the flags and the chain are.
          registerCredentialSecrets(credential);
          return { credential, source };
        });
        cache.set(host, p);
      }
      return p;
    },
  };
}
