#!/usr/bin/env node
// Pushes a bench bundle through a fault-injecting proxy (503s, 429s with Retry-After, connections cut in the middle
// of request bodies) in front of a fresh docker-registry, then reads every image back with skopeo and compares
// manifest digests with the bundle's index.json. Does the same with unpack + `skopeo copy --retry-times 5` per image
// for scale. Uses the project's test helpers (built into dist/test/helpers by `npm run build`).
//
//   node bench/fault-bench.mjs BUNDLE.tar.xz [RUNS] [PROBABILITY]
import { spawn } from 'node:child_process';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const { startRegistry } = await import(join(root, 'dist/test/helpers/registry.js'));
const { startFaultProxy } = await import(join(root, 'dist/test/helpers/fault-proxy.js'));
const { skopeoInspectRawDigest } = await import(join(root, 'dist/test/helpers/skopeo.js'));

const bundle = process.argv[2];
const runs = Number(process.argv[3] ?? 3);
const p = Number(process.argv[4] ?? 0.03);
if (!bundle) throw new Error('usage: fault-bench.mjs BUNDLE.tar.xz [RUNS] [PROBABILITY]');

function sh(cmd, args, opts = {}) {
  return new Promise((resolve) => {
    const child = spawn(cmd, args, { stdio: ['ignore', 'pipe', 'pipe'], ...opts });
    let out = '';
    let err = '';
    child.stdout.on('data', (d) => (out += d));
    child.stderr.on('data', (d) => (err += d));
    child.on('close', (code) => resolve({ code, out, err }));
  });
}

// The images and their digests, from the bundle's index.json.
const work = await mkdtemp(join(tmpdir(), 'fault-bench-'));
await sh('sh', ['-c', `xz -dc -T0 '${bundle}' | tar -x -C '${work}' index.json`]);
const index = JSON.parse(await readFile(join(work, 'index.json'), 'utf8'));
const images = index.manifests.map((m) => ({ ref: m.annotations['io.containerd.image.name'], digest: m.digest }));

const rules = (seed) => [
  { kind: 'cut-request', method: 'PUT', pathIncludes: '/blobs/uploads/', probability: p * 3, afterBytes: 64 * 1024 },
  { kind: 'cut-request', method: 'PATCH', pathIncludes: '/blobs/uploads/', probability: p * 3, afterBytes: 64 * 1024 },
  { kind: 'status-503', probability: p },
  { kind: 'status-429', probability: p / 2 },
];

async function verify(host, ns) {
  let ok = 0;
  for (const img of images) {
    const path = img.ref.slice(img.ref.indexOf('/') + 1);
    try {
      if ((await skopeoInspectRawDigest(`docker://${host}/${ns}/${path}`)) === img.digest) ok++;
    } catch {
      /* missing */
    }
  }
  return ok;
}

const rows = [];
for (let run = 1; run <= runs; run++) {
  for (const tool of ['mirror', 'skopeo']) {
    const registry = await startRegistry();
    const proxy = await startFaultProxy({ upstream: registry.url, rules: rules(run), seed: run * 17 + (tool === 'mirror' ? 0 : 1) });
    const ns = 'bench';
    const t0 = Date.now();
    let r;
    if (tool === 'mirror') {
      r = await sh(process.execPath, [join(root, 'bin/run.js'), 'push', '--source', bundle, '--private-registry', `http://${proxy.host}/${ns}`, '--json']);
    } else {
      r = await sh('bash', [join(root, 'bench/peer-skopeo-retry.sh'), bundle, `${proxy.host}/${ns}`]);
    }
    const secs = (Date.now() - t0) / 1000;
    const faults = Object.values(proxy.injected).reduce((a, b) => a + b, 0);
    await proxy.stop();
    const ok = await verify(registry.host, ns);
    await registry.stop();
    rows.push({ run, tool, exit: r.code, secs, faults, intact: `${ok}/${images.length}` });
    console.log(JSON.stringify(rows.at(-1)));
  }
}
await rm(work, { recursive: true, force: true });
console.log('\nrun tool    exit  seconds  faults  images intact');
for (const r of rows) console.log(`${String(r.run).padEnd(3)} ${r.tool.padEnd(7)} ${String(r.exit).padStart(4)} ${r.secs.toFixed(1).padStart(8)} ${String(r.faults).padStart(7)}  ${r.intact}`);
