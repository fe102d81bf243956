/**
 * A `docker save` push killed halfway (SIGKILL) and run again: the layers the registry committed before the kill
 * were recorded as they were committed, so the second run finds them (HEAD) and sends only the rest. Counted at a
 * recording proxy in front of the real registry; skopeo reads the result back.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtemp, readdir, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { buildDockerSave, type BuiltDockerSave, writeTarBundle } from '../../testdata/make-fixtures.js';
import { BIN, runCli } from '../helpers/cli.js';
import { startFaultProxy, type FaultProxy, type RecordedRequest } from '../helpers/fault-proxy.js';
import { startRegistry, type TestRegistry } from '../helpers/registry.js';
import { skopeoInspectRaw } from '../helpers/skopeo.js';

const LAYERS = 15;
/** KILL_AFTER_COMMITS is how many layer commits the first run gets before it is killed. */
const KILL_AFTER_COMMITS = 5;
/** WAIT_MS bounds every wait of this test. */
const WAIT_MS = 90_000;

/** isCommit tells whether a request committed a blob upload (the PUT that ends every upload, answered 201). */
function isCommit(q: RecordedRequest): boolean {
  return q.method === 'PUT' && q.path.includes('/blobs/uploads/') && q.status === 201;
}

async function until(what: string, test: () => boolean): Promise<void> {
  const deadline = Date.now() + WAIT_MS;
  while (!test()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

describe('mirror push: a killed docker-save push, run again (registry + recording proxy)', function () {
  this.timeout(240_000);
  let registry: TestRegistry;
  let proxy: FaultProxy;
  let work: string;
  let save: BuiltDockerSave;
  let file: string;

  before(async () => {
    registry = await startRegistry();
    proxy = await startFaultProxy({ upstream: registry.url });
    work = await mkdtemp(join(tmpdir(), 'mirror-resume-'));
    save = await buildDockerSave({
      seed: 'resume',
      images: [{ refs: ['gcr.io/resume/app:1.0'], layers: Array.from({ length: LAYERS }, () => ({ files: 2, sizeBytes: 400_000 })) }],
    });
    file = join(work, 'save.tar');
    await writeTarBundle(save.files, file, { order: 'metadata-last', compression: 'none' });
  });
  after(async () => {
    await proxy?.stop();
    await registry?.stop();
    if (work) await rm(work, { recursive: true, force: true });
  });

  it('sends again only the layers that were not committed before the kill', async () => {
    const env = { ...process.env, NO_COLOR: '1', XDG_CACHE_HOME: join(work, 'cache') };
    const target = `http://${proxy.host}/resume`;
    // The first KILL_AFTER_COMMITS commits go through; every later one is held at the proxy far longer than the test
    // waits, so the kill lands with exactly those committed however many uploads run at once (a held request whose
    // client is gone is never forwarded).
    proxy.setRules([
      {
        kind: 'delay',
        method: 'PUT',
        pathIncludes: '/blobs/uploads/',
        nth: Array.from({ length: 4 * LAYERS }, (_, i) => KILL_AFTER_COMMITS + 1 + i),
        delayMs: 10 * WAIT_MS,
      },
    ]);
    const child = spawn(process.execPath, [BIN, 'push', '--source', file, '--private-registry', target], { stdio: ['ignore', 'ignore', 'pipe'], env });
    let stderr = '';
    child.stderr.setEncoding('utf8').on('data', (d: string) => (stderr += d));
    const exited = new Promise<void>((resolve) => child.once('close', () => resolve()));
    let committed = 0;
    try {
      await until(`${KILL_AFTER_COMMITS} commits`, () => proxy.requests.filter(isCommit).length >= KILL_AFTER_COMMITS || child.exitCode !== null);
      // Let the client take the answers it was sent (each is recorded as it arrives), then kill it.
      await new Promise((r) => setTimeout(r, 300));
      assert.equal(child.exitCode, null, `the first run was still going when killed: ${stderr}`);
      // Commits the client was answered for; commits the proxy still held back land after the kill, unrecorded.
      committed = proxy.requests.filter(isCommit).length;
      child.kill('SIGKILL');
      await exited;
    } finally {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
    }
    assert.ok(committed >= KILL_AFTER_COMMITS && committed < LAYERS, `${committed} layers committed before the kill`);
    // What the killed run had recorded: one file per key, one or two keys per layer.
    const dir = join(work, 'cache', 'mirror', 'converted-layers');
    const names = (await readdir(dir).catch(() => [] as string[])).filter((n) => n.endsWith('.json'));
    const recorded = new Set(await Promise.all(names.map(async (n) => (JSON.parse(await readFile(join(dir, n), 'utf8')) as { digest: string }).digest))).size;

    proxy.setRules([]);
    proxy.reset();
    const again = await runCli(['push', '--source', file, '--private-registry', target, '--json'], { env });
    assert.equal(again.code, 0, again.stderr + again.stdout);
    const uploads = proxy.requests.filter(isCommit).length;
    // Everything not committed before the kill, plus the config (sent with the manifests, at the end).
    process.stdout.write(`      killed after ${committed} of ${LAYERS} layers were committed (${recorded} on record); the re-run sent ${uploads} blob(s)\n`);
    assert.ok(uploads <= LAYERS + 1 - (KILL_AFTER_COMMITS - 1), `the second run sent ${uploads} blobs although ${committed} of ${LAYERS} layers were committed`);
    // Each layer was on record as soon as it was committed (a layer answered just before the kill may miss it).
    assert.ok(recorded >= KILL_AFTER_COMMITS - 1, `${recorded} layers recorded before the kill (${committed} committed)`);
    assert.ok(uploads <= LAYERS - recorded + 1, `the second run sent ${uploads} blobs; ${recorded} of ${LAYERS} layers were on record`);

    const manifest = JSON.parse((await skopeoInspectRaw(`docker://${registry.host}/resume/resume/app:1.0`)).toString('utf8')) as {
      config: { digest: string };
      layers: unknown[];
    };
    assert.equal(manifest.config.digest, save.images[0]!.configDigest);
    assert.equal(manifest.layers.length, LAYERS);
    const { skopeoCopyToOci } = await import('../helpers/skopeo.js');
    await skopeoCopyToOci(`docker://${registry.host}/resume/resume/app:1.0`, join(work, 'out'));
  });
});
