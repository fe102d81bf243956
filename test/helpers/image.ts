/** Small test images and host settings for registry tests. */
import { createHash, randomBytes } from 'node:crypto';
import { gzipSync } from 'node:zlib';
import type { HostSettings, HostSettingsResolver } from '../../src/net/types.js';

/** TestBlob is bytes with their digest. */
export interface TestBlob {
  data: Uint8Array;
  digest: string;
  size: number;
}

/** blobOf wraps bytes with their sha256 digest. */
export function blobOf(data: Uint8Array): TestBlob {
  return { data, digest: `sha256:${createHash('sha256').update(data).digest('hex')}`, size: data.byteLength };
}

/** randomBlob makes a blob of random bytes. */
export function randomBlob(size: number): TestBlob {
  return blobOf(randomBytes(size));
}

/** TestImage is an OCI image: config, one layer, and the manifest bytes. */
export interface TestImage {
  config: TestBlob;
  layer: TestBlob;
  manifest: TestBlob;
  mediaType: string;
}

/** makeImage builds a small OCI image manifest over a random gzip layer (real gzip, so tools keep it as is). */
export function makeImage(layerSize = 2048): TestImage {
  const config = blobOf(
    Buffer.from(JSON.stringify({ architecture: 'amd64', os: 'linux', rootfs: { type: 'layers', diff_ids: [] }, config: {}, nonce: randomBytes(8).toString('hex') })),
  );
  const layer = blobOf(gzipSync(randomBytes(layerSize), { level: 1 }));
  const mediaType = 'application/vnd.oci.image.manifest.v1+json';
  const manifest = blobOf(
    Buffer.from(
      JSON.stringify({
        schemaVersion: 2,
        mediaType,
        config: { mediaType: 'application/vnd.oci.image.config.v1+json', digest: config.digest, size: config.size },
        layers: [{ mediaType: 'application/vnd.oci.image.layer.v1.tar+gzip', digest: layer.digest, size: layer.size }],
      }),
    ),
  );
  return { config, layer, manifest, mediaType };
}

/** staticSettings is a HostSettingsResolver giving the same settings for every host. */
export function staticSettings(settings: Partial<HostSettings> & { scheme: 'http' | 'https' }): HostSettingsResolver {
  const full: HostSettings = { scheme: settings.scheme, tls: settings.tls ?? {}, proxy: settings.proxy };
  return { forHost: async () => full };
}

/** chunksOf splits bytes into pieces of `size` (a stream source for tests). */
export async function* chunksOf(data: Uint8Array, size: number, delayMs = 0): AsyncGenerator<Uint8Array, void, undefined> {
  for (let i = 0; i < data.byteLength; i += size) {
    if (delayMs > 0) await new Promise((r) => setTimeout(r, delayMs));
    yield data.subarray(i, Math.min(i + size, data.byteLength));
  }
}
