/**
 * Preloaded into `mirror` (NODE_OPTIONS=--import=...) by the kill test: when the process is about to rename a
 * temporary file onto the path in MIRROR_TEST_KILL_BEFORE_RENAME_TO, it SIGKILLs itself, so the temporary file (with
 * the secret in it) is written and never renamed, as after a kill at the worst moment.
 */
import { createRequire, syncBuiltinESMExports } from 'node:module';

const require = createRequire(import.meta.url);
const fs = require('node:fs') as typeof import('node:fs');
const target = process.env['MIRROR_TEST_KILL_BEFORE_RENAME_TO'];
if (target) {
  const rename = fs.promises.rename;
  fs.promises.rename = async (from: import('node:fs').PathLike, to: import('node:fs').PathLike): Promise<void> => {
    if (String(to) === target) process.kill(process.pid, 'SIGKILL');
    return rename(from, to);
  };
  // `import { rename } from 'node:fs/promises'` sees the replacement too.
  syncBuiltinESMExports();
}
