/**
 * How `mirror push` stops, against the real docker-registry behind a fault-injecting proxy that counts requests: a
 * fatal error stops everything in flight at once (nothing is sent after the error line), and interrupts (real
 * signals to the built binary, one or two) end with exit 130, the message, no child process left, the report of what
 * was done and a line saying how to finish.
 */
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { buildOciLayout, type BuiltLayout, writeTarBundle } from '../../testdata/make-fixtures.js';
import { startCli } from '../helpers/cli.js';
import { startFaultProxy, type FaultProxy } from '../helpers/fault-proxy.js';
import { stopAll } from '../helpers/proc.js';
import { startRegistry, type TestRegistry } from '../helpers/registry.js';

/** DENIED is what distribution answers when a token does not allow an action. */
const DENIED = JSON.stringify({ errors: [{ code: 'DENIED', message: 'requested access to the resource is denied' }] });

describe('mirror push stops cleanly (integration)', function () {
  this.timeout(120_000);
  let registry: TestRegistry;
  let proxy: FaultProxy | undefined;
  let work: string;
  let layout: BuiltLayout;
  let bundle: string;
  before(async () => {
    registry = await startRegistry();
    work = await mkdtemp(join(tmpdir(), 'mirror-stop-'));
    layout = await buildOciLayout({
      seed: 'stop',
      images: Array.from({ length: 6 }, (_, i) => ({ ref: `gcr.io/stop/img${i}:1`, layers: [{ files: 1, sizeBytes: 300_000 }] })),
    });
    bundle = join(work, 'stop.tar');
    await writeTarBundle(layout.files, bundle, { order: 'metadata-first', compression: 'none' });
  });

  afterEach(async () => {
    await proxy?.stop();
    proxy = undefined;
  });

  after(async () => {
    await registry?.stop();
    await stopAll();
    if (work) await rm(work, { recursive: true, force: true });
  });

  it('a fatal error stops every upload and retry in flight: no request reaches the registry after the error line', async () => {
    proxy = await startFaultProxy({
      upstream: registry.url,
      rules: [
        // The sixth blob check is refused (an authorization that stopped covering the push): AUTH ends the run...
        { kind: 'respond', method: 'HEAD', pathIncludes: '/blobs/sha256:', nth: [6], status: 403, body: DENIED },
        // ...while every blob upload in flight is being retried (503), so retries are sleeping when it comes.
        { kind: 'status-503', method: 'PUT', pathIncludes: '/blobs/uploads/', probability: 1 },
      ],
    });
    const cli = startCli(['push', '--source', bundle, '--private-registry', `http://${proxy.host}/fatal`, '--debug']);
    await cli.waitFor(/^mirror: error: /m, { stream: 'stderr' });
    const errorAt = Date.now();
    const r = await cli.done;
    const exitedAfterMs = Date.now() - errorAt;
    assert.equal(r.code, 4, r.stderr);
    assert.ok(proxy.injected['status-503'] >= 1 && proxy.injected.respond === 1, JSON.stringify(proxy.injected));
    assert.match(r.stderr, /debug: retry 1 of UPLOAD .*HTTP 503/, 'uploads were being retried when the error came');
    const late = proxy.requests.filter((q) => q.at > errorAt);
    assert.deepEqual(late, [], 'nothing reached the registry after the error line');
    const lines = r.stderr.trimEnd().split('\n');
    const at = lines.findIndex((l) => l.startsWith('mirror: error: '));
    assert.match(lines[at] ?? '', /^mirror: error: blob sha256:\S+ failed: HTTP 403 Forbidden/);
    const after = lines.slice(at + 1).filter((l) => !/^\s+at |^\w*Error: /.test(l));
    assert.deepEqual(after, [], 'nothing but the --debug stack after the error line');
    assert.ok(exitedAfterMs < 3_000, `exited ${exitedAfterMs} ms after the error line`);
  });
});
