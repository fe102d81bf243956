/**
 * `mirror login` as one library call: take the credential from the flags (`--username` with `--password-stdin` or
 * `--password`) or ask for it on a terminal, prove it against the registry (`GET /v2/` answered with exactly that
 * credential: Basic, or a token fetched from the realm), then store it with {@link login} (keychain, else config.json).
 */
import { MirrorError } from '../errors/index.js';
import type { EventSink } from '../events/index.js';
import { noEvents } from '../events/index.js';
import type { HostSettingsResolver, RetryOptions } from '../net/types.js';
import { findAddressCredentials, USERINFO_REFUSED } from '../reference/destination.js';
import { isValidHost } from '../reference/reference.js';
import { RegistryClient } from './client.js';
import { createCredentialResolver } from '../auth/chain.js';
import { normalizeRegistryHost } from '../auth/docker-config.js';
import type { Keychain } from '../auth/keychain.js';
import { type LoginResult, type LoginStore, login } from '../auth/login.js';
import { type PromptStreams, isInteractive, promptCredential } from '../auth/prompt.js';
import { registerCredentialSecrets } from '../auth/secrets.js';
import type { Credential, CredentialResolver, ResolvedCredential } from '../auth/types.js';

/** LoginTarget is the registry named on the command line. */
export interface LoginTarget {
  /** `host[:port]`, lower case, as credentials are stored under. */
  host: string;
  /** `http` for `http://HOST` or `--plain-http`, else `https`. */
  scheme: 'http' | 'https';
}

/**
 * parseLoginTarget reads `HOST[:PORT]`, `https://HOST[:PORT][/v1/|/v2/]` or `http://HOST[:PORT]` (plain HTTP).
 * A bad host is a USAGE error.
 */
export function parseLoginTarget(input: string, plainHttp = false): LoginTarget {
  const text = input.trim();
  const credentials = findAddressCredentials(text);
  if (credentials) {
    throw new MirrorError('USAGE', `invalid registry "${credentials.redacted}": ${USERINFO_REFUSED}`);
  }
  const m = /^([a-z][a-z0-9+.-]*):\/\//i.exec(text);
  let scheme: 'http' | 'https' = 'https';
  if (m) {
    const s = (m[1] ?? '').toLowerCase();
    if (s !== 'http' && s !== 'https') throw new MirrorError('USAGE', `invalid registry "${input}": unsupported scheme "${s}"`);
    scheme = s;
    if (plainHttp && s === 'https') throw new MirrorError('USAGE', `invalid registry "${input}": --plain-http conflicts with https://`);
  }
  if (plainHttp) scheme = 'http';
  const host = normalizeRegistryHost(text);
  if (host === '' || !isValidHost(host)) {
    throw new MirrorError('USAGE', `invalid registry "${input}"`, { hint: 'give HOST[:PORT], https://HOST[:PORT] or http://HOST[:PORT]' });
  }
  return { host, scheme };
}

/** RegistryLoginOptions configure {@link registryLogin}. */
export interface RegistryLoginOptions {
  /** The registry: `HOST[:PORT]`, `https://...` or `http://...`. */
  registry: string;
  /** `--plain-http`. Default: false. */
  plainHttp?: boolean | undefined;
  /** `--username`. Without it, the username is asked on a terminal. */
  username?: string | undefined;
  /** `--password` (the caller warns that it shows in the process list). */
  password?: string | undefined;
  /** `--password-stdin`: read the password from `stdin` (one trailing newline dropped). */
  passwordStdin?: boolean | undefined;
  /** Where `--password-stdin` reads. Default: `process.stdin`. */
  stdin?: NodeJS.ReadableStream | undefined;
  /** The terminal to ask on, or false to never ask. Default: `process.stdin`/`process.stderr` when both are TTYs. */
  prompt?: PromptStreams | false | undefined;
  /** Where to keep the credential. Default: `auto` (keychain, else config.json with a warning). */
  store?: LoginStore | undefined;
  /** `--docker-config`: the config file written when the keychain is not used. */
  dockerConfigPath?: string | undefined;
  /** Environment for the config file location. Default: `process.env`. */
  env?: NodeJS.ProcessEnv | undefined;
  /** Home directory. Default: `os.homedir()`. */
  homeDir?: string | undefined;
  /** The keychain. Default: the OS keychain through keytar. */
  keychain?: Keychain | undefined;
  /** TLS, scheme and proxy settings per host (the token realm's host too). */
  settings: HostSettingsResolver;
  /** Retry bounds for the check. */
  retry?: RetryOptions | undefined;
  /** Debug lines (credential source, token requests). Never secrets. */
  events?: EventSink | undefined;
  signal?: AbortSignal | undefined;
}

/** RegistryLoginResult is where the credential went, and what was checked. */
export interface RegistryLoginResult extends LoginResult {
  username: string;
  /** Where the credential came from (`--username/--password-stdin`, `prompt`, ...). */
  credentialSource: string;
  /** How the registry asked for it: `basic`, `bearer`, or `none` when it asked for nothing (nothing was checked). */
  auth: 'none' | 'basic' | 'bearer';
}

/** exactResolver answers every question with one credential (a refusal is then final). */
export function exactResolver(resolved: ResolvedCredential): CredentialResolver {
  return { resolve: async () => resolved };
}

/** noTerminalMessage is the AUTH message when login has neither a username nor a terminal to ask for one. */
export function noTerminalMessage(host: string): string {
  return `login to ${host} needs a username and password, and there is no terminal to ask: use --username with --password-stdin`;
}

async function credentialFor(target: LoginTarget, options: RegistryLoginOptions): Promise<ResolvedCredential> {
  if (options.username !== undefined && options.username !== '') {
    // The flag part of the chain: --password, --password-stdin, or the password asked on a terminal.
    const flags = createCredentialResolver({
      username: options.username,
      password: options.password,
      passwordStdin: options.passwordStdin,
      stdin: options.stdin,
      prompt: options.prompt,
      keychain: false,
      env: {},
    });
    return flags.resolve(target.host, { signal: options.signal });
  }
  if (options.password !== undefined || options.passwordStdin) {
    throw new MirrorError('USAGE', `${options.passwordStdin ? '--password-stdin' : '--password'} needs --username`);
  }
  const streams = options.prompt === false ? undefined : (options.prompt ?? {});
  if (streams === undefined || !isInteractive(streams)) {
    throw new MirrorError('AUTH', noTerminalMessage(target.host), { phase: 'login' });
  }
  const answer = await promptCredential({ ...streams, host: target.host, signal: options.signal });
  if (answer === undefined) throw new MirrorError('AUTH', noTerminalMessage(target.host), { phase: 'login' });
  return answer;
}

/**
 * registryLogin gets the credential (flags or terminal), checks it against the registry with exactly that
 * credential, and stores it. A refused credential is an AUTH error and is stored nowhere; TLS problems are TLS errors.
 */
export async function registryLogin(options: RegistryLoginOptions): Promise<RegistryLoginResult> {
  const target = parseLoginTarget(options.registry, options.plainHttp);
  const events = options.events ?? noEvents;
  const resolved = await credentialFor(target, options);
  registerCredentialSecrets(resolved.credential);
  const credential: Credential = resolved.credential;
  if (credential.kind !== 'basic') {
    throw new MirrorError('UNSUPPORTED', `${resolved.source} gave a ${credential.kind} for ${target.host}; mirror login stores a username and password`, {
      phase: 'login',
    });
  }
  if (credential.username === '') throw new MirrorError('USAGE', `login to ${target.host} needs a username`);
  let auth: RegistryLoginResult['auth'] = 'none';
  const stored = await login({
    host: target.host,
    username: credential.username,
    password: credential.password,
    store: options.store,
    dockerConfigPath: options.dockerConfigPath,
    env: options.env,
    homeDir: options.homeDir,
    keychain: options.keychain,
    verify: async (checked) => {
      const client = new RegistryClient({
        host: target.host,
        scheme: target.scheme,
        settings: options.settings,
        credentials: exactResolver({ credential: checked, source: resolved.source }),
        retry: options.retry,
        events,
      });
      const ping = await client.ping({ authenticate: true, signal: options.signal });
      auth = ping.auth;
      if (auth === 'none') {
        events({ type: 'warning', message: `${target.host} did not ask for credentials, so they were stored without being checked` });
      } else {
        events({ type: 'debug', message: `${target.host} accepted the credentials from ${resolved.source} (${auth})` });
      }
    },
  });
  return { ...stored, username: credential.username, credentialSource: resolved.source, auth };
}
