/**
 * What `mirror push` and `mirror inspect` print when they are done: the listing of a bundle, the dry-run mapping,
 * the summary of a push, and what to do next (the mirror endpoint to give containerd, RKE2 or bmctl, and the source
 * registries it now mirrors).
 */
import { describeClaims } from '../copy/conflicts.js';
import type { ChildManifest, CopyResult, ImageOutcome } from '../copy/result.js';
import { MediaType } from '../oci/media-types.js';
import { parseReference, type RegistryTarget } from '../reference/index.js';
import { formatBytes, formatDuration, formatRate, plural, shortDigest, startsWithSubject, statusText, subjectAnd } from './format.js';

const TYPE_NAMES: Record<string, string> = {
  [MediaType.OCI_INDEX]: 'OCI index',
  [MediaType.OCI_MANIFEST]: 'OCI manifest',
  [MediaType.DOCKER_MANIFEST_LIST]: 'Docker manifest list',
  [MediaType.DOCKER_MANIFEST]: 'Docker manifest',
  [MediaType.DOCKER_MANIFEST_V1]: 'Docker schema 1',
  [MediaType.DOCKER_MANIFEST_V1_SIGNED]: 'Docker schema 1',
};

/** typeName names a manifest media type for a table (`OCI index`); unknown types are shown whole. */
export function typeName(mediaType: string | undefined): string {
  if (mediaType === undefined) return '';
  return TYPE_NAMES[mediaType] ?? mediaType;
}

/** platformsOf lists the platforms of an index's manifests (`linux/amd64`, `linux/arm64/v8`), attestations left out. */
export function platformsOf(children: readonly ChildManifest[]): string[] {
  const out: string[] = [];
  for (const c of children) {
    const p = c.platform;
    if (!p || !p.os || !p.architecture || (p.os === 'unknown' && p.architecture === 'unknown')) continue;
    const name = [p.os, p.architecture, p.variant].filter((x) => x !== undefined && x !== '').join('/');
    if (!out.includes(name)) out.push(name);
  }
  return out;
}

/** ListedImage is one image of a bundle listing, for `--json`. */
export interface ListedImage {
  name: string;
  digest: string | undefined;
  mediaType: string | undefined;
  platforms: string[];
  /** Bytes as stored: distinct blobs (compressed) plus manifests. */
  size: number | undefined;
  blobs: number;
  status: ImageOutcome['status'];
  error?: string | undefined;
}

/** listedImages gives the listing of a dry run, for `--json`. */
export function listedImages(result: CopyResult): ListedImage[] {
  return result.images.map((i) => ({
    name: i.source,
    digest: i.digest,
    mediaType: i.mediaType,
    platforms: platformsOf(i.children),
    size: i.size,
    blobs: i.blobs,
    status: i.status,
    ...(i.error ? { error: i.error } : {}),
  }));
}

/** table lays out rows in columns two spaces apart; the last column is not padded. */
function table(rows: string[][]): string[] {
  const widths: number[] = [];
  for (const row of rows) row.forEach((cell, i) => (widths[i] = Math.max(widths[i] ?? 0, cell.length)));
  return rows.map((row) =>
    row
      .map((cell, i) => (i === row.length - 1 ? cell : cell.padEnd(widths[i] ?? 0)))
      .join('  ')
      .trimEnd(),
  );
}

/**
 * listingLines is a bundle's listing: one header line, then a table of IMAGE, DIGEST, TYPE, SIZE, PLATFORMS, then
 * one line per image that cannot be pushed.
 */
export function listingLines(result: CopyResult & { source: string }): string[] {
  const ok = result.images.filter((i) => i.status !== 'failed');
  const out = [`${result.source}: ${plural(result.images.length, 'image')}`];
  if (ok.length > 0) {
    const rows = [['IMAGE', 'DIGEST', 'TYPE', 'SIZE', 'PLATFORMS']];
    for (const i of ok) {
      rows.push([i.source, shortDigest(i.digest), typeName(i.mediaType), i.size === undefined ? '' : formatBytes(i.size), platformsOf(i.children).join(', ')]);
    }
    out.push(...table(rows));
  }
  for (const i of result.images) if (i.status === 'failed') out.push(`cannot be pushed: ${subjectAnd(i.source, i.error)}`);
  return out;
}

/** dryRunLines is the mapping of a dry run with a destination: where each image would land, its type and size. */
export function dryRunLines(result: CopyResult & { source: string; target: string }): string[] {
  const out = [`Dry run: ${plural(result.images.length, 'image')} from ${result.source} would go to ${result.target} (nothing sent):`];
  for (const i of result.images) {
    if (i.status === 'failed') {
      const cause = i.error ?? '';
      out.push(startsWithSubject(i.source, cause) ? `  cannot be pushed: ${cause}` : `  ${i.source}: cannot be pushed: ${cause}`);
      continue;
    }
    if (i.status === 'skipped-conflict') {
      out.push(`  ${i.source}: ${conflictSkipLine(i)}`);
      continue;
    }
    const platforms = platformsOf(i.children);
    const what = [typeName(i.mediaType), platforms.length > 0 ? platforms.join(', ') : '', i.size === undefined ? '' : formatBytes(i.size), plural(i.blobs, 'blob')]
      .filter((x) => x !== '')
      .join(', ');
    out.push(`  ${i.source} -> ${i.destination ?? ''} ${shortDigest(i.digest)} (${what})`);
  }
  return out;
}

/** countLine is the first line of a push summary: images and what happened to them. */
export function countLine(result: CopyResult, target: string): string {
  const count = (s: ImageOutcome['status']): number => result.images.filter((i) => i.status === s).length;
  const conflicts = count('skipped-conflict');
  return (
    `${plural(result.images.length, 'image')} to ${target}: ${count('pushed')} ${statusText('pushed')}, ${count('skipped')} ${statusText('skipped')}, ` +
    `${count('failed')} ${statusText('failed')}${conflicts ? `, ${conflicts} ${statusText('skipped-conflict')}` : ''}`
  );
}

/** conflictSkipLine says why an image was not pushed under --on-conflict first, naming the winner and both digests. */
export function conflictSkipLine(i: ImageOutcome): string {
  const c = i.conflict;
  if (!c) return 'not pushed (conflict)';
  const winner = c.claims.find((x) => x.source === c.winner);
  const taker = winner ? describeClaims([winner]) : 'no image';
  return `not pushed (${shortDigest(i.digest)}): ${c.reference} goes to ${taker}, the first in the bundle`;
}

/** blobLine is the second line of a push summary: blobs, bytes, time, rate, passes, retries. */
export function blobLine(result: CopyResult, retries: number): string {
  const b = result.blobs;
  const rate = b.bytesUploaded > 0 ? formatRate(b.bytesUploaded, result.durationMs) : undefined;
  return (
    `blobs: ${b.uploaded} uploaded, ${b.mounted} mounted, ${b.skipped} ${statusText('skipped')}${b.failed ? `, ${b.failed} failed` : ''}; ` +
    `${formatBytes(b.bytesUploaded)} sent in ${formatDuration(result.durationMs)}${rate ? ` (${rate})` : ''}` +
    (result.passes > 1 ? `; bundle read ${result.passes} times` : '') +
    (retries ? `; ${plural(retries, 'request')} retried` : '')
  );
}

/** mirrorEndpoint is the endpoint containerd, RKE2 and bmctl take for a registry target (`https://HOST:PORT/v2/NS`). */
export function mirrorEndpoint(target: RegistryTarget): string {
  return `${target.scheme}://${target.host}${target.namespace ? `/v2/${target.namespace}` : ''}`;
}

/** sourceRegistries lists the distinct source registry hosts of the images that are now at the destination. */
export function sourceRegistries(images: readonly ImageOutcome[]): string[] {
  const hosts = new Set<string>();
  for (const i of images) {
    if (i.status !== 'pushed' && i.status !== 'skipped') continue;
    if (i.sourceReference) {
      hosts.add(i.sourceReference.registry);
      continue;
    }
    try {
      hosts.add(parseReference(i.source).registry);
    } catch {
      // A name that is not a reference (an image known by position only) names no registry.
    }
  }
  return [...hosts].sort();
}

/** NextStepsOptions say what the next-steps lines may mention. */
export interface NextStepsOptions {
  /** `--cacert` files the nodes must trust too. */
  cacert?: readonly string[] | undefined;
}

/**
 * nextStepsLines tells what to do after a push into a registry: the endpoint for containerd's hosts.toml, RKE2's
 * registries.yaml and bmctl's `registryMirrors`, and the source registries to mirror there (bmctl's `hosts`).
 * Empty when nothing landed.
 */
export function nextStepsLines(result: CopyResult, target: RegistryTarget, options: NextStepsOptions = {}): string[] {
  const hosts = sourceRegistries(result.images);
  if (hosts.length === 0) return [];
  const out = [
    'next: give containerd, RKE2 or bmctl (registryMirrors) this mirror:',
    `  endpoint: ${mirrorEndpoint(target)}`,
    `  hosts:    ${hosts.join(', ')}`,
  ];
  if (options.cacert && options.cacert.length > 0) out.push(`  CA:       ${options.cacert.join(', ')} (the nodes must trust it too)`);
  return out;
}

/**
 * stagingLine explains the staging repository when blobs went through it: blobs met before the metadata that names
 * their images were uploaded there once and mounted into each image's repository. Empty when it was not used.
 */
export function stagingLine(staging: string, blobs: number, bytes: number): string[] {
  if (blobs === 0) return [];
  return [
    `staging: ${plural(blobs, 'blob')} (${formatBytes(bytes)}) came before their images' metadata in the bundle, so each went once to`,
    `  ${staging} and was mounted from there into its images' repositories; ${staging} holds no images (--staging-repository)`,
  ];
}
