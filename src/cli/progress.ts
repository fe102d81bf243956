/**
 * Renders library events for people. On a terminal (not `TERM=dumb`): a two-line bar that fits the terminal's width
 * (80 columns included) with bytes read of the bundle's size, bytes sent, the send rate, elapsed time and ETA, images
 * done of their total, and retries; lines (images finished, warnings, retries) print above it. Without a terminal:
 * plain lines, and a progress line every {@link PLAIN_PROGRESS_INTERVAL_MS}. With `--json` or `--quiet` nothing
 * is rendered while the run goes.
 */
import cliProgress from 'cli-progress';
import type { EventSink, ProgressEvent } from '../events/index.js';
import { clip, clipStart, formatBytes, formatClock, formatRate, shortDigest, statusText, subjectAnd } from './format.js';
import { safeLine } from './safe-output.js';

/** PLAIN_PROGRESS_INTERVAL_MS is how often a progress line is printed without a terminal. */
export const PLAIN_PROGRESS_INTERVAL_MS = 10_000;
/** RATE_WINDOW_MS is the window the send rate and the ETA are measured over. */
export const RATE_WINDOW_MS = 5_000;
/** ETA_MIN_MS: no ETA is shown before the run has gone this long (early rates mislead). */
export const ETA_MIN_MS = 2_000;
/** DEFAULT_COLUMNS is the width assumed when the terminal does not say. */
export const DEFAULT_COLUMNS = 80;
/** BAR_FPS is how often the bar is redrawn per second. */
export const BAR_FPS = 5;

/** RendererOptions tune {@link ProgressRenderer}. */
export interface RendererOptions {
  /** Print nothing while running (`--json`, `--quiet`). */
  quiet: boolean;
  /** Show debug events and full retry detail. */
  debug: boolean;
  /** Draw a bar: the output is a terminal that can move its cursor (see {@link canDrawBar}). */
  tty: boolean;
  /** Where to write. Default: process.stderr. */
  out?: NodeJS.WritableStream;
  /** Progress line interval without a terminal; 0 for none. Default {@link PLAIN_PROGRESS_INTERVAL_MS}. */
  plainIntervalMs?: number | undefined;
  /** The clock. Default: Date.now. */
  now?: () => number;
}

/** canDrawBar tells whether a progress bar can be drawn on `stream`: a terminal, and not `TERM=dumb`. */
export function canDrawBar(stream: { isTTY?: boolean }, env: NodeJS.ProcessEnv = process.env): boolean {
  return stream.isTTY === true && env['TERM'] !== 'dumb';
}

/** ProgressSnapshot is what the bar shows at one moment. */
export interface ProgressSnapshot {
  /** `read`, `reread` or `finish`. */
  phase: string;
  /** Compressed bytes of the bundle read so far (in this pass). */
  readBytes: number;
  /** The bundle's size, when known. */
  readTotal: number | undefined;
  /** Blob bytes sent. */
  sentBytes: number;
  /** The send rate over the last {@link RATE_WINDOW_MS} (bytes/s), when measured. */
  sendRate: number | undefined;
  imagesDone: number;
  /** Images in the bundle, once known. */
  imagesTotal: number | undefined;
  retries: number;
  elapsedMs: number;
  /** Time left to read the bundle, when it can be told. */
  etaMs: number | undefined;
}

const PHASE_LABEL: Record<string, string> = { read: 'reading', reread: 're-reading', finish: 'finishing' };
const LABEL_WIDTH = 11;
const MIN_BAR = 8;
const MAX_BAR = 40;
/** REST_RESERVE is the width kept after the bar: ` 100%  1023 GiB of 1023 GiB  ETA 99:59:59`. */
const REST_RESERVE = 41;

/**
 * progressLines gives the two lines of the bar for a snapshot, each at most `columns - 1` characters (the last
 * column is left free so no terminal wraps the line). Line 1: phase, bar, percent, amount, ETA; line 2: bytes sent
 * and rate, elapsed time, images, retries.
 */
export function progressLines(s: ProgressSnapshot, columns: number): [string, string] {
  const width = Math.max(20, columns) - 1;
  const reading = s.phase !== 'finish';
  const fraction = reading
    ? s.readTotal
      ? Math.min(1, s.readBytes / s.readTotal)
      : undefined
    : s.imagesTotal
      ? Math.min(1, s.imagesDone / s.imagesTotal)
      : undefined;
  const label = (PHASE_LABEL[s.phase] ?? s.phase).padEnd(LABEL_WIDTH - 1);
  const amount = reading
    ? s.readTotal
      ? `${formatBytes(s.readBytes)} of ${formatBytes(s.readTotal)}`
      : `${formatBytes(s.readBytes)} read`
    : `images ${s.imagesDone} of ${s.imagesTotal ?? '?'}`;
  const eta = reading && s.etaMs !== undefined ? `  ETA ${formatClock(s.etaMs)}` : '';
  let line1: string;
  if (fraction === undefined) {
    line1 = `${label} ${amount}${eta}`;
  } else {
    const pct = `${Math.floor(fraction * 100)}%`.padStart(4);
    const rest = ` ${pct}  ${amount}${eta}`;
    // The bar keeps its width while the figures after it grow (room for the widest amount and ETA is kept).
    const barWidth = Math.min(MAX_BAR, width - label.length - 1 - 2 - Math.max(rest.length, REST_RESERVE));
    if (barWidth >= MIN_BAR) {
      const filled = Math.round(fraction * barWidth);
      line1 = `${label} [${'='.repeat(filled)}${' '.repeat(barWidth - filled)}]${rest}`;
    } else {
      line1 = `${label}${rest}`;
    }
  }
  const rate = s.sendRate === undefined || s.sentBytes === 0 ? undefined : formatRate(s.sendRate, 1000);
  const parts = [
    `sent ${formatBytes(s.sentBytes)}${rate ? ` at ${rate}` : ''}`,
    `elapsed ${formatClock(s.elapsedMs)}`,
    `images ${s.imagesDone}/${s.imagesTotal ?? '?'}`,
    ...(s.retries > 0 ? [`retries ${s.retries}`] : []),
  ];
  let line2 = `${' '.repeat(LABEL_WIDTH)}${parts.join('  ')}`;
  if (line2.length > width) line2 = parts.join('  ');
  if (line2.length > width) line2 = parts.join(' ');
  return [clip(line1, width), clip(line2, width)];
}

/** RateMeter measures a byte count's rate over a sliding window. */
class RateMeter {
  private readonly samples: Array<{ t: number; v: number }> = [];

  constructor(private readonly windowMs: number) {}

  /** add records the counter's value at time `t`. */
  add(t: number, v: number): void {
    const last = this.samples[this.samples.length - 1];
    if (last && last.t === t) last.v = v;
    else this.samples.push({ t, v });
    while (this.samples.length > 2 && this.samples[1]!.t <= t - this.windowMs) this.samples.shift();
  }

  /** rate gives bytes per second over the window, once it spans at least a second. */
  rate(): number | undefined {
    const first = this.samples[0];
    const last = this.samples[this.samples.length - 1];
    if (!first || !last || last.t - first.t < 1000) return undefined;
    return ((last.v - first.v) * 1000) / (last.t - first.t);
  }

  reset(): void {
    this.samples.length = 0;
  }
}

/** ProgressRenderer turns events into output; `sink` is handed to library calls. */
export class ProgressRenderer {
  private readonly out: NodeJS.WritableStream;
  private readonly now: () => number;
  private readonly started: number;
  private bars: cliProgress.MultiBar | undefined;
  private plainTimer: NodeJS.Timeout | undefined;
  private readBytes = 0;
  private readTotal: number | undefined;
  private sentBytes = 0;
  private imagesDone = 0;
  private imagesTotal: number | undefined;
  private phase = 'read';
  private readonly sendMeter = new RateMeter(RATE_WINDOW_MS);
  private readonly readMeter = new RateMeter(RATE_WINDOW_MS);
  private stopped = false;
  /** Counts kept for the summary. */
  readonly counts = { retries: 0, warnings: 0 };

  constructor(private readonly options: RendererOptions) {
    this.out = options.out ?? process.stderr;
    this.now = options.now ?? Date.now;
    this.started = this.now();
  }

  /** sink is the EventSink to pass to the library. */
  readonly sink: EventSink = (e) => this.onEvent(e);

  /** snapshot gives what the bar shows now. */
  snapshot(): ProgressSnapshot {
    const t = this.now();
    this.sendMeter.add(t, this.sentBytes);
    this.readMeter.add(t, this.readBytes);
    const elapsedMs = t - this.started;
    const readRate = this.readMeter.rate();
    const reading = this.phase === 'read' || this.phase === 'reread';
    const etaMs =
      reading && this.readTotal !== undefined && readRate !== undefined && readRate > 0 && elapsedMs >= ETA_MIN_MS
        ? (Math.max(0, this.readTotal - this.readBytes) / readRate) * 1000
        : undefined;
    return {
      phase: this.phase,
      readBytes: this.readBytes,
      readTotal: this.readTotal,
      sentBytes: this.sentBytes,
      sendRate: this.sendMeter.rate(),
      imagesDone: this.imagesDone,
      imagesTotal: this.imagesTotal,
      retries: this.counts.retries,
      elapsedMs,
      etaMs,
    };
  }

  /** line prints one line (above the bar when one is drawn). */
  private line(raw: string): void {
    if (this.options.quiet) return;
    const text = safeLine(raw); // secrets out, control characters escaped (src/errors/sanitize.ts)
    if (this.bars) {
      // Clear the bar, print the line where it was (long lines wrap as usual), and draw the bar again below it.
      this.bars.stop();
      this.bars = undefined;
      this.out.write(`${text}\n`);
      this.start();
    } else {
      this.out.write(`${text}\n`);
    }
  }

  private columns(): number {
    const c = (this.out as { columns?: number }).columns;
    return typeof c === 'number' && c > 0 ? c : DEFAULT_COLUMNS;
  }

  private start(): void {
    if (this.stopped || this.options.quiet) return;
    if (this.options.tty) {
      if (this.bars) return;
      let current: [string, string] = ['', ''];
      const bars = new cliProgress.MultiBar({
        stream: this.out as NodeJS.WriteStream,
        fps: BAR_FPS,
        hideCursor: true,
        clearOnComplete: true,
        // The bar's lines fit the width by construction; lines printed between two bars wrap as usual.
        linewrap: true,
        // The first line computes both; the second shows what the first computed, so they always agree.
        format: () => {
          current = progressLines(this.snapshot(), this.columns());
          return current[0];
        },
      });
      bars.create(1, 0);
      bars.create(1, 0, {}, { format: () => current[1] });
      this.bars = bars;
      return;
    }
    const interval = this.options.plainIntervalMs ?? PLAIN_PROGRESS_INTERVAL_MS;
    if (interval > 0 && this.plainTimer === undefined) {
      this.plainTimer = setInterval(() => this.out.write(`${this.plainProgress()}\n`), interval);
      this.plainTimer.unref();
    }
  }

  /** plainProgress is the progress line printed without a terminal. */
  plainProgress(): string {
    const s = this.snapshot();
    const read = s.readTotal ? `${formatBytes(s.readBytes)} of ${formatBytes(s.readTotal)}` : formatBytes(s.readBytes);
    const rate = s.sendRate === undefined ? '' : ` at ${formatRate(s.sendRate, 1000)}`;
    const pass = s.phase === 'finish' ? 'bundle read' : `${s.phase === 'reread' ? 're-read' : 'read'} ${read}`;
    return (
      `progress: ${pass}, sent ${formatBytes(s.sentBytes)}${rate}, elapsed ${formatClock(s.elapsedMs)}` +
      `${s.etaMs === undefined ? '' : `, ETA ${formatClock(s.etaMs)}`}, images ${s.imagesDone}/${s.imagesTotal ?? '?'}` +
      `${s.retries > 0 ? `, retries ${s.retries}` : ''}`
    );
  }

  private onEvent(e: ProgressEvent): void {
    switch (e.type) {
      case 'phase':
        this.phase = e.phase;
        if (e.phase === 'read') {
          if (!this.options.tty) this.line(`reading ${e.detail ?? ''}`.trim());
          this.start();
        } else if (e.phase === 'reread') {
          this.readBytes = 0;
          this.readMeter.reset();
          this.line(`reading the bundle again for ${e.detail ?? 'blobs whose upload was cut'}`);
        } else if (e.phase === 'finish' && !this.options.tty) {
          this.line('bundle read; linking blobs and writing manifests');
        } else if (e.phase === 'decompress') {
          // A compressed archive source is decompressed into a temporary file first: the user is told where.
          this.line(e.detail ?? 'decompressing the archive');
          this.start();
        } else if (e.phase === 'compress' && this.options.debug) {
          this.line(`debug: ${e.detail ?? 'compressing a layer'}`);
        }
        return;
      case 'source-bytes':
        this.readBytes += e.bytes;
        if (e.total !== undefined) this.readTotal = e.total;
        this.start();
        return;
      case 'bytes':
        this.sentBytes += e.bytes;
        return;
      case 'plan':
        this.imagesTotal = e.images;
        return;
      case 'image': {
        this.imagesDone++;
        const where = e.destination ? ` -> ${e.destination}` : '';
        if (e.status === 'failed') this.line(`${statusText('failed')}: ${subjectAnd(`${e.source}${where}`, e.error)}`);
        else this.line(`${statusText(e.status)}: ${e.source}${where} (${shortDigest(e.digest)})`);
        return;
      }
      case 'retry':
        this.counts.retries++;
        if (this.options.debug) this.line(`debug: retry ${e.attempt} of ${e.method} ${e.url} in ${e.delayMs} ms: ${e.reason}`);
        else this.line(`retry ${e.attempt} in ${(e.delayMs / 1000).toFixed(1)}s: ${clip(e.reason, 60)} (${e.method} ${shortUrl(e.url)})`);
        return;
      case 'warning':
        this.counts.warnings++;
        this.line(`warning: ${e.message}`);
        return;
      case 'debug':
        if (this.options.debug) this.line(`debug: ${e.message}`);
        return;
      case 'blob':
        if (this.options.debug) this.line(`debug: blob ${shortDigest(e.digest)} ${e.action} in ${e.repository || '(layout)'}`);
        return;
      case 'manifest':
        return;
    }
  }

  /** stop removes the bar and stops the progress lines; later events print plain lines. */
  stop(): void {
    this.stopped = true;
    this.bars?.stop();
    this.bars = undefined;
    if (this.plainTimer !== undefined) clearInterval(this.plainTimer);
    this.plainTimer = undefined;
  }
}

/** shortUrl gives a request URL for a retry line: the path after /v2/, no upload id or query, at most 48 characters. */
function shortUrl(url: string): string {
  const path = url
    .replace(/^[a-z]+:\/\/[^/]*/i, '')
    .replace(/[?#].*$/, '')
    .replace(/^\/v2\//, '')
    .replace(/\/blobs\/uploads\/[^/]+$/, '/blobs/uploads/')
    .replace(/(sha256(?::|%3A)[a-f0-9]{12})[a-f0-9]{52}/gi, '$1');
  return clipStart(path || '/', 48);
}
