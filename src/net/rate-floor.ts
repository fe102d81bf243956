/**
 * A floor under the speed of a transfer. The idle timeouts catch a peer that goes silent; a peer that keeps sending
 * a byte every few seconds never trips them and would hold a copy or a cron run forever. A transfer that, over the
 * length of its idle timeout, moves less than {@link DEFAULT_MIN_BYTES_PER_SECOND} on average is cut (and retried,
 * resuming where a registry allows it), as curl's `--speed-limit`/`--speed-time` do.
 *
 * Only the time spent waiting on the peer counts: the time the tool itself holds a stream back (a slow destination
 * pausing the source it reads from, say) is not charged to that peer.
 */

/** DEFAULT_MIN_BYTES_PER_SECOND is the slowest average rate a transfer may keep over its timeout window: 1 KiB/s. */
export const DEFAULT_MIN_BYTES_PER_SECOND = 1024;

/** SLOW_TRANSFER_CODE is the `code` of a {@link SlowTransferError}. */
export const SLOW_TRANSFER_CODE = 'MIRROR_SLOW_TRANSFER';

/** SlowTransferError says a peer sent a body more slowly than the floor allows. */
export class SlowTransferError extends Error {
  readonly code = SLOW_TRANSFER_CODE;

  constructor(
    /** Bytes moved in the window. */
    readonly bytes: number,
    /** Time spent waiting on the peer in the window, ms. */
    readonly waitedMs: number,
    /** The floor, bytes per second. */
    readonly minBytesPerSecond: number,
  ) {
    super(
      `the answer came at ${describeRate((bytes * 1000) / Math.max(1, waitedMs))} ` +
        `over ${Math.round(waitedMs / 100) / 10} s, under the ${describeRate(minBytesPerSecond)} a transfer must keep`,
    );
    this.name = 'SlowTransferError';
  }
}

/** describeRate writes bytes per second for people (`12 B/s`, `1 KiB/s`, `3.5 MiB/s`). */
export function describeRate(bytesPerSecond: number): string {
  if (bytesPerSecond < 1024) return `${Math.round(bytesPerSecond)} B/s`;
  if (bytesPerSecond < 1024 * 1024) return `${Math.round((bytesPerSecond / 1024) * 10) / 10} KiB/s`;
  return `${Math.round((bytesPerSecond / 1024 / 1024) * 10) / 10} MiB/s`;
}

/** RateFloorOptions sets a {@link RateFloor}. */
export interface RateFloorOptions {
  /** The window over which the average is taken, ms of waiting on the peer (the idle timeout). */
  windowMs: number;
  /** The floor. Default: {@link DEFAULT_MIN_BYTES_PER_SECOND}; 0 turns the check off. */
  minBytesPerSecond?: number | undefined;
}

/**
 * RateFloor judges one transfer: each chunk is recorded with the time spent waiting for it, and once the waits add
 * up to a window, the bytes of that window must reach the floor; then a new window begins.
 */
export class RateFloor {
  private readonly windowMs: number;
  private readonly minBytesPerSecond: number;
  private waitedMs = 0;
  private bytes = 0;

  constructor(options: RateFloorOptions) {
    this.windowMs = Math.max(1, options.windowMs);
    this.minBytesPerSecond = Math.max(0, options.minBytesPerSecond ?? DEFAULT_MIN_BYTES_PER_SECOND);
  }

  /** record adds a chunk of `bytes` that took `waitedMs` of waiting; throws a {@link SlowTransferError} below the floor. */
  record(bytes: number, waitedMs: number): void {
    if (this.minBytesPerSecond === 0) return;
    this.bytes += bytes;
    this.waitedMs += Math.max(0, waitedMs);
    if (this.waitedMs < this.windowMs) return;
    if (this.bytes * 1000 < this.minBytesPerSecond * this.waitedMs) {
      throw new SlowTransferError(this.bytes, this.waitedMs, this.minBytesPerSecond);
    }
    this.bytes = 0;
    this.waitedMs = 0;
  }
}
