#!/usr/bin/env node
// Builds a multi-platform image out of images already in a registry: every image's blobs are mounted into REPO, its
// manifest put there by digest, and an OCI index listing those manifests under distinct platforms (linux/amd64,
// linux/arm64/v8, linux/arm/v7, ...) put under TAG. The manifests keep their digests (only the index's entries carry
// the platforms), so the index is what a multi-platform build would push, made of the bench images.
//
//   node bench/make-bench-index.mjs http://127.0.0.1:PORT REPO TAG IMAGE_REPO:IMAGE_TAG...
//
// Prints the index digest and the distinct blob bytes it references as JSON.
import { createHash } from 'node:crypto';

const [base, repo, tag, ...images] = process.argv.slice(2);
if (!base || !repo || !tag || images.length === 0) throw new Error('usage: make-bench-index.mjs http://HOST:PORT REPO TAG IMAGE_REPO:TAG...');
const PLATFORMS = [
  { os: 'linux', architecture: 'amd64' },
  { os: 'linux', architecture: 'arm64', variant: 'v8' },
  { os: 'linux', architecture: 'arm', variant: 'v7' },
  { os: 'linux', architecture: 'ppc64le' },
  { os: 'linux', architecture: 's390x' },
  { os: 'linux', architecture: '386' },
  { os: 'linux', architecture: 'riscv64' },
  { os: 'linux', architecture: 'mips64le' },
];
if (images.length > PLATFORMS.length) throw new Error(`at most ${PLATFORMS.length} images`);
const ACCEPT = 'application/vnd.oci.image.manifest.v1+json, application/vnd.docker.distribution.manifest.v2+json';

async function check(res, what) {
  if (!res.ok) throw new Error(`${what}: ${res.status} ${await res.text()}`);
  return res;
}

const entries = [];
const blobs = new Map();
for (const [i, image] of images.entries()) {
  const at = image.lastIndexOf(':');
  const from = image.slice(0, at);
  const res = await check(await fetch(`${base}/v2/${from}/manifests/${image.slice(at + 1)}`, { headers: { accept: ACCEPT } }), `GET ${image}`);
  const mediaType = res.headers.get('content-type');
  const bytes = Buffer.from(await res.arrayBuffer());
  const manifest = JSON.parse(bytes.toString('utf8'));
  for (const b of [manifest.config, ...manifest.layers]) {
    blobs.set(b.digest, b.size);
    const mount = await fetch(`${base}/v2/${repo}/blobs/uploads/?mount=${b.digest}&from=${from}`, { method: 'POST' });
    await mount.arrayBuffer();
    if (mount.status !== 201) throw new Error(`mount ${b.digest} from ${from}: ${mount.status}`);
  }
  const digest = `sha256:${createHash('sha256').update(bytes).digest('hex')}`;
  await check(await fetch(`${base}/v2/${repo}/manifests/${digest}`, { method: 'PUT', headers: { 'content-type': mediaType }, body: bytes }), `PUT ${digest}`);
  entries.push({ mediaType, digest, size: bytes.byteLength, platform: PLATFORMS[i] });
}
const index = Buffer.from(JSON.stringify({ schemaVersion: 2, mediaType: 'application/vnd.oci.image.index.v1+json', manifests: entries }));
await check(
  await fetch(`${base}/v2/${repo}/manifests/${tag}`, { method: 'PUT', headers: { 'content-type': 'application/vnd.oci.image.index.v1+json' }, body: index }),
  `PUT index ${repo}:${tag}`,
);
const bytes = [...blobs.values()].reduce((a, b) => a + b, 0);
console.log(JSON.stringify({ digest: `sha256:${createHash('sha256').update(index).digest('hex')}`, platforms: entries.length, blobs: blobs.size, bytes }));
