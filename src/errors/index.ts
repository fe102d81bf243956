/**
 * One error hierarchy for the whole tool. Every error carries a stable `code`, the process exit code it maps to,
 * and context (phase, image, digest, file, redacted URL, HTTP status, registry error code). Messages are one line
 * and never contain secrets: URLs pass through {@link redactUrl} before they are stored, and every message goes
 * through {@link safeText} (registered secrets taken out, control characters escaped) when it is made and when it
 * is described.
 */
import { clipInput } from './quote.js';
import { safeText } from './sanitize.js';

export { escapeControl, registerSecret, safeExcerpt, safeText, scrubSecrets } from './sanitize.js';

/** ExitCode is the one table of process exit codes, shown in `--help`. */
export const ExitCode = {
  /** Everything asked for was done. */
  OK: 0,
  /** An unexpected or registry-side failure. */
  FAILURE: 1,
  /** Bad flags or arguments. */
  USAGE: 2,
  /** Bad input: a missing or unreadable file, not a bundle, a corrupt archive, a digest mismatch. */
  BAD_INPUT: 3,
  /** Credentials missing, refused, or not allowed to do this. */
  AUTH: 4,
  /** A TLS failure: unknown CA, name mismatch, expired or incomplete chain. */
  TLS: 5,
  /** The network: connection refused, DNS, proxy, timeouts after all retries. */
  NETWORK: 6,
  /** Some images went through and some failed. */
  PARTIAL: 7,
  /** Another run holds the lock (`mirror sync`): nothing was done. */
  LOCKED: 8,
  /** Stopped at its time limit (`mirror sync --max-duration`) before everything was done; nothing is half-written. */
  STOPPED: 9,
  /** Interrupted by a signal. */
  INTERRUPTED: 130,
} as const;

/** ExitCodeValue is one value of {@link ExitCode}. */
export type ExitCodeValue = (typeof ExitCode)[keyof typeof ExitCode];

/** EXIT_CODE_HELP is the exit-code table as shown in `--help`. */
export const EXIT_CODE_HELP = [
  'EXIT CODES',
  '  0    success',
  '  1    failure (registry error, unexpected error)',
  '  2    usage: bad flags or arguments',
  '  3    bad input: missing or unreadable file, not a bundle, corrupt archive, digest mismatch',
  '  4    authentication or authorization failed, or no credentials and no terminal to ask',
  '  5    TLS: unknown CA, name mismatch, expired or incomplete chain, http/https mismatch',
  '  6    network: unreachable, refused, proxy failure, timed out after retries',
  '  7    partial: some images were pushed, others failed (see the summary or --report)',
  '  8    another run holds the lock (mirror sync); nothing was done',
  '  9    stopped at --max-duration before everything was synced (mirror sync); the next run goes on',
  '  130  interrupted',
].join('\n');

/** ErrorCode is the stable, machine-readable code of an error. */
export type ErrorCode =
  | 'USAGE'
  | 'BAD_INPUT'
  | 'NOT_FOUND'
  | 'CORRUPT_ARCHIVE'
  | 'UNSAFE_ENTRY'
  | 'UNSUPPORTED'
  | 'DIGEST_MISMATCH'
  | 'AUTH'
  | 'TLS'
  | 'NETWORK'
  | 'REGISTRY'
  | 'PARTIAL'
  | 'LOCKED'
  | 'STOPPED'
  | 'INTERRUPTED'
  | 'INTERNAL';

/** ErrorContext is what an error knows about where it happened. All fields are safe to print. */
export interface ErrorContext {
  /** What was being done: `read`, `upload`, `mount`, `manifest`, `tag`, `auth`, `ping`, ... */
  phase?: string;
  /** The image (source or destination reference) concerned. */
  image?: string;
  /** The digest concerned. */
  digest?: string;
  /** The local file concerned. */
  file?: string;
  /** HTTP method of the failed request. */
  method?: string;
  /** The URL of the failed request, already redacted. */
  url?: string;
  /** HTTP status of the failed request. */
  status?: number;
  /** The registry's error code (`BLOB_UNKNOWN`, `DENIED`, ...). */
  registryCode?: string;
  /** The registry (`host[:port]`) a request was made for, when its URL is another host's (a token server). */
  registry?: string;
}

/** MirrorErrorOptions are the optional parts of a {@link MirrorError}. */
export interface MirrorErrorOptions extends ErrorContext {
  /** The underlying error. */
  cause?: unknown;
  /** A short hint on what to do (a flag that fixes it). */
  hint?: string;
}

const CODE_EXIT: Record<ErrorCode, ExitCodeValue> = {
  USAGE: ExitCode.USAGE,
  BAD_INPUT: ExitCode.BAD_INPUT,
  NOT_FOUND: ExitCode.BAD_INPUT,
  CORRUPT_ARCHIVE: ExitCode.BAD_INPUT,
  UNSAFE_ENTRY: ExitCode.BAD_INPUT,
  UNSUPPORTED: ExitCode.BAD_INPUT,
  DIGEST_MISMATCH: ExitCode.BAD_INPUT,
  AUTH: ExitCode.AUTH,
  TLS: ExitCode.TLS,
  NETWORK: ExitCode.NETWORK,
  REGISTRY: ExitCode.FAILURE,
  PARTIAL: ExitCode.PARTIAL,
  LOCKED: ExitCode.LOCKED,
  STOPPED: ExitCode.STOPPED,
  INTERRUPTED: ExitCode.INTERRUPTED,
  INTERNAL: ExitCode.FAILURE,
};

/** MirrorError is the base of every error the tool raises on purpose. */
export class MirrorError extends Error {
  /** The stable code. */
  readonly code: ErrorCode;
  /** Where it happened. */
  readonly context: ErrorContext;
  /** What to do about it, if known. */
  readonly hint: string | undefined;

  constructor(code: ErrorCode, message: string, options: MirrorErrorOptions = {}) {
    const { cause, hint, ...context } = options;
    super(safeText(message), cause === undefined ? undefined : { cause });
    this.name = 'MirrorError';
    this.code = code;
    this.hint = hint;
    this.context = context;
  }

  /** The exit code this error maps to. */
  get exitCode(): ExitCodeValue {
    return CODE_EXIT[this.code];
  }

  /** One line for a person: the message, then the context not already in it, then the hint. */
  describe(): string {
    const c = this.context;
    const parts: string[] = [];
    const add = (label: string, value: string | number | undefined): void => {
      if (value === undefined || value === '') return;
      // Context may hold input (a 100,000-character image name from a bundle): quoted short, as in messages.
      const full = String(value);
      if (this.message.includes(safeText(full)) || this.message.includes(safeText(clipInput(full)))) return;
      const text = safeText(clipInput(full, 200));
      parts.push(label ? `${label} ${text}` : text);
    };
    add('image', c.image);
    add('digest', c.digest);
    add('file', c.file);
    if (c.method !== undefined && c.url !== undefined && !this.message.includes(c.url)) parts.push(`${c.method} ${c.url}`);
    else add('', c.url);
    add('HTTP', c.status);
    add('', c.registryCode);
    let line = this.message;
    if (parts.length > 0) line += ` (${parts.join(', ')})`;
    if (this.hint) line += `; ${this.hint}`;
    return safeText(line);
  }
}

/** isMirrorError tells whether a value is a {@link MirrorError}. */
export function isMirrorError(e: unknown): e is MirrorError {
  return e instanceof MirrorError;
}

/** DigestMismatchError is raised when bytes do not hash or measure to what their descriptor says (a manifest is named so in phase `manifest`). */
export class DigestMismatchError extends MirrorError {
  constructor(
    readonly expected: string,
    readonly actual: string,
    options: MirrorErrorOptions & { expectedSize?: number; actualSize?: number } = {},
  ) {
    const { expectedSize, actualSize, ...rest } = options;
    const what =
      expectedSize !== undefined && actualSize !== undefined && expectedSize !== actualSize
        ? `size ${actualSize} bytes, expected ${expectedSize}`
        : `content hashes to ${actual}`;
    super('DIGEST_MISMATCH', `${rest.phase === 'manifest' ? 'manifest' : 'blob'} ${expected} does not match its digest: ${what}`, { digest: expected, ...rest });
    this.name = 'DigestMismatchError';
  }
}

/** abortError turns an aborted signal into an INTERRUPTED error. */
export function abortError(signal: AbortSignal | undefined): MirrorError {
  const reason: unknown = signal?.reason;
  if (reason instanceof MirrorError) return reason;
  return new MirrorError('INTERRUPTED', 'interrupted', { cause: reason });
}

/** throwIfAborted throws {@link abortError} when the signal is aborted. */
export function throwIfAborted(signal: AbortSignal | undefined): void {
  if (signal?.aborted) throw abortError(signal);
}

const SECRET_QUERY = /^(?:_state|token|access_token|refresh_token|password|sig|signature|x-amz-[a-z-]+|x-goog-[a-z-]+)$/i;

/**
 * redactUrl removes what must never be printed from a URL: user info, and the values of query parameters that carry
 * state or signatures (`_state`, `token`, `X-Amz-*`, ...). Anything that does not parse is returned as `<url>`.
 */
export function redactUrl(url: string | URL): string {
  let u: URL;
  try {
    u = new URL(String(url));
  } catch {
    return '<url>';
  }
  if (u.username || u.password) {
    u.username = '';
    u.password = '';
  }
  for (const key of [...u.searchParams.keys()]) {
    if (SECRET_QUERY.test(key)) u.searchParams.set(key, 'REDACTED');
  }
  return u.toString();
}

/** errorMessage gives a one-line message for any thrown value, fit to print (see {@link safeText}). */
export function errorMessage(e: unknown): string {
  if (e instanceof MirrorError) return e.describe();
  if (e instanceof Error) return safeText(e.message.split('\n')[0] ?? e.name);
  return safeText(String(e));
}
