/**
 * `--report FILE` is checked before any work starts (a report that cannot be written must not be found out after
 * an hour of pushing); `--report -` means standard output.
 */
import { constants } from 'node:fs';
import { access, stat } from 'node:fs/promises';
import { dirname, resolve } from 'node:path';
import { MirrorError } from '../errors/index.js';

/** REPORT_STDOUT is the `--report` value that writes the report to standard output. */
export const REPORT_STDOUT = '-';

/**
 * checkOutputPath fails with a USAGE error naming the file when an output file (`--report FILE`, or the one `flag`
 * names: `--digestfile`) could not be written: a directory, a file without write permission, a directory that does
 * not exist or cannot be written (a report is written to a temporary file beside it, then renamed). Nothing is
 * created.
 */
export async function checkOutputPath(file: string | undefined, flag = '--report'): Promise<void> {
  if (file === undefined || (file === REPORT_STDOUT && flag === '--report')) return;
  const bad = (why: string): MirrorError =>
    new MirrorError('USAGE', `${flag} ${file}: ${why}`, { file, hint: `name a file in a writable directory${flag === '--report' ? ', or --report - for stdout' : ''}` });
  if (file === '') throw bad('empty file name');
  const existing = await stat(file).catch(() => undefined);
  if (existing?.isDirectory()) throw bad('is a directory');
  const dir = dirname(resolve(file));
  const parent = await stat(dir).catch(() => undefined);
  if (!parent) throw bad('no such directory');
  if (!parent.isDirectory()) throw bad(`${dir} is not a directory`);
  try {
    await access(dir, constants.W_OK | constants.X_OK);
  } catch {
    throw bad(`directory ${dir} is not writable`);
  }
  if (existing) {
    try {
      await access(file, constants.W_OK);
    } catch {
      throw bad('is not writable');
    }
  }
}
