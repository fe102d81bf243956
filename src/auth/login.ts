/**
 * `mirror login` and `mirror logout` as library calls: check a credential against the registry, then keep it where
 * the user keeps credentials, and remove it again.
 *
 * Where `login` stores (`store: 'auto'`, the default), first match wins:
 * 1. the credential helper the Docker config file names for the host (`credHelpers`, else `credsStore`), through
 *    Docker's protocol (`docker-credential-NAME store`); the file gets only the empty entry Docker writes
 *    (`"host": {}`). A configured helper is the user's explicit choice, so it comes before the OS keychain, as
 *    `docker login` treats it;
 * 2. the OS keychain, when keytar loads and a secret service answers;
 * 3. the Docker config file itself (base64, mode 0600, with a warning).
 * `store: 'config'` is the config file as Docker uses it: its helper when one is configured, else the file (the
 * keychain is not touched). `store: 'keychain'` is the keychain only. When `auto` stores through a helper, an older
 * keychain entry for the host is removed, since pushes would find it before the helper's.
 */
import { MirrorError, errorMessage } from '../errors/index.js';
import { DEFAULT_HELPER_TIMEOUT_MS, helperCommand, helperErase, helperStore } from './cred-helper.js';
import {
  dockerConfigWritePath,
  eraseDockerConfigAuth,
  helperFor,
  helperServerUrl,
  normalizeRegistryHost,
  readDockerConfig,
  storeDockerConfigAuth,
  storeDockerConfigEntry,
} from './docker-config.js';
import { type Keychain, createKeychain } from './keychain.js';
import type { LockedFileOptions } from '../files/locked-file.js';
import { findAddressCredentials, USERINFO_REFUSED } from '../reference/destination.js';
import type { Credential } from './types.js';

/**
 * LoginStore says where `login` keeps the credential: `auto` (the configured helper, else the keychain, else the
 * config file), `config` (the config file: its helper when configured, else the file), or `keychain` only.
 */
export type LoginStore = 'auto' | 'keychain' | 'config';

/** LOGIN_STORE_HELP describes where `mirror login` stores, for `--help` and the README. */
export const LOGIN_STORE_HELP = [
  'WHERE THE CREDENTIAL GOES (--store auto; first match wins)',
  '  1. the credential helper config.json names for HOST (credHelpers,',
  '     else credsStore): docker-credential-NAME store; the file keeps',
  '     only "HOST": {}. A configured helper is your explicit choice, so',
  '     it comes before the OS keychain, as with docker login',
  '  2. the OS keychain, when a secret service answers',
  '  3. config.json itself: base64, not encrypted, 0600, with a warning',
  '  --store config: config.json as docker uses it (its helper if set),',
  '  never the keychain; --store keychain: the keychain only',
].join('\n');

/** LoginLocationOptions say where the config file and keychain are. */
export interface LoginLocationOptions {
  /** `--docker-config`/`--authfile`. Default: `REGISTRY_AUTH_FILE`, `$DOCKER_CONFIG/config.json`, `~/.docker/config.json`. */
  dockerConfigPath?: string | undefined;
  /** Environment (config location, `PATH` for helpers). Default: `process.env`. */
  env?: NodeJS.ProcessEnv | undefined;
  /** Home directory. Default: `os.homedir()`. */
  homeDir?: string | undefined;
  /** The keychain. Default: {@link createKeychain}. */
  keychain?: Keychain | undefined;
  /** Bound on one credential helper run, in ms. Default: 30000. */
  helperTimeoutMs?: number | undefined;
  /** The config file lock (wait, stale age). Default: see `src/files/locked-file.ts`. */
  lock?: LockedFileOptions | undefined;
}

/** LoginOptions tune {@link login}. */
export interface LoginOptions extends LoginLocationOptions {
  /** Registry `host[:port]`. */
  host: string;
  username: string;
  password: string;
  /** Where to keep it. Default: `auto`. */
  store?: LoginStore | undefined;
  /** Checks the credential against the registry (the registry client pings with it); throws when refused. */
  verify: (credential: Credential) => Promise<void>;
}

/** LoginResult says where the credential went. */
export interface LoginResult {
  /** The host as stored (Docker Hub's aliases as `docker.io`). */
  host: string;
  /** `helper`: a credential helper configured in the config file; `config`: the config file itself. */
  storedIn: 'keychain' | 'helper' | 'config';
  /** The config file written (`helper`: the one that names the helper, and got the empty entry). */
  path?: string | undefined;
  /** The helper program, when `storedIn` is `helper` (`docker-credential-pass`). */
  helper?: string | undefined;
  /** Set when the password was written to a file (base64 is not encryption). */
  warning?: string | undefined;
}

/** LogoutOptions tune {@link logout}. */
export interface LogoutOptions extends LoginLocationOptions {
  /** Registry `host[:port]`. */
  host: string;
}

/** LogoutResult says where a credential was removed from. */
export interface LogoutResult {
  host: string;
  /** `keychain`, `docker-credential-NAME`, or a config file path; empty when nothing was stored. */
  removedFrom: string[];
  /** Problems met (a helper that failed); the other places were still cleaned. */
  warnings: string[];
}

function hostOf(input: string, verb: 'login' | 'logout'): string {
  const credentials = findAddressCredentials(input);
  if (credentials) throw new MirrorError('USAGE', `invalid registry "${credentials.redacted}": ${USERINFO_REFUSED}`);
  const host = normalizeRegistryHost(input);
  if (host === '') throw new MirrorError('USAGE', `${verb} needs a registry host`);
  return host;
}

/** dropKeychainEntry removes a host's keychain entry (an older login's, which pushes would find first); never throws. */
async function dropKeychainEntry(keychain: Keychain, host: string): Promise<void> {
  try {
    if (await keychain.isAvailable()) await keychain.delete(host);
  } catch {
    // Best effort: the new credential is stored; an old keychain entry only shadows it.
  }
}

/**
 * login verifies a credential with `verify`, then stores it (see the module comment for where): through the
 * helper the config file names for the host, else in the OS keychain, else in the config file with a warning.
 * A helper that fails is an AUTH error (the secret is then stored nowhere: the user chose that helper);
 * `store: 'keychain'` without a keychain is an UNSUPPORTED error.
 */
export async function login(options: LoginOptions): Promise<LoginResult> {
  const host = hostOf(options.host, 'login');
  if (options.username === '') throw new MirrorError('USAGE', `login to ${host} needs a username`);
  const store = options.store ?? 'auto';
  const credential: Credential = { kind: 'basic', username: options.username, password: options.password };
  const path = dockerConfigWritePath({ path: options.dockerConfigPath, env: options.env, homeDir: options.homeDir });
  // Read before the check, so a broken config file is said before the registry is asked.
  const config = store === 'keychain' ? undefined : await readDockerConfig(path);
  await options.verify(credential);
  const keychain = (): Keychain => options.keychain ?? createKeychain();

  const helper = config ? helperFor(config, host) : undefined;
  if (helper) {
    const configuredIn = `${helper.via} in ${path}`;
    await helperStore(
      helper.helper,
      { serverUrl: helperServerUrl(host), username: options.username, secret: options.password },
      { env: options.env ?? process.env, timeoutMs: options.helperTimeoutMs ?? DEFAULT_HELPER_TIMEOUT_MS, configuredIn },
    );
    // What docker leaves in the file: the host with no secret (an older base64 entry for it is replaced).
    await storeDockerConfigEntry(path, host, {}, options.lock);
    // `auto` would have used the keychain: an older entry there, which pushes find first, would shadow this one.
    if (store === 'auto') await dropKeychainEntry(keychain(), host);
    return { host, storedIn: 'helper', path, helper: helperCommand(helper.helper) };
  }

  let keychainProblem: string | undefined;
  if (store !== 'config') {
    const kc = keychain();
    if (await kc.isAvailable()) {
      try {
        await kc.store(host, credential);
        return { host, storedIn: 'keychain' };
      } catch (e) {
        keychainProblem = errorMessage(e);
      }
    } else {
      keychainProblem = `the OS keychain is not available: ${kc.unavailableReason() ?? 'unknown reason'}`;
    }
    if (store === 'keychain') {
      throw new MirrorError('UNSUPPORTED', `cannot store the credential for ${host}: ${keychainProblem}`, {
        phase: 'login',
        hint: 'start a secret service (gnome-keyring, KeePassXC) or use the Docker config file',
      });
    }
  }
  await storeDockerConfigAuth(path, host, credential, options.lock);
  const why = keychainProblem ? ` (${keychainProblem})` : '';
  return {
    host,
    storedIn: 'config',
    path,
    warning: `the password for ${host} is stored base64-encoded, not encrypted, in ${path}${why}`,
  };
}

/**
 * logout removes the credential of a host from the OS keychain, from the Docker config file's `auths`, and from the
 * credential helper configured for it (`credHelpers`/`credsStore`, via `erase`).
 */
export async function logout(options: LogoutOptions): Promise<LogoutResult> {
  const host = hostOf(options.host, 'logout');
  const removedFrom: string[] = [];
  const warnings: string[] = [];
  const keychain = options.keychain ?? createKeychain();
  if (await keychain.delete(host)) removedFrom.push('keychain');

  const path = dockerConfigWritePath({ path: options.dockerConfigPath, env: options.env, homeDir: options.homeDir });
  const config = await readDockerConfig(path);
  if (config) {
    const helper = helperFor(config, host);
    if (helper) {
      try {
        const erased = await helperErase(helper.helper, helperServerUrl(host), {
          env: options.env,
          timeoutMs: options.helperTimeoutMs ?? DEFAULT_HELPER_TIMEOUT_MS,
          configuredIn: `${helper.via} in ${path}`,
        });
        if (erased) removedFrom.push(`docker-credential-${helper.helper}`);
      } catch (e) {
        warnings.push(errorMessage(e));
      }
    }
    if (await eraseDockerConfigAuth(path, host, options.lock)) removedFrom.push(path);
  }
  return { host, removedFrom, warnings };
}
