/** Runs the built `mirror` binary as a user would, with a bounded time, and gives its exit code and output. */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
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
