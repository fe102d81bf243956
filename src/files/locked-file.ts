/**
 * Replacing a file (Docker's `config.json`, which holds credentials; an OCI layout's `index.json`) safely when several
 * processes do it at once and any of them may be killed:
 *
 * - a lock file next to it (`config.json.lock`), created exclusively (written aside, then hard-linked into place,
 *   so it is never seen empty), held while the file is read, changed and replaced, waited for a bounded time;
 *   a lock whose process is gone (same host), or older than {@link LOCK_STALE_MS}, is taken over;
 * - the new content goes to a temporary file in the same directory, created 0600, named after the writing process
 *   (`.config.json.<host>-<pid>-<random>.tmp`, host as a short hash), synced, then renamed over the file;
 * - on every update, the temporary files of processes that are gone (killed between write and rename) are removed
 *   first, so a secret written by a killed run does not outlive the next run.
 *
 * Hand-written rather than taken from npm: the lock libraries there decide staleness by age alone (a killed login
 * would block the next one for their whole stale period), and the job is a few dozen lines on node:fs.
 */
import { createHash, randomBytes } from 'node:crypto';
import { chmod, link, lstat, mkdir, open, readdir, readFile, realpath, rename, unlink } from 'node:fs/promises';
import { hostname } from 'node:os';
import { basename, dirname, join } from 'node:path';
import { abortError, MirrorError } from '../errors/index.js';
import { sleep } from '../net/retry.js';

/** LOCK_WAIT_MS bounds how long an update waits for another process's lock. */
export const LOCK_WAIT_MS = 10_000;

/**
 * LOCK_STALE_MS is the age after which a lock (or a temporary file) is taken for abandoned whoever made it (a
 * process on another host sharing the directory, a reused pid): a read-and-replace takes milliseconds.
 */
export const LOCK_STALE_MS = 60_000;

/** LOCK_POLL_MS is the longest pause between two tries at a held lock (the pause is jittered below it). */
export const LOCK_POLL_MS = 50;

/** MAX_LOCK_LOSSES bounds how often an update starts again after its lock was taken over under it. */
const MAX_LOCK_LOSSES = 3;

/** LockedFileOptions tune {@link updateLockedFile}. */
export interface LockedFileOptions {
  /** How long to wait for the lock, in ms. Default: {@link LOCK_WAIT_MS}. */
  waitMs?: number | undefined;
  /** Age after which a lock or a temporary file is abandoned, in ms. Default: {@link LOCK_STALE_MS}. */
  staleMs?: number | undefined;
  /** Cancels the wait. */
  signal?: AbortSignal | undefined;
  /** The mode of the file written. Default: 0600 (credentials); an OCI layout's index.json is 0644. */
  mode?: number | undefined;
  /** The phase its errors name. Default: `auth` (a Docker config file). */
  phase?: string | undefined;
  /** What writes the file, for the hint on a lock held too long. Default: `mirror login or logout`. */
  writers?: string | undefined;
}

/** LockInfo is what a lock file says about its holder. */
interface LockInfo {
  pid: number;
  host: string;
  nonce: string;
  created: number;
}

/** HeldLock is a lock this process holds. */
interface HeldLock {
  path: string;
  nonce: string;
  /** Whether the lock file is still this process's (a stale takeover may have replaced it). */
  held(): Promise<boolean>;
  /** Removes the lock file if it is still this process's. */
  release(): Promise<void>;
}

const TEMP_SUFFIX = /^([0-9a-f]{8})-(\d+)-[0-9a-f]{8,}\.tmp$/;
/** The temporary files of earlier versions (`.<12 hex>.tmp`), which carried no pid. */
const OLD_TEMP = /^\.[0-9a-f]{12}\.tmp$/;

/** HOST_TAG names this host in temporary file names (a pid means something only on the host that made it). */
export const HOST_TAG = createHash('sha256').update(hostname()).digest('hex').slice(0, 8);

function tempName(base: string, kind: '' | '.lock'): string {
  return `.${base}${kind}.${HOST_TAG}-${process.pid}-${randomBytes(6).toString('hex')}.tmp`;
}

function isAlive(pid: number): boolean {
  if (!Number.isInteger(pid) || pid <= 0) return false;
  if (pid === process.pid) return true;
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    // EPERM: it exists, it is someone else's.
    return (e as NodeJS.ErrnoException).code === 'EPERM';
  }
}

function parseLock(text: string): LockInfo | undefined {
  try {
    const v = JSON.parse(text) as Partial<LockInfo>;
    if (typeof v.pid === 'number' && typeof v.host === 'string' && typeof v.nonce === 'string' && typeof v.created === 'number') {
      return { pid: v.pid, host: v.host, nonce: v.nonce, created: v.created };
    }
  } catch {
    // Not a lock of ours: judged by its age.
  }
  return undefined;
}

async function readText(path: string): Promise<string | undefined> {
  try {
    return await readFile(path, 'utf8');
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw e;
  }
}

async function ageMs(path: string): Promise<number | undefined> {
  try {
    return Date.now() - (await lstat(path)).mtimeMs;
  } catch {
    return undefined;
  }
}

function fileError(options: LockedFileOptions, path: string, why: string, cause?: unknown, hint?: string): MirrorError {
  return new MirrorError('BAD_INPUT', `cannot update ${path}: ${why}`, { phase: options.phase ?? 'auth', file: path, cause, hint });
}

/** writeNew writes `text` to a new file (mode 0600), synced when asked; EEXIST when it is there already. */
async function writeNew(path: string, text: string, sync: boolean): Promise<void> {
  const handle = await open(path, 'wx', 0o600);
  try {
    await handle.writeFile(text, 'utf8');
    if (sync) await handle.sync();
  } finally {
    await handle.close();
  }
}

/** LINK_UNSUPPORTED are the errors of a filesystem without hard links (the lock is then created in place). */
const LINK_UNSUPPORTED = new Set(['EPERM', 'ENOTSUP', 'EOPNOTSUPP', 'ENOSYS', 'EXDEV']);

/** placeLock puts the lock in place from its written candidate; false when a lock is there already. */
async function placeLock(candidate: string, lockPath: string, text: string): Promise<boolean> {
  try {
    await link(candidate, lockPath);
    return true;
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code ?? '';
    if (code === 'EEXIST') return false;
    if (!LINK_UNSUPPORTED.has(code)) throw e;
  }
  try {
    await writeNew(lockPath, text, false);
    return true;
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'EEXIST') return false;
    throw e;
  }
}

/**
 * acquireLock takes `lockPath`: the holder's pid, host and a nonce are written to a temporary file that is then
 * hard-linked to the lock path (fails when a lock exists), so a lock is never seen half-written.
 */
async function acquireLock(lockPath: string, target: string, options: LockedFileOptions): Promise<HeldLock> {
  const waitMs = options.waitMs ?? LOCK_WAIT_MS;
  const staleMs = options.staleMs ?? LOCK_STALE_MS;
  const dir = dirname(lockPath);
  const nonce = randomBytes(12).toString('hex');
  const info: LockInfo = { pid: process.pid, host: hostname(), nonce, created: Date.now() };
  const deadline = Date.now() + waitMs;
  const held = async (): Promise<boolean> => parseLock((await readText(lockPath).catch(() => undefined)) ?? '')?.nonce === nonce;
  const lock: HeldLock = {
    path: lockPath,
    nonce,
    held,
    async release() {
      if (await held()) await unlink(lockPath).catch(() => {});
    },
  };
  let holder: LockInfo | undefined;
  // Bounded in time (the deadline) and in count (every pass either takes the lock or sleeps at least 5 ms).
  for (let attempt = 0; attempt < Math.ceil(waitMs / 5) + 100; attempt++) {
    if (options.signal?.aborted) throw abortError(options.signal);
    const candidate = join(dir, tempName(basename(target), '.lock'));
    const text = `${JSON.stringify(info)}\n`;
    await writeNew(candidate, text, false);
    let placed: boolean;
    try {
      placed = await placeLock(candidate, lockPath, text);
    } finally {
      await unlink(candidate).catch(() => {});
    }
    if (placed) return lock;

    const seen = await readText(lockPath);
    if (seen === undefined) continue; // released in between: try again at once
    holder = parseLock(seen);
    const age = await ageMs(lockPath);
    const gone = holder !== undefined && holder.host === info.host && !isAlive(holder.pid);
    if (gone || (age !== undefined && age > staleMs)) {
      await takeOver(lockPath, seen, target);
      continue;
    }
    const left = deadline - Date.now();
    if (left <= 0) break;
    await sleep(Math.min(left, 5 + Math.floor(Math.random() * LOCK_POLL_MS)), options.signal);
  }
  const who = holder ? `process ${holder.pid} on ${holder.host}` : 'another process';
  throw fileError(options, target, `${lockPath} is held by ${who} for more than ${Math.round(waitMs / 1000)} s`, undefined, `if no ${options.writers ?? 'mirror login or logout'} is running, delete ${lockPath}`);
}

/**
 * takeOver removes an abandoned lock: it is renamed aside (only one of several processes doing this at once
 * succeeds), and removed when it is still the lock that was judged abandoned. When another process had replaced
 * it meanwhile, that live lock is linked back; if that fails too, its holder finds out before it writes
 * ({@link HeldLock.held}) and starts again.
 */
async function takeOver(lockPath: string, seen: string, target: string): Promise<void> {
  const aside = join(dirname(lockPath), tempName(basename(target), '.lock'));
  try {
    await rename(lockPath, aside);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return;
    throw e;
  }
  const moved = await readText(aside);
  if (moved !== undefined && moved !== seen) await link(aside, lockPath).catch(() => {});
  await unlink(aside).catch(() => {});
}

/**
 * removeLeftovers deletes the temporary files that updates of `base` left in `dir` when their process was killed:
 * `.<base>[.lock].<host>-<pid>-<hex>.tmp` whose process on this host is gone (or older than `staleMs`), and the pid-less
 * `.<12 hex>.tmp` files of earlier versions once older than `staleMs`. Called with the lock held, so no live update
 * is writing one.
 */
export async function removeLeftovers(dir: string, base: string, staleMs = LOCK_STALE_MS): Promise<string[]> {
  let names: string[];
  try {
    names = await readdir(dir);
  } catch {
    return [];
  }
  const removed: string[] = [];
  const prefixes = [`.${base}.`, `.${base}.lock.`];
  for (const name of names) {
    let stale = false;
    const prefix = prefixes.filter((p) => name.startsWith(p)).sort((a, b) => b.length - a.length)[0];
    const m = prefix === undefined ? null : TEMP_SUFFIX.exec(name.slice(prefix.length));
    const path = join(dir, name);
    if (m) {
      const pid = Number(m[2]);
      const age = await ageMs(path);
      const gone = m[1] === HOST_TAG && pid !== process.pid && !isAlive(pid);
      stale = gone || (age !== undefined && age > staleMs);
    } else if (OLD_TEMP.test(name)) {
      const age = await ageMs(path);
      stale = age !== undefined && age > staleMs;
    }
    if (!stale) continue;
    try {
      await unlink(path);
      removed.push(path);
    } catch {
      // Gone already, or not ours to remove.
    }
  }
  return removed;
}

/**
 * updateLockedFile reads a file (undefined when missing), lets `change` compute its new text (undefined: leave it
 * as is), and writes that atomically, all under the lock: a temporary file (0600) in the same directory, synced,
 * renamed over the file. A missing directory is created 0700. A symbolic link is followed, so the file it points
 * to is replaced (and locked). `change` may run more than once (when the lock was lost and the update starts over).
 */
export async function updateLockedFile(
  path: string,
  change: (current: string | undefined) => string | undefined,
  options: LockedFileOptions = {},
): Promise<void> {
  let target = path;
  try {
    target = await realpath(path);
  } catch {
    // Not there yet: written where asked.
  }
  const dir = dirname(target);
  const base = basename(target);
  try {
    await mkdir(dir, { recursive: true, mode: 0o700 });
  } catch (e) {
    throw fileError(options, target, 'cannot create its directory', e);
  }
  const lockPath = `${target}.lock`;
  for (let losses = 0; losses < MAX_LOCK_LOSSES; losses++) {
    let lock: HeldLock;
    try {
      lock = await acquireLock(lockPath, target, options);
    } catch (e) {
      if (e instanceof MirrorError) throw e;
      throw fileError(options, target, lockProblem(e), e);
    }
    try {
      await removeLeftovers(dir, base, options.staleMs);
      let current: string | undefined;
      try {
        current = await readText(target);
      } catch (e) {
        throw fileError(options, target, (e as NodeJS.ErrnoException).code === 'EACCES' ? 'permission denied' : 'unreadable', e);
      }
      const next = change(current);
      if (next === undefined) return;
      const temp = join(dir, tempName(base, ''));
      try {
        await writeNew(temp, next, true);
        await chmod(temp, options.mode ?? 0o600);
        if (!(await lock.held())) {
          await unlink(temp).catch(() => {});
          continue;
        }
        await rename(temp, target);
      } catch (e) {
        await unlink(temp).catch(() => {});
        const code = (e as NodeJS.ErrnoException).code;
        throw fileError(options, target, code === 'EACCES' ? 'permission denied when writing' : 'cannot write it', e);
      }
      await syncDir(dir);
      return;
    } finally {
      await lock.release();
    }
  }
  throw fileError(options, target, `its lock ${lockPath} was taken over by other processes ${MAX_LOCK_LOSSES} times`);
}

function lockProblem(e: unknown): string {
  const code = (e as NodeJS.ErrnoException).code;
  if (code === 'EACCES' || code === 'EPERM') return 'permission denied when creating its lock file';
  if (code === 'EROFS') return 'its directory is read-only';
  return `cannot create its lock file (${code ?? 'unknown error'})`;
}

/** syncDir makes a rename durable; some filesystems refuse to sync a directory, which is not an error. */
async function syncDir(dir: string): Promise<void> {
  try {
    const handle = await open(dir, 'r');
    try {
      await handle.sync();
    } finally {
      await handle.close();
    }
  } catch {
    // Best effort.
  }
}
