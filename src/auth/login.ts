/**
 * `mirror login` and `mirror logout` as library calls: check a credential against the registry, then keep it in
 * the OS keychain when one answers, else in the Docker config file (mode 0600, with a warning); and remove it again.
 */
import { MirrorError, errorMessage } from '../errors/index.js';
import { DEFAULT_HELPER_TIMEOUT_MS, helperErase } from './cred-helper.js';
import {
  dockerConfigWritePath,
  eraseDockerConfigAuth,
  helperFor,
  helperServerUrl,
  normalizeRegistryHost,
  readDockerConfig,
  storeDockerConfigAuth,
} from './docker-config.js';
import { type Keychain, createKeychain } from './keychain.js';
import { findAddressCredentials, USERINFO_REFUSED } from '../reference/destination.js';
import type { Credential } from './types.js';

/** LoginStore says where `login` keeps the credential: `auto` (keychain, else config file), or only one of them. */
export type LoginStore = 'auto' | 'keychain' | 'config';

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
  storedIn: 'keychain' | 'config';
  /** The config file written, when `storedIn` is `config`. */
  path?: string | undefined;
  /** Set when the password was written to a file (base64 is not encryption). */
  warning?: string | undefined;
}

/** LogoutOptions tune {@link logout}. */
export interface LogoutOptions extends LoginLocationOptions {
  /** Registry `host[:port]`. */
  host: string;
  /** Bound on a credential helper's `erase`, in ms. Default: 30000. */
  helperTimeoutMs?: number | undefined;
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

/**
 * login verifies a credential with `verify`, then stores it: in the OS keychain when keytar loads and a secret
 * service answers (the config file then gets nothing), else in the Docker config file with a warning.
 * `store: 'keychain'` without a keychain is an UNSUPPORTED error; `store: 'config'` skips the keychain.
 */
export async function login(options: LoginOptions): Promise<LoginResult> {
  const host = hostOf(options.host, 'login');
  if (options.username === '') throw new MirrorError('USAGE', `login to ${host} needs a username`);
  const store = options.store ?? 'auto';
  const credential: Credential = { kind: 'basic', username: options.username, password: options.password };
  await options.verify(credential);

  let keychainProblem: string | undefined;
  if (store !== 'config') {
    const keychain = options.keychain ?? createKeychain();
    if (await keychain.isAvailable()) {
      try {
        await keychain.store(host, credential);
        return { host, storedIn: 'keychain' };
      } catch (e) {
        keychainProblem = errorMessage(e);
      }
    } else {
      keychainProblem = `the OS keychain is not available: ${keychain.unavailableReason() ?? 'unknown reason'}`;
    }
    if (store === 'keychain') {
      throw new MirrorError('UNSUPPORTED', `cannot store the credential for ${host}: ${keychainProblem}`, {
        phase: 'login',
        hint: 'start a secret service (gnome-keyring, KeePassXC) or use the Docker config file',
      });
    }
  }
  const path = dockerConfigWritePath({ path: options.dockerConfigPath, env: options.env, homeDir: options.homeDir });
  await storeDockerConfigAuth(path, host, credential);
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
    if (await eraseDockerConfigAuth(path, host)) removedFrom.push(path);
  }
  return { host, removedFrom, warnings };
}
