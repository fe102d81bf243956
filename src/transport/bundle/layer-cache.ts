/**
 * A small local record of how `docker save` layers were compressed on earlier pushes, so a second push of the same
 * bundle can check the registry for the compressed blob (HEAD) instead of compressing and sending it again.
 * Entries are keyed by the uncompressed layer's digest (when the archive names layers by it) and by the bundle
 * file's identity and entry name; a hit is only trusted after the layer's bytes hash to the recorded diff_id.
 * The file lives in `$XDG_CACHE_HOME/mirror/` (default `~/.cache/mirror/`); losing it only costs a re-upload.
 */
import { mkdir, readFile, rename, writeFile } from 'node:fs/promises';
import { homedir } from 'node:os';
import { dirname, join } from 'node:path';

/** CachedLayer is one remembered conversion. */
export interface CachedLayer {
  digest: string;
  size: number;
  mediaType: string;
  diffId: string;
}

/** MAX_CACHE_ENTRIES bounds the file; the oldest entries go first. */
export const MAX_CACHE_ENTRIES = 20_000;

/** defaultLayerCachePath is where the record is kept unless told otherwise. */
export function defaultLayerCachePath(env: NodeJS.ProcessEnv = process.env): string {
  const base = env['XDG_CACHE_HOME'] || join(homedir(), '.cache');
  return join(base, 'mirror', 'converted-layers.json');
}

/** LayerCache reads the record once, answers look-ups, and writes it back when it changed. */
export class LayerCache {
  private entries: Map<string, CachedLayer> | undefined;
  private dirty = false;

  /** @param path the record file; undefined disables the cache. */
  constructor(private readonly path: string | undefined) {}

  private async load(): Promise<Map<string, CachedLayer>> {
    if (this.entries) return this.entries;
    this.entries = new Map();
    if (!this.path) return this.entries;
    try {
      const raw = JSON.parse(await readFile(this.path, 'utf8')) as { entries?: Record<string, CachedLayer> };
      for (const [k, v] of Object.entries(raw.entries ?? {})) {
        if (v && typeof v.digest === 'string' && typeof v.size === 'number' && typeof v.diffId === 'string') this.entries.set(k, v);
      }
    } catch {
      /* no record yet, or unreadable: start empty */
    }
    return this.entries;
  }

  /** get gives the first entry found under any of the keys. */
  async get(keys: readonly string[]): Promise<CachedLayer | undefined> {
    const map = await this.load();
    for (const k of keys) {
      const v = map.get(k);
      if (v) return v;
    }
    return undefined;
  }

  /** put records an entry under every key. */
  async put(keys: readonly string[], value: CachedLayer): Promise<void> {
    const map = await this.load();
    for (const k of keys) {
      map.delete(k);
      map.set(k, value);
    }
    this.dirty = true;
  }

  /** save writes the record back (atomically) when it changed; failures are ignored (it is only a cache). */
  async save(): Promise<void> {
    if (!this.path || !this.dirty || !this.entries) return;
    const all = [...this.entries].slice(-MAX_CACHE_ENTRIES);
    const tmp = `${this.path}.${process.pid}.tmp`;
    try {
      await mkdir(dirname(this.path), { recursive: true });
      await writeFile(tmp, JSON.stringify({ version: 1, entries: Object.fromEntries(all) }));
      await rename(tmp, this.path);
      this.dirty = false;
    } catch {
      /* read-only home: the next push re-uploads, nothing breaks */
    }
  }
}
