/**
 * The copy engine's manifest cache: a read in flight is shared, a read manifest is kept within a byte budget (least
 * recently used out first), a failed read is not kept, and sources and repositories are kept apart.
 */
import assert from 'node:assert/strict';
import { ManifestCache } from '../../src/copy/copy.js';
import type { ImageSource, ManifestBytes } from '../../src/transport/types.js';

const source = (): ImageSource => ({ kind: 'random' }) as unknown as ImageSource;
const manifest = (digest: string, size: number): ManifestBytes => ({ digest, mediaType: 'application/vnd.oci.image.manifest.v1+json', bytes: new Uint8Array(size) });

describe('copy: ManifestCache', () => {
  it('shares a read in flight and keeps what was read', async () => {
    const cache = new ManifestCache(1000);
    const src = source();
    let reads = 0;
    const read = async (): Promise<ManifestBytes> => {
      reads++;
      await new Promise((r) => setTimeout(r, 10));
      return manifest('sha256:a', 100);
    };
    const [a, b] = await Promise.all([cache.get(src, 'repo', 'sha256:a', read), cache.get(src, 'repo', 'sha256:a', read)]);
    assert.equal(a, b);
    await cache.get(src, 'repo', 'sha256:a', read);
    assert.equal(reads, 1);
  });

  it('keeps sources and repositories apart', async () => {
    const cache = new ManifestCache(1000);
    const [s1, s2] = [source(), source()];
    let reads = 0;
    const read = async (): Promise<ManifestBytes> => {
      reads++;
      return manifest('sha256:a', 10);
    };
    await cache.get(s1, 'repo', 'sha256:a', read);
    await cache.get(s2, 'repo', 'sha256:a', read);
    await cache.get(s1, 'other', 'sha256:a', read);
    assert.equal(reads, 3);
  });

  it('lets the least recently used go past its byte budget, and does not keep a failed read', async () => {
    const cache = new ManifestCache(250);
    const src = source();
    const reads: string[] = [];
    const reader = (d: string, size = 100) => async (): Promise<ManifestBytes> => {
      reads.push(d);
      return manifest(d, size);
    };
    await cache.get(src, 'r', 'a', reader('a'));
    await cache.get(src, 'r', 'b', reader('b'));
    await cache.get(src, 'r', 'a', reader('a')); // a is now the most recently used
    await cache.get(src, 'r', 'c', reader('c')); // 300 bytes: b goes
    await cache.get(src, 'r', 'a', reader('a'));
    await cache.get(src, 'r', 'c', reader('c'));
    assert.deepEqual(reads, ['a', 'b', 'c']);
    await cache.get(src, 'r', 'b', reader('b'));
    assert.deepEqual(reads, ['a', 'b', 'c', 'b']);

    let fail = true;
    const flaky = async (): Promise<ManifestBytes> => {
      if (fail) throw new Error('cut');
      return manifest('d', 10);
    };
    await assert.rejects(cache.get(src, 'r', 'd', flaky), /cut/);
    await new Promise((r) => setImmediate(r));
    fail = false;
    assert.equal((await cache.get(src, 'r', 'd', flaky)).digest, 'd');
  });
});
