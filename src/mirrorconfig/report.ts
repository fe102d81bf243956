/**
 * Reading `--report` files for `mirror config`: what `mirror push` writes (version 2 with the mapping as data, and
 * version 1 with display strings only), what `mirror copy` writes (one image; `endpoint` and `mapping` when it
 * has them, else its `docker://` locations) and what `mirror sync` writes (display strings, no scheme). Everything taken from a report is checked before it can reach a
 * generated file: hosts, repositories, schemes; a report is input like a bundle, and a hostile one must not be able
 * to write arbitrary text into a node's configuration.
 */
import { readFile, stat } from 'node:fs/promises';
import { MirrorError } from '../errors/index.js';
import { parseTarget } from '../reference/destination.js';
import { isValidDigest, isValidHost, isValidRepository, isValidTag, tryParseReference } from '../reference/reference.js';
import { parseTransportRef } from '../transport/refs.js';
import type { MirrorEndpoint } from './model.js';

/** MAX_REPORT_BYTES bounds the size of a report read (a push of 10,000 images writes a few MiB). */
export const MAX_REPORT_BYTES = 64 * 1024 * 1024;

/** ReportImage is one image a report says is at the mirror (or would be, in a dry run). */
export interface ReportImage {
  /** The source name, for messages. */
  readonly name: string;
  readonly source: { readonly registry: string; readonly repository: string; readonly tag?: string | undefined; readonly digest?: string | undefined };
  readonly destination: { readonly registry: string; readonly repository: string; readonly tag?: string | undefined };
  /** `present` (pushed, copied or already there) or `planned` (a dry run). */
  readonly status: 'present' | 'planned';
}

/** LeftOutImage is an image of a report that is not at the mirror (failed, lost a conflict, or has no name). */
export interface LeftOutImage {
  readonly name: string;
  readonly status: string;
  /** For an image that lost a conflict: the image that got its destination reference. */
  readonly winner?: string | undefined;
}

/** MirrorReport is what `mirror config` takes from one report. */
export interface MirrorReport {
  readonly file: string;
  /** `push` (a bundle, many images), `copy` (one image) or `sync` (many images, by tag). */
  readonly kind: 'push' | 'copy' | 'sync';
  readonly endpoint: MirrorEndpoint;
  /** False when the report does not say whether the registry speaks https or http (a copy report of version 1, a sync report). */
  readonly schemeKnown: boolean;
  readonly dryRun: boolean;
  readonly images: readonly ReportImage[];
  readonly leftOut: readonly LeftOutImage[];
}

type Json = Record<string, unknown>;

/** isObject tells a JSON object from the other values. */
function isObject(v: unknown): v is Json {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/** str gives a string field, or undefined. */
function str(o: Json, key: string): string | undefined {
  const v = o[key];
  return typeof v === 'string' ? v : undefined;
}

/** quote shows an input string in a message: a short prefix, control characters escaped. */
export function quote(s: string, max = 80): string {
  const cut = s.length > max ? `${s.slice(0, max)}...` : s;
  return JSON.stringify(cut);
}

/** bad builds the BAD_INPUT error for a report. */
function bad(file: string, why: string, image?: string): MirrorError {
  return new MirrorError('BAD_INPUT', `report ${file}: ${why}`, { file, image, hint: 'give a report written by mirror push, copy or sync --report' });
}

/** checkHost validates and lower-cases a registry host from a report. */
function checkHost(file: string, host: unknown, what: string): string {
  if (typeof host !== 'string' || !isValidHost(host)) throw bad(file, `${what} is not a registry host: ${quote(String(host))}`);
  const h = host.toLowerCase();
  return h === 'index.docker.io' || h === 'registry-1.docker.io' ? 'docker.io' : h;
}

/** checkRepository validates a repository path from a report. */
function checkRepository(file: string, repo: unknown, what: string): string {
  if (typeof repo !== 'string' || !isValidRepository(repo)) throw bad(file, `${what} is not a repository name: ${quote(String(repo))}`);
  return repo;
}

/** optionalTag keeps a tag or digest only when well-formed (they only name images in messages). */
function optionalTag(v: unknown): string | undefined {
  return typeof v === 'string' && isValidTag(v) ? v : undefined;
}

/** optionalDigest keeps a digest only when well-formed. */
function optionalDigest(v: unknown): string | undefined {
  return typeof v === 'string' && isValidDigest(v) ? v : undefined;
}

/** statusOf sorts a report's image status into present, planned or left out. */
function statusOf(status: string | undefined): 'present' | 'planned' | undefined {
  if (status === 'pushed' || status === 'skipped' || status === 'copied' || status === 'already present') return 'present';
  if (status === 'planned') return 'planned';
  return undefined;
}

/** endpointOf reads a report's `endpoint` object (version 2). */
function endpointOf(file: string, e: Json): MirrorEndpoint {
  if (e.kind === 'oci-layout') {
    throw new MirrorError('BAD_INPUT', `report ${file} is of a push into an OCI layout (${quote(String(e.path ?? ''))}), not into a registry`, {
      file,
      hint: 'push the layout into the registry the nodes pull from and use that report, or give --mirror and --source-registry',
    });
  }
  if (e.kind !== 'registry') throw bad(file, `endpoint.kind is ${quote(String(e.kind))}, expected "registry"`);
  if (e.scheme !== 'http' && e.scheme !== 'https') throw bad(file, `endpoint.scheme is ${quote(String(e.scheme))}, expected "https" or "http"`);
  return { scheme: e.scheme, host: checkHost(file, e.host, 'endpoint.host') };
}

/** destinationOf reads a version-1 destination display string (`HOST/REPO[:TAG][@DIGEST]`) under `host`. */
function destinationOf(file: string, destination: string, host: string, image: string): { repository: string; tag: string | undefined } {
  if (!destination.toLowerCase().startsWith(`${host}/`)) throw bad(file, `destination ${quote(destination)} is not on ${host}`, image);
  let rest = destination.slice(host.length + 1);
  const at = rest.indexOf('@');
  if (at >= 0) rest = rest.slice(0, at);
  let tag: string | undefined;
  const colon = rest.lastIndexOf(':');
  if (colon > rest.lastIndexOf('/')) {
    tag = optionalTag(rest.slice(colon + 1));
    rest = rest.slice(0, colon);
  }
  return { repository: checkRepository(file, rest, 'destination repository'), tag };
}

/** readPushReport reads the report of `mirror push` (version 1 or 2). */
function readPushReport(file: string, doc: Json, images: unknown[]): MirrorReport {
  let endpoint: MirrorEndpoint;
  if (isObject(doc.endpoint)) endpoint = endpointOf(file, doc.endpoint);
  else {
    const target = str(doc, 'target');
    if (target === undefined) throw bad(file, 'no endpoint and no target');
    if (target.startsWith('oci:')) endpointOf(file, { kind: 'oci-layout', path: target.slice(4) });
    try {
      const t = parseTarget(target);
      if (t.kind !== 'registry') throw bad(file, `target ${quote(target)} is not a registry`);
      endpoint = { scheme: t.scheme, host: t.host === 'index.docker.io' ? 'docker.io' : t.host };
    } catch (e) {
      if (e instanceof MirrorError && e.code === 'BAD_INPUT') throw e;
      throw bad(file, `target ${quote(target)} is not a registry address`);
    }
  }
  const out: ReportImage[] = [];
  const leftOut: LeftOutImage[] = [];
  for (const [n, raw] of images.entries()) {
    if (!isObject(raw)) throw bad(file, `images[${n}] is not an object`);
    const name = str(raw, 'source') ?? `images[${n}]`;
    const status = str(raw, 'status');
    const kind = statusOf(status);
    if (kind === undefined) {
      const conflict = isObject(raw.conflict) ? raw.conflict : undefined;
      leftOut.push({ name, status: status ?? 'unknown', winner: conflict ? str(conflict, 'winner') : undefined });
      continue;
    }
    const mapping = isObject(raw.mapping) ? raw.mapping : undefined;
    if (mapping && isObject(mapping.source) && isObject(mapping.destination)) {
      out.push(mappedImage(file, name, kind, mapping.source, mapping.destination, endpoint.host));
      continue;
    }
    // Version 1: the display strings.
    const ref = tryParseReference(name);
    const destination = str(raw, 'destination');
    if (ref === undefined || destination === undefined) {
      leftOut.push({ name, status: 'no image name' });
      continue;
    }
    out.push({
      name,
      status: kind,
      source: { registry: checkHost(file, ref.registry, 'source registry'), repository: ref.repository, tag: ref.tag, digest: ref.digest ?? optionalDigest(raw.digest) },
      destination: { registry: endpoint.host, ...destinationOf(file, destination, endpoint.host, name) },
    });
  }
  return { file, kind: 'push', endpoint, schemeKnown: true, dryRun: doc.dryRun === true, images: out, leftOut };
}

/** readCopyReport reads the report of `mirror copy` (one image; `docker://` locations, plus `mapping` when present). */
function readCopyReport(file: string, doc: Json): MirrorReport {
  const source = str(doc, 'source') ?? '';
  const destination = str(doc, 'destination') ?? '';
  const status = str(doc, 'status');
  const kind = statusOf(status);
  const name = source.replace(/^docker:\/\//, '');
  const mapping = isObject(doc.mapping) ? doc.mapping : undefined;
  let endpoint: MirrorEndpoint;
  let schemeKnown = false;
  if (isObject(doc.endpoint)) {
    endpoint = endpointOf(file, doc.endpoint);
    schemeKnown = true;
  } else {
    let host: string;
    try {
      const d = parseTransportRef(destination);
      if (d.transport !== 'docker') throw new Error('not a registry');
      host = d.reference.registry;
    } catch {
      throw new MirrorError('BAD_INPUT', `report ${file}: the copy went to ${quote(destination)}, not to a registry`, { file });
    }
    endpoint = { scheme: 'https', host: checkHost(file, host, 'destination registry') };
  }
  const base: Omit<MirrorReport, 'images' | 'leftOut'> = { file, kind: 'copy', endpoint, schemeKnown, dryRun: doc.dryRun === true };
  if (kind === undefined) return { ...base, images: [], leftOut: [{ name, status: status ?? 'unknown' }] };
  if (mapping && isObject(mapping.source) && isObject(mapping.destination)) {
    return { ...base, images: [mappedImage(file, name, kind, mapping.source, mapping.destination, endpoint.host)], leftOut: [] };
  }
  let src;
  let dst;
  try {
    src = parseTransportRef(source);
    dst = parseTransportRef(destination);
  } catch {
    throw bad(file, `source ${quote(source)} or destination ${quote(destination)} is not a location`);
  }
  if (src.transport !== 'docker' || dst.transport !== 'docker') {
    return { ...base, images: [], leftOut: [{ name, status: 'not copied from a registry' }] };
  }
  const image: ReportImage = {
    name,
    status: kind,
    source: { registry: checkHost(file, src.reference.registry, 'source registry'), repository: src.reference.repository, tag: src.reference.tag, digest: src.reference.digest },
    destination: { registry: endpoint.host, repository: dst.reference.repository, tag: dst.reference.tag },
  };
  return { ...base, images: [image], leftOut: [] };
}

/** syncStatus maps a sync report's action to a push report's status. */
function syncStatus(action: unknown): string {
  if (action === 'copied') return 'pushed';
  if (action === 'skipped') return 'skipped';
  if (action === 'copy' || action === 'skip') return 'planned';
  return typeof action === 'string' ? action : 'unknown';
}

/**
 * readSyncReport reads the report of `mirror sync` (`kind: mirror-sync-report`): `header.destination` is the
 * registry and namespace without a scheme (https is assumed, with a warning), each image has `action`, `source` and
 * `destination` as display strings.
 */
function readSyncReport(file: string, doc: Json, images: unknown[]): MirrorReport {
  const header = isObject(doc.header) ? doc.header : {};
  const destination = str(header, 'destination');
  if (destination === undefined) throw bad(file, 'a sync report without header.destination');
  const asPush: Json = {
    target: destination,
    dryRun: header.dryRun === true,
    images: images.map((i) => (isObject(i) ? { source: i.source, destination: i.destination, digest: i.digest, status: syncStatus(i.action) } : i)),
  };
  const report = readPushReport(file, asPush, asPush.images as unknown[]);
  return { ...report, kind: 'sync', schemeKnown: /^https?:\/\//.test(destination) };
}

/** parseReport reads a report's JSON text. */
export function parseReport(file: string, text: string): MirrorReport {
  let doc: unknown;
  try {
    doc = JSON.parse(text);
  } catch (e) {
    throw bad(file, `not JSON (${quote((e as Error).message, 60)})`);
  }
  if (!isObject(doc)) throw bad(file, 'not a JSON object');
  if (typeof doc.version !== 'number' || !Number.isInteger(doc.version) || doc.version < 1) throw bad(file, 'no report version');
  if (doc.kind === 'mirror-sync-report' && Array.isArray(doc.images)) return readSyncReport(file, doc, doc.images);
  if (Array.isArray(doc.images)) return readPushReport(file, doc, doc.images);
  if (typeof doc.destination === 'string' && typeof doc.source === 'string') return readCopyReport(file, doc);
  throw bad(file, 'neither a push report (images) nor a copy report (source, destination)');
}

/** readReport reads and checks one report file (at most {@link MAX_REPORT_BYTES}). */
export async function readReport(file: string): Promise<MirrorReport> {
  let text: string;
  try {
    const s = await stat(file);
    if (!s.isFile()) throw new MirrorError('BAD_INPUT', `report ${file} is not a file`, { file });
    if (s.size > MAX_REPORT_BYTES) throw new MirrorError('BAD_INPUT', `report ${file} is larger than ${MAX_REPORT_BYTES} bytes`, { file });
    text = await readFile(file, 'utf8');
  } catch (e) {
    if (e instanceof MirrorError) throw e;
    const code = (e as NodeJS.ErrnoException).code;
    throw new MirrorError('BAD_INPUT', `cannot read the report ${file}: ${code === 'ENOENT' ? 'no such file' : (code ?? (e as Error).message)}`, { file, cause: e });
  }
  return parseReport(file, text);
}

/**
 * mappedImage reads one image's `mapping` (report version 2: source and destination as data), checked field by field;
 * a destination on another registry than the report's endpoint is refused.
 */
function mappedImage(
  file: string,
  name: string,
  status: ReportImage['status'],
  s: Record<string, unknown>,
  d: Record<string, unknown>,
  endpointHost: string,
): ReportImage {
  const registry = checkHost(file, d.registry, 'mapping.destination.registry');
  if (registry !== endpointHost) throw bad(file, `${quote(name)} went to ${registry}, not to the endpoint ${endpointHost}`, name);
  return {
    name,
    status,
    source: {
      registry: checkHost(file, s.registry, 'mapping.source.registry'),
      repository: checkRepository(file, s.repository, 'mapping.source.repository'),
      tag: optionalTag(s.tag),
      digest: optionalDigest(s.digest),
    },
    destination: { registry, repository: checkRepository(file, d.repository, 'mapping.destination.repository'), tag: optionalTag(d.tag) },
  };
}
