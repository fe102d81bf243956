/**
 * `mirror config` against the real consumers: images pushed by `mirror push` into a namespace of a real
 * docker-registry (plain HTTP, and TLS with a CA of the test's own) are pulled by their *original* names
 * (`gcr.io/...`, `docker.io/library/...`, `quay.io/...`) through the generated files:
 * - containerd (Debian's, started here with its own root, state and socket) with `ctr images pull --hosts-dir`;
 * - skopeo with `--registries-conf`, podman (vfs storage) with `CONTAINERS_REGISTRIES_CONF`.
 * Every consumer runs with HTTPS_PROXY/HTTP_PROXY set to a recording proxy that refuses everything: a request for
 * an original host (the fallback) shows there, the mirror on 127.0.0.1 never does (Go does not proxy loopback).
 * With --no-fallback, nothing reaches the proxy, even for an image the mirror lacks. containerd and podman need
 * root here (their tests are skipped without it); skopeo runs as anyone.
 */
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describeFixture, type FixtureDescription } from '../../testdata/make-fixtures.js';
import { makeCerts, type TestCerts } from '../helpers/certs.js';
import { runCli } from '../helpers/cli.js';
import { startConnectProxy, type ConnectProxy } from '../helpers/connect-proxy.js';
import { stopAll } from '../helpers/proc.js';
import { startRegistry, type TestRegistry } from '../helpers/registry.js';
import { type Containerd, isRoot, makePodman, type Podman, proxyEnv, skopeo, startContainerd } from '../mirrorconfig/consumers.js';

const DEMO_BUNDLE = join(dirname(fileURLToPath(import.meta.url)), '..', '..', '..', 'testdata', 'bundles', 'demo.tar.xz');

/** MISSING is an image of a mirrored registry that the mirror does not hold. */
const MISSING = 'gcr.io/kubernetes-e2e-test-images/not-mirrored:1.0';

describe('mirror config: containerd, skopeo and podman pull by original names through the generated files', function () {
  this.timeout(300_000);
  let work: string;
  let plain: TestRegistry;
  let tls: TestRegistry;
  let certs: TestCerts;
  let containerd: Containerd | undefined;
  let podman: Podman | undefined;
  let proxy: ConnectProxy;
  let demo: FixtureDescription;
  let plainReport: string;
  let tlsReport: string;
  let n = 0;

  before(async () => {
    work = await mkdtemp(join(tmpdir(), 'mirror-config-consumers-'));
    certs = await makeCerts();
    plain = await startRegistry();
    tls = await startRegistry({ tls: { certFile: certs.server.certFile, keyFile: certs.server.keyFile } });
    demo = await describeFixture();
    plainReport = join(work, 'plain.json');
    tlsReport = join(work, 'tls.json');
    const a = await runCli(['push', '-s', DEMO_BUNDLE, '-r', `http://${plain.host}/ns`, '--report', plainReport]);
    assert.equal(a.code, 0, a.stderr);
    const b = await runCli(['push', '-s', DEMO_BUNDLE, '-r', `https://${tls.host}/team/mirror`, '--cacert', certs.ca.certFile, '--report', tlsReport]);
    assert.equal(b.code, 0, b.stderr);
    proxy = await startConnectProxy();
    // containerd's snapshotter, and podman without a subuid setup, need root; skopeo does not.
    if (isRoot()) {
      containerd = await startContainerd();
      podman = await makePodman();
    }
  });

  after(async () => {
    await containerd?.stop();
    await podman?.cleanup();
    await proxy?.stop();
    await plain?.stop();
    await tls?.stop();
    await stopAll();
    if (work) await rm(work, { recursive: true, force: true });
    if (certs) await rm(certs.dir, { recursive: true, force: true });
  });

  beforeEach(() => proxy?.reset());

  /** attempted lists every host:port a consumer asked the proxy for (it refuses all of them). */
  function attempted(): string[] {
    return [...new Set(proxy.log.map((e) => e.target))];
  }

  /** config runs `mirror config ARGS --output DIR` and gives DIR. */
  async function config(...args: string[]): Promise<string> {
    const out = join(work, `out-${++n}`);
    const r = await runCli(['config', ...args, '--output', out]);
    assert.equal(r.code, 0, r.stderr);
    return out;
  }

  /** names are the demo images by their original names. */
  function names(): string[] {
    return Object.keys(demo.images).sort();
  }

  /** sha256 of bytes, as a digest. */
  function digestOf(text: string): string {
    return `sha256:${createHash('sha256').update(text, 'utf8').digest('hex')}`;
  }

  /** ctrDigests lists the images containerd holds: name -> digest. */
  async function ctrDigests(): Promise<Map<string, string>> {
    const r = await containerd!.ctr(['images', 'ls']);
    assert.equal(r.code, 0, r.stderr);
    const out = new Map<string, string>();
    for (const line of r.stdout.split('\n').slice(1)) {
      const [ref, , digest] = line.trim().split(/\s+/);
      if (ref && digest) out.set(ref, digest);
    }
    return out;
  }

  async function ctrRemoveAll(): Promise<void> {
    const held = [...(await ctrDigests()).keys()];
    if (held.length > 0) await containerd!.ctr(['images', 'rm', ...held]);
  }

  describe('containerd (ctr images pull --hosts-dir)', () => {
    beforeEach(function () {
      if (containerd === undefined) this.skip();
    });

    it('pulls every image by its original name from the namespace endpoint; nothing reaches the original hosts', async () => {
      await ctrRemoveAll();
      const out = await config('containerd', '--from-report', plainReport);
      for (const name of names()) {
        const r = await containerd!.ctr(['images', 'pull', '--hosts-dir', join(out, 'certs.d'), name], proxyEnv(proxy.url));
        assert.equal(r.code, 0, `${name}: ${r.stderr}`);
      }
      const held = await ctrDigests();
      for (const name of names()) assert.equal(held.get(name), demo.images[name]!.digest, `${name} has the bundle's digest`);
      assert.deepEqual(attempted(), [], 'no request for an original host');
    });

    it('TLS: pulls from the https mirror with the generated CA settings, and cannot without them; --insecure gives skip_verify', async () => {
      await ctrRemoveAll();
      const name = 'gcr.io/kubernetes-e2e-test-images/nautilus:1.0';
      const without = await config('containerd', '--from-report', tlsReport);
      const refused = await containerd!.ctr(['images', 'pull', '--hosts-dir', join(without, 'certs.d'), name], proxyEnv(proxy.url));
      assert.notEqual(refused.code, 0, 'an unknown CA is refused');
      assert.match(refused.stderr, /x509|certificate/);
      assert.deepEqual(attempted(), ['gcr.io:443'], 'then containerd fell back to the source');
      proxy.reset();
      const withCa = await config('containerd', '--from-report', tlsReport, '--cacert', certs.ca.certFile);
      for (const n2 of names()) {
        const r = await containerd!.ctr(['images', 'pull', '--hosts-dir', join(withCa, 'certs.d'), n2], proxyEnv(proxy.url));
        assert.equal(r.code, 0, `${n2}: ${r.stderr}`);
      }
      assert.equal((await ctrDigests()).get(name), demo.images[name]!.digest);
      // The mirror's own name works too (certs.d/HOST:PORT/hosts.toml with the same CA).
      const direct = await containerd!.ctr(['images', 'pull', '--hosts-dir', join(withCa, 'certs.d'), `${tls.host}/team/mirror/kubernetes-e2e-test-images/nautilus:1.0`]);
      assert.equal(direct.code, 0, direct.stderr);
      await ctrRemoveAll();
      const insecure = await config('containerd', '--from-report', tlsReport, '--insecure');
      const r = await containerd!.ctr(['images', 'pull', '--hosts-dir', join(insecure, 'certs.d'), name], proxyEnv(proxy.url));
      assert.equal(r.code, 0, r.stderr);
      assert.deepEqual(attempted(), []);
    });

    it('mutual TLS: the generated client pair gets ctr (and skopeo, from certs.d) into a registry that wants a client certificate', async () => {
      const mtlsCerts = await makeCerts({ client: true });
      const mtls = await startRegistry({ tls: { certFile: mtlsCerts.server.certFile, keyFile: mtlsCerts.server.keyFile, clientCaFiles: [mtlsCerts.clientCa!.certFile] } });
      try {
        const mtlsReport = join(work, 'mtls.json');
        const tlsFlags = ['--cacert', mtlsCerts.ca.certFile, '--cert', mtlsCerts.client!.certFile, '--key', mtlsCerts.client!.keyFile];
        const p = await runCli(['push', '-s', DEMO_BUNDLE, '-r', `https://${mtls.host}/ns`, ...tlsFlags, '--report', mtlsReport]);
        assert.equal(p.code, 0, p.stderr);
        const name = 'quay.io/mirror-demo/tools:2.0';
        const caOnly = await config('containerd', '--from-report', mtlsReport, '--cacert', mtlsCerts.ca.certFile, '--no-fallback');
        const refused = await containerd!.ctr(['images', 'pull', '--hosts-dir', join(caOnly, 'certs.d'), name], proxyEnv(proxy.url));
        assert.notEqual(refused.code, 0, 'no client certificate, no pull');
        const out = await config('containerd', '--from-report', mtlsReport, ...tlsFlags, '--no-fallback');
        const r = await containerd!.ctr(['images', 'pull', '--hosts-dir', join(out, 'certs.d'), name], proxyEnv(proxy.url));
        assert.equal(r.code, 0, r.stderr);
        const crio = await config('cri-o', '--from-report', mtlsReport, ...tlsFlags);
        const conf = join(crio, 'registries.conf.d', '50-mirror.conf');
        const k = await skopeo(['--registries-conf', conf, 'inspect', '--cert-dir', join(crio, 'certs.d', mtls.host), '--raw', `docker://${name}`], proxyEnv(proxy.url));
        assert.equal(k.code, 0, k.stderr);
        assert.equal(digestOf(k.stdout), demo.images[name]!.digest);
        assert.deepEqual(attempted(), []);
      } finally {
        await mtls.stop();
        await rm(mtlsCerts.dir, { recursive: true, force: true });
      }
    });

    it('fallback kept: an image the mirror lacks is asked of its original host; --no-fallback: never, and mirrored images still pull', async () => {
      const kept = await config('containerd', '--from-report', plainReport);
      const a = await containerd!.ctr(['images', 'pull', '--hosts-dir', join(kept, 'certs.d'), MISSING], proxyEnv(proxy.url));
      assert.notEqual(a.code, 0);
      assert.deepEqual(attempted(), ['gcr.io:443'], 'the fallback went to gcr.io (through the proxy, which refused it)');
      proxy.reset();
      await ctrRemoveAll();
      const air = await config('containerd', '--from-report', plainReport, '--no-fallback');
      const b = await containerd!.ctr(['images', 'pull', '--hosts-dir', join(air, 'certs.d'), MISSING], proxyEnv(proxy.url));
      assert.notEqual(b.code, 0);
      assert.match(b.stderr, /not found/);
      for (const name of names()) {
        const r = await containerd!.ctr(['images', 'pull', '--hosts-dir', join(air, 'certs.d'), name], proxyEnv(proxy.url));
        assert.equal(r.code, 0, `${name}: ${r.stderr}`);
      }
      assert.deepEqual(attempted(), [], 'nothing reached an original host');
    });
  });

  describe('skopeo and podman (registries.conf v2)', () => {
    it('skopeo reads every image by its original name, by tag and by digest (docker.io short form included)', async () => {
      const out = await config('cri-o', '--from-report', plainReport);
      const conf = join(out, 'registries.conf.d', '50-mirror.conf');
      for (const name of [...names(), 'docker.io/busybox:1.36']) {
        const full = name === 'docker.io/busybox:1.36' ? 'docker.io/library/busybox:1.36' : name;
        const r = await skopeo(['--registries-conf', conf, 'inspect', '--raw', `docker://${name}`], proxyEnv(proxy.url));
        assert.equal(r.code, 0, `${name}: ${r.stderr}`);
        assert.equal(digestOf(r.stdout), demo.images[full]!.digest, name);
        const byDigest = await skopeo(['--registries-conf', conf, 'inspect', '--raw', `docker://${full.replace(/:[^:/]+$/, '')}@${demo.images[full]!.digest}`], proxyEnv(proxy.url));
        assert.equal(byDigest.code, 0, byDigest.stderr);
      }
      assert.deepEqual(attempted(), []);
    });

    it('podman pulls every image by its original name (CONTAINERS_REGISTRIES_CONF)', async function () {
      if (podman === undefined) this.skip();
      const out = await config('podman', '--from-report', plainReport);
      const conf = join(out, 'registries.conf.d', '50-mirror.conf');
      for (const name of names()) {
        const r = await podman!.run(['pull', '-q', name], { CONTAINERS_REGISTRIES_CONF: conf, ...proxyEnv(proxy.url) });
        assert.equal(r.code, 0, `${name}: ${r.stderr}`);
      }
      const listed = await podman!.run(['images', '--format', '{{.Repository}}:{{.Tag}}']);
      for (const name of names()) assert.ok(listed.stdout.split('\n').includes(name), `${name} in podman images:\n${listed.stdout}`);
      assert.deepEqual(attempted(), []);
    });

    it('TLS: the CA laid out in certs.d/HOST:PORT is what skopeo and podman need', async () => {
      const out = await config('cri-o', '--from-report', tlsReport, '--cacert', certs.ca.certFile);
      const conf = join(out, 'registries.conf.d', '50-mirror.conf');
      const certDir = join(out, 'certs.d', tls.host);
      const name = 'quay.io/mirror-demo/tools:2.0';
      const refused = await skopeo(['--registries-conf', conf, 'inspect', '--raw', `docker://${name}`], proxyEnv(proxy.url));
      assert.notEqual(refused.code, 0, 'without the CA the mirror is not trusted');
      const r = await skopeo(['--registries-conf', conf, 'inspect', '--cert-dir', certDir, '--raw', `docker://${name}`], proxyEnv(proxy.url));
      assert.equal(r.code, 0, r.stderr);
      assert.equal(digestOf(r.stdout), demo.images[name]!.digest);
      if (podman !== undefined) {
        const p = await podman.run(['pull', '-q', '--cert-dir', certDir, 'docker.io/library/busybox:1.36'], { CONTAINERS_REGISTRIES_CONF: conf, ...proxyEnv(proxy.url) });
        assert.equal(p.code, 0, p.stderr);
      }
    });

    it('fallback kept: a missing image is asked of its original host; --no-fallback blocks it, mirrored images still come', async () => {
      const kept = join(await config('cri-o', '--from-report', plainReport), 'registries.conf.d', '50-mirror.conf');
      const a = await skopeo(['--registries-conf', kept, 'inspect', '--raw', `docker://${MISSING}`], proxyEnv(proxy.url));
      assert.notEqual(a.code, 0);
      assert.deepEqual(attempted(), ['gcr.io:443']);
      proxy.reset();
      const air = join(await config('cri-o', '--from-report', plainReport, '--no-fallback'), 'registries.conf.d', '50-mirror.conf');
      const b = await skopeo(['--registries-conf', air, 'inspect', '--raw', `docker://${MISSING}`], proxyEnv(proxy.url));
      assert.notEqual(b.code, 0);
      assert.match(b.stderr, /blocked/);
      if (podman !== undefined) {
        const c = await podman.run(['pull', '-q', 'docker.io/library/not-mirrored:1'], { CONTAINERS_REGISTRIES_CONF: air, ...proxyEnv(proxy.url) });
        assert.notEqual(c.code, 0);
      }
      for (const name of names()) {
        const r = await skopeo(['--registries-conf', air, 'inspect', '--raw', `docker://${name}`], proxyEnv(proxy.url));
        assert.equal(r.code, 0, `${name}: ${r.stderr}`);
      }
      assert.deepEqual(attempted(), [], 'nothing reached an original host');
    });
  });
});
