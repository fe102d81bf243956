/**
 * Runs a command in a detached tmux session of a given size and captures what its screen shows while it runs, as a
 * person at an 80-column terminal would see it. Bounded in time; the session is always killed.
 */
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { run } from './proc.js';

/** TmuxRun is what the screen showed over a run. */
export interface TmuxRun {
  /** Every distinct capture of the screen, in order (wrapped lines joined, so a line longer than the width shows). */
  screens: string[];
  /** The last capture. */
  last: string;
  /** The command's exit code (from the marker the wrapper prints), or null when it did not finish in time. */
  code: number | null;
}

/** TmuxOptions size the terminal and bound the run. */
export interface TmuxOptions {
  columns?: number | undefined;
  rows?: number | undefined;
  /** Environment of the command (the session's environment is the test process's, plus this). */
  env?: Record<string, string> | undefined;
  /** Bound on the whole run. Default 60 s. */
  timeoutMs?: number | undefined;
  /** Pause between two captures. Default 50 ms. */
  pollMs?: number | undefined;
}

const EXIT_MARK = '__mirror_test_exit=';

/** runInTmux runs `argv` in a tmux server of its own and captures the screen until the command exits. */
export async function runInTmux(argv: string[], options: TmuxOptions = {}): Promise<TmuxRun> {
  const name = `mirror-test-${randomBytes(4).toString('hex')}`;
  // A server of its own on a socket in a directory of its own, removed at the end (tmux leaves its socket behind).
  const dir = mkdtempSync(join(tmpdir(), 'mirror-tmux-'));
  const socket = join(dir, 'socket');
  const quote = (s: string): string => `'${s.replace(/'/g, `'\\''`)}'`;
  const env = Object.entries(options.env ?? {}).map(([k, v]) => `${k}=${quote(v)}`);
  // Print the exit code, then stay alive so the last screen can be read.
  const command = `${['env', ...env, ...argv.map(quote)].join(' ')}; echo "${EXIT_MARK}$?"; sleep 600`;
  const columns = String(options.columns ?? 80);
  const rows = String(options.rows ?? 40);
  await run('tmux', ['-S', socket, '-f', '/dev/null', 'new-session', '-d', '-s', name, '-x', columns, '-y', rows, command], { timeoutMs: 10_000 });
  const screens: string[] = [];
  let code: number | null = null;
  const deadline = Date.now() + (options.timeoutMs ?? 60_000);
  try {
    for (let i = 0; Date.now() < deadline && i < 100_000; i++) {
      const screen = await run('tmux', ['-S', socket, 'capture-pane', '-p', '-J', '-t', name], { timeoutMs: 10_000 });
      if (screens[screens.length - 1] !== screen) screens.push(screen);
      const m = new RegExp(`${EXIT_MARK}(\\d+)`).exec(screen);
      if (m) {
        code = Number(m[1]);
        break;
      }
      await new Promise((r) => setTimeout(r, options.pollMs ?? 50));
    }
  } finally {
    await new Promise<void>((resolve) => {
      const kill = spawn('tmux', ['-S', socket, 'kill-server'], { stdio: 'ignore' });
      kill.once('error', () => resolve());
      kill.once('close', () => resolve());
    });
    rmSync(dir, { recursive: true, force: true });
  }
  return { screens, last: screens[screens.length - 1] ?? '', code };
}
