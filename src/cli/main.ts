/**
 * The entry point of the `mirror` binary: loads the oclif configuration, runs the command, and prints what fails
 * outside a command (an unknown command, a broken installation) in the same one-line style as everything else.
 */
import { fileURLToPath } from 'node:url';
import { Config, Plugin, run } from '@oclif/core';
import { isQuietExit, writeCliError } from './errors.js';
import { manifestIsStale } from './manifest.js';

/** The package root (this file is dist/src/cli/main.js). */
const PACKAGE_ROOT = fileURLToPath(new URL('../../../', import.meta.url));

/** loadConfig loads oclif's configuration: from the manifest when it is current, else from every command (see ./manifest.ts). */
async function loadConfig(root: string): Promise<Config> {
  if (!manifestIsStale(PACKAGE_ROOT)) return Config.load(root);
  const plugin = new Plugin({ root: PACKAGE_ROOT, isRoot: true, type: 'core', ignoreManifest: true });
  await plugin.load();
  return Config.load({ root, plugins: new Map([[plugin.name, plugin]]) });
}

/** main runs `mirror ARGV...`; `root` is the file URL or path of the package (bin/run.js). */
export async function main(argv: string[], root: string): Promise<void> {
  let config: Config | undefined;
  try {
    config = await loadConfig(root.startsWith('file:') ? fileURLToPath(root) : root);
    // Nothing to flush: Node writes out what is buffered for stdout before the process ends by itself.
    await run(argv, config);
  } catch (e) {
    if (isQuietExit(e)) return;
    writeCliError(e, { commandIds: config?.commandIDs }, { json: argv.includes('--json'), debug: argv.includes('--debug') });
  }
}
