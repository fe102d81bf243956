/**
 * Every target's files, field by field, read back by parsers that did not write them (tomllib, PyYAML) and checked
 * against each format's documented schema and the seeds' examples (`../shared/seeds/`): containerd hosts.toml,
 * registries.conf v2, RKE2/K3s registries.yaml, OpenShift IDMS/ITMS/ICSP, bmctl registryMirrors, the pull Secret.
 * Also: the same input gives the same bytes, the layout under --output and each file's mode, and the header comment.
 */
import assert from 'node:assert/strict';
import { mkdtemp, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Credential, CredentialResolver } from '../../src/auth/types.js';
import { MirrorError } from '../../src/errors/index.js';
import type { ProgressEvent } from '../../src/events/index.js';
import { mirrorConfig, type MirrorConfigOptions } from '../../src/mirrorconfig/index.js';
import { IMAGE_MIRROR_PATTERN } from '../../src/mirrorconfig/openshift.js';
import { DEMO, pushReport } from './fixtures.js';
import { parseToml, parseYaml, parseYamlDocuments } from './parse.js';
import { listFiles } from '../helpers/files.js';

const CA = '-----BEGIN CERTIFICATE-----\nMIIBcA==\n-----END CERTIFICATE-----\n';
const CLIENT = '-----BEGIN CERTIFICATE-----\nMIIBcB==\n-----END CERTIFICATE-----\n';
const KEY = '-----BEGIN EC PRIVATE KEY-----\nMHcCAQ==\n-----END EC PRIVATE KEY-----\n';
const USER = 'robot$ci';
const PASSWORD = 'pa:ss "w0rd"\n#x';

/** resolverOf answers the given credentials per host (anonymous for the others). */
function resolverOf(creds: Record<string, Credential>): CredentialResolver {
  return { resolve: async (host) => (creds[host] ? { credential: creds[host]!, source: 'test' } : { credential: { kind: 'anonymous' }, source: 'anonymous' }) };
}


describe('mirrorconfig generators (field by field)', () => {
  let work: string;
  let report: string;
  let ca: string;
  let cert: string;
  let key: string;
  let n = 0;

  before(async () => {
    work = await mkdtemp(join(tmpdir(), 'mirror-config-gen-'));
    report = join(work, 'push.json');
    await writeFile(report, JSON.stringify(pushReport('172.18.0.20:5000', 'test-namespace', DEMO.map((i) => ({ ...i, dest: i.dest.replace(/^ns\//, 'test-namespace/') })))));
    ca = join(work, 'ca.crt');
    cert = join(work, 'client.cert');
    key = join(work, 'client.key');
    await writeFile(ca, CA);
    await writeFile(cert, CLIENT);
    await writeFile(key, KEY);
  });
  after(async () => {
    await rm(work, { recursive: true, force: true });
  });

  async function gen(options: Partial<MirrorConfigOptions> & Pick<MirrorConfigOptions, 'target'>, dir?: boolean) {
    const warnings: string[] = [];
    const output = dir ? join(work, `out-${++n}`) : undefined;
    const result = await mirrorConfig({
      reports: options.mirror === undefined ? [report] : undefined,
      ...options,
      output,
      events: (e: ProgressEvent) => (e.type === 'warning' ? warnings.push(e.message) : undefined),
    });
    const file = (path: string): string => {
      const f = result.files.find((x) => x.path === path);
      assert.ok(f, `${path} generated (have ${result.files.map((x) => x.path).join(', ')})`);
      return String(f.content);
    };
    return { result, warnings, output, file };
  }

  function assertHeader(text: string, path: string, target: string): void {
    const first = text.split('\n')[0] ?? '';
    assert.ok(first.startsWith(`# ${path}: written by \`mirror config ${target}\` from `), first);
    assert.match(text, /Install: /);
  }

  describe('containerd', () => {
    it('hosts.toml per source registry: mirror with override_path and the /v2/NS path, the source as server (docker.io: registry-1)', async () => {
      const { result, file } = await gen({ target: 'containerd' });
      assert.deepEqual(result.files.map((f) => f.path), ['certs.d/docker.io/hosts.toml', 'certs.d/gcr.io/hosts.toml', 'certs.d/quay.io/hosts.toml']);
      for (const [source, server] of [
        ['docker.io', 'https://registry-1.docker.io'],
        ['gcr.io', 'https://gcr.io'],
        ['quay.io', 'https://quay.io'],
      ] as const) {
        const text = file(`certs.d/${source}/hosts.toml`);
        assertHeader(text, `certs.d/${source}/hosts.toml`, 'containerd');
        assert.deepEqual(await parseToml(text), {
          server,
          host: { 'https://172.18.0.20:5000/v2/test-namespace': { capabilities: ['pull', 'resolve'], override_path: true } },
        });
      }
    });

    it('TLS: ca, client pair and skip_verify; copies named relative to the host directory with --output, absolute paths on stdout', async () => {
      const stream = await gen({ target: 'containerd', cacert: ca, cert, key, insecureSkipVerify: true });
      assert.deepEqual(await parseToml(stream.file('certs.d/gcr.io/hosts.toml')), {
        server: 'https://gcr.io',
        host: { 'https://172.18.0.20:5000/v2/test-namespace': { capabilities: ['pull', 'resolve'], override_path: true, ca, client: [[cert, key]], skip_verify: true } },
      });
      // A hosts.toml for the mirror's own name too, with a [host] table (containerd refuses a file without one).
      assert.deepEqual(await parseToml(stream.file('certs.d/172.18.0.20:5000/hosts.toml')), {
        server: 'https://172.18.0.20:5000',
        ca,
        client: [[cert, key]],
        skip_verify: true,
        host: { 'https://172.18.0.20:5000': { ca, client: [[cert, key]], skip_verify: true } },
      });
      assert.deepEqual(stream.result.written, []);
      const dir = await gen({ target: 'containerd', cacert: ca, cert, key }, true);
      assert.deepEqual((await parseToml(dir.file('certs.d/quay.io/hosts.toml'))).host, {
        'https://172.18.0.20:5000/v2/test-namespace': { capabilities: ['pull', 'resolve'], override_path: true, ca: 'mirror-ca.crt', client: [['mirror-client.cert', 'mirror-client.key']] },
      });
      const files = await listFiles(dir.output!);
      assert.deepEqual(files, [
        'certs.d/172.18.0.20:5000/hosts.toml',
        'certs.d/172.18.0.20:5000/mirror-ca.crt',
        'certs.d/172.18.0.20:5000/mirror-client.cert',
        'certs.d/172.18.0.20:5000/mirror-client.key',
        ...['docker.io', 'gcr.io', 'quay.io'].flatMap((h) => [`certs.d/${h}/hosts.toml`, `certs.d/${h}/mirror-ca.crt`, `certs.d/${h}/mirror-client.cert`, `certs.d/${h}/mirror-client.key`]),
      ]);
      assert.equal(await readFile(join(dir.output!, 'certs.d/gcr.io/mirror-ca.crt'), 'utf8'), CA);
      assert.equal((await stat(join(dir.output!, 'certs.d/gcr.io/mirror-client.key'))).mode & 0o777, 0o600);
      assert.equal((await stat(join(dir.output!, 'certs.d/gcr.io/hosts.toml'))).mode & 0o777, 0o644);
    });

    it('--no-fallback: the mirror is also the server, so the source registry is never in the file', async () => {
      const { file } = await gen({ target: 'containerd', fallback: false });
      const text = file('certs.d/gcr.io/hosts.toml');
      assert.doesNotMatch(text.replace(/^#.*$/gm, ''), /gcr\.io/);
      assert.deepEqual(await parseToml(text), {
        server: 'https://172.18.0.20:5000/v2/test-namespace',
        capabilities: ['pull', 'resolve'],
        override_path: true,
        host: { 'https://172.18.0.20:5000/v2/test-namespace': { capabilities: ['pull', 'resolve'], override_path: true } },
      });
    });

    it('plain http mirror at the registry root: http:// host, no override_path, no TLS keys', async () => {
      const { file } = await gen({ target: 'containerd', mirror: 'http://10.0.0.5:5000', sourceRegistries: ['gcr.io'] });
      assert.deepEqual(await parseToml(file('certs.d/gcr.io/hosts.toml')), {
        server: 'https://gcr.io',
        host: { 'http://10.0.0.5:5000': { capabilities: ['pull', 'resolve'] } },
      });
    });
  });

  describe('cri-o (registries.conf v2)', () => {
    it('one [[registry]] per source with a [[registry.mirror]] whose location includes the namespace; blocked with --no-fallback', async () => {
      const { file } = await gen({ target: 'cri-o' });
      const text = file('registries.conf.d/50-mirror.conf');
      assertHeader(text, 'registries.conf.d/50-mirror.conf', 'cri-o');
      const mirror = [{ location: '172.18.0.20:5000/test-namespace' }];
      assert.deepEqual(await parseToml(text), {
        registry: [
          { prefix: 'docker.io', location: 'docker.io', mirror },
          { prefix: 'gcr.io', location: 'gcr.io', mirror },
          { prefix: 'quay.io', location: 'quay.io', mirror },
        ],
      });
      const blocked = await parseToml((await gen({ target: 'cri-o', fallback: false })).file('registries.conf.d/50-mirror.conf'));
      assert.deepEqual(
        (blocked.registry as Array<{ blocked?: boolean }>).map((r) => r.blocked),
        [true, true, true],
      );
    });

    it('insecure for plain http and --insecure; CA and client certificate laid out in certs.d/HOST:PORT with --output', async () => {
      const http = await parseToml((await gen({ target: 'cri-o', mirror: 'http://10.0.0.5:5000/ns', sourceRegistries: ['gcr.io'] })).file('registries.conf.d/50-mirror.conf'));
      assert.deepEqual(http.registry, [{ prefix: 'gcr.io', location: 'gcr.io', mirror: [{ location: '10.0.0.5:5000/ns', insecure: true }] }]);
      const dir = await gen({ target: 'cri-o', cacert: ca, cert, key }, true);
      assert.deepEqual(await listFiles(dir.output!), [
        'certs.d/172.18.0.20:5000/ca.crt',
        'certs.d/172.18.0.20:5000/client.cert',
        'certs.d/172.18.0.20:5000/client.key',
        'registries.conf.d/50-mirror.conf',
      ]);
      assert.equal((await stat(join(dir.output!, 'certs.d/172.18.0.20:5000/client.key'))).mode & 0o777, 0o600);
      const stream = await gen({ target: 'cri-o', cacert: ca });
      assert.match(stream.result.text, new RegExp(`Copy ${ca.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')} to /etc/containers/certs.d/HOST:PORT/ca.crt`));
    });
  });

  describe('rke2 / k3s (registries.yaml)', () => {
    it('mirrors with the endpoint and the rewrite "^(.*)$": "NS/$1"; configs with auth and tls; 0600 with credentials', async () => {
      const { file, result } = await gen(
        { target: 'rke2', cacert: ca, cert, key, credentials: resolverOf({ '172.18.0.20:5000': { kind: 'basic', username: USER, password: PASSWORD } }) },
        true,
      );
      const text = file('registries.yaml');
      assertHeader(text, 'registries.yaml', 'rke2');
      assert.match(text, /\/etc\/rancher\/rke2\/registries\.yaml/);
      const mirror = { endpoint: ['https://172.18.0.20:5000'], rewrite: { '^(.*)$': 'test-namespace/$1' } };
      assert.deepEqual(await parseYaml(text), {
        mirrors: { 'docker.io': mirror, 'gcr.io': mirror, 'quay.io': mirror },
        configs: { '172.18.0.20:5000': { auth: { username: USER, password: PASSWORD }, tls: { ca_file: ca, cert_file: cert, key_file: key } } },
      });
      assert.ok(!text.split('\n').filter((l) => l.startsWith('#')).join('\n').includes(PASSWORD.slice(0, 5)), 'no secret in the header');
      assert.equal((await stat(result.written[0]!)).mode & 0o777, 0o600);
      assert.equal(result.files.length, 1, 'no config.yaml.d without --no-fallback');
    });

    it('k3s: the same file for /etc/rancher/k3s; --no-fallback adds disable-default-registry-endpoint; plain http without tls', async () => {
      const { file, result } = await gen({ target: 'k3s', mirror: 'http://10.0.0.5:5000', sourceRegistries: ['docker.io'], fallback: false }, true);
      assert.match(file('registries.yaml'), /\/etc\/rancher\/k3s\/registries\.yaml/);
      assert.deepEqual(await parseYaml(file('registries.yaml')), { mirrors: { 'docker.io': { endpoint: ['http://10.0.0.5:5000'] } } });
      assert.deepEqual(await parseYaml(file('config.yaml.d/50-mirror.yaml')), { 'disable-default-registry-endpoint': true });
      assert.equal((await stat(result.written[0]!)).mode & 0o777, 0o644, 'no credential, no 0600');
    });

    it('credentials only into the file: on standard output configs.auth is left out, with a warning', async () => {
      const { result, warnings } = await gen({ target: 'rke2', credentials: resolverOf({ '172.18.0.20:5000': { kind: 'basic', username: USER, password: PASSWORD } }) });
      assert.ok(!result.text.includes(PASSWORD) && !result.text.includes(USER), 'no credential printed');
      assert.equal((await parseYaml(result.text)).configs, undefined);
      assert.match(warnings.join('\n'), /configs\.auth for 172\.18\.0\.20:5000 is left out on standard output: write the file with --output DIR/);
    });

    it('identity tokens as identity_token; a bearer token is left out with a warning; two namespaces for one registry are refused', async () => {
      const a = await gen({ target: 'rke2', credentials: resolverOf({ '172.18.0.20:5000': { kind: 'identity-token', token: 'tok' } }) }, true);
      assert.deepEqual((await parseYaml(a.file('registries.yaml'))).configs, { '172.18.0.20:5000': { auth: { identity_token: 'tok' } } });
      const b = await gen({ target: 'rke2', credentials: resolverOf({ '172.18.0.20:5000': { kind: 'registry-token', token: 'tok' } }) }, true);
      assert.equal((await parseYaml(b.file('registries.yaml'))).configs, undefined);
      assert.match(b.warnings.join('\n'), /bearer token/);
      const other = join(work, 'other.json');
      await writeFile(other, JSON.stringify(pushReport('172.18.0.20:5000', 'other', DEMO.map((i) => ({ ...i, dest: `other/${i.repository}` })))));
      await assert.rejects(mirrorConfig({ target: 'rke2', reports: [report, other] }), (e: unknown) => e instanceof MirrorError && /one rewrite per registry/.test(e.message));
    });
  });

  describe('openshift', () => {
    it('ImageDigestMirrorSet and ImageTagMirrorSet: mirrors HOST:PORT/NS per source, valid against the schema patterns; NeverContactSource with --no-fallback', async () => {
      const { result, file } = await gen({ target: 'openshift' });
      assert.deepEqual(result.files.map((f) => f.path), ['imagedigestmirrorset.yaml', 'imagetagmirrorset.yaml']);
      const entries = ['docker.io', 'gcr.io', 'quay.io'].map((source) => ({ mirrors: ['172.18.0.20:5000/test-namespace'], source }));
      assert.deepEqual(await parseYaml(file('imagedigestmirrorset.yaml')), {
        apiVersion: 'config.openshift.io/v1',
        kind: 'ImageDigestMirrorSet',
        metadata: { name: 'mirror' },
        spec: { imageDigestMirrors: entries },
      });
      assert.deepEqual(await parseYaml(file('imagetagmirrorset.yaml')), {
        apiVersion: 'config.openshift.io/v1',
        kind: 'ImageTagMirrorSet',
        metadata: { name: 'mirror' },
        spec: { imageTagMirrors: entries },
      });
      for (const e of entries) {
        assert.match(e.source, IMAGE_MIRROR_PATTERN);
        for (const m of e.mirrors) assert.match(m, IMAGE_MIRROR_PATTERN);
      }
      const never = await gen({ target: 'openshift', fallback: false, name: 'air-gap' });
      const idms = (await parseYaml(never.file('imagedigestmirrorset.yaml'))) as { metadata: { name: string }; spec: { imageDigestMirrors: Array<{ mirrorSourcePolicy: string }> } };
      assert.equal(idms.metadata.name, 'air-gap');
      assert.deepEqual(idms.spec.imageDigestMirrors.map((e) => e.mirrorSourcePolicy), ['NeverContactSource', 'NeverContactSource', 'NeverContactSource']);
      // Standard output: the documents of one stream.
      assert.equal((await parseYamlDocuments(never.result.text)).length, 2);
    });

    it('--legacy-icsp: ImageContentSourcePolicy as in the seed (repositoryDigestMirrors: mirrors, source); a CA ConfigMap keyed host..port', async () => {
      const { result, file, warnings } = await gen({ target: 'openshift', legacyIcsp: true, cacert: ca, fallback: false });
      assert.deepEqual(result.files.map((f) => f.path), ['imagecontentsourcepolicy.yaml', 'registry-ca-configmap.yaml']);
      assert.deepEqual(await parseYaml(file('imagecontentsourcepolicy.yaml')), {
        apiVersion: 'operator.openshift.io/v1alpha1',
        kind: 'ImageContentSourcePolicy',
        metadata: { name: 'mirror' },
        spec: { repositoryDigestMirrors: ['docker.io', 'gcr.io', 'quay.io'].map((source) => ({ mirrors: ['172.18.0.20:5000/test-namespace'], source })) },
      });
      assert.match(warnings.join('\n'), /cannot forbid the source registry/);
      assert.deepEqual(await parseYaml(file('registry-ca-configmap.yaml')), {
        apiVersion: 'v1',
        kind: 'ConfigMap',
        metadata: { name: 'mirror-registry-ca', namespace: 'openshift-config' },
        data: { '172.18.0.20..5000': CA },
      });
    });

    it('refuses a mirror the schema would refuse (an IPv6 literal)', async () => {
      await assert.rejects(
        mirrorConfig({ target: 'openshift', mirror: 'https://[fd00::1]:5000/ns', sourceRegistries: ['gcr.io'] }),
        (e: unknown) => e instanceof MirrorError && e.code === 'BAD_INPUT' && /OpenShift mirror set/.test(e.message),
      );
    });
  });

  describe('bmctl', () => {
    it('registryMirrors: endpoint https://HOST:PORT/v2/NS, caCertPath, pullCredentialConfigPath (a 0600 Docker config), hosts', async () => {
      const creds = resolverOf({ '172.18.0.20:5000': { kind: 'basic', username: USER, password: PASSWORD } });
      const { file, output, result } = await gen({ target: 'bmctl', cacert: ca, credentials: creds }, true);
      assert.deepEqual(result.files.map((f) => [f.path, f.mode]), [
        ['registry-mirrors.yaml', 0o644],
        ['pull-credential-config.json', 0o600],
      ]);
      const text = file('registry-mirrors.yaml');
      assertHeader(text.replace('Paste it', 'Install: paste it'), 'registry-mirrors.yaml', 'bmctl');
      const credentialPath = join(output!, 'pull-credential-config.json');
      assert.deepEqual(await parseYaml(text), {
        registryMirrors: [{ endpoint: 'https://172.18.0.20:5000/v2/test-namespace', caCertPath: ca, pullCredentialConfigPath: credentialPath, hosts: ['docker.io', 'gcr.io', 'quay.io'] }],
      });
      const config = JSON.parse(await readFile(credentialPath, 'utf8')) as unknown;
      assert.deepEqual(config, { auths: { '172.18.0.20:5000': { auth: Buffer.from(`${USER}:${PASSWORD}`).toString('base64'), password: PASSWORD, username: USER } } });
      assert.equal((await stat(credentialPath)).mode & 0o777, 0o600);
    });

    it('the seeds\' example: the registry root is https://HOST:PORT; on stdout the credential file is left out with a warning', async () => {
      const creds = resolverOf({ '172.18.0.20:5000': { kind: 'basic', username: USER, password: PASSWORD } });
      const { file, warnings, result } = await gen({ target: 'bmctl', mirror: 'https://172.18.0.20:5000', sourceRegistries: ['somehost.io', 'otherhost.io'], credentials: creds });
      assert.deepEqual(await parseYaml(file('registry-mirrors.yaml')), { registryMirrors: [{ endpoint: 'https://172.18.0.20:5000', hosts: ['otherhost.io', 'somehost.io'] }] });
      assert.match(warnings.join('\n'), /pullCredentialConfigPath is left out/);
      assert.ok(!result.text.includes(PASSWORD));
    });

    it('--keep-registry-host: one entry per namespace path, each with its host', async () => {
      const { file } = await gen({ target: 'bmctl', mirror: 'https://reg:5000/ns', sourceRegistries: ['gcr.io', 'quay.io'], keepRegistryHost: true });
      assert.deepEqual(await parseYaml(file('registry-mirrors.yaml')), {
        registryMirrors: [
          { endpoint: 'https://reg:5000/v2/ns/gcr.io', hosts: ['gcr.io'] },
          { endpoint: 'https://reg:5000/v2/ns/quay.io', hosts: ['quay.io'] },
        ],
      });
    });
  });

  describe('pull-secret', () => {
    it('a kubernetes.io/dockerconfigjson Secret as kubectl writes it (auths: username, password, auth), --name, --namespace, 0600', async () => {
      const creds = resolverOf({ '172.18.0.20:5000': { kind: 'basic', username: USER, password: PASSWORD } });
      const { file, result } = await gen({ target: 'pull-secret', credentials: creds, name: 'testquay', namespace: 'apps' }, true);
      const text = file('pull-secret.yaml');
      assertHeader(text, 'pull-secret.yaml', 'pull-secret');
      const doc = (await parseYaml(text)) as { data: Record<string, string> };
      assert.deepEqual({ ...doc, data: Object.keys(doc.data) }, {
        apiVersion: 'v1',
        kind: 'Secret',
        metadata: { name: 'testquay', namespace: 'apps' },
        type: 'kubernetes.io/dockerconfigjson',
        data: ['.dockerconfigjson'],
      });
      assert.deepEqual(JSON.parse(Buffer.from(doc.data['.dockerconfigjson']!, 'base64').toString('utf8')), {
        auths: { '172.18.0.20:5000': { username: USER, password: PASSWORD, auth: Buffer.from(`${USER}:${PASSWORD}`).toString('base64') } },
      });
      assert.equal((await stat(result.written[0]!)).mode & 0o777, 0o600);
      const noNs = (await parseYaml((await gen({ target: 'pull-secret', credentials: creds }, true)).file('pull-secret.yaml'))) as { metadata: unknown };
      assert.deepEqual(noNs.metadata, { name: 'mirror-pull-secret' });
    });

    it('refuses to write a Secret without a username and password (AUTH), or to print one (USAGE: --output only)', async () => {
      const output = join(work, 'refused');
      await assert.rejects(mirrorConfig({ target: 'pull-secret', reports: [report], output, credentials: resolverOf({}) }), (e: unknown) => e instanceof MirrorError && e.code === 'AUTH' && /no credentials for 172\.18\.0\.20:5000/.test(e.message));
      await assert.rejects(
        mirrorConfig({ target: 'pull-secret', reports: [report], output, credentials: resolverOf({ '172.18.0.20:5000': { kind: 'identity-token', token: 't' } }) }),
        (e: unknown) => e instanceof MirrorError && e.code === 'AUTH' && /is a token/.test(e.message),
      );
      const creds = resolverOf({ '172.18.0.20:5000': { kind: 'basic', username: USER, password: PASSWORD } });
      await assert.rejects(mirrorConfig({ target: 'pull-secret', reports: [report], credentials: creds }), (e: unknown) => e instanceof MirrorError && e.code === 'USAGE' && /--output DIR/.test(e.message));
    });
  });

  it('the same input gives the same bytes, whatever the order of the images in the report', async () => {
    const shuffled = join(work, 'pusx.json'); // as long as push.json: the header wraps the same
    const doc = pushReport('172.18.0.20:5000', 'test-namespace', DEMO.map((i) => ({ ...i, dest: i.dest.replace(/^ns\//, 'test-namespace/') })).reverse());
    await writeFile(shuffled, JSON.stringify(doc, null, 4));
    const creds = resolverOf({ '172.18.0.20:5000': { kind: 'basic', username: USER, password: PASSWORD } });
    for (const target of ['containerd', 'cri-o', 'rke2', 'k3s', 'openshift', 'bmctl', 'pull-secret'] as const) {
      const a = await gen({ target, cacert: ca, credentials: creds }, true);
      const b = await gen({ target, cacert: ca, credentials: creds }, true);
      const files = await listFiles(a.output!);
      assert.deepEqual(await listFiles(b.output!), files);
      for (const f of files) {
        const x = await readFile(join(a.output!, f), 'utf8');
        const y = await readFile(join(b.output!, f), 'utf8');
        // bmctl names its own credential file by its absolute path: the only difference two output directories make.
        assert.equal(x.replaceAll(a.output!, 'OUT'), y.replaceAll(b.output!, 'OUT'), `${target} ${f}`);
      }
      if (target === 'pull-secret') continue; // never printed
      const c = await gen({ target, cacert: ca, credentials: creds, reports: [shuffled] });
      const d = await gen({ target, cacert: ca, credentials: creds });
      assert.equal(c.result.text.replaceAll(shuffled, 'R'), d.result.text.replaceAll(report, 'R'), target);
    }
  });
});
