import { MirrorCommand } from '../cli/base.js';

/** Print the version of mirror and of the Node.js it runs on (the same as `mirror --version`). */
export default class Version extends MirrorCommand {
  static override summary = 'Print the version of mirror, and the Node.js and platform it runs on.';

  static override description = 'The same line as mirror --version (or -v); with --json, one JSON document.';

  static override examples = ['<%= config.bin %> version', '<%= config.bin %> version --json'];

  static override usageLine = 'mirror version [--json]';

  async run(): Promise<void> {
    const { flags } = await this.parse(Version);
    if (flags.json) {
      const out = { version: this.config.version, node: process.version, platform: this.config.platform, arch: this.config.arch };
      process.stdout.write(`${JSON.stringify(out)}\n`);
      return;
    }
    process.stdout.write(`${this.config.userAgent}\n`);
  }
}
