/**
 * `mirror config` through the built binary, against what `mirror push` and `mirror copy` really put into a real
 * docker-registry: the hint line after their summaries; RKE2's rewrite rules, OpenShift's mirrors and bmctl's
 * endpoint each applied by the test to every pushed name give the repository the image really has (read back by
 * skopeo); the pull Secret's `.dockerconfigjson` and bmctl's credential file work as skopeo's `--authfile` against
 * an htpasswd registry; the same input gives the same bytes; errors are one line with their exit code.
 */
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { ExitCode } from '../../src/errors/index.js';
import { buildOciLayout, describeFixture, type FixtureDescription, writeTarBundle } from '../../testdata/make-fixtures.js';
import { assertNoSecrets, assertOneLineError, isolatedEnv } from '../helpers/auth-env.js';
import { runCli, type CliResult } from '../helpers/cli.js';
import { stopAll } from '../helpers/proc.js';
import { startRegistry, type TestRegistry } from '../helpers/registry.js';
import { skopeo } from '../mirrorconfig/consumers.js';
import { parseYaml } from '../mirrorconfig/parse.js';
import { listFiles } from '../helpers/files.js';

const DEMO_BUNDLE = join(dirname(fileURLToPath(import.meta.url)), '..', '..', '..', 'testdata', 'bundles', 'demo.tar.xz');
const USER = 'mirror-ci';
const PASSWORD = 'Pu11:S3cret "pw"';

/** ReportDoc is the part of a push report these tests read. */
interface ReportDoc {
  images: Array<{ source: string; digest: string; status: string; mapping: { source: { registry: string; repository: string; tag: string } } }>;
}

/** digestOf hashes what skopeo printed. */
function digestOf(text: string): string {
  return `sha256:${createHash('sha256').update(text, 'utf8').digest('hex')}`;
}


describe('mirror config (CLI, integration: docker-registry + skopeo)', function () {
  this.timeout(240_000);
  let work: string;
  let home: string;
  let plain: TestRegistry;
  let other: TestRegistry;
  let secured: TestRegistry;
  let demo: FixtureDescription;
  let report: string;
  let authReport: string;
  let pushed: CliResult;
  let n = 0;

  /** cli runs mirror in an isolated HOME (no keychain, no Docker config of the developer's). */
  function cli(args: string[], options: { input?: string; env?: NodeJS.ProcessEnv } = {}): Promise<CliResult> {
    return runCli(args, { env: isolatedEnv(home, options.env), input: options.input });
  }

  before(async () => {
    work = await mkdtemp(join(tmpdir(), 'mirror-config-cli-'));
    home = join(work, 'home');
    await mkdir(home);
    [plain, other, secured] = await Promise.all([startRegistry(), startRegistry(), startRegistry({ users: { [USER]: PASSWORD } })]);
    demo = await describeFixture();
    report = join(work, 'push.json');
    pushed = await cli(['push', '-s', DEMO_BUNDLE, '-r', `http://${plain.host}/team/mirror`, '--report', report]);
    assert.equal(pushed.code, 0, pushed.stderr);
    authReport = join(work, 'auth.json');
    const a = await cli(['push', '-s', DEMO_BUNDLE, '-r', `http://${secured.host}/ns`, '--report', authReport, '--username', USER, '--password-stdin'], { input: PASSWORD });
    assert.equal(a.code, 0, a.stderr);
  });

  after(async () => {
    await Promise.all([plain?.stop(), other?.stop(), secured?.stop()]);
    await stopAll();
    if (work) await rm(work, { recursive: true, force: true });
  });

  async function pushedImages(file = report): Promise<ReportDoc['images']> {
    return (JSON.parse(await readFile(file, 'utf8')) as ReportDoc).images;
  }

  /** inspect reads a manifest's digest with skopeo (plain http registry). */
  async function inspect(ref: string, extra: string[] = []): Promise<string> {
    const r = await skopeo(['inspect', '--raw', '--tls-verify=false', ...extra, `docker://${ref}`]);
    assert.equal(r.code, 0, `${ref}: ${r.stderr}`);
    return digestOf(r.stdout);
  }

  describe('the hint after push and copy', () => {
    it('push ends its summary with the mirror config line: --from-report when a report was written', () => {
      const lines = pushed.stdout.trim().split('\n');
      assert.equal(lines.at(-1), `next: mirror config containerd|cri-o|rke2|k3s|openshift|bmctl|pull-secret --from-report ${report}`);
    });

    it('without a report: --mirror and every source registry; none after a dry run, and none in --json', async () => {
      const r = await cli(['push', '-s', DEMO_BUNDLE, '-r', `http://${plain.host}/team/mirror`]);
      assert.equal(r.code, 0, r.stderr);
      assert.equal(
        r.stdout.trim().split('\n').at(-1),
        `next: mirror config containerd|cri-o|rke2|k3s|openshift|bmctl|pull-secret --mirror http://${plain.host}/team/mirror --source-registry docker.io --source-registry gcr.io --source-registry quay.io`,
      );
      const dry = await cli(['push', '-s', DEMO_BUNDLE, '-r', `http://${plain.host}/team/mirror`, '--dry-run']);
      assert.doesNotMatch(dry.stdout, /mirror config/);
      const json = await cli(['push', '-s', DEMO_BUNDLE, '-r', `http://${plain.host}/team/mirror`, '--json']);
      assert.doesNotMatch(json.stdout, /next: /);
      assert.doesNotThrow(() => JSON.parse(json.stdout) as unknown);
    });

    it('copy ends with the hint; its report (version 2: endpoint and mapping) configures the mirror', async () => {
      const copyReport = join(work, 'copy.json');
      const src = `${plain.host}/team/mirror/kubernetes-e2e-test-images/nautilus:1.0`;
      const r = await cli(['copy', '--src-plain-http', '--dest-plain-http', '--report', copyReport, `docker://${src}`, `docker://${other.host}/copies/team/mirror/kubernetes-e2e-test-images/nautilus:1.0`]);
      assert.equal(r.code, 0, r.stderr);
      assert.equal(r.stdout.trim().split('\n').at(-1), `next: mirror config containerd|cri-o|rke2|k3s|openshift|bmctl|pull-secret --mirror ${other.host}/copies --source-registry ${plain.host}`);
      // Output files are checked before anything is copied: a missing directory, or the very archive being written.
      const missing = await cli(['copy', '--src-plain-http', '--digestfile', join(work, 'no-dir', 'd.txt'), `docker://${src}`, `oci-archive:${join(work, 'x.tar')}`]);
      assert.equal(missing.code, 2, missing.stderr);
      assert.match(missing.stderr, /--digestfile \S+d\.txt: no such directory/);
      const same = await cli(['copy', '--src-plain-http', '--digestfile', join(work, 'y.tar'), `docker://${src}`, `oci-archive:${join(work, 'y.tar')}`]);
      assert.equal(same.code, 2, same.stderr);
      assert.match(same.stderr, /--digestfile \S+y\.tar is a file this copy reads or writes/);
      assert.ok(!existsSync(join(work, 'x.tar')) && !existsSync(join(work, 'y.tar')), 'nothing copied');
      // --quiet prints the final line alone, as push does: no hint after it.
      const quiet = await cli(['copy', '-q', '--src-plain-http', '--dest-plain-http', `docker://${src}`, `docker://${other.host}/copies/team/mirror/kubernetes-e2e-test-images/nautilus:1.0`]);
      assert.equal(quiet.code, 0, quiet.stderr);
      assert.match(quiet.stdout, /^already present: docker:\/\/\S+ sha256:[0-9a-f]{12}\n$/);
      const doc = JSON.parse(await readFile(copyReport, 'utf8')) as Record<string, unknown>;
      assert.equal(doc.version, 2);
      assert.deepEqual(doc.endpoint, { kind: 'registry', scheme: 'http', host: other.host, namespace: '' });
      assert.deepEqual(doc.mapping, {
        source: { registry: plain.host, repository: 'team/mirror/kubernetes-e2e-test-images/nautilus', tag: '1.0', digest: demo.images['gcr.io/kubernetes-e2e-test-images/nautilus:1.0']!.digest },
        destination: { registry: other.host, repository: 'copies/team/mirror/kubernetes-e2e-test-images/nautilus', tag: '1.0' },
      });
      const cfg = await cli(['config', 'rke2', '--from-report', copyReport]);
      assert.equal(cfg.code, 0, cfg.stderr);
      const yaml = (await parseYaml(cfg.stdout)) as { mirrors: Record<string, { endpoint: string[]; rewrite: Record<string, string> }> };
      assert.deepEqual(yaml.mirrors, { [plain.host]: { endpoint: [`http://${other.host}`], rewrite: { '^(.*)$': 'copies/$1' } } });
      // A copy that renames the repository is not a mirror: no hint.
      const renamed = await cli(['copy', '--src-plain-http', '--dest-plain-http', `docker://${src}`, `docker://${other.host}/renamed:1.0`]);
      assert.equal(renamed.code, 0, renamed.stderr);
      assert.doesNotMatch(renamed.stdout, /mirror config/);
    });
  });

  it('a mirror sync report configures the mirror: the rewrite gives the repository sync wrote', async () => {
    const syncReport = join(work, 'sync.json');
    const syncFile = join(work, 'sync.yaml');
    await writeFile(
      syncFile,
      [
        'apiVersion: mirror/v1',
        'kind: Sync',
        'registries:',
        `  "${plain.host}": {tls: {plainHttp: true}}`,
        `  "${other.host}": {tls: {plainHttp: true}}`,
        'destination:',
        `  registry: "http://${other.host}"`,
        '  namespace: synced',
        'sync:',
        `  - repository: "${plain.host}/team/mirror/kubernetes-e2e-test-images/nautilus"`,
        '',
      ].join('\n'),
    );
    const s = await cli(['sync', '--config', syncFile, '--no-lock', '--report', syncReport]);
    assert.equal(s.code, 0, s.stderr + s.stdout);
    const r = await cli(['config', 'rke2', '--from-report', syncReport, '--plain-http']);
    assert.equal(r.code, 0, r.stderr);
    const doc = (await parseYaml(r.stdout)) as { mirrors: Record<string, { endpoint: string[]; rewrite: Record<string, string> }> };
    const mirror = doc.mirrors[plain.host];
    assert.ok(mirror, r.stdout);
    assert.deepEqual(mirror.endpoint, [`http://${other.host}`]);
    const path = 'team/mirror/kubernetes-e2e-test-images/nautilus'.replace(new RegExp(Object.keys(mirror.rewrite)[0]!), Object.values(mirror.rewrite)[0]!);
    assert.equal(await inspect(`${other.host}/${path}:1.0`), demo.images['gcr.io/kubernetes-e2e-test-images/nautilus:1.0']!.digest);
  });

  describe('rules applied to every pushed name give the repository the image really has', () => {
    it('rke2: endpoint + rewrite "^(.*)$": "NS/$1" (and k3s alike)', async () => {
      for (const target of ['rke2', 'k3s']) {
        const r = await cli(['config', target, '--from-report', report]);
        assert.equal(r.code, 0, r.stderr);
        const doc = (await parseYaml(r.stdout)) as { mirrors: Record<string, { endpoint: string[]; rewrite?: Record<string, string> }> };
        for (const image of await pushedImages()) {
          const { registry, repository, tag } = image.mapping.source;
          const mirror = doc.mirrors[registry];
          assert.ok(mirror, `${registry} has a mirror`);
          let path = repository;
          // Go's regexp.ReplaceAllString with $1, which JavaScript's replace spells the same way.
          for (const [pattern, replacement] of Object.entries(mirror.rewrite ?? {})) path = path.replace(new RegExp(pattern), replacement);
          const host = new URL(mirror.endpoint[0]!).host;
          assert.equal(await inspect(`${host}/${path}:${tag}`), image.digest, `${image.source} at ${host}/${path}`);
        }
      }
    });

    it('openshift: each source prefix replaced by its mirror (IDMS, ITMS, ICSP)', async () => {
      for (const extra of [[], ['--legacy-icsp']]) {
        const out = join(work, `os-${++n}`);
        const r = await cli(['config', 'openshift', '--from-report', report, '--output', out, ...extra]);
        assert.equal(r.code, 0, r.stderr);
        for (const f of await listFiles(out)) {
          const doc = (await parseYaml(await readFile(join(out, f), 'utf8'))) as { spec: Record<string, Array<{ source: string; mirrors: string[] }>> };
          const entries = Object.values(doc.spec)[0]!;
          for (const image of await pushedImages()) {
            const name = `${image.mapping.source.registry}/${image.mapping.source.repository}`;
            const entry = entries.find((e) => name.startsWith(`${e.source}/`));
            assert.ok(entry, `${f}: an entry for ${name}`);
            const mirrored = `${entry.mirrors[0]}${name.slice(entry.source.length)}`;
            assert.equal(await inspect(`${mirrored}@${image.digest}`), image.digest, `${f}: ${mirrored}`);
          }
        }
      }
    });

    it('bmctl: endpoint https://HOST:PORT/v2/NS is the namespace\'s API root; hosts are the source registries', async () => {
      const r = await cli(['config', 'bmctl', '--from-report', report]);
      assert.equal(r.code, 0, r.stderr);
      const doc = (await parseYaml(r.stdout)) as { registryMirrors: Array<{ endpoint: string; hosts: string[] }> };
      assert.equal(doc.registryMirrors.length, 1);
      const m = doc.registryMirrors[0]!;
      assert.equal(m.endpoint, `http://${plain.host}/v2/team/mirror`);
      assert.deepEqual(m.hosts, ['docker.io', 'gcr.io', 'quay.io']);
      const u = new URL(m.endpoint);
      const prefix = u.pathname.replace(/^\/v2\//, '');
      for (const image of await pushedImages()) {
        assert.ok(m.hosts.includes(image.mapping.source.registry));
        assert.equal(await inspect(`${u.host}/${prefix}/${image.mapping.source.repository}:${image.mapping.source.tag}`), image.digest);
      }
    });
  });

  describe('credentials from the push chain', () => {
    it('pull-secret: its decoded .dockerconfigjson is an authfile skopeo reads the htpasswd registry with', async () => {
      const out = join(work, `ps-${++n}`);
      const r = await cli(['config', 'pull-secret', '--from-report', authReport, '--username', USER, '--password-stdin', '--name', 'mirror-pull', '--namespace', 'apps', '--output', out], { input: PASSWORD });
      assert.equal(r.code, 0, r.stderr);
      assertNoSecrets('stdout and stderr', r.stdout + r.stderr, [PASSWORD], USER);
      const file = join(out, 'pull-secret.yaml');
      assert.equal((await stat(file)).mode & 0o777, 0o600);
      const doc = (await parseYaml(await readFile(file, 'utf8'))) as { metadata: unknown; type: string; data: Record<string, string> };
      assert.deepEqual(doc.metadata, { name: 'mirror-pull', namespace: 'apps' });
      assert.equal(doc.type, 'kubernetes.io/dockerconfigjson');
      const authfile = join(work, 'authfile.json');
      await writeFile(authfile, Buffer.from(doc.data['.dockerconfigjson']!, 'base64'));
      const [image] = await pushedImages(authReport);
      const ref = `${secured.host}/ns/${image!.mapping.source.repository}:${image!.mapping.source.tag}`;
      const denied = await skopeo(['inspect', '--raw', '--tls-verify=false', `docker://${ref}`]);
      assert.notEqual(denied.code, 0, 'the registry wants credentials');
      assert.equal(await inspect(ref, ['--authfile', authfile]), image!.digest);
    });

    it('the chain: MIRROR_USERNAME/PASSWORD, then a Docker config; --need-credential=false and no terminal are refused for a Secret (exit 4); never printed (exit 2)', async () => {
      const outEnv = join(work, `ps-${++n}`);
      const env = await cli(['config', 'pull-secret', '--from-report', authReport, '--output', outEnv], { env: { MIRROR_USERNAME: USER, MIRROR_PASSWORD: PASSWORD } });
      assert.equal(env.code, 0, env.stderr);
      const dockerConfig = join(work, 'docker-config.json');
      await writeFile(dockerConfig, JSON.stringify({ auths: { [secured.host]: { auth: Buffer.from(`${USER}:${PASSWORD}`).toString('base64') } } }));
      const outFile = join(work, `ps-${++n}`);
      const fromFile = await cli(['config', 'pull-secret', '--from-report', authReport, '--docker-config', dockerConfig, '--output', outFile]);
      assert.equal(fromFile.code, 0, fromFile.stderr);
      assert.equal(await readFile(join(outFile, 'pull-secret.yaml'), 'utf8'), await readFile(join(outEnv, 'pull-secret.yaml'), 'utf8'), 'the same credential gives the same Secret');
      const none = await cli(['config', 'pull-secret', '--from-report', authReport, '--output', join(work, `ps-${++n}`)]);
      assert.equal(none.code, ExitCode.AUTH);
      assertOneLineError(none.stderr, `no credentials for ${secured.host}`);
      const off = await cli(['config', 'pull-secret', '--from-report', authReport, '--need-credential=false', '--output', join(work, `ps-${++n}`)]);
      assert.equal(off.code, ExitCode.AUTH);
      assertOneLineError(off.stderr, 'a pull secret needs a username and password');
      const printed = await cli(['config', 'pull-secret', '--from-report', authReport], { env: { MIRROR_USERNAME: USER, MIRROR_PASSWORD: PASSWORD } });
      assert.equal(printed.code, ExitCode.USAGE);
      assertOneLineError(printed.stderr, 'write it with --output DIR');
      assert.equal(printed.stdout, '');
    });

    it('bmctl: pullCredentialConfigPath is a 0600 Docker config skopeo authenticates with; rke2 configs.auth holds the same', async () => {
      const out = join(work, `bm-${++n}`);
      const r = await cli(['config', 'bmctl', '--from-report', authReport, '--output', out], { env: { MIRROR_USERNAME: USER, MIRROR_PASSWORD: PASSWORD } });
      assert.equal(r.code, 0, r.stderr);
      assertNoSecrets('output', r.stdout + r.stderr, [PASSWORD], USER);
      const doc = (await parseYaml(await readFile(join(out, 'registry-mirrors.yaml'), 'utf8'))) as { registryMirrors: Array<{ pullCredentialConfigPath: string }> };
      const credentialFile = doc.registryMirrors[0]!.pullCredentialConfigPath;
      assert.equal(credentialFile, join(out, 'pull-credential-config.json'));
      assert.equal((await stat(credentialFile)).mode & 0o777, 0o600);
      const [image] = await pushedImages(authReport);
      assert.equal(await inspect(`${secured.host}/ns/${image!.mapping.source.repository}:${image!.mapping.source.tag}`, ['--authfile', credentialFile]), image!.digest);
      const rke = join(work, `rke-${++n}`);
      const k = await cli(['config', 'rke2', '--from-report', authReport, '--output', rke], { env: { MIRROR_USERNAME: USER, MIRROR_PASSWORD: PASSWORD } });
      assert.equal(k.code, 0, k.stderr);
      const reg = join(rke, 'registries.yaml');
      assert.equal((await stat(reg)).mode & 0o777, 0o600);
      const yaml = (await parseYaml(await readFile(reg, 'utf8'))) as { configs: Record<string, { auth: { username: string; password: string } }> };
      assert.deepEqual(yaml.configs[secured.host]!.auth, { username: USER, password: PASSWORD });
      // On standard output the credential is left out, with a warning.
      const printed = await cli(['config', 'rke2', '--from-report', authReport], { env: { MIRROR_USERNAME: USER, MIRROR_PASSWORD: PASSWORD } });
      assert.equal(printed.code, 0, printed.stderr);
      assertNoSecrets('printed registries.yaml', printed.stdout + printed.stderr, [PASSWORD], USER);
      assert.doesNotMatch(printed.stdout, /configs:/);
      assert.match(printed.stderr, /configs\.auth for .* is left out on standard output/);
      // Without a credential in the chain, no auth and no 0600.
      const anon = await cli(['config', 'rke2', '--from-report', authReport, '--no-registry-credential']);
      assert.equal(anon.code, 0, anon.stderr);
      assert.doesNotMatch(anon.stdout, /configs:/);
    });
  });

  it('the same input gives the same bytes, run after run, for every target', async () => {
    const certDir = join(work, 'tls');
    await mkdir(certDir, { recursive: true });
    const ca = join(certDir, 'ca.crt');
    await writeFile(ca, '-----BEGIN CERTIFICATE-----\nMIIBcA==\n-----END CERTIFICATE-----\n');
    // Every target is checked in-process (test/mirrorconfig/generators.test.ts); here, through the binary, the ones
    // with copied certificates, credentials from the chain and absolute paths.
    for (const target of ['containerd', 'rke2', 'bmctl']) {
      const args = ['config', target, '--from-report', report, '--mirror', `https://${plain.host}`, '--cacert', ca];
      const env = { MIRROR_USERNAME: USER, MIRROR_PASSWORD: PASSWORD };
      const out = join(work, `stable-${target}`);
      const first = await cli([...args, '--output', out, '--no-fallback'], { env });
      assert.equal(first.code, 0, first.stderr);
      const files = await listFiles(out);
      const before = await Promise.all(files.map((f) => readFile(join(out, f))));
      const second = await cli([...args, '--output', out, '--no-fallback'], { env });
      assert.equal(second.code, 0, second.stderr);
      assert.deepEqual(await listFiles(out), files);
      for (const [i, f] of files.entries()) assert.ok((await readFile(join(out, f))).equals(before[i]!), `${target}: ${f} unchanged`);
      const a = await cli(args, { env });
      const b = await cli(args, { env });
      assert.equal(a.code, 0, a.stderr);
      assert.equal(a.stdout, b.stdout, `${target} on standard output`);
    }
  });

  it('warns when an image lost its tag to an image of another registry, which a pull through the mirror would get', async () => {
    const layout = await buildOciLayout({
      seed: 'config-conflict',
      images: [
        { ref: 'docker.io/team/app:1.0', layers: [{ files: 1, sizeBytes: 900 }] },
        { ref: 'quay.io/team/app:1.0', layers: [{ files: 1, sizeBytes: 1100 }] },
      ],
    });
    const bundle = join(work, 'conflict.tar.gz');
    await writeTarBundle(layout.files, bundle, { order: 'metadata-first', compression: 'gzip' });
    const conflictReport = join(work, 'conflict.json');
    const p = await cli(['push', '-s', bundle, '-r', `http://${plain.host}/conflict`, '--on-conflict', 'first', '--report', conflictReport]);
    assert.equal(p.code, 0, p.stderr);
    const r = await cli(['config', 'containerd', '--from-report', conflictReport]);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stderr, /warning: report .*: 1 image\(s\) are not in the mirror \(skipped-conflict\): quay\.io\/team\/app:1\.0/);
    assert.doesNotMatch(r.stderr, /lost its destination/, 'quay.io has no other image, so it gets no mirror');
    assert.doesNotMatch(r.stdout, /quay\.io\/hosts\.toml/);
  });

  it('errors: one line, with the exit code of the table', async () => {
    const usage = await cli(['config', 'containerd']);
    assert.equal(usage.code, ExitCode.USAGE);
    assertOneLineError(usage.stderr, '--from-report FILE');
    const target = await cli(['config', 'docker', '--from-report', report]);
    assert.equal(target.code, ExitCode.USAGE);
    const missing = await cli(['config', 'containerd', '--from-report', join(work, 'nope.json')]);
    assert.equal(missing.code, ExitCode.BAD_INPUT);
    assertOneLineError(missing.stderr, 'nope.json', 'no such file');
    const ns = await cli(['config', 'containerd', '--from-report', report, '--namespace', 'x']);
    assert.equal(ns.code, ExitCode.USAGE);
    assertOneLineError(ns.stderr, '--namespace is for pull-secret');
    const badName = await cli(['config', 'pull-secret', '--from-report', report, '--name', 'Bad_Name']);
    assert.equal(badName.code, ExitCode.USAGE);
    const json = await cli(['config', 'containerd', '--from-report', join(work, 'nope.json'), '--json']);
    assert.equal(json.code, ExitCode.BAD_INPUT);
    assert.equal((JSON.parse(json.stdout) as { code: string }).code, 'BAD_INPUT');
    const ok = await cli(['config', 'cri-o', '--from-report', report, '--json']);
    const doc = JSON.parse(ok.stdout) as { status: string; files: Array<{ path: string; content: string }>; routes: unknown[] };
    assert.equal(doc.status, 'ok');
    assert.deepEqual(doc.files.map((f) => f.path), ['registries.conf.d/50-mirror.conf']);
    assert.equal(doc.routes.length, 3);
  });
});
