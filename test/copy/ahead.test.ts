/**
 * The copy engine's `ahead`: planned images wait for a write slot, and a free slot takes the one with the most bytes
 * still to send. Source: an OCI layout made by the fixture script (small images first, the large one last);
 * destination: a recorder that holds every blob write until the engine has asked for every job (with one job planned
 * at a time, every image is then planned), or 300 ms have passed, so which image is written next is not a race.
 * Also checked: the bounds (images planned at once, written at once, held planned), that a second tag of an image
 * whose blobs are being sent waits for the others, and that no outcome is missed by a slow consumer.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { copyImagesFrom, type CopyJob, type CopyOutcome } from '../../src/copy/copy.js';
import { openLayoutSource } from '../../src/transport/oci-layout/source.js';
import type { BlobBody, DestinationImage, ImageDestination, ImageName, ImageSource, PutManifestResult } from '../../src/transport/types.js';
import { buildOciLayout, type LayoutSpec, writeDirectory } from '../../testdata/make-fixtures.js';

const SMALL = 6;
const SPEC: LayoutSpec = {
  seed: 'mirror-copy-ahead',
  images: [
    ...Array.from({ length: SMALL }, (_, i) => ({ ref: `quay.io/team/small:s${i}`, layers: [{ files: 1, sizeBytes: 500 + i }] })),
    { ref: 'quay.io/team/large:big', layers: [{ files: 2, sizeBytes: 200_000 }] },
  ],
};
const TAGS = [...Array.from({ length: SMALL }, (_, i) => `s${i}`), 'big'];

/** Recorder writes nothing: it records root manifests in the order written and counts writes at once. */
class Recorder implements ImageDestination {
  readonly description = 'recorder';
  readonly blobScope = 'global' as const;
  readonly capabilities = { blobScope: 'global' as const, writeOrder: 'blobs-first' as const, parallelBlobWrites: true };
  readonly roots: string[] = [];
  readonly held = new Set<string>();
  writing = 0;
  maxWriting = 0;

  constructor(private readonly gate: Promise<void>) {}

  async hasBlob(_r: string, digest: string): Promise<boolean> {
    return this.held.has(digest);
  }
  async mountBlob(): Promise<{ mounted: false }> {
    return { mounted: false };
  }
  async cancelSession(): Promise<void> {}
  async putBlob(_r: string, expected: { digest?: string | undefined }, body: BlobBody): Promise<{ digest: string; size: number }> {
    this.writing++;
    this.maxWriting = Math.max(this.maxWriting, this.writing);
    try {
      await this.gate;
      let size = 0;
      if (body.kind === 'stream') for await (const c of body.open()) size += c.byteLength;
      else size = body.data.byteLength;
      this.held.add(expected.digest!);
      return { digest: expected.digest!, size };
    } finally {
      this.writing--;
    }
  }
  async manifestDigest(): Promise<string | undefined> {
    return undefined;
  }
  async putManifest(image: DestinationImage, _ref: string, _b: Uint8Array, _m: string, options: { root?: boolean | undefined }): Promise<PutManifestResult> {
    if (options.root) this.roots.push(image.repository);
    return {};
  }
  async commit(): Promise<void> {}
  async close(): Promise<void> {}
}

describe('copy engine: images planned ahead, the largest written first', () => {
  let work: string;
  let dir: string;

  before(async () => {
    work = mkdtempSync(join(tmpdir(), 'mirror-copy-ahead-'));
    dir = join(work, 'layout');
    await writeDirectory((await buildOciLayout(SPEC)).files, dir);
  });
  after(() => rmSync(work, { recursive: true, force: true }));

  /**
   * run copies every image with `jobs` and `ahead` (the large one under `largeTags`); the recorder's writes wait until
   * every job has been asked for (at most 300 ms).
   */
  async function run(jobs: number, ahead: number, largeTags = ['v']): Promise<{ dest: Recorder; outcomes: CopyOutcome[]; maxPlanning: number }> {
    const layout = await openLayoutSource(dir);
    let planning = 0;
    let maxPlanning = 0;
    const source: ImageSource = Object.assign(Object.create(layout) as ImageSource, {
      resolve: async (name: ImageName) => {
        planning++;
        maxPlanning = Math.max(maxPlanning, planning);
        try {
          return await layout.resolve(name);
        } finally {
          planning--;
        }
      },
    });
    // Each image has a repository of its own; the large one is last in the plan.
    const jobList: CopyJob[] = [
      ...TAGS.slice(0, SMALL).map((tag) => ({ source, image: { repository: '', tag }, name: `small-${tag}`, destination: { repository: `small-${tag}`, tag: 'v', name: `small-${tag}` } })),
      ...largeTags.map((t) => ({ source, image: { repository: '', tag: 'big' }, name: `large:${t}`, destination: { repository: 'large', tag: t, name: `large:${t}` } })),
    ];
    // The engine asks for a job only when fewer than `jobs` are being planned: asked for one more after the last, it
    // has planned all but at most jobs - 1 of them (with jobs 1, every one). The writes wait for that (or 300 ms).
    let allPulled!: () => void;
    const pulled = new Promise<void>((r) => (allPulled = r));
    async function* handOut(): AsyncGenerator<CopyJob, void, undefined> {
      yield* jobList;
      allPulled();
    }
    const dest = new Recorder(Promise.race([pulled, new Promise<void>((r) => setTimeout(r, 300))]));
    const outcomes: CopyOutcome[] = [];
    for await (const o of copyImagesFrom(handOut(), dest, { jobs, ahead }).outcomes) outcomes.push(o);
    return { dest, outcomes, maxPlanning };
  }

  it('without ahead, images are written in the order planned', async () => {
    const { dest, outcomes } = await run(1, 0);
    assert.equal(outcomes.filter((o) => o.status === 'pushed').length, TAGS.length, JSON.stringify(outcomes.map((o) => o.error)));
    assert.deepEqual(dest.roots, [...TAGS.slice(0, SMALL).map((t) => `small-${t}`), 'large']);
  });

  it('with ahead, the large image last in the plan is written right after the first, and the bounds hold', async () => {
    const { dest, outcomes, maxPlanning } = await run(1, 8);
    assert.equal(outcomes.filter((o) => o.status === 'pushed').length, TAGS.length, JSON.stringify(outcomes.map((o) => o.error)));
    assert.equal(dest.roots[0], 'small-s0', 'the first image planned was being written before the others were planned');
    assert.equal(dest.roots[1], 'large');
    assert.deepEqual([...dest.roots].sort(), [...TAGS.slice(0, SMALL).map((t) => `small-${t}`), 'large'].sort());
    assert.equal(dest.maxWriting, 1, 'one image written at a time (jobs 1)');
    assert.equal(maxPlanning, 1, 'one image planned at a time (jobs 1)');
  });

  it('ahead bounds the images held planned: with ahead 2 the large image is not planned before a write slot frees', async () => {
    const { dest } = await run(1, 2);
    // Planned at most 1 + 2 at once: small-s0 written, small-s1 and small-s2 waiting; the large one is planned only as
    // they go, so it is not second.
    assert.notEqual(dest.roots[1], 'large');
    assert.equal(dest.roots.length, TAGS.length);
  });

  it('a second tag of the large image, whose blobs are being sent, waits behind the small images', async () => {
    const { dest, outcomes } = await run(2, 8, ['v', 'w']);
    assert.equal(outcomes.filter((o) => o.status === 'pushed').length, SMALL + 2, JSON.stringify(outcomes.map((o) => o.error)));
    // Written first: the two planned first (their writes were under way), then the large image; its second tag has
    // nothing left to send once that started, so every small image goes before it (at most one write beside it).
    const second = dest.roots.lastIndexOf('large');
    assert.notEqual(dest.roots.indexOf('large'), second);
    assert.ok(second >= dest.roots.length - 2, dest.roots.join(' '));
    assert.equal(dest.maxWriting <= 2, true);
  });

  it('a consumer that takes its time with each outcome: what finished meanwhile is not missed (no hang)', async () => {
    const layout = await openLayoutSource(dir);
    const dest = new Recorder(Promise.resolve());
    const jobList: CopyJob[] = TAGS.map((tag) => ({ source: layout, image: { repository: '', tag }, name: tag, destination: { repository: `r-${tag}`, tag: 'v', name: tag } }));
    for (const ahead of [0, 8]) {
      const seen: string[] = [];
      const consume = (async (): Promise<void> => {
        for await (const o of copyImagesFrom(jobList, dest, { jobs: 1, ahead }).outcomes) {
          seen.push(o.job.name);
          // Meanwhile the next image is pulled and planned (and, without ahead, nothing else is in flight).
          await new Promise((r) => setTimeout(r, 30));
        }
      })();
      let timer: NodeJS.Timeout | undefined;
      const limit = new Promise<never>((_, reject) => (timer = setTimeout(() => reject(new Error(`ahead ${ahead}: stuck after ${seen.join(' ')}`)), 10_000)));
      try {
        await Promise.race([consume, limit]);
      } finally {
        clearTimeout(timer);
      }
      assert.deepEqual([...seen].sort(), [...TAGS].sort(), `ahead ${ahead}`);
    }
  });
});
