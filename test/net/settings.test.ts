import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { copyFile, mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { MirrorError } from '../../src/errors/index.js';
import { matchesNoProxy, parseNoProxy, proxyEnvFrom, selectProxy, splitHostPort } from '../../src/net/proxy.js';
import { createHostSettingsResolver, defaultCertsDirs, hostDirNames } from '../../src/net/settings.js';

describe('net/proxy', () => {
  describe('NO_PROXY matching', () => {
    const NO_PROXY = [
      'internal.example.com',
      '.corp.example',
      '*.wild.example',
      'exact.example:5000',
      '10.0.0.0/8',
      '192.168.1.7',
      '172.18.0.20:5000',
      'fd00::/8',
      '[2001:db8::1]:443',
      '::2',
      ' SPACED.example ',
      'bad/99',
    ].join(',');
    const table: Array<[string, 'http' | 'https', boolean]> = [
      ['internal.example.com', 'https', true],
      ['a.internal.example.com', 'https', true],
      ['xinternal.example.com', 'https', false],
      ['Internal.Example.COM:5000', 'https', true],
      ['corp.example', 'https', true],
      ['registry.corp.example:5000', 'https', true],
      ['wild.example', 'https', true],
      ['r.wild.example', 'https', true],
      ['exact.example:5000', 'https', true],
      ['exact.example:5001', 'https', false],
      ['exact.example', 'https', false],
      ['10.1.2.3', 'https', true],
      ['10.1.2.3:5000', 'http', true],
      ['11.1.2.3', 'https', false],
      ['192.168.1.7:8443', 'https', true],
      ['192.168.1.8', 'https', false],
      ['172.18.0.20:5000', 'https', true],
      ['172.18.0.20:5001', 'https', false],
      ['[fd12:3456::1]:5000', 'https', true],
      ['fd12::1', 'https', true],
      ['[fe80::1]', 'https', false],
      ['[2001:db8::1]', 'https', true],
      ['[2001:db8:0:0:0:0:0:1]:443', 'https', true],
      ['[2001:db8::1]:5000', 'https', false],
      ['[2001:db8::1]', 'http', false],
      ['[::2]:5000', 'https', true],
      ['spaced.example', 'https', true],
      ['127.0.0.1:5000', 'https', false],
      ['localhost:5000', 'https', false],
      ['registry.example.org', 'https', false],
    ];
    const rules = parseNoProxy(NO_PROXY);
    for (const [host, scheme, direct] of table) {
      it(`${host} (${scheme}) → ${direct ? 'direct' : 'proxy'}`, () => assert.equal(matchesNoProxy(rules, host, scheme), direct));
    }
    it('* means everything direct; empty means nothing', () => {
      assert.equal(matchesNoProxy('*', 'anything.io:5000', 'https'), true);
      assert.equal(matchesNoProxy('a.io, *', '10.0.0.1', 'http'), true);
      assert.equal(matchesNoProxy('', 'a.io', 'https'), false);
      assert.equal(matchesNoProxy(undefined, 'a.io', 'https'), false);
    });
    it('drops entries that mean nothing', () => {
      assert.deepEqual(
        parseNoProxy('bad/99,10.0.0.0/33,,.'),
        [],
      );
    });
    it('splits host and port, IPv6 included', () => {
      assert.deepEqual(splitHostPort('[::1]:5000'), { host: '::1', port: 5000 });
      assert.deepEqual(splitHostPort('::1'), { host: '::1' });
      assert.deepEqual(splitHostPort('Reg.IO.:443'), { host: 'reg.io', port: 443 });
      assert.deepEqual(splitHostPort('reg.io'), { host: 'reg.io' });
    });
  });

  describe('proxy selection', () => {
    it('HTTPS_PROXY for https, HTTP_PROXY for http, upper case first, ALL_PROXY as fallback', () => {
      const env = { HTTPS_PROXY: 'http://up:3128', https_proxy: 'http://low:3128', http_proxy: 'plainproxy:8080', ALL_PROXY: 'http://all:1' };
      assert.equal(selectProxy({ host: 'a.io', scheme: 'https', env }), 'http://up:3128');
      assert.equal(selectProxy({ host: 'a.io', scheme: 'http', env }), 'http://plainproxy:8080');
      assert.equal(selectProxy({ host: 'a.io', scheme: 'https', env: { https_proxy: 'http://low:3128' } }), 'http://low:3128');
      assert.equal(selectProxy({ host: 'a.io', scheme: 'http', env: { all_proxy: 'http://all:1', HTTPS_PROXY: 'http://x:1' } }), 'http://all:1');
      assert.equal(selectProxy({ host: 'a.io', scheme: 'https', env: { HTTPS_PROXY: '', https_proxy: 'http://low:1' } }), 'http://low:1', 'empty is unset');
      assert.equal(selectProxy({ host: 'a.io', scheme: 'https', env: {} }), undefined);
    });
    it('NO_PROXY and no_proxy; loopback is not excluded automatically', () => {
      const env = { HTTPS_PROXY: 'http://p:3128', no_proxy: 'a.io,10.0.0.0/8' };
      assert.equal(selectProxy({ host: 'a.io', scheme: 'https', env }), undefined);
      assert.equal(selectProxy({ host: '10.9.9.9:5000', scheme: 'https', env }), undefined);
      assert.equal(selectProxy({ host: '127.0.0.1:5000', scheme: 'https', env }), 'http://p:3128');
      assert.equal(selectProxy({ host: 'localhost:5000', scheme: 'https', env }), 'http://p:3128');
      assert.equal(proxyEnvFrom({ NO_PROXY: 'x', no_proxy: 'y' }).noProxy, 'x');
    });
    it('a proxy that is not a URL is BAD_INPUT without its value', () => {
      assert.throws(
        () => selectProxy({ host: 'a.io', scheme: 'https', env: { HTTPS_PROXY: 'http://user:pa ss@[bad' } }),
        (e: unknown) => e instanceof MirrorError && e.code === 'BAD_INPUT' && e.message === 'HTTPS_PROXY is not a valid proxy URL',
      );
    });
  });
});

describe('net/settings', function () {
  this.timeout(30_000);
  let dir: string;
  let pki: { caPem: string; caDer: Buffer; clientCert: string; clientKey: string; dir: string };

  before(async () => {
    const d = await mkdtemp(join(tmpdir(), 'mirror-pki-'));
    const ossl = (...args: string[]): void => {
      execFileSync('openssl', args, { cwd: d, stdio: 'ignore', timeout: 20_000 });
    };
    const ec = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes'];
    ossl('req', '-x509', ...ec, '-keyout', 'ca.key', '-out', 'ca.pem', '-days', '2', '-subj', '/CN=mirror test CA');
    ossl('req', ...ec, '-keyout', 'client.key', '-out', 'client.csr', '-subj', '/CN=mirror test client');
    ossl('x509', '-req', '-in', 'client.csr', '-CA', 'ca.pem', '-CAkey', 'ca.key', '-CAcreateserial', '-out', 'client.cert', '-days', '2');
    ossl('x509', '-in', 'ca.pem', '-outform', 'DER', '-out', 'ca.der');
    pki = {
      dir: d,
      caPem: await readFile(join(d, 'ca.pem'), 'utf8'),
      caDer: await readFile(join(d, 'ca.der')),
      clientCert: await readFile(join(d, 'client.cert'), 'utf8'),
      clientKey: await readFile(join(d, 'client.key'), 'utf8'),
    };
  });
  after(async () => {
    if (pki) await rm(pki.dir, { recursive: true, force: true });
  });
  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), 'mirror-settings-'));
  });
  afterEach(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  async function hostDir(root: string, host: string, files: Record<string, string | Buffer>): Promise<string> {
    const d = join(root, host);
    await mkdir(d, { recursive: true });
    for (const [name, content] of Object.entries(files)) await writeFile(join(d, name), content);
    return d;
  }

  it('defaults: https, no TLS material, no proxy', async () => {
    const r = createHostSettingsResolver({ env: {}, certsDirs: [join(dir, 'none')] });
    assert.deepEqual(await r.forHost('reg.io:5000', 'https'), { scheme: 'https', tls: {}, proxy: undefined });
    assert.equal((await r.forHost('reg.io:5000', 'http')).scheme, 'http', 'the caller may ask for http');
  });

  it('--cert-dir DIR/<host:port>/: *.crt as CAs, *.cert + *.key as client certificate, with origins', async () => {
    const d = await hostDir(dir, '172.18.0.20:5000', { 'ca.crt': pki.caPem, 'extra.crt': pki.caDer, 'client.cert': pki.clientCert, 'client.key': pki.clientKey });
    const r = createHostSettingsResolver({ certDir: dir, env: {} });
    const s = await r.forHost('172.18.0.20:5000', 'https');
    assert.equal(s.scheme, 'https');
    assert.equal(s.tls.ca?.length, 2);
    assert.equal(s.tls.ca?.[0], pki.caPem);
    assert.match(s.tls.ca?.[1] ?? '', /-----BEGIN CERTIFICATE-----/, 'a DER CA is turned into PEM');
    assert.equal(s.tls.cert, pki.clientCert);
    assert.equal(s.tls.key, pki.clientKey);
    assert.deepEqual(s.tls.origins, [join(d, 'ca.crt'), join(d, 'client.cert'), join(d, 'client.key'), join(d, 'extra.crt')]);
    assert.deepEqual(await r.forHost('other.io:5000', 'https'), { scheme: 'https', tls: {}, proxy: undefined }, 'other hosts get nothing');
  });

  it('--cert-dir that holds the files itself (skopeo style)', async () => {
    await writeFile(join(dir, 'ca.crt'), pki.caPem);
    const r = createHostSettingsResolver({ certDir: dir, env: {} });
    const s = await r.forHost('any.io', 'https');
    assert.deepEqual(s.tls.ca, [pki.caPem]);
  });

  it('system certs.d: docker and containers directories merged; port 443 also looks at the bare host', async () => {
    const docker = join(dir, 'docker-certs.d');
    const containers = join(dir, 'containers-certs.d');
    await hostDir(docker, 'reg.io:443', { 'ca.crt': pki.caPem });
    await hostDir(containers, 'reg.io', { 'b.crt': pki.caPem, 'client.cert': pki.clientCert, 'client.key': pki.clientKey });
    const r = createHostSettingsResolver({ certsDirs: [docker, containers], cacert: [join(pki.dir, 'ca.pem')], env: {} });
    const s = await r.forHost('REG.io:443', 'https');
    assert.equal(s.tls.ca?.length, 3);
    assert.equal(s.tls.cert, pki.clientCert);
    assert.deepEqual(s.tls.origins, [
      `--cacert ${join(pki.dir, 'ca.pem')}`,
      join(docker, 'reg.io:443', 'ca.crt'),
      join(containers, 'reg.io', 'b.crt'),
      join(containers, 'reg.io', 'client.cert'),
      join(containers, 'reg.io', 'client.key'),
    ]);
    assert.deepEqual(hostDirNames('reg.io:443'), ['reg.io:443', 'reg.io']);
    assert.deepEqual(defaultCertsDirs({ XDG_CONFIG_HOME: '/x' }, '/h'), ['/etc/docker/certs.d', '/etc/containers/certs.d', '/x/containers/certs.d']);
    assert.deepEqual(defaultCertsDirs({}, '/h').at(-1), '/h/.config/containers/certs.d');
  });

  it('--cert/--key win over certs.d; insecure and plain HTTP per host', async () => {
    await hostDir(dir, 'reg.io', { 'other.cert': pki.clientCert, 'other.key': pki.clientKey });
    const r = createHostSettingsResolver({
      certDir: dir,
      cert: join(pki.dir, 'client.cert'),
      key: join(pki.dir, 'client.key'),
      insecureSkipVerify: ['reg.io'],
      plainHttp: ['plain.io:5000'],
      env: {},
    });
    const s = await r.forHost('reg.io', 'https');
    assert.equal(s.tls.cert, pki.clientCert);
    assert.equal(s.tls.insecureSkipVerify, true);
    assert.deepEqual(s.tls.origins, [`--cert ${join(pki.dir, 'client.cert')}`, `--key ${join(pki.dir, 'client.key')}`]);
    assert.equal((await r.forHost('plain.io:5000', 'https')).scheme, 'http');
    assert.equal((await r.forHost('plain.io:5001', 'https')).scheme, 'https');
    assert.equal((await r.forHost('plain.io:5000', 'https')).tls.insecureSkipVerify, undefined);
    const all = createHostSettingsResolver({ plainHttp: true, insecureSkipVerify: true, env: {}, certsDirs: [] });
    const a = await all.forHost('x.io', 'https');
    assert.equal(a.scheme, 'http');
    assert.equal(a.tls.insecureSkipVerify, true);
    assert.throws(() => createHostSettingsResolver({ cert: 'x' }), (e: unknown) => e instanceof MirrorError && e.code === 'USAGE');
  });

  it('unreadable or broken files are BAD_INPUT naming the file', async () => {
    const missing = join(dir, 'missing-ca.pem');
    await assert.rejects(createHostSettingsResolver({ cacert: [missing], env: {}, certsDirs: [] }).forHost('a.io', 'https'), (e: unknown) => {
      assert.ok(e instanceof MirrorError);
      assert.equal(e.code, 'BAD_INPUT');
      assert.equal(e.message, `cannot use ${missing}: no such file`);
      assert.equal(e.context.file, missing);
      return true;
    });
    const notCert = join(dir, 'junk.pem');
    await writeFile(notCert, 'hello');
    await assert.rejects(createHostSettingsResolver({ cacert: [notCert], env: {}, certsDirs: [] }).forHost('a.io', 'https'), {
      message: `cannot use ${notCert}: not a PEM or DER certificate`,
    });
    await assert.rejects(createHostSettingsResolver({ cacert: [dir], env: {}, certsDirs: [] }).forHost('a.io', 'https'), { message: `cannot use ${dir}: is a directory` });
    const d = await hostDir(join(dir, 'certs'), 'k.io', { 'client.cert': pki.clientCert });
    await assert.rejects(createHostSettingsResolver({ certDir: join(dir, 'certs'), env: {} }).forHost('k.io', 'https'), {
      message: `cannot use ${join(d, 'client.cert')}: client certificate without its key client.key`,
    });
    await copyFile(join(pki.dir, 'client.key'), join(d, 'lonely.key'));
    await writeFile(join(d, 'client.key'), pki.clientKey);
    await assert.rejects(createHostSettingsResolver({ certDir: join(dir, 'certs'), env: {} }).forHost('k.io', 'https'), {
      message: `cannot use ${join(d, 'lonely.key')}: key without its client certificate lonely.cert`,
    });
    await assert.rejects(createHostSettingsResolver({ certDir: join(dir, 'nope'), env: {} }).forHost('k.io', 'https'), /no such directory/);
  });

  it('proxy from the environment per host and scheme, with per-host overrides; answers are cached', async () => {
    const env = { HTTPS_PROXY: 'http://user:pw@proxy:3128', HTTP_PROXY: 'http://proxy:8080', NO_PROXY: '.internal,10.0.0.0/8' };
    const r = createHostSettingsResolver({ env, certsDirs: [], proxy: { 'direct.io': false, 'special.io': 'http://other:1' }, plainHttp: ['plain.io'] });
    assert.equal((await r.forHost('reg.io', 'https')).proxy, 'http://user:pw@proxy:3128');
    assert.equal((await r.forHost('plain.io', 'https')).proxy, 'http://proxy:8080', 'plain HTTP uses HTTP_PROXY');
    assert.equal((await r.forHost('r.internal:5000', 'https')).proxy, undefined);
    assert.equal((await r.forHost('10.2.3.4:5000', 'https')).proxy, undefined);
    assert.equal((await r.forHost('127.0.0.1:5000', 'https')).proxy, 'http://user:pw@proxy:3128');
    assert.equal((await r.forHost('direct.io', 'https')).proxy, undefined);
    assert.equal((await r.forHost('special.io', 'https')).proxy, 'http://other:1');
    assert.equal(r.forHost('reg.io', 'https'), r.forHost('REG.IO', 'https'), 'cached per host');
  });
});
