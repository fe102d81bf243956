/** Report files: written whole, beside the target under a name nobody can plant in advance, never world-writable. */
import assert from 'node:assert/strict';
import { lstatSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { REPORT_MODE, writeReport } from '../../src/copy/report.js';
import { ExitCode } from '../../src/errors/index.js';
import { ReportWriter } from '../../src/sync/report.js';
import type { SyncRunResult } from '../../src/sync/run.js';

describe('report files', () => {
  let dir: string;
  let umask: number;
  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), 'mirror-report-'));
    umask = process.umask(0);
  });
  afterEach(() => {
    process.umask(umask);
    rmSync(dir, { recursive: true, force: true });
  });

  /** plant puts a symbolic link at every name the writers used to write through (FILE.tmp-PID), to a victim file. */
  const plant = (file: string): string => {
    const victim = join(dir, 'victim.txt');
    writeFileSync(victim, 'precious\n');
    symlinkSync(victim, `${file}.tmp-${process.pid}`);
    return victim;
  };

  it('writeReport (push, copy): a link planted at the old temporary name is not written through; mode 0644 under umask 000', async () => {
    const file = join(dir, 'report.json');
    const victim = plant(file);
    await writeReport(file, { version: 2, images: [] });
    assert.equal(readFileSync(victim, 'utf8'), 'precious\n');
    assert.ok(!lstatSync(file).isSymbolicLink());
    assert.deepEqual(JSON.parse(readFileSync(file, 'utf8')), { version: 2, images: [] });
    assert.equal(statSync(file).mode & 0o777, REPORT_MODE);
    assert.deepEqual(readdirSync(dir).filter((n) => n.endsWith('.tmp')), [], 'no temporary file left');
  });

  it('the sync report: the same', async () => {
    const file = join(dir, 'sync.json');
    const victim = plant(file);
    const w = await ReportWriter.open(file, { config: 'c.yaml', format: 'native', destination: 'r', dryRun: false, started: 'now' });
    const counts = { copied: 0, skipped: 0, failed: 0, copy: 0, skip: 0, pruned: 0, pruneKept: 0, pruneFailed: 0 };
    const result: SyncRunResult = { status: 'ok', exitCode: ExitCode.OK, dryRun: false, counts, failures: [], pruned: [], bytes: 0, durationMs: 1 };
    await w.finish(result, []);
    assert.equal(readFileSync(victim, 'utf8'), 'precious\n');
    assert.ok(!lstatSync(file).isSymbolicLink());
    assert.equal((JSON.parse(readFileSync(file, 'utf8')) as { kind: string }).kind, 'mirror-sync-report');
    assert.equal(statSync(file).mode & 0o777, REPORT_MODE);
    assert.deepEqual(readdirSync(dir).filter((n) => n.endsWith('.tmp')), []);
  });
});
