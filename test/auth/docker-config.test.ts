import assert from 'node:assert/strict';
import { lstat, mkdir, readdir, readFile, stat, symlink, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import {
  createDockerConfigSource,
  credentialFromEntry,
  dockerConfigCandidates,
  dockerConfigWritePath,
  eraseDockerConfigAuth,
  findAuthEntry,
  helperFor,
  helperServerUrl,
  normalizeRegistryHost,
  readDockerConfig,
  storeDockerConfigAuth,
} from '../../src/auth/docker-config.js';
import { MirrorError } from '../../src/errors/index.js';
import { collect, makeTestHelper, tempDir } from './support.js';

const b64 = (s: string): string => Buffer.from(s, 'utf8').toString('base64');

describe('auth/docker-config', () => {
  let dir: string;
  let cleanup: () => Promise<void>;
  beforeEach(async () => {
    ({ dir, cleanup } = await tempDir());
  });
  afterEach(async () => {
    await cleanup();
  });

  describe('normalizeRegistryHost', () => {
    const table: Array<[string, string]> = [
      ['https://index.docker.io/v1/', 'docker.io'],
      ['index.docker.io', 'docker.io'],
      ['registry-1.docker.io', 'docker.io'],
      ['docker.io', 'docker.io'],
      ['https://Registry.Example.com:5000/v2/', 'registry.example.com:5000'],
      ['http://172.18.0.20:5000', '172.18.0.20:5000'],
      ['172.18.0.20:5000', '172.18.0.20:5000'],
      ['quay.io/org/repo', 'quay.io'],
      ['REG.local.', 'reg.local'],
      ['[::1]:5000', '[::1]:5000'],
    ];
    for (const [input, want] of table) {
      it(`${input} → ${want}`, () => assert.equal(normalizeRegistryHost(input), want));
    }
    it('helper server URL for Docker Hub is the v1 URL, others the host', () => {
      assert.equal(helperServerUrl('docker.io'), 'https://index.docker.io/v1/');
      assert.equal(helperServerUrl('Reg:5000'), 'reg:5000');
    });
  });

  describe('locations', () => {
    it('explicit path, then REGISTRY_AUTH_FILE, then DOCKER_CONFIG, then home; containers auth.json after', () => {
      const env = { REGISTRY_AUTH_FILE: '/a/auth.json', DOCKER_CONFIG: '/d', XDG_RUNTIME_DIR: '/run/user/1' };
      assert.deepEqual(dockerConfigCandidates({ path: '/x.json', env, homeDir: '/h' }), [{ path: '/x.json', explicit: true }]);
      assert.deepEqual(dockerConfigCandidates({ env, homeDir: '/h' }), [{ path: '/a/auth.json', explicit: true }]);
      assert.deepEqual(
        dockerConfigCandidates({ env: { DOCKER_CONFIG: '/d', XDG_RUNTIME_DIR: '/run/user/1' }, homeDir: '/h' }).map((c) => c.path),
        ['/d/config.json', '/run/user/1/containers/auth.json', '/h/.config/containers/auth.json'],
      );
      assert.deepEqual(
        dockerConfigCandidates({ env: {}, homeDir: '/h' }).map((c) => c.path),
        ['/h/.docker/config.json', '/h/.config/containers/auth.json'],
      );
      assert.equal(dockerConfigWritePath({ env: {}, homeDir: '/h' }), '/h/.docker/config.json');
      assert.equal(dockerConfigWritePath({ env: { DOCKER_CONFIG: '/d' }, homeDir: '/h' }), '/d/config.json');
    });
  });

  describe('parsing', () => {
    it('reads every key form and entry kind', async () => {
      const path = join(dir, 'config.json');
      await writeFile(
        path,
        JSON.stringify({
          auths: {
            'https://index.docker.io/v1/': { auth: b64('hubuser:hub:pass:with:colons') },
            'http://Reg.Example.com:5000/v1/': { auth: b64('robot$ci:s3cret') },
            'reg.example.com': { username: 'plain', password: 'plainpass' },
            'token.example.com': { auth: b64('tokuser:'), identitytoken: 'refresh-abc' },
            'bearer.example.com': { registrytoken: 'bearer-xyz' },
            'empty.example.com': {},
            'quay.io/org': { auth: b64('orguser:orgpass') },
          },
          credsStore: 'desktop',
          credHelpers: { 'GCR.io': 'gcloud' },
          psFormat: 'table',
        }),
      );
      const config = await readDockerConfig(path);
      assert.ok(config);
      const cred = (host: string): unknown => {
        const m = findAuthEntry(config, host);
        return m ? credentialFromEntry(m.entry, path, m.key) : undefined;
      };
      assert.deepEqual(cred('docker.io'), { kind: 'basic', username: 'hubuser', password: 'hub:pass:with:colons' });
      assert.deepEqual(cred('index.docker.io'), { kind: 'basic', username: 'hubuser', password: 'hub:pass:with:colons' });
      assert.deepEqual(cred('REG.example.com:5000'), { kind: 'basic', username: 'robot$ci', password: 's3cret' });
      assert.deepEqual(cred('reg.example.com'), { kind: 'basic', username: 'plain', password: 'plainpass' });
      assert.equal(cred('reg.example.com:443'), undefined, 'host:port matches exactly');
      assert.deepEqual(cred('token.example.com'), { kind: 'identity-token', username: 'tokuser', token: 'refresh-abc' });
      assert.deepEqual(cred('bearer.example.com'), { kind: 'registry-token', token: 'bearer-xyz' });
      assert.equal(cred('empty.example.com'), undefined);
      assert.deepEqual(cred('quay.io'), { kind: 'basic', username: 'orguser', password: 'orgpass' }, 'a repository-scoped key is the fallback');
      assert.equal(cred('other.example.com'), undefined);
      assert.deepEqual(helperFor(config, 'gcr.io'), { helper: 'gcloud', via: 'credHelpers' });
      assert.deepEqual(helperFor(config, 'reg.example.com'), { helper: 'desktop', via: 'credsStore' });
    });

    it('a missing file is undefined; broken JSON and broken auth are BAD_INPUT without the content', async () => {
      assert.equal(await readDockerConfig(join(dir, 'nope.json')), undefined);
      const path = join(dir, 'bad.json');
      await writeFile(path, '{"auths": {"x": {"auth": "c2VjcmV0LXZhbHVl"}}, oops');
      await assert.rejects(readDockerConfig(path), (e: unknown) => {
        assert.ok(e instanceof MirrorError);
        assert.equal(e.code, 'BAD_INPUT');
        assert.match(e.message, /bad\.json: not valid JSON/);
        assert.ok(!e.message.includes('c2VjcmV0'));
        return true;
      });
      await writeFile(path, JSON.stringify({ auths: { 'x.io': { auth: b64('no-colon-secret') } } }));
      const config = await readDockerConfig(path);
      assert.ok(config);
      assert.throws(
        () => findAuthEntry(config, 'x.io'),
        (e: unknown) => e instanceof MirrorError && e.code === 'BAD_INPUT' && !e.message.includes('no-colon-secret') && e.message.includes('x.io'),
      );
    });
  });

  describe('writing', () => {
    it('stores an entry atomically with mode 0600, keeping other fields and replacing other key forms', async () => {
      const path = join(dir, 'docker', 'config.json');
      await mkdir(join(dir, 'docker'));
      await writeFile(
        path,
        JSON.stringify({ auths: { 'https://reg.io:5000/v2/': { auth: b64('old:old') }, 'keep.io': { auth: b64('k:k') } }, credsStore: 'x', custom: { a: 1 } }),
        { mode: 0o644 },
      );
      await storeDockerConfigAuth(path, 'REG.io:5000', { kind: 'basic', username: 'u', password: 'p@ss' });
      const raw = JSON.parse(await readFile(path, 'utf8')) as { auths: Record<string, { auth: string }>; credsStore: string; custom: unknown };
      assert.deepEqual(Object.keys(raw.auths).sort(), ['keep.io', 'reg.io:5000']);
      assert.equal(raw.auths['reg.io:5000']?.auth, b64('u:p@ss'));
      assert.equal(raw.credsStore, 'x');
      assert.deepEqual(raw.custom, { a: 1 });
      assert.equal((await stat(path)).mode & 0o777, 0o600);
      assert.deepEqual((await readdir(join(dir, 'docker'))).sort(), ['config.json'], 'no temporary file left');

      await storeDockerConfigAuth(path, 'docker.io', { kind: 'basic', username: 'hub', password: 'hp' });
      const again = JSON.parse(await readFile(path, 'utf8')) as { auths: Record<string, unknown> };
      assert.ok('https://index.docker.io/v1/' in again.auths, 'Docker Hub is written under the key docker uses');

      assert.equal(await eraseDockerConfigAuth(path, 'reg.io:5000'), true);
      assert.equal(await eraseDockerConfigAuth(path, 'reg.io:5000'), false);
      const after = JSON.parse(await readFile(path, 'utf8')) as { auths: Record<string, unknown>; custom: unknown };
      assert.deepEqual(Object.keys(after.auths).sort(), ['https://index.docker.io/v1/', 'keep.io']);
      assert.deepEqual(after.custom, { a: 1 });
    });

    it('creates a missing file (and directory) with mode 0600, and follows a symbolic link', async () => {
      const path = join(dir, 'new', 'config.json');
      await storeDockerConfigAuth(path, 'a.io', { kind: 'basic', username: 'u', password: 'p' });
      assert.equal((await stat(path)).mode & 0o777, 0o600);
      const link = join(dir, 'link.json');
      await symlink(path, link);
      await storeDockerConfigAuth(link, 'b.io', { kind: 'basic', username: 'u2', password: 'p2' });
      assert.ok((await lstat(link)).isSymbolicLink(), 'the link stays a link');
      const raw = JSON.parse(await readFile(path, 'utf8')) as { auths: Record<string, unknown> };
      assert.deepEqual(Object.keys(raw.auths).sort(), ['a.io', 'b.io']);
    });
  });

  describe('source', () => {
    it('credHelpers wins over credsStore, which wins over auths; the helper is asked with Docker server URLs', async function () {
      this.timeout(20_000);
      const helper = await makeTestHelper(dir);
      const path = join(dir, 'config.json');
      await writeFile(
        path,
        JSON.stringify({
          auths: { 'per.io': { auth: b64('file:filepass') }, 'store.io': { auth: b64('file2:filepass2') }, 'only.io': { auth: b64('o:op') } },
          credsStore: 'testhelper',
          credHelpers: { 'per.io': 'testhelper' },
        }),
      );
      await helper.put('per.io', 'helperuser', 'helperpass');
      await helper.put('store.io', 'storeuser', 'storepass');
      await helper.put('https://index.docker.io/v1/', '<token>', 'hub-identity');
      const source = createDockerConfigSource({ path, env: helper.env });
      assert.deepEqual(await source.get('per.io'), {
        credential: { kind: 'basic', username: 'helperuser', password: 'helperpass' },
        source: `docker-credential-testhelper (credHelpers in ${path})`,
      });
      assert.deepEqual(await source.get('store.io'), {
        credential: { kind: 'basic', username: 'storeuser', password: 'storepass' },
        source: `docker-credential-testhelper (credsStore in ${path})`,
      });
      assert.deepEqual(await source.get('docker.io'), {
        credential: { kind: 'identity-token', token: 'hub-identity' },
        source: `docker-credential-testhelper (credsStore in ${path})`,
      });
      // The helper has nothing for only.io: the auths entry is used.
      assert.deepEqual(await source.get('only.io'), { credential: { kind: 'basic', username: 'o', password: 'op' }, source: `${path} auths` });
      assert.equal(await source.get('none.io'), undefined);
      assert.deepEqual(await helper.calls(), [
        'get per.io',
        'get store.io',
        'get https://index.docker.io/v1/',
        'get only.io',
        'get none.io',
      ]);
    });

    it('a missing helper is a warning and the auths entry is used; a missing explicit file is an error', async () => {
      const path = join(dir, 'config.json');
      await writeFile(path, JSON.stringify({ auths: { 'a.io': { auth: b64('u:pw-a') } }, credsStore: 'does-not-exist' }));
      const events = collect();
      const source = createDockerConfigSource({ path, env: { PATH: dir }, events: events.sink });
      const found = await source.get('a.io');
      assert.equal(found?.source, `${path} auths`);
      assert.equal(events.events.length, 1);
      assert.match(events.text(), /docker-credential-does-not-exist not found on PATH/);
      assert.match(events.text(), /credsStore in /);
      assert.deepEqual(source.problems('a.io').length, 1);
      assert.ok(!events.text().includes('pw-a'));
      await assert.rejects(createDockerConfigSource({ path: join(dir, 'missing.json') }).get('a.io'), /does not exist/);
    });

    it('falls back from DOCKER_CONFIG to containers auth.json; a broken default file is a warning', async () => {
      await mkdir(join(dir, 'docker'));
      await writeFile(join(dir, 'docker', 'config.json'), '{broken');
      await mkdir(join(dir, 'run', 'containers'), { recursive: true });
      await writeFile(join(dir, 'run', 'containers', 'auth.json'), JSON.stringify({ auths: { 'p.io': { auth: b64('pod:man') } } }));
      const events = collect();
      const source = createDockerConfigSource({
        env: { DOCKER_CONFIG: join(dir, 'docker'), XDG_RUNTIME_DIR: join(dir, 'run') },
        homeDir: dir,
        events: events.sink,
      });
      const found = await source.get('p.io');
      assert.deepEqual(found?.credential, { kind: 'basic', username: 'pod', password: 'man' });
      assert.equal(found?.source, `${join(dir, 'run', 'containers', 'auth.json')} auths`);
      assert.match(events.text(), /not valid JSON/);
    });
  });
});
