/**
 * The run lock, so two cron runs never step on each other: a file created with O_EXCL holding the owner's pid, host,
 * process start time and the time the run began. A second run finds it and stops at once (LOCKED, exit 8), or waits
 * for it with `--wait-lock`. A lock left by a process of this host that is gone (killed, machine restarted; a pid
 * reused by another process is told apart by its start time) is taken over, with a message. A lock of another host
 * (a shared volume) is never taken over: only its owner, or a person, can tell whether that run is over.
 */
import { randomBytes } from 'node:crypto';
import { constants, readFileSync } from 'node:fs';
import { open, rename, stat, unlink } from 'node:fs/promises';
import { hostname } from 'node:os';
import { MirrorError } from '../errors/index.js';
import { sleep } from '../net/retry.js';

/** LOCK_POLL_MS is how often a waiting run looks at the lock again. */
export const LOCK_POLL_MS = 500;
/** QUICK_RETRIES is how many times a lock released between two looks is tried again at once. */
const QUICK_RETRIES = 3;
/** STALE_TAKEOVER_MS is the age after which a half-done takeover marker (its taker killed in between) is ignored. */
export const STALE_TAKEOVER_MS = 30_000;

/** LockOwner is what a lock file says. */
export interface LockOwner {
  pid: number;
  host: string;
  /** When the run began (ISO 8601). */
  started: string;
  /** The owner's process start time (Linux `/proc/PID/stat`), to tell a reused pid apart. */
  processStart?: string | undefined;
  /** A random token, so a run only ever removes its own lock. */
  token: string;
}

/** Lock is a held lock. */
export interface Lock {
  path: string;
  owner: LockOwner;
  /** A stale lock that was taken over, when there was one. */
  tookOver?: LockOwner | undefined;
  /** release removes the lock if it is still this run's. */
  release(): Promise<void>;
}

/** processStartOf reads a process's start time (clock ticks since boot) on Linux; undefined elsewhere or when gone. */
export function processStartOf(pid: number): string | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    // The command name (field 2) is in parentheses and may hold spaces: count fields after the last ')'.
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return fields[19];
  } catch {
    return undefined;
  }
}

/** isAlive tells whether the owner of a lock of this host still runs. */
function isAlive(owner: LockOwner): boolean {
  if (!(owner.pid > 0)) return false;
  try {
    process.kill(owner.pid, 0);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ESRCH') return false;
  }
  if (owner.processStart !== undefined) {
    const now = processStartOf(owner.pid);
    if (now !== undefined && now !== owner.processStart) return false;
  }
  return true;
}

/** describeOwner names a lock's owner for messages. */
export function describeOwner(o: LockOwner): string {
  return `pid ${o.pid} on ${o.host}, started ${o.started}`;
}

/**
 * readOwner reads who holds the lock; undefined when there is no lock file. A symbolic link or anything but a file
 * at the lock path is refused, never followed: the default path is in a directory every user can write, and a link
 * planted there (dangling, or to a file of someone else's) must neither stall the run nor be taken for a lock.
 */
async function readOwner(path: string): Promise<LockOwner | undefined> {
  let text: string;
  try {
    const handle = await open(path, constants.O_RDONLY | constants.O_NOFOLLOW | constants.O_NONBLOCK);
    try {
      if (!(await handle.stat()).isFile()) throw Object.assign(new Error('not a file'), { code: 'ENOTFILE' });
      text = await handle.readFile('utf8');
    } finally {
      await handle.close();
    }
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    if (code === 'ENOENT') return undefined;
    const what = code === 'ELOOP' ? 'a symbolic link' : code === 'ENOTFILE' || code === 'EISDIR' ? 'not a file' : undefined;
    throw new MirrorError('BAD_INPUT', `cannot read the lock file ${path}: ${what ?? code ?? 'unreadable'}${what ? ', which a sync never writes: refused' : ''}`, {
      file: path,
      hint: `remove ${path}, or choose another place with --lock-file`,
    });
  }
  try {
    const v = JSON.parse(text) as Partial<LockOwner>;
    if (typeof v.pid === 'number' && typeof v.host === 'string') return { pid: v.pid, host: v.host, started: String(v.started ?? '?'), processStart: v.processStart, token: String(v.token ?? '') };
  } catch {
    // Written half-way (the owner was killed while writing): stale.
  }
  return { pid: -1, host: hostname(), started: '?', token: '' };
}

/** tryCreate creates the lock file with O_EXCL; false when it exists. */
async function tryCreate(path: string, owner: LockOwner): Promise<boolean> {
  let handle;
  try {
    handle = await open(path, 'wx', 0o644);
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    if (code === 'EEXIST') return false;
    throw new MirrorError('BAD_INPUT', `cannot create the lock file ${path}: ${code ?? 'error'}`, { file: path, hint: 'choose another place with --lock-file' });
  }
  try {
    await handle.writeFile(`${JSON.stringify(owner)}\n`);
  } finally {
    await handle.close();
  }
  return true;
}

/**
 * takeOver replaces a stale lock, one taker at a time: the taker first creates `PATH.takeover` with O_EXCL, then
 * checks that the lock still holds the stale owner, moves it aside and creates its own.
 */
async function takeOver(path: string, stale: LockOwner, owner: LockOwner): Promise<boolean> {
  const marker = `${path}.takeover`;
  try {
    const s = await stat(marker);
    if (Date.now() - s.mtimeMs > STALE_TAKEOVER_MS) await unlink(marker).catch(() => {});
  } catch {
    // No marker.
  }
  if (!(await tryCreate(marker, owner))) return false;
  try {
    const now = await readOwner(path);
    if (now !== undefined && (now.token !== stale.token || now.pid !== stale.pid)) return false;
    if (now !== undefined) await rename(path, `${path}.stale-${stale.pid}`).then(() => unlink(`${path}.stale-${stale.pid}`)).catch(() => {});
    return await tryCreate(path, owner);
  } finally {
    await unlink(marker).catch(() => {});
  }
}

/** LockOptions tune {@link acquireLock}. */
export interface LockOptions {
  /** How long to wait for another run's lock (ms). Default: 0 (stop at once). */
  waitMs?: number | undefined;
  signal?: AbortSignal | undefined;
  /** Called once when the lock is held by another run and this one waits. */
  onWait?: ((owner: LockOwner) => void) | undefined;
}

/** acquireLock takes the lock at `path`, or throws LOCKED naming its owner. */
export async function acquireLock(path: string, options: LockOptions = {}): Promise<Lock> {
  const owner: LockOwner = {
    pid: process.pid,
    host: hostname(),
    started: new Date().toISOString(),
    processStart: processStartOf(process.pid),
    token: randomBytes(8).toString('hex'),
  };
  const deadline = Date.now() + Math.max(0, options.waitMs ?? 0);
  let waited = false;
  let quick = 0;
  for (;;) {
    let tookOver: LockOwner | undefined;
    let held = await tryCreate(path, owner);
    let current: LockOwner | undefined;
    let stale = false;
    if (!held) {
      current = await readOwner(path);
      // Released in between: tried again at once, a few times; then as any wait (bounded, and by the signal).
      if (current === undefined && quick++ < QUICK_RETRIES) continue;
      if (current !== undefined && current.host === owner.host && !isAlive(current)) {
        stale = true;
        held = await takeOver(path, current, owner);
        if (held) tookOver = current;
      }
    }
    if (held) {
      return {
        path,
        owner,
        tookOver,
        release: async () => {
          const now = await readOwner(path).catch(() => undefined);
          if (now?.token === owner.token) await unlink(path).catch(() => {});
        },
      };
    }
    const other = current ?? { pid: -1, host: owner.host, started: '?', token: '' };
    if (Date.now() >= deadline) {
      const who = current === undefined ? 'the lock came and went' : stale ? `its owner, ${describeOwner(other)}, is gone, but another run is taking it over (${path}.takeover)` : describeOwner(other);
      throw new MirrorError('LOCKED', `another sync holds the lock ${path} (${who})${waited ? ` and did not finish within --wait-lock` : ''}`, {
        file: path,
        hint: stale
          ? `try again; if ${path}.takeover stays, remove it`
          : other.host === owner.host
            ? 'wait for it, or give --wait-lock DURATION'
            : `a lock of another host is never taken over: remove ${path} once that run is known to be over`,
      });
    }
    if (!waited && current !== undefined) options.onWait?.(other);
    waited = true;
    await sleep(Math.min(LOCK_POLL_MS, Math.max(1, deadline - Date.now())), options.signal);
  }
}
