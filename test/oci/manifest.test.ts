/** parseManifest: which media type a manifest is kept under. */
import assert from 'node:assert/strict';
import { MediaType } from '../../src/oci/media-types.js';
import { layersAgainstConfig, parseManifest } from '../../src/oci/manifest.js';

const d = (mediaType: string, n: number): object => ({ mediaType, digest: `sha256:${String(n).repeat(64).slice(0, 64)}`, size: 10 });
const bytes = (v: object): Buffer => Buffer.from(JSON.stringify(v));

describe('oci/manifest parseManifest media type', () => {

  it('a declared type that is no manifest\'s (text/plain) gives way to the field, else to the structure', () => {
    const withField = bytes({ schemaVersion: 2, mediaType: MediaType.DOCKER_MANIFEST, config: d(MediaType.DOCKER_CONFIG, 1), layers: [] });
    assert.equal(parseManifest(withField, 'text/plain').mediaType, MediaType.DOCKER_MANIFEST);
    const oci = bytes({ schemaVersion: 2, config: d(MediaType.OCI_CONFIG, 1), layers: [d(MediaType.OCI_LAYER_GZIP, 2)] });
    assert.equal(parseManifest(oci, 'text/plain').mediaType, MediaType.OCI_MANIFEST);
    const docker = bytes({ schemaVersion: 2, config: d(MediaType.DOCKER_CONFIG, 1), layers: [] });
    assert.equal(parseManifest(docker, 'application/octet-stream').mediaType, MediaType.DOCKER_MANIFEST);
    const index = bytes({ schemaVersion: 2, manifests: [d(MediaType.OCI_MANIFEST, 3)] });
    const parsed = parseManifest(index, 'text/plain');
    assert.equal(parsed.kind, 'index');
    assert.equal(parsed.mediaType, MediaType.OCI_INDEX);
  });

  it('a field that is no manifest\'s type is not kept either', () => {
    const m = bytes({ schemaVersion: 2, mediaType: 'text/html', config: d(MediaType.OCI_CONFIG, 1), layers: [] });
    assert.equal(parseManifest(m, undefined).mediaType, MediaType.OCI_MANIFEST);
  });
});

describe('parseManifest: which media type', () => {
  it("the manifest's own mediaType field wins over a declared type that contradicts it (a registry's Content-Type)", () => {
    const m = bytes({ schemaVersion: 2, mediaType: MediaType.OCI_MANIFEST, config: d(MediaType.OCI_CONFIG, 1), layers: [] });
    assert.equal(parseManifest(m, MediaType.DOCKER_MANIFEST).mediaType, MediaType.OCI_MANIFEST);
    const noField = bytes({ schemaVersion: 2, config: d(MediaType.OCI_CONFIG, 1), layers: [] });
    assert.equal(parseManifest(noField, MediaType.DOCKER_MANIFEST).mediaType, MediaType.DOCKER_MANIFEST, 'without a field, the declared type');
  });
});

describe('layersAgainstConfig', () => {
  const layer = (i: number): { mediaType: string; digest: string; size: number } => ({ mediaType: MediaType.OCI_LAYER, digest: `sha256:${String(i).repeat(64)}`, size: 1 });
  const manifest = (n: number, configType: string = MediaType.OCI_CONFIG) => ({
    schemaVersion: 2,
    config: { mediaType: configType, digest: `sha256:${'c'.repeat(64)}`, size: 1 },
    layers: Array.from({ length: n }, (_, i) => layer(i)),
  });
  const config = (ids: unknown): Uint8Array => Buffer.from(JSON.stringify({ rootfs: { type: 'layers', diff_ids: ids } }));

  it('gives both counts when the manifest lists fewer layers than the config has diff_ids', () => {
    assert.deepEqual(layersAgainstConfig(manifest(0), config(['sha256:a', 'sha256:b'])), { layers: 0, diffIds: 2 });
    assert.deepEqual(layersAgainstConfig(manifest(1, MediaType.DOCKER_CONFIG), config(['sha256:a', 'sha256:b', 'sha256:c'])), { layers: 1, diffIds: 3 });
  });

  it('says nothing when they agree, for more layers (a JSON layer beside them), for an artifact config, for a config not at hand, not JSON, or without diff_ids', () => {
    assert.equal(layersAgainstConfig(manifest(2), config(['sha256:a', 'sha256:b'])), undefined);
    assert.equal(layersAgainstConfig(manifest(3), config(['sha256:a', 'sha256:b'])), undefined);
    assert.equal(layersAgainstConfig(manifest(0, 'application/vnd.example.config+json'), config(['sha256:a'])), undefined);
    assert.equal(layersAgainstConfig(manifest(0), undefined), undefined);
    assert.equal(layersAgainstConfig(manifest(0), Buffer.from('not json')), undefined);
    assert.equal(layersAgainstConfig(manifest(1), Buffer.from('{"rootfs":{}}')), undefined);
  });
});
