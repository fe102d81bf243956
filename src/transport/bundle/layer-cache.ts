/**
 * A small local record of how `docker save` layers were compressed on earlier pushes, so a later push of the same
 * bundle can check the registry for the compressed blob (HEAD) instead of compressing and sending it again.
 * Entries are keyed by the uncompressed layer's digest (when the archive names layers by it) and by the bundle
 * file's identity and entry name; a hit is only trusted after the layer's bytes hash to the recorded diff_id.
 *
 * Each layer is recorded as soon as the registry has committed it, one small file per key in
 * `$XDG_CACHE_HOME/mirror/converted-layers/` (default `~/.cache/mirror/`): written to a temporary file, synced, and
 * renamed into place, so a push that is killed halfway leaves every layer it committed on record (a re-run skips
 * them), a reader never sees half a file, and two runs at once only ever replace a file with an equally valid one.
 * Recording costs one small write per key, whatever the size of the record. Losing it only costs a re-upload.
 */
import { createHash, randomBytes } from 'node:crypto';
import { mkdir, open, readdir, readFile, rename, rm, stat, utimes } from 'node:fs/promises';
import { homedir } from 'node:os';
import { join } from 'node:path';

/** CachedLayer is one remembered conversion. */
export interface CachedLayer {
  digest: string;
  size: number;
  mediaType: string;
  diffId: string;
}

/** MAX_CACHE_ENTRIES bounds the record (files); the least recently used go first when it is pruned. */
export const MAX_CACHE_ENTRIES = 20_000;

/** STALE_TEMP_MS is the age after which a temporary file left by a killed run is removed. */
export const STALE_TEMP_MS = 60 * 60 * 1000;

/** defaultLayerCachePath is the record's directory unless told otherwise. */
export function defaultLayerCachePath(env: NodeJS.ProcessEnv = process.env): string {
  const base = env['XDG_CACHE_HOME'] || join(homedir(), '.cache');
  return join(base, 'mirror', 'converted-layers');
}

/** entryFile names the file of a key: a hash, so any key (paths, colons) makes a safe, fixed-length name. */
function entryFile(key: string): string {
  return `${createHash('sha256').update(key).digest('hex').slice(0, 40)}.json`;
}

/** StoredEntry is one file's content: the key it answers (to tell a hash collision from a hit) and the layer. */
interface StoredEntry extends CachedLayer {
  key: string;
}

function isStored(v: unknown, key: string): v is StoredEntry {
  if (typeof v !== 'object' || v === null) return false;
  const e = v as Partial<StoredEntry>;
  return e.key === key && typeof e.digest === 'string' && typeof e.size === 'number' && typeof e.mediaType === 'string' && typeof e.diffId === 'string';
}

/** LayerCache answers look-ups from the record and records layers as they are committed. */
export class LayerCache {
  private readonly pending = new Set<Promise<void>>();
  private dirReady: Promise<boolean> | undefined;
  private wrote = false;

  private readonly maxEntries: number;

  /**
   * @param dir the record's directory; undefined disables the cache.
   * @param options `maxEntries`: how many files the record may hold before it is pruned (default {@link MAX_CACHE_ENTRIES}).
   */
  constructor(
    private readonly dir: string | undefined,
    options: { maxEntries?: number | undefined } = {},
  ) {
    this.maxEntries = options.maxEntries ?? MAX_CACHE_ENTRIES;
  }

  /** get gives the first entry found under any of the keys. */
  async get(keys: readonly string[]): Promise<CachedLayer | undefined> {
    if (!this.dir) return undefined;
    for (const key of keys) {
      const file = join(this.dir, entryFile(key));
      try {
        const v = JSON.parse(await readFile(file, 'utf8')) as unknown;
        if (!isStored(v, key)) continue;
        // Mark it used, so pruning keeps it.
        const now = new Date();
        await utimes(file, now, now).catch(() => {});
        return { digest: v.digest, size: v.size, mediaType: v.mediaType, diffId: v.diffId };
      } catch {
        /* no entry, or unreadable: try the next key */
      }
    }
    return undefined;
  }

  /**
   * put records an entry under every key, durably (temporary file, fsync, rename), and resolves once it is written.
   * Failures are ignored: a read-only home only means the next push re-uploads.
   */
  put(keys: readonly string[], value: CachedLayer): Promise<void> {
    const job = this.write(keys, value).catch(() => {});
    this.pending.add(job);
    void job.finally(() => this.pending.delete(job));
    return job;
  }

  private async write(keys: readonly string[], value: CachedLayer): Promise<void> {
    const dir = this.dir;
    if (!dir) return;
    this.dirReady ??= mkdir(dir, { recursive: true }).then(
      () => true,
      () => false,
    );
    if (!(await this.dirReady)) return;
    for (const key of keys) {
      const stored: StoredEntry = { key, digest: value.digest, size: value.size, mediaType: value.mediaType, diffId: value.diffId };
      const tmp = join(dir, `.tmp-${process.pid}-${randomBytes(6).toString('hex')}`);
      try {
        const fh = await open(tmp, 'wx', 0o644);
        try {
          await fh.writeFile(JSON.stringify(stored));
          await fh.sync();
        } finally {
          await fh.close();
        }
        await rename(tmp, join(dir, entryFile(key)));
        this.wrote = true;
      } catch {
        await rm(tmp, { force: true }).catch(() => {});
      }
    }
  }

  /**
   * save waits for the records still being written, then, when this run added some and the record has grown past
   * its maximum ({@link MAX_CACHE_ENTRIES} by default), removes the least recently used entries (and temporary files killed runs left).
   */
  async save(): Promise<void> {
    while (this.pending.size > 0) await Promise.all([...this.pending]);
    if (!this.dir || !this.wrote) return;
    try {
      const names = await readdir(this.dir);
      const now = Date.now();
      const entries: Array<{ name: string; mtime: number }> = [];
      for (const name of names) {
        if (name.startsWith('.tmp-')) {
          const st = await stat(join(this.dir, name)).catch(() => undefined);
          if (st && now - st.mtimeMs > STALE_TEMP_MS) await rm(join(this.dir, name), { force: true });
        } else if (name.endsWith('.json')) {
          entries.push({ name, mtime: 0 });
        }
      }
      if (entries.length <= this.maxEntries) return;
      for (const e of entries) e.mtime = (await stat(join(this.dir, e.name)).catch(() => undefined))?.mtimeMs ?? 0;
      entries.sort((a, b) => a.mtime - b.mtime);
      for (const e of entries.slice(0, entries.length - Math.floor(this.maxEntries * 0.9))) await rm(join(this.dir, e.name), { force: true });
    } catch {
      /* only a cache */
    }
  }
}
