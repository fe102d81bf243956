/**
 * Child processes for tests: start, wait until ready (bounded), and always stop — every started process is
 * registered so a mocha `after` hook ({@link stopAll}) and process exit both kill it. Also a free-port helper, and
 * a tracker of a test server's connections so stopping it never waits on keep-alive sockets.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { createWriteStream, readFileSync } from 'node:fs';
import { createServer, type Server, type Socket } from 'node:net';

/** DEFAULT_READY_TIMEOUT_MS bounds the wait for a started process to be ready. */
export const DEFAULT_READY_TIMEOUT_MS = 10_000;
/** READY_POLL_MS is the pause between two readiness checks. */
export const READY_POLL_MS = 100;
/** STOP_GRACE_MS is how long a process gets after SIGTERM before SIGKILL. */
export const STOP_GRACE_MS = 3_000;

/** StartOptions describe a process to start. */
export interface StartOptions {
  command: string;
  args: string[];
  cwd?: string | undefined;
  env?: NodeJS.ProcessEnv | undefined;
  /** File that receives stdout and stderr (never the test output). */
  logFile: string;
  /** Resolves true once the process serves; polled every {@link READY_POLL_MS}. */
  ready: () => Promise<boolean>;
  /** Bound on the wait. Default: {@link DEFAULT_READY_TIMEOUT_MS}. */
  readyTimeoutMs?: number | undefined;
}

/** Started is a running process. */
export interface Started {
  child: ChildProcess;
  logFile: string;
  /** Stops the process (SIGTERM, then SIGKILL after {@link STOP_GRACE_MS}); safe to call twice. */
  stop(): Promise<void>;
}

const live = new Set<ChildProcess>();
let exitHookInstalled = false;

/** installExitHook kills every live child when the test process exits, however it exits. */
function installExitHook(): void {
  if (exitHookInstalled) return;
  exitHookInstalled = true;
  process.on('exit', () => {
    for (const child of live) {
      try {
        child.kill('SIGKILL');
      } catch {
        // already gone
      }
    }
  });
}

/** stopProcess stops one child, bounded in time. */
async function stopProcess(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) {
    live.delete(child);
    return;
  }
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  child.kill('SIGTERM');
  const timer = setTimeout(() => child.kill('SIGKILL'), STOP_GRACE_MS);
  await exited;
  clearTimeout(timer);
  live.delete(child);
}

/** startProcess starts a process with its output in a log file and waits until `ready()` (bounded). */
export async function startProcess(options: StartOptions): Promise<Started> {
  installExitHook();
  const log = createWriteStream(options.logFile, { flags: 'a' });
  const child = spawn(options.command, options.args, {
    cwd: options.cwd,
    env: options.env ?? process.env,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  live.add(child);
  child.stdout?.pipe(log);
  child.stderr?.pipe(log);
  let spawnError: Error | undefined;
  child.once('error', (e) => {
    spawnError = e;
  });
  const stop = (): Promise<void> => stopProcess(child);
  const deadline = Date.now() + (options.readyTimeoutMs ?? DEFAULT_READY_TIMEOUT_MS);
  for (;;) {
    if (spawnError !== undefined || child.exitCode !== null || child.signalCode !== null) {
      await stop();
      throw new Error(`${options.command} exited before it was ready: ${spawnError?.message ?? `code ${child.exitCode}`}\n${tail(options.logFile)}`);
    }
    let ok = false;
    try {
      ok = await options.ready();
    } catch {
      ok = false;
    }
    if (ok) return { child, logFile: options.logFile, stop };
    if (Date.now() > deadline) {
      await stop();
      throw new Error(`${options.command} was not ready within ${options.readyTimeoutMs ?? DEFAULT_READY_TIMEOUT_MS} ms\n${tail(options.logFile)}`);
    }
    await new Promise((r) => setTimeout(r, READY_POLL_MS));
  }
}

/** tail gives the end of a log file, for a failure message. */
export function tail(file: string, bytes = 4000): string {
  try {
    const text = readFileSync(file, 'utf8');
    return text.slice(-bytes);
  } catch {
    return '';
  }
}

/** stopAll stops every process started by {@link startProcess} (for a mocha `after` hook). */
export async function stopAll(): Promise<void> {
  await Promise.all([...live].map((c) => stopProcess(c)));
}

/** freePort finds a free TCP port on 127.0.0.1 (listen on port 0, read it, close). */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      const port = typeof address === 'object' && address !== null ? address.port : 0;
      server.close(() => (port > 0 ? resolve(port) : reject(new Error('no port'))));
    });
  });
}

/** run runs a command to completion and gives its stdout; throws with stderr when it fails. Bounded by `timeoutMs`. */
export function run(command: string, args: string[], options: { input?: string; timeoutMs?: number; env?: NodeJS.ProcessEnv; cwd?: string } = {}): Promise<string> {
  return new Promise((resolve, reject) => {
    const input = options.input;
    const child = spawn(command, args, { stdio: [input === undefined ? 'ignore' : 'pipe', 'pipe', 'pipe'], env: options.env ?? process.env, cwd: options.cwd });
    const out: Buffer[] = [];
    const err: Buffer[] = [];
    child.stdout?.on('data', (b: Buffer) => out.push(b));
    child.stderr?.on('data', (b: Buffer) => err.push(b));
    const timer = setTimeout(() => child.kill('SIGKILL'), options.timeoutMs ?? 60_000);
    child.once('error', (e) => {
      clearTimeout(timer);
      reject(e);
    });
    child.once('close', (code, signal) => {
      clearTimeout(timer);
      if (code === 0) resolve(Buffer.concat(out).toString('utf8'));
      else reject(new Error(`${command} ${args[0] ?? ''} failed (${signal ?? code}): ${Buffer.concat(err).toString('utf8').slice(-2000)}`));
    });
    if (input !== undefined && child.stdin !== null) {
      // A command that exits without reading its input must not crash the test process with EPIPE.
      child.stdin.on('error', () => {});
      child.stdin.end(input);
    }
  });
}

/** listenLocal starts a server on 127.0.0.1 with a port the kernel picks (no race) and gives that port. */
export async function listenLocal(server: import('node:net').Server): Promise<number> {
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => resolve());
  });
  const address = server.address();
  if (address === null || typeof address === 'string') throw new Error('server has no TCP address');
  return address.port;
}

/**
 * trackSockets records a server's open connections (plain and TLS), so `stop()` ends keep-alive connections at once
 * instead of waiting for them, then closes the server.
 */
export function trackSockets(server: Server): { stop(): Promise<void> } {
  const sockets = new Set<Socket>();
  const add = (s: Socket): void => {
    sockets.add(s);
    s.on('close', () => sockets.delete(s));
  };
  server.on('connection', add);
  server.on('secureConnection', add);
  return {
    async stop(): Promise<void> {
      for (const s of sockets) s.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}
