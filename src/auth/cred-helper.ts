/**
 * Docker's credential-helper protocol (docker/docker-credential-helpers): `docker-credential-<name> get|store|erase`
 * with the server URL (or, for `store`, a JSON object) on standard input and JSON on standard output.
 */
import { spawn } from 'node:child_process';
import { constants } from 'node:fs';
import { access, stat } from 'node:fs/promises';
import { delimiter, isAbsolute, join } from 'node:path';
import { MirrorError, abortError, registerSecret, safeExcerpt } from '../errors/index.js';
import type { Credential } from './types.js';

/** DEFAULT_HELPER_TIMEOUT_MS bounds one run of a credential helper. */
export const DEFAULT_HELPER_TIMEOUT_MS = 30_000;

/** TOKEN_USERNAME is the username helpers store when the secret is an identity token. */
export const TOKEN_USERNAME = '<token>';

const MAX_OUTPUT = 1024 * 1024;
const HELPER_NAME = /^[A-Za-z0-9][A-Za-z0-9._-]*$/;

/** CredentialHelperOptions tune one helper run. */
export interface CredentialHelperOptions {
  /** How long the helper may run, in ms. Default: {@link DEFAULT_HELPER_TIMEOUT_MS}. */
  timeoutMs?: number;
  /** Environment of the helper; its `PATH` is where the helper is looked up. Default: `process.env`. */
  env?: NodeJS.ProcessEnv;
  /** Cancels the run (the helper is killed). */
  signal?: AbortSignal;
  /** Where the helper is configured, for messages (`credsStore in /root/.docker/config.json`). */
  configuredIn?: string;
}

/** HelperEntry is what a helper stores for one server. */
export interface HelperEntry {
  /** The server URL (`https://index.docker.io/v1/`, `registry.example.com:5000`). */
  serverUrl: string;
  /** The username, or {@link TOKEN_USERNAME} when `secret` is an identity token. */
  username: string;
  /** The password or identity token. */
  secret: string;
}

/** helperCommand gives the program name for a helper (`pass` → `docker-credential-pass`), rejecting odd names. */
export function helperCommand(name: string): string {
  if (!HELPER_NAME.test(name)) {
    throw new MirrorError('BAD_INPUT', `invalid credential helper name "${name}"`, {
      phase: 'auth',
      hint: 'a helper name is the part after docker-credential-, e.g. "pass" or "ecr-login"',
    });
  }
  return `docker-credential-${name}`;
}

/**
 * findHelper looks a helper up on PATH as Go's exec.LookPath does since Go 1.19, which docker and skopeo use: only in
 * absolute directories. One found through an empty PATH element, `.` or another relative directory would be a
 * program of the current directory handed the user's secrets (a planted `docker-credential-desktop`): it is refused,
 * naming it. Undefined when it is nowhere on PATH. Windows keeps its own lookup.
 */
export async function findHelper(command: string, env: NodeJS.ProcessEnv): Promise<string | undefined> {
  if (process.platform === 'win32') return command;
  let relative: string | undefined;
  for (const dir of (env['PATH'] ?? '').split(delimiter)) {
    const file = join(dir === '' ? '.' : dir, command);
    try {
      if (!(await stat(file)).isFile()) continue;
      await access(file, constants.X_OK);
    } catch {
      continue;
    }
    if (isAbsolute(dir)) return file;
    relative ??= dir === '' || dir === '.' ? `./${command}` : file;
  }
  if (relative !== undefined) {
    throw new MirrorError('AUTH', `credential helper ${command} resolves to an executable in the current directory (${relative}), which is never run`, {
      phase: 'auth',
      hint: `install ${command} in a directory PATH names absolutely, or take the empty or relative entry out of PATH`,
    });
  }
  return undefined;
}

/** credentialFromHelper turns a helper answer into a credential (`<token>` as username means an identity token). */
export function credentialFromHelper(username: string, secret: string): Credential | undefined {
  if (secret === '') return undefined;
  if (username === TOKEN_USERNAME) return { kind: 'identity-token', token: secret };
  return { kind: 'basic', username, password: secret };
}

/** helperGet asks a helper for the credential of a server; undefined when the helper has none. */
export async function helperGet(
  name: string,
  serverUrl: string,
  options: CredentialHelperOptions = {},
): Promise<Credential | undefined> {
  const result = await runHelper(name, 'get', serverUrl, options);
  if (result.code !== 0) {
    if (isNotFound(result.stdout) || isNotFound(result.stderr)) return undefined;
    throw helperFailed(name, 'get', result, options);
  }
  let parsed: unknown;
  try {
    parsed = JSON.parse(result.stdout);
  } catch {
    throw new MirrorError('AUTH', `credential helper ${helperCommand(name)} answered "get" with something that is not JSON`, {
      phase: 'auth',
      hint: where(options),
    });
  }
  if (typeof parsed !== 'object' || parsed === null) return undefined;
  const record = parsed as Record<string, unknown>;
  const username = typeof record['Username'] === 'string' ? record['Username'] : '';
  const secret = typeof record['Secret'] === 'string' ? record['Secret'] : '';
  return credentialFromHelper(username, secret);
}

/**
 * helperStore hands a credential to a helper (`mirror login` with a configured helper): `store` with
 * `{"ServerURL","Username","Secret"}` on standard input. The secret is registered first, so what the helper says
 * on failure (some quote their input) is printed without it.
 */
export async function helperStore(name: string, entry: HelperEntry, options: CredentialHelperOptions = {}): Promise<void> {
  registerSecret(entry.secret);
  const input = JSON.stringify({ ServerURL: entry.serverUrl, Username: entry.username, Secret: entry.secret });
  const result = await runHelper(name, 'store', input, options);
  if (result.code !== 0) throw helperFailed(name, 'store', result, options);
}

/** helperErase removes what a helper holds for a server; false when it held nothing. */
export async function helperErase(name: string, serverUrl: string, options: CredentialHelperOptions = {}): Promise<boolean> {
  const result = await runHelper(name, 'erase', serverUrl, options);
  if (result.code === 0) return true;
  if (isNotFound(result.stdout) || isNotFound(result.stderr)) return false;
  throw helperFailed(name, 'erase', result, options);
}

interface HelperResult {
  code: number | null;
  stdout: string;
  stderr: string;
}

function isNotFound(text: string): boolean {
  return text.trim().toLowerCase().includes('credentials not found');
}

function where(options: CredentialHelperOptions): string | undefined {
  return options.configuredIn ? `it is configured as ${options.configuredIn}` : undefined;
}

function helperFailed(
  name: string,
  action: string,
  result: HelperResult,
  options: CredentialHelperOptions,
): MirrorError {
  // Scrubbed before it is cut short, so a cut never leaves half a secret that the scrubber would not recognize.
  const said = safeExcerpt(result.stderr.trim() || result.stdout.trim(), 200);
  const detail = said ? `: ${said}` : '';
  return new MirrorError('AUTH', `credential helper ${helperCommand(name)} failed on "${action}" (exit status ${String(result.code)})${detail}`, {
    phase: 'auth',
    hint: where(options),
  });
}

/** helperNotFound is the error for a helper that is not on PATH (or went away before it ran). */
function helperNotFound(command: string, options: CredentialHelperOptions, cause?: unknown): MirrorError {
  return new MirrorError('AUTH', `credential helper ${command} not found on PATH`, {
    phase: 'auth',
    cause,
    hint: `install ${command}${options.configuredIn ? ` or edit ${options.configuredIn}` : ''}`,
  });
}

/** runHelper runs `docker-credential-NAME ACTION` with `input` on standard input, found by {@link findHelper}. */
function runHelper(
  name: string,
  action: 'get' | 'store' | 'erase',
  input: string,
  options: CredentialHelperOptions,
): Promise<HelperResult> {
  const command = helperCommand(name);
  const signal = options.signal;
  const env = options.env ?? process.env;
  if (signal?.aborted) return Promise.reject(abortError(signal));
  return findHelper(command, env).then((path) => {
    if (path === undefined) throw helperNotFound(command, options);
    if (signal?.aborted) throw abortError(signal);
    return spawnHelper(path, command, action, input, { ...options, env });
  });
}

/** spawnHelper runs the helper found at `path` (`command` names it in messages), bounded in time and output. */
function spawnHelper(path: string, command: string, action: 'get' | 'store' | 'erase', input: string, options: CredentialHelperOptions): Promise<HelperResult> {
  const timeoutMs = options.timeoutMs ?? DEFAULT_HELPER_TIMEOUT_MS;
  const signal = options.signal;
  return new Promise<HelperResult>((resolve, reject) => {
    const child = spawn(path, [action], {
      env: options.env,
      stdio: ['pipe', 'pipe', 'pipe'],
      windowsHide: true,
    });
    const out: Buffer[] = [];
    const err: Buffer[] = [];
    let outSize = 0;
    let errSize = 0;
    let settled = false;
    const finish = (fn: () => void): void => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      signal?.removeEventListener('abort', onAbort);
      fn();
    };
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      finish(() =>
        reject(
          new MirrorError('AUTH', `credential helper ${command} did not answer "${action}" within ${Math.round(timeoutMs / 1000)} s`, {
            phase: 'auth',
            hint: where(options),
          }),
        ),
      );
    }, timeoutMs);
    const onAbort = (): void => {
      child.kill('SIGKILL');
      finish(() => reject(abortError(signal)));
    };
    signal?.addEventListener('abort', onAbort, { once: true });
    child.on('error', (e: NodeJS.ErrnoException) => {
      finish(() => {
        if (e.code === 'ENOENT') {
          reject(helperNotFound(command, options, e));
        } else if (e.code === 'EACCES') {
          reject(new MirrorError('AUTH', `credential helper ${command} is not executable`, { phase: 'auth', cause: e, hint: where(options) }));
        } else {
          reject(new MirrorError('AUTH', `credential helper ${command} could not be run: ${e.message}`, { phase: 'auth', hint: where(options) }));
        }
      });
    });
    child.stdout.on('data', (chunk: Buffer) => {
      outSize += chunk.length;
      if (outSize <= MAX_OUTPUT) out.push(chunk);
    });
    child.stderr.on('data', (chunk: Buffer) => {
      errSize += chunk.length;
      if (errSize <= MAX_OUTPUT) err.push(chunk);
    });
    child.on('close', (code) => {
      finish(() => resolve({ code, stdout: Buffer.concat(out).toString('utf8'), stderr: Buffer.concat(err).toString('utf8') }));
    });
    // A helper may exit without reading its input; that must not crash us with EPIPE.
    child.stdin.on('error', () => {});
    child.stdin.end(input);
  });
}
