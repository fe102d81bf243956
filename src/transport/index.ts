/**
 * The table of ends. Adding a kind of destination is a folder and one line in {@link DESTINATIONS}; adding a kind
 * of source, one line in {@link SOURCES}.
 */
import type { Target } from '../reference/destination.js';
import { openBundleSource, type BundleSourceOptions } from './bundle/source.js';
import { openLayoutDestination } from './oci-layout/destination.js';
import { openRegistryDestination, type RegistryDestinationOptions } from './registry/destination.js';
import type { ImageDestination, StreamSource } from './types.js';

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
