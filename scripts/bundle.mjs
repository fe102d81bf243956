// Writes dist/mirror.js: the compiled CLI (dist/src/cli/bundle-entry.js: `main` and every command) and the packages it
// loads, in one ES module, as a bundler does for a web page. Loading one file instead of some 300 (oclif, undici's
// agents, yaml, semver and ours, each resolved and read on its own) takes about 90 ms less at every start (measured:
// importing the copy command 190 -> 100 ms under Node 24, 0.34 -> 0.21 CPU-s under Node 20). bin/run.js uses the
// bundle when it is at least as new as the compiled sources, and the modules in dist/src otherwise (a bare `tsc`).
// Native and optional packages stay outside (lzma-native, keytar), and so does typescript, which oclif asks for only
// to run a project's .ts sources. esbuild-wasm is a build-time dependency: WebAssembly, no install script, no binary.
import { join, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';
import { build } from 'esbuild-wasm';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const result = await build({
  entryPoints: [join(root, 'dist/src/cli/bundle-entry.js')],
  outfile: join(root, 'dist/mirror.js'),
  bundle: true,
  platform: 'node',
  format: 'esm',
  target: 'node20',
  external: ['keytar', 'lzma-native', 'typescript'],
  // CommonJS packages in an ES module: their require() of Node's modules goes through a real require.
  banner: { js: "import { createRequire as __mirrorCreateRequire } from 'node:module';\nconst require = __mirrorCreateRequire(import.meta.url);" },
  legalComments: 'none',
  logLevel: 'warning',
});
if (result.errors.length > 0) process.exit(1);
