/**
 * The entry point of the `mirror` binary: loads the oclif configuration, runs the command, and prints what fails
 * outside a command (an unknown command, a broken installation) in the same one-line style as everything else.
 */
import { fileURLToPath } from 'node:url';
import { Config, run } from '@oclif/core';
import { isQuietExit, writeCliError } from './errors.js';

/** main runs `mirror ARGV...`; `root` is the file URL or path of the package (bin/run.js). */
export async function main(argv: string[], root: string): Promise<void> {
  let config: Config | undefined;
  try {
    config = await Config.load(root.startsWith('file:') ? fileURLToPath(root) : root);
    // Nothing to flush: Node writes out what is buffered for stdout before the process ends by itself.
    await run(argv, config);
  } catch (e) {
    if (isQuietExit(e)) return;
    writeCliError(e, { commandIds: config?.commandIDs }, { json: argv.includes('--json'), debug: argv.includes('--debug') });
  }
}
