#!/usr/bin/env node
// The `mirror` command: runs the compiled oclif commands in dist/.
import module from 'node:module';

// Node 22.1+ keeps compiled code between runs, which shortens start-up; older versions go on without it.
module.enableCompileCache?.();

const { main } = await import('../dist/src/cli/main.js');
await main(process.argv.slice(2), import.meta.url);
