/**
 * `mirror config TARGET`: the node and cluster configuration that points containerd, CRI-O (podman, skopeo), RKE2
 * and K3s, OpenShift, GDC bare metal (bmctl) and Kubernetes pull secrets at a mirror that was filled by `mirror
 * push` or `mirror copy`. One generator per target over one model ({@link MirrorPlan}); adding a target is a file
 * and a line in {@link TARGET_SPECS}.
 */
import { resolve } from 'node:path';
import type { Credential, CredentialResolver } from '../auth/types.js';
import { MirrorError } from '../errors/index.js';
import type { EventSink } from '../events/index.js';
import { noEvents } from '../events/index.js';
import { generateBmctl } from './bmctl.js';
import { generateContainerd } from './containerd.js';
import { generateCrio } from './crio.js';
import { type GenerateContext, type GeneratedFile, streamText, writeFiles } from './files.js';
import { type ConfigTarget, endpointsOf, type MirrorPlan } from './model.js';
import { generateOpenshift } from './openshift.js';
import { buildPlan, type PlanOptions } from './plan.js';
import { generatePullSecret } from './pull-secret.js';
import { generateRke2 } from './rke2.js';

export { CONFIG_TARGETS, TARGET_ALIASES, type ConfigTarget, type MirrorPlan } from './model.js';
export type { GeneratedFile } from './files.js';

/** TargetSpec is what a target needs and how it writes. */
export interface TargetSpec {
  /** Whether the target writes credentials: never, when the chain has some, or always (an error without). */
  readonly credentials: 'none' | 'optional' | 'required';
  /** One line for `--help`. */
  readonly summary: string;
  readonly generate: (ctx: GenerateContext) => GeneratedFile[];
}

/** TARGET_SPECS maps each target to its generator. */
export const TARGET_SPECS: Readonly<Record<ConfigTarget, TargetSpec>> = {
  containerd: { credentials: 'none', summary: 'certs.d/<registry>/hosts.toml (containerd config_path, ctr --hosts-dir)', generate: generateContainerd },
  'cri-o': { credentials: 'none', summary: 'registries.conf.d/50-mirror.conf (CRI-O, podman, skopeo, buildah) and certs.d/', generate: generateCrio },
  rke2: { credentials: 'optional', summary: '/etc/rancher/rke2/registries.yaml (mirrors with rewrite, configs with auth and tls)', generate: generateRke2 },
  k3s: { credentials: 'optional', summary: '/etc/rancher/k3s/registries.yaml (as rke2)', generate: generateRke2 },
  openshift: { credentials: 'none', summary: 'ImageDigestMirrorSet and ImageTagMirrorSet (--legacy-icsp: ImageContentSourcePolicy), CA ConfigMap', generate: generateOpenshift },
  bmctl: { credentials: 'optional', summary: 'the registryMirrors block of a bmctl cluster config, and its pull credential file', generate: generateBmctl },
  'pull-secret': { credentials: 'required', summary: 'a kubernetes.io/dockerconfigjson Secret for the mirror', generate: generatePullSecret },
};

/** MirrorConfigOptions configure {@link mirrorConfig}. */
export interface MirrorConfigOptions extends PlanOptions {
  target: ConfigTarget;
  /** `--output DIR`: write the files there with the node's layout. Default: none (the caller prints {@link MirrorConfigResult.text}). */
  output?: string | undefined;
  /** The credential chain (`buildConnection`), asked for each mirror host by the targets that write credentials. */
  credentials?: CredentialResolver | undefined;
  /** `--name`, `--namespace`: the Secret's (or OpenShift objects') name and namespace. */
  name?: string | undefined;
  namespace?: string | undefined;
  /** `--legacy-icsp` for openshift. Default: false. */
  legacyIcsp?: boolean | undefined;
  events?: EventSink | undefined;
  signal?: AbortSignal | undefined;
}

/** MirrorConfigResult is what was generated (and written, with an output directory). */
export interface MirrorConfigResult {
  plan: MirrorPlan;
  files: GeneratedFile[];
  /** The configuration files joined for standard output. */
  text: string;
  /** Absolute paths written, with an output directory. */
  written: string[];
}

/** resolveCredentials asks the chain for each mirror host; anonymous answers are left out. */
async function resolveCredentials(plan: MirrorPlan, options: MirrorConfigOptions, events: EventSink): Promise<Map<string, Credential>> {
  const out = new Map<string, Credential>();
  if (TARGET_SPECS[options.target].credentials === 'none' || options.credentials === undefined) return out;
  for (const e of endpointsOf(plan)) {
    const found = await options.credentials.resolve(e.host, { signal: options.signal });
    if (found.credential.kind === 'anonymous') continue;
    events({ type: 'debug', message: `credential for ${e.host} from ${found.source}` });
    out.set(e.host, found.credential);
  }
  return out;
}

/** mirrorConfig builds the plan, generates the target's files, and writes them under `output` when given. */
export async function mirrorConfig(options: MirrorConfigOptions): Promise<MirrorConfigResult> {
  const events = options.events ?? noEvents;
  if (TARGET_SPECS[options.target].credentials === 'required' && options.output === undefined) {
    throw new MirrorError('USAGE', `${options.target} holds the registry credential, which is never printed: write it with --output DIR (the file gets mode 0600)`);
  }
  const plan = await buildPlan({ ...options, events });
  const credentials = await resolveCredentials(plan, options, events);
  const outputDir = options.output === undefined ? undefined : resolve(options.output);
  const files = TARGET_SPECS[options.target].generate({
    target: options.target,
    plan,
    layout: outputDir === undefined ? 'stream' : 'directory',
    outputDir,
    credentials,
    name: options.name,
    namespace: options.namespace,
    legacyIcsp: options.legacyIcsp ?? false,
    events,
  });
  const written = outputDir === undefined ? [] : await writeFiles(outputDir, files);
  return { plan, files, text: streamText(files), written };
}
