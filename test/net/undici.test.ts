/**
 * The HTTP layer loads undici's dispatchers alone: not its fetch/WebSocket/cache modules, and so not Node's own
 * bundled undici either (they read Node's global File and Headers). Checked in a fresh process, with a request sent
 * through the agent so the `request` verb is known to work.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const HTTP_JS = join(dirname(fileURLToPath(import.meta.url)), '..', '..', 'src', 'net', 'http.js');

describe('undici, loaded in part', () => {
  it('sends a request without loading undici web modules or Node bundled undici', () => {
    const script = `
      import { createServer } from 'node:http';
      import { createRequire } from 'node:module';
      const { request } = await import(${JSON.stringify(HTTP_JS)});
      const server = createServer((req, res) => res.end('ok:' + req.method)).listen(0, '127.0.0.1');
      await new Promise((r) => server.once('listening', r));
      const settings = { scheme: 'http', tls: {} };
      const res = await request({ method: 'GET', url: 'http://127.0.0.1:' + server.address().port + '/x', settings });
      const text = await res.text();
      server.close();
      const cache = Object.keys(createRequire(import.meta.url).cache);
      console.log(JSON.stringify({ text, status: res.status, web: cache.filter((k) => k.includes('/undici/lib/web/')).length, index: cache.some((k) => /\\/undici\\/index\\.js$/.test(k)), bundled: process.moduleLoadList.some((m) => m.includes('internal/deps/undici')) }));
      process.exit(0);
    `;
    const r = spawnSync(process.execPath, ['--input-type=module', '-e', script], { encoding: 'utf8', timeout: 30_000 });
    assert.equal(r.status, 0, r.stderr);
    // Whether Node loads its bundled undici on its own (Node 24 does, for the test's own HTTP server): then that one is
    // Node's, not ours.
    const baseline = `
      import { createServer } from 'node:http';
      const server = createServer((req, res) => res.end('x')).listen(0, '127.0.0.1');
      await new Promise((r) => server.once('listening', r));
      server.close();
      console.log(JSON.stringify(process.moduleLoadList.some((m) => m.includes('internal/deps/undici'))));
    `;
    const b = spawnSync(process.execPath, ['--input-type=module', '-e', baseline], { encoding: 'utf8', timeout: 30_000 });
    assert.equal(b.status, 0, b.stderr);
    const nodeLoadsItAnyway = JSON.parse(b.stdout.trim()) as boolean;
    assert.deepEqual(JSON.parse(r.stdout.trim()), { text: 'ok:GET', status: 200, web: 0, index: false, bundled: nodeLoadsItAnyway });
  });
});
