#!/usr/bin/env bash
# Pushes a full bench bundle into a TLS registry with bearer-token auth whose tokens expire after 2 seconds
# (docker-registry + the token server of the test helpers, on 127.0.0.1), then reads every image back with skopeo.
# Prints the push time, how many tokens were issued during the push (and for how many scope sets: the difference is
# renewals), how many requests the registry refused with 401 mid-push, and whether every digest matched: skopeo's
# manifest bytes against the push report and against the bundle's own index.json, and a `skopeo copy` of every
# image (which checks every blob against its digest).
#
#   bench/token-expiry.sh BUNDLE [TOKEN_LIFETIME_SECONDS]
#
# BUNDLE: a bench bundle (../shared/bench/make-bench-bundles.sh builds them), e.g. oci-metadata-last.tar.xz.
# Needs: node (the project built: npm run build), docker-registry, skopeo, openssl, and GNU tar to read the bundle's
# index.json. Exit status 0 when the push succeeded and every image read back matched.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
BUNDLE=${1:?usage: bench/token-expiry.sh BUNDLE [TOKEN_LIFETIME_SECONDS]}
BUNDLE=$(cd "$(dirname "$BUNDLE")" && pwd)/$(basename "$BUNDLE")
LIFETIME=${2:-2}
for b in node docker-registry skopeo openssl tar; do
  command -v "$b" >/dev/null || { echo "token-expiry: $b is needed" >&2; exit 2; }
done
[ -f "$ROOT/dist/src/commands/push.js" ] && [ -f "$ROOT/dist/test/helpers/token-server.js" ] || (cd "$ROOT" && npx tsc -p tsconfig.json >/dev/null)

exec node --input-type=module - "$ROOT" "$BUNDLE" "$LIFETIME" <<'JS'
import { spawn, spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

const [root, bundle, lifetimeText] = process.argv.slice(2);
const lifetime = Number(lifetimeText);
const helper = (name) => import(join(root, 'dist', 'test', 'helpers', `${name}.js`));
const { makeCerts } = await helper('certs');
const { startRegistry } = await helper('registry');
const { startTokenServer } = await helper('token-server');
const { stopAll } = await helper('proc');

const USER = 'bench';
const PASSWORD = `bench-${Date.now()}-pw`;
const NS = 'bench';
const mib = (n) => `${(n / 1048576).toFixed(1)} MiB`;

/** run runs a program (bounded), feeding `input`, and gives its exit code and output. */
function run(cmd, args, { input = '', env = process.env, timeoutMs = 1_800_000 } = {}) {
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, args, { env, stdio: ['pipe', 'pipe', 'pipe'] });
    const out = [];
    let stderr = '';
    child.stdout.on('data', (d) => out.push(d));
    child.stderr.on('data', (d) => (stderr += d));
    const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
    child.on('error', reject);
    child.on('close', (code) => {
      clearTimeout(timer);
      const bytes = Buffer.concat(out);
      resolve({ code, stdout: bytes.toString('utf8'), bytes, stderr });
    });
    child.stdin.on('error', () => {});
    child.stdin.end(input);
  });
}

/** bundleIndex gives name -> digest from the bundle's index.json (OCI layouts), or undefined (docker save). */
function bundleIndex() {
  let text;
  if (statSync(bundle).isDirectory()) {
    try {
      text = readFileSync(join(bundle, 'index.json'), 'utf8');
    } catch {
      return undefined;
    }
  } else {
    for (const name of ['index.json', './index.json']) {
      const r = spawnSync('tar', ['-xOf', bundle, name], { maxBuffer: 64 * 1024 * 1024, stdio: ['ignore', 'pipe', 'ignore'] });
      if (r.status === 0 && r.stdout.length > 0) {
        text = r.stdout.toString('utf8');
        break;
      }
    }
  }
  if (text === undefined) return undefined;
  const map = new Map();
  for (const m of JSON.parse(text).manifests ?? []) {
    const name = m.annotations?.['io.containerd.image.name'] ?? m.annotations?.['org.opencontainers.image.ref.name'];
    if (name) map.set(name, m.digest);
  }
  return map;
}

const work = mkdtempSync(join(tmpdir(), 'mirror-token-expiry-'));
let tokens;
let registry;
let failed = false;
try {
  mkdirSync(join(work, 'certs'));
  const certs = await makeCerts({ dir: join(work, 'certs') });
  const certDir = join(work, 'skopeo-certs');
  mkdirSync(certDir);
  writeFileSync(join(certDir, 'ca.crt'), certs.ca.cert);
  tokens = await startTokenServer({ users: { [USER]: PASSWORD }, lifetimeSeconds: lifetime });
  registry = await startRegistry({
    tls: { certFile: certs.server.certFile, keyFile: certs.server.keyFile },
    token: { realm: tokens.realm, service: tokens.service, issuer: tokens.issuer, rootCertBundle: tokens.rootCertBundle },
  });
  const size = statSync(bundle).isDirectory() ? 0 : statSync(bundle).size;
  console.log(`token-expiry: ${bundle}${size ? ` (${mib(size)})` : ''} -> https://${registry.host}/${NS}, every token expires after ${lifetime} s`);

  const home = join(work, 'home');
  mkdirSync(home);
  const env = { ...process.env, HOME: home, DBUS_SESSION_BUS_ADDRESS: `unix:path=${join(home, 'no-bus')}`, NO_COLOR: '1' };
  for (const k of ['HTTPS_PROXY', 'https_proxy', 'HTTP_PROXY', 'http_proxy', 'ALL_PROXY', 'all_proxy', 'MIRROR_USERNAME', 'MIRROR_PASSWORD']) delete env[k];
  const report = join(work, 'report.json');
  const started = Date.now();
  const push = await run(
    process.execPath,
    [join(root, 'bin', 'run.js'), 'push', '--source', bundle, '--private-registry', `${registry.host}/${NS}`, '--cacert', certs.ca.certFile,
      '--username', USER, '--password-stdin', '--report', report, '--debug'],
    { input: PASSWORD, env },
  );
  const pushMs = Date.now() - started;
  const issued = tokens.issued();
  const scopeSets = new Set(tokens.log.filter((e) => e.status === 200).map((e) => e.scopes.join(' '))).size;
  const refused401 = push.stderr.split('\n').filter((l) => /^debug: [A-Z]+ \/v2\/.+: 401/.test(l)).length;
  const leaked = [push.stdout, push.stderr].some((t) => t.includes(PASSWORD) || /eyJ[\w-]{8,}\.eyJ/.test(t));
  console.log(`push: exit ${push.code} in ${(pushMs / 1000).toFixed(1)} s`);
  console.log(push.stdout.trim().split('\n').map((l) => `  ${l}`).join('\n'));
  if (push.code !== 0) {
    failed = true;
    console.log(push.stderr.split('\n').filter((l) => /error|FAILED/.test(l)).slice(-5).join('\n'));
  }
  console.log(`tokens: ${issued} issued during the push for ${scopeSets} scope sets (${issued - scopeSets} renewals); ` +
    `${refused401} request(s) refused with 401 mid-push and sent again with a new token`);
  console.log(`secrets in the output: ${leaked ? 'YES (password or token printed)' : 'none'}`);
  if (leaked) failed = true;

  // Read back every image: manifest bytes (by tag) against the report and the bundle; skopeo copy checks every blob.
  const rep = JSON.parse(readFileSync(report, 'utf8'));
  const index = bundleIndex();
  let matchedReport = 0;
  let matchedBundle = 0;
  let copied = 0;
  const problems = [];
  const creds = ['--creds', `${USER}:${PASSWORD}`, '--cert-dir', certDir];
  const out = join(work, 'readback');
  for (const [i, img] of rep.images.entries()) {
    if (img.status === 'failed') {
      problems.push(`${img.source}: not pushed (${img.error})`);
      continue;
    }
    const inspect = await run('skopeo', ['inspect', '--raw', ...creds, `docker://${img.destination}`], { timeoutMs: 120_000 });
    if (inspect.code !== 0) {
      problems.push(`${img.destination}: skopeo inspect failed: ${inspect.stderr.trim().slice(-300)}`);
      continue;
    }
    // skopeo prints the manifest bytes as the registry serves them: their digest is the image's digest.
    const digest = `sha256:${createHash('sha256').update(inspect.bytes).digest('hex')}`;
    if (digest === img.digest) matchedReport++;
    else problems.push(`${img.destination}: registry has ${digest}, report says ${img.digest}`);
    const want = index?.get(img.source);
    if (want !== undefined) {
      if (want === digest) matchedBundle++;
      else problems.push(`${img.destination}: registry has ${digest}, the bundle's index.json says ${want}`);
    }
    const copy = await run('skopeo', ['copy', '--all', '--preserve-digests', '--src-creds', `${USER}:${PASSWORD}`, '--src-cert-dir', certDir,
      `docker://${img.destination}`, `oci:${out}:img${i}`], { timeoutMs: 600_000 });
    if (copy.code === 0) copied++;
    else problems.push(`${img.destination}: skopeo copy failed: ${copy.stderr.trim().slice(-300)}`);
  }
  const n = rep.images.length;
  console.log(`read-back: ${n} image(s); manifest digests match the report: ${matchedReport}/${n}` +
    (index ? `, the bundle's index.json: ${matchedBundle}/${n}` : ' (no index.json in the bundle)') +
    `; skopeo copied (every blob verified): ${copied}/${n}`);
  for (const p of problems) console.log(`  ${p}`);
  const all = push.code === 0 && matchedReport === n && copied === n && (!index || matchedBundle === n) && problems.length === 0;
  console.log(`all digests matched: ${all ? 'yes' : 'NO'}`);
  if (!all) failed = true;
} catch (e) {
  failed = true;
  console.error(`token-expiry: ${e instanceof Error ? e.message : String(e)}`);
} finally {
  await registry?.stop().catch(() => {});
  await tokens?.stop().catch(() => {});
  await stopAll();
  rmSync(work, { recursive: true, force: true });
}
process.exit(failed ? 1 : 0);
JS
