/**
 * The archive transports' *source* openers for the TRANSPORTS table (src/transport/index.ts):
 * `oci-archive:FILE[:REF]` and `docker-archive:FILE[:REF|@N]`, plain or compressed (gzip, xz, zstd, bzip2).
 */
import { MirrorError } from '../../errors/index.js';
import { isValidDigest } from '../../reference/reference.js';
import type { OpenedSource, SideContext } from '../index.js';
import { formatTransportRef, type TransportRef } from '../refs.js';
import { openDockerArchiveSource } from './docker-archive-source.js';
import { openOciArchiveSource } from './oci-archive-source.js';

/** openOciArchiveRef opens `oci-archive:FILE[:REF]` as a source; REF as `oci:` takes it (ref.name, reference, `@DIGEST`, `@N`). */
export async function openOciArchiveRef(r: TransportRef, ctx: SideContext): Promise<OpenedSource> {
  if (r.transport !== 'oci-archive') throw new MirrorError('INTERNAL', `not an oci-archive location: ${r.transport}`);
  const source = await openOciArchiveSource(r.path, { events: ctx.events, signal: ctx.signal });
  const image = r.ref !== undefined && r.ref.startsWith('@') && isValidDigest(r.ref.slice(1)) ? { repository: '', digest: r.ref.slice(1) } : { repository: '', tag: r.ref };
  return { source, image, name: formatTransportRef(r) };
}

/**
 * openDockerArchiveRef opens `docker-archive:FILE[:REF|@N]` as a source. With `ctx.compressLayers` (the destination
 * is a registry) its uncompressed layers are offered gzip-compressed.
 */
export async function openDockerArchiveRef(r: TransportRef, ctx: SideContext): Promise<OpenedSource> {
  if (r.transport !== 'docker-archive') throw new MirrorError('INTERNAL', `not a docker-archive location: ${r.transport}`);
  const source = await openDockerArchiveSource(r.path, { compressLayers: ctx.compressLayers, ociManifest: ctx.ociManifest, events: ctx.events, signal: ctx.signal });
  const tag = r.index !== undefined ? `@${r.index}` : r.ref;
  return { source, image: { repository: '', tag }, name: formatTransportRef(r) };
}
