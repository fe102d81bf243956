/**
 * The table of ends. Adding a kind of destination is a folder and one line in {@link DESTINATIONS}; adding a kind
 * of source, one line in {@link SOURCES}.
 */
import type { CredentialResolver } from '../auth/types.js';
import type { EventSink } from '../events/index.js';
import type { HostSettingsResolver, RetryOptions } from '../net/types.js';
import type { Target } from '../reference/destination.js';
import type { UploadMode } from '../registry/index.js';
import { openBundleSource, type BundleSourceOptions } from './bundle/source.js';
import { openLayoutDestination } from './oci-layout/destination.js';
import { openRegistryDestination } from './registry/destination.js';
import type { ImageDestination, StreamSource } from './types.js';

/** DestinationContext is what opening any destination may need. */
export interface DestinationContext {
  settings: HostSettingsResolver;
  credentials: CredentialResolver;
  retry?: RetryOptions | undefined;
  uploadMode?: UploadMode | undefined;
  chunkSize?: number | undefined;
  events?: EventSink | undefined;
  signal?: AbortSignal | undefined;
}

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

export type { AnySource, ImageDestination, StreamSource } from './types.js';
