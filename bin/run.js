#!/usr/bin/env node
// The `mirror` command: runs the compiled oclif commands in dist/.
import { statSync } from 'node:fs';
import module from 'node:module';

// Node 22.1+ keeps compiled code between runs, which shortens start-up; older versions go on without it.
module.enableCompileCache?.();

/** mtime of a file under dist/, or -1 when it is missing. */
function madeAt(rel) {
  try {
    return statSync(new URL(`../dist/${rel}`, import.meta.url)).mtimeMs;
  } catch {
    return -1;
  }
}

// The one-file bundle (scripts/bundle.mjs, written by `npm run build`) when it is as new as the compiled sources;
// after a bare `tsc` it is older, and the modules in dist/src run instead.
const BUNDLE = 'mirror.js';
const bundled = madeAt(BUNDLE) >= madeAt('src/cli/main.js') && madeAt(BUNDLE) > 0;
const { main } = await import(bundled ? `../dist/${BUNDLE}` : '../dist/src/cli/main.js');
await main(process.argv.slice(2), import.meta.url, bundled ? { bundle: `./dist/${BUNDLE}` } : {});
