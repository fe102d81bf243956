#!/usr/bin/env node
// Puts an image whose one layer is SIZE MiB (default 2048) into a registry, streamed from memory: nothing is written
// to local disk and the bytes never sit in memory whole (a fixed 1 MiB block of pseudo-random bytes, repeated; the
// content does not matter to a registry). The layer is hashed in a first pass, then sent in one monolithic PUT.
//
//   node bench/make-big-image.mjs http://127.0.0.1:PORT REPO TAG [SIZE_MiB]
//
// Prints the manifest digest and the layer's digest and size as JSON.
import { createHash } from 'node:crypto';
import { request } from 'node:http';

const [base, repo, tag, sizeArg = '2048'] = process.argv.slice(2);
if (!base || !repo || !tag) throw new Error('usage: make-big-image.mjs http://HOST:PORT REPO TAG [SIZE_MiB]');
const size = Number(sizeArg) * 1024 * 1024;
const BLOCK = Buffer.concat(Array.from({ length: 1 << 15 }, (_, i) => createHash('sha256').update(`block ${i}`).digest())); // 1 MiB

function* blocks() {
  for (let left = size; left > 0; left -= BLOCK.byteLength) yield left >= BLOCK.byteLength ? BLOCK : BLOCK.subarray(0, left);
}

/** send makes one request; body is a Buffer or an iterable of Buffers. Resolves with status, headers and body. */
function send(method, url, { headers = {}, body } = {}) {
  return new Promise((resolve, reject) => {
    const req = request(new URL(url, base), { method, headers }, (res) => {
      const chunks = [];
      res.on('data', (c) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode, headers: res.headers, body: Buffer.concat(chunks) }));
      res.on('error', reject);
    });
    req.on('error', reject);
    if (body === undefined || Buffer.isBuffer(body)) return req.end(body);
    (async () => {
      for (const chunk of body) if (!req.write(chunk)) await new Promise((r) => req.once('drain', r));
      req.end();
    })().catch(reject);
  });
}

async function putBlob(digest, length, body) {
  const start = await send('POST', `/v2/${repo}/blobs/uploads/`);
  if (start.status !== 202) throw new Error(`POST upload: ${start.status} ${start.body}`);
  const location = new URL(start.headers.location, base);
  location.searchParams.set('digest', digest);
  const done = await send('PUT', location.toString(), { headers: { 'content-type': 'application/octet-stream', 'content-length': String(length) }, body });
  if (done.status !== 201) throw new Error(`PUT blob ${digest}: ${done.status} ${done.body}`);
}

const h = createHash('sha256');
for (const b of blocks()) h.update(b);
const layer = `sha256:${h.digest('hex')}`;
await putBlob(layer, size, blocks());
const config = Buffer.from(JSON.stringify({ architecture: 'amd64', os: 'linux', rootfs: { type: 'layers', diff_ids: [layer] }, config: {} }));
const configDigest = `sha256:${createHash('sha256').update(config).digest('hex')}`;
await putBlob(configDigest, config.byteLength, config);
const manifest = Buffer.from(
  JSON.stringify({
    schemaVersion: 2,
    mediaType: 'application/vnd.oci.image.manifest.v1+json',
    config: { mediaType: 'application/vnd.oci.image.config.v1+json', digest: configDigest, size: config.byteLength },
    layers: [{ mediaType: 'application/vnd.oci.image.layer.v1.tar', digest: layer, size }],
  }),
);
const put = await send('PUT', `/v2/${repo}/manifests/${tag}`, { headers: { 'content-type': 'application/vnd.oci.image.manifest.v1+json' }, body: manifest });
if (put.status !== 201) throw new Error(`PUT manifest: ${put.status} ${put.body}`);
console.log(JSON.stringify({ digest: `sha256:${createHash('sha256').update(manifest).digest('hex')}`, layer, size }));
