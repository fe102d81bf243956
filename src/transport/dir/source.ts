/**
 * A `dir:` image as a source (`dir:DIR`), as skopeo, podman and buildah write one (`skopeo copy ... dir:DIR`, often
 * the way an image is carried into an air gap): a `version` file ("Directory Transport Version: 1.x"), the image's
 * `manifest.json` (an index when it was copied with `--all`, its instances then in `<hex>.manifest.json`), and each
 * blob in a file named by the hex of its digest (containers/image's `digest.Encoded()`). The directory holds one
 * image; signatures (`signature-N`) are not read. Files are read as the OCI layout source reads them: inside DIR,
 * regular files only, manifests verified against their digests.
 */
import { join } from 'node:path';
import { MirrorError } from '../../errors/index.js';
import { clipInput } from '../../errors/quote.js';
import { digestHex } from '../../oci/digest.js';
import type { Descriptor } from '../../oci/manifest.js';
import { isValidDigest } from '../../reference/reference.js';
import type { OpenedSource, Transport } from '../index.js';
import { declaredMediaType, digestOf, LayoutSource, MAX_LAYOUT_MANIFEST_BYTES, realDirectory, sniffManifestType } from '../oci-layout/source.js';
import { formatTransportRef, type TransportRef } from '../refs.js';
import type { ImageName, ManifestBytes, Referrer, SourceOpOptions } from '../types.js';

/** DIR_VERSION is what a `dir:` image's `version` file says (containers/image writes 1.1, earlier 1.0). */
export const DIR_VERSION = /^Directory Transport Version: 1\.\d+$/;

/** mediaTypeOf gives a manifest's declared media type, else the one its fields show (OCI manifests may omit it). */
function mediaTypeOf(m: ManifestBytes): string {
  return m.mediaType || sniffManifestType(m.bytes);
}

/** openDirSource opens `dir` as a `dir:` image: its version file and manifest.json are read and checked now. */
export async function openDirSource(dir: string): Promise<DirSource> {
  const source = new DirSource(dir, await realDirectory(dir, 'dir'));
  await source.load();
  return source;
}

/** DirSource reads a `dir:` image: one image, its manifests and blobs named by digest. */
export class DirSource extends LayoutSource {
  private top: ManifestBytes | undefined;

  override get description(): string {
    return `directory ${this.dir}`;
  }

  protected override get where(): string {
    return `dir:${this.dir}`;
  }

  /** The image's own manifest, once loaded. */
  private get root(): ManifestBytes {
    if (this.top === undefined) throw new MirrorError('INTERNAL', `${this.where} was not loaded`);
    return this.top;
  }

  /** load reads `version` and `manifest.json`. */
  override async load(): Promise<void> {
    const version = await this.readInside('version', 1024, 'the version file');
    const manifest = await this.readInside('manifest.json', MAX_LAYOUT_MANIFEST_BYTES, 'manifest');
    if (version === undefined || manifest === undefined) {
      const lacks = [version === undefined ? 'version' : '', manifest === undefined ? 'manifest.json' : ''].filter((x) => x !== '').join(' and ');
      throw new MirrorError('BAD_INPUT', `${this.dir} is not a dir: image (skopeo copy ... dir:DIR writes one): it has no ${lacks}`, {
        file: this.dir,
        hint: 'for an OCI layout (index.json, blobs/) use oci:DIR',
      });
    }
    const said = version.toString('utf8').trim();
    if (!DIR_VERSION.test(said)) {
      throw new MirrorError('UNSUPPORTED', `${join(this.dir, 'version')} says "${clipInput(said, 60)}"; Directory Transport Version 1.x is read`, {
        file: join(this.dir, 'version'),
      });
    }
    this.top = { digest: digestOf(manifest, 'sha256'), mediaType: declaredMediaType(manifest) || sniffManifestType(manifest), bytes: manifest };
  }

  /** fileOf is the file name of a digest: its hex alone, whatever the algorithm (a digest is validated first). */
  private fileOf(digest: string): string {
    if (!isValidDigest(digest)) throw new MirrorError('BAD_INPUT', `invalid digest "${clipInput(digest)}" in ${this.where}`, { file: this.dir });
    return digestHex(digest);
  }

  protected override blobRel(digest: string): string {
    return this.fileOf(digest);
  }

  /** resolve gives the image's manifest.json: the directory holds one image, named by nothing but its path. */
  override async resolve(name: ImageName): Promise<Descriptor> {
    const root = this.root;
    if (name.digest !== undefined && name.digest !== root.digest) {
      throw new MirrorError('NOT_FOUND', `${this.where} holds ${root.digest}, not ${name.digest}`, { file: this.dir, digest: name.digest });
    }
    return { mediaType: root.mediaType, digest: root.digest, size: root.bytes.byteLength };
  }

  /** An instance of an index copied with --all is in `<hex>.manifest.json`. */
  protected override manifestRel(digest: string): string {
    return `${this.fileOf(digest)}.manifest.json`;
  }

  /** manifest gives manifest.json, or an instance of its index, verified as a layout's manifests are. */
  override async manifest(repository: string, digest: string, options: SourceOpOptions = {}): Promise<ManifestBytes> {
    const root = this.root;
    if (digest === root.digest) return root;
    const m = await super.manifest(repository, digest, options);
    return { ...m, mediaType: mediaTypeOf(m) };
  }

  /** A `dir:` image keeps no referrers (its signatures are skopeo's own files, not copied). */
  override async referrers(): Promise<Referrer[]> {
    return [];
  }

  /** A `dir:` image has no tags. */
  override async *tags(): AsyncGenerator<string, void, undefined> {}
}

/** DIR_TRANSPORT opens `dir:DIR` as a source (the destination is ./destination.ts, joined in ../index.ts). */
export const DIR_TRANSPORT: Transport = {
  async source(r: TransportRef): Promise<OpenedSource> {
    if (r.transport !== 'dir') throw new MirrorError('INTERNAL', `not a dir: location: ${r.transport}`);
    return { source: await openDirSource(r.path), image: { repository: '' }, name: formatTransportRef(r) };
  },
};
