/** Media types of OCI and Docker manifests, configs and layers. */
export const MediaType = {
  OCI_INDEX: 'application/vnd.oci.image.index.v1+json',
  OCI_MANIFEST: 'application/vnd.oci.image.manifest.v1+json',
  OCI_CONFIG: 'application/vnd.oci.image.config.v1+json',
  OCI_LAYER: 'application/vnd.oci.image.layer.v1.tar',
  OCI_LAYER_GZIP: 'application/vnd.oci.image.layer.v1.tar+gzip',
  OCI_LAYER_ZSTD: 'application/vnd.oci.image.layer.v1.tar+zstd',
  OCI_EMPTY: 'application/vnd.oci.empty.v1+json',
  DOCKER_MANIFEST_LIST: 'application/vnd.docker.distribution.manifest.list.v2+json',
  DOCKER_MANIFEST: 'application/vnd.docker.distribution.manifest.v2+json',
  DOCKER_MANIFEST_V1: 'application/vnd.docker.distribution.manifest.v1+json',
  DOCKER_MANIFEST_V1_SIGNED: 'application/vnd.docker.distribution.manifest.v1+prettyjws',
  DOCKER_CONFIG: 'application/vnd.docker.container.image.v1+json',
  DOCKER_LAYER_GZIP: 'application/vnd.docker.image.rootfs.diff.tar.gzip',
  DOCKER_FOREIGN_LAYER: 'application/vnd.docker.image.rootfs.foreign.diff.tar.gzip',
  OCI_LAYER_NONDISTRIBUTABLE: 'application/vnd.oci.image.layer.nondistributable.v1.tar',
  OCI_LAYER_NONDISTRIBUTABLE_GZIP: 'application/vnd.oci.image.layer.nondistributable.v1.tar+gzip',
  OCI_LAYER_NONDISTRIBUTABLE_ZSTD: 'application/vnd.oci.image.layer.nondistributable.v1.tar+zstd',
} as const;

/**
 * FOREIGN_LAYER_MEDIA_TYPES are the layers that may be fetched from their `urls` instead of the registry: Docker
 * foreign layers and OCI non-distributable layers (deprecated in image-spec 1.1, still written by Windows tooling).
 */
export const FOREIGN_LAYER_MEDIA_TYPES: ReadonlySet<string> = new Set([
  MediaType.DOCKER_FOREIGN_LAYER,
  MediaType.OCI_LAYER_NONDISTRIBUTABLE,
  MediaType.OCI_LAYER_NONDISTRIBUTABLE_GZIP,
  MediaType.OCI_LAYER_NONDISTRIBUTABLE_ZSTD,
]);

/** INDEX_MEDIA_TYPES are the media types of manifests that list other manifests. */
export const INDEX_MEDIA_TYPES: ReadonlySet<string> = new Set([MediaType.OCI_INDEX, MediaType.DOCKER_MANIFEST_LIST]);


/** MANIFEST_MEDIA_TYPES are the media types of manifests and indexes that are copied with their digest kept. */
export const MANIFEST_MEDIA_TYPES: ReadonlySet<string> = new Set([MediaType.OCI_INDEX, MediaType.OCI_MANIFEST, MediaType.DOCKER_MANIFEST_LIST, MediaType.DOCKER_MANIFEST]);

/** MANIFEST_ACCEPT is the Accept list sent when fetching or checking manifests. */
export const MANIFEST_ACCEPT: readonly string[] = [
  MediaType.OCI_INDEX,
  MediaType.OCI_MANIFEST,
  MediaType.DOCKER_MANIFEST_LIST,
  MediaType.DOCKER_MANIFEST,
];

/** isIndexMediaType tells whether a media type is an index / manifest list. */
export function isIndexMediaType(mt: string | undefined): boolean {
  return mt !== undefined && INDEX_MEDIA_TYPES.has(mt);
}
