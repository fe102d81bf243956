/**
 * Platforms (`linux/arm64/v8`): parsing and formatting, matching the way containerd normalizes them, choosing the
 * instances of a multi-platform image (`--platform`), and naming the platforms an exported index lacks.
 */
import { MirrorError } from '../errors/index.js';
import { clipInput } from '../errors/quote.js';
import { sha256Digest } from './digest.js';
import { type Descriptor, type ImageIndex, parseManifest, type Platform } from './manifest.js';
import { isIndexMediaType, MediaType } from './media-types.js';
import { parseJson } from './json.js';

/** PlatformSpec is one wanted platform (`--platform`), spelled the OCI way (`amd64`, not `x86_64`). */
export interface PlatformSpec {
  os: string;
  architecture: string;
  /** Matched when given; when absent, the architecture's default variant (or none) matches. */
  variant?: string | undefined;
}

/** parsePlatform reads `OS/ARCH[/VARIANT]` (`linux/arm64/v8`); a USAGE error names a bad value. */
export function parsePlatform(text: string): PlatformSpec {
  const parts = text.trim().toLowerCase().split('/');
  const [os, architecture, variant] = parts;
  const ok = parts.length >= 2 && parts.length <= 3 && parts.every((p) => /^[a-z0-9._-]+$/.test(p));
  if (!ok || !os || !architecture) {
    throw new MirrorError('USAGE', `invalid --platform "${clipInput(text, 60)}": use OS/ARCH[/VARIANT], e.g. linux/amd64 or linux/arm64/v8`);
  }
  const n = normalizePlatform({ os, architecture, variant });
  return { os: n.os, architecture: n.architecture, variant: variant === undefined ? undefined : n.variant };
}

/** formatPlatform writes a platform as `os/arch[/variant]`. */
export function formatPlatform(p: { os?: string | undefined; architecture?: string | undefined; variant?: string | undefined }): string {
  // Names come from bundles and registries: each part is quoted short (see clipInput).
  return [p.os ?? '?', p.architecture ?? '?', ...(p.variant ? [p.variant] : [])].map((part) => clipInput(part, 40)).join('/');
}

/**
 * normalizePlatform spells a platform the one way containerd compares them: aliases mapped (`x86_64` -> `amd64`,
 * `aarch64` -> `arm64`, `armhf` -> `arm/v7`, `armel` -> `arm/v6`, `macos` -> `darwin`), default variants written
 * (`arm64` is `arm64/v8`, `arm` is `arm/v7`), `amd64/v1` the same as `amd64`.
 */
export function normalizePlatform(p: { os?: string | undefined; architecture?: string | undefined; variant?: string | undefined }): {
  os: string;
  architecture: string;
  variant: string;
} {
  let os = (p.os ?? '').toLowerCase();
  if (os === 'macos') os = 'darwin';
  let architecture = (p.architecture ?? '').toLowerCase();
  let variant = (p.variant ?? '').toLowerCase();
  const alias: Record<string, [string, string?]> = { x86_64: ['amd64'], 'x86-64': ['amd64'], aarch64: ['arm64'], armhf: ['arm', 'v7'], armel: ['arm', 'v6'], i386: ['386'] };
  const a = alias[architecture];
  if (a !== undefined) {
    architecture = a[0];
    if (variant === '' && a[1] !== undefined) variant = a[1];
  }
  if (architecture === 'amd64' && variant === 'v1') variant = '';
  if (architecture === 'arm64' && (variant === '' || variant === '8')) variant = 'v8';
  if (architecture === 'arm') {
    if (variant === '') variant = 'v7';
    else if (/^[5-8]$/.test(variant)) variant = `v${variant}`;
  }
  return { os, architecture, variant };
}

/** platformMatches tells whether `have` (an index entry's or a config's platform) is the wanted one, once both are normalized. */
export function platformMatches(want: PlatformSpec, have: Platform | undefined): boolean {
  if (have === undefined) return false;
  const a = normalizePlatform(want);
  const b = normalizePlatform(have);
  return a.os === b.os && a.architecture === b.architecture && a.variant === b.variant;
}

/** configPlatform gives the platform an image config states (`os`, `architecture`, `variant`), or undefined. */
export function configPlatform(config: unknown): Platform | undefined {
  if (typeof config !== 'object' || config === null) return undefined;
  const c = config as Record<string, unknown>;
  if (typeof c.os !== 'string' || typeof c.architecture !== 'string' || c.os === '' || c.architecture === '') return undefined;
  return { os: c.os, architecture: c.architecture, ...(typeof c.variant === 'string' && c.variant !== '' ? { variant: c.variant } : {}) };
}

/** ContentLookup gives the bytes of a manifest or a small blob (a config) the source holds, by digest. */
export type ContentLookup = (digest: string) => Uint8Array | undefined;

/**
 * platformOf tells the platform of an image manifest: from its descriptor, else from its config when the source
 * holds both; undefined when that cannot be known.
 */
export function platformOf(desc: Descriptor, lookup: ContentLookup): Platform | undefined {
  if (desc.platform?.os && desc.platform.architecture) return desc.platform;
  const bytes = lookup(desc.digest);
  if (bytes === undefined) return undefined;
  try {
    const parsed = parseManifest(bytes, desc.mediaType);
    if (parsed.kind !== 'image') return undefined;
    const config = lookup(parsed.manifest.config.digest);
    if (config === undefined) return undefined;
    return configPlatform(parseJson(config) as unknown);
  } catch {
    return undefined;
  }
}

/** SelectedRoot is what goes under an image's name once its platforms have been chosen. */
export interface SelectedRoot {
  /** The root to push: the image's own, one of its manifests, or a new index. */
  descriptor: Descriptor;
  /** The bytes of a new index (absent when the root is a manifest the source holds). */
  bytes?: Uint8Array | undefined;
  /** Set when what goes under the name is not the source's root: what was chosen. */
  converted?: string | undefined;
  /** Something to tell the user that is not a failure (a platform that could not be checked). */
  warning?: string | undefined;
}

/** MAX_INDEX_DEPTH bounds the nested indexes looked through for platform manifests. */
const MAX_INDEX_DEPTH = 4;

/** ATTESTATION_REFERENCE_DIGEST is where BuildKit's attestation manifests name the image manifest they describe. */
const ATTESTATION_REFERENCE_DIGEST = 'vnd.docker.reference.digest';

/**
 * selectPlatforms chooses the instances of an image for `--platform`, as `mirror copy` does. Every platform asked for
 * must be in the index (else NOT_FOUND naming the platforms it has). One manifest chosen: the root becomes that
 * manifest (as `skopeo copy` without `--all` does). Several: a new index of just those, with the BuildKit attestations
 * that describe them; when that is everything the index has, the index itself, digest kept. A single-platform image
 * passes when its platform (from index.json, else its config) is among those asked for, and is pushed as it is, with a
 * warning, when neither states it; it fails naming its platform otherwise. BAD_INPUT when a chosen manifest is not
 * in the bundle.
 */
export function selectPlatforms(root: Descriptor, wanted: readonly PlatformSpec[], lookup: ContentLookup, name: string): SelectedRoot {
  const asked = wanted.map(formatPlatform).join(', ');
  const rootBytes = lookup(root.digest);
  if (!isIndexMediaType(root.mediaType) && rootBytes !== undefined) {
    let kind: string;
    try {
      kind = parseManifest(rootBytes, root.mediaType).kind;
    } catch {
      return { descriptor: root }; // a bad manifest fails when it is planned
    }
    if (kind === 'image') {
      const have = platformOf(root, lookup);
      if (have === undefined) {
        return { descriptor: root, warning: `${name}: its platform is not stated (no platform in index.json, no config at hand); pushed as it is` };
      }
      if (wanted.some((w) => platformMatches(w, have))) return { descriptor: root };
      throw new MirrorError('NOT_FOUND', `${name} is a ${formatPlatform(have)} image, not ${asked} (--platform)`, { image: name, digest: root.digest });
    }
  }
  if (rootBytes === undefined) return { descriptor: root }; // missing: planning says so
  let parsed;
  try {
    parsed = parseManifest(rootBytes, root.mediaType);
  } catch {
    return { descriptor: root };
  }
  if (parsed.kind !== 'index') return { descriptor: root };
  const index = parsed.index;

  // Every platform manifest under the index (nested indexes flattened), in index order.
  const leaves: Array<{ desc: Descriptor; platform: Platform | undefined }> = [];
  const seen = new Set<string>();
  const visit = (ix: ImageIndex, depth: number): void => {
    for (const child of ix.manifests) {
      if (seen.has(child.digest)) continue;
      seen.add(child.digest);
      if (isIndexMediaType(child.mediaType)) {
        const bytes = lookup(child.digest);
        if (bytes === undefined || depth >= MAX_INDEX_DEPTH) continue;
        try {
          const inner = parseManifest(bytes, child.mediaType);
          if (inner.kind === 'index') visit(inner.index, depth + 1);
        } catch {
          /* a bad nested index holds nothing to choose */
        }
        continue;
      }
      leaves.push({ desc: child, platform: platformOf(child, lookup) });
    }
  };
  visit(index, 0);
  const isAttestation = (d: Descriptor): boolean => d.annotations?.[ATTESTATION_REFERENCE_DIGEST] !== undefined;
  const images = leaves.filter((l) => !isAttestation(l.desc) && !(l.platform?.os === 'unknown' && l.platform.architecture === 'unknown'));
  const chosen: Array<{ desc: Descriptor; platform: Platform }> = [];
  const lacking: string[] = [];
  for (const w of wanted) {
    const hit = images.find((l) => platformMatches(w, l.platform));
    if (hit === undefined) lacking.push(formatPlatform(w));
    else if (!chosen.some((c) => c.desc === hit.desc)) chosen.push({ desc: hit.desc, platform: hit.platform! });
  }
  if (lacking.length > 0) {
    // As mirror copy: every platform asked for must be there.
    const has = images.map((l) => (l.platform ? formatPlatform(l.platform) : `${l.desc.digest.slice(0, 19)} (platform not stated)`));
    throw new MirrorError('NOT_FOUND', `${name} has no ${lacking.join(', ')} platform (it has ${listSome(has) || 'no platform manifests'})`, {
      image: name,
      digest: root.digest,
    });
  }
  const absent = chosen.filter((c) => lookup(c.desc.digest) === undefined);
  if (absent.length > 0) {
    const which = absent.map((c) => formatPlatform(c.platform)).join(', ');
    throw new MirrorError(
      'BAD_INPUT',
      `${name}: the manifest of ${which} is not in the bundle (exported without all platforms); export it again with all platforms`,
      { image: name, digest: absent[0]!.desc.digest },
    );
  }
  const names = chosen.map((c) => formatPlatform(c.platform)).join(', ');
  if (chosen.length === 1) {
    const only = chosen[0]!;
    return {
      descriptor: only.desc,
      converted: `only ${names} of the index ${root.digest} was pushed (--platform): the name points at that platform's manifest ${only.desc.digest}, unchanged`,
    };
  }
  // Several: the attestations that describe a chosen manifest go along; everything else stays out.
  const keep = new Set(chosen.map((c) => c.desc.digest));
  const kept = index.manifests.length === leaves.length ? index.manifests : leaves.map((l) => l.desc);
  const selected = kept.filter((d) => keep.has(d.digest) || (isAttestation(d) && keep.has(d.annotations![ATTESTATION_REFERENCE_DIGEST]!)));
  // Every platform the index has: the index itself, digest kept.
  if (selected.length === index.manifests.length && selected.every((d, i) => d === index.manifests[i])) return { descriptor: root };
  const rewritten = { ...(parseJson(rootBytes) as Record<string, unknown>), manifests: selected };
  const bytes = Buffer.from(JSON.stringify(rewritten));
  const mediaType = parsed.mediaType || MediaType.OCI_INDEX;
  const descriptor: Descriptor = { ...root, mediaType, digest: sha256Digest(bytes), size: bytes.byteLength };
  return {
    descriptor,
    bytes,
    converted: `index rewritten to hold only ${names} (--platform): its digest is ${descriptor.digest}, not ${root.digest}; the platform manifests are unchanged`,
  };
}

/** LIST_MAX is how many items a message lists before it says how many more there are. */
const LIST_MAX = 8;

/** listSome joins the first {@link LIST_MAX} items and says how many more there are. */
function listSome(items: string[]): string {
  const shown = items.slice(0, LIST_MAX).join(', ');
  return items.length > LIST_MAX ? `${shown} and ${items.length - LIST_MAX} more` : shown;
}

/**
 * missingPlatforms explains an index whose platform manifests are not all in the bundle (`ctr export` without
 * `--all-platforms` writes the whole index and only the current platform's content): which it lacks, which it has,
 * and what to do. Undefined when none is missing.
 */
export function missingPlatforms(name: string, index: ImageIndex, lookup: ContentLookup): MirrorError | undefined {
  const missing = index.manifests.filter((d) => lookup(d.digest) === undefined);
  if (missing.length === 0) return undefined;
  const label = (d: Descriptor): string =>
    d.annotations?.[ATTESTATION_REFERENCE_DIGEST] !== undefined ? 'an attestation' : d.platform ? formatPlatform(d.platform) : d.digest;
  const present = index.manifests.filter((d) => lookup(d.digest) !== undefined && d.platform !== undefined && !(d.platform.os === 'unknown')).slice(0, LIST_MAX);
  const fix =
    present.length > 0
      ? `export it again with all platforms (ctr export --all-platforms), or push what it has with ${present.map((d) => `--platform ${formatPlatform(d.platform!)}`).join(' ')}`
      : 'export it again with all platforms (ctr export --all-platforms)';
  return new MirrorError(
    'BAD_INPUT',
    `the bundle lacks ${missing.length} of the ${index.manifests.length} platform manifests of ${name} (${listSome(missing.map(label))}), as an export without all platforms leaves it; ${fix}`,
    // No digest in the context: shown after the fix, it would read as that of the platform the fix names.
    { image: name },
  );
}
