/**
 * Registry error responses (`{"errors":[{"code","message","detail"}]}`) turned into {@link MirrorError}s that name
 * the phase, the method, the redacted URL, the HTTP status and the registry's error code.
 */
import { isMirrorError, MirrorError, redactUrl, safeExcerpt, type ErrorCode, type MirrorErrorOptions } from '../errors/index.js';
import { FinalNetworkError, type HttpResponse } from '../net/http.js';
import { parseJson } from '../oci/json.js';

/** ERROR_BODY_LIMIT is the most bytes of an error body that are read. */
export const ERROR_BODY_LIMIT = 64 * 1024;

/** DETAIL_LIMIT is the most characters of a registry's error `detail` kept for a message. */
export const DETAIL_LIMIT = 200;

/** RegistryErrorDetail is one entry of a registry's error body. */
export interface RegistryErrorDetail {
  code: string;
  message: string;
  /**
   * The registry's own detail, on one line and at most {@link DETAIL_LIMIT} characters: distribution puts the real
   * cause here (`write /var/lib/registry/...: no space left on device` under `UNKNOWN unknown error`), or the digest
   * or name concerned. A detail that is not text is given as JSON.
   */
  detail?: string | undefined;
}

/** RegistryHttpError is a failed registry response; it keeps `Retry-After` for the retry policy. */
export class RegistryHttpError extends MirrorError {
  /** The response's `Retry-After` header, if any. */
  readonly retryAfter: string | undefined;
  /** Every error the registry listed. */
  readonly details: readonly RegistryErrorDetail[];

  /** False when trying again cannot help though the status says it might (the registry's storage is full). */
  readonly retryable: boolean | undefined;

  constructor(
    code: ErrorCode,
    message: string,
    options: MirrorErrorOptions & { retryAfter?: string | undefined; details?: readonly RegistryErrorDetail[]; retryable?: boolean | undefined },
  ) {
    const { retryAfter, details, retryable, ...rest } = options;
    super(code, message, rest);
    this.name = 'RegistryHttpError';
    this.retryAfter = retryAfter;
    this.details = details ?? [];
    this.retryable = retryable;
  }
}

/**
 * StreamConsumedError says an upload failed after bytes of a stream that cannot be reopened were sent: the blob
 * must be read again from its source later (code `NETWORK`, `streamConsumed: true`).
 */
export class StreamConsumedError extends MirrorError {
  /** Always true: the source stream was (partly) consumed and cannot be replayed. */
  readonly streamConsumed = true as const;
  /** Marks the error as final for the retry policy: retrying needs the caller to reopen the source. */
  readonly retryable = false as const;

  constructor(message: string, options: MirrorErrorOptions = {}) {
    super('NETWORK', message, options);
    this.name = 'StreamConsumedError';
  }
}

/** isStreamConsumedError tells whether an error means "read this blob again and retry later". */
export function isStreamConsumedError(e: unknown): e is StreamConsumedError {
  return e instanceof StreamConsumedError;
}

/** parseErrorBody extracts the registry's errors from a JSON error body; empty when it is not one. */
export function parseErrorBody(text: string): RegistryErrorDetail[] {
  if (text.trim() === '') return [];
  let parsed: unknown;
  try {
    parsed = parseJson(text);
  } catch {
    return [];
  }
  const list = typeof parsed === 'object' && parsed !== null ? (parsed as { errors?: unknown }).errors : undefined;
  if (!Array.isArray(list)) return [];
  const out: RegistryErrorDetail[] = [];
  for (const item of list) {
    if (typeof item !== 'object' || item === null) continue;
    const { code, message, detail } = item as { code?: unknown; message?: unknown; detail?: unknown };
    const entry: RegistryErrorDetail = {
      code: typeof code === 'string' ? code : 'UNKNOWN',
      message: typeof message === 'string' ? message.split('\n')[0] ?? '' : '',
    };
    const text = detailText(detail);
    if (text !== undefined) entry.detail = text;
    out.push(entry);
  }
  return out;
}

/**
 * ERRNO_TEXT names the Linux errno values a registry's storage errors carry as numbers (distribution marshals a Go
 * `*os.PathError` as `{"Op","Path","Err":28}`): the ones a registry's disk gives.
 */
const ERRNO_TEXT: Record<number, string> = {
  2: 'no such file or directory',
  5: 'input/output error',
  13: 'permission denied',
  28: 'no space left on device',
  30: 'read-only file system',
  122: 'disk quota exceeded',
};

/** MAX_DETAIL_DEPTH bounds the nesting of a detail that is read (a hostile body can nest deeply). */
const MAX_DETAIL_DEPTH = 4;

/**
 * describeDetail writes a detail object as distribution's own log does: a storage driver error
 * (`{"DriverName","Enclosed"}`) as `DRIVER: ...`, a path error (`{"Op","Path","Err"}`) as `OP PATH: REASON` (a
 * numeric errno named); anything else as JSON.
 */
function describeDetail(detail: unknown, depth = 0): string {
  if (typeof detail === 'string') return detail;
  if (typeof detail === 'number') return ERRNO_TEXT[detail] ?? `errno ${detail}`;
  if (typeof detail !== 'object' || detail === null || depth >= MAX_DETAIL_DEPTH) return JSON.stringify(detail) ?? '';
  const o = detail as Record<string, unknown>;
  if (typeof o['DriverName'] === 'string' && 'Enclosed' in o) return `${o['DriverName']}: ${describeDetail(o['Enclosed'], depth + 1)}`;
  if (typeof o['Op'] === 'string' && typeof o['Path'] === 'string' && 'Err' in o) {
    const why = describeDetail(o['Err'], depth + 1);
    return `${o['Op']} ${o['Path']}${why !== '' && why !== '{}' ? `: ${why}` : ''}`;
  }
  return JSON.stringify(detail);
}

/** detailText gives an error `detail` on one line (see {@link describeDetail}), bounded; undefined when empty. */
function detailText(detail: unknown): string | undefined {
  if (detail === undefined || detail === null) return undefined;
  let text: string;
  try {
    text = describeDetail(detail);
  } catch {
    return undefined;
  }
  text = text.replace(/[\u0000-\u001f\u007f-\u009f]+/g, ' ').trim();
  if (text === '' || text === '{}' || text === '[]' || text === '""') return undefined;
  // Secrets out before the cut (a registry may quote what it was sent): a cut secret no longer matches.
  return safeExcerpt(text, DETAIL_LIMIT);
}

/** OUT_OF_SPACE matches a registry's detail saying its storage is full (ENOSPC, or a quota). */
const OUT_OF_SPACE = /no space left on device|disk quota exceeded/i;

/** errorCodeForStatus gives the MirrorError code for an HTTP status of a registry response. */
export function errorCodeForStatus(status: number, notFoundIsError = true): ErrorCode {
  if (status === 401 || status === 403) return 'AUTH';
  if (status === 404 && notFoundIsError) return 'NOT_FOUND';
  return 'REGISTRY';
}

/** RegistryErrorContext names what was being done when a response failed. */
export interface RegistryErrorContext {
  /** `ping`, `blob`, `upload`, `mount`, `manifest`, `tags`, ... */
  phase: string;
  /** A short description of the object: `manifest 127.0.0.1:5000/repo:tag`, `blob sha256:...`. */
  what?: string | undefined;
  /** The digest concerned. */
  digest?: string | undefined;
  /** The image concerned. */
  image?: string | undefined;
}

/** statusText gives the reason phrase of common statuses, for messages. */
function statusText(status: number): string {
  const texts: Record<number, string> = {
    400: 'Bad Request',
    401: 'Unauthorized',
    403: 'Forbidden',
    404: 'Not Found',
    405: 'Method Not Allowed',
    408: 'Request Timeout',
    409: 'Conflict',
    413: 'Payload Too Large',
    416: 'Range Not Satisfiable',
    429: 'Too Many Requests',
    500: 'Internal Server Error',
    502: 'Bad Gateway',
    503: 'Service Unavailable',
    504: 'Gateway Timeout',
  };
  return texts[status] ?? '';
}

/**
 * registryError reads (a bounded part of) a failed response and builds the error: `AUTH` for 401/403,
 * `NOT_FOUND` for 404, `REGISTRY` otherwise, with a one-line message carrying the registry's code and message.
 */
export async function registryError(res: HttpResponse, method: string, ctx: RegistryErrorContext): Promise<RegistryHttpError> {
  let text = '';
  if (method === 'HEAD') await res.discard();
  else {
    try {
      text = await res.text(ERROR_BODY_LIMIT);
    } catch (e) {
      // The status says enough to decide; only an interruption or a host given up on goes past a lost error body.
      if (e instanceof FinalNetworkError || (isMirrorError(e) && e.code === 'INTERRUPTED')) throw e;
    }
  }
  return registryErrorFromText(res.status, res.headers, text, method, res.url, ctx);
}

/** registryErrorFromText builds the error of {@link registryError} from an already-read body. */
export function registryErrorFromText(
  status: number,
  headers: Record<string, string>,
  text: string,
  method: string,
  url: URL,
  ctx: RegistryErrorContext,
): RegistryHttpError {
  const details = parseErrorBody(text);
  const first = details[0];
  let code = errorCodeForStatus(status);
  const what = ctx.what ? ` ${ctx.what}` : '';
  let reason = `HTTP ${status}${statusText(status) ? ` ${statusText(status)}` : ''}`;
  if (first !== undefined) {
    reason += `: ${first.code}${first.message ? ` ${first.message}` : ''}`;
    if (first.detail !== undefined && !first.message.includes(first.detail)) reason += `: ${first.detail}`;
  }
  let hint: string | undefined;
  // A full disk answers 500 to every write: trying again only sends the bytes again.
  const full = details.some((d) => OUT_OF_SPACE.test(`${d.message} ${d.detail ?? ''}`));
  if (full) hint = 'the registry is out of disk space: free some (garbage-collect) and run the same command again';
  if (status === 400 && url.protocol === 'http:' && /HTTP request to an HTTPS server|plain HTTP request was sent to HTTPS port/i.test(text)) {
    // A scheme mismatch is a TLS problem whichever way round (https to a plain registry is TLS too): one exit code.
    code = 'TLS';
    reason = 'the registry speaks HTTPS, but plain HTTP was used';
    hint = `use https://${url.host} (drop --plain-http)`;
  }
  return new RegistryHttpError(code, `${ctx.phase}${what} failed: ${reason}`, {
    phase: ctx.phase,
    method,
    url: redactUrl(url),
    status,
    registryCode: first?.code,
    digest: ctx.digest,
    image: ctx.image,
    retryAfter: headers['retry-after'],
    details,
    hint,
    retryable: full ? false : undefined,
  });
}
