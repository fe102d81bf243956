/**
 * The archive transports' openers for the TRANSPORTS table: `oci-archive:FILE[:REF]` and `docker-archive:FILE[:REF]`
 * as copy destinations. Their sources are oci-archive-source.ts and docker-archive-source.ts (a plain tar read in
 * place, a compressed one decompressed once into a private temporary file: open-archive.ts).
 */
import { MirrorError } from '../../errors/index.js';
import { clipInput } from '../../errors/quote.js';
import { formatReference, parseReference } from '../../reference/reference.js';
import { fullNameOf } from '../oci-layout/source.js';
import type { OpenedDestination, Transport } from '../index.js';
import { formatTransportRef, type TransportRef } from '../refs.js';
import { openDockerArchiveDestination } from './docker-archive.js';
import { openOciArchiveDestination } from './oci-archive.js';
import { checkArchivePath } from './output.js';

/** OCI_ARCHIVE_TRANSPORT writes `oci-archive:FILE[:REF]`: REF becomes the image's `org.opencontainers.image.ref.name`. */
export const OCI_ARCHIVE_TRANSPORT: Transport = {
  async destination(r: TransportRef): Promise<OpenedDestination> {
    if (r.transport !== 'oci-archive') throw new MirrorError('INTERNAL', `not an oci-archive location: ${r.transport}`);
    if (r.ref?.startsWith('@')) throw new MirrorError('USAGE', `oci-archive:${r.path}:${clipInput(r.ref)}: a destination is named by a tag or reference, not by a digest`);
    await checkArchivePath(r.path, { transport: 'oci-archive' });
    return {
      destination: openOciArchiveDestination(r.path),
      image: { repository: '', tag: r.ref, name: formatTransportRef(r), annotationName: r.ref === undefined ? undefined : fullNameOf(r.ref) },
    };
  },
};

/**
 * DOCKER_ARCHIVE_TRANSPORT writes `docker-archive:FILE[:REF]`: REF, normalized as docker normalizes it
 * (`busybox` -> `docker.io/library/busybox:latest`), becomes the image's RepoTags; without REF the image is untagged.
 */
export const DOCKER_ARCHIVE_TRANSPORT: Transport = {
  async destination(r: TransportRef): Promise<OpenedDestination> {
    if (r.transport !== 'docker-archive') throw new MirrorError('INTERNAL', `not a docker-archive location: ${r.transport}`);
    if (r.index !== undefined) throw new MirrorError('USAGE', `docker-archive:${r.path}:@${r.index}: a position (@N) names an image to read, not one to write`);
    let reference;
    if (r.ref !== undefined) {
      try {
        reference = parseReference(r.ref);
      } catch (e) {
        throw new MirrorError('USAGE', `docker-archive:${r.path}: ${e instanceof MirrorError ? e.message : String(e)}`);
      }
      if (reference.digest !== undefined) throw new MirrorError('USAGE', `docker-archive:${r.path}: a docker archive names images by tag, not by digest (${clipInput(r.ref)})`);
    }
    await checkArchivePath(r.path, { transport: 'docker-archive', refuseExisting: true });
    return {
      destination: openDockerArchiveDestination(r.path),
      image: {
        repository: reference?.repository ?? '',
        tag: reference?.tag,
        name: formatTransportRef(r),
        annotationName: reference === undefined ? undefined : formatReference(reference),
      },
      reference,
    };
  },
};
