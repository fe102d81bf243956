/**
 * An OCI image layout directory as a destination (`oci:DIR`). Blobs are written to a temporary file, verified,
 * and only then renamed to `blobs/<alg>/<hex>`; `index.json` is written last, atomically, so the layout never
 * names anything that is not complete. Existing content is kept: pushing into a layout adds to it.
 */
import { randomBytes } from 'node:crypto';
import { createWriteStream } from 'node:fs';
import { mkdir, readFile, rename, rm, stat, writeFile } from 'node:fs/promises';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { join } from 'node:path';
import { abortError, errorMessage, MirrorError } from '../../errors/index.js';
import { DigestCounter, digestHex, verifyingStream } from '../../oci/digest.js';
import { MediaType } from '../../oci/media-types.js';
import type { Descriptor } from '../../oci/manifest.js';
import { isFullReference } from '../../reference/reference.js';
import { ANNOTATION_IMAGE_NAME, ANNOTATION_REF_NAME } from '../bundle/layout-state.js';
import type { BlobBody, BlobResult, DestinationImage, ImageDestination, MountResult, PutBlobOptions } from '../types.js';

/** openLayoutDestination opens (creating when missing) an OCI image layout directory. */
export async function openLayoutDestination(dir: string): Promise<ImageDestination> {
  const d = new LayoutDestination(dir);
  await d.init();
  return d;
}

function algHexPath(dir: string, digest: string): string {
  const i = digest.indexOf(':');
  return join(dir, 'blobs', digest.slice(0, i), digest.slice(i + 1));
}

class LayoutDestination implements ImageDestination {
  readonly blobScope = 'global' as const;
  private entries: Descriptor[] = [];

  constructor(private readonly dir: string) {}

  get description(): string {
    return `OCI layout ${this.dir}`;
  }

  async init(): Promise<void> {
    try {
      await mkdir(join(this.dir, 'blobs', 'sha256'), { recursive: true });
      const layoutFile = join(this.dir, 'oci-layout');
      try {
        await stat(layoutFile);
      } catch {
        await writeFile(layoutFile, JSON.stringify({ imageLayoutVersion: '1.0.0' }));
      }
      try {
        const idx = JSON.parse(await readFile(join(this.dir, 'index.json'), 'utf8')) as { manifests?: Descriptor[] };
        this.entries = Array.isArray(idx.manifests) ? idx.manifests : [];
      } catch (e) {
        if ((e as NodeJS.ErrnoException).code !== 'ENOENT') {
          throw new MirrorError('BAD_INPUT', `${join(this.dir, 'index.json')} exists but is not a valid index: ${errorMessage(e)}`, { file: this.dir });
        }
      }
    } catch (e) {
      if (e instanceof MirrorError) throw e;
      throw new MirrorError('BAD_INPUT', `cannot write the OCI layout ${this.dir}: ${errorMessage(e)}`, { file: this.dir, cause: e });
    }
  }

  async hasBlob(_repository: string, digest: string): Promise<boolean> {
    try {
      await stat(algHexPath(this.dir, digest));
      return true;
    } catch {
      return false;
    }
  }

  async mountBlob(): Promise<MountResult> {
    return { mounted: false };
  }

  async cancelSession(): Promise<void> {}

  async putBlob(_repository: string, expected: { digest?: string | undefined; size?: number | undefined }, body: BlobBody, options: PutBlobOptions): Promise<BlobResult> {
    const tmp = join(this.dir, 'blobs', `.tmp-${randomBytes(8).toString('hex')}`);
    const input = body.kind === 'bytes' ? once1(body.data) : body.open();
    let size = 0;
    const onBytes = (n: number): void => {
      size += n;
      options.onBytes?.(n);
    };
    // A known digest is checked on the way (the last chunk is held until it matches); otherwise it is computed.
    const counter = expected.digest === undefined ? new DigestCounter() : undefined;
    const checked =
      counter === undefined
        ? verifyingStream(input, expected.digest as string, expected.size, { phase: 'write', onBytes })
        : (async function* hashed(): AsyncGenerator<Uint8Array> {
            for await (const chunk of input) {
              counter.update(chunk);
              yield chunk;
              onBytes(chunk.byteLength);
            }
          })();
    const signal = options.signal;
    try {
      await pipeline(Readable.from(checked), createWriteStream(tmp, { flags: 'wx' }), signal ? { signal } : {});
      const digest = expected.digest ?? (counter as DigestCounter).digest();
      await mkdir(join(this.dir, 'blobs', digest.slice(0, digest.indexOf(':'))), { recursive: true });
      await rename(tmp, algHexPath(this.dir, digest));
      return { digest, size };
    } catch (e) {
      await rm(tmp, { force: true });
      if (signal?.aborted) throw abortError(signal);
      throw e;
    }
  }

  async manifestDigest(repository: string, reference: string): Promise<string | undefined> {
    if (reference.includes(':')) return (await this.hasBlob(repository, reference)) ? reference : undefined;
    // Pushed images are named `registry/repository:tag`; an image copied in as `oci:DIR:REF` by its ref.name alone.
    const named = (e: Descriptor): boolean =>
      e.annotations?.[ANNOTATION_IMAGE_NAME] === `${repository}:${reference}` || (repository === '' && e.annotations?.[ANNOTATION_REF_NAME] === reference);
    return this.entries.find(named)?.digest;
  }

  async putManifest(
    image: DestinationImage,
    reference: string,
    bytes: Uint8Array,
    mediaType: string,
    options: { root?: boolean | undefined; descriptor?: Descriptor | undefined },
  ): Promise<void> {
    const isDigest = reference.includes(':');
    const digest = isDigest ? reference : undefined;
    const written = await this.putBlob(image.repository, { digest, size: digest ? bytes.byteLength : undefined }, { kind: 'bytes', data: bytes }, {});
    if (isDigest && !options.root) return;
    const name = image.annotationName ?? image.name;
    // The source entry's annotations (creation time, title...), platform and artifactType are kept; the names are
    // this layout's own. org.opencontainers.image.ref.name holds the full reference, which skopeo accepts after
    // `oci:DIR:` and containerd and docker read as a full name, so two images that share a tag stay apart.
    const source = options.descriptor?.digest === written.digest ? options.descriptor : undefined;
    const annotations: Record<string, string> = { ...(source?.annotations ?? {}) };
    delete annotations[ANNOTATION_REF_NAME];
    // An empty name (`oci:DIR` with no REF) records the image by digest alone, as skopeo does.
    // containerd's image-name annotation holds full references only (`oci:DIR:1.0` records ref.name `1.0` alone).
    if (name !== '' && isFullReference(name)) annotations[ANNOTATION_IMAGE_NAME] = name;
    if (!isDigest && name !== '') annotations[ANNOTATION_REF_NAME] = name;
    const entry: Descriptor = {
      mediaType,
      digest: written.digest,
      size: bytes.byteLength,
      ...(source?.platform !== undefined ? { platform: source.platform } : {}),
      ...(source?.artifactType !== undefined ? { artifactType: source.artifactType } : {}),
      annotations,
    };
    this.entries =
      name === ''
        ? this.entries.filter((e) => e.digest !== written.digest || e.annotations?.[ANNOTATION_REF_NAME] !== undefined)
        : this.entries.filter((e) => e.annotations?.[ANNOTATION_IMAGE_NAME] !== name && (isDigest || e.annotations?.[ANNOTATION_REF_NAME] !== name));
    // (An entry is replaced by the name it was recorded under: its full reference, or its ref.name.)
    this.entries.push(entry);
  }

  async commit(): Promise<void> {
    const index = { schemaVersion: 2, mediaType: MediaType.OCI_INDEX, manifests: this.entries };
    const tmp = join(this.dir, `.index.json.${digestHex(randomBytes(4).toString('hex'))}`);
    await writeFile(tmp, JSON.stringify(index));
    await rename(tmp, join(this.dir, 'index.json'));
  }

  async close(): Promise<void> {}
}

async function* once1(data: Uint8Array): AsyncGenerator<Uint8Array> {
  yield data;
}
