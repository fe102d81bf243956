/**
 * The credential chain. For each registry host, the first source that has a credential wins:
 *
 * 1. flags: `--username` with `--password-stdin` (read once) or `--password`;
 * 2. the environment: `MIRROR_USERNAME` and `MIRROR_PASSWORD` (both needed);
 * 3. the OS keychain (entries written by `mirror login`), when keytar loads and a secret service answers;
 * 4. Docker/containers config files: the host's `credHelpers` helper, else `credsStore`, then `auths`;
 * 5. the interactive prompt, only on a terminal;
 * 6. anonymous.
 *
 * The registry client calls {@link CredentialResolver.resolve} lazily, when a registry answers `401`, and with
 * `retry: true` when the credential it got was refused. Each answer names its source, never the secret.
 */
import { MirrorError, registerSecret } from '../errors/index.js';
import type { EventSink } from '../events/index.js';
import { noEvents } from '../events/index.js';
import { DEFAULT_HELPER_TIMEOUT_MS } from './cred-helper.js';
import { createDockerConfigSource, normalizeRegistryHost } from './docker-config.js';
import { type Keychain, createKeychain } from './keychain.js';
import { type PromptInput, type PromptStreams, isInteractive, promptCredential } from './prompt.js';
import { registerCredentialSecrets } from './secrets.js';
import type { CredentialResolver, CredentialSource, ResolvedCredential } from './types.js';

/** ENV_USERNAME is the environment variable holding a registry username (used with {@link ENV_PASSWORD}). */
export const ENV_USERNAME = 'MIRROR_USERNAME';

/** ENV_PASSWORD is the environment variable holding a registry password (used with {@link ENV_USERNAME}). */
export const ENV_PASSWORD = 'MIRROR_PASSWORD';

/** CHAIN_KEYCHAIN_TIMEOUT_MS bounds a keychain read made while resolving (a hung secret service must not stall a push). */
export const CHAIN_KEYCHAIN_TIMEOUT_MS = 3_000;

/** MAX_STDIN_PASSWORD bounds what `--password-stdin` reads, in bytes. */
export const MAX_STDIN_PASSWORD = 64 * 1024;

/** CREDENTIALS_HELP describes the chain for `--help`. */
export const CREDENTIALS_HELP = [
  'CREDENTIALS (first match wins, per registry host)',
  '  1. --username with --password-stdin (or --password, which shows in the process list)',
  `  2. ${ENV_USERNAME} and ${ENV_PASSWORD}`,
  '  3. the OS keychain (mirror login), when a secret service is running',
  '  4. Docker config: --docker-config/--authfile FILE, else REGISTRY_AUTH_FILE, else $DOCKER_CONFIG/config.json',
  '     or ~/.docker/config.json, then containers auth.json; credHelpers, credsStore (docker-credential-*), auths',
  '  5. a prompt, only on a terminal; otherwise anonymous',
  '  --need-credential=false (--no-registry-credential) always goes anonymous.',
].join('\n');

/** CredentialResolverOptions tune {@link createCredentialResolver}. */
export interface CredentialResolverOptions {
  /** `--username`. Without a password, the password is asked on a terminal (a USAGE error without one). */
  username?: string | undefined;
  /** `--password`; see {@link passwordFlagWarning}. */
  password?: string | undefined;
  /** `--password-stdin`: the password is read from `stdin` once, on first use (one trailing newline dropped). Default: false. */
  passwordStdin?: boolean | undefined;
  /**
   * How the command names these flags in messages (`--src-creds`, `--src-password-stdin` for copy and sync).
   * Default: push's `--username`, `--password`, `--password-stdin`.
   */
  flagNames?: { creds: string; passwordStdin: string } | undefined;
  /** Where `--password-stdin` reads. Default: `process.stdin`. */
  stdin?: NodeJS.ReadableStream | undefined;
  /** The hosts flag and environment credentials are for (e.g. only the destination). Default: every host. */
  flagHosts?: string[] | undefined;
  /** Environment (`MIRROR_*`, `DOCKER_CONFIG`, `REGISTRY_AUTH_FILE`, `PATH` for helpers). Default: `process.env`. */
  env?: NodeJS.ProcessEnv | undefined;
  /**
   * `--need-credential`. `false`: anonymous always, no source consulted. `true`: a registry asking for credentials
   * must get some — with none found, the prompt on a terminal, else an AUTH error at once. Default (undefined):
   * anonymous when none is found; when anonymous is refused, the prompt on a terminal, else the AUTH error.
   */
  needCredential?: boolean | undefined;
  /** `--docker-config`/`--authfile`: the only config file read (it must exist). Default: the usual locations. */
  dockerConfigPath?: string | undefined;
  /** Home directory for default config locations. Default: `os.homedir()`. */
  homeDir?: string | undefined;
  /** The keychain, or false to skip it. Default: {@link createKeychain} with {@link CHAIN_KEYCHAIN_TIMEOUT_MS}. */
  keychain?: Keychain | false | undefined;
  /** The prompt's terminal, or false to never prompt. Default: `process.stdin` / `process.stderr` when both are TTYs. */
  prompt?: PromptStreams | false | undefined;
  /** Bound on one credential-helper run, in ms. Default: {@link DEFAULT_HELPER_TIMEOUT_MS}. */
  helperTimeoutMs?: number | undefined;
  /** Receives warnings (broken config file, failing helper) and debug lines. Never secrets. Default: drops them. */
  events?: EventSink | undefined;
}

/** passwordFlagWarning is the warning the CLI shows when `--password` is used. */
export function passwordFlagWarning(): string {
  return '--password shows the password in the process list and shell history; use --password-stdin instead';
}

/** noCredentialsMessage is the AUTH message for a host that wants credentials when none can be found or asked for. */
export function noCredentialsMessage(host: string): string {
  return `no credentials for ${host} and no terminal to ask: use --username with --password-stdin, \`mirror login ${host}\`, or --docker-config FILE`;
}

const ANONYMOUS: ResolvedCredential = { credential: { kind: 'anonymous' }, source: 'anonymous' };

interface HostState {
  current?: Promise<ResolvedCredential> | undefined;
  retrying?: Promise<ResolvedCredential> | undefined;
  reprompted: boolean;
}

function readAll(stream: NodeJS.ReadableStream, max: number): Promise<string> {
  return new Promise<string>((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    const cleanup = (): void => {
      stream.removeListener('data', onData);
      stream.removeListener('end', onEnd);
      stream.removeListener('error', onError);
    };
    const onData = (chunk: Buffer | string): void => {
      const b = typeof chunk === 'string' ? Buffer.from(chunk, 'utf8') : chunk;
      size += b.length;
      if (size > max) {
        cleanup();
        stream.pause();
        reject(new MirrorError('USAGE', `--password-stdin: more than ${max} bytes on standard input`, { phase: 'auth' }));
        return;
      }
      chunks.push(b);
    };
    const onEnd = (): void => {
      cleanup();
      resolve(Buffer.concat(chunks).toString('utf8'));
    };
    const onError = (e: Error): void => {
      cleanup();
      reject(new MirrorError('USAGE', '--password-stdin: standard input could not be read', { phase: 'auth', cause: e }));
    };
    stream.on('data', onData);
    stream.on('end', onEnd);
    stream.on('error', onError);
    stream.resume();
  });
}

function refusedHint(host: string, source: string): string {
  if (source === 'keychain') return `run \`mirror login ${host}\` again, or give others with --username and --password-stdin`;
  if (source.startsWith('--')) return 'check the username and password';
  if (source.startsWith(ENV_USERNAME)) return `check ${ENV_USERNAME} and ${ENV_PASSWORD}`;
  return `check the credentials, or give others with --username and --password-stdin or \`mirror login ${host}\``;
}

/** createCredentialResolver builds the credential chain; answers are cached per host. */
export function createCredentialResolver(options: CredentialResolverOptions = {}): CredentialResolver {
  if (options.password !== undefined && options.passwordStdin) {
    throw new MirrorError('USAGE', 'use either --password or --password-stdin, not both');
  }
  if ((options.password !== undefined || options.passwordStdin) && !options.username) {
    throw new MirrorError('USAGE', `${options.passwordStdin ? '--password-stdin' : '--password'} needs --username`);
  }
  const env = options.env ?? process.env;
  // Passwords known from the start are registered at once (see src/errors/sanitize.ts), before any request is made.
  registerSecret(options.password, env[ENV_PASSWORD]);
  const events = options.events ?? noEvents;
  const keychain = options.keychain === false ? undefined : (options.keychain ?? createKeychain({ timeoutMs: CHAIN_KEYCHAIN_TIMEOUT_MS }));
  const promptStreams = options.prompt === false ? undefined : (options.prompt ?? {});
  const canPrompt = (): boolean => promptStreams !== undefined && isInteractive(promptStreams);
  const flagHosts = options.flagHosts?.map(normalizeRegistryHost);
  const forFlags = (host: string): boolean => flagHosts === undefined || flagHosts.includes(host);
  let stdinPassword: Promise<string> | undefined;
  let envWarned = false;
  let keychainNoted = false;

  const dockerSource = createDockerConfigSource({
    path: options.dockerConfigPath,
    env,
    homeDir: options.homeDir,
    helper: { timeoutMs: options.helperTimeoutMs ?? DEFAULT_HELPER_TIMEOUT_MS, env },
    events,
  });

  const names = options.flagNames;
  const flagSource: CredentialSource = {
    name: 'flags',
    async get(host, signal) {
      const username = options.username;
      if (!username || !forFlags(host)) return undefined;
      if (options.password !== undefined) {
        return { credential: { kind: 'basic', username, password: options.password }, source: names?.creds ?? '--username/--password' };
      }
      if (options.passwordStdin) {
        const stdin = options.stdin ?? process.stdin;
        // Standard input is a terminal: nothing is piped in, so say what is awaited and read one line without echo.
        stdinPassword ??= (stdin as PromptInput).isTTY
          ? promptCredential({
              input: stdin as PromptInput,
              output: promptStreams?.output,
              terminal: true,
              host,
              username,
              notice: `--password-stdin: standard input is a terminal; type the password for ${username} and press Enter (it is not shown)`,
              signal,
            }).then((answer) => {
              const c = answer?.credential;
              if (c?.kind !== 'basic' || c.password === '') throw new MirrorError('USAGE', '--password-stdin: no password was typed', { phase: 'auth' });
              return c.password;
            })
          : readAll(stdin, MAX_STDIN_PASSWORD).then((text) => {
              const password = text.replace(/\n$/, '').replace(/\r$/, '');
              if (password === '') throw new MirrorError('USAGE', '--password-stdin: standard input was empty', { phase: 'auth' });
              return password;
            });
        const password = await stdinPassword;
        return { credential: { kind: 'basic', username, password }, source: names ? `${names.creds} with ${names.passwordStdin}` : '--username/--password-stdin' };
      }
      if (canPrompt()) {
        const answer = await promptCredential({ ...promptStreams, host, username, signal });
        if (answer) return { credential: answer.credential, source: names ? `${names.creds} (password typed)` : '--username/prompt' };
      }
      throw new MirrorError('USAGE', `--username needs --password-stdin or --password (no terminal to ask for the password of ${username})`, {
        phase: 'auth',
      });
    },
  };

  const envSource: CredentialSource = {
    name: 'environment',
    async get(host) {
      if (!forFlags(host)) return undefined;
      const username = env[ENV_USERNAME];
      const password = env[ENV_PASSWORD];
      if (!username && password === undefined) return undefined;
      if (!username || password === undefined) {
        if (!envWarned) {
          envWarned = true;
          events({ type: 'warning', message: `${ENV_USERNAME} and ${ENV_PASSWORD} must both be set; ignoring them` });
        }
        return undefined;
      }
      return { credential: { kind: 'basic', username, password }, source: `${ENV_USERNAME}/${ENV_PASSWORD}` };
    },
  };

  const keychainSource: CredentialSource = {
    name: 'keychain',
    async get(host) {
      if (!keychain) return undefined;
      const credential = await keychain.get(host);
      if (!keychainNoted && !(await keychain.isAvailable())) {
        keychainNoted = true;
        events({ type: 'debug', message: `OS keychain not used: ${keychain.unavailableReason() ?? 'not available'}` });
      }
      return credential ? { credential, source: 'keychain' } : undefined;
    },
  };

  const sources: CredentialSource[] = [flagSource, envSource, keychainSource, dockerSource];

  const noCredentials = (host: string): MirrorError => {
    const problems = dockerSource.problems(host);
    return new MirrorError('AUTH', noCredentialsMessage(host), {
      phase: 'auth',
      hint: problems.length > 0 ? `note: ${problems.join('; ')}` : undefined,
    });
  };

  // Every answer's secrets are registered as soon as they are known, so no message printed later can show them.
  const learned = (answer: ResolvedCredential): ResolvedCredential => {
    registerCredentialSecrets(answer.credential);
    return answer;
  };

  const first = async (host: string, signal: AbortSignal | undefined): Promise<ResolvedCredential> => {
    for (const source of sources) {
      const found = await source.get(host, signal);
      if (found) return learned(found);
    }
    if (options.needCredential !== true) return ANONYMOUS;
    if (canPrompt()) {
      const answer = await promptCredential({ ...promptStreams, host, signal });
      if (answer) return learned(answer);
    }
    throw noCredentials(host);
  };

  const again = async (host: string, state: HostState, signal: AbortSignal | undefined): Promise<ResolvedCredential> => {
    const previous = state.current ? await state.current.catch(() => undefined) : undefined;
    const refused = previous?.source ?? 'anonymous';
    if (canPrompt() && !state.reprompted) {
      state.reprompted = true;
      const notice =
        refused === 'anonymous' ? `${host} asks for credentials.` : `The credentials for ${host} from ${refused} were refused.`;
      const answer = await promptCredential({ ...promptStreams, host, notice, signal });
      if (answer) return learned(answer);
    }
    if (refused === 'anonymous') throw noCredentials(host);
    throw new MirrorError('AUTH', `the credentials for ${host} from ${refused} were refused`, { phase: 'auth', hint: refusedHint(host, refused) });
  };

  const states = new Map<string, HostState>();
  return {
    resolve(host, resolveOptions = {}) {
      const h = normalizeRegistryHost(host);
      const signal = resolveOptions.signal;
      if (options.needCredential === false) {
        if (resolveOptions.retry) {
          return Promise.reject(
            new MirrorError('AUTH', `${host} refused anonymous access, and credentials are turned off (--need-credential=false)`, {
              phase: 'auth',
              hint: 'drop --need-credential=false (--no-registry-credential) to use credentials',
            }),
          );
        }
        return Promise.resolve(ANONYMOUS);
      }
      let state = states.get(h);
      if (!state) {
        state = { reprompted: false };
        states.set(h, state);
      }
      const st = state;
      if (!resolveOptions.retry) {
        if (st.retrying) return st.retrying;
        if (!st.current) {
          const p = first(h, signal);
          st.current = p;
          // An interruption is not cached: the next call tries again. Other failures are answers, kept.
          p.catch((e: unknown) => {
            if (st.current === p && e instanceof MirrorError && e.code === 'INTERRUPTED') st.current = undefined;
          });
        }
        return st.current;
      }
      if (st.retrying) return st.retrying;
      const p = again(h, st, signal).then((answer) => {
        st.current = Promise.resolve(answer);
        return answer;
      });
      st.retrying = p;
      const clear = (): void => {
        if (st.retrying === p) st.retrying = undefined;
      };
      p.then(clear, clear);
      return p;
    },
  };
}
