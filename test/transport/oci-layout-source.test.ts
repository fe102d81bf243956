/**
 * The OCI layout source (`oci:DIR[:REF]`): which entry a REF selects (skopeo's ref.name rule, full references against
 * containerd's name, digests, positions, the only image), manifests verified (sha256 and sha512), blobs opened at an
 * offset, missing blobs named, symlinks out of DIR refused, referrers found in index.json.
 */
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, symlinkSync, unlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { openLayoutSource, type LayoutSource } from '../../src/transport/oci-layout/source.js';
import { buildOciLayout, type BuiltLayout, writeDirectory } from '../../testdata/make-fixtures.js';
import { collect, rejectsWith } from '../helpers/source.js';

const SPEC = {
  seed: 'layout-source',
  images: [
    { ref: 'docker.io/library/multi:1.0', platforms: [{ os: 'linux', arch: 'amd64' }, { os: 'linux', arch: 'arm64', variant: 'v8' }], layers: [{ files: 2, sizeBytes: 300_000 }] },
    { ref: 'quay.io/team/small:2.0', layers: [{ files: 1, sizeBytes: 3000 }] },
  ],
};

function hexOf(digest: string): string {
  return digest.slice(digest.indexOf(':') + 1);
}

describe('OCI layout source', () => {
  let work: string;
  let built: BuiltLayout;
  let dir: string;
  let source: LayoutSource;

  before(async () => {
    work = mkdtempSync(join(tmpdir(), 'mirror-layout-src-'));
    built = await buildOciLayout(SPEC);
  });
  beforeEach(async () => {
    dir = join(work, `l-${Math.random().toString(16).slice(2)}`);
    await writeDirectory(built.files, dir);
    source = await openLayoutSource(dir);
  });
  after(() => rmSync(work, { recursive: true, force: true }));

  const multi = (): BuiltLayout['images'][number] => built.images[0]!;
  const small = (): BuiltLayout['images'][number] => built.images[1]!;

  it('REF selects by org.opencontainers.image.ref.name, as skopeo does', async () => {
    assert.equal((await source.resolve({ repository: '', tag: '1.0' })).digest, multi().digest);
    assert.equal((await source.resolve({ repository: '', tag: '2.0' })).digest, small().digest);
  });

  it('a full reference matches io.containerd.image.name (normalized), a digest and a position select too', async () => {
    assert.equal((await source.resolve({ repository: '', tag: 'quay.io/team/small:2.0' })).digest, small().digest);
    assert.equal((await source.resolve({ repository: '', tag: 'multi:1.0' })).digest, multi().digest, 'docker.io/library/ is implied');
    assert.equal((await source.resolve({ repository: '', digest: small().digest })).digest, small().digest);
    const child = multi().manifests[1]!;
    const byChild = await source.resolve({ repository: '', digest: child.digest });
    assert.equal(byChild.digest, child.digest);
    assert.equal(byChild.mediaType, child.mediaType);
    assert.equal((await source.resolve({ repository: '', tag: '@1' })).digest, small().digest);
  });

  it('a ref.name written as a reference (podman: busybox:latest) matches its normalized form', async () => {
    const index = JSON.parse(readFileSync(join(dir, 'index.json'), 'utf8')) as { manifests: Array<{ annotations: Record<string, string> }> };
    index.manifests[1]!.annotations = { 'org.opencontainers.image.ref.name': 'team/small:2.0' };
    writeFileSync(join(dir, 'index.json'), JSON.stringify(index));
    const s = await openLayoutSource(dir);
    assert.equal((await s.resolve({ repository: '', tag: 'docker.io/team/small:2.0' })).digest, small().digest);
    assert.equal((await s.resolve({ repository: '', tag: 'team/small:2.0' })).digest, small().digest);
  });

  it('without REF: the only image, or a usage error listing the names; unknown names list what there is', async () => {
    await rejectsWith(source.resolve({ repository: '' }), 'USAGE', /holds 2 images.*1\.0, 2\.0/);
    await rejectsWith(source.resolve({ repository: '', tag: '3.0' }), 'NOT_FOUND', /no image named "3\.0".*1\.0, 2\.0/);
    const one = join(work, 'one');
    const files = new Map(built.files);
    const index = JSON.parse(files.get('index.json')!.toString()) as { manifests: unknown[] };
    files.set('index.json', Buffer.from(JSON.stringify({ ...index, manifests: index.manifests.slice(1) })));
    await writeDirectory(files, one);
    assert.equal((await (await openLayoutSource(one)).resolve({ repository: '' })).digest, small().digest);
  });

  it('two entries with one name and different digests are refused', async () => {
    const index = JSON.parse(readFileSync(join(dir, 'index.json'), 'utf8')) as { manifests: Array<{ annotations: Record<string, string> }> };
    index.manifests[1]!.annotations['org.opencontainers.image.ref.name'] = '1.0';
    writeFileSync(join(dir, 'index.json'), JSON.stringify(index));
    await rejectsWith((await openLayoutSource(dir)).resolve({ repository: '', tag: '1.0' }), 'BAD_INPUT', /names 2 different images/);
  });

  it('manifests are verified against their digest', async () => {
    const m = await source.manifest('', small().digest);
    assert.equal(createHash('sha256').update(m.bytes).digest('hex'), hexOf(small().digest));
    const path = join(dir, 'blobs', 'sha256', hexOf(small().digest));
    const text = readFileSync(path, 'utf8');
    writeFileSync(path, text.replace('"schemaVersion":2', '"schemaVersion": 2'));
    await rejectsWith(source.manifest('', small().digest), 'DIGEST_MISMATCH', /does not match/);
  });

  it('sha512 manifests are verified as sha512', async () => {
    const bytes = readFileSync(join(dir, 'blobs', 'sha256', hexOf(small().digest)));
    const hex = createHash('sha512').update(bytes).digest('hex');
    mkdirSync(join(dir, 'blobs', 'sha512'), { recursive: true });
    writeFileSync(join(dir, 'blobs', 'sha512', hex), bytes);
    const m = await source.manifest('', `sha512:${hex}`);
    assert.ok(Buffer.from(m.bytes).equals(bytes));
    writeFileSync(join(dir, 'blobs', 'sha512', hex), Buffer.concat([bytes, Buffer.from(' ')]));
    await rejectsWith(source.manifest('', `sha512:${hex}`), 'DIGEST_MISMATCH', /sha512/);
  });

  it('opens a blob at an offset; a missing blob is BAD_INPUT naming its file', async () => {
    const layer = multi().manifests[0]!.layers[0]!;
    const whole = readFileSync(join(dir, 'blobs', 'sha256', hexOf(layer.digest)));
    const tail = await collect(await source.openBlob('', { mediaType: layer.mediaType, digest: layer.digest, size: layer.size }, { offset: 1000 }));
    assert.ok(tail.equals(whole.subarray(1000)));
    unlinkSync(join(dir, 'blobs', 'sha256', hexOf(layer.digest)));
    await rejectsWith(source.openBlob('', { mediaType: layer.mediaType, digest: layer.digest, size: layer.size }, {}), 'BAD_INPUT', new RegExp(`missing.*blobs/sha256/${hexOf(layer.digest)}`));
  });

  it('refuses a symlink that leads out of the layout; a symlink inside it is followed', async () => {
    const outside = join(work, 'outside-secret');
    const layer = multi().manifests[0]!.layers[0]!;
    const blob = join(dir, 'blobs', 'sha256', hexOf(layer.digest));
    const bytes = readFileSync(blob);
    writeFileSync(outside, bytes);
    unlinkSync(blob);
    symlinkSync(outside, blob);
    await rejectsWith(source.openBlob('', { mediaType: layer.mediaType, digest: layer.digest, size: layer.size }, {}), 'UNSAFE_ENTRY', /leads out of the layout/);
    unlinkSync(blob);
    writeFileSync(join(dir, 'inside'), bytes);
    symlinkSync('../../inside', blob);
    assert.ok((await collect(await source.openBlob('', { mediaType: layer.mediaType, digest: layer.digest, size: layer.size }, {}))).equals(bytes));
    // index.json itself
    const evil = join(work, `evil-${Math.random()}`);
    await writeDirectory(built.files, evil);
    writeFileSync(join(work, 'index-outside.json'), readFileSync(join(evil, 'index.json')));
    unlinkSync(join(evil, 'index.json'));
    symlinkSync(join(work, 'index-outside.json'), join(evil, 'index.json'));
    await rejectsWith(openLayoutSource(evil), 'UNSAFE_ENTRY', /index\.json leads out/);
  });

  it('a directory that is not a layout, or no directory at all, is BAD_INPUT naming it', async () => {
    const empty = join(work, 'empty');
    mkdirSync(empty, { recursive: true });
    await rejectsWith(openLayoutSource(empty), 'BAD_INPUT', /is not an OCI image layout: it has no index\.json and no oci-layout/);
    await rejectsWith(openLayoutSource(join(work, 'nope')), 'BAD_INPUT', /no such directory/);
    writeFileSync(join(empty, 'oci-layout'), '{"imageLayoutVersion":"2.0.0"}');
    writeFileSync(join(empty, 'index.json'), '{"schemaVersion":2,"manifests":[]}');
    await rejectsWith(openLayoutSource(empty), 'UNSUPPORTED', /version "2\.0\.0"/);
  });

  it('finds referrers listed in index.json (by subject) and cosign-style tags', async () => {
    const subject = small();
    const sbom = Buffer.from(JSON.stringify({
      schemaVersion: 2,
      mediaType: 'application/vnd.oci.image.manifest.v1+json',
      artifactType: 'application/spdx+json',
      config: { mediaType: 'application/vnd.oci.empty.v1+json', digest: 'sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a', size: 2 },
      layers: [],
      subject: { mediaType: subject.mediaType, digest: subject.digest, size: subject.size },
    }));
    const sbomDigest = `sha256:${createHash('sha256').update(sbom).digest('hex')}`;
    writeFileSync(join(dir, 'blobs', 'sha256', hexOf(sbomDigest)), sbom);
    const index = JSON.parse(readFileSync(join(dir, 'index.json'), 'utf8')) as { manifests: unknown[] };
    index.manifests.push({ mediaType: 'application/vnd.oci.image.manifest.v1+json', digest: sbomDigest, size: sbom.byteLength, artifactType: 'application/spdx+json' });
    index.manifests.push({ mediaType: 'application/vnd.oci.image.manifest.v1+json', digest: sbomDigest, size: sbom.byteLength, annotations: { 'org.opencontainers.image.ref.name': `sha256-${hexOf(subject.digest)}.sig` } });
    writeFileSync(join(dir, 'index.json'), JSON.stringify(index));
    const s = await openLayoutSource(dir);
    const found = await s.referrers('', subject.digest);
    assert.deepEqual(found.map((r) => [r.via, r.descriptor.digest, r.tag]).sort(), [
      ['subject', sbomDigest, undefined],
      ['tag', sbomDigest, `sha256-${hexOf(subject.digest)}.sig`],
    ].sort());
    assert.deepEqual((await s.referrers('', subject.digest, { tagged: false })).map((r) => r.via), ['subject']);
    assert.deepEqual(await s.referrers('', multi().digest), []);
  });
});
