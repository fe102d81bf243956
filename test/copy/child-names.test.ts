/**
 * Child manifests (the platform images under an index) are named `repo@sha256:...` wherever a person reads about
 * them: registry errors, image failures, the summary and the report. Against the real docker-registry, behind a proxy
 * that refuses the child manifests.
 */
import assert from 'node:assert/strict';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { buildOciLayout, DEMO_SPEC, writeTarBundle } from '../../testdata/make-fixtures.js';
import { runCli } from '../helpers/cli.js';
import { startFaultProxy, type FaultProxy } from '../helpers/fault-proxy.js';
import { stopAll } from '../helpers/proc.js';
import { startRegistry, type TestRegistry } from '../helpers/registry.js';

describe('child manifests are named repo@digest (integration)', function () {
  this.timeout(60_000);
  let registry: TestRegistry;
  let proxy: FaultProxy;
  let work: string;

  before(async () => {
    registry = await startRegistry();
    work = await mkdtemp(join(tmpdir(), 'mirror-names-'));
  });
  after(async () => {
    await proxy?.stop();
    await registry?.stop();
    await stopAll();
    if (work) await rm(work, { recursive: true, force: true });
  });

  it('a refused platform manifest is named repo@sha256:..., never repo:sha256:...', async () => {
    const demo = await buildOciLayout(DEMO_SPEC);
    const file = join(work, 'demo.tar');
    await writeTarBundle(demo.files, file, { order: 'metadata-first', compression: 'none' });
    const invalid = JSON.stringify({ errors: [{ code: 'MANIFEST_INVALID', message: 'manifest invalid' }] });
    proxy = await startFaultProxy({
      upstream: registry.url,
      rules: [{ kind: 'respond', method: 'PUT', pathIncludes: '/manifests/sha256:', probability: 1, status: 400, body: invalid }],
    });
    const report = join(work, 'names.json');
    const r = await runCli(['push', '--source', file, '--private-registry', `http://${proxy.host}/names`, '--report', report]);
    assert.equal(r.code, 7, r.stderr + r.stdout);
    const index = demo.images.find((i) => i.manifests.length > 1);
    assert.ok(index, 'the demo bundle has a multi-platform image');
    const text = `${r.stdout}\n${r.stderr}\n${await readFile(report, 'utf8')}`;
    assert.match(text, /names\/library\/busybox@sha256:[0-9a-f]{64} failed: HTTP 400 Bad Request: MANIFEST_INVALID/);
    assert.doesNotMatch(text, /[\w.-]:sha256:[0-9a-f]/, 'no repo:sha256: anywhere');
  });
});
