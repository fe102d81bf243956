import { Args, Flags } from '@oclif/core';
import { LOGIN_STORE_HELP } from '../auth/login.js';
import { registryLogin } from '../registry/registry-login.js';
import { MirrorCommand } from '../cli/base.js';
import { buildConnection, connectionFlags } from '../cli/flags.js';
import { ProgressRenderer } from '../cli/progress.js';
import { EXIT_CODE_HELP } from '../errors/index.js';

/** Check a registry credential, then keep it in the configured credential helper, the OS keychain, or Docker's config.json. */
export default class Login extends MirrorCommand {
  static override summary = 'Check a registry credential, then keep it (credential helper, OS keychain, or Docker config.json).';

  static override description = `Proves the username and password against the registry first (GET /v2/ with exactly that credential: Basic auth, or a token from the registry's token server), then stores them: through the credential helper Docker's config.json names for HOST (credHelpers/credsStore), else in the OS keychain when one answers (macOS Keychain, Windows Credential Vault, the Secret Service on Linux), else in config.json itself (mode 0600, base64 — not encrypted — with a warning). Later pushes find them there; nothing is stored when the registry refuses them. The secret is never printed. Two logins at once never lose each other's entry (config.json is locked while it is read and replaced).

Without --username, the username and password are asked on the terminal (the password without echo); without a terminal, give --username with --password-stdin. Credentials written in HOST (http://user:pass@host) are refused.

${LOGIN_STORE_HELP}

${EXIT_CODE_HELP}`;

  static override examples = [
    'printf %s "$REGISTRY_PASSWORD" | <%= config.bin %> login 172.18.0.20:5000 --username admin --password-stdin --cacert ca.crt',
    '<%= config.bin %> login registry.local:5000            # asks for the username and password',
    '<%= config.bin %> login registry.local:5000 --username robot --password-stdin --store config --docker-config ./config.json < pass.txt',
    '<%= config.bin %> login http://10.0.0.5:5000 --username admin --password-stdin < pass.txt',
  ];

  static override args = {
    host: Args.string({ description: 'Registry HOST[:PORT] (https://HOST[:PORT], or http://HOST[:PORT] for plain HTTP).', required: true, ignoreStdin: true }),
  };

  static override flags = {
    username: connectionFlags.username,
    password: connectionFlags.password,
    'password-stdin': connectionFlags['password-stdin'],
    store: Flags.string({
      summary: 'Where to keep the credential: auto (config.json\'s helper, else the keychain, else config.json), keychain, or config.',
      options: ['auto', 'keychain', 'config'],
      default: 'auto',
    }),
    'docker-config': Flags.string({
      summary: 'Docker config.json whose helper is used, or which is written (default: $DOCKER_CONFIG/config.json or ~/.docker/config.json).',
      aliases: ['authfile'],
      helpGroup: 'CREDENTIALS',
    }),
    // One value per --cacert here, so `mirror login --cacert ca.crt HOST` leaves HOST to the argument.
    cacert: Flags.string({
      summary: 'CA certificate (PEM) to trust, added to the system roots. Repeatable.',
      multiple: true,
      multipleNonGreedy: true,
      helpGroup: 'TLS',
    }),
    'cert-dir': connectionFlags['cert-dir'],
    cert: connectionFlags.cert,
    key: connectionFlags.key,
    'insecure-skip-tls-verify': connectionFlags['insecure-skip-tls-verify'],
    'plain-http': connectionFlags['plain-http'],
    'retry-times': connectionFlags['retry-times'],
  };

  async run(): Promise<void> {
    const { args, flags } = await this.parse(Login);
    const renderer = new ProgressRenderer({ quiet: flags.json, debug: flags.debug, tty: false });
    const warnings: string[] = [];
    const sink = (e: Parameters<typeof renderer.sink>[0]): void => {
      if (e.type === 'warning') warnings.push(e.message);
      renderer.sink(e);
    };
    const { settings } = buildConnection(flags, sink);
    const result = await registryLogin({
      registry: args.host,
      plainHttp: flags['plain-http'],
      username: flags.username,
      password: flags.password,
      passwordStdin: flags['password-stdin'],
      store: flags.store as 'auto' | 'keychain' | 'config',
      dockerConfigPath: flags['docker-config'],
      settings,
      retry: { retries: flags['retry-times'] },
      events: sink,
      signal: this.abort.signal,
    });
    if (result.warning) sink({ type: 'warning', message: result.warning });
    const where =
      result.storedIn === 'keychain'
        ? 'the OS keychain'
        : result.storedIn === 'helper'
          ? `${result.helper ?? 'the credential helper'} (configured in ${result.path ?? 'the Docker config file'})`
          : (result.path ?? 'the Docker config file');
    if (flags.json) {
      const out = {
        status: 'ok',
        host: result.host,
        username: result.username,
        checked: result.auth !== 'none',
        storedIn: result.storedIn,
        ...(result.helper ? { helper: result.helper } : {}),
        ...(result.path ? { path: result.path } : {}),
        warnings,
      };
      process.stdout.write(`${JSON.stringify(out)}\n`);
      return;
    }
    const checked = result.auth === 'none' ? 'not checked (the registry asks for none)' : 'accepted';
    process.stdout.write(`Login succeeded: ${result.username}@${result.host} ${checked}; stored in ${where}\n`);
  }
}
