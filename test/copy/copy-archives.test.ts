/**
 * `mirror copy` with OCI layouts and archives: the engine's order for a destination that declares
 * `writeOrder: 'metadata-first'` (every manifest of every image, and of its referrers, before the first blob),
 * `referrers: false`, and a destination's `converted` note.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { copyImagesFrom, type CopyJob, type CopyOutcome } from '../../src/copy/copy.js';
import { MirrorError } from '../../src/errors/index.js';
import { sha256Digest } from '../../src/oci/digest.js';
import type { Descriptor } from '../../src/oci/manifest.js';
import { openLayoutSource } from '../../src/transport/oci-layout/source.js';
import type { BlobBody, DestinationCapabilities, DestinationImage, ImageDestination, ImageSource, PutManifestResult } from '../../src/transport/types.js';
import { buildOciLayout, type BuiltLayout, type LayoutSpec, writeDirectory } from '../../testdata/make-fixtures.js';

const SPEC: LayoutSpec = {
  seed: 'mirror-copy-archives',
  images: [
    {
      ref: 'docker.io/library/multi:1.0',
      platforms: [
        { os: 'linux', arch: 'amd64' },
        { os: 'linux', arch: 'arm64', variant: 'v8' },
      ],
      layers: [{ files: 2, sizeBytes: 4 * 1024 * 1024 }, { files: 2, sizeBytes: 3000 }],
    },
    { ref: 'quay.io/team/small:2.0', layers: [{ files: 2, sizeBytes: 5000 }, { files: 1, sizeBytes: 700 }] },
  ],
};

const hexOf = (d: string): string => d.slice(d.indexOf(':') + 1);

/** addSbom adds an SBOM manifest whose subject is `subject` to a layout directory's index.json (as oras writes it). */
function addSbom(dir: string, subject: { digest: string; size: number; mediaType: string }): string {
  const empty = Buffer.from('{}');
  writeFileSync(join(dir, 'blobs', 'sha256', hexOf(sha256Digest(empty))), empty);
  const sbom = Buffer.from(
    JSON.stringify({
      schemaVersion: 2,
      mediaType: 'application/vnd.oci.image.manifest.v1+json',
      artifactType: 'application/spdx+json',
      config: { mediaType: 'application/vnd.oci.empty.v1+json', digest: sha256Digest(empty), size: 2 },
      layers: [{ mediaType: 'application/vnd.oci.empty.v1+json', digest: sha256Digest(empty), size: 2 }],
      subject: { mediaType: subject.mediaType, digest: subject.digest, size: subject.size },
    }),
  );
  const digest = sha256Digest(sbom);
  writeFileSync(join(dir, 'blobs', 'sha256', hexOf(digest)), sbom);
  const index = JSON.parse(readFileSync(join(dir, 'index.json'), 'utf8')) as { manifests: unknown[] };
  index.manifests.push({ mediaType: 'application/vnd.oci.image.manifest.v1+json', digest, size: sbom.byteLength, artifactType: 'application/spdx+json' });
  writeFileSync(join(dir, 'index.json'), JSON.stringify(index));
  return digest;
}

/** Recorder is a destination that records the engine's calls in order. */
class Recorder implements ImageDestination {
  readonly description = 'recorder';
  readonly blobScope = 'global' as const;
  readonly calls: string[] = [];
  readonly held = new Set<string>();

  constructor(
    readonly capabilities: DestinationCapabilities,
    private readonly options: { converted?: string; failBlob?: string } = {},
  ) {}

  async hasBlob(_r: string, digest: string): Promise<boolean> {
    return this.held.has(digest);
  }
  async mountBlob(): Promise<{ mounted: false }> {
    return { mounted: false };
  }
  async cancelSession(): Promise<void> {}
  async putBlob(_r: string, expected: { digest?: string | undefined; size?: number | undefined }, body: BlobBody): Promise<{ digest: string; size: number }> {
    const digest = expected.digest!;
    this.calls.push(`blob ${digest}`);
    let size = 0;
    if (body.kind === 'stream') for await (const c of body.open()) size += c.byteLength;
    if (digest === this.options.failBlob) throw new MirrorError('DIGEST_MISMATCH', `blob ${digest} does not match`);
    this.held.add(digest);
    return { digest, size };
  }
  async manifestDigest(): Promise<string | undefined> {
    return undefined;
  }
  async putManifest(_i: DestinationImage, reference: string, _b: Uint8Array, _m: string, options: { root?: boolean | undefined }): Promise<PutManifestResult> {
    this.calls.push(`manifest ${reference}${options.root ? ' (root)' : ''}`);
    return options.root && this.options.converted ? { converted: this.options.converted } : {};
  }
  async registerReferrer(_r: string, subject: string, referrer: Descriptor): Promise<void> {
    this.calls.push(`referrer ${referrer.digest} of ${subject}`);
  }
  async commit(): Promise<void> {}
  async close(): Promise<void> {}
}

async function outcomesOf(run: { outcomes: AsyncGenerator<CopyOutcome> }): Promise<CopyOutcome[]> {
  const out: CopyOutcome[] = [];
  for await (const o of run.outcomes) out.push(o);
  return out;
}

describe('copy engine: what a destination declares', () => {
  let work: string;
  let layout: BuiltLayout;
  let dir: string;
  let sbom: string;
  let source: ImageSource;
  let referrerCalls = 0;

  before(async () => {
    work = mkdtempSync(join(tmpdir(), 'mirror-copy-order-'));
    layout = await buildOciLayout({ ...SPEC, images: SPEC.images.map((i) => ({ ...i, layers: i.layers.map((l) => ({ ...l, sizeBytes: Math.min(l.sizeBytes ?? 0, 20_000) })) })) });
    dir = join(work, 'layout');
    await writeDirectory(layout.files, dir);
    const small = layout.images[1]!;
    sbom = addSbom(dir, small);
    const s = await openLayoutSource(dir);
    const referrers = s.referrers.bind(s);
    s.referrers = async (repo: string, digest: string) => {
      referrerCalls++;
      return referrers(repo, digest);
    };
    source = s;
  });
  beforeEach(() => {
    referrerCalls = 0;
  });
  after(() => rmSync(work, { recursive: true, force: true }));

  const jobs = (...refs: string[]): CopyJob[] =>
    refs.map((tag) => ({ source, image: { repository: '', tag }, name: `oci:${dir}:${tag}`, destination: { repository: 'r', tag: `t-${tag}`, name: `dest:${tag}` } }));

  it('metadata-first: every manifest of every image, and its referrers, before the first blob', async () => {
    const dest = new Recorder({ blobScope: 'global', writeOrder: 'metadata-first', parallelBlobWrites: false });
    const outcomes = await outcomesOf(copyImagesFrom(jobs('1.0', '2.0'), dest, { jobs: 2 }));
    assert.deepEqual(outcomes.map((o) => [o.source.split(':').pop(), o.status, o.referrers]).sort(), [['1.0', 'pushed', 0], ['2.0', 'pushed', 1]]);
    const firstBlob = dest.calls.findIndex((c) => c.startsWith('blob '));
    const lastMeta = dest.calls.map((c) => !c.startsWith('blob ')).lastIndexOf(true);
    assert.ok(firstBlob > lastMeta, `metadata before blobs:\n${dest.calls.join('\n')}`);
    assert.ok(dest.calls.includes(`referrer ${sbom} of ${layout.images[1]!.digest}`));
    const manifests = dest.calls.filter((c) => c.startsWith('manifest '));
    assert.deepEqual(manifests.slice(0, 3), [...layout.images[0]!.manifests.map((m) => `manifest ${m.digest}`), 'manifest t-1.0 (root)'], 'children first, the root by its tag last');
    const blobs = new Set(layout.images.flatMap((i) => i.manifests.flatMap((m) => [m.config.digest, ...m.layers.map((l) => l.digest)])));
    blobs.add(sha256Digest('{}'));
    assert.deepEqual(new Set(dest.calls.filter((c) => c.startsWith('blob ')).map((c) => c.slice(5))), blobs);
  });

  it('blobs-first (a registry): each image\'s blobs before its manifests, as before', async () => {
    const dest = new Recorder({ blobScope: 'global', writeOrder: 'blobs-first', parallelBlobWrites: true });
    await outcomesOf(copyImagesFrom(jobs('2.0'), dest, { jobs: 1 }));
    assert.ok(dest.calls[0]!.startsWith('blob '), dest.calls.join('\n'));
    const root = dest.calls.indexOf('manifest t-2.0 (root)');
    assert.ok(dest.calls.slice(0, root).filter((c) => c.startsWith('blob ')).length >= 3);
  });

  it('a destination that cannot hold referrers is not given any (the source is not asked)', async () => {
    const dest = new Recorder({ blobScope: 'global', writeOrder: 'metadata-first', parallelBlobWrites: false, referrers: false });
    const [o] = await outcomesOf(copyImagesFrom(jobs('2.0'), dest, {}));
    assert.equal(o!.status, 'pushed');
    assert.equal(o!.referrers, 0);
    assert.equal(referrerCalls, 0);
    assert.ok(!dest.calls.some((c) => c.includes(sbom)));
  });

  it('a destination\'s note on what it changed joins the outcome', async () => {
    const dest = new Recorder({ blobScope: 'global', writeOrder: 'metadata-first', parallelBlobWrites: false }, { converted: 'layers decompressed' });
    const [o] = await outcomesOf(copyImagesFrom(jobs('1.0'), dest, { platforms: [{ os: 'linux', architecture: 'arm64' }] }));
    assert.match(o!.converted ?? '', /^platform linux\/arm64\/v8 of sha256:\w+ copied alone.*; layers decompressed$/);
  });

  it('metadata-first: a job that fails to plan or to place a blob fails alone', async () => {
    const failBlob = layout.images[1]!.manifests[0]!.layers[0]!.digest;
    const dest = new Recorder({ blobScope: 'global', writeOrder: 'metadata-first', parallelBlobWrites: false }, { failBlob });
    const outcomes = await outcomesOf(copyImagesFrom(jobs('1.0', 'nope', '2.0'), dest, { referrers: false }));
    const by = new Map(outcomes.map((o) => [o.source.split(':').pop(), o]));
    assert.equal(by.get('nope')!.errorCode, 'NOT_FOUND');
    assert.equal(by.get('2.0')!.errorCode, 'DIGEST_MISMATCH');
    assert.equal(by.get('1.0')!.status, 'pushed');
    assert.equal(outcomes[0]!.source.split(':').pop(), 'nope', 'a planning failure is reported before any blob is written');
  });

  it('a dry run against a metadata-first destination writes nothing', async () => {
    const dest = new Recorder({ blobScope: 'global', writeOrder: 'metadata-first', parallelBlobWrites: false });
    const [o] = await outcomesOf(copyImagesFrom(jobs('1.0'), dest, { dryRun: true }));
    assert.equal(o!.status, 'planned');
    assert.deepEqual(dest.calls, []);
  });
});
