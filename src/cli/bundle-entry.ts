/**
 * The entry of the one-file bundle `dist/mirror.js` (scripts/bundle.mjs): the CLI's `main` and every command, so that
 * one file holds what a run loads (see bin/run.js).
 */
export { COMMANDS } from './commands.js';
export { main } from './main.js';
