/**
 * Test bundles, built deterministically: real images (layers are real tars of a few small files, gzip-compressed;
 * configs are valid OCI image configs whose `rootfs.diff_ids` are the sha256 of the uncompressed layers), laid out as
 * an OCI image layout or a `docker save` archive, written as a directory or a tar (plain, xz, gzip or zstd), plus
 * the bad inputs the bundle reader must refuse.
 *
 * Every byte depends only on the spec: contents come from a seeded PRNG, mtimes are fixed, and layers are gzip members
 * of stored deflate blocks by default, so their digests never depend on the zlib build (zlib's deflate output differs
 * between Node versions and CPUs). Run as a script to write the committed set:
 * `node dist/testdata/make-fixtures.js testdata/bundles`.
 */
import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdir, readdir, stat, writeFile } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { dirname, join, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import zlib from 'node:zlib';
import tarStream from 'tar-stream';
import { MediaType } from '../src/oci/media-types.js';

/** FileMap is a bundle's files: `/`-separated relative path -> bytes. */
export type FileMap = Map<string, Buffer>;

/** FIXED_MTIME is the modification time of every file the fixtures write into tars. */
export const FIXED_MTIME = new Date('2024-01-01T00:00:00Z');
const CREATED = '2024-01-01T00:00:00Z';

/** PlatformSpec is an image platform. */
export interface PlatformSpec {
  os: string;
  arch: string;
  variant?: string;
}

/** LayerSpec describes one layer. */
export interface LayerSpec {
  /** How many generated files (default 3), or literal files (path -> content). */
  files?: number | Record<string, string>;
  /** Approximate total bytes of generated file content. Default: 2048. */
  sizeBytes?: number;
}

/** ImageSpec describes one image (or one multi-platform index) of a bundle. */
export interface ImageSpec {
  /**
   * The full reference (`gcr.io/x/y:1.0`). With `byDigest`, give it without a tag (`gcr.io/x/y`): the name becomes
   * `gcr.io/x/y@sha256:<digest>`. Undefined: the image has no name in the bundle.
   */
  ref: string | undefined;
  /** The image is known only by digest (OCI layouts). Default: false. */
  byDigest?: boolean;
  /** Platforms: more than one makes a multi-platform index, pushed whole. Default: one linux/amd64 image. */
  platforms?: PlatformSpec[];
  /** The layers of each platform image (each platform gets its own content). */
  layers: LayerSpec[];
  /** The ref of an earlier image of the same spec whose first layer becomes this image's base layer. */
  sharedBaseWith?: string;
  /** `oci` (default) or `docker` (v2 schema 2 manifests, a Docker manifest list for several platforms). */
  mediaTypes?: 'oci' | 'docker';
  /**
   * A JSON SBOM of about `sizeBytes` (starting with `{`, as SPDX documents do): `layer` adds it as the last layer of
   * each platform image; `referrer` writes an artifact manifest (artifactType `application/spdx+json`, empty config,
   * `subject` = the image) listed in index.json by digest alone, as oras and regctl write them.
   */
  sbom?: { sizeBytes: number; attach: 'layer' | 'referrer' };
  /**
   * A non-distributable (or Docker foreign) layer with `urls`, added as the last layer; `present` writes its blob into
   * the bundle too (Windows tooling leaves it out).
   */
  foreignLayer?: { mediaType: string; present: boolean };
  /** Extra annotations on the image's index.json entry. */
  annotations?: Record<string, string>;
}

/** LayoutSpec describes an OCI image layout. */
export interface LayoutSpec {
  images: ImageSpec[];
  /**
   * How names are written in index.json: `containerd` (default) puts the full ref in `io.containerd.image.name` and
   * the tag in `org.opencontainers.image.ref.name`; `ref-name-only` puts the full ref in
   * `org.opencontainers.image.ref.name` and leaves the containerd annotation out.
   */
  refNames?: 'containerd' | 'ref-name-only';
  /** index.json -> index -> index -> the images' descriptors (with their names). Default: false. */
  nested?: boolean;
  /** Seed of the content PRNG. Default: `mirror`. */
  seed?: string;
  /** Layer compression: `stored` (default; deterministic everywhere) or `zlib` (level 6: smaller, zlib-dependent). */
  gzip?: 'stored' | 'zlib';
  /** Digest algorithm of configs and layers (`blobs/<alg>/<hex>`); manifests stay sha256. Default: sha256. */
  blobDigest?: 'sha256' | 'sha512';
}

/** BuiltLayer is one layer as written. */
export interface BuiltLayer {
  /** Digest of the compressed blob. */
  digest: string;
  size: number;
  /** sha256 of the uncompressed tar (the config's diff_id). */
  diffId: string;
  mediaType: string;
}

/** BuiltManifest is one image manifest as written. */
export interface BuiltManifest {
  digest: string;
  size: number;
  mediaType: string;
  platform: PlatformSpec;
  config: { digest: string; size: number };
  layers: BuiltLayer[];
}

/** BuiltImage is one image (or index) of a built bundle. */
export interface BuiltImage {
  /** The name written in the bundle (full reference), or undefined for an unnamed image. */
  ref: string | undefined;
  /** Digest, size and media type of what the name points at (the index for a multi-platform image). */
  digest: string;
  size: number;
  mediaType: string;
  /** The image manifests (one per platform). */
  manifests: BuiltManifest[];
  /** Every blob digest the image needs (manifests, index, configs, layers). */
  blobs: string[];
  /** Artifact manifests whose subject is this image (listed in index.json by digest alone). */
  referrers: Array<{ digest: string; size: number; mediaType: string; artifactType: string; layer: { digest: string; size: number } }>;
  /** A foreign layer added by {@link ImageSpec.foreignLayer}: its digest, and whether its blob is in the bundle. */
  foreign?: { digest: string; mediaType: string; present: boolean } | undefined;
}

/** BuiltLayout is an OCI image layout in memory. */
export interface BuiltLayout {
  format: 'oci-layout';
  files: FileMap;
  images: BuiltImage[];
}

/** DockerSaveImageSpec describes one image of a `docker save` archive. */
export interface DockerSaveImageSpec {
  /** RepoTags (`gcr.io/x/y:1.0`); empty for an untagged image. */
  refs: string[];
  layers: LayerSpec[];
  /** One of the refs of an earlier image whose first layer becomes this image's base layer. */
  sharedBaseWith?: string;
  platform?: PlatformSpec;
}

/** DockerSaveSpec describes a `docker save` archive. */
export interface DockerSaveSpec {
  images: DockerSaveImageSpec[];
  /** `legacy` (default): `<hex>/layer.tar` with `VERSION` and `json`; `flat`: `<hex>.tar`. */
  layerPaths?: 'legacy' | 'flat';
  /** Write the legacy `repositories` file. Default: true. */
  repositories?: boolean;
  seed?: string;
}

/** BuiltDockerImage is one image of a built `docker save` archive. */
export interface BuiltDockerImage {
  refs: string[];
  /** Digest of the config (docker's image ID). */
  configDigest: string;
  configPath: string;
  /** Archive paths of the layer tars, base first. */
  layerPaths: string[];
  /** sha256 of each layer tar (they are uncompressed, so also the blob digests). */
  diffIds: string[];
}

/** BuiltDockerSave is a `docker save` archive in memory. */
export interface BuiltDockerSave {
  format: 'docker-archive';
  files: FileMap;
  images: BuiltDockerImage[];
}

// ---------------------------------------------------------------------------------------------------------------
// Deterministic content

/** Prng is a seeded sha256-counter generator: the same seed always gives the same bytes. */
class Prng {
  private counter = 0;
  private pool = Buffer.alloc(0);
  private pos = 0;

  constructor(private readonly seed: string) {}

  /** bytes gives `n` pseudo-random bytes. */
  bytes(n: number): Buffer {
    const out = Buffer.alloc(n);
    let o = 0;
    while (o < n) {
      if (this.pos >= this.pool.length) {
        this.pool = createHash('sha256').update(`${this.seed}/${this.counter++}`).digest();
        this.pos = 0;
      }
      const take = Math.min(n - o, this.pool.length - this.pos);
      this.pool.copy(out, o, this.pos, this.pos + take);
      o += take;
      this.pos += take;
    }
    return out;
  }

  /** int gives an integer in [0, n). */
  int(n: number): number {
    return this.bytes(4).readUInt32BE(0) % n;
  }
}

const WORDS = ['alpha', 'bravo', 'cargo', 'delta', 'echo', 'fjord', 'gamma', 'harbor', 'index', 'juniper', 'kilo', 'layer', 'mirror', 'node', 'oci', 'pod', 'quay', 'registry', 'sync', 'tag', 'umbra', 'vault', 'wharf', 'xz', 'yaml', 'zstd'];

/** text gives about `n` bytes of pseudo-random words (compressible, like real files). */
function text(prng: Prng, n: number): Buffer {
  const parts: string[] = [];
  let len = 0;
  while (len < n) {
    const w = WORDS[prng.int(WORDS.length)] ?? 'x';
    const sep = prng.int(12) === 0 ? '\n' : ' ';
    parts.push(w + sep);
    len += w.length + 1;
  }
  return Buffer.from(parts.join('').slice(0, n));
}

function sha256(data: Uint8Array | string): string {
  return `sha256:${createHash('sha256').update(data).digest('hex')}`;
}

function hex(digest: string): string {
  return digest.slice(digest.indexOf(':') + 1);
}

const CRC_TABLE = (() => {
  const t = new Uint32Array(256);
  for (let n = 0; n < 256; n++) {
    let c = n;
    for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
    t[n] = c >>> 0;
  }
  return t;
})();

function crc32(data: Uint8Array): number {
  let c = 0xffffffff;
  for (const b of data) c = (CRC_TABLE[(c ^ b) & 0xff] ?? 0) ^ (c >>> 8);
  return (c ^ 0xffffffff) >>> 0;
}

/** gzipStored writes a gzip member of stored deflate blocks: valid gzip whose bytes depend on nothing but the input. */
export function gzipStored(data: Uint8Array): Buffer {
  const parts: Buffer[] = [Buffer.from([0x1f, 0x8b, 0x08, 0x00, 0, 0, 0, 0, 0x00, 0x03])];
  const MAX = 65535;
  let off = 0;
  do {
    const len = Math.min(MAX, data.byteLength - off);
    const final = off + len >= data.byteLength;
    const head = Buffer.alloc(5);
    head[0] = final ? 1 : 0;
    head.writeUInt16LE(len, 1);
    head.writeUInt16LE(~len & 0xffff, 3);
    parts.push(head, Buffer.from(data.subarray(off, off + len)));
    off += len;
  } while (off < data.byteLength);
  const trailer = Buffer.alloc(8);
  trailer.writeUInt32LE(crc32(data), 0);
  trailer.writeUInt32LE(data.byteLength >>> 0, 4);
  parts.push(trailer);
  return Buffer.concat(parts);
}

/** gzipLayer compresses a layer tar as asked. */
function gzipLayer(tar: Buffer, how: 'stored' | 'zlib'): Buffer {
  if (how === 'stored') return gzipStored(tar);
  const out = zlib.gzipSync(tar, { level: 6 });
  out[9] = 0x03; // OS byte: unix everywhere
  return out;
}

// ---------------------------------------------------------------------------------------------------------------
// Tars

/** RawTarEntry is one entry for {@link packTar}: a file (default), a directory, a link or a device. */
export interface RawTarEntry {
  name: string;
  data?: Uint8Array | string;
  type?: 'file' | 'directory' | 'symlink' | 'link' | 'character-device' | 'fifo';
  linkname?: string;
  mode?: number;
}

/** packTar writes entries into a tar with tar-stream (fixed mtime, uid/gid 0; long names as PAX headers). */
export async function packTar(entries: RawTarEntry[]): Promise<Buffer> {
  const pack = tarStream.pack();
  const chunks: Buffer[] = [];
  const collected = (async () => {
    for await (const c of pack as AsyncIterable<Buffer>) chunks.push(c);
  })();
  for (const e of entries) {
    const type = e.type ?? 'file';
    const data = e.data === undefined ? undefined : Buffer.from(e.data);
    const header = {
      name: e.name,
      type,
      mode: e.mode ?? (type === 'directory' ? 0o755 : 0o644),
      mtime: FIXED_MTIME,
      uid: 0,
      gid: 0,
      uname: '',
      gname: '',
      size: type === 'file' ? (data?.byteLength ?? 0) : 0,
      ...(e.linkname !== undefined ? { linkname: e.linkname } : {}),
    };
    await new Promise<void>((resolvePromise, reject) => {
      const cb = (err?: Error | null): void => (err ? reject(err) : resolvePromise());
      if (type === 'file') pack.entry(header, data ?? Buffer.alloc(0), cb);
      else pack.entry(header, cb);
    });
  }
  pack.finalize();
  await collected;
  return Buffer.concat(chunks);
}

/** makeLayerTar builds one layer: a real tar of a few small files under a directory named after the layer. */
async function makeLayerTar(spec: LayerSpec, seed: string): Promise<Buffer> {
  const prng = new Prng(seed);
  const dir = `opt/fixture-${hex(sha256(seed)).slice(0, 8)}`;
  const entries: RawTarEntry[] = [
    { name: 'opt/', type: 'directory' },
    { name: `${dir}/`, type: 'directory' },
  ];
  if (typeof spec.files === 'object') {
    for (const [name, content] of Object.entries(spec.files)) entries.push({ name, data: content });
  } else {
    const count = Math.max(1, spec.files ?? 3);
    const total = spec.sizeBytes ?? 2048;
    for (let i = 0; i < count; i++) {
      const size = Math.max(1, Math.floor(total / count));
      entries.push({ name: `${dir}/file-${i}.txt`, data: text(prng, size) });
    }
  }
  return packTar(entries);
}

// ---------------------------------------------------------------------------------------------------------------
// OCI image layouts

function json(value: unknown): Buffer {
  return Buffer.from(JSON.stringify(value));
}

/** tagOf gives the tag of a full reference, or undefined. */
function tagOf(ref: string): string | undefined {
  const at = ref.indexOf('@');
  const name = at >= 0 ? ref.slice(0, at) : ref;
  const slash = name.lastIndexOf('/');
  const colon = name.lastIndexOf(':');
  return colon > slash ? name.slice(colon + 1) : undefined;
}

interface LayerBlob extends BuiltLayer {
  bytes: Buffer;
  uncompressed: Buffer;
}

/** makeConfig builds an OCI image config for layers. */
function makeConfig(platform: PlatformSpec, diffIds: string[], label: string): Buffer {
  return json({
    created: CREATED,
    architecture: platform.arch,
    os: platform.os,
    ...(platform.variant !== undefined ? { variant: platform.variant } : {}),
    config: {
      Env: ['PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin'],
      Cmd: ['/bin/sh'],
      Labels: { 'org.opencontainers.image.title': label },
    },
    rootfs: { type: 'layers', diff_ids: diffIds },
    history: diffIds.map((_, i) => ({ created: CREATED, created_by: `mirror fixture ${label} layer ${i}` })),
  });
}

function platformString(p: PlatformSpec): string {
  return `${p.os}/${p.arch}${p.variant ? `/${p.variant}` : ''}`;
}

/** SPDX_JSON is the media type of SPDX JSON documents (SBOMs). */
export const SPDX_JSON = 'application/spdx+json';

/** EMPTY_JSON is the OCI empty descriptor's content (`{}`), the config of artifacts. */
const EMPTY_JSON = Buffer.from('{}');

/**
 * sbomJson writes an SPDX-like JSON document of exactly `size` bytes (at least 200), unique to `label`: cheap to make
 * (a repeated package list), compressible like real SBOMs.
 */
export function sbomJson(label: string, size: number): Buffer {
  const head = `{"spdxVersion":"SPDX-2.3","dataLicense":"CC0-1.0","SPDXID":"SPDXRef-DOCUMENT","name":${JSON.stringify(label)},"packages":[`;
  const tail = ']}';
  const parts: string[] = [head];
  let len = head.length + tail.length;
  for (let i = 0; ; i++) {
    const p = `${i === 0 ? '' : ','}{"SPDXID":"SPDXRef-Package-${i}","name":"pkg-${i}","versionInfo":"1.${i % 97}.${i % 13}","downloadLocation":"NOASSERTION"}`;
    if (len + p.length + 40 > size) break;
    parts.push(p);
    len += p.length;
  }
  const pad = size - len - (parts.length > 1 ? 1 : 0) - '{"comment":""}'.length;
  parts.push(`${parts.length > 1 ? ',' : ''}{"comment":"${' '.repeat(Math.max(0, pad))}"}`);
  parts.push(tail);
  const out = Buffer.from(parts.join(''));
  if (out.byteLength !== size) throw new Error(`sbomJson: ${out.byteLength} bytes, wanted ${size}`);
  return out;
}

/** buildOciLayout builds an OCI image layout in memory: `oci-layout`, `index.json`, `blobs/sha256/<hex>`. */
export async function buildOciLayout(spec: LayoutSpec): Promise<BuiltLayout> {
  const seed = spec.seed ?? 'mirror';
  const gz = spec.gzip ?? 'stored';
  const blobs = new Map<string, Buffer>();
  const put = (bytes: Buffer, algorithm: 'sha256' | 'sha512' = 'sha256'): string => {
    const d = algorithm === 'sha256' ? sha256(bytes) : `sha512:${createHash('sha512').update(bytes).digest('hex')}`;
    blobs.set(d, bytes);
    return d;
  };
  const blobAlg = spec.blobDigest ?? 'sha256';
  const baseLayers = new Map<string, LayerBlob>();
  const images: BuiltImage[] = [];
  const topDescriptors: Record<string, unknown>[] = [];

  for (const [imageIndex, image] of spec.images.entries()) {
    const docker = image.mediaTypes === 'docker';
    const manifestType = docker ? MediaType.DOCKER_MANIFEST : MediaType.OCI_MANIFEST;
    const indexType = docker ? MediaType.DOCKER_MANIFEST_LIST : MediaType.OCI_INDEX;
    const configType = docker ? MediaType.DOCKER_CONFIG : MediaType.OCI_CONFIG;
    const layerType = docker ? MediaType.DOCKER_LAYER_GZIP : MediaType.OCI_LAYER_GZIP;
    const platforms = image.platforms ?? [{ os: 'linux', arch: 'amd64' }];
    const label = image.ref ?? `unnamed-${imageIndex}`;
    let shared: LayerBlob | undefined;
    if (image.sharedBaseWith !== undefined) {
      shared = baseLayers.get(image.sharedBaseWith);
      if (!shared) throw new Error(`sharedBaseWith ${image.sharedBaseWith}: no earlier image with that ref`);
    }
    const manifests: BuiltManifest[] = [];
    const childDescriptors: Record<string, unknown>[] = [];
    let foreign: BuiltImage['foreign'];
    const allBlobs = new Set<string>();
    for (const platform of platforms) {
      const layers: LayerBlob[] = shared ? [{ ...shared, mediaType: layerType }] : [];
      for (const [i, layerSpec] of image.layers.entries()) {
        const uncompressed = await makeLayerTar(layerSpec, `${seed}/${label}/${platformString(platform)}/${i}`);
        const bytes = gzipLayer(uncompressed, gz);
        layers.push({ digest: sha256(bytes), size: bytes.byteLength, diffId: sha256(uncompressed), mediaType: layerType, bytes, uncompressed });
      }
      if (image.ref !== undefined && !baseLayers.has(image.ref) && layers[0]) baseLayers.set(image.ref, layers[0]);
      if (blobAlg !== 'sha256') {
        for (const l of layers) l.digest = `sha512:${createHash('sha512').update(l.bytes).digest('hex')}`;
      }
      for (const l of layers) allBlobs.add(put(l.bytes, blobAlg));
      const extra: Array<{ mediaType: string; digest: string; size: number; urls?: string[] }> = [];
      if (image.sbom?.attach === 'layer') {
        const doc = sbomJson(`${label}/${platformString(platform)}`, image.sbom.sizeBytes);
        const d = put(doc, blobAlg);
        allBlobs.add(d);
        extra.push({ mediaType: SPDX_JSON, digest: d, size: doc.byteLength });
      }
      if (image.foreignLayer !== undefined) {
        const bytes = gzipLayer(await makeLayerTar({ files: 1, sizeBytes: 700 }, `${seed}/${label}/${platformString(platform)}/foreign`), gz);
        const d = sha256(bytes);
        if (image.foreignLayer.present) {
          put(bytes);
          allBlobs.add(d);
        }
        extra.push({ mediaType: image.foreignLayer.mediaType, digest: d, size: bytes.byteLength, urls: ['https://example.invalid/layers/foreign.tar.gz'] });
        foreign = { digest: d, mediaType: image.foreignLayer.mediaType, present: image.foreignLayer.present };
      }
      const config = makeConfig(
        platform,
        layers.map((l) => l.diffId),
        label,
      );
      const configDigest = put(config, blobAlg);
      allBlobs.add(configDigest);
      const manifest = json({
        schemaVersion: 2,
        mediaType: manifestType,
        config: { mediaType: configType, digest: configDigest, size: config.byteLength },
        layers: [...layers.map((l) => ({ mediaType: l.mediaType, digest: l.digest, size: l.size })), ...extra],
      });
      const manifestDigest = put(manifest);
      allBlobs.add(manifestDigest);
      manifests.push({
        digest: manifestDigest,
        size: manifest.byteLength,
        mediaType: manifestType,
        platform,
        config: { digest: configDigest, size: config.byteLength },
        layers: layers.map(({ digest, size, diffId, mediaType }) => ({ digest, size, diffId, mediaType })),
      });
      childDescriptors.push({
        mediaType: manifestType,
        digest: manifestDigest,
        size: manifest.byteLength,
        platform: {
          architecture: platform.arch,
          os: platform.os,
          ...(platform.variant !== undefined ? { variant: platform.variant } : {}),
        },
      });
    }
    let top: { digest: string; size: number; mediaType: string };
    const first = manifests[0];
    if (!first) throw new Error(`image ${label} has no platforms`);
    if (platforms.length > 1) {
      const index = json({ schemaVersion: 2, mediaType: indexType, manifests: childDescriptors });
      const d = put(index);
      allBlobs.add(d);
      top = { digest: d, size: index.byteLength, mediaType: indexType };
    } else {
      top = { digest: first.digest, size: first.size, mediaType: manifestType };
    }
    let name = image.ref;
    if (name !== undefined && image.byDigest) name = `${name.replace(/@.*$/, '')}@${top.digest}`;
    const annotations: Record<string, string> = {};
    if (name !== undefined) {
      const tag = image.byDigest ? undefined : tagOf(name);
      if ((spec.refNames ?? 'containerd') === 'containerd') {
        annotations['io.containerd.image.name'] = name;
        if (tag !== undefined) annotations['org.opencontainers.image.ref.name'] = tag;
      } else {
        annotations['org.opencontainers.image.ref.name'] = name;
      }
    }
    Object.assign(annotations, image.annotations ?? {});
    topDescriptors.push({
      mediaType: top.mediaType,
      digest: top.digest,
      size: top.size,
      ...(Object.keys(annotations).length > 0 ? { annotations } : {}),
    });
    const referrers: BuiltImage['referrers'] = [];
    if (image.sbom?.attach === 'referrer') {
      const doc = sbomJson(label, image.sbom.sizeBytes);
      const layerDigest = put(doc, blobAlg);
      const emptyDigest = put(EMPTY_JSON);
      const artifact = json({
        schemaVersion: 2,
        mediaType: MediaType.OCI_MANIFEST,
        artifactType: SPDX_JSON,
        config: { mediaType: MediaType.OCI_EMPTY, digest: emptyDigest, size: EMPTY_JSON.byteLength, data: EMPTY_JSON.toString('base64') },
        layers: [{ mediaType: SPDX_JSON, digest: layerDigest, size: doc.byteLength, annotations: { 'org.opencontainers.image.title': 'sbom.spdx.json' } }],
        subject: { mediaType: top.mediaType, digest: top.digest, size: top.size },
        annotations: { 'org.opencontainers.image.created': CREATED },
      });
      const d = put(artifact);
      referrers.push({ digest: d, size: artifact.byteLength, mediaType: MediaType.OCI_MANIFEST, artifactType: SPDX_JSON, layer: { digest: layerDigest, size: doc.byteLength } });
      topDescriptors.push({ mediaType: MediaType.OCI_MANIFEST, digest: d, size: artifact.byteLength, artifactType: SPDX_JSON });
    }
    images.push({ ref: name, digest: top.digest, size: top.size, mediaType: top.mediaType, manifests, blobs: [...allBlobs], referrers, foreign });
  }

  let rootManifests = topDescriptors;
  if (spec.nested) {
    const inner = json({ schemaVersion: 2, mediaType: MediaType.OCI_INDEX, manifests: topDescriptors });
    const innerDigest = put(inner);
    const outer = json({
      schemaVersion: 2,
      mediaType: MediaType.OCI_INDEX,
      manifests: [{ mediaType: MediaType.OCI_INDEX, digest: innerDigest, size: inner.byteLength }],
    });
    const outerDigest = put(outer);
    rootManifests = [{ mediaType: MediaType.OCI_INDEX, digest: outerDigest, size: outer.byteLength }];
  }
  const files: FileMap = new Map();
  files.set('oci-layout', json({ imageLayoutVersion: '1.0.0' }));
  files.set('index.json', json({ schemaVersion: 2, mediaType: MediaType.OCI_INDEX, manifests: rootManifests }));
  for (const [d, bytes] of [...blobs.entries()].sort(([a], [b]) => a.localeCompare(b))) files.set(`blobs/${d.slice(0, d.indexOf(':'))}/${hex(d)}`, bytes);
  return { format: 'oci-layout', files, images };
}

// ---------------------------------------------------------------------------------------------------------------
// docker save archives

/** buildDockerSave builds a `docker save` archive in memory: manifest.json, configs, uncompressed layer tars. */
export async function buildDockerSave(spec: DockerSaveSpec): Promise<BuiltDockerSave> {
  const seed = spec.seed ?? 'mirror';
  const legacy = (spec.layerPaths ?? 'legacy') === 'legacy';
  const files: FileMap = new Map();
  const images: BuiltDockerImage[] = [];
  const baseLayers = new Map<string, { tar: Buffer; diffId: string }>();
  const manifest: Record<string, unknown>[] = [];
  const repositories: Record<string, Record<string, string>> = {};
  for (const [imageIndex, image] of spec.images.entries()) {
    const platform = image.platform ?? { os: 'linux', arch: 'amd64' };
    const label = image.refs[0] ?? `untagged-${imageIndex}`;
    const tars: { tar: Buffer; diffId: string }[] = [];
    if (image.sharedBaseWith !== undefined) {
      const base = baseLayers.get(image.sharedBaseWith);
      if (!base) throw new Error(`sharedBaseWith ${image.sharedBaseWith}: no earlier image with that ref`);
      tars.push(base);
    }
    for (const [i, layerSpec] of image.layers.entries()) {
      const tar = await makeLayerTar(layerSpec, `${seed}/docker/${label}/${i}`);
      tars.push({ tar, diffId: sha256(tar) });
    }
    for (const ref of image.refs) if (!baseLayers.has(ref) && tars[0]) baseLayers.set(ref, tars[0]);
    const layerPaths: string[] = [];
    for (const { tar, diffId } of tars) {
      const h = hex(diffId);
      const path = legacy ? `${h}/layer.tar` : `${h}.tar`;
      layerPaths.push(path);
      if (files.has(path)) continue; // shared layers are written once
      files.set(path, tar);
      if (legacy) {
        files.set(`${h}/VERSION`, Buffer.from('1.0'));
        files.set(`${h}/json`, json({ id: h, created: CREATED, os: platform.os }));
      }
    }
    const config = makeConfig(
      platform,
      tars.map((t) => t.diffId),
      label,
    );
    const configDigest = sha256(config);
    const configPath = `${hex(configDigest)}.json`;
    files.set(configPath, config);
    manifest.push({ Config: configPath, RepoTags: image.refs.length > 0 ? image.refs : null, Layers: layerPaths });
    const topLayer = tars[tars.length - 1];
    for (const ref of image.refs) {
      const tag = tagOf(ref);
      const repo = tag === undefined ? ref : ref.slice(0, ref.length - tag.length - 1);
      if (tag !== undefined && topLayer) (repositories[repo] ??= {})[tag] = hex(topLayer.diffId);
    }
    images.push({ refs: image.refs, configDigest, configPath, layerPaths, diffIds: tars.map((t) => t.diffId) });
  }
  files.set('manifest.json', json(manifest));
  if (spec.repositories !== false) files.set('repositories', json(repositories));
  return { format: 'docker-archive', files, images };
}

/**
 * docker2500Save gives a `docker save` of Docker 25.0.0 as its known defect writes it: an OCI layout (config and
 * layer tars under blobs/sha256/, index.json, oci-layout) whose image manifests list no layers, next to a right
 * manifest.json that lists them by their blob paths. `broken: false` writes the manifests with their layers, as
 * Docker 25.0.1 and later do.
 */
export function docker2500Save(built: BuiltDockerSave, options: { broken?: boolean } = {}): OrderedFiles {
  const files: OrderedFiles = [];
  const blob = (path: string): string => {
    const data = built.files.get(path)!;
    const entry = blobEntry(data);
    if (!files.some(([n]) => n === entry[0])) files.push(entry);
    return entry[0];
  };
  const manifestJson: unknown[] = [];
  const index: unknown[] = [];
  for (const img of built.images) {
    const layers = img.layerPaths.map(blob);
    const config = blob(img.configPath);
    manifestJson.push({ Config: config, RepoTags: img.refs, Layers: layers });
    const manifest = json({
      schemaVersion: 2,
      mediaType: MediaType.OCI_MANIFEST,
      config: describeBytes(MediaType.OCI_CONFIG, built.files.get(img.configPath)!),
      layers: options.broken === false ? img.layerPaths.map((l) => describeBytes(MediaType.OCI_LAYER, built.files.get(l)!)) : [],
    });
    files.push(blobEntry(manifest));
    for (const ref of img.refs) {
      index.push(describeBytes(MediaType.OCI_MANIFEST, manifest, { annotations: { 'io.containerd.image.name': ref, 'org.opencontainers.image.ref.name': tagOf(ref) ?? 'latest' } }));
    }
  }
  files.push(['index.json', layoutIndex(index)], ['manifest.json', json(manifestJson)], ['oci-layout', OCI_LAYOUT_FILE]);
  return files;
}

/**
 * craneTarball gives what `crane pull` writes by default (go-containerregistry's tarball): each config named
 * `sha256:<hex>`, each layer gzip-compressed and named `<hex of the gzip>.tar.gz`, full references in RepoTags, and
 * manifest.json last. `configAsJson` names configs `<hex>.json` instead.
 */
export function craneTarball(built: BuiltDockerSave, options: { configAsJson?: boolean } = {}): OrderedFiles {
  const files: OrderedFiles = [];
  const manifestJson: unknown[] = [];
  for (const img of built.images) {
    const config = built.files.get(img.configPath)!;
    const configName = options.configAsJson ? `${hex(sha256(config))}.json` : sha256(config);
    if (!files.some(([n]) => n === configName)) files.push([configName, config]);
    const layers = img.layerPaths.map((path) => {
      const gz = gzipLayer(built.files.get(path)!, 'zlib');
      const name = `${hex(sha256(gz))}.tar.gz`;
      if (!files.some(([n]) => n === name)) files.push([name, gz]);
      return name;
    });
    manifestJson.push({ Config: configName, RepoTags: img.refs, Layers: layers });
  }
  files.push(['manifest.json', json(manifestJson)]);
  return files;
}

// ---------------------------------------------------------------------------------------------------------------
// Writing bundles

/** TarBundleOptions tune {@link writeTarBundle}. */
export interface TarBundleOptions {
  /** `metadata-first` (as `mirror save` writes) or `metadata-last` (as `tar` of a layout or `docker save` gives). */
  order: 'metadata-first' | 'metadata-last';
  /** Compression of the whole tar. */
  compression: 'xz' | 'gzip' | 'zstd' | 'none';
  /** Write directory entries (`blobs/`, `blobs/sha256/`) before their files. Default: true. */
  directories?: boolean;
  /** Prefix every name with `./`, as `tar -C dir .` does. Default: false. */
  dotSlash?: boolean;
}

const METADATA_FILES = ['oci-layout', 'index.json', 'manifest.json', 'repositories'];

/** jsonKind tells whether bytes are a manifest or index (`manifest`), another small JSON object (`json`), or neither. */
function jsonKind(bytes: Buffer): 'manifest' | 'json' | undefined {
  if (bytes.byteLength > 1024 * 1024 || bytes[0] !== 0x7b) return undefined;
  try {
    const v = JSON.parse(bytes.toString('utf8')) as Record<string, unknown>;
    return 'manifests' in v || 'layers' in v ? 'manifest' : 'json';
  } catch {
    return undefined;
  }
}

/** orderFiles gives the archive order of a bundle's files. */
export function orderFiles(files: FileMap, order: 'metadata-first' | 'metadata-last'): string[] {
  const names = [...files.keys()];
  const meta = METADATA_FILES.filter((n) => files.has(n));
  const rest = names.filter((n) => !METADATA_FILES.includes(n)).sort();
  if (order === 'metadata-last') return [...rest, ...[...meta].sort()];
  const rank = (n: string): number => {
    const k = jsonKind(files.get(n) ?? Buffer.alloc(0));
    return k === 'manifest' ? 0 : k === 'json' ? 1 : 2;
  };
  return [...meta, ...rest.sort((a, b) => rank(a) - rank(b) || a.localeCompare(b))];
}

/** runProgram pipes bytes through a program and gives its output. */
function runProgram(program: string, args: string[], input: Buffer): Promise<Buffer> {
  return new Promise<Buffer>((resolvePromise, reject) => {
    const child = spawn(program, args, { stdio: ['pipe', 'pipe', 'pipe'] });
    const out: Buffer[] = [];
    let err = '';
    child.stdout.on('data', (d: Buffer) => out.push(d));
    child.stderr.on('data', (d: Buffer) => (err += d.toString()));
    child.on('error', reject);
    child.on('close', (code) => {
      if (code === 0) resolvePromise(Buffer.concat(out));
      else reject(new Error(`${program} ${args.join(' ')} failed: ${err.trim()}`));
    });
    child.stdin.on('error', () => {});
    child.stdin.end(input);
  });
}

/** compress compresses a whole tar as asked (xz and zstd with their programs, gzip with zlib). */
export async function compress(tar: Buffer, compression: TarBundleOptions['compression']): Promise<Buffer> {
  switch (compression) {
    case 'none':
      return tar;
    case 'gzip':
      return zlib.gzipSync(tar, { level: 6 });
    case 'xz':
      try {
        return await runProgram('xz', ['-T0', '-6', '-c'], tar);
      } catch (e) {
        if ((e as NodeJS.ErrnoException).code !== 'ENOENT') throw e;
        const lzma = createRequire(import.meta.url)('lzma-native') as { compress(b: Buffer, o: { preset: number }): Promise<Buffer> };
        return lzma.compress(tar, { preset: 6 });
      }
    case 'zstd':
      return runProgram('zstd', ['-q', '-c', '-19'], tar);
  }
}

/** bundleTar builds the tar of a bundle's files in the given order (uncompressed). */
export async function bundleTar(files: FileMap, options: Omit<TarBundleOptions, 'compression'>): Promise<Buffer> {
  const entries: RawTarEntry[] = [];
  const prefix = options.dotSlash ? './' : '';
  const dirsDone = new Set<string>();
  if (options.dotSlash && options.directories !== false) entries.push({ name: './', type: 'directory' });
  for (const name of orderFiles(files, options.order)) {
    if (options.directories !== false) {
      const parts = name.split('/');
      for (let i = 1; i < parts.length; i++) {
        const dir = `${parts.slice(0, i).join('/')}/`;
        if (dirsDone.has(dir)) continue;
        dirsDone.add(dir);
        entries.push({ name: prefix + dir, type: 'directory' });
      }
    }
    entries.push({ name: prefix + name, data: files.get(name) ?? Buffer.alloc(0) });
  }
  return packTar(entries);
}

/** writeTarBundle writes a bundle's files as a tar (ordered and compressed as asked) to `outPath`. */
export async function writeTarBundle(files: FileMap, outPath: string, options: TarBundleOptions): Promise<void> {
  const tar = await bundleTar(files, options);
  await mkdir(dirname(outPath), { recursive: true });
  await writeFile(outPath, await compress(tar, options.compression));
}

/** writeDirectory writes a bundle's files under `dir` (an OCI layout directory or an unpacked `docker save`). */
export async function writeDirectory(files: FileMap, dir: string): Promise<void> {
  for (const [name, bytes] of files) {
    const path = join(dir, ...name.split('/'));
    await mkdir(dirname(path), { recursive: true });
    await writeFile(path, bytes);
  }
}

/** writeRawTar writes arbitrary tar entries (for bad inputs) to `outPath`, compressed as asked. */
export async function writeRawTar(entries: RawTarEntry[], outPath: string, compression: TarBundleOptions['compression'] = 'none'): Promise<void> {
  await mkdir(dirname(outPath), { recursive: true });
  await writeFile(outPath, await compress(await packTar(entries), compression));
}

// ---------------------------------------------------------------------------------------------------------------
// Hostile bundles (issue 7, section 4): shapes that must end in bounded time and memory. Each builder gives the
// files in archive order; they are small on disk (a few KB to a few MB compressed) and made in well under a second,
// except the 100,000-blob one (a couple of seconds).

/** OrderedFiles are a bundle's files in archive order. */
export type OrderedFiles = Array<[string, Buffer]>;

/**
 * writeOrderedTar writes files as a tar in exactly the order given (no directory entries), compressed as asked (zstd
 * at level 3 here, fast enough for a 100 MB tar).
 */
export async function writeOrderedTar(files: OrderedFiles, outPath: string, compression: TarBundleOptions['compression'] = 'zstd'): Promise<void> {
  const tar = await packTar(files.map(([name, data]) => ({ name, data })));
  await mkdir(dirname(outPath), { recursive: true });
  await writeFile(outPath, compression === 'zstd' ? await runProgram('zstd', ['-q', '-c', '-3'], tar) : await compress(tar, compression));
}

/** blobEntry names bytes as an OCI layout blob: `[blobs/sha256/<hex>, bytes]`. */
export function blobEntry(bytes: Buffer): [string, Buffer] {
  return [`blobs/sha256/${hex(sha256(bytes))}`, bytes];
}

/** describe gives the descriptor of bytes. */
function describeBytes(mediaType: string, bytes: Buffer, extra: Record<string, unknown> = {}): { mediaType: string; digest: string; size: number } & Record<string, unknown> {
  return { mediaType, digest: sha256(bytes), size: bytes.byteLength, ...extra };
}

const OCI_LAYOUT_FILE = json({ imageLayoutVersion: '1.0.0' });

/** layoutIndex gives index.json bytes listing `manifests`. */
function layoutIndex(manifests: unknown[]): Buffer {
  return json({ schemaVersion: 2, mediaType: MediaType.OCI_INDEX, manifests });
}

/** TinyImage is a small valid single-platform image: a layer (a few bytes; registries never look inside), its config, its manifest. */
export interface TinyImage {
  layer: Buffer;
  config: Buffer;
  manifest: Buffer;
  /** The manifest's descriptor (no annotations). */
  descriptor: { mediaType: string; digest: string; size: number };
  /** index.json's entry for it under `ref` (io.containerd.image.name and the tag in ref.name). */
  entry(ref: string): Record<string, unknown>;
}

/**
 * tinyImage makes a small image labelled `label`. `declare` overrides what the manifest says of its blobs (a size
 * that does not match, for the hostile size fixtures); `layer` gives the layer's bytes; `annotations` go into the
 * manifest.
 */
export function tinyImage(
  label: string,
  options: { layer?: Buffer; declare?: { layerSize?: number; configSize?: number }; manifestAnnotations?: Record<string, unknown>; manifestPad?: number } = {},
): TinyImage {
  const layer = options.layer ?? Buffer.from(`layer of ${label}\n`);
  const config = json({
    architecture: 'amd64',
    os: 'linux',
    config: { Labels: { 'org.example.label': label } },
    rootfs: { type: 'layers', diff_ids: [sha256(layer)] },
  });
  const manifestDoc: Record<string, unknown> = {
    schemaVersion: 2,
    mediaType: MediaType.OCI_MANIFEST,
    config: { mediaType: MediaType.OCI_CONFIG, digest: sha256(config), size: options.declare?.configSize ?? config.byteLength },
    layers: [{ mediaType: MediaType.OCI_LAYER, digest: sha256(layer), size: options.declare?.layerSize ?? layer.byteLength }],
  };
  if (options.manifestAnnotations !== undefined) manifestDoc.annotations = options.manifestAnnotations;
  if (options.manifestPad !== undefined) manifestDoc.annotations = { 'org.example.padding': 'p'.repeat(options.manifestPad) };
  const manifest = json(manifestDoc);
  const descriptor = describeBytes(MediaType.OCI_MANIFEST, manifest);
  return {
    layer,
    config,
    manifest,
    descriptor,
    entry: (ref) => ({ ...descriptor, annotations: { 'io.containerd.image.name': ref, ...(tagOf(ref) ? { 'org.opencontainers.image.ref.name': tagOf(ref) } : {}) } }),
  };
}

/** imageFiles lists an image's blobs: layer, config, manifest. */
function imageFiles(img: TinyImage): OrderedFiles {
  return [blobEntry(img.layer), blobEntry(img.config), blobEntry(img.manifest)];
}

/** HostileBundle is a hostile bundle's files and what a push of it should give. */
export interface HostileBundle {
  files: OrderedFiles;
  /** References of the images that should be pushed. */
  refs: string[];
}

/**
 * fanoutBundle: index.json names nothing itself; its one unnamed entry is an index whose children are indexes that
 * share their children (two per level, each listing both of the next level `width / 2` times), `levels` deep, so
 * there are `width^levels` paths to the two named images at the bottom (16^8 = 4 billion by default) in about 40 KB.
 * A second, named entry points at the same top index, so the whole graph is pushed once as an image too.
 */
export function fanoutBundle(options: { levels?: number; width?: number } = {}): HostileBundle {
  const levels = options.levels ?? 8;
  const width = options.width ?? 16;
  const a = tinyImage('fanout-a');
  const b = tinyImage('fanout-b');
  const refs = ['gcr.io/hostile/fanout-a:1.0', 'gcr.io/hostile/fanout-b:1.0'];
  const indexes: Buffer[] = [];
  let below: Array<Record<string, unknown>> = [a.entry(refs[0]!), b.entry(refs[1]!)];
  let top: Buffer | undefined;
  for (let level = levels - 1; level >= 0; level--) {
    const pair: Buffer[] = [];
    for (const side of ['a', 'b']) {
      const manifests: unknown[] = [];
      for (let i = 0; i < width; i++) manifests.push({ ...below[i % below.length]!, ...(level === levels - 1 ? {} : { annotations: { 'org.example.path': `${side}${i}` } }) });
      const bytes = json({ schemaVersion: 2, mediaType: MediaType.OCI_INDEX, manifests, annotations: { 'org.example.level': `${level}${side}` } });
      pair.push(bytes);
    }
    indexes.push(...pair);
    below = pair.map((p) => describeBytes(MediaType.OCI_INDEX, p));
    top = pair[0];
  }
  const topDesc = describeBytes(MediaType.OCI_INDEX, top!);
  const named = 'gcr.io/hostile/fanout-index:1.0';
  const index = layoutIndex([topDesc, { ...topDesc, annotations: { 'io.containerd.image.name': named, 'org.opencontainers.image.ref.name': '1.0' } }]);
  return {
    files: [['oci-layout', OCI_LAYOUT_FILE], ['index.json', index], ...indexes.map(blobEntry), ...imageFiles(a), ...imageFiles(b)],
    refs: [...refs, named],
  };
}

/**
 * wideBundle: index.json's one unnamed entry is an index of `width` entries that all name one index, which lists a
 * second index `width` times, which names one image: a wide DAG of three indexes just under 4 MiB each, with
 * `width^2` paths to one image (484 million by default).
 */
export function wideBundle(options: { width?: number } = {}): HostileBundle {
  const width = options.width ?? 22_000;
  const img = tinyImage('wide');
  const ref = 'gcr.io/hostile/wide:1.0';
  const z = json({ schemaVersion: 2, mediaType: MediaType.OCI_INDEX, manifests: [img.entry(ref)] });
  const fan = (child: Buffer): Buffer => {
    const d = describeBytes(MediaType.OCI_INDEX, child);
    const manifests: unknown[] = [];
    for (let i = 0; i < width; i++) manifests.push({ ...d, annotations: { n: String(i) } });
    return json({ schemaVersion: 2, mediaType: MediaType.OCI_INDEX, manifests });
  };
  const y = fan(z);
  const x = fan(y);
  return {
    files: [['oci-layout', OCI_LAYOUT_FILE], ['index.json', layoutIndex([describeBytes(MediaType.OCI_INDEX, x)])], blobEntry(x), blobEntry(y), blobEntry(z), ...imageFiles(img)],
    refs: [ref],
  };
}

/**
 * manyImagesBundle: `count` small named images. `interleaved` writes index.json first, then for each image its layer
 * and config before its manifest (blobs met before the metadata that names them, one image after the other);
 * `metadata-first` writes index.json, every manifest, every config, then the layers; `metadata-last` the blobs in
 * name order, then index.json (as `tar` of a layout directory does).
 */
export function manyImagesBundle(options: { count?: number; order: 'interleaved' | 'metadata-first' | 'metadata-last' }): HostileBundle {
  const count = options.count ?? 6000;
  const images = Array.from({ length: count }, (_, i) => tinyImage(`many-${i}`));
  const refs = images.map((_, i) => `gcr.io/hostile/many-${i}:1.0`);
  const index = layoutIndex(images.map((img, i) => img.entry(refs[i]!)));
  let blobs: OrderedFiles;
  if (options.order === 'interleaved') blobs = images.flatMap(imageFiles);
  else if (options.order === 'metadata-first') blobs = [...images.map((i) => blobEntry(i.manifest)), ...images.map((i) => blobEntry(i.config)), ...images.map((i) => blobEntry(i.layer))];
  else blobs = images.flatMap(imageFiles).sort(([x], [y]) => x.localeCompare(y));
  const meta: OrderedFiles = [['oci-layout', OCI_LAYOUT_FILE], ['index.json', index]];
  return { files: options.order === 'metadata-last' ? [...blobs, ...meta] : [...meta, ...blobs], refs };
}

/**
 * unreferencedBundle: one small named image and `count` tiny blobs no manifest names (each a few bytes, named by its
 * own sha256). `metadata-first` puts index.json and the image first; `metadata-last` writes everything in name order
 * with index.json at the end.
 */
export function unreferencedBundle(options: { count?: number; order: 'metadata-first' | 'metadata-last' }): HostileBundle {
  const count = options.count ?? 100_000;
  const img = tinyImage('unreferenced');
  const ref = 'gcr.io/hostile/unreferenced:1.0';
  const extra: OrderedFiles = [];
  for (let i = 0; i < count; i++) extra.push(blobEntry(Buffer.from(`unreferenced blob ${i}\n`)));
  const meta: OrderedFiles = [['oci-layout', OCI_LAYOUT_FILE], ['index.json', layoutIndex([img.entry(ref)])]];
  const files =
    options.order === 'metadata-first'
      ? [...meta, blobEntry(img.manifest), blobEntry(img.config), blobEntry(img.layer), ...extra]
      : [...[...imageFiles(img), ...extra].sort(([x], [y]) => x.localeCompare(y)), ...meta];
  return { files, refs: [ref] };
}

/** deepJson gives a JSON text nested `depth` levels (`[[[...]]]`), valid and about 2 bytes per level. */
export function deepJson(depth: number): string {
  return `${'['.repeat(depth)}${']'.repeat(depth)}`;
}

/**
 * deepJsonBundle: one good image and one whose JSON nests `depth` levels deep (100,000 by default) in `where`: an
 * annotation of its index.json entry, the platform of an index's child, a field of its manifest, or the `os` of its
 * config (a docker-save archive then, where the platform is read from the config).
 */
export function deepJsonBundle(where: 'index-annotation' | 'child-platform' | 'manifest-field' | 'docker-config', depth = 100_000): HostileBundle & { badRef: string } {
  const good = tinyImage('deep-good');
  const goodRef = 'gcr.io/hostile/deep-good:1.0';
  const badRef = 'gcr.io/hostile/deep-bad:1.0';
  // JSON.stringify cannot write such a value (nor most code read it back): a placeholder string is replaced.
  const DEEP = '@@deep@@';
  const deepen = (bytes: Buffer): Buffer => Buffer.from(bytes.toString('utf8').replace(JSON.stringify(DEEP), deepJson(depth)));
  if (where === 'docker-config') {
    const layer = Buffer.from('not really a tar, registries do not look\n');
    const config = deepen(json({ architecture: 'amd64', os: DEEP, rootfs: { type: 'layers', diff_ids: [sha256(layer)] } }));
    const goodLayer = Buffer.from('the good layer\n');
    const goodConfig = json({ architecture: 'amd64', os: 'linux', rootfs: { type: 'layers', diff_ids: [sha256(goodLayer)] } });
    const manifest = json([
      { Config: `${hex(sha256(goodConfig))}.json`, RepoTags: [goodRef], Layers: [`${hex(sha256(goodLayer))}.tar`] },
      { Config: `${hex(sha256(config))}.json`, RepoTags: [badRef], Layers: [`${hex(sha256(layer))}.tar`] },
    ]);
    return {
      files: [
        [`${hex(sha256(goodConfig))}.json`, goodConfig],
        [`${hex(sha256(goodLayer))}.tar`, goodLayer],
        [`${hex(sha256(config))}.json`, config],
        [`${hex(sha256(layer))}.tar`, layer],
        ['manifest.json', manifest],
      ],
      refs: [goodRef],
      badRef,
    };
  }
  const extra: OrderedFiles = [];
  let bad: TinyImage;
  let index: Buffer;
  if (where === 'manifest-field') {
    const plain = tinyImage('deep-bad', { manifestAnnotations: { 'org.example.deep': DEEP } });
    const manifest = deepen(plain.manifest);
    const descriptor = describeBytes(MediaType.OCI_MANIFEST, manifest);
    bad = { ...plain, manifest, descriptor };
    index = layoutIndex([good.entry(goodRef), { ...descriptor, annotations: { 'io.containerd.image.name': badRef } }]);
  } else if (where === 'index-annotation') {
    bad = tinyImage('deep-bad');
    const e = bad.entry(badRef);
    index = deepen(layoutIndex([good.entry(goodRef), { ...e, annotations: { ...(e.annotations as Record<string, string>), 'org.example.deep': DEEP } }]));
  } else {
    bad = tinyImage('deep-bad');
    const ix = deepen(json({ schemaVersion: 2, mediaType: MediaType.OCI_INDEX, manifests: [{ ...bad.descriptor, platform: { architecture: 'amd64', os: DEEP } }] }));
    extra.push(blobEntry(ix));
    index = layoutIndex([good.entry(goodRef), describeBytes(MediaType.OCI_INDEX, ix, { annotations: { 'io.containerd.image.name': badRef, 'org.opencontainers.image.ref.name': '1.0' } })]);
  }
  return {
    files: [['oci-layout', OCI_LAYOUT_FILE], ['index.json', index], ...imageFiles(good), ...imageFiles(bad), ...extra],
    refs: [goodRef],
    badRef,
  };
}

/**
 * sizeBundle: one good image and one whose manifest declares a size that its bytes do not have: of a small layer, of
 * a layer streamed while it is read (`big`: 17 MiB, above the 16 MiB read into memory), of its config, or of itself in
 * index.json; or (`huge-manifest`) a manifest of 5.2 MiB, above the 4 MiB manifest limit. `order` puts the metadata
 * first or last.
 */
export function sizeBundle(
  what: 'layer' | 'big-layer' | 'config' | 'manifest' | 'huge-manifest',
  order: 'metadata-first' | 'metadata-last',
): HostileBundle & { badRef: string; badDigest: string } {
  const good = tinyImage('size-good');
  const goodRef = 'gcr.io/hostile/size-good:1.0';
  const badRef = 'gcr.io/hostile/size-bad:1.0';
  let bad: TinyImage;
  let badDigest: string;
  let entry: Record<string, unknown>;
  if (what === 'big-layer') {
    const layer = Buffer.alloc(17 * 1024 * 1024, 'streamed layer of size-bad\n');
    bad = tinyImage('size-bad', { layer, declare: { layerSize: layer.byteLength - 1000 } });
    badDigest = sha256(layer);
    entry = bad.entry(badRef);
  } else if (what === 'layer') {
    bad = tinyImage('size-bad', { declare: { layerSize: 5 } });
    badDigest = sha256(bad.layer);
    entry = bad.entry(badRef);
  } else if (what === 'config') {
    bad = tinyImage('size-bad', { declare: { configSize: 7 } });
    badDigest = sha256(bad.config);
    entry = bad.entry(badRef);
  } else if (what === 'manifest') {
    bad = tinyImage('size-bad');
    badDigest = bad.descriptor.digest;
    entry = { ...bad.entry(badRef), size: bad.descriptor.size + 3 };
  } else {
    bad = tinyImage('size-bad', { manifestPad: Math.round(5.2 * 1024 * 1024) });
    badDigest = bad.descriptor.digest;
    entry = bad.entry(badRef);
  }
  const meta: OrderedFiles = [['oci-layout', OCI_LAYOUT_FILE], ['index.json', layoutIndex([good.entry(goodRef), entry])]];
  const files: OrderedFiles =
    order === 'metadata-first'
      ? [...meta, ...[good.manifest, bad.manifest, good.config, bad.config, good.layer, bad.layer].map(blobEntry)]
      : [...imageFiles(good), ...imageFiles(bad), ...meta];
  return { files, refs: [goodRef], badRef, badDigest };
}

/** LONG is the length of the long strings {@link longNameBundle} writes (100,000 characters). */
export const LONG_NAME = 100_000;

/**
 * longNameBundle: a bundle whose names are 100,000 characters long: an index.json ref name that is a bare tag
 * (`tag`), an image name that is not a valid reference (`reference`), a tar entry name with `..` (`entry`), a
 * docker-save RepoTag that is not a valid reference (`repo-tag`). Each name starts with a recognisable prefix.
 */
export function longNameBundle(what: 'tag' | 'reference' | 'entry' | 'repo-tag'): HostileBundle & { prefix: string } {
  const img = tinyImage('long');
  const goodRef = 'gcr.io/hostile/long-good:1.0';
  const good = tinyImage('long-good');
  if (what === 'entry') {
    const prefix = '../escape-';
    return { files: [['oci-layout', OCI_LAYOUT_FILE], [`${prefix}${'e'.repeat(LONG_NAME)}`, Buffer.from('x')]], refs: [], prefix };
  }
  if (what === 'repo-tag') {
    const prefix = 'gcr.io/hostile/LONG-';
    const layer = Buffer.from('docker layer\n');
    const config = json({ architecture: 'amd64', os: 'linux', rootfs: { type: 'layers', diff_ids: [sha256(layer)] } });
    const manifest = json([{ Config: `${hex(sha256(config))}.json`, RepoTags: [`${prefix}${'R'.repeat(LONG_NAME)}:1.0`], Layers: [`${hex(sha256(layer))}.tar`] }]);
    return { files: [[`${hex(sha256(config))}.json`, config], [`${hex(sha256(layer))}.tar`, layer], ['manifest.json', manifest]], refs: [], prefix };
  }
  const prefix = what === 'tag' ? 'tag-' : 'gcr.io/hostile/Upper-';
  const name = what === 'tag' ? `${prefix}${'t'.repeat(LONG_NAME)}` : `${prefix}${'U'.repeat(LONG_NAME)}:1.0`;
  const entry = what === 'tag' ? { ...img.descriptor, annotations: { 'org.opencontainers.image.ref.name': name } } : { ...img.descriptor, annotations: { 'io.containerd.image.name': name } };
  return {
    files: [['oci-layout', OCI_LAYOUT_FILE], ['index.json', layoutIndex([good.entry(goodRef), entry])], ...imageFiles(good), ...imageFiles(img)],
    refs: [goodRef],
    prefix,
  };
}

// ---------------------------------------------------------------------------------------------------------------
// The canonical fixtures

/** DEMO_SPEC is the README's demo: one single-platform image, one linux/amd64 + linux/arm64 index, one image sharing the first's base layer. */
export const DEMO_SPEC: LayoutSpec = {
  seed: 'mirror-demo',
  images: [
    { ref: 'gcr.io/kubernetes-e2e-test-images/nautilus:1.0', layers: [{ files: 3, sizeBytes: 6000 }, { files: 2, sizeBytes: 2000 }] },
    {
      ref: 'docker.io/library/busybox:1.36',
      platforms: [
        { os: 'linux', arch: 'amd64' },
        { os: 'linux', arch: 'arm64', variant: 'v8' },
      ],
      layers: [{ files: 3, sizeBytes: 4000 }],
    },
    {
      ref: 'quay.io/mirror-demo/tools:2.0',
      sharedBaseWith: 'gcr.io/kubernetes-e2e-test-images/nautilus:1.0',
      layers: [{ files: 2, sizeBytes: 3000 }],
    },
  ],
};

/** DOCKER_SAVE_SPEC is a small `docker save` archive: two images sharing a base layer, one with two tags. */
export const DOCKER_SAVE_SPEC: DockerSaveSpec = {
  seed: 'mirror-docker-save',
  images: [
    { refs: ['gcr.io/kubernetes-e2e-test-images/nautilus:1.0', 'gcr.io/kubernetes-e2e-test-images/nautilus:latest'], layers: [{ files: 2, sizeBytes: 3000 }, { files: 1, sizeBytes: 1000 }] },
    { refs: ['quay.io/mirror-demo/tools:2.0'], sharedBaseWith: 'gcr.io/kubernetes-e2e-test-images/nautilus:1.0', layers: [{ files: 2, sizeBytes: 2000 }] },
  ],
};

/** FixtureImage is what a test may assert about one named image of a fixture. */
export interface FixtureImage {
  /** Digest of the manifest (or index) the name points at. */
  digest: string;
  mediaType: string;
  /** Platform -> manifest digest, for multi-platform images. */
  platforms: Record<string, string>;
  /** Every blob digest of the image (manifests, configs, layers). */
  blobs: string[];
}

/** FixtureDescription is what a fixture holds, so tests need not hard-code digests. */
export interface FixtureDescription {
  /** The bundle file name under testdata/bundles. */
  file: string;
  /** Full reference -> image. */
  images: Record<string, FixtureImage>;
  /** Distinct blobs in the bundle (not counting index.json and oci-layout). */
  blobCount: number;
}

function describeLayout(file: string, built: BuiltLayout): FixtureDescription {
  const images: Record<string, FixtureImage> = {};
  const blobs = new Set<string>();
  for (const img of built.images) {
    img.blobs.forEach((b) => blobs.add(b));
    if (img.ref === undefined) continue;
    images[img.ref] = {
      digest: img.digest,
      mediaType: img.mediaType,
      platforms: img.manifests.length > 1 ? Object.fromEntries(img.manifests.map((m) => [platformString(m.platform), m.digest])) : {},
      blobs: [...img.blobs].sort(),
    };
  }
  return { file, images, blobCount: blobs.size };
}

/** describeFixture tells what a canonical OCI fixture holds (default: `demo`, i.e. testdata/bundles/demo.tar.xz). */
export async function describeFixture(name: 'demo' | 'demo-metadata-first' = 'demo'): Promise<FixtureDescription> {
  const file = name === 'demo' ? 'demo.tar.xz' : 'demo-metadata-first.tar.zst';
  return describeLayout(file, await buildOciLayout(DEMO_SPEC));
}

/** describeDockerSaveFixture tells what testdata/bundles/docker-save.tar holds: per image its tags, config and layers. */
export async function describeDockerSaveFixture(): Promise<BuiltDockerImage[]> {
  return (await buildDockerSave(DOCKER_SAVE_SPEC)).images;
}

/** BadFixtures are the paths (and facts) of the bad inputs {@link writeBadFixtures} writes. */
export interface BadFixtures {
  /** A bundle (tar.gz, metadata-first) where one layer blob's bytes do not match its digest. */
  badDigest: { path: string; brokenRef: string; brokenDigest: string; goodRefs: string[] };
  /** A `.tar.xz` cut in the middle. */
  truncated: string;
  /** A tar with an entry named `../evil`. */
  dotDot: string;
  /** A tar with an entry named `/abs/path`. */
  absolute: string;
  /** A tar with a symlink entry `latest` -> `blobs/sha256/<hex>` (inside the archive). */
  symlink: string;
  /** A tar with a symlink entry leading out of the archive (`escape` -> `../../etc/passwd`). */
  symlinkEscape: string;
  /** A tar with a character device entry. */
  device: string;
  /** Random bytes: not a bundle. */
  notABundle: string;
  /** A valid first tar header followed by garbage. */
  garbageTar: string;
  /** An OCI bundle (tar.xz) whose index.json names a manifest missing from the archive. */
  missingManifest: { path: string; missingRef: string; missingDigest: string; goodRefs: string[] };
}

/** writeBadFixtures writes every bad input into `dir` and tells where. */
export async function writeBadFixtures(dir: string): Promise<BadFixtures> {
  await mkdir(dir, { recursive: true });
  const p = (n: string): string => join(dir, n);

  const goodRef = 'gcr.io/mirror-fixtures/good:1.0';
  const brokenRef = 'gcr.io/mirror-fixtures/broken:1.0';
  const bd = await buildOciLayout({
    seed: 'mirror-bad-digest',
    images: [
      { ref: goodRef, layers: [{ files: 2, sizeBytes: 1500 }] },
      { ref: brokenRef, sharedBaseWith: goodRef, layers: [{ files: 2, sizeBytes: 1500 }] },
    ],
  });
  const brokenImage = bd.images[1];
  const brokenLayer = brokenImage?.manifests[0]?.layers[1];
  if (!brokenLayer) throw new Error('bad-digest fixture: no layer to break');
  const brokenPath = `blobs/sha256/${hex(brokenLayer.digest)}`;
  const original = bd.files.get(brokenPath);
  if (!original) throw new Error('bad-digest fixture: blob missing');
  const broken = Buffer.from(original);
  const at = Math.floor(broken.byteLength / 2);
  broken[at] = (broken[at] ?? 0) ^ 0xff; // same size, different bytes
  bd.files.set(brokenPath, broken);
  await writeTarBundle(bd.files, p('bad-digest.tar.gz'), { order: 'metadata-first', compression: 'gzip' });

  const demo = await buildOciLayout(DEMO_SPEC);
  const demoTar = await compress(await bundleTar(demo.files, { order: 'metadata-last' }), 'xz');
  await writeFile(p('truncated.tar.xz'), demoTar.subarray(0, Math.floor(demoTar.byteLength / 2)));

  const file = { name: 'oci-layout', data: '{"imageLayoutVersion":"1.0.0"}' };
  await writeRawTar([file, { name: '../evil', data: 'evil' }], p('unsafe-dotdot.tar'));
  await writeRawTar([file, { name: '/abs/path', data: 'abs' }], p('unsafe-absolute.tar'));
  const blobHex = hex(sha256('hello'));
  await writeRawTar(
    [file, { name: `blobs/sha256/${blobHex}`, data: 'hello' }, { name: 'latest', type: 'symlink', linkname: `blobs/sha256/${blobHex}` }],
    p('symlink.tar'),
  );
  await writeRawTar([file, { name: 'escape', type: 'symlink', linkname: '../../etc/passwd' }], p('symlink-escape.tar'));
  await writeRawTar([file, { name: 'dev/null', type: 'character-device' }], p('device.tar'));
  await writeFile(p('not-a-bundle.bin'), new Prng('mirror-not-a-bundle').bytes(4096));
  const garbage = Buffer.concat([await packTar([{ name: 'oci-layout', data: 'x'.repeat(600) }])]).subarray(0, 1536);
  const noise = new Prng('mirror-garbage').bytes(2048);
  await writeFile(p('garbage.tar'), Buffer.concat([garbage, noise]));

  const missingRef = 'gcr.io/mirror-fixtures/missing:1.0';
  const mm = await buildOciLayout({
    seed: 'mirror-missing',
    images: [
      { ref: goodRef, layers: [{ files: 1, sizeBytes: 1000 }] },
      { ref: missingRef, layers: [{ files: 1, sizeBytes: 1000 }] },
    ],
  });
  const missing = mm.images[1];
  if (!missing) throw new Error('missing-manifest fixture: no image');
  mm.files.delete(`blobs/sha256/${hex(missing.digest)}`);
  await writeTarBundle(mm.files, p('missing-manifest.tar.xz'), { order: 'metadata-last', compression: 'xz' });

  return {
    badDigest: { path: p('bad-digest.tar.gz'), brokenRef, brokenDigest: brokenLayer.digest, goodRefs: [goodRef] },
    truncated: p('truncated.tar.xz'),
    dotDot: p('unsafe-dotdot.tar'),
    absolute: p('unsafe-absolute.tar'),
    symlink: p('symlink.tar'),
    symlinkEscape: p('symlink-escape.tar'),
    device: p('device.tar'),
    notABundle: p('not-a-bundle.bin'),
    garbageTar: p('garbage.tar'),
    missingManifest: { path: p('missing-manifest.tar.xz'), missingRef, missingDigest: missing.digest, goodRefs: [goodRef] },
  };
}

/** writeCanonicalFixtures writes the committed set into `dir` and gives a summary (file -> bytes). */
export async function writeCanonicalFixtures(dir: string): Promise<Record<string, number>> {
  await mkdir(dir, { recursive: true });
  const demo = await buildOciLayout(DEMO_SPEC);
  await writeTarBundle(demo.files, join(dir, 'demo.tar.xz'), { order: 'metadata-last', compression: 'xz' });
  await writeTarBundle(demo.files, join(dir, 'demo-metadata-first.tar.zst'), { order: 'metadata-first', compression: 'zstd' });
  const save = await buildDockerSave(DOCKER_SAVE_SPEC);
  await writeTarBundle(save.files, join(dir, 'docker-save.tar'), { order: 'metadata-last', compression: 'none' });
  const bad = await writeBadFixtures(join(dir, 'bad'));
  const description = {
    demo: describeLayout('demo.tar.xz', demo),
    'demo-metadata-first': describeLayout('demo-metadata-first.tar.zst', demo),
    'docker-save': { file: 'docker-save.tar', images: save.images },
    bad: Object.fromEntries(
      Object.entries(bad).map(([k, v]) => [
        k,
        typeof v === 'string' ? v.slice(dir.length + 1) : { ...v, path: (v as { path: string }).path.slice(dir.length + 1) },
      ]),
    ),
  };
  await writeFile(join(dir, 'fixtures.json'), `${JSON.stringify(description, null, 2)}\n`);
  const sizes: Record<string, number> = {};
  const walk = async (d: string, prefix: string): Promise<void> => {
    for (const n of (await readdir(d)).sort()) {
      const full = join(d, n);
      const st = await stat(full);
      if (st.isDirectory()) await walk(full, `${prefix}${n}/`);
      else sizes[`${prefix}${n}`] = st.size;
    }
  };
  await walk(dir, '');
  return sizes;
}

async function main(): Promise<void> {
  const dir = resolve(process.argv[2] ?? 'testdata/bundles');
  const sizes = await writeCanonicalFixtures(dir);
  let total = 0;
  for (const [name, size] of Object.entries(sizes)) {
    total += size;
    process.stdout.write(`${String(size).padStart(8)}  ${name}\n`);
  }
  process.stdout.write(`${String(total).padStart(8)}  total in ${dir}\n`);
}

if (process.argv[1] !== undefined && import.meta.url === pathToFileURL(resolve(process.argv[1])).href) {
  main().catch((e: unknown) => {
    process.stderr.write(`${e instanceof Error ? e.message : String(e)}\n`);
    process.exitCode = 1;
  });
}
