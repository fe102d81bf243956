/**
 * `oci-archive:FILE[:REF]` as a destination: an OCI image layout in a plain tar, written as a stream. Metadata comes
 * first in the tar (`oci-layout`, `index.json`, then every manifest, then configs and layers), so a reader that
 * streams the archive — `mirror push` of it — knows where each blob goes when it meets it. The copy engine honours
 * that order for a destination that declares `writeOrder: 'metadata-first'`: it plans every image and puts every
 * manifest before the first blob. Digests are kept; `index.json` names the image with
 * `org.opencontainers.image.ref.name` = REF (as skopeo writes it), plus `io.containerd.image.name` when REF is a full
 * image reference; referrers of the image (signatures, SBOMs) are listed in `index.json` too.
 */
import { DigestMismatchError, MirrorError } from '../../errors/index.js';
import { isContentDigest, sha256Digest, verifyingStream } from '../../oci/digest.js';
import { blobDescriptors, type Descriptor, parseManifest } from '../../oci/manifest.js';
import { MediaType } from '../../oci/media-types.js';
import { ANNOTATION_IMAGE_NAME, ANNOTATION_REF_NAME } from '../bundle/layout-state.js';
import type {
  BlobBody,
  BlobResult,
  DestinationCapabilities,
  DestinationImage,
  ImageDestination,
  PutBlobOptions,
  PutManifestResult,
} from '../types.js';
import { blobPath, bodyChunks, incompleteError, TarDestination } from './common.js';
import type { TarFileWriter } from './tar-writer.js';

/** openOciArchiveDestination gives an oci-archive destination writing `file` (nothing is created before the first write). */
export function openOciArchiveDestination(file: string): OciArchiveDestination {
  return new OciArchiveDestination(file);
}

/** OciArchiveDestination writes an OCI layout as a tar, metadata first. */
export class OciArchiveDestination extends TarDestination implements ImageDestination {
  readonly capabilities: DestinationCapabilities = { blobScope: 'global', writeOrder: 'metadata-first', parallelBlobWrites: false };
  /** Manifests put so far, by digest, written to the tar before the first blob. */
  private readonly manifests = new Map<string, { bytes: Uint8Array; mediaType: string }>();
  /** The entries of index.json. */
  private readonly entries: Descriptor[] = [];
  /** Digests whose blob is in the tar. */
  private readonly written = new Set<string>();
  /** Blob writes that failed, by digest (an image that needs one makes the archive incomplete). */
  private readonly failures = new Map<string, unknown>();
  private flushed = false;
  /** Why the archive can no longer be completed (its metadata could not be written). */
  private broken: unknown;

  constructor(file: string) {
    super(file, 'oci-archive');
  }

  async hasBlob(_repository: string, digest: string): Promise<boolean> {
    return this.written.has(digest) || this.manifests.has(digest);
  }

  async manifestDigest(_repository: string, reference: string): Promise<string | undefined> {
    if (isContentDigest(reference)) return this.manifests.has(reference) ? reference : undefined;
    return this.entries.find((e) => e.annotations?.[ANNOTATION_REF_NAME] === reference)?.digest;
  }

  async putManifest(
    image: DestinationImage,
    reference: string,
    bytes: Uint8Array,
    mediaType: string,
    options: { root?: boolean | undefined },
  ): Promise<PutManifestResult> {
    return this.serialize(async () => {
      this.assertMetadataOpen(image.name);
      // A name such as `busybox:latest` is no digest, though the OCI grammar would take it for one.
      const byDigest = isContentDigest(reference);
      if (byDigest && reference.startsWith('sha256:')) {
        const actual = sha256Digest(bytes);
        if (actual !== reference) throw new DigestMismatchError(reference, actual, { image: image.name, phase: 'manifest' });
      }
      const digest = byDigest ? reference : sha256Digest(bytes);
      this.manifests.set(digest, { bytes, mediaType });
      if (!byDigest || options.root) {
        const annotations: Record<string, string> = {};
        if (!byDigest) annotations[ANNOTATION_REF_NAME] = reference;
        if (!byDigest && image.annotationName !== undefined) annotations[ANNOTATION_IMAGE_NAME] = image.annotationName;
        this.addEntry({ mediaType, digest, size: bytes.byteLength, ...(Object.keys(annotations).length > 0 ? { annotations } : {}) });
      }
      return {};
    });
  }

  /** registerReferrer lists a referrer in index.json, where OCI layout readers (oras, regctl) look for it. */
  async registerReferrer(_repository: string, _subject: string, referrer: Descriptor): Promise<void> {
    await this.serialize(async () => {
      this.assertMetadataOpen(referrer.digest);
      if (!this.entries.some((e) => e.digest === referrer.digest && e.annotations?.[ANNOTATION_REF_NAME] === undefined)) this.entries.push({ ...referrer });
    });
  }

  /** addEntry adds an index.json entry; one with the same name (or, unnamed, the same digest) is replaced, as skopeo does. */
  private addEntry(entry: Descriptor): void {
    const name = entry.annotations?.[ANNOTATION_REF_NAME];
    const i = this.entries.findIndex((e) => (name !== undefined ? e.annotations?.[ANNOTATION_REF_NAME] === name : e.digest === entry.digest && e.annotations?.[ANNOTATION_REF_NAME] === undefined));
    if (i >= 0) this.entries.splice(i, 1);
    this.entries.push(entry);
  }

  private assertMetadataOpen(what: string): void {
    if (this.flushed) {
      throw new MirrorError('INTERNAL', `${this.description} writes its metadata first, but ${what.slice(0, 120)} came after the first blob`);
    }
  }

  async putBlob(_repository: string, expected: { digest?: string | undefined; size?: number | undefined }, body: BlobBody, options: PutBlobOptions): Promise<BlobResult> {
    return this.serialize(async () => {
      const digest = expected.digest;
      if (digest === undefined) throw new MirrorError('INTERNAL', `${this.description} needs the digest of every blob before it is written`);
      const tar = await this.flush(options.signal);
      if (this.written.has(digest)) return { digest, size: expected.size ?? 0 };
      let size = 0;
      const entry = await tar.begin({ name: blobPath(digest) });
      try {
        const checked = verifyingStream(bodyChunks(body), digest, expected.size, {
          phase: 'write',
          onBytes: (n) => {
            size += n;
            options.onBytes?.(n);
          },
        });
        await this.pump(entry, checked, options.signal);
        await this.endEntry(entry);
      } catch (e) {
        this.failures.set(digest, e);
        throw e;
      }
      this.written.add(digest);
      this.failures.delete(digest);
      return { digest, size };
    });
  }

  /** flush writes the metadata (once, before the first blob): `oci-layout`, `index.json`, every manifest. */
  private async flush(signal?: AbortSignal | undefined): Promise<TarFileWriter> {
    if (this.broken !== undefined) throw this.broken;
    const tar = await this.tar(signal);
    if (this.flushed) return tar;
    this.flushed = true;
    try {
      await tar.addFile('oci-layout', Buffer.from(JSON.stringify({ imageLayoutVersion: '1.0.0' })));
      await tar.addFile('index.json', Buffer.from(JSON.stringify({ schemaVersion: 2, mediaType: MediaType.OCI_INDEX, manifests: this.entries })));
      for (const [digest, m] of this.manifests) {
        await tar.addFile(blobPath(digest), m.bytes);
        this.written.add(digest);
      }
    } catch (e) {
      // The metadata is half written: nothing after it can make a valid archive.
      this.broken = e;
      throw e;
    }
    return tar;
  }

  /** missing lists the blobs that the manifests in the archive need and that were not written. */
  private missing(): string[] {
    const out = new Set<string>();
    for (const e of this.entries) if (!this.written.has(e.digest)) out.add(e.digest);
    for (const [digest, m] of this.manifests) {
      const parsed = parseManifest(m.bytes, m.mediaType, { digest });
      const needs = parsed.kind === 'index' ? parsed.index.manifests : blobDescriptors(parsed.manifest);
      for (const d of needs) if (!this.written.has(d.digest)) out.add(d.digest);
    }
    return [...out];
  }

  /**
   * commit finishes the tar and renames it into place. A run that named no image writes no file; an archive whose
   * images miss a blob (its write failed after index.json was written) is not committed.
   */
  async commit(options: { signal?: AbortSignal | undefined } = {}): Promise<void> {
    await this.serialize(async () => {
      if (this.entries.length === 0) {
        await this.close();
        return;
      }
      await this.flush(options.signal);
      const missing = this.missing();
      if (missing.length > 0) throw incompleteError(this.description, missing, this.failures);
      await this.commitOutput();
    });
  }
}
