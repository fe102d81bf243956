import { Args, Flags } from '@oclif/core';
import { logout } from '../auth/login.js';
import { MirrorCommand } from '../cli/base.js';
import { safeLine } from '../cli/safe-output.js';
import { EXIT_CODE_HELP } from '../errors/index.js';

/** Forget the stored credential of a registry. */
export default class Logout extends MirrorCommand {
  static override summary = 'Forget the stored credential of a registry (keychain, config.json, credential helper).';

  static override description = `Removes what \`mirror login\` (or \`docker login\`) stored for HOST: the OS keychain entry, the "auths" entry of Docker's config.json, and the entry of the credential helper configured for HOST (credHelpers/credsStore, through docker-credential-* erase).

${EXIT_CODE_HELP}`;

  static override examples = [
    '<%= config.bin %> logout 172.18.0.20:5000',
    '<%= config.bin %> logout registry.local:5000 --docker-config ./config.json',
  ];

  static override args = {
    host: Args.string({ description: 'Registry HOST[:PORT].', required: true, ignoreStdin: true }),
  };

  static override flags = {
    'docker-config': Flags.string({ summary: 'Docker config.json to remove the entry from.', aliases: ['authfile'] }),
  };

  async run(): Promise<void> {
    const { args, flags } = await this.parse(Logout);
    const result = await logout({ host: args.host, dockerConfigPath: flags['docker-config'] });
    if (flags.json) {
      process.stdout.write(`${JSON.stringify({ status: 'ok', ...result })}\n`);
      return;
    }
    for (const w of result.warnings) process.stderr.write(`warning: ${safeLine(w)}\n`);
    process.stdout.write(
      result.removedFrom.length > 0
        ? `Removed the credentials for ${result.host} from ${result.removedFrom.join(', ')}\n`
        : `No credentials were stored for ${result.host}\n`,
    );
  }
}
