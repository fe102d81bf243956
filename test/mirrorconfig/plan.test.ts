/**
 * From reports and flags to the plan every generator reads: push reports of version 2 (mapping as data) and 1
 * (display strings), copy reports with and without endpoint/mapping, `--mirror`/`--source-registry`, and the
 * warnings and refusals that keep a node from pulling the wrong image. Hostile reports are refused with one line.
 */
import assert from 'node:assert/strict';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { MirrorError } from '../../src/errors/index.js';
import type { ProgressEvent } from '../../src/events/index.js';
import { buildPlan, type PlanOptions } from '../../src/mirrorconfig/plan.js';
import { DEMO, pushReport } from './fixtures.js';

describe('mirrorconfig plan: reports and flags', () => {
  let work: string;
  let n = 0;
  before(async () => {
    work = await mkdtemp(join(tmpdir(), 'mirror-config-plan-'));
  });
  after(async () => {
    await rm(work, { recursive: true, force: true });
  });

  async function file(content: unknown): Promise<string> {
    const f = join(work, `r${++n}.json`);
    await writeFile(f, typeof content === 'string' ? content : JSON.stringify(content));
    return f;
  }

  async function plan(options: PlanOptions): Promise<{ plan: Awaited<ReturnType<typeof buildPlan>>; warnings: string[] }> {
    const warnings: string[] = [];
    const p = await buildPlan({ ...options, events: (e: ProgressEvent) => (e.type === 'warning' ? warnings.push(e.message) : undefined) });
    return { plan: p, warnings };
  }

  async function refused(options: PlanOptions, code: string, ...mustSay: Array<string | RegExp>): Promise<MirrorError> {
    try {
      await buildPlan(options);
    } catch (e) {
      assert.ok(e instanceof MirrorError, String(e));
      assert.equal(e.code, code, e.message);
      const line = e.describe();
      assert.ok(!line.includes('\n'), 'one line');
      assert.ok(line.length < 400, `short: ${line}`);
      for (const m of mustSay) {
        if (typeof m === 'string') assert.ok(line.includes(m), `says ${m}: ${line}`);
        else assert.match(line, m);
      }
      return e;
    }
    assert.fail('refused');
  }

  it('a push report (version 2): one route per source registry, under the namespace, sorted', async () => {
    const f = await file(pushReport('172.18.0.20:5000', 'ns', DEMO));
    const { plan: p, warnings } = await plan({ reports: [f] });
    assert.deepEqual(warnings, []);
    assert.deepEqual(
      p.routes.map((r) => [r.source, r.endpoint.scheme, r.endpoint.host, r.prefix, r.repositories]),
      [
        ['docker.io', 'https', '172.18.0.20:5000', 'ns', ['library/busybox']],
        ['gcr.io', 'https', '172.18.0.20:5000', 'ns', ['kubernetes-e2e-test-images/nautilus']],
        ['quay.io', 'https', '172.18.0.20:5000', 'ns', ['mirror-demo/tools']],
      ],
    );
    assert.equal(p.fallback, true);
    assert.equal(p.origin, `report ${f}`);
  });

  it('--keep-registry-host reports: the host component is part of each prefix; the root namespace works', async () => {
    const f = await file(
      pushReport('reg:5000', '', [
        { source: 'quay.io/team/app:1', registry: 'quay.io', repository: 'team/app', dest: 'quay.io/team/app' },
        { source: 'localhost:5000/x:1', registry: 'localhost:5000', repository: 'x', dest: 'localhost_5000/x' },
        { source: 'gcr.io/a/b:1', registry: 'gcr.io', repository: 'a/b', dest: 'a/b' },
      ]),
    );
    const { plan: p } = await plan({ reports: [f] });
    assert.deepEqual(
      p.routes.map((r) => [r.source, r.prefix]),
      [
        ['gcr.io', ''],
        ['localhost:5000', 'localhost_5000'],
        ['quay.io', 'quay.io'],
      ],
    );
  });

  it('a version-1 push report (display strings only) gives the same routes', async () => {
    const v2 = pushReport('172.18.0.20:5000', 'ns', DEMO) as { images: Array<Record<string, unknown>> };
    const v1 = { version: 1, source: 'b', target: 'http://172.18.0.20:5000/ns', dryRun: false, summary: {}, images: v2.images.map(({ mapping: _m, ...rest }) => rest) };
    const { plan: p } = await plan({ reports: [await file(v1)] });
    assert.deepEqual(
      p.routes.map((r) => [r.source, r.endpoint.scheme, r.endpoint.host, r.prefix]),
      [
        ['docker.io', 'http', '172.18.0.20:5000', 'ns'],
        ['gcr.io', 'http', '172.18.0.20:5000', 'ns'],
        ['quay.io', 'http', '172.18.0.20:5000', 'ns'],
      ],
    );
  });

  it('copy reports: version 1 (scheme unknown: https with a warning) and version 2 (endpoint and mapping)', async () => {
    const v1 = await file({ version: 1, source: 'docker://quay.io/prometheus/node-exporter:v1.8.2', destination: 'docker://10.0.0.5:5000/mirror/prometheus/node-exporter:v1.8.2', dryRun: false, status: 'copied' });
    const a = await plan({ reports: [v1] });
    assert.deepEqual(a.plan.routes.map((r) => [r.source, r.endpoint.scheme, r.endpoint.host, r.prefix]), [['quay.io', 'https', '10.0.0.5:5000', 'mirror']]);
    assert.equal(a.warnings.length, 1);
    assert.match(a.warnings[0]!, /does not say whether 10\.0\.0\.5:5000 speaks https or plain http/);
    const v2 = await file({
      version: 2,
      source: 'docker://docker.io/library/busybox:1.36',
      destination: 'docker://10.0.0.5:5000/library/busybox:1.36',
      status: 'already present',
      endpoint: { kind: 'registry', scheme: 'http', host: '10.0.0.5:5000', namespace: '' },
      mapping: { source: { registry: 'docker.io', repository: 'library/busybox', tag: '1.36', digest: null }, destination: { registry: '10.0.0.5:5000', repository: 'library/busybox', tag: '1.36' } },
    });
    const b = await plan({ reports: [v2] });
    assert.deepEqual(b.warnings, []);
    assert.deepEqual(b.plan.routes.map((r) => [r.source, r.endpoint.scheme, r.prefix]), [['docker.io', 'http', '']]);
  });

  it('a sync report (mirror sync --report): display strings, scoped names, retagged images and failures named', async () => {
    const f = await file({
      version: 1,
      kind: 'mirror-sync-report',
      header: { config: 'sync.yaml', format: 'skopeo', destination: 'reg:5000/mirror', dryRun: false, started: '2024-01-01T00:00:00Z' },
      images: [
        { action: 'copied', source: 'quay.io/team/app:1.0', destination: 'reg:5000/mirror/quay.io/team/app:1.0', digest: `sha256:${'b'.repeat(64)}`, bytes: 1, seconds: 0 },
        { action: 'skipped', source: 'docker.io/library/busybox:1.36', destination: 'reg:5000/mirror/docker.io/library/busybox:1.36-mirror', bytes: 0, seconds: 0 },
        { action: 'failed', source: 'gcr.io/a/b:1', error: 'x', bytes: 0, seconds: 0 },
      ],
      pruned: [],
      summary: {},
    });
    const { plan: p, warnings } = await plan({ reports: [f] });
    assert.deepEqual(p.routes.map((r) => [r.source, r.endpoint.scheme, r.endpoint.host, r.prefix]), [
      ['docker.io', 'https', 'reg:5000', 'mirror/docker.io'],
      ['quay.io', 'https', 'reg:5000', 'mirror/quay.io'],
    ]);
    const all = warnings.join('\n');
    assert.match(all, /does not say whether reg:5000 speaks https or plain http/);
    assert.match(all, /1 image\(s\) were given other tags at the mirror.*docker\.io\/library\/busybox:1\.36 \(as :1\.36-mirror\)/);
    assert.match(all, /1 image\(s\) are not in the mirror \(failed\): gcr\.io\/a\/b:1/);
  });

  it('several reports: a source mirrored at two places gets both, in the order the reports were given', async () => {
    const one = await file(pushReport('b-reg:5000', 'two', DEMO.slice(0, 1).map((i) => ({ ...i, dest: `two/${i.repository}` }))));
    const two = await file(pushReport('a-reg:5000', 'ns', DEMO));
    const { plan: p } = await plan({ reports: [one, two] });
    assert.deepEqual(
      p.routes.filter((r) => r.source === 'gcr.io').map((r) => `${r.endpoint.host}/${r.prefix}`),
      ['b-reg:5000/two', 'a-reg:5000/ns'],
    );
    assert.equal(p.origin, `reports ${one}, ${two}`);
  });

  it('leaves out, with a warning, images not in the mirror, renamed, or copied within the mirror; names a conflict lost to another registry', async () => {
    const f = await file(
      pushReport('reg:5000', 'ns', [
        ...DEMO,
        { source: 'gcr.io/broken:1', registry: 'gcr.io', repository: 'broken', dest: 'ns/broken', status: 'failed' },
        { source: 'quay.io/team/app:1.0', registry: 'quay.io', repository: 'team/app', dest: 'ns/team/app', status: 'skipped-conflict', winner: 'docker.io/team/app:1.0' },
        { source: 'docker.io/team/app:1.0', registry: 'docker.io', repository: 'team/app', dest: 'ns/team/app' },
        { source: 'ghcr.io/x/renamed:1', registry: 'ghcr.io', repository: 'x/renamed', dest: 'ns/other' },
        { source: 'reg:5000/self:1', registry: 'reg:5000', repository: 'self', dest: 'ns/self' },
      ]),
    );
    const { plan: p, warnings } = await plan({ reports: [f] });
    assert.deepEqual(p.routes.map((r) => r.source), ['docker.io', 'gcr.io', 'quay.io'], 'no route for ghcr.io (renamed) or the mirror itself');
    const all = warnings.join('\n');
    assert.match(all, /left out 1 image\(s\) whose repository was renamed.*ghcr\.io\/x\/renamed:1 \(at ns\/other\)/);
    assert.match(all, /left out 1 image\(s\) copied within reg:5000 itself/);
    assert.match(all, /2 image\(s\) are not in the mirror \(failed, skipped-conflict\): gcr\.io\/broken:1, quay\.io\/team\/app:1\.0/);
    assert.match(all, /"quay\.io\/team\/app:1\.0" lost its destination to "docker\.io\/team\/app:1\.0".*--keep-registry-host/);
  });

  it('a dry-run report still configures, with a warning', async () => {
    const f = await file(pushReport('reg:5000', 'ns', DEMO.map((i) => ({ ...i, status: 'planned' })), { dryRun: true }));
    const { plan: p, warnings } = await plan({ reports: [f] });
    assert.equal(p.routes.length, 3);
    assert.match(warnings.join('\n'), /dry run: its images are not in reg:5000 yet/);
  });

  it('--mirror with reports replaces the address nodes use; --plain-http makes it http; --source-registry keeps only some', async () => {
    const f = await file(pushReport('127.0.0.1:5000', 'ns', DEMO));
    const a = await plan({ reports: [f], mirror: 'registry.internal:443' });
    assert.deepEqual([...new Set(a.plan.routes.map((r) => `${r.endpoint.scheme}://${r.endpoint.host}/${r.prefix}`))], ['https://registry.internal:443/ns']);
    const b = await plan({ reports: [f], mirror: 'http://10.1.1.1:5000' });
    assert.deepEqual([...new Set(b.plan.routes.map((r) => `${r.endpoint.scheme}://${r.endpoint.host}`))], ['http://10.1.1.1:5000']);
    const c = await plan({ reports: [f], plainHttp: true, sourceRegistries: ['gcr.io', 'https://index.docker.io/'] });
    assert.deepEqual(c.plan.routes.map((r) => `${r.source} ${r.endpoint.scheme}`), ['docker.io http', 'gcr.io http']);
    await refused({ reports: [f], sourceRegistries: ['ghcr.io'] }, 'BAD_INPUT', '--source-registry ghcr.io');
    await refused({ reports: [f], mirror: 'https://h:5000/other-ns' }, 'USAGE', 'the namespace comes from the report');
    const g = await file(pushReport('other:5000', 'ns', DEMO));
    await refused({ reports: [f, g], mirror: 'https://h:5000' }, 'USAGE', '127.0.0.1:5000, other:5000');
    await refused({ reports: [f], keepRegistryHost: true }, 'USAGE', '--keep-registry-host goes with --mirror');
  });

  it('flags: --mirror (all its forms) and --source-registry, with and without --keep-registry-host', async () => {
    for (const m of ['https://172.18.0.20:5000/v2/test-namespace', '172.18.0.20:5000/test-namespace', 'https://172.18.0.20:5000/test-namespace/']) {
      const { plan: p } = await plan({ mirror: m, sourceRegistries: ['gcr.io', 'docker.io', 'gcr.io'] });
      assert.deepEqual(p.routes.map((r) => [r.source, r.endpoint.scheme, r.endpoint.host, r.prefix, r.repositories]), [
        ['docker.io', 'https', '172.18.0.20:5000', 'test-namespace', []],
        ['gcr.io', 'https', '172.18.0.20:5000', 'test-namespace', []],
      ]);
      assert.equal(p.origin, '--mirror https://172.18.0.20:5000/test-namespace --source-registry docker.io --source-registry gcr.io');
    }
    const k = await plan({ mirror: 'http://reg:5000/ns', sourceRegistries: ['localhost:5000', 'quay.io'], keepRegistryHost: true });
    assert.deepEqual(k.plan.routes.map((r) => [r.source, r.endpoint.scheme, r.prefix]), [
      ['localhost:5000', 'http', 'ns/localhost_5000'],
      ['quay.io', 'http', 'ns/quay.io'],
    ]);
    const root = await plan({ mirror: 'reg:5000', sourceRegistries: ['gcr.io'] });
    assert.equal(root.plan.routes[0]!.prefix, '');
  });

  it('refuses bad flags with one line (no password echoed)', async () => {
    await refused({}, 'USAGE', '--from-report FILE');
    await refused({ mirror: 'https://reg:5000/ns' }, 'USAGE', '--mirror needs --source-registry');
    const e = await refused({ mirror: 'https://user:Sup3rS3cret@reg:5000/ns', sourceRegistries: ['gcr.io'] }, 'USAGE', 'credentials do not go in --mirror');
    assert.ok(!e.describe().includes('Sup3rS3cret'));
    await refused({ mirror: 'oci:./out', sourceRegistries: ['gcr.io'] }, 'USAGE', 'not an OCI layout');
    await refused({ mirror: 'ftp://reg/ns', sourceRegistries: ['gcr.io'] }, 'USAGE', 'invalid --mirror');
    await refused({ mirror: 'reg:5000/NS', sourceRegistries: ['gcr.io'] }, 'USAGE', 'bad namespace');
    await refused({ mirror: 'reg:5000/ns', sourceRegistries: ['not a host'] }, 'USAGE', '--source-registry "not a host"');
    await refused({ mirror: 'reg:5000/ns', sourceRegistries: ['reg:5000'] }, 'USAGE', 'is the mirror itself');
    await refused({ mirror: 'http://reg:5000/ns', sourceRegistries: ['gcr.io'], cacert: '/nonexistent' }, 'USAGE', 'plain http');
    await refused({ mirror: 'http://reg:5000/ns', sourceRegistries: ['gcr.io'], insecureSkipVerify: true }, 'USAGE', 'plain http');
    await refused({ mirror: 'reg:5000/ns', sourceRegistries: ['gcr.io'], cert: '/x' }, 'USAGE', '--cert and --key go together');
    await refused({ mirror: 'reg:5000/ns', sourceRegistries: ['gcr.io'], cacert: join(work, 'missing.crt') }, 'BAD_INPUT', 'no such file');
    const notPem = await file('hello');
    await refused({ mirror: 'reg:5000/ns', sourceRegistries: ['gcr.io'], cacert: notPem }, 'BAD_INPUT', 'is not a PEM certificate');
    await refused({ mirror: 'reg:5000/ns', sourceRegistries: ['gcr.io'], cert: notPem, key: notPem }, 'BAD_INPUT', 'is not a PEM certificate');
  });

  it('reads TLS files as given, with absolute paths', async () => {
    const ca = await file('-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n');
    const key = await file('-----BEGIN EC PRIVATE KEY-----\nMHc\n-----END EC PRIVATE KEY-----\n');
    const { plan: p } = await plan({ mirror: 'reg:5000/ns', sourceRegistries: ['gcr.io'], cacert: ca, cert: ca, key, insecureSkipVerify: true });
    assert.equal(p.tls.ca?.path, ca);
    assert.equal(p.tls.key?.content.toString(), '-----BEGIN EC PRIVATE KEY-----\nMHc\n-----END EC PRIVATE KEY-----\n');
    assert.equal(p.tls.insecureSkipVerify, true);
  });

  it('refuses hostile or broken reports with one line naming the file, quoting at most a short prefix', async () => {
    const long = 'x'.repeat(5000);
    await refused({ reports: [join(work, 'none.json')] }, 'BAD_INPUT', 'no such file');
    await refused({ reports: [work] }, 'BAD_INPUT', 'is not a file');
    await refused({ reports: [await file('{"version": 2, "images": [')] }, 'BAD_INPUT', 'not JSON');
    await refused({ reports: [await file('[]')] }, 'BAD_INPUT', 'not a JSON object');
    await refused({ reports: [await file({ images: [] })] }, 'BAD_INPUT', 'no report version');
    await refused({ reports: [await file({ version: 2 })] }, 'BAD_INPUT', 'neither a push report');
    await refused({ reports: [await file({ version: 2, endpoint: { kind: 'oci-layout', path: './out' }, images: [] })] }, 'BAD_INPUT', 'OCI layout');
    await refused({ reports: [await file({ version: 1, target: 'oci:./out', images: [] })] }, 'BAD_INPUT', 'OCI layout');
    const hostile = [
      pushReport('reg:5000\n[host."evil"]', 'ns', DEMO),
      pushReport('reg:5000', 'ns', [{ ...DEMO[0]!, registry: 'gcr.io"\nserver = "https://evil' }]),
      pushReport('reg:5000', 'ns', [{ ...DEMO[0]!, repository: '../../etc/passwd' }]),
      pushReport('reg:5000', 'ns', [{ ...DEMO[0]!, dest: `ns/${long}` }]),
      { ...pushReport('reg:5000', 'ns', DEMO), endpoint: { kind: 'registry', scheme: 'gopher', host: 'reg:5000', namespace: 'ns' } },
    ];
    for (const h of hostile) {
      const e = await refused({ reports: [await file(h)] }, 'BAD_INPUT', 'report ');
      assert.ok(!e.describe().includes(long), 'no long input echoed');
    }
    const wrongHost = pushReport('reg:5000', 'ns', DEMO) as { images: Array<{ mapping: { destination: { registry: string } } }> };
    wrongHost.images[0]!.mapping.destination.registry = 'other:5000';
    await refused({ reports: [await file(wrongHost)] }, 'BAD_INPUT', 'not to the endpoint reg:5000');
    const none = await file(pushReport('reg:5000', 'ns', DEMO.map((i) => ({ ...i, status: 'failed' }))));
    await refused({ reports: [none] }, 'BAD_INPUT', 'nothing to configure');
  });
});
