/**
 * `oci-archive:FILE[:REF]` as a source: a tar of an OCI image layout, read at random (src/transport/archive/tar-index.ts),
 * or, when the file is compressed, from a decompressed private copy (./open-archive.ts). Everything else is the OCI
 * layout source's: REF picks an `index.json` entry by `org.opencontainers.image.ref.name` as skopeo does (also a full
 * image reference, `@DIGEST` or `@N`), no REF takes the only image, manifests are verified against their digests,
 * referrers are the index.json entries with a `subject` or a cosign tag.
 */
import { join } from 'node:path';
import { MirrorError } from '../../errors/index.js';
import type { Descriptor } from '../../oci/manifest.js';
import { LayoutSource } from '../oci-layout/source.js';
import type { SourceOpOptions } from '../types.js';
import { openArchive, type OpenArchiveOptions, type OpenedArchive } from './open-archive.js';

/** openOciArchiveSource opens `file` as an OCI archive: indexed (decompressed first when compressed), index.json read. */
export async function openOciArchiveSource(file: string, options: Omit<OpenArchiveOptions, 'transport'> = {}): Promise<OciArchiveSource> {
  const archive = await openArchive(file, { ...options, transport: 'oci-archive' });
  const source = new OciArchiveSource(file, archive);
  try {
    await source.load();
  } catch (e) {
    await archive.close();
    if (e instanceof MirrorError && e.code === 'BAD_INPUT' && / is not an OCI image layout/.test(e.message)) {
      throw new MirrorError('BAD_INPUT', `${file} is not an OCI archive: it has no index.json`, { file, hint: 'for a `docker save` tar use docker-archive:' });
    }
    throw e;
  }
  return source;
}

/** OciArchiveSource reads an OCI layout inside a tar. */
export class OciArchiveSource extends LayoutSource {
  constructor(
    file: string,
    private readonly archive: OpenedArchive,
  ) {
    super(file, file);
  }

  override get description(): string {
    return `oci-archive ${this.dir}${this.archive.compression === 'none' ? '' : ` (${this.archive.compression}, decompressed into a temporary file)`}`;
  }

  protected override get where(): string {
    return `oci-archive:${this.dir}`;
  }

  /** The temporary file holding the decompressed archive, if any (for tests). */
  get tempFile(): string | undefined {
    return this.archive.tempFile;
  }

  protected override async readInside(rel: string, max: number, what: string): Promise<Buffer | undefined> {
    const entry = this.archive.tar.find(rel);
    if (entry === undefined) return undefined;
    return this.archive.tar.read(entry, max, what);
  }

  protected override async openBlobFile(rel: string, desc: Descriptor, options: SourceOpOptions & { offset?: number | undefined }): Promise<AsyncIterable<Uint8Array>> {
    const entry = this.archive.tar.find(rel);
    if (entry === undefined) {
      throw new MirrorError('BAD_INPUT', `blob ${desc.digest} is missing from ${this.dir}: it has no ${rel}`, { file: this.dir, digest: desc.digest });
    }
    if (entry.size !== desc.size) {
      throw new MirrorError('BAD_INPUT', `blob ${desc.digest} in ${this.dir} has ${entry.size} bytes, its descriptor says ${desc.size}`, { file: join(this.dir, rel), digest: desc.digest });
    }
    return this.archive.tar.stream(entry, { start: options.offset, signal: options.signal });
  }

  override async close(): Promise<void> {
    await this.archive.close();
  }
}
