/**
 * The entry point of the `mirror` binary: loads the oclif configuration, runs the command, and prints what fails
 * outside a command (an unknown command, a broken installation) in the same one-line style as everything else.
 */
import { readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Config, Plugin, run } from '@oclif/core';
import { isQuietExit, writeCliError } from './errors.js';
import { manifestIsStale } from './manifest.js';

/** packageRoot gives the package root from the path of its `bin/run.js` (or of any file one folder below the root). */
function packageRoot(runFile: string): string {
  return dirname(dirname(runFile));
}

/** MainOptions tune {@link main}. */
export interface MainOptions {
  /**
   * The one-file bundle this code runs from (`dist/mirror.js`, relative to the package root), which exports every
   * command as `COMMANDS`: oclif takes the commands from it instead of importing `dist/src/commands`. Default: none.
   */
  bundle?: string | undefined;
}

/**
 * loadConfig loads oclif's configuration: from the manifest when it is current, else from every command (see
 * ./manifest.ts); the commands from the bundle when running from one.
 */
async function loadConfig(root: string, options: MainOptions): Promise<Config> {
  const packageDir = packageRoot(root);
  const stale = manifestIsStale(packageDir);
  if (!stale && options.bundle === undefined) return Config.load(root);
  let pjson: ConstructorParameters<typeof Plugin>[0]['pjson'];
  if (options.bundle !== undefined && !stale) {
    const own = JSON.parse(readFileSync(join(packageDir, 'package.json'), 'utf8')) as NonNullable<typeof pjson>;
    pjson = { ...own, oclif: { ...own.oclif, commands: { strategy: 'explicit', target: options.bundle, identifier: 'COMMANDS' } } };
  }
  const plugin = new Plugin({ root: packageDir, isRoot: true, type: 'core', ignoreManifest: stale, pjson });
  await plugin.load();
  return Config.load({ root, plugins: new Map([[plugin.name, plugin]]) });
}

/** main runs `mirror ARGV...`; `root` is the file URL or path of the package's `bin/run.js`. */
export async function main(argv: string[], root: string, options: MainOptions = {}): Promise<void> {
  let config: Config | undefined;
  try {
    config = await loadConfig(root.startsWith('file:') ? fileURLToPath(root) : root, options);
    // Nothing to flush: Node writes out what is buffered for stdout before the process ends by itself.
    await run(argv, config);
  } catch (e) {
    if (isQuietExit(e)) return;
    writeCliError(e, { commandIds: config?.commandIDs }, { json: argv.includes('--json'), debug: argv.includes('--debug') });
  }
}
