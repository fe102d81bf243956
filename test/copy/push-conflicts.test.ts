/**
 * Two images never claim one tag silently, end to end: bundles made by testdata/make-fixtures.ts, pushed by the built
 * binary into the real docker-registry started here, read back with skopeo. Also the report's mapping as data.
 */
import assert from 'node:assert/strict';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { buildDockerSave, buildOciLayout, type BuiltLayout, writeTarBundle } from '../../testdata/make-fixtures.js';
import { runCli } from '../helpers/cli.js';
import { startFaultProxy } from '../helpers/fault-proxy.js';
import { startRegistry, type TestRegistry } from '../helpers/registry.js';
import { skopeoInspectRaw, skopeoInspectRawDigest } from '../helpers/skopeo.js';

interface ReportImage {
  source: string;
  destination?: string;
  digest: string;
  status: string;
  error?: string;
  errorCode?: string;
  mapping?: {
    source: { registry: string; repository: string; tag: string | null; digest: string | null };
    destination: { registry: string | null; repository: string; tag: string | null } | null;
  };
  conflict?: { reference: string; claims: Array<{ source: string; digest: string }>; resolution: string; winner?: string };
}

interface Report {
  version: number;
  source: string;
  target: string;
  endpoint: { kind: string; scheme?: string; host?: string; namespace?: string; path?: string };
  mappingOptions: { keepRegistryHost: boolean; onConflict: string };
  summary: Record<string, number>;
  images: ReportImage[];
}

const short = (d: string): string => d.slice(0, 'sha256:'.length + 12);

describe('mirror push: two images never claim one tag silently (docker-registry + skopeo)', function () {
  this.timeout(180_000);
  let registry: TestRegistry;
  let work: string;
  /** docker.io/team/app:1.0 and quay.io/team/app:1.0 (different images), and localhost:5000/other/x:2. */
  let mixed: BuiltLayout;
  let mixedFile: string;

  before(async () => {
    registry = await startRegistry();
    work = await mkdtemp(join(tmpdir(), 'mirror-conflicts-'));
    mixed = await buildOciLayout({
      seed: 'conflicts',
      images: [
        { ref: 'docker.io/team/app:1.0', layers: [{ files: 1, sizeBytes: 900 }] },
        { ref: 'quay.io/team/app:1.0', layers: [{ files: 1, sizeBytes: 1100 }] },
        { ref: 'localhost:5000/other/x:2', layers: [{ files: 1, sizeBytes: 700 }] },
      ],
    });
    mixedFile = join(work, 'mixed.tar.gz');
    await writeTarBundle(mixed.files, mixedFile, { order: 'metadata-last', compression: 'gzip' });
  });
  after(async () => {
    await registry?.stop();
    if (work) await rm(work, { recursive: true, force: true });
  });

  const digestOf = (layout: BuiltLayout, ref: string): string => layout.images.find((i) => i.ref === ref)!.digest;
  const missing = async (ref: string): Promise<boolean> => skopeoInspectRaw(`docker://${registry.host}/${ref}`).then(() => false, () => true);
  const readReport = async (file: string): Promise<Report> => JSON.parse(await readFile(file, 'utf8')) as Report;

  it('--dry-run names both sources and their digests, fails both (exit 7) and sends nothing', async () => {
    const proxy = await startFaultProxy({ upstream: registry.url });
    try {
      const report = join(work, 'dry.json');
      const r = await runCli(['push', '--source', mixedFile, '--private-registry', `http://${proxy.host}/dry`, '--dry-run', '--report', report]);
      assert.equal(r.code, 7, r.stderr + r.stdout);
      const docker = digestOf(mixed, 'docker.io/team/app:1.0');
      const quay = digestOf(mixed, 'quay.io/team/app:1.0');
      for (const line of r.stdout.split('\n').filter((l) => l.includes('/team/app'))) {
        for (const s of ['docker.io/team/app:1.0', 'quay.io/team/app:1.0', short(docker), short(quay), `${proxy.host}/dry/team/app:1.0`]) {
          assert.ok(line.includes(s), `"${s}" in: ${line}`);
        }
      }
      assert.match(r.stdout, new RegExp(`localhost:5000/other/x:2 -> ${proxy.host}/dry/other/x:2`));
      assert.deepEqual(proxy.requests, [], 'nothing sent');
      const rep = await readReport(report);
      assert.deepEqual(
        rep.images.map((i) => [i.source, i.status, i.conflict?.resolution]),
        [
          ['docker.io/team/app:1.0', 'failed', 'failed'],
          ['quay.io/team/app:1.0', 'failed', 'failed'],
          ['localhost:5000/other/x:2', 'planned', undefined],
        ],
      );
      assert.deepEqual(rep.images[0]!.conflict?.claims, [
        { source: 'docker.io/team/app:1.0', digest: docker },
        { source: 'quay.io/team/app:1.0', digest: quay },
      ]);
    } finally {
      await proxy.stop();
    }
  });

  it('push (--on-conflict fail, the default): both fail naming each other, the rest is pushed, exit 7, the tag is never written', async () => {
    const report = join(work, 'fail.json');
    const r = await runCli(['push', '--source', mixedFile, '--private-registry', `http://${registry.host}/f`, '--report', report]);
    assert.equal(r.code, 7, r.stderr + r.stdout);
    const failed = r.stdout.split('\n').filter((l) => l.startsWith('failed: '));
    assert.equal(failed.length, 2, r.stdout);
    for (const line of failed) {
      for (const s of ['docker.io/team/app:1.0', 'quay.io/team/app:1.0', short(digestOf(mixed, 'docker.io/team/app:1.0')), short(digestOf(mixed, 'quay.io/team/app:1.0'))]) {
        assert.ok(line.includes(s), `"${s}" in: ${line}`);
      }
    }
    assert.ok(await missing('f/team/app:1.0'), 'no tag was written for either image');
    assert.equal(await skopeoInspectRawDigest(`docker://${registry.host}/f/other/x:2`), digestOf(mixed, 'localhost:5000/other/x:2'));
    const rep = await readReport(report);
    assert.deepEqual(rep.images.map((i) => i.status), ['failed', 'failed', 'pushed']);
    assert.ok(rep.images.slice(0, 2).every((i) => i.errorCode === 'BAD_INPUT'));
  });

  it('--on-conflict first: the first in bundle order gets the tag, the other is skipped-conflict, exit 0', async () => {
    const report = join(work, 'first.json');
    const r = await runCli(['push', '--source', mixedFile, '--private-registry', `http://${registry.host}/first`, '--on-conflict', 'first', '--report', report]);
    assert.equal(r.code, 0, r.stderr + r.stdout);
    assert.equal(await skopeoInspectRawDigest(`docker://${registry.host}/first/team/app:1.0`), digestOf(mixed, 'docker.io/team/app:1.0'));
    const skipped = r.stdout.split('\n').find((l) => l.startsWith('skipped: quay.io/team/app:1.0'));
    assert.ok(skipped?.includes('docker.io/team/app:1.0') && skipped.includes(short(digestOf(mixed, 'quay.io/team/app:1.0'))), r.stdout);
    const rep = await readReport(report);
    assert.deepEqual(rep.images.map((i) => i.status), ['pushed', 'skipped-conflict', 'pushed']);
    assert.equal(rep.summary.skippedConflict, 1);
    assert.equal(rep.images[1]!.conflict?.winner, 'docker.io/team/app:1.0');

    // Bundle order decides, not the names: with quay.io first, quay.io wins.
    const reversed = await buildOciLayout({
      seed: 'conflicts-reversed',
      images: [
        { ref: 'quay.io/team/app:1.0', layers: [{ files: 1, sizeBytes: 1100 }] },
        { ref: 'docker.io/team/app:1.0', layers: [{ files: 1, sizeBytes: 900 }] },
      ],
    });
    const file = join(work, 'reversed.tar');
    await writeTarBundle(reversed.files, file, { order: 'metadata-first', compression: 'none' });
    const again = await runCli(['push', '--source', file, '--private-registry', `http://${registry.host}/first2`, '--on-conflict', 'first', '--json']);
    assert.equal(again.code, 0, again.stderr + again.stdout);
    assert.equal(await skopeoInspectRawDigest(`docker://${registry.host}/first2/team/app:1.0`), digestOf(reversed, 'quay.io/team/app:1.0'));
  });

  it('--keep-registry-host: each image under its source host (localhost:5000 as localhost_5000), no conflict', async () => {
    const r = await runCli(['push', '--source', mixedFile, '--private-registry', `http://${registry.host}/k`, '--keep-registry-host', '--json']);
    assert.equal(r.code, 0, r.stderr + r.stdout);
    for (const [ref, dest] of [
      ['docker.io/team/app:1.0', 'k/docker.io/team/app:1.0'],
      ['quay.io/team/app:1.0', 'k/quay.io/team/app:1.0'],
      ['localhost:5000/other/x:2', 'k/localhost_5000/other/x:2'],
    ] as const) {
      assert.equal(await skopeoInspectRawDigest(`docker://${registry.host}/${dest}`), digestOf(mixed, ref), dest);
    }
    const out = JSON.parse(r.stdout) as Report;
    assert.deepEqual(out.mappingOptions, { keepRegistryHost: true, onConflict: 'fail' });
    assert.deepEqual(
      out.images.map((i) => i.mapping?.destination?.repository),
      ['k/docker.io/team/app', 'k/quay.io/team/app', 'k/localhost_5000/other/x'],
    );
  });

  it('two index.json entries with one name and different digests conflict; the same digest twice does not', async () => {
    const layout = await buildOciLayout({
      seed: 'twice',
      images: [
        { ref: 'gcr.io/team/dup:1', layers: [{ files: 1, sizeBytes: 500 }] },
        { ref: 'gcr.io/team/dup:1', layers: [{ files: 1, sizeBytes: 800 }] },
        { ref: 'gcr.io/team/other:1', layers: [{ files: 1, sizeBytes: 600 }] },
      ],
    });
    assert.notEqual(layout.images[0]!.digest, layout.images[1]!.digest);
    const file = join(work, 'twice.tar.xz');
    await writeTarBundle(layout.files, file, { order: 'metadata-last', compression: 'xz' });
    const r = await runCli(['push', '--source', file, '--private-registry', `http://${registry.host}/twice`, '--json']);
    assert.equal(r.code, 7, r.stderr + r.stdout);
    const out = JSON.parse(r.stdout) as Report;
    assert.deepEqual(out.images.map((i) => i.status), ['failed', 'failed', 'pushed']);
    assert.ok(out.images[0]!.error?.includes(short(layout.images[1]!.digest)), out.images[0]!.error);
    assert.ok(await missing('twice/team/dup:1'));

    // With --on-conflict first, the entry that comes first in index.json gets the tag.
    const first = await runCli(['push', '--source', file, '--private-registry', `http://${registry.host}/twice`, '--on-conflict', 'first']);
    assert.equal(first.code, 0, first.stderr + first.stdout);
    assert.equal(await skopeoInspectRawDigest(`docker://${registry.host}/twice/team/dup:1`), layout.images[0]!.digest);

    const same = await buildOciLayout({
      seed: 'same',
      images: [
        { ref: 'gcr.io/team/same:1', layers: [{ files: 1, sizeBytes: 500 }] },
        { ref: 'gcr.io/team/same:1', layers: [{ files: 1, sizeBytes: 500 }] },
      ],
    });
    assert.equal(same.images[0]!.digest, same.images[1]!.digest);
    const sameFile = join(work, 'same.tar');
    await writeTarBundle(same.files, sameFile, { order: 'metadata-first', compression: 'none' });
    const ok = await runCli(['push', '--source', sameFile, '--private-registry', `http://${registry.host}/same`, '--json']);
    assert.equal(ok.code, 0, ok.stderr + ok.stdout);
    assert.ok((JSON.parse(ok.stdout) as Report).images.every((i) => i.conflict === undefined));
    assert.equal(await skopeoInspectRawDigest(`docker://${registry.host}/same/team/same:1`), same.images[0]!.digest);
  });

  it('when every image is in a conflict, the run fails as bad input (exit 3)', async () => {
    const layout = await buildOciLayout({
      seed: 'all',
      images: [
        { ref: 'docker.io/team/all:1', layers: [{ files: 1, sizeBytes: 500 }] },
        { ref: 'ghcr.io/team/all:1', layers: [{ files: 1, sizeBytes: 800 }] },
      ],
    });
    const file = join(work, 'all.tar');
    await writeTarBundle(layout.files, file, { order: 'metadata-first', compression: 'none' });
    const r = await runCli(['push', '--source', file, '--private-registry', `http://${registry.host}/all`]);
    assert.equal(r.code, 3, r.stderr + r.stdout);
    assert.ok(await missing('all/team/all:1'));
  });

  it('docker save: one RepoTag in two manifest.json entries (different images) conflicts; --on-conflict first pushes the first', async () => {
    const save = await buildDockerSave({
      seed: 'save-twice',
      images: [
        { refs: ['team/app:1.0'], layers: [{ files: 1, sizeBytes: 700 }] },
        { refs: ['team/app:1.0'], layers: [{ files: 1, sizeBytes: 1300 }] },
        { refs: ['team/tool:2'], layers: [{ files: 1, sizeBytes: 500 }] },
      ],
    });
    assert.notEqual(save.images[0]!.configDigest, save.images[1]!.configDigest);
    const file = join(work, 'save-twice.tar');
    await writeTarBundle(save.files, file, { order: 'metadata-last', compression: 'none' });
    const env = { XDG_CACHE_HOME: join(work, 'cache-save-twice') };
    const r = await runCli(['push', '--source', file, '--private-registry', `http://${registry.host}/ds`, '--json'], { env });
    assert.equal(r.code, 7, r.stderr + r.stdout);
    const out = JSON.parse(r.stdout) as Report;
    assert.deepEqual(out.images.map((i) => i.status), ['failed', 'failed', 'pushed']);
    assert.ok(await missing('ds/team/app:1.0'), 'no tag was written');

    const first = await runCli(['push', '--source', file, '--private-registry', `http://${registry.host}/ds`, '--on-conflict', 'first', '--json'], { env });
    assert.equal(first.code, 0, first.stderr + first.stdout);
    const manifest = JSON.parse((await skopeoInspectRaw(`docker://${registry.host}/ds/team/app:1.0`)).toString('utf8')) as { config: { digest: string } };
    assert.equal(manifest.config.digest, save.images[0]!.configDigest, 'the first entry got the tag');
  });

  it('a tag already at the destination pointing elsewhere is overwritten: not a conflict', async () => {
    const one = await buildOciLayout({ seed: 'over-1', images: [{ ref: 'docker.io/team/over:1', layers: [{ files: 1, sizeBytes: 500 }] }] });
    const two = await buildOciLayout({ seed: 'over-2', images: [{ ref: 'quay.io/team/over:1', layers: [{ files: 1, sizeBytes: 500 }] }] });
    for (const [i, layout] of [one, two].entries()) {
      const file = join(work, `over-${i}.tar`);
      await writeTarBundle(layout.files, file, { order: 'metadata-first', compression: 'none' });
      const r = await runCli(['push', '--source', file, '--private-registry', `http://${registry.host}/over`]);
      assert.equal(r.code, 0, r.stderr + r.stdout);
      assert.equal(await skopeoInspectRawDigest(`docker://${registry.host}/over/team/over:1`), layout.images[0]!.digest);
    }
  });

  it('the report and --json record the mapping as data per image, and the endpoint once (version 2)', async () => {
    const report = join(work, 'mapping.json');
    const r = await runCli(['push', '--source', mixedFile, '--private-registry', `http://${registry.host}/v2/map`, '--on-conflict', 'first', '--report', report, '--json']);
    assert.equal(r.code, 0, r.stderr + r.stdout);
    const fromFile = await readReport(report);
    const fromJson = JSON.parse(r.stdout) as Report & { status: string };
    for (const rep of [fromFile, fromJson]) {
      assert.equal(rep.version, 2);
      assert.deepEqual(rep.endpoint, { kind: 'registry', scheme: 'http', host: registry.host, namespace: 'map' });
      assert.equal(rep.target, `http://${registry.host}/map`, 'the display string is kept');
      const [docker, quay, local] = rep.images;
      // Version-1 fields keep their names and types.
      assert.equal(docker?.source, 'docker.io/team/app:1.0');
      assert.equal(docker?.destination, `${registry.host}/map/team/app:1.0`);
      assert.deepEqual(docker?.mapping, {
        source: { registry: 'docker.io', repository: 'team/app', tag: '1.0', digest: digestOf(mixed, 'docker.io/team/app:1.0') },
        destination: { registry: registry.host, repository: 'map/team/app', tag: '1.0' },
      });
      assert.deepEqual(quay?.mapping?.source, { registry: 'quay.io', repository: 'team/app', tag: '1.0', digest: digestOf(mixed, 'quay.io/team/app:1.0') });
      assert.equal(quay?.status, 'skipped-conflict');
      assert.deepEqual(local?.mapping, {
        source: { registry: 'localhost:5000', repository: 'other/x', tag: '2', digest: digestOf(mixed, 'localhost:5000/other/x:2') },
        destination: { registry: registry.host, repository: 'map/other/x', tag: '2' },
      });
    }
    // What the report says is where skopeo finds it.
    const d = fromFile.images[0]!.mapping!.destination!;
    assert.equal(await skopeoInspectRawDigest(`docker://${d.registry!}/${d.repository}:${d.tag!}`), fromFile.images[0]!.digest);
  });

  it('into an OCI layout: one name given twice conflicts there too; the endpoint is the directory', async () => {
    const layout = await buildOciLayout({
      seed: 'layout-twice',
      images: [
        { ref: 'gcr.io/team/dup:1', layers: [{ files: 1, sizeBytes: 500 }] },
        { ref: 'gcr.io/team/dup:1', layers: [{ files: 1, sizeBytes: 800 }] },
        { ref: 'gcr.io/team/ok:1', layers: [{ files: 1, sizeBytes: 600 }] },
      ],
    });
    const file = join(work, 'layout-twice.tar');
    await writeTarBundle(layout.files, file, { order: 'metadata-first', compression: 'none' });
    const dir = join(work, 'layout-out');
    const r = await runCli(['push', '--source', file, '--private-registry', `oci:${dir}`, '--json']);
    assert.equal(r.code, 7, r.stderr + r.stdout);
    const out = JSON.parse(r.stdout) as Report;
    assert.deepEqual(out.endpoint, { kind: 'oci-layout', path: dir });
    assert.deepEqual(out.images[2]?.mapping?.destination, { registry: null, repository: 'gcr.io/team/ok', tag: '1' });
    assert.equal(await skopeoInspectRawDigest(`oci:${dir}:gcr.io/team/ok:1`).catch(() => skopeoInspectRawDigest(`oci:${dir}:1`)), layout.images[2]!.digest);
  });
});
