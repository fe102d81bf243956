// Writes oclif.manifest.json (each command's id, flags, arguments and help) from the compiled commands in dist/, as
// `oclif manifest` does. With it, `mirror COMMAND` imports that command's module alone; without it, oclif imports
// every command (and every library they use) at each start to learn their flags (measured: `mirror version` 0.42 ->
// 0.25 CPU-seconds, `mirror sync --help` 0.54 -> 0.25). `npm run build` runs it after tsc; bin/run.js ignores a
// manifest older than the compiled commands (a bare tsc), so it can never hide a command or a flag.
import { writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Plugin } from '@oclif/core';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const plugin = new Plugin({ root, isRoot: true, type: 'core', ignoreManifest: true, errorOnManifestCreate: true });
await plugin.load();
writeFileSync(join(root, 'oclif.manifest.json'), `${JSON.stringify(plugin.manifest, null, 2)}\n`);
