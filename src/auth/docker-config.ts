/**
 * Docker's `config.json` (and containers' `auth.json`, the same shape): where it lives, what its `auths` keys and
 * entries mean, which credential helper serves a host, and writing an entry back (mode 0600, atomically, under a lock).
 */
import { readFile } from 'node:fs/promises';
import { homedir } from 'node:os';
import { join } from 'node:path';
import { MirrorError } from '../errors/index.js';
import type { EventSink } from '../events/index.js';
import { noEvents } from '../events/index.js';
import { type CredentialHelperOptions, TOKEN_USERNAME, helperGet } from './cred-helper.js';
import { type LockedFileOptions, updateLockedFile } from '../files/locked-file.js';
import type { Credential, CredentialSource, ResolvedCredential } from './types.js';

/** DOCKER_HUB_HOST is the one name Docker Hub's aliases normalize to. */
export const DOCKER_HUB_HOST = 'docker.io';

/** DOCKER_HUB_CONFIG_KEY is the `auths` key (and helper server URL) Docker uses for Docker Hub. */
export const DOCKER_HUB_CONFIG_KEY = 'https://index.docker.io/v1/';

/** DOCKER_HUB_ALIASES are the names Docker Hub's registry goes by. */
export const DOCKER_HUB_ALIASES: ReadonlySet<string> = new Set(['docker.io', 'index.docker.io', 'registry-1.docker.io', 'registry.hub.docker.com']);

/** DockerConfigEntry is one value of `auths`. Unknown fields are kept when the file is rewritten. */
export interface DockerConfigEntry {
  /** base64 of `username:password`. */
  auth?: string;
  username?: string;
  password?: string;
  /** A refresh token for the OAuth2 flow. */
  identitytoken?: string;
  /** A bearer token sent as is. */
  registrytoken?: string;
  [field: string]: unknown;
}

/** DockerConfig is a parsed config file. */
export interface DockerConfig {
  /** The file it was read from. */
  path: string;
  /** `auths`, keys as written. */
  auths: Record<string, DockerConfigEntry>;
  /** The default credential helper (`credsStore`). */
  credsStore?: string | undefined;
  /** Per-host credential helpers (`credHelpers`), keys as written. */
  credHelpers: Record<string, string>;
}

/** DockerConfigLocationOptions say where to look for config files. */
export interface DockerConfigLocationOptions {
  /** An explicit file (`--docker-config`, `--authfile`): the only one read, and it must exist. */
  path?: string | undefined;
  /** Environment (`REGISTRY_AUTH_FILE`, `DOCKER_CONFIG`, `XDG_RUNTIME_DIR`, `XDG_CONFIG_HOME`). Default: `process.env`. */
  env?: NodeJS.ProcessEnv | undefined;
  /** The home directory. Default: `os.homedir()`. */
  homeDir?: string | undefined;
}

/** DockerConfigCandidate is a config file that may hold credentials. */
export interface DockerConfigCandidate {
  path: string;
  /** True when the user named it (flag or `REGISTRY_AUTH_FILE`): a missing or bad file is then an error. */
  explicit: boolean;
}

/**
 * normalizeRegistryHost turns an `auths`/`credHelpers` key or a host into the `host[:port]` it stands for:
 * scheme and path dropped, lower case, Docker Hub's aliases (`https://index.docker.io/v1/`) as `docker.io`.
 */
export function normalizeRegistryHost(keyOrHost: string): string {
  let s = keyOrHost.trim();
  s = s.replace(/^[a-z][a-z0-9+.-]*:\/\//i, '');
  const slash = s.indexOf('/');
  if (slash >= 0) s = s.slice(0, slash);
  s = s.toLowerCase().replace(/\.$/, '');
  return DOCKER_HUB_ALIASES.has(s) ? DOCKER_HUB_HOST : s;
}

/** keyPath gives the repository path part of an `auths` key (`quay.io/org` → `org`), ignoring `/v1/` and `/v2/`. */
function keyPath(key: string): string {
  const s = key.trim().replace(/^[a-z][a-z0-9+.-]*:\/\//i, '');
  const slash = s.indexOf('/');
  if (slash < 0) return '';
  const path = s.slice(slash + 1).replace(/\/+$/, '');
  return /^v[12]$/.test(path) ? '' : path;
}

/** helperServerUrl is the server URL Docker hands a credential helper for a host. */
export function helperServerUrl(host: string): string {
  const h = normalizeRegistryHost(host);
  return h === DOCKER_HUB_HOST ? DOCKER_HUB_CONFIG_KEY : h;
}

/** configKeyFor is the `auths` key written for a host (Docker's form, so the docker CLI reads it too). */
export function configKeyFor(host: string): string {
  return helperServerUrl(host);
}

/**
 * dockerConfigCandidates lists the config files to read, first match wins: the explicit path alone; else
 * `REGISTRY_AUTH_FILE` alone; else `$DOCKER_CONFIG/config.json` (or `~/.docker/config.json`), then containers'
 * `$XDG_RUNTIME_DIR/containers/auth.json` and `$XDG_CONFIG_HOME/containers/auth.json`.
 */
export function dockerConfigCandidates(options: DockerConfigLocationOptions = {}): DockerConfigCandidate[] {
  if (options.path) return [{ path: options.path, explicit: true }];
  const env = options.env ?? process.env;
  const authFile = env['REGISTRY_AUTH_FILE'];
  if (authFile) return [{ path: authFile, explicit: true }];
  const home = options.homeDir ?? homedir();
  const list: DockerConfigCandidate[] = [{ path: dockerConfigWritePath(options), explicit: false }];
  const runtime = env['XDG_RUNTIME_DIR'];
  if (runtime) list.push({ path: join(runtime, 'containers', 'auth.json'), explicit: false });
  list.push({ path: join(env['XDG_CONFIG_HOME'] || join(home, '.config'), 'containers', 'auth.json'), explicit: false });
  return list;
}

/** dockerConfigWritePath is the file `mirror login` writes: explicit path, `REGISTRY_AUTH_FILE`, `$DOCKER_CONFIG/config.json`, `~/.docker/config.json`. */
export function dockerConfigWritePath(options: DockerConfigLocationOptions = {}): string {
  if (options.path) return options.path;
  const env = options.env ?? process.env;
  if (env['REGISTRY_AUTH_FILE']) return env['REGISTRY_AUTH_FILE'];
  if (env['DOCKER_CONFIG']) return join(env['DOCKER_CONFIG'], 'config.json');
  return join(options.homeDir ?? homedir(), '.docker', 'config.json');
}

function badFile(path: string, why: string, cause?: unknown): MirrorError {
  return new MirrorError('BAD_INPUT', `cannot use Docker config file ${path}: ${why}`, { phase: 'auth', file: path, cause });
}

async function readJsonObject(path: string): Promise<Record<string, unknown> | undefined> {
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    if (code === 'ENOENT' || code === 'ENOTDIR') return undefined;
    throw badFile(path, code === 'EACCES' ? 'permission denied' : 'unreadable', e);
  }
  return parseJsonObject(text, path);
}

function parseJsonObject(text: string, path: string): Record<string, unknown> {
  if (text.trim() === '') return {};
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch {
    // The parser's message may quote file content (a secret), so it is not repeated.
    throw badFile(path, 'not valid JSON');
  }
  if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) throw badFile(path, 'not a JSON object');
  return parsed as Record<string, unknown>;
}

/** readDockerConfig reads and checks a config file; undefined when it does not exist, BAD_INPUT when it is broken. */
export async function readDockerConfig(path: string): Promise<DockerConfig | undefined> {
  const raw = await readJsonObject(path);
  if (raw === undefined) return undefined;
  const auths: Record<string, DockerConfigEntry> = {};
  const rawAuths = raw['auths'];
  if (rawAuths !== undefined && rawAuths !== null) {
    if (typeof rawAuths !== 'object' || Array.isArray(rawAuths)) throw badFile(path, '"auths" is not an object');
    for (const [key, value] of Object.entries(rawAuths as Record<string, unknown>)) {
      if (typeof value === 'object' && value !== null && !Array.isArray(value)) auths[key] = value as DockerConfigEntry;
    }
  }
  const credHelpers: Record<string, string> = {};
  const rawHelpers = raw['credHelpers'];
  if (typeof rawHelpers === 'object' && rawHelpers !== null && !Array.isArray(rawHelpers)) {
    for (const [key, value] of Object.entries(rawHelpers as Record<string, unknown>)) {
      if (typeof value === 'string' && value !== '') credHelpers[key] = value;
    }
  }
  const credsStore = typeof raw['credsStore'] === 'string' && raw['credsStore'] !== '' ? raw['credsStore'] : undefined;
  return { path, auths, credsStore, credHelpers };
}

/** AuthEntryMatch is the `auths` entry found for a host. */
export interface AuthEntryMatch {
  /** The key as written in the file. */
  key: string;
  entry: DockerConfigEntry;
}

/**
 * findAuthEntry finds the `auths` entry for a host: keys compare after {@link normalizeRegistryHost} (`host:port`
 * exactly); a key with no repository path wins over one scoped to a repository (`quay.io/org`), which is used
 * only when nothing else matches (the first in the file).
 */
export function findAuthEntry(config: DockerConfig, host: string): AuthEntryMatch | undefined {
  const want = normalizeRegistryHost(host);
  let scoped: AuthEntryMatch | undefined;
  for (const [key, entry] of Object.entries(config.auths)) {
    if (normalizeRegistryHost(key) !== want) continue;
    if (keyPath(key) === '') {
      if (credentialFromEntry(entry, config.path, key) !== undefined) return { key, entry };
    } else if (scoped === undefined) {
      scoped = { key, entry };
    }
  }
  return scoped;
}

/** HelperMatch names the helper that serves a host. */
export interface HelperMatch {
  /** Helper name (`pass`, `ecr-login`). */
  helper: string;
  /** Which setting chose it. */
  via: 'credHelpers' | 'credsStore';
}

/** helperFor gives the helper for a host: its `credHelpers` entry, else `credsStore`, else undefined. */
export function helperFor(config: DockerConfig, host: string): HelperMatch | undefined {
  const want = normalizeRegistryHost(host);
  for (const [key, helper] of Object.entries(config.credHelpers)) {
    if (normalizeRegistryHost(key) === want) return { helper, via: 'credHelpers' };
  }
  return config.credsStore ? { helper: config.credsStore, via: 'credsStore' } : undefined;
}

/**
 * credentialFromEntry reads the credential of an `auths` entry: `identitytoken` (username from `auth`/`username`),
 * `registrytoken`, `auth` (base64 `user:pass`), or `username` + `password`; undefined for an empty entry.
 * A broken `auth` is BAD_INPUT naming the file and key (never the value).
 */
export function credentialFromEntry(entry: DockerConfigEntry, file = 'config', key = ''): Credential | undefined {
  let username = typeof entry.username === 'string' ? entry.username : '';
  let password = typeof entry.password === 'string' ? entry.password : '';
  if (typeof entry.auth === 'string' && entry.auth !== '') {
    const decoded = Buffer.from(entry.auth, 'base64').toString('utf8');
    const colon = decoded.indexOf(':');
    if (colon < 0) {
      throw new MirrorError('BAD_INPUT', `cannot use Docker config file ${file}: the "auth" of "${key}" is not base64 of user:password`, {
        phase: 'auth',
        file,
      });
    }
    username = decoded.slice(0, colon);
    password = decoded.slice(colon + 1);
  }
  if (typeof entry.identitytoken === 'string' && entry.identitytoken !== '') {
    return {
      kind: 'identity-token',
      username: username && username !== TOKEN_USERNAME ? username : undefined,
      token: entry.identitytoken,
    };
  }
  if (typeof entry.registrytoken === 'string' && entry.registrytoken !== '') return { kind: 'registry-token', token: entry.registrytoken };
  if (username === '' && password === '') return undefined;
  if (password === '') return undefined;
  return { kind: 'basic', username, password };
}

/** DockerConfigSourceOptions tune {@link createDockerConfigSource}. */
export interface DockerConfigSourceOptions extends DockerConfigLocationOptions {
  /** Options for credential helpers (timeout, env for `PATH`). `env` defaults to the location `env`. */
  helper?: Omit<CredentialHelperOptions, 'signal' | 'configuredIn'>;
  /** Receives warnings (a broken default config file, a failing helper). Default: drops them. */
  events?: EventSink;
}

/** DockerConfigSource is the config-file credential source; it remembers the problems it worked around. */
export interface DockerConfigSource extends CredentialSource {
  /** Problems met while looking up a host (helper not found, file unreadable), safe to print. */
  problems(host: string): string[];
}

/**
 * createDockerConfigSource reads credentials from Docker/containers config files: for each candidate file, the
 * host's helper (`credHelpers` wins over `credsStore`), then its `auths` entry. A failing helper or a broken default
 * file is a warning (and the lookup goes on); a broken explicit file is an error.
 */
export function createDockerConfigSource(options: DockerConfigSourceOptions = {}): DockerConfigSource {
  const events = options.events ?? noEvents;
  const problems = new Map<string, string[]>();
  const note = (host: string, message: string): void => {
    const list = problems.get(host) ?? [];
    list.push(message);
    problems.set(host, list);
    events({ type: 'warning', message });
  };
  return {
    name: 'docker config',
    problems: (host) => [...(problems.get(normalizeRegistryHost(host)) ?? [])],
    async get(host: string, signal?: AbortSignal): Promise<ResolvedCredential | undefined> {
      const want = normalizeRegistryHost(host);
      for (const candidate of dockerConfigCandidates(options)) {
        let config: DockerConfig | undefined;
        try {
          config = await readDockerConfig(candidate.path);
        } catch (e) {
          if (candidate.explicit) throw e;
          note(want, e instanceof MirrorError ? e.message : `cannot read ${candidate.path}`);
          continue;
        }
        if (config === undefined) {
          if (candidate.explicit && options.path) {
            throw new MirrorError('BAD_INPUT', `Docker config file ${candidate.path} does not exist`, { phase: 'auth', file: candidate.path });
          }
          continue;
        }
        const found = await lookupInConfig(config, want, {
          ...options.helper,
          env: options.helper?.env ?? options.env,
          signal,
          onHelperProblem: (message) => note(want, message),
        });
        if (found) return found;
      }
      return undefined;
    },
  };
}

/** LookupOptions tune {@link lookupInConfig}. */
export interface LookupOptions extends Omit<CredentialHelperOptions, 'configuredIn'> {
  /** Called with a message when a helper fails; the lookup then goes on with `auths`. Default: the error is thrown. */
  onHelperProblem?: (message: string) => void;
}

/** lookupInConfig finds a host's credential in one parsed config: its helper first, then `auths`. */
export async function lookupInConfig(config: DockerConfig, host: string, options: LookupOptions = {}): Promise<ResolvedCredential | undefined> {
  const helper = helperFor(config, host);
  if (helper) {
    const configuredIn = `${helper.via} in ${config.path}`;
    try {
      const credential = await helperGet(helper.helper, helperServerUrl(host), { ...options, configuredIn });
      if (credential) return { credential, source: `docker-credential-${helper.helper} (${configuredIn})` };
    } catch (e) {
      if (!options.onHelperProblem || (e instanceof MirrorError && e.code === 'INTERRUPTED')) throw e;
      options.onHelperProblem(e instanceof MirrorError ? e.describe() : String(e));
    }
  }
  const match = findAuthEntry(config, host);
  if (!match) return undefined;
  const credential = credentialFromEntry(match.entry, config.path, match.key);
  if (!credential) return undefined;
  return { credential, source: `${config.path} auths` };
}

/**
 * entryFor builds the `auths` entry Docker writes for a credential: `auth` = base64 `user:pass`; an identity token
 * as `identitytoken` with `auth` = base64 `user:`.
 */
export function entryFor(credential: Credential): DockerConfigEntry {
  switch (credential.kind) {
    case 'basic':
      return { auth: Buffer.from(`${credential.username}:${credential.password}`, 'utf8').toString('base64') };
    case 'identity-token':
      return { auth: Buffer.from(`${credential.username ?? ''}:`, 'utf8').toString('base64'), identitytoken: credential.token };
    case 'registry-token':
      return { registrytoken: credential.token };
    case 'anonymous':
      return {};
  }
}

/** storeDockerConfigAuth writes the `auths` entry for a host (replacing any key for the same host), keeping every other field. */
export async function storeDockerConfigAuth(path: string, host: string, credential: Credential, options: LockedFileOptions = {}): Promise<void> {
  await storeDockerConfigEntry(path, host, entryFor(credential), options);
}

/**
 * storeDockerConfigEntry sets the `auths` entry of a host to `entry` (replacing any key for the same host, and so
 * any secret it held), keeping every other field. `{}` is what Docker leaves there when a helper keeps the secret.
 */
export async function storeDockerConfigEntry(path: string, host: string, entry: DockerConfigEntry, options: LockedFileOptions = {}): Promise<void> {
  await updateConfigFile(
    path,
    (raw) => {
      const auths = authsOf(raw, path);
      removeHostKeys(auths, host);
      auths[configKeyFor(host)] = entry;
      raw['auths'] = auths;
      return true;
    },
    options,
  );
}

/** eraseDockerConfigAuth removes the `auths` entries for a host (keys scoped to a repository stay); false when there were none. */
export async function eraseDockerConfigAuth(path: string, host: string, options: LockedFileOptions = {}): Promise<boolean> {
  let removed = false;
  await updateConfigFile(
    path,
    (raw) => {
      removed = false;
      if (raw['auths'] === undefined) return false;
      const auths = authsOf(raw, path);
      removed = removeHostKeys(auths, host);
      return removed;
    },
    options,
  );
  return removed;
}

function authsOf(raw: Record<string, unknown>, path: string): Record<string, unknown> {
  const auths = raw['auths'];
  if (auths === undefined || auths === null) return {};
  if (typeof auths !== 'object' || Array.isArray(auths)) throw badFile(path, '"auths" is not an object');
  return auths as Record<string, unknown>;
}

function removeHostKeys(auths: Record<string, unknown>, host: string): boolean {
  const want = normalizeRegistryHost(host);
  let removed = false;
  for (const key of Object.keys(auths)) {
    if (normalizeRegistryHost(key) === want && keyPath(key) === '') {
      delete auths[key];
      removed = true;
    }
  }
  return removed;
}

/**
 * updateConfigFile reads a config file (a missing one is `{}`), lets `change` edit it, and when it returns true
 * writes it back: under the file's lock, through a 0600 temporary file in the same directory renamed over it (see
 * {@link updateLockedFile}), so two logins at once never lose an entry and a killed one leaves no secret behind.
 * A symbolic link is followed, so the file it points to is replaced.
 */
async function updateConfigFile(path: string, change: (raw: Record<string, unknown>) => boolean, options: LockedFileOptions): Promise<void> {
  await updateLockedFile(
    path,
    (current) => {
      const raw = current === undefined ? {} : parseJsonObject(current, path);
      return change(raw) ? `${JSON.stringify(raw, null, '\t')}\n` : undefined;
    },
    options,
  );
}
