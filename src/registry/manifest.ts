/** Manifest verbs: HEAD (exists? which digest?), GET (bytes, verified when fetched by digest), PUT (exact media type). */
import { createHash } from 'node:crypto';
import { DigestMismatchError, isMirrorError, MirrorError } from '../errors/index.js';
import { MANIFEST_ACCEPT } from '../oci/media-types.js';
import { isValidDigest } from '../reference/reference.js';
import { pullScope, pushScope } from './auth.js';
import type { SignalOption } from './blob.js';
import type { RegistryTransport } from './transport.js';

/** MAX_MANIFEST_SIZE is the largest manifest read (4 MiB, as containerd and distribution limit them). */
export const MAX_MANIFEST_SIZE = 4 * 1024 * 1024;

/** ManifestInfo is what a HEAD on a manifest tells. */
export interface ManifestInfo {
  digest: string;
  mediaType: string;
  size: number;
}

/** FetchedManifest is a manifest's exact bytes with its media type and digest. */
export interface FetchedManifest {
  bytes: Uint8Array;
  mediaType: string;
  digest: string;
}

/** manifestPath is the API path of a manifest by tag or digest. */
export function manifestPath(repo: string, reference: string): string {
  return `/v2/${repo}/manifests/${reference}`;
}

/** manifestName names a manifest for people: `repo:tag`, or `repo@sha256:...` for a digest (a tag never holds a colon). */
export function manifestName(repo: string, reference: string): string {
  return `${repo}${reference.includes(':') ? '@' : ':'}${reference}`;
}

/** digestOf computes the digest of bytes with the algorithm of `like` (sha256 unless `like` says sha512). */
export function digestOf(bytes: Uint8Array, like = 'sha256:'): string {
  const algorithm = like.startsWith('sha512:') ? 'sha512' : 'sha256';
  return `${algorithm}:${createHash(algorithm).update(bytes).digest('hex')}`;
}

/** mediaTypeOf strips parameters from a Content-Type. */
function mediaTypeOf(contentType: string | undefined): string {
  return (contentType ?? '').split(';')[0]?.trim() ?? '';
}

/**
 * headManifest checks a manifest: digest, media type and size, or undefined when the registry does not have it. A
 * registry that refuses HEAD on manifests (405, 501: some proxies and older registries) is asked with GET instead,
 * as skopeo always asks.
 */
export async function headManifest(
  t: RegistryTransport,
  repo: string,
  reference: string,
  options: SignalOption = {},
): Promise<ManifestInfo | undefined> {
  const info = await t.call(
    {
      method: 'HEAD',
      url: manifestPath(repo, reference),
      scopes: [pullScope(repo)],
      headers: { accept: MANIFEST_ACCEPT.join(', ') },
      ok: [200, 404, 405, 501],
      context: { phase: 'manifest', what: manifestName(repo, reference) },
      signal: options.signal,
    },
    async (res) => {
      await res.discard();
      if (res.status === 404) return null;
      if (res.status === 405 || res.status === 501) return 'no-head' as const;
      const size = Number(res.headers['content-length']);
      return {
        digest: res.headers['docker-content-digest'] ?? '',
        mediaType: mediaTypeOf(res.headers['content-type']),
        size: Number.isFinite(size) ? size : -1,
      };
    },
  );
  if (info === null) return undefined;
  if (info !== 'no-head' && info.digest === '' && isValidDigest(reference)) info.digest = reference;
  if (info !== 'no-head' && info.digest !== '' && info.size >= 0) return info;
  // A registry that refuses HEAD, or does not say the digest on it: the manifest is read to know it (404: absent).
  try {
    const m = await getManifest(t, repo, reference, options);
    return { digest: m.digest, mediaType: m.mediaType, size: m.bytes.byteLength };
  } catch (e) {
    if (isMirrorError(e) && e.context.status === 404) return undefined;
    throw e;
  }
}

/** getManifest fetches a manifest's exact bytes; fetched by digest, the bytes must hash to it. */
export async function getManifest(t: RegistryTransport, repo: string, reference: string, options: SignalOption = {}): Promise<FetchedManifest> {
  const byDigest = isValidDigest(reference);
  return t.call(
    {
      method: 'GET',
      url: manifestPath(repo, reference),
      scopes: [pullScope(repo)],
      headers: { accept: MANIFEST_ACCEPT.join(', ') },
      ok: [200],
      context: { phase: 'manifest', what: manifestName(repo, reference) },
      signal: options.signal,
    },
    async (res) => {
      const bytes = await res.bytes(MAX_MANIFEST_SIZE);
      const mediaType = mediaTypeOf(res.headers['content-type']);
      if (byDigest) {
        const actual = digestOf(bytes, reference);
        if (actual !== reference) throw new DigestMismatchError(reference, actual, { phase: 'manifest', image: `${repo}@${reference}` });
        return { bytes, mediaType, digest: reference };
      }
      return { bytes, mediaType, digest: digestOf(bytes) };
    },
  );
}

/** PutManifestAnswer is what the registry said to a manifest PUT. */
export interface PutManifestAnswer {
  /** The registry's Docker-Content-Digest, or the computed digest. */
  digest: string;
  /** The `OCI-Subject` header: the registry indexed the manifest's subject for the referrers API. */
  subject?: string | undefined;
}

/**
 * putManifest stores a manifest under a tag or digest with exactly the given media type as Content-Type, and
 * returns its digest (the registry's Docker-Content-Digest, or the computed one). Retried: a PUT is idempotent.
 */
export async function putManifest(
  t: RegistryTransport,
  repo: string,
  reference: string,
  bytes: Uint8Array,
  mediaType: string,
  options: SignalOption = {},
): Promise<string> {
  return (await putManifestAnswer(t, repo, reference, bytes, mediaType, options)).digest;
}

/** putManifestAnswer is {@link putManifest} giving the registry's whole answer (the digest and `OCI-Subject`). */
export async function putManifestAnswer(
  t: RegistryTransport,
  repo: string,
  reference: string,
  bytes: Uint8Array,
  mediaType: string,
  options: SignalOption = {},
): Promise<PutManifestAnswer> {
  if (mediaType === '') throw new MirrorError('BAD_INPUT', `manifest for ${manifestName(repo, reference)} has no media type`, { phase: 'manifest' });
  const computed = digestOf(bytes, isValidDigest(reference) ? reference : 'sha256:');
  if (isValidDigest(reference) && computed !== reference) {
    throw new DigestMismatchError(reference, computed, { phase: 'manifest', image: `${repo}@${reference}` });
  }
  const answer = await t.call(
    {
      method: 'PUT',
      url: manifestPath(repo, reference),
      scopes: [pushScope(repo)],
      headers: { 'content-type': mediaType, 'content-length': String(bytes.byteLength) },
      body: () => bytes,
      ok: [201, 200, 202, 204],
      context: { phase: 'manifest', what: manifestName(repo, reference) },
      signal: options.signal,
    },
    async (res) => {
      await res.discard();
      return { digest: res.headers['docker-content-digest'] || computed, subject: res.headers['oci-subject'] || undefined, status: res.status };
    },
  );
  const stored = answer.digest;
  if (isValidDigest(stored) && stored.slice(0, stored.indexOf(':')) === computed.slice(0, computed.indexOf(':')) && stored !== computed) {
    // The registry says it stored other bytes: it rewrote what it was given (re-serialized JSON, converted types),
    // so the reference names another digest. Asked by the digest sent, in case only the header is wrong; else said,
    // not taken as success (every later run would copy again).
    if ((await headManifest(t, repo, computed, options))?.digest !== computed) {
      throw new MirrorError(
        'REGISTRY',
        `${t.host} stored the manifest ${manifestName(repo, reference)} as ${stored}, not as the ${computed} it was sent: it rewrote the manifest, so its digest is not kept`,
        { phase: 'manifest', status: answer.status, digest: computed },
      );
    }
    return { digest: computed, subject: answer.subject };
  }
  return { digest: stored, subject: answer.subject };
}
