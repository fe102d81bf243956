/**
 * The table of ends. Adding a kind of destination is a folder and one line in {@link DESTINATIONS}; adding a kind
 * of source, one line in {@link SOURCES}.
 */
import { MirrorError } from '../errors/index.js';
import type { RegistryTarget, Target } from '../reference/destination.js';
import { formatReference, type ImageReference } from '../reference/reference.js';
import type { UploadMode } from '../registry/index.js';
import { openDockerArchiveRef, openOciArchiveRef } from './archive/source-transports.js';
import { DOCKER_ARCHIVE_TRANSPORT, OCI_ARCHIVE_TRANSPORT } from './archive/transports.js';
import { openBundleSource, type BundleSourceOptions } from './bundle/source.js';
import { openDirDestinationRef } from './dir/destination.js';
import { DIR_TRANSPORT } from './dir/source.js';
import { openLayoutDestination } from './oci-layout/destination.js';
import { OCI_LAYOUT_TRANSPORT } from './oci-layout/source.js';
import { openRegistryDestination, type RegistryDestinationOptions } from './registry/destination.js';
import { connectRegistry, type RegistrySide } from './registry/connect.js';
import { openRegistrySource } from './registry/source.js';
import type { TransportName, TransportRef } from './refs.js';
import type { DestinationImage, ImageDestination, ImageName, ImageSource, StreamSource } from './types.js';

/** DestinationContext is what opening any destination may need (a registry needs the most). */
export type DestinationContext = RegistryDestinationOptions;

type Opener<T extends Target> = (target: T, ctx: DestinationContext) => Promise<ImageDestination>;

/** DESTINATIONS opens a destination for each kind of target. */
export const DESTINATIONS: { [K in Target['kind']]: Opener<Extract<Target, { kind: K }>> } = {
  registry: (t, ctx) => openRegistryDestination(t, ctx),
  'oci-layout': (t) => openLayoutDestination(t.path),
};

/** openDestination opens the destination for a parsed target. */
export function openDestination(target: Target, ctx: DestinationContext): Promise<ImageDestination> {
  const open = DESTINATIONS[target.kind] as Opener<Target>;
  return open(target, ctx);
}

/** SOURCES opens a source for each kind of source argument. */
export const SOURCES = {
  bundle: (path: string, options: BundleSourceOptions): Promise<StreamSource> => openBundleSource(path, options),
} as const;

export type { ImageDestination, StreamSource } from './types.js';

/** SideContext is what opening one side of a copy needs. */
export interface SideContext extends RegistrySide {
  /** Uploads (destination side). Defaults: the registry client's. */
  uploadMode?: UploadMode | undefined;
  chunkSize?: number | undefined;
  signal?: AbortSignal | undefined;
  /**
   * Source side: offer layers that an archive stores uncompressed (`docker-archive`) gzip-compressed, as a registry
   * destination wants them. Default: false (as stored).
   */
  compressLayers?: boolean | undefined;
  /**
   * Source side: a manifest the source builds itself (a docker archive's) uses OCI media types, as an OCI layout
   * destination wants (skopeo and containerd find only OCI manifests in one by name). Default: false (Docker schema 2).
   */
  ociManifest?: boolean | undefined;
  /** Destination side: a dry run, which opens what is there to read it and creates nothing. Default: false. */
  dryRun?: boolean | undefined;
}

/** OpenedSource is a source and the image named in it. */
export interface OpenedSource {
  source: ImageSource;
  image: ImageName;
  /** The image's name for messages and reports. */
  name: string;
  /** Its registry reference, when it has one. */
  reference?: ImageReference | undefined;
}

/** OpenedDestination is a destination and where the image goes in it. */
export interface OpenedDestination {
  destination: ImageDestination;
  image: DestinationImage;
  /** Its registry reference, when it has one. */
  reference?: ImageReference | undefined;
}

/** Transport opens the ends of one transport; a transport missing one cannot be that end. */
export interface Transport {
  source?: (ref: TransportRef, ctx: SideContext) => Promise<OpenedSource>;
  destination?: (ref: TransportRef, ctx: SideContext) => Promise<OpenedDestination>;
}

/** dockerOf narrows a location to the docker transport. */
function dockerOf(ref: TransportRef): Extract<TransportRef, { transport: 'docker' }> {
  if (ref.transport !== 'docker') throw new MirrorError('INTERNAL', `not a docker:// location: ${ref.transport}`);
  return ref;
}

/** TRANSPORTS maps each transport of the skopeo syntax to its openers: adding one is a folder and a line here. */
export const TRANSPORTS: Partial<Record<TransportName, Transport>> = {
  docker: {
    async source(r, ctx) {
      const { reference } = dockerOf(r);
      const { client, scheme } = await connectRegistry(reference.registry, ctx, { signal: ctx.signal });
      return {
        source: openRegistrySource(client, { scheme }),
        image: { repository: reference.repository, tag: reference.tag, digest: reference.digest },
        name: formatReference(reference),
        reference,
      };
    },
    async destination(r, ctx) {
      const { reference } = dockerOf(r);
      const { client, scheme } = await connectRegistry(reference.registry, ctx, { authenticate: true, signal: ctx.signal });
      const target: RegistryTarget = { kind: 'registry', host: reference.registry, namespace: '', scheme, explicitScheme: true };
      const destination = await openRegistryDestination(target, { ...ctx, client, learnTags: true });
      return {
        destination,
        image: { repository: reference.repository, tag: reference.tag, name: formatReference(reference) },
        reference,
      };
    },
  },
  oci: OCI_LAYOUT_TRANSPORT,
  'oci-archive': { ...OCI_ARCHIVE_TRANSPORT, source: openOciArchiveRef },
  'docker-archive': { ...DOCKER_ARCHIVE_TRANSPORT, source: openDockerArchiveRef },
  dir: { ...DIR_TRANSPORT, destination: openDirDestinationRef },
};

/** openSourceRef opens a location as a source, or says that its transport cannot be one. */
export function openSourceRef(ref: TransportRef, ctx: SideContext): Promise<OpenedSource> {
  const open = TRANSPORTS[ref.transport]?.source;
  if (open === undefined) throw new MirrorError('UNSUPPORTED', `${ref.transport}: cannot be read from yet`);
  return open(ref, ctx);
}

/** openDestinationRef opens a location as a destination, or says that its transport cannot be one. */
export function openDestinationRef(ref: TransportRef, ctx: SideContext): Promise<OpenedDestination> {
  const open = TRANSPORTS[ref.transport]?.destination;
  if (open === undefined) throw new MirrorError('UNSUPPORTED', `${ref.transport}: cannot be written to yet`);
  return open(ref, ctx);
}
