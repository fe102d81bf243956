/** The bundle's layout state: names of images, what JSON blobs are, and the messages for bundles laid out wrong. */
import assert from 'node:assert/strict';
import { sha256Digest } from '../../src/oci/digest.js';
import { MediaType } from '../../src/oci/media-types.js';
import { isReferenceName, jsonKind, LayoutState } from '../../src/transport/bundle/layout-state.js';

/** indexOf builds index.json bytes listing the given descriptors. */
function indexOf(manifests: unknown[]): Buffer {
  return Buffer.from(JSON.stringify({ schemaVersion: 2, mediaType: MediaType.OCI_INDEX, manifests }));
}

/** entry is an index.json descriptor of a manifest with the given ref.name. */
function entry(digest: string, refName?: string): Record<string, unknown> {
  return { mediaType: MediaType.OCI_MANIFEST, digest, size: 10, ...(refName === undefined ? {} : { annotations: { 'org.opencontainers.image.ref.name': refName } }) };
}

describe('transport/bundle layout state', () => {
  it('reads manifest.json names as the tar reader gives entries (./ and repeated slashes dropped), and leaves unsafe ones unmatched', () => {
    const s = new LayoutState('save.tar', 'gzip');
    const manifest = [{ Config: './cfg//config.json', RepoTags: ['gcr.io/a/b:1'], Layers: ['./abc//layer.tar', 'def/./layer.tar', '../evil/layer.tar'] }];
    s.setDockerManifest(Buffer.from(JSON.stringify(manifest)));
    assert.equal(s.isDockerLayerName('abc/layer.tar'), true);
    assert.equal(s.isDockerLayerName('def/layer.tar'), true);
    assert.equal(s.isDockerConfigName('cfg/config.json'), true);
    assert.equal(s.isDockerLayerName('evil/layer.tar'), false);
  });

  it('normalizes a ref.name with a "/" or ":" as docker does (skopeo and podman write busybox:latest, lab/app:1.1); a bare tag is no name', () => {
    const d = (n: number): string => sha256Digest(`m${n}`);
    const s = new LayoutState('b.tar', 'gzip');
    s.setIndex(
      indexOf([
        entry(d(1), 'busybox:latest'),
        entry(d(2), 'lab/app:1.1'),
        entry(d(3), 'localhost/lab/app:1.1'),
        entry(d(4), 'gcr.io/x/y:2'),
        entry(d(5), '1.0'),
        entry(d(6), d(6)),
        entry(d(7), 'lab/app'),
      ]),
    );
    const names = s.ociImages().map((i) => (i.reference ? `${i.reference.registry}/${i.reference.repository}:${i.reference.tag ?? ''}` : undefined));
    assert.deepEqual(names, [
      'docker.io/library/busybox:latest',
      'docker.io/lab/app:1.1',
      'localhost/lab/app:1.1',
      'gcr.io/x/y:2',
      undefined,
      undefined,
      'docker.io/lab/app:latest',
    ]);
    assert.match(s.ociImages()[4]?.error?.message ?? '', /has only the name "1.0", not a full image reference; name it in full: .* \(skopeo copy \.\.\. oci:DIR:HOST\/REPO:TAG\)$/);
    assert.equal(isReferenceName('1.0'), false);
    assert.equal(isReferenceName('v1.2.3-rc.1'), false);
    assert.equal(isReferenceName('busybox:latest'), true);
  });

  it('names an artifact listed by digest alone after its subject, once its manifest has been read', () => {
    const image = Buffer.from(JSON.stringify({ schemaVersion: 2, mediaType: MediaType.OCI_MANIFEST, config: { mediaType: MediaType.OCI_CONFIG, digest: sha256Digest('c'), size: 1 }, layers: [] }));
    const imageDigest = sha256Digest(image);
    const sbom = Buffer.from(
      JSON.stringify({
        schemaVersion: 2,
        mediaType: MediaType.OCI_MANIFEST,
        artifactType: 'application/spdx+json',
        config: { mediaType: MediaType.OCI_EMPTY, digest: sha256Digest('{}'), size: 2 },
        layers: [{ mediaType: 'application/spdx+json', digest: sha256Digest('sbom'), size: 4 }],
        subject: { mediaType: MediaType.OCI_MANIFEST, digest: imageDigest, size: image.byteLength },
      }),
    );
    const sbomDigest = sha256Digest(sbom);
    const sig = Buffer.from(
      JSON.stringify({
        schemaVersion: 2,
        mediaType: MediaType.OCI_MANIFEST,
        config: { mediaType: MediaType.OCI_EMPTY, digest: sha256Digest('{}'), size: 2 },
        layers: [],
        subject: { mediaType: MediaType.OCI_MANIFEST, digest: sbomDigest, size: sbom.byteLength },
      }),
    );
    const sigDigest = sha256Digest(sig);
    const s = new LayoutState('b.tar', 'gzip');
    s.setIndex(
      indexOf([
        { mediaType: MediaType.OCI_MANIFEST, digest: sigDigest, size: sig.byteLength },
        { mediaType: MediaType.OCI_MANIFEST, digest: sbomDigest, size: sbom.byteLength, artifactType: 'application/spdx+json' },
        { ...entry(imageDigest), size: image.byteLength, annotations: { 'io.containerd.image.name': 'gcr.io/team/app:2.0' } },
      ]),
    );
    assert.equal(s.ociImages()[1]?.reference, undefined, 'not named before its manifest is read');
    s.addSmall(sbomDigest, sbom);
    s.addSmall(sigDigest, sig);
    const [a, b] = s.ociImages();
    assert.deepEqual(b?.reference, { registry: 'gcr.io', repository: 'team/app', digest: sbomDigest });
    assert.deepEqual(a?.reference, { registry: 'gcr.io', repository: 'team/app', digest: sigDigest }, 'a signature of the SBOM follows the chain');
    assert.equal(b?.name, `gcr.io/team/app@${sbomDigest}`);
  });

  it('keeps manifests and image configs as metadata, and sends JSON layers (SBOMs) as blobs', () => {
    const sbom = Buffer.from(JSON.stringify({ spdxVersion: 'SPDX-2.3', packages: [{ name: 'rootfs' }] }));
    const config = Buffer.from(JSON.stringify({ architecture: 'amd64', os: 'linux', rootfs: { type: 'layers', diff_ids: [] } }));
    const manifest = Buffer.from(JSON.stringify({ schemaVersion: 2, config: { mediaType: MediaType.OCI_CONFIG, digest: sha256Digest(config), size: config.byteLength }, layers: [{ mediaType: 'application/vnd.oci.image.config.v1+json', digest: sha256Digest('x'), size: 1 }] }));
    assert.equal(jsonKind(sbom), 'other');
    assert.equal(jsonKind(config), 'config');
    assert.equal(jsonKind(manifest), 'manifest');
    assert.equal(jsonKind(Buffer.from('{"schemaVersion": 2, broken')), 'manifest', 'unparsable but naming a schemaVersion: kept, so its error stays precise');
    const s = new LayoutState('b.tar', 'gzip');
    assert.equal(s.keepsAsMetadata(sha256Digest(sbom), sbom), false);
    assert.equal(s.keepsAsMetadata(sha256Digest(config), config), true);
    // Once a manifest names it as a layer, even an image-config-like JSON blob is a layer.
    s.addSmall(sha256Digest(manifest), manifest);
    const layerLike = Buffer.from('{"rootfs":{}}');
    assert.equal(s.keepsAsMetadata(sha256Digest('x'), layerLike), false);
    assert.equal(s.keepsAsMetadata(sha256Digest(config), Buffer.from('{}')), true, 'named as a config: kept');
  });

  it('refuses a layout in a subfolder as soon as its index.json shows, naming the folder and the fix', () => {
    const s = new LayoutState('b.tar', 'gzip');
    s.noteEntry('mylayout/blobs/sha256/aa');
    assert.throws(() => s.noteEntry('mylayout/index.json'), /b\.tar holds an OCI image layout in the folder mylayout\/ \(mylayout\/index\.json\).*tar -C mylayout -cf bundle\.tar \./);
    const d = new LayoutState('/data/parent', 'gzip', { kind: 'directory' });
    assert.throws(() => d.noteEntry('a/b/oci-layout'), /use --source \/data\/parent\/a\/b$/);
    const mixed = new LayoutState('m.tar', 'gzip');
    mixed.noteEntry('README');
    mixed.noteEntry('x/index.json');
    assert.throws(() => mixed.catalog(), /m\.tar holds an OCI image layout in the folder x\//);
  });

  it('names a podman/skopeo "dir:" image (one manifest, no name) for what it is', () => {
    const s = new LayoutState('pod-dd', 'gzip', { kind: 'directory' });
    const m = { schemaVersion: 2, mediaType: MediaType.DOCKER_MANIFEST, config: { mediaType: MediaType.DOCKER_CONFIG, digest: sha256Digest('c'), size: 1 }, layers: [] };
    assert.throws(() => s.setDockerManifest(Buffer.from(JSON.stringify(m))), /pod-dd is a "dir:" image \(podman save --format docker-dir, skopeo copy \.\.\. dir:DIR\).*\(mirror copy dir:DIR docker:\/\/HOST\/REPO:TAG\), or save it with podman save --format oci-archive/);
  });
});
