/** Runs the built `mirror` binary as a user would, with a bounded time, and gives its exit code and output. */
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

/** BIN is the project's `bin/run.js`. */
export const BIN = join(dirname(fileURLToPath(import.meta.url)), '..', '..', '..', 'bin', 'run.js');

/** CLI_TIMEOUT_MS bounds one run. */
export const CLI_TIMEOUT_MS = 120_000;

/** CliResult is what one run printed and returned. */
export interface CliResult {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** runCli runs `mirror ARGS...` with no terminal on stdin (or `input` piped in). */
export function runCli(args: string[], options: { input?: string; env?: NodeJS.ProcessEnv; timeoutMs?: number } = {}): Promise<CliResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [BIN, ...args], {
      stdio: ['pipe', 'pipe', 'pipe'],
      env: { ...process.env, NO_COLOR: '1', ...options.env },
    });
    let stdout = '';
    let stderr = '';
    child.stdout.setEncoding('utf8').on('data', (d: string) => (stdout += d));
    child.stderr.setEncoding('utf8').on('data', (d: string) => (stderr += d));
    const timer = setTimeout(() => child.kill('SIGKILL'), options.timeoutMs ?? CLI_TIMEOUT_MS);
    child.once('error', (e) => {
      clearTimeout(timer);
      reject(e);
    });
    child.once('close', (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr });
    });
    child.stdin.end(options.input ?? '');
  });
}

/** assertOneLineError checks stderr holds exactly one `mirror: error:` line naming each of `mustName`, and no stack. */
export function assertOneLineError(stderr: string, ...mustName: Array<string | RegExp>): string {
  const lines = stderr.split('\n').filter((l) => l.startsWith('mirror: error:'));
  assert.equal(lines.length, 1, `one error line in:\n${stderr}`);
  const line = lines[0] ?? '';
  for (const n of mustName) {
    if (typeof n === 'string') assert.ok(line.includes(n), `the error names "${n}": ${line}`);
    else assert.match(line, n);
  }
  assert.doesNotMatch(stderr, /\n\s+at /, 'no stack trace');
  return line;
}

/** RunningCli is a `mirror` process started by {@link startCli}, watched while it runs. */
export interface RunningCli {
  child: ChildProcess;
  /** Output so far. */
  readonly stdout: string;
  readonly stderr: string;
  /** Resolves when stderr (or stdout) has matched `pattern`; rejects after `timeoutMs` or when the process ended first. */
  waitFor(pattern: RegExp, options?: { stream?: 'stdout' | 'stderr'; timeoutMs?: number }): Promise<void>;
  /** Sends a signal: to the process, or to its whole process group (as a terminal's Ctrl-C does) with `group`. */
  signal(sig: NodeJS.Signals, options?: { group?: boolean }): void;
  /** The outcome, when the process has ended (killed after `CLI_TIMEOUT_MS` at the latest). */
  done: Promise<CliResult & { signal: NodeJS.Signals | null }>;
}

/**
 * startCli starts `mirror ARGS...` and lets a test act while it runs (wait for a line, send signals). With `detached`
 * it gets a process group of its own, so a group signal reaches its children too, as Ctrl-C in a terminal does.
 */
export function startCli(args: string[], options: { env?: NodeJS.ProcessEnv; timeoutMs?: number; detached?: boolean } = {}): RunningCli {
  const child = spawn(process.execPath, [BIN, ...args], {
    stdio: ['pipe', 'pipe', 'pipe'],
    env: { ...process.env, NO_COLOR: '1', ...options.env },
    detached: options.detached ?? false,
  });
  let stdout = '';
  let stderr = '';
  const listeners = new Set<() => void>();
  const notify = (): void => {
    for (const l of [...listeners]) l();
  };
  child.stdout?.setEncoding('utf8').on('data', (d: string) => {
    stdout += d;
    notify();
  });
  child.stderr?.setEncoding('utf8').on('data', (d: string) => {
    stderr += d;
    notify();
  });
  child.stdin?.end('');
  let ended = false;
  const timer = setTimeout(() => child.kill('SIGKILL'), options.timeoutMs ?? CLI_TIMEOUT_MS);
  const done = new Promise<CliResult & { signal: NodeJS.Signals | null }>((resolve, reject) => {
    child.once('error', (e) => {
      clearTimeout(timer);
      reject(e);
    });
    child.once('close', (code, signal) => {
      clearTimeout(timer);
      ended = true;
      notify();
      resolve({ code, signal, stdout, stderr });
    });
  });
  return {
    child,
    get stdout() {
      return stdout;
    },
    get stderr() {
      return stderr;
    },
    waitFor(pattern: RegExp, opts: { stream?: 'stdout' | 'stderr'; timeoutMs?: number } = {}): Promise<void> {
      const text = (): string => (opts.stream === 'stdout' ? stdout : opts.stream === 'stderr' ? stderr : `${stdout}\n${stderr}`);
      return new Promise<void>((resolve, reject) => {
        const check = (): void => {
          if (pattern.test(text())) {
            finish();
            resolve();
          } else if (ended) {
            finish();
            reject(new Error(`mirror ended before printing ${pattern}:\n${stdout}\n${stderr}`));
          }
        };
        const t = setTimeout(() => {
          finish();
          reject(new Error(`no ${pattern} within ${opts.timeoutMs ?? 60_000} ms:\n${stdout}\n${stderr}`));
        }, opts.timeoutMs ?? 60_000);
        const finish = (): void => {
          clearTimeout(t);
          listeners.delete(check);
        };
        listeners.add(check);
        check();
      });
    },
    signal(sig: NodeJS.Signals, opts: { group?: boolean } = {}): void {
      if (child.pid === undefined || ended) return;
      try {
        process.kill(opts.group ? -child.pid : child.pid, sig);
      } catch {
        // already gone
      }
    },
    done,
  };
}

/** TimedResult is one run of the binary under GNU time. */
export interface TimedResult {
  code: number | null;
  stdout: string;
  stderr: string;
  /** Wall time in seconds. */
  seconds: number;
  /** Peak RSS of the node process in MB (GNU time %M). */
  rssMb: number;
}

/** KILL_MS: a run still going after this is killed (and fails its test). */
export const KILL_MS = 90_000;

/** timedCli runs `mirror ARGS...` under /usr/bin/time, killed after {@link KILL_MS}. */
export function timedCli(args: string[], timeoutMs = KILL_MS): Promise<TimedResult> {
  return new Promise((resolve, reject) => {
    const timeFile = join(tmpdir(), `mirror-time-${process.pid}-${Math.random().toString(36).slice(2)}`);
    const child = spawn('/usr/bin/time', ['-o', timeFile, '-f', '%e %M', process.execPath, BIN, ...args], {
      stdio: ['ignore', 'pipe', 'pipe'],
      env: { ...process.env, NO_COLOR: '1' },
      detached: true,
    });
    let stdout = '';
    let stderr = '';
    child.stdout.setEncoding('utf8').on('data', (d: string) => (stdout += d));
    child.stderr.setEncoding('utf8').on('data', (d: string) => (stderr += d));
    const started = Date.now();
    const timer = setTimeout(() => {
      try {
        process.kill(-child.pid!, 'SIGKILL');
      } catch {
        /* gone */
      }
    }, timeoutMs);
    child.once('error', (e) => {
      clearTimeout(timer);
      reject(e);
    });
    child.once('close', (code) => {
      clearTimeout(timer);
      void (async () => {
        let seconds = (Date.now() - started) / 1000;
        let rssMb = 0;
        try {
          const last = (await readFile(timeFile, 'utf8')).trim().split('\n').pop() ?? '';
          const [s, kb] = last.split(' ');
          if (s !== undefined && kb !== undefined && /^[\d.]+$/.test(s)) {
            seconds = Number(s);
            rssMb = Number(kb) / 1024;
          }
        } catch {
          /* killed before time wrote it */
        }
        await rm(timeFile, { force: true });
        // GNU time reports a killed child as "Command terminated by signal 9" and exits with its own status.
        resolve({ code: stderr.includes('Command terminated by signal') ? null : code, stdout, stderr, seconds, rssMb });
      })();
    });
  });
}
