import { MirrorError, type MirrorErrorOptions } from '../errors/index.js';
import { isValidDigest } from '../reference/reference.js';
import { FOREIGN_LAYER_MEDIA_TYPES, isIndexMediaType, MediaType } from './media-types.js';

/** Platform is an OCI platform object. */
export interface Platform {
  architecture: string;
  os: string;
  variant?: string;
  'os.version'?: string;
  'os.features'?: string[];
}

/** Descriptor is an OCI content descriptor. */
export interface Descriptor {
  mediaType: string;
  digest: string;
  size: number;
  urls?: string[];
  annotations?: Record<string, string>;
  platform?: Platform;
  artifactType?: string;
}

/** ImageManifest is an OCI image manifest or Docker v2 schema 2 manifest. */
export interface ImageManifest {
  schemaVersion: number;
  mediaType?: string;
  artifactType?: string;
  config: Descriptor;
  layers: Descriptor[];
  subject?: Descriptor;
  annotations?: Record<string, string>;
}

/** ImageIndex is an OCI image index or Docker manifest list. */
export interface ImageIndex {
  schemaVersion: number;
  mediaType?: string;
  artifactType?: string;
  manifests: Descriptor[];
  subject?: Descriptor;
  annotations?: Record<string, string>;
}

/** ParsedManifest is a manifest with its kind resolved. */
export type ParsedManifest =
  | { kind: 'index'; mediaType: string; index: ImageIndex }
  | { kind: 'image'; mediaType: string; manifest: ImageManifest };

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/** parseDescriptor validates one descriptor object. */
export function parseDescriptor(v: unknown, where: string, ctx: MirrorErrorOptions = {}): Descriptor {
  const bad = (why: string): MirrorError => new MirrorError('BAD_INPUT', `invalid descriptor in ${where}: ${why}`, ctx);
  if (!isObject(v)) throw bad('not an object');
  const { mediaType, digest, size } = v;
  if (typeof mediaType !== 'string' || mediaType === '') throw bad('no mediaType');
  if (typeof digest !== 'string' || !isValidDigest(digest)) throw bad(`bad digest ${JSON.stringify(digest)}`);
  if (typeof size !== 'number' || !Number.isSafeInteger(size) || size < 0) throw bad(`bad size for ${digest}`);
  return v as unknown as Descriptor;
}

/** decodeJson parses JSON bytes, throwing a BAD_INPUT error that names `where`. */
export function decodeJson(bytes: Uint8Array, where: string, ctx: MirrorErrorOptions = {}): unknown {
  try {
    return JSON.parse(Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString('utf8')) as unknown;
  } catch (e) {
    throw new MirrorError('BAD_INPUT', `${where} is not valid JSON`, { ...ctx, cause: e });
  }
}

/**
 * parseManifest parses manifest bytes. `declaredType` (from a descriptor or Content-Type) wins over the
 * `mediaType` field; without either, an object with `manifests` is an index and one with `config` an image.
 * Schema 1 manifests are refused: their digest cannot be kept.
 */
export function parseManifest(bytes: Uint8Array, declaredType: string | undefined, ctx: MirrorErrorOptions = {}): ParsedManifest {
  const where = `manifest ${ctx.digest ?? ''}`.trim();
  const v = decodeJson(bytes, where, ctx);
  if (!isObject(v)) throw new MirrorError('BAD_INPUT', `${where} is not a JSON object`, ctx);
  const fieldType = typeof v.mediaType === 'string' ? v.mediaType : undefined;
  if (v.schemaVersion === 1 || declaredType === MediaType.DOCKER_MANIFEST_V1 || declaredType === MediaType.DOCKER_MANIFEST_V1_SIGNED) {
    throw new MirrorError('UNSUPPORTED', `${where} is a Docker schema 1 manifest, which cannot be pushed with its digest kept`, ctx);
  }
  let mediaType = declaredType ?? fieldType;
  if (mediaType === undefined) {
    if (Array.isArray(v.manifests)) mediaType = MediaType.OCI_INDEX;
    else if (isObject(v.config)) mediaType = MediaType.OCI_MANIFEST;
    else throw new MirrorError('BAD_INPUT', `${where} has neither manifests nor config`, ctx);
  }
  if (isIndexMediaType(mediaType) || (Array.isArray(v.manifests) && !isObject(v.config))) {
    if (!Array.isArray(v.manifests)) throw new MirrorError('BAD_INPUT', `${where} is an index without a manifests list`, ctx);
    const manifests = v.manifests.map((d, i) => parseDescriptor(d, `${where} manifests[${i}]`, ctx));
    return { kind: 'index', mediaType, index: { ...(v as unknown as ImageIndex), manifests } };
  }
  if (!isObject(v.config)) throw new MirrorError('BAD_INPUT', `${where} has no config descriptor`, ctx);
  const config = parseDescriptor(v.config, `${where} config`, ctx);
  const layersRaw = v.layers ?? [];
  if (!Array.isArray(layersRaw)) throw new MirrorError('BAD_INPUT', `${where} has a layers field that is not a list`, ctx);
  const layers = layersRaw.map((d, i) => parseDescriptor(d, `${where} layers[${i}]`, ctx));
  return { kind: 'image', mediaType, manifest: { ...(v as unknown as ImageManifest), config, layers } };
}

/** isForeignLayer tells whether a layer may live elsewhere: a foreign or non-distributable layer that has `urls`. */
export function isForeignLayer(d: Descriptor): boolean {
  return FOREIGN_LAYER_MEDIA_TYPES.has(d.mediaType) && Array.isArray(d.urls) && d.urls.length > 0;
}

/**
 * blobDescriptors lists the blobs (config, then layers) of an image manifest. A foreign or non-distributable layer
 * with `urls` is listed only when `present` says the source holds it (it is then pushed like any layer); otherwise it
 * is left where its URLs point, its digest kept in the manifest. Default: no such layer is listed.
 */
export function blobDescriptors(m: ImageManifest, present: (digest: string) => boolean = () => false): Descriptor[] {
  const out: Descriptor[] = [m.config];
  for (const l of m.layers) {
    if (isForeignLayer(l) && !present(l.digest)) continue;
    out.push(l);
  }
  return out;
}
