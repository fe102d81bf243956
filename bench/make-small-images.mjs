// Writes an OCI image layout of REPOS repositories x TAGS tags of small images for the sync benchmark:
//   node bench/make-small-images.mjs OUTDIR [REPOS=200] [TAGS=10]
// Every image has a 64 KiB base layer shared by all of them and a small layer and config of its own, so a sync
// moves the base once and then mounts it. Names: bench.example/small/repo-NNN:1.0.T (pushed as small/repo-NNN:1.0.T).
import { createHash, randomBytes } from 'node:crypto';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';

const [out, reposArg = '200', tagsArg = '10'] = process.argv.slice(2);
if (!out) throw new Error('usage: make-small-images.mjs OUTDIR [REPOS] [TAGS]');
const repos = Number(reposArg);
const tags = Number(tagsArg);
const blobs = join(out, 'blobs', 'sha256');
mkdirSync(blobs, { recursive: true });
const put = (bytes) => {
  const hex = createHash('sha256').update(bytes).digest('hex');
  writeFileSync(join(blobs, hex), bytes);
  return { digest: `sha256:${hex}`, size: bytes.byteLength };
};
const base = gzipSync(randomBytes(64 * 1024), { level: 1 });
const baseDesc = { mediaType: 'application/vnd.oci.image.layer.v1.tar+gzip', ...put(base) };
const baseDiff = `sha256:${createHash('sha256').update(randomBytes(1)).digest('hex')}`;
const manifests = [];
for (let r = 0; r < repos; r++) {
  for (let t = 0; t < tags; t++) {
    const own = gzipSync(randomBytes(1024 + ((r * tags + t) % 7) * 100), { level: 1 });
    const ownDesc = { mediaType: 'application/vnd.oci.image.layer.v1.tar+gzip', ...put(own) };
    const config = Buffer.from(JSON.stringify({
      architecture: 'amd64', os: 'linux', created: new Date(Date.UTC(2024, 0, 1, 0, r, t)).toISOString(),
      rootfs: { type: 'layers', diff_ids: [baseDiff, `sha256:${createHash('sha256').update(own).digest('hex')}`] }, config: {},
    }));
    const configDesc = { mediaType: 'application/vnd.oci.image.config.v1+json', ...put(config) };
    const manifest = Buffer.from(JSON.stringify({ schemaVersion: 2, mediaType: 'application/vnd.oci.image.manifest.v1+json', config: configDesc, layers: [baseDesc, ownDesc] }));
    const name = `bench.example/small/repo-${String(r).padStart(3, '0')}:1.0.${t}`;
    manifests.push({
      mediaType: 'application/vnd.oci.image.manifest.v1+json', ...put(manifest),
      annotations: { 'io.containerd.image.name': name, 'org.opencontainers.image.ref.name': `1.0.${t}` },
    });
  }
}
writeFileSync(join(out, 'oci-layout'), JSON.stringify({ imageLayoutVersion: '1.0.0' }));
writeFileSync(join(out, 'index.json'), JSON.stringify({ schemaVersion: 2, mediaType: 'application/vnd.oci.image.index.v1+json', manifests }));
console.log(`${manifests.length} images in ${repos} repositories under ${out}`);
