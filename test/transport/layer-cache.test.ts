/** The record of converted docker-save layers: written per layer, atomically, safe with two runs at once, bounded. */
import assert from 'node:assert/strict';
import { mkdtemp, readdir, rm, utimes, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { LayerCache, STALE_TEMP_MS } from '../../src/transport/bundle/layer-cache.js';

const layer = (n: number): { digest: string; size: number; mediaType: string; diffId: string } => ({
  digest: `sha256:${n.toString(16).padStart(64, '0')}`,
  size: n,
  mediaType: 'application/vnd.docker.image.rootfs.diff.tar.gzip',
  diffId: `sha256:${(n + 1).toString(16).padStart(64, '0')}`,
});

describe('transport/bundle layer cache', () => {
  let dir: string;
  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), 'mirror-layer-cache-'));
  });
  afterEach(async () => rm(dir, { recursive: true, force: true }));

  it('records each layer at once, where another run (a fresh instance) finds it, without waiting for save()', async () => {
    const a = new LayerCache(dir);
    await a.put(['entry:f:1', 'diff:x:1'], layer(1));
    const b = new LayerCache(dir);
    assert.deepEqual(await b.get(['nope', 'diff:x:1']), layer(1));
    assert.deepEqual(await b.get(['entry:f:1']), layer(1));
    assert.equal(await b.get(['entry:f:2']), undefined);
    assert.deepEqual((await readdir(dir)).filter((n) => n.startsWith('.tmp-')), [], 'no temporary file left');
  });

  it('two runs writing at once leave every entry whole and readable', async () => {
    const runs = [new LayerCache(dir), new LayerCache(dir)];
    await Promise.all(
      runs.flatMap((c, r) => Array.from({ length: 40 }, (_, i) => c.put([`entry:same:${i}`, `entry:run${r}:${i}`], layer(i + 1)))),
    );
    await Promise.all(runs.map((c) => c.save()));
    const reader = new LayerCache(dir);
    for (let i = 0; i < 40; i++) {
      assert.deepEqual(await reader.get([`entry:same:${i}`]), layer(i + 1));
      for (const r of [0, 1]) assert.deepEqual(await reader.get([`entry:run${r}:${i}`]), layer(i + 1));
    }
  });

  it('a key whose file holds another key (a hash collision, a hand edit) is no hit; unreadable files are misses', async () => {
    const c = new LayerCache(dir);
    await c.put(['entry:a'], layer(5));
    const [file] = (await readdir(dir)).filter((n) => n.endsWith('.json'));
    await writeFile(join(dir, file!), JSON.stringify({ ...layer(6), key: 'entry:other' }));
    assert.equal(await c.get(['entry:a']), undefined);
    await writeFile(join(dir, file!), '{"half');
    assert.equal(await c.get(['entry:a']), undefined);
  });

  it('save() prunes the least recently used entries past the maximum, and temporary files killed runs left', async () => {
    const c = new LayerCache(dir, { maxEntries: 10 });
    for (let i = 0; i < 12; i++) await c.put([`entry:${i}`], layer(i + 1));
    // Make entry:0 the most recently used, the rest older.
    const old = new Date(Date.now() - 60_000);
    for (const n of await readdir(dir)) await utimes(join(dir, n), old, old);
    await c.get(['entry:0']);
    const stale = join(dir, '.tmp-1-abc');
    await writeFile(stale, 'x');
    await utimes(stale, new Date(Date.now() - STALE_TEMP_MS - 1000), new Date(Date.now() - STALE_TEMP_MS - 1000));
    await c.save();
    const left = (await readdir(dir)).filter((n) => n.endsWith('.json'));
    assert.equal(left.length, 9);
    assert.deepEqual(await c.get(['entry:0']), layer(1), 'the one just used is kept');
    assert.equal((await readdir(dir)).includes('.tmp-1-abc'), false);
  });

  it('a cache with no directory, or one it cannot write, changes nothing and never throws', async () => {
    const none = new LayerCache(undefined);
    await none.put(['k'], layer(1));
    assert.equal(await none.get(['k']), undefined);
    await none.save();
    const blocked = join(dir, 'file');
    await writeFile(blocked, 'not a directory');
    const bad = new LayerCache(join(blocked, 'sub'));
    await bad.put(['k'], layer(1));
    await bad.save();
    assert.equal(await bad.get(['k']), undefined);
  });
});
