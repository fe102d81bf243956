/**
 * Referrers (OCI distribution 1.1): the manifests whose `subject` is a digest, through the referrers API
 * (`GET /v2/<name>/referrers/<digest>`, pages followed) where the registry has it, else through the fallback tag
 * (`<alg>-<hex>`, an index of referrer descriptors); and the merge a client does into that fallback tag when the
 * registry does not index subjects itself.
 */
import { MirrorError } from '../errors/index.js';
import { MediaType } from '../oci/media-types.js';
import { parseManifest, type Descriptor } from '../oci/manifest.js';
import { pullScope } from './auth.js';
import type { SignalOption } from './blob.js';
import { getManifest, MAX_MANIFEST_SIZE } from './manifest.js';
import { nextLink } from './tags.js';
import type { RegistryTransport } from './transport.js';

/** MAX_REFERRER_PAGES bounds how many pages of a referrers list are followed. */
export const MAX_REFERRER_PAGES = 100;

/** fallbackTag is the referrers fallback tag of a digest: `sha256:abc` -> `sha256-abc`. */
export function fallbackTag(digest: string): string {
  return digest.replace(':', '-');
}

/** ReferrersAnswer is a subject's referrers and where they were found. */
export interface ReferrersAnswer {
  /** `api`: the registry answered the referrers API; `tag`: read from the fallback tag (empty when it is absent). */
  via: 'api' | 'tag';
  descriptors: Descriptor[];
}

/**
 * listReferrers asks the referrers API first; a registry without it (404 on the endpoint, or 400/405) is read through
 * the fallback tag. Descriptors are checked like any other (media type, digest, size).
 */
export async function listReferrers(
  t: RegistryTransport,
  repo: string,
  digest: string,
  options: SignalOption & { skipApi?: boolean | undefined } = {},
): Promise<ReferrersAnswer> {
  const api = options.skipApi ? undefined : await referrersApi(t, repo, digest, options);
  if (api !== undefined) return { via: 'api', descriptors: api };
  const index = await fallbackIndex(t, repo, digest, options);
  return { via: 'tag', descriptors: index?.manifests ?? [] };
}

/** referrersApi reads the referrers API (all pages), or undefined when the registry does not have it. */
async function referrersApi(t: RegistryTransport, repo: string, digest: string, options: SignalOption): Promise<Descriptor[] | undefined> {
  const out: Descriptor[] = [];
  let url: string | undefined = `/v2/${repo}/referrers/${digest}`;
  for (let page = 0; url !== undefined && page < MAX_REFERRER_PAGES; page++) {
    const current: string = url;
    const answer: { list: Descriptor[]; next: string | undefined } | undefined = await t.call(
      {
        method: 'GET',
        url: current,
        scopes: [pullScope(repo)],
        headers: { accept: MediaType.OCI_INDEX },
        ok: [200, 404, 400, 405],
        context: { phase: 'referrers', what: `of ${repo}@${digest}` },
        signal: options.signal,
      },
      async (res) => {
        if (res.status !== 200) {
          await res.discard();
          return undefined;
        }
        const contentType = (res.headers['content-type'] ?? '').split(';')[0]?.trim();
        const bytes = await res.bytes(MAX_MANIFEST_SIZE);
        // A registry that serves something else at that path (an HTML page, a tag list) has no referrers API.
        if (contentType !== MediaType.OCI_INDEX && contentType !== 'application/json') return undefined;
        let parsed;
        try {
          parsed = parseManifest(bytes, MediaType.OCI_INDEX, { digest: `referrers of ${digest}` });
        } catch {
          return undefined;
        }
        if (parsed.kind !== 'index') return undefined;
        const next = nextLink(res.headers['link']);
        return { list: parsed.index.manifests, next: next === undefined ? undefined : new URL(next, res.url).toString() };
      },
    );
    if (answer === undefined) return page === 0 ? undefined : out;
    out.push(...answer.list);
    url = answer.next;
  }
  return out;
}

/** fallbackIndex reads the fallback tag's index of a subject, or undefined when the tag does not exist. */
export async function fallbackIndex(
  t: RegistryTransport,
  repo: string,
  digest: string,
  options: SignalOption = {},
): Promise<{ manifests: Descriptor[]; bytes: Uint8Array; mediaType: string } | undefined> {
  let m;
  try {
    m = await getManifest(t, repo, fallbackTag(digest), options);
  } catch (e) {
    if (e instanceof MirrorError && e.code === 'NOT_FOUND') return undefined;
    throw e;
  }
  const parsed = parseManifest(m.bytes, m.mediaType || undefined, { digest: `${repo}:${fallbackTag(digest)}` });
  if (parsed.kind !== 'index') {
    throw new MirrorError('REGISTRY', `${repo}:${fallbackTag(digest)} is not an index, so it cannot list the referrers of ${digest}`, { phase: 'referrers' });
  }
  return { manifests: parsed.index.manifests, bytes: m.bytes, mediaType: m.mediaType };
}

/**
 * mergeReferrer gives the bytes of a fallback-tag index that lists `referrer` in addition to what `existing` lists
 * (entries another tool put there are kept, in their order; a descriptor already listed is not added twice); or
 * undefined when nothing needs to change.
 */
export function mergeReferrer(existing: { bytes: Uint8Array } | undefined, referrer: Descriptor): Uint8Array | undefined {
  if (existing === undefined) {
    return Buffer.from(JSON.stringify({ schemaVersion: 2, mediaType: MediaType.OCI_INDEX, manifests: [referrerEntry(referrer)] }));
  }
  const doc = JSON.parse(Buffer.from(existing.bytes).toString('utf8')) as { manifests?: Descriptor[] } & Record<string, unknown>;
  const list = Array.isArray(doc.manifests) ? doc.manifests : [];
  if (list.some((d) => d.digest === referrer.digest)) return undefined;
  return Buffer.from(JSON.stringify({ ...doc, mediaType: doc.mediaType ?? MediaType.OCI_INDEX, manifests: [...list, referrerEntry(referrer)] }));
}

/** referrerEntry is the descriptor listed for a referrer: media type, digest, size, artifactType and annotations. */
function referrerEntry(d: Descriptor): Descriptor {
  const out: Descriptor = { mediaType: d.mediaType, digest: d.digest, size: d.size };
  if (d.artifactType !== undefined) out.artifactType = d.artifactType;
  if (d.annotations !== undefined) out.annotations = d.annotations;
  return out;
}
