/**
 * The commit order of an image's manifests: an index is written after every manifest it lists, which the registry
 * checks (distribution answers MANIFEST_BLOB_UNKNOWN otherwise). Manifests of one height do not depend on each other,
 * so they can be written at once: the platform manifests of an index, then the index.
 */
import type { ManifestNode } from './result.js';

/**
 * byHeight gives the manifests ordered by height, each with its `height`: 0 for an image manifest, 1 + the highest of
 * the manifests it lists for an index (`listed`, by digest; a digest it does not hold is an image manifest). The walk's
 * order is kept within one height. A child met first under a sibling index (and so walked after it) still goes first.
 */
export function byHeight(manifests: readonly ManifestNode[], listed: ReadonlyMap<string, readonly string[]>): ManifestNode[] {
  const heights = new Map<string, number>();
  const onPath = new Set<string>();
  const heightOf = (digest: string): number => {
    const known = heights.get(digest);
    if (known !== undefined) return known;
    let h = 0;
    const children = listed.get(digest);
    // A digest cannot list itself through its children (it would name its own hash); the path check keeps it finite anyway.
    if (children !== undefined && !onPath.has(digest)) {
      onPath.add(digest);
      for (const c of children) h = Math.max(h, heightOf(c) + 1);
      onPath.delete(digest);
    }
    heights.set(digest, h);
    return h;
  };
  return manifests.map((m) => ({ ...m, height: heightOf(m.digest) })).sort((a, b) => a.height - b.height);
}

/** waves splits manifests ordered by {@link byHeight} into runs of one height. */
export function waves(manifests: readonly ManifestNode[]): ManifestNode[][] {
  const out: ManifestNode[][] = [];
  for (const m of manifests) {
    const last = out[out.length - 1];
    if (last !== undefined && last[0]!.height === m.height) last.push(m);
    else out.push([m]);
  }
  return out;
}
