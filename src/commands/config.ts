import { Args, Flags } from '@oclif/core';
import { MirrorCommand } from '../cli/base.js';
import { buildConnection, connectionFlags } from '../cli/flags.js';
import { ProgressRenderer } from '../cli/progress.js';
import { CREDENTIALS_HELP } from '../auth/chain.js';
import { EXIT_CODE_HELP, MirrorError } from '../errors/index.js';
import { CONFIG_TARGETS, type ConfigTarget, mirrorConfig, TARGET_ALIASES, TARGET_SPECS } from '../mirrorconfig/index.js';

/** DNS_SUBDOMAIN and DNS_LABEL are Kubernetes' rules for object names and namespaces. */
const DNS_SUBDOMAIN = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$/;
const DNS_LABEL = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/;

/** Write the configuration that points nodes and clusters at a mirror filled by mirror push, copy or sync. */
export default class Config extends MirrorCommand {
  static override summary = 'Write the node or cluster configuration that pulls from the mirror (containerd, CRI-O, RKE2/K3s, OpenShift, bmctl, pull secret).';

  static override description = `Reads what a push, copy or sync did (--from-report, as many as you like) or what you say was mirrored (--mirror https://HOST:PORT/NAMESPACE with --source-registry), and writes the configuration that makes nodes pull images by their original names (gcr.io/..., docker.io/library/...) from the mirror, namespace included:

${CONFIG_TARGETS.map((t) => `  ${t.padEnd(12)} ${TARGET_SPECS[t].summary}`).join('\n')}
  (podman, skopeo and crio are other names for cri-o)

Without --output the configuration goes to standard output; with --output DIR the files are laid out as the node expects them (DIR/certs.d/gcr.io/hosts.toml, DIR/registries.conf.d/50-mirror.conf, DIR/registries.yaml, ...), each starting with a comment that says what made it and how to install it. Files holding credentials or keys are written with mode 0600. The same input always gives the same bytes, so configuration management can run it again.

Nodes fall back to the source registry when the mirror fails, unless --no-fallback (fully air-gapped nodes): containerd then knows only the mirror, registries.conf blocks the source, RKE2/K3s get disable-default-registry-endpoint, OpenShift NeverContactSource.

Credentials for rke2/k3s (configs.auth), bmctl (pullCredentialConfigPath) and pull-secret come from the same chain as push, and go only into files under --output (mode 0600), never to standard output:

${CREDENTIALS_HELP}

${EXIT_CODE_HELP}`;

  static override examples = [
    '<%= config.bin %> push -s bundle.tar.xz -r 172.18.0.20:5000/ns --report push.json && <%= config.bin %> config containerd --from-report push.json --cacert ca.crt --output out/',
    '<%= config.bin %> config cri-o --from-report push.json --no-fallback > /etc/containers/registries.conf.d/50-mirror.conf',
    '<%= config.bin %> config rke2 --from-report push.json --username admin --password-stdin --cacert /etc/ssl/mirror-ca.crt --output rke2/ < pass.txt',
    '<%= config.bin %> config openshift --mirror https://172.18.0.20:5000/ns --source-registry quay.io --source-registry gcr.io',
    '<%= config.bin %> config bmctl --from-report push.json --cacert /root/ca.crt --output bmctl-mirror/',
    '<%= config.bin %> config pull-secret --from-report push.json --name mirror-pull --namespace apps --docker-config ~/.docker/config.json --output secret/',
  ];

  static override args = {
    target: Args.string({
      description: `What to write: ${CONFIG_TARGETS.join(', ')}.`,
      required: true,
      options: [...CONFIG_TARGETS, ...Object.keys(TARGET_ALIASES)],
    }),
  };

  static override flags = {
    'from-report': Flags.string({ summary: 'Report of mirror push, copy or sync (--report FILE). Repeatable; mirrors are tried in the order given.', multiple: true, multipleNonGreedy: true }),
    mirror: Flags.string({
      summary: 'Without a report: the mirror, https://HOST:PORT/NAMESPACE (http:// for plain HTTP). With reports: the address nodes reach it at (https://HOST:PORT).',
    }),
    'source-registry': Flags.string({
      summary: 'A registry whose images are in the mirror (gcr.io, docker.io, ...), with --mirror; with reports, keep only these. Repeatable.',
      multiple: true,
      multipleNonGreedy: true,
    }),
    'keep-registry-host': Flags.boolean({ summary: 'With --mirror: the images were pushed with --keep-registry-host (NAMESPACE/gcr.io/...).' }),
    'no-fallback': Flags.boolean({ summary: 'Nodes never pull from the source registries, only from the mirror (air-gapped).' }),
    output: Flags.string({ char: 'o', summary: 'Write the files under this directory, laid out as the node expects, instead of to standard output.' }),
    name: Flags.string({ summary: 'Name of the Secret (pull-secret, default mirror-pull-secret) or of the OpenShift objects (default mirror).' }),
    namespace: Flags.string({ summary: 'Namespace of the Secret (pull-secret; default: none, kubectl -n decides).' }),
    'legacy-icsp': Flags.boolean({ summary: 'openshift: write an ImageContentSourcePolicy (before OpenShift 4.13) instead of the mirror sets.' }),
    cacert: Flags.string({ summary: 'CA certificate (PEM) the nodes need to trust the mirror.', helpGroup: 'TLS' }),
    cert: Flags.string({ summary: 'Client certificate (PEM) for mutual TLS with the mirror.', dependsOn: ['key'], helpGroup: 'TLS' }),
    key: Flags.string({ summary: 'Client private key (PEM) for --cert.', dependsOn: ['cert'], helpGroup: 'TLS' }),
    insecure: Flags.boolean({ summary: 'Nodes do not verify the mirror certificate (unsafe).', aliases: ['insecure-skip-tls-verify'], helpGroup: 'TLS' }),
    'plain-http': Flags.boolean({ summary: 'The mirror speaks plain HTTP (as http://HOST does).', helpGroup: 'TLS' }),
    username: connectionFlags.username,
    password: connectionFlags.password,
    'password-stdin': connectionFlags['password-stdin'],
    'need-credential': connectionFlags['need-credential'],
    'no-registry-credential': connectionFlags['no-registry-credential'],
    'docker-config': connectionFlags['docker-config'],
  };

  async run(): Promise<void> {
    const { args, flags } = await this.parse(Config);
    const target: ConfigTarget = TARGET_ALIASES[args.target] ?? (args.target as ConfigTarget);
    const spec = TARGET_SPECS[target];
    if (flags.namespace !== undefined && target !== 'pull-secret') throw new MirrorError('USAGE', '--namespace is for pull-secret');
    if (flags.name !== undefined && target !== 'pull-secret' && target !== 'openshift') throw new MirrorError('USAGE', '--name is for pull-secret and openshift');
    if (flags['legacy-icsp'] && target !== 'openshift') throw new MirrorError('USAGE', '--legacy-icsp is for openshift');
    if (flags.name !== undefined && (flags.name.length > 253 || !DNS_SUBDOMAIN.test(flags.name))) {
      throw new MirrorError('USAGE', `--name ${JSON.stringify(flags.name.slice(0, 80))} is not a Kubernetes object name (lower-case letters, digits, - and .)`);
    }
    if (flags.namespace !== undefined && (flags.namespace.length > 63 || !DNS_LABEL.test(flags.namespace))) {
      throw new MirrorError('USAGE', `--namespace ${JSON.stringify(flags.namespace.slice(0, 80))} is not a Kubernetes namespace (lower-case letters, digits and -)`);
    }
    const renderer = new ProgressRenderer({ quiet: flags.json, debug: flags.debug, tty: false });
    const credentialFlags = {
      username: flags.username,
      password: flags.password,
      'password-stdin': flags['password-stdin'],
      'need-credential': flags['need-credential'],
      'no-registry-credential': flags['no-registry-credential'],
      'docker-config': flags['docker-config'],
    };
    if (spec.credentials === 'none' && (flags.username !== undefined || flags['password-stdin'] || flags.password !== undefined)) {
      renderer.sink({ type: 'warning', message: `${target} configuration holds no credentials; --username and its password are not used (see mirror config pull-secret)` });
    }
    const connection =
      spec.credentials === 'none' ? undefined : buildConnection(credentialFlags, renderer.sink, { needCredential: spec.credentials === 'required' ? true : undefined });
    const result = await mirrorConfig({
      target,
      reports: flags['from-report'],
      mirror: flags.mirror,
      sourceRegistries: flags['source-registry'],
      keepRegistryHost: flags['keep-registry-host'],
      plainHttp: flags['plain-http'],
      cacert: flags.cacert,
      cert: flags.cert,
      key: flags.key,
      insecureSkipVerify: flags.insecure,
      fallback: !flags['no-fallback'],
      output: flags.output,
      credentials: connection?.credentials,
      name: flags.name,
      namespace: flags.namespace,
      legacyIcsp: flags['legacy-icsp'],
      events: renderer.sink,
      signal: this.abort.signal,
    });
    const routes = result.plan.routes.map((r) => ({ source: r.source, scheme: r.endpoint.scheme, host: r.endpoint.host, prefix: r.prefix }));
    if (flags.json) {
      const files = result.files.map((f) => ({
        path: f.path,
        mode: `0${f.mode.toString(8)}`,
        ...(flags.output === undefined && f.kind === 'config' ? { content: String(f.content) } : {}),
      }));
      process.stdout.write(`${JSON.stringify({ status: 'ok', exitCode: 0, target, fallback: result.plan.fallback, routes, files })}\n`);
    } else if (flags.output === undefined) {
      process.stdout.write(result.text);
    } else {
      const lines = [`${target}: wrote ${result.files.length} file(s) under ${flags.output}:`];
      for (const f of result.files) lines.push(`  ${f.path}${f.mode === 0o600 ? ' (0600)' : ''}`);
      process.stdout.write(`${lines.join('\n')}\n`);
    }
  }
}
