/**
 * A registry as a source (`docker://HOST/REPO:TAG`): names resolved with a manifest HEAD (or a GET by tag, for an
 * image about to be copied), manifests read and verified by digest, blobs streamed (a cut download resumes with
 * `Range` at the byte reached), referrers found through the referrers API or its fallback tag and through cosign's
 * `<alg>-<hex>.sig|.att|.sbom` tags, and tags listed page by page.
 */
import { MirrorError } from '../../errors/index.js';
import type { Descriptor } from '../../oci/manifest.js';
import { fallbackTag, RegistryClient } from '../../registry/index.js';
import type { ImageName, ImageSource, ManifestBytes, Referrer, ReferrerQuery, SourceOpOptions } from '../types.js';

/** COSIGN_SUFFIXES are the tags cosign attaches to `<alg>-<hex>`: signatures, attestations, SBOMs. */
export const COSIGN_SUFFIXES = ['.sig', '.att', '.sbom'] as const;

/** openRegistrySource gives a registry as a source, through a client for its host. */
export function openRegistrySource(client: RegistryClient, options: { scheme?: 'http' | 'https' | undefined } = {}): ImageSource {
  return new RegistrySource(client, options.scheme ?? 'https');
}

/** referenceOf gives the digest or tag a name asks for (the digest when both are given). */
function referenceOf(name: ImageName): string {
  const reference = name.digest ?? name.tag;
  if (reference === undefined) throw new MirrorError('USAGE', `${name.repository} names no tag or digest`);
  return reference;
}

class RegistrySource implements ImageSource {
  readonly kind = 'random' as const;
  readonly registry: string;

  constructor(
    private readonly client: RegistryClient,
    private readonly scheme: 'http' | 'https',
  ) {
    this.registry = client.host;
  }

  get description(): string {
    return `registry ${this.scheme}://${this.client.host}`;
  }

  async resolve(name: ImageName, options: SourceOpOptions): Promise<Descriptor> {
    const info = await this.client.headManifest(name.repository, referenceOf(name), { signal: options.signal });
    if (info === undefined) throw this.notFound(name);
    if (name.digest !== undefined && info.digest !== name.digest) {
      throw new MirrorError('DIGEST_MISMATCH', `${this.client.host}/${name.repository}@${name.digest} answered with digest ${info.digest}`, { digest: name.digest });
    }
    return { mediaType: info.mediaType, digest: info.digest, size: info.size };
  }

  private notFound(name: ImageName): MirrorError {
    return new MirrorError('NOT_FOUND', `${this.client.host}/${name.repository}${name.digest ? `@${name.digest}` : `:${name.tag}`} was not found`, {
      image: `${this.client.host}/${name.repository}`,
    });
  }

  async resolveRead(name: ImageName, options: SourceOpOptions): Promise<{ descriptor: Descriptor; manifest: ManifestBytes }> {
    // By digest, the bytes are checked against it; by tag, the digest is that of the bytes read.
    const m = await this.client.getManifest(name.repository, referenceOf(name), { signal: options.signal }).catch((e: unknown) => {
      throw e instanceof MirrorError && e.context.status === 404 ? this.notFound(name) : e;
    });
    return { descriptor: { mediaType: m.mediaType, digest: m.digest, size: m.bytes.byteLength }, manifest: { digest: m.digest, mediaType: m.mediaType, bytes: m.bytes } };
  }

  async manifest(repository: string, digest: string, options: SourceOpOptions): Promise<ManifestBytes> {
    const m = await this.client.getManifest(repository, digest, { signal: options.signal });
    return { digest: m.digest, mediaType: m.mediaType, bytes: m.bytes };
  }

  async openBlob(repository: string, desc: Descriptor, options: SourceOpOptions & { offset?: number | undefined }): Promise<AsyncIterable<Uint8Array>> {
    // The destination verifies the bytes it writes; hashing them here too would cost a second pass per byte.
    const reader = await this.client.getBlob(repository, desc.digest, { size: desc.size, verify: false, offset: options.offset, signal: options.signal });
    return reader.body;
  }

  async referrers(repository: string, digest: string, options: ReferrerQuery): Promise<Referrer[]> {
    const base = fallbackTag(digest);
    const tags = options.tagged === false ? [] : COSIGN_SUFFIXES.map((suffix) => `${base}${suffix}`);
    // The list and cosign's tags are asked at once: an unchanged image waits for one round trip, not four.
    const [answer, ...tagged] = await Promise.all([
      this.client.referrers(repository, digest, { signal: options.signal }),
      ...tags.map(async (tag): Promise<Referrer | undefined> => {
        const info = await this.client.headManifest(repository, tag, { signal: options.signal });
        return info === undefined ? undefined : { descriptor: { mediaType: info.mediaType, digest: info.digest, size: info.size }, via: 'tag', tag };
      }),
    ]);
    const out: Referrer[] = answer.descriptors.map((descriptor) => ({ descriptor, via: 'subject' as const }));
    for (const t of tagged) if (t !== undefined) out.push(t);
    return out;
  }

  tags(repository: string, options: SourceOpOptions): AsyncIterable<string> {
    return this.client.tags(repository, { signal: options.signal });
  }

  async close(): Promise<void> {}
}
