import { Args, Flags } from '@oclif/core';
import { MirrorCommand } from '../cli/base.js';
import { ProgressRenderer } from '../cli/progress.js';
import { buildSideContext, connectionFlags, normalizeBooleanArgs } from '../cli/side-flags.js';
import { listRepositoryTags } from '../copy/list-tags.js';
import { EXIT_CODE_HELP } from '../errors/index.js';

/** Boolean flags that also take skopeo's `--flag=true|false` spelling. */
const BOOLEAN_FLAGS = ['tls-verify'];

/** List every tag of a repository, as skopeo list-tags does. */
export default class ListTags extends MirrorCommand {
  static override summary = 'List every tag of a repository (all pages), as skopeo list-tags does.';

  static override description = `Follows the registry's pagination (Link: rel="next") to the last page and prints one tag a line; --json prints skopeo's document, {"Repository": "HOST/REPO", "Tags": [...]}. The location names a repository without a tag: docker://HOST/REPO. An oci:, oci-archive: or docker-archive: location lists the names it holds.

Connection flags have skopeo's names: --creds, --authfile, --no-creds, --tls-verify=false, --cert-dir.

${EXIT_CODE_HELP}`;

  static override examples = [
    '<%= config.bin %> list-tags docker://quay.io/prometheus/node-exporter',
    '<%= config.bin %> list-tags --json --tls-verify=false --creds admin docker://127.0.0.1:5000/library/busybox',
  ];

  static override usageLine = 'mirror list-tags docker://HOST/REPO';

  static override args = {
    location: Args.string({ description: 'The repository: docker://HOST/REPO.', required: true, ignoreStdin: true }),
  };

  static override flags = {
    ...connectionFlags('repository'),
    'page-size': Flags.integer({ summary: 'Tags asked per page (the registry\'s n).', min: 1, max: 10_000, hidden: true }),
  };

  override async init(): Promise<void> {
    this.argv = normalizeBooleanArgs(this.argv, BOOLEAN_FLAGS);
    await super.init();
  }

  async run(): Promise<void> {
    const { args, flags } = await this.parse(ListTags);
    const renderer = new ProgressRenderer({ quiet: true, debug: flags.debug, tty: false });
    try {
      const listed = await listRepositoryTags({
        location: args.location,
        side: buildSideContext('', flags, renderer.sink),
        pageSize: flags['page-size'],
        signal: this.abort.signal,
      });
      if (flags.json) process.stdout.write(`${JSON.stringify(listed, null, 4)}\n`);
      else if (listed.Tags.length > 0) process.stdout.write(`${listed.Tags.join('\n')}\n`);
    } finally {
      renderer.stop();
    }
  }
}
