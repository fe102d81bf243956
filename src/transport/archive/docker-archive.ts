/**
 * `docker-archive:FILE[:REF]` as a destination: the `docker save` format that `docker load`, `podman load` and
 * `skopeo copy docker-archive:` read. Layers are stored uncompressed, as skopeo stores them (the config's diff_ids
 * must match the layer tars): gzip and zstd layers are decoded on the way, hashed, and named `<diff_id hex>.tar`; the
 * config is kept byte for byte (`<hex>.json`), so the image ID is unchanged, but the manifest digest necessarily
 * changes (the outcome's `converted` note says so). At commit: the legacy per-layer directories (`<id>/VERSION`,
 * `<id>/json`, `<id>/layer.tar` linking to the layer), `manifest.json` (Config, RepoTags = [REF normalized as docker
 * normalizes it, registry included, as skopeo writes it], Layers) and `repositories`.
 *
 * One image per name: an index is refused before anything is written, naming its platforms, so the user picks one
 * with `--platform` (skopeo would pick this machine's platform silently; mirror asks instead, since an index is
 * copied whole everywhere else). Referrers cannot be kept in this format: the destination says so in its
 * capabilities and the engine does not look for them.
 */
import { DigestMismatchError, MirrorError } from '../../errors/index.js';
import { clipInput } from '../../errors/quote.js';
import { DigestCounter, digestHex, sha256Digest, verifyingStream } from '../../oci/digest.js';
import { type Descriptor, parseManifest } from '../../oci/manifest.js';
import { MediaType } from '../../oci/media-types.js';
import { isValidDigest } from '../../reference/reference.js';
import type {
  BlobBody,
  BlobResult,
  DestinationCapabilities,
  DestinationImage,
  ImageDestination,
  PutBlobOptions,
  PutManifestResult,
} from '../types.js';
import { bodyChunks, incompleteError, TarDestination } from './common.js';
import { decodeStream, type LayerCompression } from './decode.js';
import { parseJson } from '../../oci/json.js';

/** MAX_CONFIG_BYTES bounds an image config held in memory (configs are a few KiB; distribution limits manifests to 4 MiB). */
export const MAX_CONFIG_BYTES = 16 * 1024 * 1024;

/** CONFIG_MEDIA_TYPES are the configs of container images, the only thing `docker load` takes. */
const CONFIG_MEDIA_TYPES: ReadonlySet<string> = new Set([MediaType.DOCKER_CONFIG, MediaType.OCI_CONFIG]);

/** LEGACY_CONFIG_FIELDS are the config fields the legacy top-layer `json` repeats (as docker and skopeo write it). */
const LEGACY_CONFIG_FIELDS = ['architecture', 'config', 'container', 'container_config', 'created', 'docker_version', 'os'] as const;

/**
 * layerCompressionOf gives how a layer media type is compressed, or undefined for what is not a filesystem layer
 * (an artifact's blob): Docker's `rootfs.diff.tar[.gzip|.zstd]`, OCI's `layer.v1.tar[+gzip|+zstd]` and their
 * non-distributable and foreign variants.
 */
export function layerCompressionOf(mediaType: string): LayerCompression | undefined {
  const m = /^application\/vnd\.(?:oci\.image\.layer(?:\.nondistributable)?\.v1\.tar|docker\.image\.rootfs\.(?:foreign\.)?diff\.tar)(?:[+.](gzip|zstd))?$/.exec(mediaType);
  if (!m) return undefined;
  return (m[1] as 'gzip' | 'zstd' | undefined) ?? 'none';
}

/** Role is what a blob is to the images put so far. */
type Role = { kind: 'config' } | { kind: 'layer'; compression: LayerCompression };

/** Stored is a blob as it is in the archive. */
interface Stored {
  /** Its path in the archive. */
  path: string;
  /** sha256 of what was stored (a layer's diff_id). */
  diffId: string;
}

/** DockerImage is one image to list in manifest.json. */
interface DockerImage {
  name: string;
  repoTags: string[];
  config: Descriptor;
  layers: Descriptor[];
}

/** openDockerArchiveDestination gives a docker-archive destination writing `file` (nothing is created before the first write). */
export function openDockerArchiveDestination(file: string): DockerArchiveDestination {
  return new DockerArchiveDestination(file);
}

/** DockerArchiveDestination writes a `docker save` tar. */
export class DockerArchiveDestination extends TarDestination implements ImageDestination {
  /**
   * Metadata first: the engine puts each image's manifest before its blobs, so an index is refused before a byte is
   * written and every blob's role (config, or a layer and its compression) is known when it arrives. In the tar
   * itself manifest.json comes last, as `docker save` writes it.
   */
  readonly capabilities: DestinationCapabilities = { blobScope: 'global', writeOrder: 'metadata-first', parallelBlobWrites: false, referrers: false };
  private readonly roles = new Map<string, Role>();
  private readonly images: DockerImage[] = [];
  private readonly stored = new Map<string, Stored>();
  private readonly configs = new Map<string, Uint8Array>();
  private readonly paths = new Set<string>();
  private readonly failures = new Map<string, unknown>();

  constructor(file: string) {
    super(file, 'docker-archive');
  }

  async hasBlob(_repository: string, digest: string): Promise<boolean> {
    return this.stored.has(digest);
  }

  async manifestDigest(): Promise<string | undefined> {
    return undefined;
  }

  async putManifest(
    image: DestinationImage,
    reference: string,
    bytes: Uint8Array,
    mediaType: string,
    options: { root?: boolean | undefined },
  ): Promise<PutManifestResult> {
    return this.serialize(async () => {
      const byDigest = isValidDigest(reference);
      // A platform manifest under an index: nothing to keep (the index itself is refused when it arrives as the root).
      if (byDigest && !options.root) return {};
      const parsed = parseManifest(bytes, mediaType, { image: image.name, digest: byDigest ? reference : undefined });
      if (parsed.kind === 'index') {
        const platforms = parsed.index.manifests.map((d) => (d.platform ? [d.platform.os, d.platform.architecture, d.platform.variant].filter(Boolean).join('/') : d.digest.slice(0, 19)));
        const shown = platforms.slice(0, 6).join(', ') + (platforms.length > 6 ? `, ... (${platforms.length})` : '');
        throw new MirrorError('USAGE', `docker-archive holds one image, not an index (${shown})`, { file: this.file, hint: 'choose one with --platform OS/ARCH' });
      }
      if (byDigest && reference.startsWith('sha256:') && sha256Digest(bytes) !== reference) throw new DigestMismatchError(reference, sha256Digest(bytes), { image: image.name, phase: 'manifest' });
      const m = parsed.manifest;
      if (!CONFIG_MEDIA_TYPES.has(m.config.mediaType)) {
        throw new MirrorError('UNSUPPORTED', `${this.description} holds container images only, and the source is an artifact (config ${clipInput(m.config.mediaType)})`);
      }
      const layers: Array<{ d: Descriptor; compression: LayerCompression }> = [];
      for (const d of m.layers) {
        const compression = layerCompressionOf(d.mediaType);
        if (compression === undefined) throw new MirrorError('UNSUPPORTED', `${this.description} cannot hold layer ${d.digest} of media type ${clipInput(d.mediaType)}: it is not a filesystem layer`, { digest: d.digest });
        if (Array.isArray(d.urls) && d.urls.length > 0) {
          throw new MirrorError('UNSUPPORTED', `${this.description} needs every layer, and ${d.digest} is a foreign layer kept at ${clipInput(d.urls[0])}`, { digest: d.digest });
        }
        layers.push({ d, compression });
      }
      this.roles.set(m.config.digest, { kind: 'config' });
      for (const { d, compression } of layers) this.roles.set(d.digest, { kind: 'layer', compression });
      const repoTags = !byDigest && image.annotationName !== undefined ? [image.annotationName] : [];
      this.images.push({ name: image.name, repoTags, config: m.config, layers: m.layers });
      const decoded = layers.filter((l) => l.compression !== 'none').length;
      const converted =
        `docker-archive stores layers uncompressed (${decoded} of ${layers.length} decompressed) and keeps no manifest: ` +
        `the image's manifest digest changes; its config ${m.config.digest} (the image ID) is kept`;
      return { converted };
    });
  }

  async putBlob(_repository: string, expected: { digest?: string | undefined; size?: number | undefined }, body: BlobBody, options: PutBlobOptions): Promise<BlobResult> {
    return this.serialize(async () => {
      const digest = expected.digest;
      if (digest === undefined) throw new MirrorError('INTERNAL', `${this.description} needs the digest of every blob before it is written`);
      const role = this.roles.get(digest);
      if (role === undefined) throw new MirrorError('INTERNAL', `${this.description}: blob ${digest} belongs to no image manifest put before it`, { digest });
      let size = 0;
      const onBytes = (n: number): void => {
        size += n;
        options.onBytes?.(n);
      };
      try {
        const checked = verifyingStream(bodyChunks(body), digest, expected.size, { phase: 'write', onBytes });
        if (role.kind === 'config') await this.writeConfig(digest, checked, options.signal);
        else await this.writeLayer(digest, role.compression, checked, options.signal);
      } catch (e) {
        this.failures.set(digest, e);
        throw e;
      }
      this.failures.delete(digest);
      return { digest, size };
    });
  }

  /** writeConfig keeps a config byte for byte as `<hex>.json` (and in memory, for the diff_id check and legacy metadata). */
  private async writeConfig(digest: string, chunks: AsyncIterable<Uint8Array>, signal: AbortSignal | undefined): Promise<void> {
    const parts: Uint8Array[] = [];
    let total = 0;
    for await (const c of chunks) {
      total += c.byteLength;
      if (total > MAX_CONFIG_BYTES) throw new MirrorError('BAD_INPUT', `config ${digest} is larger than ${MAX_CONFIG_BYTES / 1024 / 1024} MiB`, { digest });
      parts.push(c);
    }
    const bytes = Buffer.concat(parts, total);
    const path = `${digestHex(sha256Digest(bytes))}.json`;
    if (!this.paths.has(path)) {
      await (await this.tar(signal)).addFile(path, bytes);
      this.paths.add(path);
    }
    this.configs.set(digest, bytes);
    this.stored.set(digest, { path, diffId: sha256Digest(bytes) });
  }

  /** writeLayer stores a layer uncompressed as `<diff_id hex>.tar`, decoding it on the way; a tar already stored is not written twice. */
  private async writeLayer(digest: string, compression: LayerCompression, chunks: AsyncIterable<Uint8Array>, signal: AbortSignal | undefined): Promise<void> {
    const tar = await this.tar(signal);
    const entry = await tar.begin();
    const counter = new DigestCounter();
    const decoded = decodeStream(chunks, compression, { what: `layer ${digest}`, signal });
    await this.pump(entry, tapped(decoded, (c) => counter.update(c)), signal);
    const diffId = counter.digest();
    const path = `${digestHex(diffId)}.tar`;
    if (this.paths.has(path)) entry.rollback();
    else {
      await this.endEntry(entry, path);
      this.paths.add(path);
    }
    this.stored.set(digest, { path, diffId });
  }

  /**
   * commit checks every image is complete and its layers match its config's diff_ids, writes the legacy layer
   * directories, `manifest.json` and `repositories`, and renames the tar into place. A run that put no image
   * writes no file.
   */
  async commit(options: { signal?: AbortSignal | undefined } = {}): Promise<void> {
    await this.serialize(async () => {
      if (this.images.length === 0) {
        await this.close();
        return;
      }
      const missing = [...new Set(this.images.flatMap((img) => [img.config, ...img.layers].map((d) => d.digest)))].filter((d) => !this.stored.has(d));
      if (missing.length > 0) throw incompleteError(this.description, missing, this.failures);
      const tar = await this.tar(options.signal);
      const items: Array<{ Config: string; RepoTags: string[] | null; Layers: string[] }> = [];
      const repositories: Record<string, Record<string, string>> = {};
      const legacyWritten = new Set<string>();
      for (const img of this.images) {
        const configBytes = this.configs.get(img.config.digest)!;
        const config = this.checkDiffIds(img, configBytes);
        const layerPaths = img.layers.map((l) => this.stored.get(l.digest)!.path);
        // Legacy metadata: a directory per layer, IDs chained as docker's chain IDs are.
        let parent: string | undefined;
        let chain: string | undefined;
        for (const [i, l] of img.layers.entries()) {
          const stored = this.stored.get(l.digest)!;
          chain = chain === undefined ? stored.diffId : sha256Digest(`${chain} ${stored.diffId}`);
          const fields: Record<string, unknown> = {};
          if (parent !== undefined) fields.parent = parent;
          if (i === img.layers.length - 1) for (const k of LEGACY_CONFIG_FIELDS) if (config[k] !== undefined) fields[k] = config[k];
          const id = digestHex(sha256Digest(JSON.stringify({ ...fields, layer_id: chain })));
          if (!legacyWritten.has(id)) {
            legacyWritten.add(id);
            await tar.addDirectory(id);
            await tar.addFile(`${id}/VERSION`, Buffer.from('1.0'));
            await tar.addFile(`${id}/json`, Buffer.from(JSON.stringify({ id, ...fields })));
            await tar.addSymlink(`${id}/layer.tar`, `../${stored.path}`);
          }
          parent = id;
        }
        const configPath = this.stored.get(img.config.digest)!.path;
        const same = items.find((it) => it.Config === configPath && it.Layers.join('\n') === layerPaths.join('\n'));
        if (same) same.RepoTags = [...new Set([...(same.RepoTags ?? []), ...img.repoTags])];
        else items.push({ Config: configPath, RepoTags: img.repoTags.length > 0 ? [...img.repoTags] : null, Layers: layerPaths });
        for (const t of img.repoTags) {
          const colon = t.lastIndexOf(':');
          if (parent !== undefined) (repositories[t.slice(0, colon)] ??= {})[t.slice(colon + 1)] = parent;
        }
      }
      await tar.addFile('manifest.json', Buffer.from(JSON.stringify(items)));
      await tar.addFile('repositories', Buffer.from(JSON.stringify(repositories)));
      await this.commitOutput();
    });
  }

  /** checkDiffIds checks the stored layers against the config's rootfs.diff_ids and gives the parsed config. */
  private checkDiffIds(img: DockerImage, configBytes: Uint8Array): Record<string, unknown> {
    let config: Record<string, unknown>;
    try {
      config = parseJson(configBytes) as Record<string, unknown>;
    } catch (e) {
      throw new MirrorError('BAD_INPUT', `config ${img.config.digest} of ${img.name} is not valid JSON`, { digest: img.config.digest, cause: e });
    }
    const ids = (config.rootfs as { diff_ids?: unknown } | undefined)?.diff_ids;
    if (!Array.isArray(ids) || ids.length !== img.layers.length) {
      throw new MirrorError('BAD_INPUT', `config ${img.config.digest} lists ${Array.isArray(ids) ? ids.length : 'no'} diff_ids for ${img.layers.length} layer(s); docker load would refuse the image`, {
        digest: img.config.digest,
      });
    }
    for (const [i, l] of img.layers.entries()) {
      const got = this.stored.get(l.digest)!.diffId;
      if (ids[i] !== got) {
        throw new MirrorError('BAD_INPUT', `layer ${i} (${l.digest}) decompresses to ${got}, but the config lists diff_id ${clipInput(ids[i])}`, { digest: l.digest });
      }
    }
    return config;
  }
}

/** tapped passes chunks through, showing each to `see`. */
async function* tapped(input: AsyncIterable<Uint8Array>, see: (chunk: Uint8Array) => void): AsyncGenerator<Uint8Array, void, undefined> {
  for await (const c of input) {
    see(c);
    yield c;
  }
}
