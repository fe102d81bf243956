/**
 * Typed events. Library code never prints: it calls an {@link EventSink}; only `src/cli` renders events
 * (bars on a TTY, lines otherwise, JSON lines with `--json`). Events never carry secrets.
 */

/** BlobAction says what happened to a blob at a destination repository. */
export type BlobAction = 'uploaded' | 'mounted' | 'skipped';

/** ImageStatus is the outcome of one image (`planned`: a dry run would copy it; `skipped-conflict`: another image took its name). */
export type ImageStatus = 'pushed' | 'skipped' | 'skipped-conflict' | 'planned' | 'failed';

/** ProgressEvent is everything the library reports while it works. */
export type ProgressEvent =
  /** The plan is known: how many images and (when known) bytes. */
  | { type: 'plan'; images: number; bytes?: number | undefined }
  /** A phase of the run begins (`read`, `finish`, `reread`, ...). */
  | { type: 'phase'; phase: string; detail?: string | undefined }
  /** Bytes of a blob were sent (or skipped over) — a delta, for progress bars. */
  | { type: 'bytes'; bytes: number }
  /** Compressed source bytes consumed — a delta, for progress bars of a bundle read. */
  | { type: 'source-bytes'; bytes: number; total?: number | undefined }
  /** A blob reached a destination repository. */
  | { type: 'blob'; digest: string; size: number; repository: string; action: BlobAction }
  /** A manifest was put (or found present). */
  | { type: 'manifest'; reference: string; digest: string; action: 'pushed' | 'skipped' }
  /** One image is done. */
  | { type: 'image'; source: string; destination: string; digest?: string | undefined; status: ImageStatus; error?: string | undefined }
  /** A request is retried. */
  | { type: 'retry'; method: string; url: string; attempt: number; delayMs: number; reason: string }
  /** Something the user should know that is not an error. */
  | { type: 'warning'; message: string }
  /** Detail shown with `--debug` (credential source used, requests). Never a secret. */
  | { type: 'debug'; message: string };

/** EventSink receives events. It must not throw. */
export type EventSink = (event: ProgressEvent) => void;

/** noEvents is a sink that drops everything. */
export const noEvents: EventSink = () => {};
