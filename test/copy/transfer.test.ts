/**
 * The blob scheduler's contract, against an in-memory destination that answers after a delay (as a registry does):
 * one upload per digest per run, even when images that share a layer place it into their repositories at the same
 * moment; the other repositories get it by mount.
 */
import assert from 'node:assert/strict';
import { noEvents } from '../../src/events/index.js';
import type { Descriptor } from '../../src/oci/manifest.js';
import { BlobScheduler } from '../../src/copy/transfer.js';
import type { BlobBody, ImageDestination, ImageSource } from '../../src/transport/types.js';

const DELAY_MS = 20;
const wait = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

/** memoryRegistry holds blobs per repository and counts what it was asked. */
function memoryRegistry(): { dest: ImageDestination; calls: string[]; repos: Map<string, Set<string>> } {
  const repos = new Map<string, Set<string>>();
  const calls: string[] = [];
  const holds = (repo: string, digest: string): boolean => repos.get(repo)?.has(digest) ?? false;
  const add = (repo: string, digest: string): void => {
    if (!repos.has(repo)) repos.set(repo, new Set());
    repos.get(repo)!.add(digest);
  };
  const dest: ImageDestination = {
    description: 'memory',
    blobScope: 'repository',
    async hasBlob(repo, digest) {
      calls.push(`HEAD ${repo}`);
      await wait(DELAY_MS);
      return holds(repo, digest);
    },
    async mountBlob(repo, digest, from) {
      calls.push(`MOUNT ${repo} from ${from}`);
      await wait(DELAY_MS);
      if (!holds(from, digest)) return { mounted: false };
      add(repo, digest);
      return { mounted: true };
    },
    async cancelSession() {},
    async putBlob(repo, expected, body: BlobBody) {
      calls.push(`UPLOAD ${repo}`);
      let size = 0;
      if (body.kind === 'bytes') size = body.data.byteLength;
      else for await (const chunk of body.open()) size += chunk.byteLength;
      await wait(DELAY_MS * 3);
      add(repo, expected.digest!);
      return { digest: expected.digest!, size };
    },
    async manifestDigest() {
      return undefined;
    },
    async putManifest() {},
    async commit() {},
    async close() {},
  };
  return { dest, calls, repos };
}

const source: ImageSource = {
  kind: 'random',
  description: 'memory source',
  async resolve() {
    throw new Error('not used');
  },
  async manifest() {
    throw new Error('not used');
  },
  async openBlob() {
    return (async function* bytes(): AsyncGenerator<Uint8Array> {
      yield Buffer.alloc(1000, 1);
    })();
  },
  async close() {},
};

describe('copy/transfer: BlobScheduler', () => {
  const layer: Descriptor = { mediaType: 'application/vnd.oci.image.layer.v1.tar+gzip', digest: `sha256:${'a'.repeat(64)}`, size: 1000 };

  it('a layer placed into several repositories at the same moment is uploaded once and mounted into the others', async () => {
    const { dest, calls, repos } = memoryRegistry();
    const scheduler = new BlobScheduler(dest, { blobScope: 'repository', writeOrder: 'blobs-first', parallelBlobWrites: true }, { concurrency: 8, events: noEvents, signal: new AbortController().signal });
    const origin = { source, repository: 'upstream/base' };
    await Promise.all(['ns/a', 'ns/b', 'ns/c'].map((repo) => scheduler.ensure(repo, layer, origin)));
    assert.deepEqual(
      calls.filter((c) => c.startsWith('UPLOAD')),
      ['UPLOAD ns/a'],
      `one upload: ${calls.join(', ')}`,
    );
    assert.equal(scheduler.stats.uploaded, 1);
    assert.equal(scheduler.stats.mounted, 2);
    for (const repo of ['ns/a', 'ns/b', 'ns/c']) assert.ok(repos.get(repo)?.has(layer.digest), repo);
  });

  it('a blob the source is still writing itself (a bundle pass) is waited for and mounted, not read and sent again', async () => {
    const { dest, calls, repos } = memoryRegistry();
    let opened = 0;
    const writing: ImageSource = {
      ...source,
      async openBlob(repository, desc, options) {
        opened++;
        return source.openBlob(repository, desc, options);
      },
      settling(digest) {
        if (digest !== layer.digest) return undefined;
        // The pass's upload into staging lands a little later.
        return wait(DELAY_MS * 2).then(() => {
          repos.set('ns/mirror-staging', new Set([digest]));
          return ['ns/mirror-staging'];
        });
      },
    };
    const scheduler = new BlobScheduler(dest, { blobScope: 'repository', writeOrder: 'blobs-first', parallelBlobWrites: true }, { concurrency: 8, events: noEvents, signal: new AbortController().signal });
    await scheduler.ensure('ns/app', layer, { source: writing, repository: '' });
    assert.equal(opened, 0, 'the source was not read');
    assert.deepEqual(calls, ['MOUNT ns/app from ns/mirror-staging']);
    assert.ok(repos.get('ns/app')?.has(layer.digest));
  });

  it('a blob the source holds in memory goes to the destination as bytes (one write), not as a stream it opens', async () => {
    const { dest } = memoryRegistry();
    const kinds: string[] = [];
    const put = dest.putBlob.bind(dest);
    dest.putBlob = async (repo, expected, body, options) => {
      kinds.push(body.kind);
      return put(repo, expected, body, options);
    };
    let opened = 0;
    const held = Buffer.alloc(1000, 2);
    const holding: ImageSource = {
      ...source,
      async openBlob(repository, desc, options) {
        opened++;
        return source.openBlob(repository, desc, options);
      },
      heldBytes: (desc) => (desc.digest === layer.digest ? held : undefined),
    };
    const other: Descriptor = { ...layer, digest: `sha256:${'b'.repeat(64)}` };
    const scheduler = new BlobScheduler(dest, { blobScope: 'global', writeOrder: 'blobs-first', parallelBlobWrites: true }, { concurrency: 8, events: noEvents, signal: new AbortController().signal });
    await scheduler.ensure('', layer, { source: holding, repository: '' });
    await scheduler.ensure('', other, { source: holding, repository: '' });
    assert.deepEqual(kinds, ['bytes', 'stream']);
    assert.equal(opened, 1, 'only the blob not held was opened');
  });

  it('a failed first placement does not fail the others: the next one uploads it', async () => {
    const { dest, calls } = memoryRegistry();
    let failures = 1;
    const put = dest.putBlob.bind(dest);
    dest.putBlob = async (repo, expected, body, options) => {
      if (failures-- > 0) {
        calls.push(`UPLOAD ${repo} (fails)`);
        throw new Error('refused');
      }
      return put(repo, expected, body, options);
    };
    const scheduler = new BlobScheduler(dest, { blobScope: 'repository', writeOrder: 'blobs-first', parallelBlobWrites: true }, { concurrency: 8, events: noEvents, signal: new AbortController().signal });
    const origin = { source, repository: 'upstream/base' };
    const results = await Promise.allSettled(['ns/a', 'ns/b'].map((repo) => scheduler.ensure(repo, layer, origin)));
    assert.equal(results[0]!.status, 'rejected');
    assert.equal(results[1]!.status, 'fulfilled');
    assert.deepEqual(
      calls.filter((c) => c.startsWith('UPLOAD')),
      ['UPLOAD ns/a (fails)', 'UPLOAD ns/b'],
    );
  });
});
