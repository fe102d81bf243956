/**
 * The oclif manifest (`oclif.manifest.json`, written by `npm run build`: see scripts/oclif-manifest.mjs) lets oclif
 * import only the command that runs. One older than the compiled commands (a bare `tsc` since) could miss a command or
 * a flag, so it is then ignored and oclif reads the commands themselves, as it does without a manifest.
 */
import { readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';

/** MANIFEST_FILE is the manifest's name in the package root, where oclif looks for it. */
export const MANIFEST_FILE = 'oclif.manifest.json';
/** COMMANDS_DIR is where the compiled commands are (package.json `oclif.commands`). */
export const COMMANDS_DIR = join('dist', 'src', 'commands');

/**
 * manifestIsStale tells whether the package under `root` has a manifest older than its compiled commands (one of them,
 * or the directory, which changes when a command is added or removed). No manifest is not stale: oclif then reads
 * every command by itself.
 */
export function manifestIsStale(root: string): boolean {
  let made: number;
  try {
    made = statSync(join(root, MANIFEST_FILE)).mtimeMs;
  } catch {
    return false;
  }
  const dir = join(root, COMMANDS_DIR);
  try {
    if (statSync(dir).mtimeMs > made) return true;
    for (const name of readdirSync(dir)) if (name.endsWith('.js') && statSync(join(dir, name)).mtimeMs > made) return true;
  } catch {
    return false;
  }
  return false;
}
