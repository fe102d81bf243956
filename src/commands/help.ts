import { Args, Command, loadHelpClass } from '@oclif/core';
import { suggest, writeCliError } from '../cli/errors.js';
import { MirrorError } from '../errors/index.js';

/**
 * Show help for mirror or for one of its commands (the same as `mirror COMMAND --help`, byte for byte). It is an
 * oclif Command, not a MirrorCommand: it prints only the tool's own help text, which `--help` shows unguarded too,
 * and it has nothing to interrupt.
 */
export default class HelpCommand extends Command {
  static override summary = 'Show help for mirror, or for one command (the same as mirror COMMAND --help or -h).';

  static override examples = ['<%= config.bin %> help', '<%= config.bin %> help push'];

  static override strict = false;

  static override args = {
    command: Args.string({ description: 'The command to explain (push, login, ...).', required: false, ignoreStdin: true }),
  };

  /** usageLine is the command's shortest correct form (as MirrorCommand has it). */
  static usageLine = 'mirror help [COMMAND]';

  async run(): Promise<void> {
    const { argv } = await this.parse(HelpCommand);
    const words = (argv as string[]).filter((a) => !a.startsWith('-'));
    const id = words.join(':');
    if (id !== '' && !this.config.findCommand(id) && !this.config.findTopic(id)) {
      const near = suggest(words[0] ?? '', this.config.commandIDs);
      throw new MirrorError('USAGE', `no help for "${words.join(' ')}": unknown command`, {
        hint: near ? `did you mean "mirror help ${near}"?` : 'see mirror --help for the commands',
      });
    }
    const Help = await loadHelpClass(this.config);
    await new Help(this.config).showHelp(words);
  }

  override async catch(err: Error & { oclif?: { exit?: number } }): Promise<void> {
    if (err.oclif?.exit === 0) return;
    writeCliError(err, { commandId: this.id, usage: HelpCommand.usageLine, commandIds: this.config.commandIDs }, { json: false, debug: this.argv.includes('--debug') });
  }
}
