/**
 * Blob uploads: monolithic (POST, then one PUT with the whole body), streamed when the digest is not known in
 * advance (POST, one PATCH, PUT ?digest=computed), and chunked (PATCH with Content-Range, one chunk in memory,
 * resumed from the offset the registry reports). Every byte sent is hashed; a blob that does not match its digest
 * is never completed. Retries are bounded; a stream that cannot be reopened fails with {@link StreamConsumedError}.
 * A registry that refuses a way of sending (a PUT with a body answered 405, a request too large for a proxy in front
 * of it answered 413) is sent the blob again the next way down (see {@link wayAfterRefusal}), and later uploads to it
 * start there. Also the cross-repository mount (a POST to the same endpoint, answered with a link or an upload session).
 */
import { DigestMismatchError, isMirrorError, MirrorError, redactUrl } from '../errors/index.js';
import { type HttpResponse, isRequestBodyError } from '../net/http.js';
import { isRetryableError, withRetry } from '../net/retry.js';
import { DigestCounter, digestLike, verifyingStream } from '../oci/digest.js';
import { pullScope, pushScope } from './auth.js';
import { blobExists, type SignalOption } from './blob.js';
import { registryError, RegistryHttpError, StreamConsumedError } from './errors.js';
import { ReplayNeededError, type RegistryTransport } from './transport.js';

/** DEFAULT_CHUNK_SIZE is the chunk size of chunked uploads: 16 MiB. */
export const DEFAULT_CHUNK_SIZE = 16 * 1024 * 1024;
/** SMALLEST_FALLBACK_CHUNK is the smallest chunk a registry answering 413 is offered: 256 KiB. */
export const SMALLEST_FALLBACK_CHUNK = 256 * 1024;
/** CANCEL_TIMEOUT_MS bounds the best-effort DELETE of an abandoned upload session. */
export const CANCEL_TIMEOUT_MS = 5_000;

/** UploadSession is an open upload on the registry (from a POST, or from a mount answered 202). */
export interface UploadSession {
  /** The repository the upload belongs to. */
  repository: string;
  /** The absolute URL to PATCH/PUT/GET/DELETE (it changes after each PATCH). */
  location: string;
  /** The smallest chunk the registry accepts (`OCI-Chunk-Min-Length`), if it said. */
  minChunkLength?: number | undefined;
}

/** BlobBody is what to upload: bytes in memory, or a stream (reopenable when it can be read again from the start). */
export type BlobBody =
  | { kind: 'bytes'; data: Uint8Array }
  | { kind: 'stream'; open: () => AsyncIterable<Uint8Array>; reopenable: boolean };

/**
 * UploadWay is how one attempt sends the bytes: `monolithic` (one PUT with the body, when digest and size are
 * known), `streamed` (one PATCH with the whole body, then an empty PUT: what skopeo and crane send), or `chunked`
 * (PATCHes of `chunkSize` bytes with Content-Range).
 */
export type UploadWay = { kind: 'monolithic' } | { kind: 'streamed' } | { kind: 'chunked'; chunkSize: number };

/** REFUSED_PUT_STATUSES answer a PUT with a body from a registry that takes bytes only by PATCH. */
const REFUSED_PUT_STATUSES = new Set([400, 405, 415, 501]);
/** Registry codes of a 400 that say the PUT's way was refused, not its content (no code at all counts too). */
const REFUSED_PUT_CODES = new Set(['BLOB_UPLOAD_INVALID', 'UNSUPPORTED']);

/**
 * wayAfterRefusal gives the way to try next when a registry refused the way an attempt used, or undefined when the
 * failure is not a refusal of the way (bad content, auth, a lost session...). 413 (a proxy's body limit) to one
 * request with the whole body: chunks of {@link DEFAULT_CHUNK_SIZE} (a chunked upload splits a refused chunk itself,
 * down to {@link SMALLEST_FALLBACK_CHUNK}). 405, 415, 501, or 400 without a code that blames the content, to a PUT
 * with a body: the body by PATCH, then an empty PUT.
 */
export function wayAfterRefusal(e: unknown, way: UploadWay): UploadWay | undefined {
  if (!(e instanceof RegistryHttpError)) return undefined;
  const status = e.context.status;
  if (status === 413) return way.kind === 'chunked' ? undefined : { kind: 'chunked', chunkSize: DEFAULT_CHUNK_SIZE };
  if (way.kind !== 'monolithic' || status === undefined || !REFUSED_PUT_STATUSES.has(status)) return undefined;
  if (status === 400 && !e.details.every((d) => REFUSED_PUT_CODES.has(d.code))) return undefined;
  return { kind: 'streamed' };
}

/** Ways down the ladder, by rank: a registry that refused one is sent the later ones only. */
function rankOf(way: UploadWay): number {
  return way.kind === 'monolithic' ? 0 : way.kind === 'streamed' ? 1 : 2 + Math.round(Math.log2(DEFAULT_CHUNK_SIZE / way.chunkSize));
}

/** learnedWays keeps, per registry transport, the way its refusals led to: later uploads to it start there. */
const learnedWays = new WeakMap<RegistryTransport, UploadWay>();

/** rungBelow gives the largest chunk size of the ladder ({@link DEFAULT_CHUNK_SIZE}, then quarters) below `n` bytes. */
function rungBelow(n: number): number {
  let size = DEFAULT_CHUNK_SIZE;
  while (size >= n && size >= SMALLEST_FALLBACK_CHUNK) size /= 4;
  return size;
}

/**
 * firstWay is how an upload starts: chunked when asked, one PUT with the body when digest and size are known (bytes
 * always are), else one PATCH; or the way this registry's refusals led to, when that is further down the ladder.
 */
function firstWay(t: RegistryTransport, body: BlobBody, options: UploadOptions): UploadWay {
  const asked: UploadWay =
    options.mode === 'chunked'
      ? { kind: 'chunked', chunkSize: options.chunkSize ?? DEFAULT_CHUNK_SIZE }
      : body.kind === 'bytes' || (options.digest !== undefined && options.size !== undefined)
        ? { kind: 'monolithic' }
        : { kind: 'streamed' };
  const known = learnedWays.get(t);
  return known !== undefined && rankOf(known) > rankOf(asked) ? known : asked;
}

/** learn records the way a registry's refusal led to, unless an earlier refusal led further down already. */
function learn(t: RegistryTransport, way: UploadWay): void {
  const known = learnedWays.get(t);
  if (known === undefined || rankOf(way) > rankOf(known)) learnedWays.set(t, way);
}

/** UploadMode chooses how bytes are sent. */
export type UploadMode = 'monolithic' | 'chunked';

/** UploadOptions tune {@link uploadBlob}. */
export interface UploadOptions {
  /** The expected digest; when given, bytes that do not match are never committed. Default: computed while sending. */
  digest?: string | undefined;
  /** The expected size in bytes. */
  size?: number | undefined;
  /** `monolithic` (default; one PUT, or one PATCH when the digest is unknown) or `chunked`. */
  mode?: UploadMode | undefined;
  /** Chunk size for chunked mode. Default: {@link DEFAULT_CHUNK_SIZE} (raised to the registry's minimum). */
  chunkSize?: number | undefined;
  /** An upload session to use (from a mount answered 202) instead of opening one. */
  session?: UploadSession | undefined;
  /** Called with the number of new bytes accepted, for progress (bytes sent again after a retry are not counted twice). */
  onBytes?: ((n: number) => void) | undefined;
  signal?: AbortSignal | undefined;
}

/** UploadResult is what the registry stored. */
export interface UploadResult {
  digest: string;
  size: number;
}

/** SessionLostError says the registry no longer knows an upload session (or it cannot continue). */
class SessionLostError extends MirrorError {
  constructor(message: string, options: ConstructorParameters<typeof MirrorError>[2] = {}) {
    super('REGISTRY', message, options);
    this.name = 'SessionLostError';
  }
}

/** Errors that already went through their own bounded retries: an upload is not started over for them. */
const spentErrors = new WeakSet<object>();

/** spent marks an error as having used up its retries and returns it. */
function spent(e: unknown): unknown {
  if (typeof e === 'object' && e !== null) spentErrors.add(e);
  return e;
}

/** isSpent tells whether an error already used up its retries. */
function isSpent(e: unknown): boolean {
  return typeof e === 'object' && e !== null && spentErrors.has(e);
}

/** sessionFromResponse reads the upload session of a 202 answer (Location, OCI-Chunk-Min-Length). */
export function sessionFromResponse(res: HttpResponse, repository: string): UploadSession {
  const location = res.headers['location'];
  if (location === undefined || location === '') {
    throw new MirrorError('REGISTRY', `registry opened an upload for ${repository} without a Location`, {
      phase: 'upload',
      url: redactUrl(res.url),
      status: res.status,
    });
  }
  const min = Number(res.headers['oci-chunk-min-length']);
  return {
    repository,
    location: new URL(location, res.url).toString(),
    minChunkLength: Number.isFinite(min) && min > 0 ? min : undefined,
  };
}

/** withQuery appends a query parameter to a URL without re-encoding the parameters it already has. */
function withQuery(url: string, key: string, value: string): string {
  const u = new URL(url);
  const sep = u.search === '' || u.search === '?' ? '?' : '&';
  u.search = `${u.search === '?' ? '' : u.search}${sep}${encodeURIComponent(key)}=${encodeURIComponent(value)}`;
  return u.toString();
}

/** Progress reports bytes past the highest offset reached, so bytes sent again are not counted twice. */
class Progress {
  private high = 0;
  constructor(private readonly onBytes: ((n: number) => void) | undefined) {}
  reach(offset: number): void {
    if (offset > this.high) {
      this.onBytes?.(offset - this.high);
      this.high = offset;
    }
  }
}

/** startUpload opens an upload session (POST /v2/<repo>/blobs/uploads/), with retries. */
export async function startUpload(t: RegistryTransport, repo: string, signal?: AbortSignal): Promise<UploadSession> {
  return t.call(
    { method: 'POST', url: `/v2/${repo}/blobs/uploads/`, scopes: [pushScope(repo)], ok: [202], context: { phase: 'upload', what: `to ${repo}` }, signal },
    async (res) => {
      await res.discard();
      return sessionFromResponse(res, repo);
    },
  );
}

/** cancelUpload deletes an upload session (best effort: a session the registry already forgot is fine). */
export async function cancelUpload(t: RegistryTransport, session: UploadSession, signal?: AbortSignal): Promise<void> {
  const res = await t.send({ method: 'DELETE', url: session.location, scopes: [pushScope(session.repository)], signal });
  await res.discard();
  if (res.status === 204 || res.status === 200 || res.status === 202 || res.status === 404) return;
  throw await registryError(res, 'DELETE', { phase: 'upload', what: `cancel in ${session.repository}` });
}

/** cancelQuietly cancels a session, never throwing, bounded in time even when the caller's signal fired. */
async function cancelQuietly(t: RegistryTransport, session: UploadSession | undefined): Promise<void> {
  if (session === undefined) return;
  try {
    await cancelUpload(t, session, AbortSignal.timeout(CANCEL_TIMEOUT_MS));
  } catch {
    // The registry garbage-collects abandoned uploads.
  }
}

/** uploadStatus asks a session how many bytes it holds (GET <location> answers `Range: 0-<last>`). */
async function uploadStatus(t: RegistryTransport, session: UploadSession, signal?: AbortSignal): Promise<{ offset: number; location: string }> {
  try {
    return await t.call(
      { method: 'GET', url: session.location, scopes: [pushScope(session.repository)], ok: [204, 200], context: { phase: 'upload', what: 'status' }, signal },
      async (res) => {
        await res.discard();
        const range = /^(?:bytes=)?0-(\d+)$/.exec((res.headers['range'] ?? '').trim());
        // `0-0` is what distribution answers for both 0 and 1 byte: take the safe reading (0).
        const offset = range?.[1] === undefined ? 0 : Number(range[1]) === 0 ? 0 : Number(range[1]) + 1;
        const location = res.headers['location'];
        return { offset, location: location ? new URL(location, res.url).toString() : session.location };
      },
    );
  } catch (e) {
    if (e instanceof RegistryHttpError && e.context.status !== undefined && e.context.status < 500) {
      throw new SessionLostError(`upload session in ${session.repository} is gone`, { cause: e, phase: 'upload' });
    }
    throw spent(e);
  }
}

/** isSessionLost tells whether an error means the upload must start over in a new session. */
function isSessionLost(e: unknown): boolean {
  if (e instanceof SessionLostError || e instanceof ReplayNeededError) return true;
  if (e instanceof RegistryHttpError) {
    const code = e.context.registryCode;
    return e.context.status === 416 || code === 'BLOB_UPLOAD_UNKNOWN' || code === 'BLOB_UPLOAD_INVALID' || code === 'RANGE_INVALID';
  }
  return false;
}

/** Tracks whether a stream source was opened (after which it cannot be opened again unless reopenable). */
interface SourceState {
  opened: boolean;
}

/** openSource gives the body for one attempt; a stream is opened lazily, on the first read, and that is recorded. */
function openSource(body: BlobBody, state: SourceState): AsyncIterable<Uint8Array> {
  if (body.kind === 'bytes') {
    const data = body.data;
    return (async function* bytes(): AsyncGenerator<Uint8Array, void, undefined> {
      if (data.byteLength > 0) yield data;
    })();
  }
  return (async function* tracked(): AsyncGenerator<Uint8Array, void, undefined> {
    state.opened = true;
    for await (const chunk of body.open()) {
      if (chunk.byteLength === 0) continue;
      yield chunk;
    }
  })();
}

/** rechunk regroups a stream into chunks of exactly `size` bytes (the last one shorter), holding one chunk. */
async function* rechunk(source: AsyncIterable<Uint8Array>, size: number): AsyncGenerator<Uint8Array, void, undefined> {
  let buf = Buffer.allocUnsafe(size);
  let fill = 0;
  for await (const chunk of source) {
    let pos = 0;
    while (pos < chunk.byteLength) {
      const n = Math.min(size - fill, chunk.byteLength - pos);
      buf.set(chunk.subarray(pos, pos + n), fill);
      fill += n;
      pos += n;
      if (fill === size) {
        yield buf;
        buf = Buffer.allocUnsafe(size);
        fill = 0;
      }
    }
  }
  if (fill > 0) yield buf.subarray(0, fill);
}

/** An attempt's context. */
interface Attempt {
  t: RegistryTransport;
  repo: string;
  body: BlobBody;
  options: UploadOptions;
  progress: Progress;
  source: SourceState;
  /** The session as last known (its location changes after each PATCH), for a cancel after a failure. */
  latest: { session: UploadSession | undefined };
}

/** finish commits an upload with PUT <location>?digest=, and checks (HEAD) whether a PUT whose answer was lost landed. */
async function finish(a: Attempt, session: UploadSession, digest: string, size: number): Promise<UploadResult> {
  const { t, repo, options } = a;
  const url = withQuery(session.location, 'digest', digest);
  try {
    return await t.call(
      {
        method: 'PUT',
        url,
        scopes: [pushScope(repo)],
        headers: { 'content-type': 'application/octet-stream', 'content-length': '0' },
        ok: [201, 204],
        context: { phase: 'upload', what: digest, digest },
        signal: options.signal,
      },
      async (res) => {
        await res.discard();
        return { digest: res.headers['docker-content-digest'] || digest, size };
      },
    );
  } catch (e) {
    const landed = await landedAs(a, digest, size);
    if (landed !== undefined) return landed;
    throw isSessionLost(e) ? e : spent(e);
  }
}

/** landedAs tells whether the blob is in the repository with the right size (a commit whose answer was lost). */
async function landedAs(a: Attempt, digest: string, size: number | undefined): Promise<UploadResult | undefined> {
  if (a.options.signal?.aborted) return undefined;
  try {
    const found = await blobExists(a.t, a.repo, digest, { signal: a.options.signal });
    if (found !== undefined && (size === undefined || found.size === size || found.size < 0)) return { digest, size: size ?? found.size };
  } catch {
    // fall through: report the original failure
  }
  return undefined;
}

/** monolithic sends the whole body in one PUT (digest and size known). */
async function monolithicPut(a: Attempt, session: UploadSession, digest: string, size: number): Promise<UploadResult> {
  const { t, repo, body, options, progress } = a;
  const url = withQuery(session.location, 'digest', digest);
  let payload: () => Uint8Array | AsyncIterable<Uint8Array>;
  let replayable: boolean;
  if (body.kind === 'bytes') {
    payload = () => body.data;
    replayable = true;
  } else {
    let sent = 0;
    const verified = verifyingStream(openSource(body, a.source), digest, size, { digest, phase: 'upload', onBytes: (n) => progress.reach((sent += n)) });
    payload = () => verified;
    replayable = false;
  }
  let res: HttpResponse;
  try {
    res = await t.send({
      method: 'PUT',
      url,
      scopes: [pushScope(repo)],
      headers: { 'content-type': 'application/octet-stream', 'content-length': String(size) },
      body: payload,
      replayable,
      signal: options.signal,
    });
  } catch (e) {
    if (e instanceof DigestMismatchError || !isRetryableError(e)) throw e;
    const landed = await landedAs(a, digest, size);
    if (landed !== undefined) return landed;
    throw e;
  }
  if (res.status !== 201 && res.status !== 204) throw await registryError(res, 'PUT', { phase: 'upload', what: digest, digest });
  await res.discard();
  if (body.kind === 'bytes') progress.reach(size);
  return { digest: res.headers['docker-content-digest'] || digest, size };
}

/** streamed sends the whole body in one PATCH (no Content-Range), hashing it, then commits with the computed digest. */
async function streamedPatch(a: Attempt, session: UploadSession): Promise<UploadResult> {
  const { t, repo, body, options, progress } = a;
  const counter = new DigestCounter();
  const source = openSource(body, a.source);
  const expectedSize = options.size ?? (body.kind === 'bytes' ? body.data.byteLength : undefined);
  const hashed = (async function* hashed(): AsyncGenerator<Uint8Array, void, undefined> {
    for await (const chunk of source) {
      counter.update(chunk);
      if (expectedSize !== undefined && counter.bytes > expectedSize) {
        throw new DigestMismatchError(options.digest ?? 'unknown', 'unknown', {
          phase: 'upload',
          expectedSize,
          actualSize: counter.bytes,
        });
      }
      yield chunk;
      progress.reach(counter.bytes);
    }
  })();
  const headers: Record<string, string> = { 'content-type': 'application/octet-stream' };
  if (expectedSize !== undefined) headers['content-length'] = String(expectedSize);
  const res = await t.send({
    method: 'PATCH',
    url: session.location,
    scopes: [pushScope(repo)],
    headers,
    body: () => hashed,
    replayable: false,
    signal: options.signal,
  });
  if (res.status !== 202 && res.status !== 204) throw await registryError(res, 'PATCH', { phase: 'upload', what: `to ${repo}` });
  await res.discard();
  const next = { ...session, location: new URL(res.headers['location'] ?? session.location, res.url).toString() };
  a.latest.session = next;
  const digest = counter.digest();
  checkExpected(options, digest, counter.bytes);
  return finish(a, next, digest, counter.bytes);
}

/** checkExpected throws when the bytes sent do not match the expected digest or size. */
function checkExpected(options: UploadOptions, digest: string, size: number): void {
  const expectedDigest = options.digest;
  if (options.size !== undefined && options.size !== size) {
    throw new DigestMismatchError(expectedDigest ?? digest, digest, { phase: 'upload', expectedSize: options.size, actualSize: size });
  }
  if (expectedDigest !== undefined && expectedDigest !== digest) {
    throw new DigestMismatchError(expectedDigest, digest, { phase: 'upload' });
  }
}

/** chunked sends the body in PATCH chunks with Content-Range, resuming a failed chunk from the session's offset. */
async function chunked(a: Attempt, session: UploadSession, size: number): Promise<UploadResult> {
  const { t, repo, body, options, progress } = a;
  const chunkSize = Math.max(1, size, session.minChunkLength ?? 0);
  const counter = new DigestCounter();
  let current = session;
  let offset = 0;
  // The most bytes one PATCH carries: the chunk size, or a rung of the ladder below it once the registry answered 413.
  let piece = chunkSize;
  for await (const chunk of rechunk(openSource(body, a.source), chunkSize)) {
    counter.update(chunk);
    if (options.size !== undefined && counter.bytes > options.size) {
      throw new DigestMismatchError(options.digest ?? 'unknown', 'unknown', { phase: 'upload', expectedSize: options.size, actualSize: counter.bytes });
    }
    const start = offset;
    let pos = start;
    // Errors of the status query that places a resumed chunk are not retried here (it has retried on its own).
    const fromStatus = new WeakSet<object>();
    // The failure that made the last retry, the cause of a session found lost.
    let cut: unknown;
    const sendRest = async (tryNumber: number): Promise<void> => {
      if (tryNumber > 0) {
        // A retry: the registry says how far it got; send the rest of the chunk from there.
        let status: { offset: number; location: string };
        try {
          status = await uploadStatus(t, current, options.signal);
        } catch (e) {
          if (typeof e === 'object' && e !== null) fromStatus.add(e);
          throw e;
        }
        if (status.offset < start || status.offset > start + chunk.byteLength) {
          const lost = new SessionLostError(`upload session in ${repo} is at byte ${status.offset}, outside the chunk held (${start}-${start + chunk.byteLength})`, {
            phase: 'upload',
            cause: cut,
          });
          fromStatus.add(lost);
          throw lost;
        }
        current = { ...current, location: status.location };
        a.latest.session = current;
        pos = status.offset;
        progress.reach(pos);
        t.events({ type: 'debug', message: `upload to ${repo}: resuming at byte ${pos}` });
      }
      while (pos < start + chunk.byteLength) {
        const data = chunk.subarray(pos - start, Math.min(chunk.byteLength, pos - start + piece));
        const res = await t.send({
          method: 'PATCH',
          url: current.location,
          scopes: [pushScope(repo)],
          headers: {
            'content-type': 'application/octet-stream',
            'content-range': `${pos}-${pos + data.byteLength - 1}`,
            'content-length': String(data.byteLength),
          },
          body: () => data,
          replayable: true,
          signal: options.signal,
        });
        const what = `chunk ${pos}-${pos + data.byteLength - 1} to ${repo}`;
        if (res.status === 413) {
          // Too large for the registry or a proxy in front: nothing of it was taken. The chunk held is sent again in
          // quarters (the stream is not read again), and so is the rest of the upload.
          const smaller = rungBelow(data.byteLength);
          if (smaller < Math.max(SMALLEST_FALLBACK_CHUNK, current.minChunkLength ?? 0)) throw spent(await registryError(res, 'PATCH', { phase: 'upload', what }));
          await res.discard();
          piece = smaller;
          learn(t, { kind: 'chunked', chunkSize: piece });
          t.events({ type: 'debug', message: `${t.host} refused a PATCH of ${data.byteLength} bytes (413): sending chunks of ${piece} bytes` });
          continue;
        }
        if (res.status !== 202 && res.status !== 204) throw await registryError(res, 'PATCH', { phase: 'upload', what });
        await res.discard();
        const location = res.headers['location'];
        current = { ...current, location: location ? new URL(location, res.url).toString() : current.location };
        a.latest.session = current;
        pos += data.byteLength;
        progress.reach(pos);
      }
    };
    const patchFailed = (e: unknown): boolean => !(isMirrorError(e) && e.code === 'INTERRUPTED') && !(typeof e === 'object' && e !== null && fromStatus.has(e)) && isRetryableError(e);
    try {
      await withRetry(sendRest, { method: 'PATCH', url: () => current.location, retry: t.retry, events: t.events, signal: options.signal,
        shouldRetry: patchFailed,
        onRetry: (e) => {
          cut = e;
        },
      });
    } catch (e) {
      // A chunk that failed every retry: the whole upload is not started over for it.
      throw patchFailed(e) ? spent(e) : e;
    }
    offset = start + chunk.byteLength;
  }
  const digest = counter.digest();
  checkExpected(options, digest, counter.bytes);
  return finish(a, current, digest, counter.bytes);
}

/** runOnce uploads once into a session, the way given. */
async function runOnce(a: Attempt, session: UploadSession, way: UploadWay): Promise<UploadResult> {
  const { body, options } = a;
  if (way.kind === 'chunked') return chunked(a, session, way.chunkSize);
  if (way.kind === 'streamed') return streamedPatch(a, session);
  if (body.kind === 'bytes') return monolithicPut(a, session, options.digest ?? digestLike(body.data, undefined), body.data.byteLength);
  // firstWay gives a stream one PUT only when its digest and size are known.
  if (options.digest !== undefined && options.size !== undefined) return monolithicPut(a, session, options.digest, options.size);
  return streamedPatch(a, session);
}

/**
 * uploadBlob uploads a blob into `repo` and returns the digest the registry confirmed (or the computed one).
 * Bytes bodies and reopenable streams are retried whole (in a new session) when an attempt fails; a stream that
 * cannot be reopened fails with {@link StreamConsumedError} once bytes were taken from it. A digest or size
 * mismatch throws {@link DigestMismatchError} and the upload is never completed.
 */
export async function uploadBlob(t: RegistryTransport, repo: string, body: BlobBody, options: UploadOptions = {}): Promise<UploadResult> {
  if (body.kind === 'bytes') {
    // Known bytes are checked before anything is sent.
    const actual = digestLike(body.data, options.digest);
    const sizeWrong = options.size !== undefined && options.size !== body.data.byteLength;
    if (sizeWrong || (options.digest !== undefined && options.digest !== actual)) {
      throw new DigestMismatchError(options.digest ?? actual, actual, {
        phase: 'upload',
        expectedSize: options.size,
        actualSize: body.data.byteLength,
      });
    }
  }
  const progress = new Progress(options.onBytes);
  const source: SourceState = { opened: false };
  const uploads = await t.url(`/v2/${repo}/blobs/uploads/`);
  // The session a refused mount opened serves the first attempt; each retry opens a new one.
  let given = options.session;
  // The session of the attempt that failed last (its location moves with each PATCH), to cancel it.
  let failed: UploadSession | undefined;
  // How the bytes go: by mode and what is known, or as the registry's earlier refusals taught.
  let way = firstWay(t, body, options);
  const once = async (): Promise<UploadResult> => {
    let current: UploadSession | undefined;
    const latest: { session: UploadSession | undefined } = { session: undefined };
    try {
      if (given !== undefined) current = given;
      else {
        try {
          current = await startUpload(t, repo, options.signal);
        } catch (e) {
          throw spent(e);
        }
      }
      given = undefined;
      latest.session = current;
      return await runOnce({ t, repo, body, options, progress, source, latest }, current, way);
    } catch (e) {
      failed = latest.session ?? current;
      throw e;
    }
  };
  // Started over in a new session: a broken connection, a retryable status or a lost session, when the body can be
  // read again from its start (bytes, a reopenable stream, or a stream nothing was taken from yet). A refusal of the
  // way is not tried again the same way.
  // A failure of the body's own source (another registry's GET that gave up after its retries) is not the upload's:
  // restarting would retry the source's retries, (retries + 1)^2 GETs in all, blamed on the destination.
  const restartable = (e: unknown): boolean => !isRequestBodyError(e) && (isRetryableError(e) || isSessionLost(e)) && wayAfterRefusal(e, way) === undefined;
  const replayable = (): boolean => body.kind === 'bytes' || body.reopenable || !source.opened;
  for (;;) {
    try {
      return await withRetry(once, {
        method: 'UPLOAD',
        url: () => failed?.location ?? uploads,
        retry: t.retry,
        events: t.events,
        signal: options.signal,
        shouldRetry: (e) => !(isMirrorError(e) && (e.code === 'INTERRUPTED' || e.code === 'DIGEST_MISMATCH')) && restartable(e) && replayable() && !isSpent(e),
        onRetry: async () => {
          await cancelQuietly(t, failed);
          failed = undefined;
          source.opened = false;
        },
      });
    } catch (e) {
      await cancelQuietly(t, failed);
      failed = undefined;
      const next = options.signal?.aborted ? undefined : wayAfterRefusal(e, way);
      if (next !== undefined) {
        // Later uploads to this registry start with the way that worked further down (never climbing back up).
        learn(t, next);
        t.events({ type: 'debug', message: `${t.host} refused ${describeWay(way)} for ${options.digest ?? 'a blob'} in ${repo} (${errorLine(e)}); sending ${describeWay(next)} instead` });
        // Another upload may have taught this registry a smaller chunk meanwhile: start there.
        way = learnedWays.get(t) ?? next;
        if (replayable()) {
          source.opened = false;
          continue;
        }
        throw new StreamConsumedError(`upload to ${repo} must be sent again as ${describeWay(next)} after its stream was consumed (${errorLine(e)})`, {
          phase: 'upload',
          digest: options.digest,
          cause: e,
        });
      }
      if (!(isMirrorError(e) && (e.code === 'INTERRUPTED' || e.code === 'DIGEST_MISMATCH')) && restartable(e) && !replayable()) {
        throw new StreamConsumedError(`upload to ${repo} failed after its stream was consumed; read the blob again to retry (${errorLine(e)})`, {
          phase: 'upload',
          digest: options.digest,
          cause: e,
        });
      }
      throw e;
    }
  }
}

/** describeWay names a way for messages. */
function describeWay(way: UploadWay): string {
  return way.kind === 'monolithic' ? 'one PUT with the body' : way.kind === 'streamed' ? 'one PATCH and an empty PUT' : `PATCH chunks of ${way.chunkSize} bytes`;
}

/** errorLine gives a short description of an error for a wrapping message. */
function errorLine(e: unknown): string {
  if (e instanceof Error) return (e.message.split('\n')[0] ?? e.name).slice(0, 200);
  return String(e).slice(0, 200);
}

/** MountResult is the outcome of a cross-repository mount. */
export type MountResult =
  /** The registry linked the blob (201). */
  | { mounted: true }
  /** Not mounted; when `session` is set the registry opened an upload (202) to upload into or cancel. */
  | { mounted: false; session?: UploadSession | undefined };

/**
 * mountBlob asks the registry to link a blob from another repository (`POST ...?mount=&from=`) with a token for
 * push,pull on `repo` and pull on `fromRepo`. Only 201 means mounted; 202 gives an upload session; a refused token
 * or a 401/403 answer gives `{mounted: false}` so the caller uploads normally.
 */
export async function mountBlob(
  t: RegistryTransport,
  repo: string,
  digest: string,
  fromRepo: string,
  options: SignalOption = {},
): Promise<MountResult> {
  const query = new URLSearchParams({ mount: digest, from: fromRepo });
  const url = await t.url(`/v2/${repo}/blobs/uploads/?${query.toString()}`);
  const scopes = fromRepo === repo ? [pushScope(repo)] : [pushScope(repo), pullScope(fromRepo)];
  return withRetry(
    async () => {
      let res: HttpResponse;
      try {
        res = await t.send({ method: 'POST', url, scopes, signal: options.signal, reresolve: false });
      } catch (e) {
        if (e instanceof MirrorError && e.code === 'AUTH') {
          t.events({ type: 'debug', message: `mount of ${digest} from ${fromRepo} into ${repo} not allowed (${e.message}); uploading instead` });
          return { mounted: false };
        }
        throw e;
      }
      if (res.status === 201) {
        await res.discard();
        return { mounted: true };
      }
      if (res.status === 202) {
        await res.discard();
        return { mounted: false, session: sessionFromResponse(res, repo) };
      }
      if (res.status === 401 || res.status === 403) {
        await res.discard();
        return { mounted: false };
      }
      throw await registryError(res, 'POST', { phase: 'mount', what: `${digest} from ${fromRepo} into ${repo}`, digest });
    },
    { method: 'POST', url, retry: t.retry, events: t.events, signal: options.signal },
  );
}
