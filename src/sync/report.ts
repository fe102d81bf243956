/**
 * The `--report FILE` of a sync, written as the run goes: the header, then each image record as it finishes, then
 * what was pruned and the summary, so memory stays flat however many images there are. The file appears whole or
 * not at all (written beside it, then renamed).
 */
import { createWriteStream, type WriteStream } from 'node:fs';
import { rename, unlink } from 'node:fs/promises';
import { REPORT_MODE, reportTempPath } from '../copy/report.js';
import { MirrorError } from '../errors/index.js';
import type { PruneAction } from './prune.js';
import type { ImageRecord, SyncRunResult } from './run.js';

/** SYNC_REPORT_VERSION is the version of the sync report format. */
export const SYNC_REPORT_VERSION = 1;

/** SyncReportHeader is what a report says before the images. */
export interface SyncReportHeader {
  config: string;
  format: 'skopeo' | 'native';
  destination: string;
  dryRun: boolean;
  shard?: string | undefined;
  started: string;
}

/** ReportWriter streams a report to a file. */
export class ReportWriter {
  private readonly tmp: string;
  private readonly out: WriteStream;
  private images = 0;
  private failed: Error | undefined;

  private constructor(private readonly file: string) {
    this.tmp = reportTempPath(file);
    this.out = createWriteStream(this.tmp, { flags: 'wx', mode: REPORT_MODE });
    this.out.on('error', (e) => (this.failed = e));
  }

  /** open starts a report (a file that cannot be written fails here, before any work). */
  static async open(file: string, header: SyncReportHeader): Promise<ReportWriter> {
    const w = new ReportWriter(file);
    await new Promise<void>((resolve, reject) => {
      w.out.once('open', () => resolve());
      w.out.once('error', (e) => reject(new MirrorError('USAGE', `cannot write the report ${file}: ${(e as NodeJS.ErrnoException).code ?? e.message}`, { file })));
    });
    w.out.write(`{\n"version": ${SYNC_REPORT_VERSION},\n"kind": "mirror-sync-report",\n"header": ${JSON.stringify(header)},\n"images": [`);
    return w;
  }

  /** image adds one image record. */
  image(r: ImageRecord): void {
    this.out.write(`${this.images++ === 0 ? '\n' : ',\n'}${JSON.stringify(r)}`);
  }

  /** finish writes what was pruned and the summary, and puts the file in place. */
  async finish(result: SyncRunResult, pruned: readonly PruneAction[]): Promise<void> {
    const summary = {
      status: result.status,
      exitCode: result.exitCode,
      counts: result.counts,
      bytes: result.bytes,
      durationMs: result.durationMs,
      blobs: result.blobs,
      ...(result.stopped ? { stopped: result.stopped } : {}),
      ...(result.fatal ? { error: result.fatal.describe(), errorCode: result.fatal.code } : {}),
      ...(result.tookOver ? { tookOverLock: result.tookOver } : {}),
    };
    this.out.write(`\n],\n"pruned": ${JSON.stringify(pruned)},\n"summary": ${JSON.stringify(summary)}\n}\n`);
    await new Promise<void>((resolve) => this.out.end(() => resolve()));
    if (this.failed !== undefined) {
      await unlink(this.tmp).catch(() => {});
      throw new MirrorError('BAD_INPUT', `cannot write the report ${this.file}: ${this.failed.message}`, { file: this.file });
    }
    await rename(this.tmp, this.file);
  }

  /** abandon drops a report that will not be finished. */
  async abandon(): Promise<void> {
    await new Promise<void>((resolve) => this.out.end(() => resolve()));
    await unlink(this.tmp).catch(() => {});
  }
}
