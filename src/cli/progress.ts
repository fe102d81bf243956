/**
 * Renders library events for people: a progress bar on a TTY (bytes read and sent, images done), plain lines
 * otherwise. With `--json` nothing is rendered while the run goes; the command prints one JSON document at the end.
 */
import cliProgress from 'cli-progress';
import type { EventSink, ProgressEvent } from '../events/index.js';
import { formatBytes, shortDigest } from './format.js';
import { safeLine } from './safe-output.js';

/** RendererOptions tune {@link ProgressRenderer}. */
export interface RendererOptions {
  /** Print nothing while running (`--json`). */
  quiet: boolean;
  /** Show debug events and retries. */
  debug: boolean;
  /** Draw a bar (stderr is a TTY). */
  tty: boolean;
  /** Where to write. Default: process.stderr. */
  out?: NodeJS.WritableStream;
}

/** ProgressRenderer turns events into output; `sink` is handed to library calls. */
export class ProgressRenderer {
  private readonly out: NodeJS.WritableStream;
  private bar: cliProgress.SingleBar | undefined;
  private readBytes = 0;
  private readTotal = 0;
  private sentBytes = 0;
  private imagesDone = 0;
  private imagesTotal = 0;
  private phase = 'read';
  /** Counts kept for the summary. */
  readonly counts = { retries: 0, warnings: 0 };

  constructor(private readonly options: RendererOptions) {
    this.out = options.out ?? process.stderr;
  }

  /** sink is the EventSink to pass to the library. */
  readonly sink: EventSink = (e) => this.onEvent(e);

  private line(text: string): void {
    text = safeLine(text); // secrets out, control characters escaped (src/errors/sanitize.ts)
    if (this.options.quiet) return;
    if (this.bar) {
      // Print above the bar.
      this.bar.stop();
      this.out.write(`${text}\n`);
      this.startBar();
    } else {
      this.out.write(`${text}\n`);
    }
  }

  private startBar(): void {
    if (!this.options.tty || this.options.quiet) return;
    this.bar = new cliProgress.SingleBar(
      {
        stream: this.out as NodeJS.WriteStream,
        format: '{phase} [{bar}] {percentage}% | read {read} | sent {sent} | images {done}/{images}',
        barsize: 24,
        hideCursor: true,
        clearOnComplete: true,
        fps: 5,
      },
      cliProgress.Presets.shades_classic,
    );
    this.bar.start(Math.max(1, this.readTotal), Math.min(this.readBytes, this.readTotal), this.payload());
    this.update();
  }

  private payload(): Record<string, string | number> {
    return {
      phase: this.phase.padEnd(7),
      read: this.readTotal ? `${formatBytes(this.readBytes)}/${formatBytes(this.readTotal)}` : formatBytes(this.readBytes),
      sent: formatBytes(this.sentBytes),
      done: this.imagesDone,
      images: this.imagesTotal || '?',
    };
  }

  private update(): void {
    if (!this.bar) return;
    if (this.phase === 'read' || this.phase === 'reread') this.bar.update(Math.min(this.readBytes, this.readTotal), this.payload());
    else {
      this.bar.setTotal(Math.max(1, this.imagesTotal));
      this.bar.update(this.imagesDone, this.payload());
    }
  }

  private onEvent(e: ProgressEvent): void {
    switch (e.type) {
      case 'phase':
        this.phase = e.phase;
        if (e.phase === 'read') {
          if (!this.options.tty) this.line(`reading ${e.detail ?? ''}`.trim());
        } else if (e.phase === 'reread') {
          this.readBytes = 0;
          this.line(`reading the bundle again for ${e.detail ?? 'blobs whose upload was cut'}`);
        } else if (e.phase === 'finish' && !this.options.tty) {
          this.line('bundle read; linking blobs and writing manifests');
        }
        this.update();
        return;
      case 'source-bytes':
        this.readBytes += e.bytes;
        if (e.total !== undefined) this.readTotal = e.total;
        if (!this.bar && this.options.tty && !this.options.quiet) this.startBar();
        this.update();
        return;
      case 'bytes':
        this.sentBytes += e.bytes;
        this.update();
        return;
      case 'plan':
        this.imagesTotal = e.images;
        this.update();
        return;
      case 'image':
        this.imagesDone++;
        if (e.status === 'failed') this.line(`FAILED  ${e.source}${e.destination ? ` -> ${e.destination}` : ''}: ${e.error ?? ''}`);
        else this.line(`${e.status === 'pushed' ? 'pushed ' : 'present'} ${e.source} -> ${e.destination} ${shortDigest(e.digest)}`);
        this.update();
        return;
      case 'retry':
        this.counts.retries++;
        if (this.options.debug) this.line(`debug: retry ${e.attempt} of ${e.method} ${e.url} in ${e.delayMs} ms: ${e.reason}`);
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

  /** stop removes the bar. */
  stop(): void {
    this.bar?.stop();
    this.bar = undefined;
  }
}
