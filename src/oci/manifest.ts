import { MirrorError, type MirrorErrorOptions } from '../errors/index.js';
import { clipInput } from '../errors/quote.js';
import { isValidDigest } from '../reference/reference.js';
import { JsonTooDeepError, MAX_JSON_DEPTH, parseJson } from './json.js';
import { FOREIGN_LAYER_MEDIA_TYPES, isIndexMediaType, MANIFEST_MEDIA_TYPES, MediaType } from './media-types.js';

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

/** MAX_MEDIA_TYPE_LENGTH bounds a descriptor's media type (RFC 6838 allows 127 characters on each side of the `/`). */
export const MAX_MEDIA_TYPE_LENGTH = 255;

function isStringMap(v: unknown): boolean {
  return isObject(v) && Object.values(v).every((x) => typeof x === 'string');
}

function isStringList(v: unknown): boolean {
  return Array.isArray(v) && v.every((x) => typeof x === 'string');
}

/** isPlatformObject tells whether a value is an OCI platform: strings, and lists of strings for the features. */
function isPlatformObject(v: unknown): boolean {
  if (!isObject(v) || typeof v.os !== 'string' || typeof v.architecture !== 'string') return false;
  return Object.entries(v).every(([k, x]) => typeof x === 'string' || ((k === 'os.features' || k === 'features') && isStringList(x)));
}

/**
 * parseDescriptor validates one descriptor object: a media type, a valid digest, a size, and, when present, string
 * annotations, an OCI platform (strings), string urls and a string artifactType. Errors quote at most a short prefix
 * of what they found.
 */
export function parseDescriptor(v: unknown, where: string, ctx: MirrorErrorOptions = {}): Descriptor {
  const bad = (why: string): MirrorError => new MirrorError('BAD_INPUT', `invalid descriptor in ${where}: ${why}`, ctx);
  if (!isObject(v)) throw bad('not an object');
  const { mediaType, digest, size } = v;
  if (typeof mediaType !== 'string' || mediaType === '') throw bad('no mediaType');
  if (mediaType.length > MAX_MEDIA_TYPE_LENGTH) throw bad(`a mediaType of ${mediaType.length} characters ("${clipInput(mediaType, 40)}")`);
  if (typeof digest !== 'string' || !isValidDigest(digest)) throw bad(`bad digest ${typeof digest === 'string' ? `"${clipInput(digest)}"` : clipInput(digest)}`);
  if (typeof size !== 'number' || !Number.isSafeInteger(size) || size < 0) throw bad(`bad size for ${digest}`);
  if (v.annotations !== undefined && !isStringMap(v.annotations)) throw bad(`the annotations of ${digest} are not all strings`);
  if (v.platform !== undefined && !isPlatformObject(v.platform)) throw bad(`the platform of ${digest} is not an OCI platform (os, architecture and variant as strings)`);
  if (v.urls !== undefined && !isStringList(v.urls)) throw bad(`the urls of ${digest} are not a list of strings`);
  if (v.artifactType !== undefined && typeof v.artifactType !== 'string') throw bad(`the artifactType of ${digest} is not a string`);
  return v as unknown as Descriptor;
}

/**
 * decodeJson parses JSON bytes, throwing a BAD_INPUT error that names `where` when they are not JSON, or nest deeper
 * than {@link MAX_JSON_DEPTH}.
 */
export function decodeJson(bytes: Uint8Array, where: string, ctx: MirrorErrorOptions = {}): unknown {
  try {
    // The nesting is checked on the text, before JSON.parse builds anything (see src/oci/json.ts).
    return parseJson(bytes);
  } catch (e) {
    if (e instanceof JsonTooDeepError) {
      throw new MirrorError('BAD_INPUT', `${where} nests JSON deeper than ${MAX_JSON_DEPTH} levels, which no image format does; refused`, ctx);
    }
    throw new MirrorError('BAD_INPUT', `${where} is not valid JSON`, { ...ctx, cause: e });
  }
}

/**
 * parseManifest parses manifest bytes. `declaredType` (from a descriptor or Content-Type) wins over the
 * `mediaType` field; without either, an object with `manifests` is an index and one with `config` an image.
 * Schema 1 manifests are refused: their digest cannot be kept.
 */
export function parseManifest(bytes: Uint8Array, declaredType: string | undefined, ctx: MirrorErrorOptions = {}): ParsedManifest {
  return parseManifestValue(decodeJson(bytes, `manifest ${ctx.digest ?? ''}`.trim(), ctx), declaredType, ctx);
}

/** parseManifestValue is {@link parseManifest} of a value already decoded with {@link decodeJson}. */
export function parseManifestValue(v: unknown, declaredType: string | undefined, ctx: MirrorErrorOptions = {}): ParsedManifest {
  const where = `manifest ${ctx.digest ?? ''}`.trim();
  if (!isObject(v)) throw new MirrorError('BAD_INPUT', `${where} is not a JSON object`, ctx);
  const fieldType = typeof v.mediaType === 'string' ? v.mediaType : undefined;
  if (v.schemaVersion === 1 || declaredType === MediaType.DOCKER_MANIFEST_V1 || declaredType === MediaType.DOCKER_MANIFEST_V1_SIGNED) {
    throw new MirrorError('UNSUPPORTED', `${where} is a Docker schema 1 manifest, which cannot be pushed with its digest kept`, ctx);
  }
  // The manifest's own mediaType field, covered by its digest, says what it is; a declared type (a registry's
  // Content-Type, a descriptor) only where the field is absent: a registry that labels an OCI manifest as Docker's
  // would otherwise have it PUT under a type the destination refuses as not matching the body. A type that is not a
  // manifest's (`text/plain`, a field left out) is not kept either: it would be written into index.json or sent as
  // the Content-Type of the PUT, and no reader would take it. The structure says what the manifest is then, as
  // containers/image guesses it.
  let mediaType = [fieldType, declaredType].find((t) => t !== undefined && MANIFEST_MEDIA_TYPES.has(t));
  if (mediaType === undefined) {
    if (Array.isArray(v.manifests)) mediaType = MediaType.OCI_INDEX;
    else if (isObject(v.config)) mediaType = v.config.mediaType === MediaType.DOCKER_CONFIG ? MediaType.DOCKER_MANIFEST : MediaType.OCI_MANIFEST;
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

/**
 * layersAgainstConfig compares an image manifest's layers with its image config's `rootfs.diff_ids` (one per layer,
 * in order). It gives both counts when the manifest lists fewer layers than the config has diff_ids: the image would
 * lack files (Docker 25.0.0's docker save writes manifests with no layers). It gives undefined when the manifest
 * lists as many or more (a JSON layer beside the filesystem ones is copied as it is, as other tools copy it), when the
 * config is not an image config (an artifact's), or when its bytes are not at hand or name no diff_ids.
 */
export function layersAgainstConfig(m: ImageManifest, configBytes: Uint8Array | undefined): { layers: number; diffIds: number } | undefined {
  if (configBytes === undefined || (m.config.mediaType !== MediaType.OCI_CONFIG && m.config.mediaType !== MediaType.DOCKER_CONFIG)) return undefined;
  let ids: unknown;
  try {
    const v = parseJson(configBytes);
    ids = isObject(v) && isObject(v.rootfs) ? v.rootfs.diff_ids : undefined;
  } catch {
    return undefined;
  }
  if (!Array.isArray(ids) || m.layers.length >= ids.length) return undefined;
  return { layers: m.layers.length, diffIds: ids.length };
}

/**
 * layersMismatchError is the error of an image manifest that lists fewer layers than its config's diff_ids (see
 * {@link layersAgainstConfig}): copied, the image would lack files. `fix` says what to do.
 */
export function layersMismatchError(image: string, manifest: string, config: string, counts: { layers: number; diffIds: number }, fix: string): MirrorError {
  return new MirrorError(
    'BAD_INPUT',
    `manifest ${manifest} of ${image} lists ${counts.layers} layer(s) where its config ${config} lists ${counts.diffIds} (rootfs.diff_ids), so the image would lack its files; ${fix}`,
    { image, digest: manifest },
  );
}
