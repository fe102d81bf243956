/**
 * Every command by id, for oclif's explicit command discovery when the CLI runs from its one-file bundle
 * (`dist/mirror.js`, made by scripts/bundle.mjs): oclif then takes the command classes from the bundle instead of
 * importing `dist/src/commands/ID.js`, a second copy of every module. A command added to `src/commands` is listed
 * here too (test/cli/manifest.test.ts checks the two agree).
 */
import type { Command } from '@oclif/core';
import ConfigCommand from '../commands/config.js';
import Copy from '../commands/copy.js';
import HelpCommand from '../commands/help.js';
import Inspect from '../commands/inspect.js';
import ListTags from '../commands/list-tags.js';
import Login from '../commands/login.js';
import Logout from '../commands/logout.js';
import Push from '../commands/push.js';
import Sync from '../commands/sync.js';
import Version from '../commands/version.js';

/** COMMANDS maps each command id (its file name under src/commands) to its class. */
export const COMMANDS: Record<string, Command.Class> = {
  config: ConfigCommand,
  copy: Copy,
  help: HelpCommand,
  inspect: Inspect,
  'list-tags': ListTags,
  login: Login,
  logout: Logout,
  push: Push,
  sync: Sync,
  version: Version,
};
