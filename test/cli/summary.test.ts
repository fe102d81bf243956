/** What the summary tells a user to do next, and how a bundle listing reads. */
import assert from 'node:assert/strict';
import { dryRunLines, listingLines, mirrorEndpoint, nextStepsLines, platformsOf, sourceRegistries, stagingLine, typeName } from '../../src/cli/summary.js';
import type { CopyResult, ImageOutcome } from '../../src/copy/result.js';
import { parseTarget, type RegistryTarget } from '../../src/reference/index.js';

const D = `sha256:${'c'.repeat(64)}`;

function image(source: string, status: ImageOutcome['status'], over: Partial<ImageOutcome> = {}): ImageOutcome {
  return { source, destination: undefined, digest: D, mediaType: 'application/vnd.oci.image.manifest.v1+json', status, children: [], blobs: 2, size: 2048, ...over };
}

function result(images: ImageOutcome[]): CopyResult {
  return { images, blobs: { uploaded: 0, mounted: 0, skipped: 0, failed: 0, bytesUploaded: 0 }, passes: 1, durationMs: 1000 };
}

describe('cli/summary', () => {
  it('a dry run names a failed image once: a cause that starts with its name is not put after the name again', () => {
    const where = 'index.json manifests[1] (sha256:ab)';
    const r = { ...result([image('gcr.io/a/b:1', 'failed', { error: 'blob sha256:ab is missing' }), image(where, 'failed', { error: `${where} in b.tar has no image name` })]), source: 'b.tar', target: 'reg.local/ns', dryRun: true };
    const lines = dryRunLines(r);
    assert.equal(lines[1], '  gcr.io/a/b:1: cannot be pushed: blob sha256:ab is missing');
    assert.equal(lines[2], `  cannot be pushed: ${where} in b.tar has no image name`);
  });

  it('gives the mirror endpoint containerd, RKE2 and bmctl take: https://HOST:PORT/v2/NAMESPACE, http:// for plain HTTP', () => {
    const t = (s: string, plainHttp = false): RegistryTarget => parseTarget(s, { plainHttp }) as RegistryTarget;
    assert.equal(mirrorEndpoint(t('172.18.0.20:5000/test-namespace')), 'https://172.18.0.20:5000/v2/test-namespace');
    assert.equal(mirrorEndpoint(t('https://reg.local:5000/v2/a/b')), 'https://reg.local:5000/v2/a/b');
    assert.equal(mirrorEndpoint(t('http://10.0.0.5:5000/ns')), 'http://10.0.0.5:5000/v2/ns');
    assert.equal(mirrorEndpoint(t('10.0.0.5:5000/ns', true)), 'http://10.0.0.5:5000/v2/ns');
    assert.equal(mirrorEndpoint(t('reg.local')), 'https://reg.local');
  });

  it('lists the distinct source registries of what landed (docker-style names normalized), not of failures', () => {
    const r = result([
      image('gcr.io/a/b:1.0', 'pushed'),
      image('busybox:1.36', 'skipped'),
      image('docker.io/library/alpine:3', 'pushed'),
      image('quay.io/x/y:1', 'failed'),
      image('index.json manifests[3] (sha256:00)', 'failed'),
      image('registry.k8s.io/pause@' + D, 'pushed'),
    ]);
    assert.deepEqual(sourceRegistries(r.images), ['docker.io', 'gcr.io', 'registry.k8s.io']);
    const lines = nextStepsLines(r, parseTarget('172.18.0.20:5000/ns') as RegistryTarget, { cacert: ['ca.crt'] });
    assert.deepEqual(lines, [
      'next: give containerd, RKE2 or bmctl (registryMirrors) this mirror:',
      '  endpoint: https://172.18.0.20:5000/v2/ns',
      '  hosts:    docker.io, gcr.io, registry.k8s.io',
      '  CA:       ca.crt (the nodes must trust it too)',
    ]);
    assert.deepEqual(nextStepsLines(result([image('a.io/x:1', 'failed')]), parseTarget('r:1/ns') as RegistryTarget), []);
  });

  it('explains the staging repository only when it was used', () => {
    assert.deepEqual(stagingLine('ns/mirror-staging', 0, 0), []);
    const lines = stagingLine('ns/mirror-staging', 5, 37_478);
    assert.equal(lines.length, 2);
    assert.match(lines.join('\n'), /5 blobs \(36\.6 KiB\) came before their images' metadata/);
    assert.match(lines.join('\n'), /ns\/mirror-staging holds no images \(--staging-repository\)/);
  });

  it('lists a bundle: name, digest, media type, size, platforms of an index; failures named', () => {
    assert.deepEqual(platformsOf([
      { digest: D, mediaType: 'x', platform: { os: 'linux', architecture: 'amd64' } },
      { digest: D, mediaType: 'x', platform: { os: 'linux', architecture: 'arm64', variant: 'v8' } },
      { digest: D, mediaType: 'x', platform: { os: 'unknown', architecture: 'unknown' } },
    ]), ['linux/amd64', 'linux/arm64/v8']);
    assert.equal(typeName('application/vnd.docker.distribution.manifest.list.v2+json'), 'Docker manifest list');
    assert.equal(typeName('application/x-other'), 'application/x-other');
    const lines = listingLines({
      ...result([
        image('gcr.io/a/b:1.0', 'planned'),
        image('docker.io/library/busybox:1.36', 'planned', {
          mediaType: 'application/vnd.oci.image.index.v1+json',
          size: 3 * 1024 * 1024,
          children: [{ digest: D, mediaType: 'x', platform: { os: 'linux', architecture: 'amd64' } }],
        }),
        image('quay.io/x/y:1', 'failed', { error: 'manifest sha256:00 is missing from the bundle' }),
      ]),
      source: 'bundle b.tar.xz (xz, OCI layout)',
    });
    assert.deepEqual(lines, [
      'bundle b.tar.xz (xz, OCI layout): 3 images',
      'IMAGE                           DIGEST               TYPE          SIZE      PLATFORMS',
      'gcr.io/a/b:1.0                  sha256:cccccccccccc  OCI manifest  2.00 KiB',
      'docker.io/library/busybox:1.36  sha256:cccccccccccc  OCI index     3.00 MiB  linux/amd64',
      'cannot be pushed: quay.io/x/y:1: manifest sha256:00 is missing from the bundle',
    ]);
  });
});
