/**
 * Support for credential and TLS integration tests of the CLI: an isolated environment per run (temporary HOME, no
 * session bus, no proxy or credential variables from the developer's shell), certs.d directories for skopeo, checks
 * that no secret leaked into an output, `mirror` on a pseudo-terminal (`script`), and a child under
 * `dbus-run-session` with an unlocked gnome-keyring.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { runBounded, type RunResult } from '../auth/support.js';
import { BIN } from './cli.js';

export { assertOneLineError } from './cli.js';

/** CLEARED are the variables a developer's shell may set that would change what a test run does. */
const CLEARED = [
  'MIRROR_USERNAME',
  'MIRROR_PASSWORD',
  'DOCKER_CONFIG',
  'REGISTRY_AUTH_FILE',
  'XDG_RUNTIME_DIR',
  'HTTPS_PROXY',
  'https_proxy',
  'HTTP_PROXY',
  'http_proxy',
  'ALL_PROXY',
  'all_proxy',
  'NO_PROXY',
  'no_proxy',
  'DISPLAY',
  'GNOME_KEYRING_CONTROL',
];

/** homeMaker gives a function that makes a fresh, empty HOME under `work()` on each call. */
export function homeMaker(work: () => string): () => string {
  let n = 0;
  return () => {
    const dir = join(work(), `home-${++n}`);
    mkdirSync(dir, { recursive: true });
    return dir;
  };
}

/**
 * isolatedEnv gives the environment of one CLI run: HOME (and XDG dirs) under `home`, a session bus address that
 * does not exist (so the keychain is quickly "not available" and the developer's real keychain is never touched),
 * and none of {@link CLEARED}; then `extra` (undefined values remove a variable).
 */
export function isolatedEnv(home: string, extra: NodeJS.ProcessEnv = {}): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {
    HOME: home,
    XDG_CONFIG_HOME: join(home, '.config'),
    XDG_DATA_HOME: join(home, '.local', 'share'),
    DBUS_SESSION_BUS_ADDRESS: `unix:path=${join(home, 'no-session-bus')}`,
  };
  for (const name of CLEARED) env[name] = undefined;
  return { ...env, ...extra };
}

/** childEnv is {@link isolatedEnv} merged over `process.env` with the removed variables really gone (for spawn). */
export function childEnv(home: string, extra: NodeJS.ProcessEnv = {}): NodeJS.ProcessEnv {
  const merged: NodeJS.ProcessEnv = { ...process.env, NO_COLOR: '1', ...isolatedEnv(home, extra) };
  for (const [k, v] of Object.entries(merged)) if (v === undefined) delete merged[k];
  return merged;
}

/** writeCertDir makes a directory as skopeo's `--cert-dir` (and docker's certs.d host directory) expect it. */
export function writeCertDir(dir: string, files: { ca?: string; clientCert?: string; clientKey?: string }): string {
  mkdirSync(dir, { recursive: true });
  if (files.ca !== undefined) writeFileSync(join(dir, 'ca.crt'), files.ca);
  if (files.clientCert !== undefined) writeFileSync(join(dir, 'client.cert'), files.clientCert);
  if (files.clientKey !== undefined) writeFileSync(join(dir, 'client.key'), files.clientKey, { mode: 0o600 });
  return dir;
}

/** JWT matches anything that looks like a JSON Web Token (a bearer token of the token server). */
export const JWT = /eyJ[A-Za-z0-9_-]{8,}\.eyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]*/;

/**
 * assertNoSecrets fails when `text` holds any of the secrets, a `user:secret` pair in base64, or a JWT.
 * `what` names the output for the message (which never repeats the secret).
 */
export function assertNoSecrets(what: string, text: string, secrets: string[], user?: string): void {
  for (const s of secrets) {
    if (s === '') continue;
    assert.ok(!text.includes(s), `${what} contains a secret`);
    if (user !== undefined) assert.ok(!text.includes(Buffer.from(`${user}:${s}`).toString('base64')), `${what} contains base64(user:secret)`);
  }
  assert.ok(!JWT.test(text), `${what} contains a bearer token`);
}


/** PtyStep waits for `after` on the screen (after the previous step's match), then types `send`. */
export interface PtyStep {
  after: string;
  send: string;
}

/** PtyResult is what a run on a pseudo-terminal showed and returned. */
export interface PtyResult {
  /** Everything the terminal showed (the program's output and the terminal's echo). */
  screen: string;
  code: number | null;
  ms: number;
}

/**
 * runCliOnPty runs `mirror ARGS` on a pseudo-terminal (`script -qec`), so stdin, stdout and stderr are TTYs; each
 * step's text is typed once its question is on the screen. Bounded by `timeoutMs` (the process group is killed).
 */
export async function runCliOnPty(args: string[], env: NodeJS.ProcessEnv, steps: PtyStep[], timeoutMs = 60_000): Promise<PtyResult> {
  const quote = (s: string): string => `'${s.replace(/'/g, `'\\''`)}'`;
  const command = [process.execPath, BIN, ...args].map(quote).join(' ');
  const started = Date.now();
  const proc = spawn('script', ['-qec', command, '/dev/null'], { stdio: ['pipe', 'pipe', 'pipe'], env, detached: true });
  let screen = '';
  proc.stdout.on('data', (d: Buffer) => (screen += d.toString('utf8')));
  proc.stderr.on('data', (d: Buffer) => (screen += d.toString('utf8')));
  let code: number | null = null;
  let done = false;
  const exited = new Promise<void>((resolve) =>
    proc.on('close', (c) => {
      code = c;
      done = true;
      resolve();
    }),
  );
  const deadline = started + timeoutMs;
  const killGroup = (): void => {
    try {
      if (proc.pid !== undefined) process.kill(-proc.pid, 'SIGKILL');
    } catch {
      // already gone
    }
  };
  try {
    let seen = 0;
    for (const step of steps) {
      for (let i = 0; ; i++) {
        const at = screen.indexOf(step.after, seen);
        if (at >= 0) {
          seen = at + step.after.length;
          break;
        }
        if (done || Date.now() > deadline || i > timeoutMs / 20) {
          throw new Error(`waited in vain for ${JSON.stringify(step.after)} on the terminal; it showed:\n${screen}`);
        }
        await new Promise((r) => setTimeout(r, 20));
      }
      proc.stdin.write(step.send);
    }
    const left = Math.max(0, deadline - Date.now());
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([
      exited,
      new Promise((_, reject) => {
        timer = setTimeout(() => reject(new Error(`mirror on the terminal did not exit within ${timeoutMs} ms:\n${screen}`)), left);
      }),
    ]).finally(() => clearTimeout(timer));
  } finally {
    proc.stdin.end();
    if (!done) killGroup();
  }
  return { screen, code, ms: Date.now() - started };
}

/** KEYRING_PASSWORD unlocks the throwaway login keyring of a test session. */
export const KEYRING_PASSWORD = 'test-keyring-pass';

/**
 * runInKeyringSession runs `node SCRIPT ARGS...` under `dbus-run-session` with gnome-keyring started and unlocked
 * (secrets component), so keytar has a real Secret Service. `env` should come from {@link childEnv} with a
 * temporary HOME; the session's own bus address replaces the one there.
 */
export function runInKeyringSession(script: string, args: string[], env: NodeJS.ProcessEnv, timeoutMs: number): Promise<RunResult> {
  const sessionEnv: NodeJS.ProcessEnv = { ...env };
  delete sessionEnv['DBUS_SESSION_BUS_ADDRESS'];
  const sh = `printf %s '${KEYRING_PASSWORD}' | gnome-keyring-daemon --unlock --components=secrets >/dev/null; exec "$@"`;
  return runBounded('dbus-run-session', ['--', 'sh', '-c', sh, 'sh', process.execPath, script, ...args], { env: sessionEnv, timeoutMs });
}
