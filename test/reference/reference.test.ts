import assert from 'node:assert/strict';
import { MirrorError } from '../../src/errors/index.js';
import { formatReference, isFullReference, parseReference } from '../../src/reference/reference.js';
import { describeTarget, mapReference, mapRepository, parseTarget, registryPathComponent, targetEndpoint } from '../../src/reference/destination.js';

describe('reference', () => {
  describe('parseReference normalizes as docker does', () => {
    const cases: Array<[string, string]> = [
      ['busybox', 'docker.io/library/busybox:latest'],
      ['busybox:1.36', 'docker.io/library/busybox:1.36'],
      ['library/busybox', 'docker.io/library/busybox:latest'],
      ['index.docker.io/library/busybox:1', 'docker.io/library/busybox:1'],
      ['gcr.io/kubernetes-e2e-test-images/nautilus:1.0', 'gcr.io/kubernetes-e2e-test-images/nautilus:1.0'],
      ['localhost:5000/a/b', 'localhost:5000/a/b:latest'],
      ['localhost/a', 'localhost/a:latest'],
      ['172.18.0.20:5000/ns/x:v1', '172.18.0.20:5000/ns/x:v1'],
      [`quay.io/org/x@sha256:${'a'.repeat(64)}`, `quay.io/org/x@sha256:${'a'.repeat(64)}`],
      [`quay.io/org/x:v1@sha256:${'b'.repeat(64)}`, `quay.io/org/x:v1@sha256:${'b'.repeat(64)}`],
    ];
    for (const [input, want] of cases) {
      it(`${input} -> ${want}`, () => assert.equal(formatReference(parseReference(input)), want));
    }
  });

  it('refuses bad references with a USAGE error naming them', () => {
    for (const bad of ['', 'a/UPPER', 'a/b:bad tag', 'x@sha256:zz', 'a//b', 'a/b:']) {
      assert.throws(
        () => parseReference(bad),
        (e: unknown) => e instanceof MirrorError && e.code === 'USAGE' && e.message.includes(`"${bad}"`),
        bad,
      );
    }
  });

  it('tells a full reference from a bare tag or name', () => {
    assert.equal(isFullReference('gcr.io/x/y:1'), true);
    assert.equal(isFullReference('localhost:5000/y'), true);
    assert.equal(isFullReference('1.0'), false);
    assert.equal(isFullReference('library/busybox:1'), false);
  });
});

describe('destination', () => {
  it('reads every --private-registry form', () => {
    const cases: Array<[string, { host: string; namespace: string; scheme: string }]> = [
      ['172.18.0.20:5000', { host: '172.18.0.20:5000', namespace: '', scheme: 'https' }],
      ['172.18.0.20:5000/test-namespace', { host: '172.18.0.20:5000', namespace: 'test-namespace', scheme: 'https' }],
      ['https://172.18.0.20:5000/test-namespace/', { host: '172.18.0.20:5000', namespace: 'test-namespace', scheme: 'https' }],
      ['http://registry.local:5000/a/b', { host: 'registry.local:5000', namespace: 'a/b', scheme: 'http' }],
      ['https://172.18.0.20:5000/v2/test-namespace', { host: '172.18.0.20:5000', namespace: 'test-namespace', scheme: 'https' }],
      ['https://172.18.0.20:5000/v2', { host: '172.18.0.20:5000', namespace: '', scheme: 'https' }],
    ];
    for (const [input, want] of cases) {
      const t = parseTarget(input);
      assert.equal(t.kind, 'registry', input);
      if (t.kind !== 'registry') continue;
      assert.deepEqual({ host: t.host, namespace: t.namespace, scheme: t.scheme }, want, input);
    }
    const plain = parseTarget('10.0.0.5:5000/ns', { plainHttp: true });
    assert.equal(plain.kind === 'registry' && plain.scheme, 'http');
    assert.deepEqual(parseTarget('oci:./out'), { kind: 'oci-layout', path: './out' });
  });

  it('refuses bad targets with a one-line USAGE error', () => {
    for (const bad of ['ftp://x:1/ns', 'host:5000/UPPER', 'oci:', 'https://x:5000/ns --plain']) {
      assert.throws(() => parseTarget(bad), (e: unknown) => e instanceof MirrorError && e.code === 'USAGE' && !e.message.includes('\n'), bad);
    }
    assert.throws(() => parseTarget('https://x:5000/ns', { plainHttp: true }), /conflicts/);
  });

  it('maps as bmctl does: drop the source host, keep the path, prefix the namespace', () => {
    const t = parseTarget('172.18.0.20:5000/test-namespace');
    assert.equal(t.kind, 'registry');
    if (t.kind !== 'registry') return;
    const m = (s: string): string => formatReference(mapReference(parseReference(s), t));
    assert.equal(m('gcr.io/kubernetes-e2e-test-images/nautilus:1.0'), '172.18.0.20:5000/test-namespace/kubernetes-e2e-test-images/nautilus:1.0');
    assert.equal(m('docker.io/library/busybox:1.36'), '172.18.0.20:5000/test-namespace/library/busybox:1.36');
    assert.equal(m('busybox'), '172.18.0.20:5000/test-namespace/library/busybox:latest');
    const root = parseTarget('172.18.0.20:5000');
    if (root.kind === 'registry') assert.equal(formatReference(mapReference(parseReference('gcr.io/a/b:1'), root)), '172.18.0.20:5000/a/b:1');
    assert.equal(describeTarget(parseTarget('http://h:1/ns')), 'http://h:1/ns');
  });

  it('--keep-registry-host keeps the source host as the first component, a port written _PORT', () => {
    const t = parseTarget('172.18.0.20:5000/ns');
    assert.equal(t.kind, 'registry');
    if (t.kind !== 'registry') return;
    const m = (s: string): string => formatReference(mapReference(parseReference(s), t, { keepRegistryHost: true }));
    assert.equal(m('quay.io/team/app:1.0'), '172.18.0.20:5000/ns/quay.io/team/app:1.0');
    assert.equal(m('docker.io/team/app:1.0'), '172.18.0.20:5000/ns/docker.io/team/app:1.0');
    assert.equal(m('busybox'), '172.18.0.20:5000/ns/docker.io/library/busybox:latest');
    assert.equal(m('localhost:5000/x:1'), '172.18.0.20:5000/ns/localhost_5000/x:1');
    assert.equal(m('Registry.Example.com:443/a/b:1'), '172.18.0.20:5000/ns/registry.example.com_443/a/b:1');
    assert.equal(mapRepository(parseReference('10.0.0.5:5000/a'), '', { keepRegistryHost: true }), '10.0.0.5_5000/a');
    // Without the option the host is dropped, as before.
    assert.equal(formatReference(mapReference(parseReference('localhost:5000/x:1'), t)), '172.18.0.20:5000/ns/x:1');
  });

  it('spells every host as one valid path component, distinct hosts distinctly; IPv6 literals have none', () => {
    const hosts = ['quay.io', 'docker.io', 'localhost', 'localhost:5000', 'localhost:5001', '10.0.0.5:5000', 'my-reg.example.com:8443', 'a.b.c'];
    const parts = hosts.map((h) => registryPathComponent(h));
    for (const [i, p] of parts.entries()) assert.ok(p !== undefined && /^[a-z0-9]+(?:(?:\.|_|__|-+)[a-z0-9]+)*$/.test(p), `${hosts[i]!} -> ${String(p)}`);
    assert.equal(new Set(parts).size, hosts.length, 'no two hosts share a component');
    assert.equal(registryPathComponent('[::1]:5000'), undefined);
    assert.throws(
      () => mapRepository(parseReference('[::1]:5000/x:1'), 'ns', { keepRegistryHost: true }),
      (e: unknown) => e instanceof MirrorError && e.code === 'BAD_INPUT' && e.message.includes('[::1]:5000'),
    );
  });

  it('gives the target as data (scheme, host, namespace; or the layout path)', () => {
    assert.deepEqual(targetEndpoint(parseTarget('https://r.local:5000/v2/mirror')), { kind: 'registry', scheme: 'https', host: 'r.local:5000', namespace: 'mirror' });
    assert.deepEqual(targetEndpoint(parseTarget('10.0.0.5:5000', { plainHttp: true })), { kind: 'registry', scheme: 'http', host: '10.0.0.5:5000', namespace: '' });
    assert.deepEqual(targetEndpoint(parseTarget('oci:./out')), { kind: 'oci-layout', path: './out' });
  });
});
