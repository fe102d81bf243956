/**
 * An in-memory registry that follows the OCI distribution spec 1.1 closely enough for real clients (ours, and skopeo
 * reading manifests back), written for the tests of the referrers API. It stands in only where Debian's
 * `docker-registry` (distribution 2.8) cannot: distribution 2.8 has no referrers API (`GET /v2/<name>/referrers/<digest>`
 * answers `404 page not found`) and never answers `OCI-Subject`. Everything else is tested against the real registry.
 *
 * What it serves, on 127.0.0.1, plain HTTP, no auth:
 * - `GET|HEAD /v2/`;
 * - blobs: `HEAD|GET` (with `Range: bytes=N-`), `DELETE`; uploads: `POST` (a session, a monolithic `POST ?digest=`, or a
 *   cross-repository mount `?mount=&from=`: 201 when the other repository holds the blob, else a session), `PATCH`
 *   (appended, `Content-Range` checked when sent), `PUT ?digest=` (the last bytes, digest verified), `GET` (status,
 *   `Range`), `DELETE`;
 * - manifests by tag and digest: `HEAD|GET` with `Docker-Content-Digest`, `PUT` (referenced blobs and child manifests
 *   must be in the repository; a manifest with `subject` is indexed and answered with `OCI-Subject`), `DELETE`;
 * - `GET /v2/<name>/referrers/<digest>`: an OCI index of the manifests whose subject is that digest (`artifactType` from
 *   the manifest, else its config's media type; its annotations), the `artifactType` filter (`OCI-Filters-Applied`), and
 *   `Link` pagination when `referrersPageSize` asks for small pages;
 * - `GET /v2/<name>/tags/list` with `n` and `last`, and a `Link` to the next page.
 * Errors are the spec's JSON (`{"errors":[{"code","message"}]}`). Every request is recorded for the tests to count.
 */
import { createHash, randomUUID } from 'node:crypto';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import { listenLocal, trackSockets } from './proc.js';

/** MAX_MANIFEST_BYTES is the largest manifest accepted (as distribution: 4 MiB). */
export const MAX_MANIFEST_BYTES = 4 * 1024 * 1024;
/** MAX_BODY_BYTES bounds any request body held in memory (a test server: 256 MiB). */
export const MAX_BODY_BYTES = 256 * 1024 * 1024;

const INDEX_TYPE = 'application/vnd.oci.image.index.v1+json';
const INDEX_TYPES = new Set([INDEX_TYPE, 'application/vnd.docker.distribution.manifest.list.v2+json']);
const NAME = '[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*(?:/[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*)*';
const DIGEST = '[a-z0-9]+(?:[+._-][a-z0-9]+)*:[a-zA-Z0-9=_-]+';
const TAG = '[a-zA-Z0-9_][a-zA-Z0-9._-]{0,127}';

/** ReferrersRegistryOptions configure {@link startReferrersRegistry}. */
export interface ReferrersRegistryOptions {
  /** Serve the referrers API. Default: true (false answers it `404 page not found`, as distribution 2.8). */
  referrersApi?: boolean | undefined;
  /** Answer `OCI-Subject` on a PUT of a manifest with a subject. Default: true. */
  subjectHeader?: boolean | undefined;
  /** Referrers per page; more are reached through `Link: <...>; rel="next"`. Default: all on one page. */
  referrersPageSize?: number | undefined;
  /** Apply the referrers `artifactType` filter (and say so in `OCI-Filters-Applied`). Default: true; false ignores it, as the spec allows. */
  applyFilters?: boolean | undefined;
  /** Tags per page when the client does not ask (`n`). Default: all on one page. */
  tagsPageSize?: number | undefined;
}

/** ServedRequest is one request the server answered. */
export interface ServedRequest {
  method: string;
  /** Path without the query. */
  path: string;
  /** The query string without `?`. */
  query: string;
  status: number;
}

/** StoredManifest is a manifest as stored. */
export interface StoredManifest {
  bytes: Buffer;
  mediaType: string;
  /** Its subject's digest, when it has one. */
  subject?: string | undefined;
}

/** ReferrersRegistry is a running server and what it holds. */
export interface ReferrersRegistry {
  /** `127.0.0.1:PORT` */
  host: string;
  url: string;
  /** Every request answered, in order. */
  requests: ServedRequest[];
  /** Tags of a repository, sorted. */
  tags(repo: string): string[];
  /** A manifest of a repository by digest, if held. */
  manifest(repo: string, digest: string): StoredManifest | undefined;
  /** Changes options while running. */
  configure(options: ReferrersRegistryOptions): void;
  /** Clears the request log. */
  reset(): void;
  stop(): Promise<void>;
}

interface Repo {
  blobs: Set<string>;
  manifests: Map<string, StoredManifest>;
  tags: Map<string, string>;
}

interface Upload {
  repo: string;
  parts: Buffer[];
  size: number;
}

/** digestOf hashes bytes with the algorithm `like` names (sha256 or sha512). */
function digestOf(bytes: Uint8Array, like = 'sha256:'): string {
  const alg = like.startsWith('sha512:') ? 'sha512' : 'sha256';
  return `${alg}:${createHash(alg).update(bytes).digest('hex')}`;
}

function isDigest(s: string): boolean {
  return /^sha256:[a-f0-9]{64}$/.test(s) || /^sha512:[a-f0-9]{128}$/.test(s);
}

class HttpError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
  ) {
    super(message);
  }
}

/** readBody reads a request body up to `limit` bytes (413 beyond). */
async function readBody(req: IncomingMessage, limit: number): Promise<Buffer> {
  const parts: Buffer[] = [];
  let n = 0;
  for await (const chunk of req as AsyncIterable<Buffer>) {
    n += chunk.byteLength;
    if (n > limit) throw new HttpError(413, 'SIZE_INVALID', `body larger than ${limit} bytes`);
    parts.push(chunk);
  }
  return Buffer.concat(parts);
}

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/** descriptorsOf gives the `{digest}` of a JSON list of descriptors, refusing malformed ones. */
function descriptorsOf(v: unknown, where: string): Array<{ digest: string; urls?: unknown }> {
  if (v === undefined) return [];
  if (!Array.isArray(v)) throw new HttpError(400, 'MANIFEST_INVALID', `${where} is not a list`);
  return v.map((d, i) => {
    if (!isObject(d) || typeof d.digest !== 'string' || !isDigest(d.digest) || typeof d.size !== 'number' || typeof d.mediaType !== 'string') {
      throw new HttpError(400, 'MANIFEST_INVALID', `${where}[${i}] is not a descriptor`);
    }
    return d as { digest: string; urls?: unknown };
  });
}

/** startReferrersRegistry starts the server on 127.0.0.1 with a port the kernel picks. */
export async function startReferrersRegistry(initial: ReferrersRegistryOptions = {}): Promise<ReferrersRegistry> {
  let options: Required<Pick<ReferrersRegistryOptions, 'referrersApi' | 'subjectHeader'>> & ReferrersRegistryOptions = {
    referrersApi: true,
    subjectHeader: true,
    ...initial,
  };
  const blobs = new Map<string, Buffer>();
  const repos = new Map<string, Repo>();
  const uploads = new Map<string, Upload>();
  const requests: ServedRequest[] = [];

  const repoOf = (name: string, create: boolean): Repo => {
    let r = repos.get(name);
    if (r === undefined) {
      if (!create) throw new HttpError(404, 'NAME_UNKNOWN', `repository ${name} is not known`);
      r = { blobs: new Set(), manifests: new Map(), tags: new Map() };
      repos.set(name, r);
    }
    return r;
  };

  const send = (res: ServerResponse, status: number, headers: Record<string, string | number>, body?: Buffer | string): void => {
    res.writeHead(status, { 'docker-distribution-api-version': 'registry/2.0', ...headers });
    res.end(body);
  };
  const sendJson = (res: ServerResponse, status: number, value: unknown, headers: Record<string, string> = {}, contentType = 'application/json'): void => {
    const body = Buffer.from(JSON.stringify(value));
    send(res, status, { 'content-type': contentType, 'content-length': body.byteLength, ...headers }, body);
  };

  // ---------------------------------------------------------------- blobs and uploads

  const storeBlob = (repo: Repo, data: Buffer, expected: string): void => {
    if (!isDigest(expected)) throw new HttpError(400, 'DIGEST_INVALID', `bad digest ${expected}`);
    const actual = digestOf(data, expected);
    if (actual !== expected) throw new HttpError(400, 'DIGEST_INVALID', `content is ${actual}, not ${expected}`);
    blobs.set(expected, data);
    repo.blobs.add(expected);
  };

  const blob = (req: IncomingMessage, res: ServerResponse, name: string, digest: string): void => {
    const repo = repoOf(name, false);
    const data = repo.blobs.has(digest) ? blobs.get(digest) : undefined;
    if (req.method === 'DELETE') {
      if (data === undefined) throw new HttpError(404, 'BLOB_UNKNOWN', `blob ${digest} is not known`);
      repo.blobs.delete(digest);
      send(res, 202, { 'content-length': 0 });
      return;
    }
    if (data === undefined) throw new HttpError(404, 'BLOB_UNKNOWN', `blob ${digest} is not known`);
    const headers = { 'docker-content-digest': digest, 'content-type': 'application/octet-stream', 'accept-ranges': 'bytes' };
    const range = /^bytes=(\d+)-(\d*)$/.exec(req.headers.range ?? '');
    if (range !== null && req.method === 'GET') {
      const from = Number(range[1]);
      const to = range[2] ? Math.min(Number(range[2]), data.byteLength - 1) : data.byteLength - 1;
      if (from >= data.byteLength || to < from) throw new HttpError(416, 'BLOB_UNKNOWN', `range ${req.headers.range} not satisfiable`);
      const part = data.subarray(from, to + 1);
      send(res, 206, { ...headers, 'content-length': part.byteLength, 'content-range': `bytes ${from}-${to}/${data.byteLength}` }, part);
      return;
    }
    send(res, 200, { ...headers, 'content-length': data.byteLength }, req.method === 'HEAD' ? undefined : data);
  };

  const sessionHeaders = (name: string, id: string, size: number): Record<string, string | number> => ({
    location: `/v2/${name}/blobs/uploads/${id}`,
    'docker-upload-uuid': id,
    range: `0-${Math.max(0, size - 1)}`,
    'content-length': 0,
  });

  const startUpload = async (req: IncomingMessage, res: ServerResponse, name: string, query: URLSearchParams): Promise<void> => {
    const repo = repoOf(name, true);
    const mount = query.get('mount');
    const from = query.get('from');
    if (mount !== null && from !== null) {
      await readBody(req, 0);
      if (repos.get(from)?.blobs.has(mount) === true) {
        repo.blobs.add(mount);
        send(res, 201, { location: `/v2/${name}/blobs/${mount}`, 'docker-content-digest': mount, 'content-length': 0 });
        return;
      }
    }
    const digest = query.get('digest');
    if (digest !== null && mount === null) {
      storeBlob(repo, await readBody(req, MAX_BODY_BYTES), digest);
      send(res, 201, { location: `/v2/${name}/blobs/${digest}`, 'docker-content-digest': digest, 'content-length': 0 });
      return;
    }
    await readBody(req, 0);
    const id = randomUUID();
    uploads.set(id, { repo: name, parts: [], size: 0 });
    send(res, 202, sessionHeaders(name, id, 0));
  };

  const upload = async (req: IncomingMessage, res: ServerResponse, name: string, id: string, query: URLSearchParams): Promise<void> => {
    const u = uploads.get(id);
    if (u === undefined || u.repo !== name) throw new HttpError(404, 'BLOB_UPLOAD_UNKNOWN', `upload ${id} is not known`);
    switch (req.method) {
      case 'GET':
        send(res, 204, sessionHeaders(name, id, u.size));
        return;
      case 'DELETE':
        uploads.delete(id);
        send(res, 204, { 'content-length': 0 });
        return;
      case 'PATCH': {
        const range = /^(\d+)-(\d+)$/.exec(req.headers['content-range'] ?? '');
        if (range !== null && Number(range[1]) !== u.size) {
          await readBody(req, MAX_BODY_BYTES);
          throw new HttpError(416, 'BLOB_UPLOAD_INVALID', `chunk starts at ${range[1]}, the upload is at ${u.size}`);
        }
        const data = await readBody(req, MAX_BODY_BYTES - u.size);
        u.parts.push(data);
        u.size += data.byteLength;
        send(res, 202, sessionHeaders(name, id, u.size));
        return;
      }
      case 'PUT': {
        const data = await readBody(req, MAX_BODY_BYTES - u.size);
        const digest = query.get('digest');
        if (digest === null) throw new HttpError(400, 'DIGEST_INVALID', 'PUT without ?digest=');
        storeBlob(repoOf(name, true), Buffer.concat([...u.parts, data]), digest);
        uploads.delete(id);
        send(res, 201, { location: `/v2/${name}/blobs/${digest}`, 'docker-content-digest': digest, 'content-length': 0 });
        return;
      }
      default:
        throw new HttpError(405, 'UNSUPPORTED', `${req.method ?? ''} on an upload`);
    }
  };

  // ---------------------------------------------------------------- manifests and referrers

  const resolve = (repo: Repo, reference: string): string | undefined => (isDigest(reference) ? (repo.manifests.has(reference) ? reference : undefined) : repo.tags.get(reference));

  const manifest = async (req: IncomingMessage, res: ServerResponse, name: string, reference: string): Promise<void> => {
    if (req.method === 'PUT') {
      await putManifest(req, res, name, reference);
      return;
    }
    const repo = repoOf(name, false);
    const digest = resolve(repo, reference);
    const m = digest === undefined ? undefined : repo.manifests.get(digest);
    if (digest === undefined || m === undefined) throw new HttpError(404, 'MANIFEST_UNKNOWN', `manifest ${reference} is not known`);
    if (req.method === 'DELETE') {
      if (!isDigest(reference)) throw new HttpError(400, 'UNSUPPORTED', 'delete by digest');
      repo.manifests.delete(digest);
      for (const [t, d] of repo.tags) if (d === digest) repo.tags.delete(t);
      send(res, 202, { 'content-length': 0 });
      return;
    }
    send(res, 200, { 'content-type': m.mediaType, 'content-length': m.bytes.byteLength, 'docker-content-digest': digest }, req.method === 'HEAD' ? undefined : m.bytes);
  };

  const putManifest = async (req: IncomingMessage, res: ServerResponse, name: string, reference: string): Promise<void> => {
    const bytes = await readBody(req, MAX_MANIFEST_BYTES);
    const mediaType = (req.headers['content-type'] ?? '').split(';')[0]?.trim() ?? '';
    if (mediaType === '') throw new HttpError(400, 'MANIFEST_INVALID', 'no Content-Type');
    let doc: unknown;
    try {
      doc = JSON.parse(bytes.toString('utf8'));
    } catch {
      throw new HttpError(400, 'MANIFEST_INVALID', 'not JSON');
    }
    if (!isObject(doc)) throw new HttpError(400, 'MANIFEST_INVALID', 'not a JSON object');
    if (typeof doc.mediaType === 'string' && doc.mediaType !== mediaType) throw new HttpError(400, 'MANIFEST_INVALID', `mediaType ${doc.mediaType} sent as ${mediaType}`);
    const digest = digestOf(bytes, isDigest(reference) ? reference : 'sha256:');
    if (isDigest(reference) && digest !== reference) throw new HttpError(400, 'DIGEST_INVALID', `manifest is ${digest}, not ${reference}`);
    if (!isDigest(reference) && !new RegExp(`^${TAG}$`).test(reference)) throw new HttpError(400, 'TAG_INVALID', `bad tag ${reference}`);
    const repo = repoOf(name, true);
    // As distribution does: everything a manifest names must already be in the repository.
    if (INDEX_TYPES.has(mediaType)) {
      for (const d of descriptorsOf(doc.manifests, 'manifests')) {
        if (!repo.manifests.has(d.digest)) throw new HttpError(400, 'MANIFEST_UNKNOWN', `child manifest ${d.digest} is not in ${name}`);
      }
    } else {
      const [config] = descriptorsOf(doc.config === undefined ? undefined : [doc.config], 'config');
      if (config === undefined) throw new HttpError(400, 'MANIFEST_INVALID', 'no config');
      for (const d of [config, ...descriptorsOf(doc.layers, 'layers')]) {
        if (Array.isArray(d.urls) && d.urls.length > 0) continue;
        if (!repo.blobs.has(d.digest)) throw new HttpError(400, 'MANIFEST_BLOB_UNKNOWN', `blob ${d.digest} is not in ${name}`);
      }
    }
    let subject: string | undefined;
    if (doc.subject !== undefined) subject = descriptorsOf([doc.subject], 'subject')[0]?.digest;
    repo.manifests.set(digest, { bytes, mediaType, subject });
    if (!isDigest(reference)) repo.tags.set(reference, digest);
    const headers: Record<string, string | number> = { location: `/v2/${name}/manifests/${digest}`, 'docker-content-digest': digest, 'content-length': 0 };
    if (subject !== undefined && options.subjectHeader) headers['oci-subject'] = subject;
    send(res, 201, headers);
  };

  /** referrerDescriptor is how a referrer is listed: artifactType from the manifest (else its config's media type), its annotations. */
  const referrerDescriptor = (digest: string, m: StoredManifest): Record<string, unknown> => {
    const doc = JSON.parse(m.bytes.toString('utf8')) as Record<string, unknown>;
    const out: Record<string, unknown> = { mediaType: m.mediaType, digest, size: m.bytes.byteLength };
    const config = isObject(doc.config) ? doc.config : undefined;
    const artifactType = typeof doc.artifactType === 'string' && doc.artifactType !== '' ? doc.artifactType : typeof config?.mediaType === 'string' ? config.mediaType : undefined;
    if (artifactType !== undefined) out.artifactType = artifactType;
    if (isObject(doc.annotations)) out.annotations = doc.annotations;
    return out;
  };

  const referrers = (res: ServerResponse, name: string, subject: string, query: URLSearchParams): void => {
    if (!isDigest(subject)) throw new HttpError(400, 'DIGEST_INVALID', `bad digest ${subject}`);
    const repo = repoOf(name, false);
    const wanted = query.get('artifactType');
    let list = [...repo.manifests].filter(([, m]) => m.subject === subject).map(([d, m]) => referrerDescriptor(d, m));
    list.sort((a, b) => String(a.digest).localeCompare(String(b.digest)));
    const headers: Record<string, string> = {};
    if (wanted !== null && options.applyFilters !== false) {
      list = list.filter((d) => d.artifactType === wanted);
      headers['oci-filters-applied'] = 'artifactType';
    }
    const size = options.referrersPageSize;
    if (size !== undefined && size > 0) {
      const last = query.get('last');
      const start = last === null ? 0 : list.findIndex((d) => String(d.digest) > last);
      const page = start < 0 ? [] : list.slice(start, start + size);
      if (start >= 0 && start + size < list.length) {
        const next = new URLSearchParams(query);
        next.set('last', String(page[page.length - 1]?.digest));
        headers.link = `</v2/${name}/referrers/${subject}?${next.toString()}>; rel="next"`;
      }
      list = page;
    }
    sendJson(res, 200, { schemaVersion: 2, mediaType: INDEX_TYPE, manifests: list }, headers, INDEX_TYPE);
  };

  const tagsList = (res: ServerResponse, name: string, query: URLSearchParams): void => {
    const repo = repoOf(name, false);
    const all = [...repo.tags.keys()].sort();
    const last = query.get('last');
    const n = query.has('n') ? Number(query.get('n')) : options.tagsPageSize;
    const rest = last === null ? all : all.filter((t) => t > last);
    const page = n !== undefined && Number.isInteger(n) && n >= 0 ? rest.slice(0, n) : rest;
    const headers: Record<string, string> = {};
    if (page.length < rest.length && page.length > 0) {
      headers.link = `</v2/${name}/tags/list?n=${page.length}&last=${encodeURIComponent(page[page.length - 1]!)}>; rel="next"`;
    }
    sendJson(res, 200, { name, tags: page }, headers);
  };

  // ---------------------------------------------------------------- routing

  const routes: Array<{ re: RegExp; methods: string[]; handle: (req: IncomingMessage, res: ServerResponse, m: RegExpExecArray, q: URLSearchParams) => void | Promise<void> }> = [
    { re: /^\/v2\/?$/, methods: ['GET', 'HEAD'], handle: (_req, res) => sendJson(res, 200, {}) },
    { re: new RegExp(`^/v2/(${NAME})/blobs/uploads/?$`), methods: ['POST'], handle: (req, res, m, q) => startUpload(req, res, m[1]!, q) },
    { re: new RegExp(`^/v2/(${NAME})/blobs/uploads/([A-Za-z0-9-]+)$`), methods: ['GET', 'PATCH', 'PUT', 'DELETE'], handle: (req, res, m, q) => upload(req, res, m[1]!, m[2]!, q) },
    { re: new RegExp(`^/v2/(${NAME})/blobs/(${DIGEST})$`), methods: ['GET', 'HEAD', 'DELETE'], handle: (req, res, m) => blob(req, res, m[1]!, m[2]!) },
    { re: new RegExp(`^/v2/(${NAME})/manifests/(${DIGEST}|${TAG})$`), methods: ['GET', 'HEAD', 'PUT', 'DELETE'], handle: (req, res, m) => manifest(req, res, m[1]!, m[2]!) },
    { re: new RegExp(`^/v2/(${NAME})/tags/list$`), methods: ['GET'], handle: (_req, res, m, q) => tagsList(res, m[1]!, q) },
    {
      re: new RegExp(`^/v2/(${NAME})/referrers/([^/]+)$`),
      methods: ['GET'],
      handle: (_req, res, m, q) => {
        if (!options.referrersApi) {
          send(res, 404, { 'content-type': 'text/plain; charset=utf-8', 'content-length': 19 }, '404 page not found\n');
          return;
        }
        referrers(res, m[1]!, m[2]!, q);
      },
    },
  ];

  const server = createServer((req, res) => {
    const url = new URL(req.url ?? '/', 'http://localhost');
    const method = (req.method ?? 'GET').toUpperCase();
    res.on('finish', () => requests.push({ method, path: url.pathname, query: url.search.slice(1), status: res.statusCode }));
    const handle = async (): Promise<void> => {
      for (const r of routes) {
        const m = r.re.exec(url.pathname);
        if (m === null) continue;
        if (!r.methods.includes(method)) throw new HttpError(405, 'UNSUPPORTED', `${method} ${url.pathname}`);
        await r.handle(req, res, m, url.searchParams);
        return;
      }
      send(res, 404, { 'content-type': 'text/plain; charset=utf-8', 'content-length': 19 }, '404 page not found\n');
    };
    handle().catch((e: unknown) => {
      if (res.headersSent) {
        res.destroy();
        return;
      }
      const err = e instanceof HttpError ? e : new HttpError(500, 'UNKNOWN', e instanceof Error ? e.message : String(e));
      req.resume();
      const body = Buffer.from(JSON.stringify({ errors: [{ code: err.code, message: err.message }] }));
      send(res, err.status, { 'content-type': 'application/json', 'content-length': method === 'HEAD' ? 0 : body.byteLength }, method === 'HEAD' ? undefined : body);
    });
  });
  const tracker = trackSockets(server);
  const port = await listenLocal(server);
  return {
    host: `127.0.0.1:${port}`,
    url: `http://127.0.0.1:${port}`,
    requests,
    tags: (repo) => [...(repos.get(repo)?.tags.keys() ?? [])].sort(),
    manifest: (repo, digest) => repos.get(repo)?.manifests.get(digest),
    configure(next): void {
      options = { ...options, ...next };
    },
    reset(): void {
      requests.length = 0;
    },
    async stop(): Promise<void> {
      await tracker.stop();
    },
  };
}

// ---------------------------------------------------------------- seeding any registry as other tools do

/** SeedBlob is a blob to push with its media type. */
export interface SeedBlob {
  mediaType: string;
  data: Uint8Array;
}

/** SeedManifest is a manifest ready to push: its exact bytes, digest, media type and blobs. */
export interface SeedManifest {
  bytes: Buffer;
  digest: string;
  size: number;
  mediaType: string;
  /** What a referrers list says of it (`artifactType`, `annotations`). */
  descriptor: { mediaType: string; digest: string; size: number; artifactType?: string; annotations?: Record<string, string> };
  blobs: SeedBlob[];
}

/** EMPTY_CONFIG is the OCI empty descriptor's content (`{}`), the config of artifacts. */
export const EMPTY_CONFIG: SeedBlob = { mediaType: 'application/vnd.oci.empty.v1+json', data: Buffer.from('{}') };

const OCI_MANIFEST = 'application/vnd.oci.image.manifest.v1+json';

function descriptorOf(blob: SeedBlob): { mediaType: string; digest: string; size: number } {
  return { mediaType: blob.mediaType, digest: digestOf(blob.data), size: blob.data.byteLength };
}

function seed(doc: Record<string, unknown>, mediaType: string, blobs: SeedBlob[], artifactType?: string): SeedManifest {
  const bytes = Buffer.from(JSON.stringify(doc));
  const digest = digestOf(bytes);
  const descriptor: SeedManifest['descriptor'] = { mediaType, digest, size: bytes.byteLength };
  if (artifactType !== undefined) descriptor.artifactType = artifactType;
  if (isObject(doc.annotations)) descriptor.annotations = doc.annotations as Record<string, string>;
  return { bytes, digest, size: bytes.byteLength, mediaType, descriptor, blobs };
}

/**
 * artifactManifest is an OCI 1.1 artifact as oras and regctl write one: an image manifest with `artifactType`, the
 * empty config, its layers, and `subject` naming what it refers to.
 */
export function artifactManifest(options: {
  artifactType: string;
  subject: { mediaType: string; digest: string; size: number };
  layers: SeedBlob[];
  annotations?: Record<string, string>;
}): SeedManifest {
  const doc: Record<string, unknown> = {
    schemaVersion: 2,
    mediaType: OCI_MANIFEST,
    artifactType: options.artifactType,
    config: descriptorOf(EMPTY_CONFIG),
    layers: options.layers.map(descriptorOf),
    subject: { mediaType: options.subject.mediaType, digest: options.subject.digest, size: options.subject.size },
  };
  if (options.annotations !== undefined) doc.annotations = options.annotations;
  return seed(doc, OCI_MANIFEST, [EMPTY_CONFIG, ...options.layers], options.artifactType);
}

/** cosignManifest is a manifest as cosign writes under `sha256-<hex>.sig` / `.att`: a small config, one payload layer. */
export function cosignManifest(kind: 'sig' | 'att', subjectDigest: string): SeedManifest {
  const payload =
    kind === 'sig'
      ? { mediaType: 'application/vnd.dev.cosign.simplesigning.v1+json', data: Buffer.from(JSON.stringify({ critical: { image: { 'docker-manifest-digest': subjectDigest }, type: 'cosign container image signature' } })) }
      : { mediaType: 'application/vnd.dsse.envelope.v1+json', data: Buffer.from(JSON.stringify({ payloadType: 'application/vnd.in-toto+json', payload: Buffer.from(subjectDigest).toString('base64'), signatures: [{ sig: 'MEUCIQ' }] })) };
  const config: SeedBlob = { mediaType: 'application/vnd.oci.image.config.v1+json', data: Buffer.from(JSON.stringify({ architecture: '', os: '', rootfs: { type: 'layers', diff_ids: [digestOf(payload.data)] }, config: {} })) };
  const layer = { ...descriptorOf(payload), annotations: kind === 'sig' ? { 'dev.cosignproject.cosign/signature': 'MEUCIQDfake' } : { predicateType: 'https://slsa.dev/provenance/v0.2' } };
  return seed({ schemaVersion: 2, mediaType: OCI_MANIFEST, config: descriptorOf(config), layers: [layer] }, OCI_MANIFEST, [config, payload]);
}

/** fallbackIndexOf is a referrers fallback tag index as oras and regctl write it for registries without the API. */
export function fallbackIndexOf(referrers: ReadonlyArray<SeedManifest['descriptor']>): SeedManifest {
  return seed({ schemaVersion: 2, mediaType: INDEX_TYPE, manifests: referrers }, INDEX_TYPE, []);
}

/** seedBlob uploads a blob to `base` (`http://host:port`) with a POST and a monolithic PUT, as any client does. */
export async function seedBlob(base: string, repo: string, data: Uint8Array): Promise<string> {
  const digest = digestOf(data);
  const post = await fetch(`${base}/v2/${repo}/blobs/uploads/`, { method: 'POST' });
  await post.arrayBuffer();
  const location = post.headers.get('location');
  if (post.status !== 202 || location === null) throw new Error(`POST upload to ${repo}: ${post.status}`);
  const url = new URL(location, base);
  url.searchParams.set('digest', digest);
  const put = await fetch(url, { method: 'PUT', headers: { 'content-type': 'application/octet-stream' }, body: data });
  await put.arrayBuffer();
  if (put.status !== 201) throw new Error(`PUT blob ${digest} to ${repo}: ${put.status}`);
  return digest;
}

/** seedManifest puts a manifest's bytes under `reference` (tag or digest); gives the `OCI-Subject` answer, if any. */
export async function seedManifest(base: string, repo: string, reference: string, m: Pick<SeedManifest, 'bytes' | 'mediaType'>): Promise<{ subject: string | undefined }> {
  const res = await fetch(`${base}/v2/${repo}/manifests/${reference}`, { method: 'PUT', headers: { 'content-type': m.mediaType }, body: m.bytes });
  const text = await res.text();
  if (res.status !== 201) throw new Error(`PUT manifest ${repo}:${reference}: ${res.status} ${text.slice(0, 300)}`);
  return { subject: res.headers.get('oci-subject') ?? undefined };
}

/** seedAll pushes a manifest's blobs, then the manifest (by digest, and under `tag` when given). */
export async function seedAll(base: string, repo: string, m: SeedManifest, tag?: string): Promise<{ subject: string | undefined }> {
  for (const b of m.blobs) await seedBlob(base, repo, b.data);
  const answer = await seedManifest(base, repo, m.digest, m);
  if (tag !== undefined) await seedManifest(base, repo, tag, m);
  return answer;
}

/** seedIndexOf builds an OCI index over manifests already pushed (each with its platform). */
export function seedIndexOf(children: ReadonlyArray<{ manifest: SeedManifest; platform: { os: string; architecture: string; variant?: string } }>): SeedManifest {
  return seed(
    { schemaVersion: 2, mediaType: INDEX_TYPE, manifests: children.map((c) => ({ mediaType: c.manifest.mediaType, digest: c.manifest.digest, size: c.manifest.size, platform: c.platform })) },
    INDEX_TYPE,
    [],
  );
}

/** seedImage is a small OCI image: a random config and one random (not compressed) layer. */
export function seedImage(label: string): SeedManifest {
  const config: SeedBlob = {
    mediaType: 'application/vnd.oci.image.config.v1+json',
    data: Buffer.from(JSON.stringify({ architecture: 'amd64', os: 'linux', rootfs: { type: 'layers', diff_ids: [] }, config: { Labels: { label } }, nonce: randomUUID() })),
  };
  const layer: SeedBlob = { mediaType: 'application/vnd.oci.image.layer.v1.tar', data: Buffer.from(`${label}:${randomUUID()}`.repeat(200)) };
  return seed({ schemaVersion: 2, mediaType: OCI_MANIFEST, config: descriptorOf(config), layers: [descriptorOf(layer)] }, OCI_MANIFEST, [config, layer]);
}
