/** Helpers of the archive tests: temp directories, shell commands, stream collection, error assertions. */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { MirrorError } from '../../src/errors/index.js';

const execFileP = promisify(execFile);

/** tempDir makes a fresh directory and a function that removes it. */
export async function tempDir(prefix: string): Promise<{ dir: string; remove: () => Promise<void> }> {
  const dir = await mkdtemp(join(tmpdir(), `mirror-${prefix}-`));
  return { dir, remove: () => rm(dir, { recursive: true, force: true }) };
}

/** sh runs a shell command and gives its stdout. */
export async function sh(command: string, options: { cwd?: string } = {}): Promise<string> {
  const { stdout } = await execFileP('bash', ['-c', command], { cwd: options.cwd, maxBuffer: 64 * 1024 * 1024 });
  return stdout;
}

/** hasCommand tells whether a program is on PATH. */
export async function hasCommand(name: string): Promise<boolean> {
  try {
    await sh(`command -v ${name}`);
    return true;
  } catch {
    return false;
  }
}

/** collect reads an async iterable into one buffer. */
export async function collect(stream: AsyncIterable<Uint8Array>): Promise<Buffer> {
  const parts: Buffer[] = [];
  for await (const c of stream) parts.push(Buffer.from(c));
  return Buffer.concat(parts);
}

/** sha256 gives the `sha256:<hex>` digest of bytes. */
export function sha256(data: Uint8Array): string {
  return `sha256:${createHash('sha256').update(data).digest('hex')}`;
}

/** expectMirrorError awaits a promise that must reject with a MirrorError of `code` and a one-line message. */
export async function expectMirrorError(promise: Promise<unknown>, code: string, mentions: string[] = []): Promise<MirrorError> {
  let caught: unknown;
  try {
    await promise;
  } catch (e) {
    caught = e;
  }
  assert.ok(caught !== undefined, `expected a ${code} error, got success`);
  assert.ok(caught instanceof MirrorError, `expected a MirrorError, got ${String(caught)}`);
  assert.equal(caught.code, code, `expected ${code}, got ${caught.code}: ${caught.message}`);
  assert.ok(!caught.message.includes('\n'), `message is not one line: ${JSON.stringify(caught.message)}`);
  assert.ok(!caught.describe().includes('\n'), `describe() is not one line: ${JSON.stringify(caught.describe())}`);
  for (const m of mentions) assert.ok(caught.message.includes(m), `message does not mention ${JSON.stringify(m)}: ${caught.message}`);
  return caught;
}

/** drainAll reads every entry of an entry iterable, hashing bodies, and gives name -> digest. */
export async function readAllEntries(entries: AsyncIterable<{ name: string; body: AsyncIterable<Uint8Array> }>): Promise<Map<string, string>> {
  const out = new Map<string, string>();
  for await (const e of entries) out.set(e.name, sha256(await collect(e.body)));
  return out;
}

/** pidAlive tells whether a process id still exists (and is not a zombie). */
export async function pidAlive(pid: number): Promise<boolean> {
  try {
    process.kill(pid, 0);
  } catch {
    return false;
  }
  try {
    const status = await sh(`cat /proc/${pid}/status 2>/dev/null | grep '^State:' || true`);
    if (status.includes('Z')) return true; // a zombie counts as alive: it was not reaped
  } catch {
    // no /proc: trust kill(0)
  }
  return true;
}

/** waitFor polls a condition until it holds or the time is up. */
export async function waitFor(cond: () => Promise<boolean> | boolean, ms: number): Promise<boolean> {
  const end = Date.now() + ms;
  while (Date.now() < end) {
    if (await cond()) return true;
    await new Promise((r) => setTimeout(r, 20));
  }
  return cond();
}

/** trackUnhandled records unhandled rejections during a suite; call the result in `after` to assert there were none. */
export function trackUnhandled(): () => void {
  const seen: unknown[] = [];
  const onRejection = (reason: unknown): void => {
    seen.push(reason);
  };
  process.on('unhandledRejection', onRejection);
  return () => {
    process.off('unhandledRejection', onRejection);
    assert.deepEqual(
      seen.map((e) => String(e)),
      [],
      'unhandled rejections',
    );
  };
}
