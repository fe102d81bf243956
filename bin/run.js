#!/usr/bin/env node
// The `mirror` command: runs the compiled oclif commands in dist/.
import { statSync } from 'node:fs';
import module from 'node:module';

// Node 22+ lets V8's young generation grow several times larger than Node 20 did, and a long run's allocations
// (a bundle of thousands of images, a sync of thousands of tags) then fill it before they are collected: peak RSS of
// the bench's 2,000-tag sync 268 MB under Node 24, 173 MB with semi-spaces of 16 MiB (146 MB under Node 20). Such a run
// starts over in place (process.execve, Node >= 22.15) with that bound, at a cost of about 30 ms; one the user gave
// a bound of its own, and every other command, go on as they are.
// It also collects garbage on its own thread: the heap of such a run stays small (15-30 MB), so the helper threads
// save little pause time and cost more CPU in all than they save, taken from the cores the registries and the network
// need (measured on the bench's 72-tag sync on 2 cores: mirror's CPU 1.11 -> 0.97 s, wall 1.77 -> 1.66 s). The cost
// is memory: marking on the main thread lets the heap grow further between collections (peak RSS of the 6,000-image
// hostile push 176-179 -> 198-201 MB; the 2,000-tag sync 185 -> 190-196 MB).
// Not when one side of the run is a directory of images (push to an oci: layout, sync --dest dir or --src dir): files
// give and take bytes faster than a registry does, the chunks die faster than marking on the main thread finds them,
// and RSS grew by 50-90 MB for no gain in time (the bench bundles' 24 images: sync --dest dir 220-247 MB against
// 150-174 MB, sync --src dir 203-219 against 149-154 MB; a push to oci:DIR 195-223 against 134-138 MB).
const LONG_RUNS = new Set(['push', 'sync']);
const SEMI_SPACE = '--max-semi-space-size';

/** filesSide tells from the arguments whether a side of the run is a directory (`oci:DIR`, `--dest dir`, `--src dir`). */
function filesSide(args) {
  const dir = (flag, short) => args.some((a, i) => a === `--${flag}=dir` || a === `-${short}dir` || ((a === `--${flag}` || a === `-${short}`) && args[i + 1] === 'dir'));
  return args.some((a) => /^(?:--private-registry=|-r)?oci:/.test(a)) || dir('dest', 'd') || dir('src', 's');
}

if (
  LONG_RUNS.has(process.argv[2] ?? '') &&
  typeof process.execve === 'function' &&
  !process.execArgv.some((a) => a.startsWith(SEMI_SPACE)) &&
  !(process.env.NODE_OPTIONS ?? '').includes(SEMI_SPACE)
) {
  try {
    const flags = [`${SEMI_SPACE}=16`, ...(filesSide(process.argv.slice(3)) ? [] : ['--single-threaded-gc'])];
    process.execve(process.execPath, [process.execPath, ...flags, ...process.execArgv, ...process.argv.slice(1)], process.env);
  } catch {
    // A platform without execve (Windows): the run goes on with Node's own bound.
  }
}

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
const bundleMade = madeAt(BUNDLE);
const bundled = bundleMade > 0 && bundleMade >= madeAt('src/cli/main.js');
const { main } = await import(bundled ? `../dist/${BUNDLE}` : '../dist/src/cli/main.js');
await main(process.argv.slice(2), import.meta.url, bundled ? { bundle: `./dist/${BUNDLE}` } : {});
