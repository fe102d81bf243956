/**
 * The one line `mirror push` and `mirror copy` print after their summary: how to write the node configuration for
 * what they just put in the registry. Library code: it gives the line, the commands print it.
 */
import type { TargetEndpoint } from '../reference/destination.js';
import type { ImageReference } from '../reference/reference.js';
import { parseTransportRef } from '../transport/refs.js';
import { derivePrefix } from './model.js';

/** HINT_TARGETS is how the hint lists the targets. */
export const HINT_TARGETS = 'containerd|cri-o|rke2|k3s|openshift|bmctl|pull-secret';

/** shellWord quotes a word for a POSIX shell when it needs it. */
function shellWord(s: string): string {
  return /^[A-Za-z0-9_./:@%+=,-]+$/.test(s) ? s : `'${s.replace(/'/g, `'\\''`)}'`;
}

/** PushHintInput is what the hint needs from a push. */
export interface PushHintInput {
  endpoint: TargetEndpoint;
  dryRun: boolean;
  images: ReadonlyArray<{ status: string; sourceReference?: ImageReference | undefined }>;
  mapping?: { keepRegistryHost: boolean } | undefined;
}

/**
 * pushConfigHint gives the hint after a push (empty when nothing is in a registry: a dry run, an OCI layout, or no
 * image pushed or present): `--from-report FILE` when a report was written, else `--mirror` and each
 * `--source-registry`.
 */
export function pushConfigHint(r: PushHintInput, reportFile?: string | undefined): string[] {
  if (r.dryRun || r.endpoint.kind !== 'registry') return [];
  const sources = [
    ...new Set(r.images.filter((i) => (i.status === 'pushed' || i.status === 'skipped') && i.sourceReference).map((i) => i.sourceReference!.registry)),
  ].sort();
  if (sources.length === 0) return [];
  if (reportFile !== undefined && reportFile !== '-') return [`next: mirror config ${HINT_TARGETS} --from-report ${shellWord(reportFile)}`];
  const e = r.endpoint;
  const url = `${e.scheme}://${e.host}${e.namespace ? `/${e.namespace}` : ''}`;
  const keep = r.mapping?.keepRegistryHost ? ' --keep-registry-host' : '';
  return [`next: mirror config ${HINT_TARGETS} --mirror ${url}${keep} ${sources.map((s) => `--source-registry ${s}`).join(' ')}`];
}

/** CopyHintInput is what the hint needs from a copy. */
export interface CopyHintInput {
  source: string;
  destination: string;
  dryRun: boolean;
  outcome: { status: string };
}

/**
 * copyConfigHint gives the hint after a copy from a registry into a registry that kept the repository name under a
 * namespace (empty otherwise: a dry run, a failure, a renamed repository, another transport).
 */
export function copyConfigHint(r: CopyHintInput): string[] {
  if (r.dryRun || (r.outcome.status !== 'pushed' && r.outcome.status !== 'skipped')) return [];
  let src;
  let dst;
  try {
    src = parseTransportRef(r.source);
    dst = parseTransportRef(r.destination);
  } catch {
    return [];
  }
  if (src.transport !== 'docker' || dst.transport !== 'docker' || src.reference.registry === dst.reference.registry) return [];
  const prefix = derivePrefix(src.reference.repository, dst.reference.repository);
  if (prefix === undefined) return [];
  return [`next: mirror config ${HINT_TARGETS} --mirror ${dst.reference.registry}${prefix ? `/${prefix}` : ''} --source-registry ${src.reference.registry}`];
}
