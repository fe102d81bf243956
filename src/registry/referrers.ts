/**
 * Referrers (OCI distribution 1.1): the manifests whose `subject` is a digest, through the referrers API
 * (`GET /v2/<name>/referrers/<digest>`, pages followed) where the registry has it, else through the fallback tag
 * (`<alg>-<hex>`, an index of referrer descriptors); and the merge a client does into that fallback tag when the
 * registry does not index subjects itself.
 */
import { MirrorError } from '../errors/index.js';
import { MediaType } from '../oci/media-types.js';
import { decodeJson, parseManifest, type Descriptor } from '../oci/manifest.js';
import { pullScope } from './auth.js';
import type { SignalOption } from './blob.js';
import { ERROR_BODY_LIMIT, parseErrorBody } from './errors.js';
import { getManifest, MAX_MANIFEST_SIZE } from './manifest.js';
import { nextLink } from './tags.js';
import type { RegistryTransport } from './transport.js';

/** MAX_REFERRER_PAGES bounds how many pages of a referrers list are followed. */
export const MAX_REFERRER_PAGES = 100;
/** MAX_REFERRERS_LISTED bounds how many referrers of one subject are read (every page together). */
export const MAX_REFERRERS_LISTED = 10_000;

/** REFERRERS_HINT is what to do when a registry's referrers cannot be read. */
const REFERRERS_HINT = '--referrers=false copies the image without its referrers';

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

/** MAX_PROBE_WAITS bounds how many first questions of other callers one caller waits for before asking itself. */
const MAX_PROBE_WAITS = 8;

/**
 * ReferrersSupport remembers whether one registry answers the referrers API, so that a registry without it (404 on
 * the endpoint, 405, 400) is asked once per client and then read through fallback tags only. Callers that arrive
 * while the first question is in flight wait for its answer instead of asking too. A 404 that names an unknown
 * repository (`NAME_UNKNOWN`) says nothing about the API and is not remembered.
 */
export class ReferrersSupport {
  private state: boolean | undefined;
  private probe: Promise<void> | undefined;

  /** known is true when the registry answered the API, false when it does not have it, undefined until known. */
  get known(): boolean | undefined {
    return this.state;
  }

  /**
   * ask puts `question` to the registry unless it is known to lack the API (then: undefined). While nothing is known,
   * the first question is the probe: callers arriving meanwhile wait for it, and what it shows is learnt before they go on.
   */
  async ask(question: () => Promise<ReferrersApiAnswer>): Promise<ReferrersApiAnswer | undefined> {
    for (let waits = 0; waits < MAX_PROBE_WAITS && this.state === undefined && this.probe !== undefined; waits++) await this.probe;
    if (this.state === false) return undefined;
    const answer = question();
    if (this.state === undefined && this.probe === undefined) {
      const done: Promise<void> = answer
        .then(
          (a) => this.learn(a),
          () => {},
        )
        .then(() => {
          if (this.probe === done) this.probe = undefined;
        });
      this.probe = done;
    }
    const a = await answer;
    this.learn(a);
    return a;
  }

  private learn(a: ReferrersApiAnswer): void {
    if (a.kind === 'list') this.state = true;
    else if (a.kind === 'absent') this.state = false;
  }
}

/** ListReferrersOptions tune {@link listReferrers}. */
export interface ListReferrersOptions extends SignalOption {
  /** What this registry is known to support (shared by every call of one client). Default: ask every time. */
  support?: ReferrersSupport | undefined;
  /** Only referrers of this artifact type (the API's `artifactType` filter; applied here when the registry does not). */
  artifactType?: string | undefined;
}

/**
 * listReferrers asks the referrers API first; a registry without it (404 on the endpoint, or 400/405) is read through
 * the fallback tag. Descriptors are checked like any other (media type, digest, size).
 */
export async function listReferrers(t: RegistryTransport, repo: string, digest: string, options: ListReferrersOptions = {}): Promise<ReferrersAnswer> {
  const support = options.support;
  const wanted = (list: Descriptor[]): Descriptor[] => (options.artifactType === undefined ? list : list.filter((d) => d.artifactType === options.artifactType));
  const question = (): Promise<ReferrersApiAnswer> => referrersApi(t, repo, digest, options);
  const api = support === undefined ? await question() : await support.ask(question);
  if (api?.kind === 'list') return { via: 'api', descriptors: api.filtered ? api.list : wanted(api.list) };
  const index = await fallbackIndex(t, repo, digest, options);
  return { via: 'tag', descriptors: wanted(index?.manifests ?? []) };
}

/** ReferrersApiAnswer is what the referrers endpoint said. */
export type ReferrersApiAnswer =
  /** The list (every page); `filtered` when the registry applied the artifactType filter. */
  | { kind: 'list'; list: Descriptor[]; filtered: boolean }
  /** The registry has no referrers API. */
  | { kind: 'absent' }
  /** A 404 naming the repository: nothing learnt about the API. */
  | { kind: 'unknown' };

/** referrersApi reads the referrers API (all pages), or says the registry does not have it. */
async function referrersApi(t: RegistryTransport, repo: string, digest: string, options: ListReferrersOptions): Promise<ReferrersApiAnswer> {
  const out: Descriptor[] = [];
  const query = options.artifactType !== undefined ? `?artifactType=${encodeURIComponent(options.artifactType)}` : '';
  let url: string | undefined = `/v2/${repo}/referrers/${digest}${query}`;
  let filtered = options.artifactType === undefined;
  const seen = new Set<string>();
  const what = `of ${repo}@${digest}`;
  for (let page = 0; url !== undefined; page++) {
    if (page >= MAX_REFERRER_PAGES) {
      throw new MirrorError('REGISTRY', `the referrers list ${what} has more than ${MAX_REFERRER_PAGES} pages`, { phase: 'referrers', hint: REFERRERS_HINT });
    }
    // A Link that leads back to a page already read would loop: the list ends there.
    if (seen.has(url)) break;
    seen.add(url);
    const current: string = url;
    const answer: { list: Descriptor[]; next: string | undefined; filtered: boolean } | 'absent' | 'unknown' = await t.call(
      {
        method: 'GET',
        url: current,
        scopes: [pullScope(repo)],
        headers: { accept: MediaType.OCI_INDEX },
        ok: [200, 404, 400, 405],
        context: { phase: 'referrers', what },
        signal: options.signal,
      },
      async (res) => {
        if (res.status !== 200) {
          const body = await res.text(ERROR_BODY_LIMIT);
          const code = parseErrorBody(body)[0]?.code;
          return res.status === 404 && code === 'NAME_UNKNOWN' ? 'unknown' : 'absent';
        }
        const contentType = (res.headers['content-type'] ?? '').split(';')[0]?.trim();
        // A registry that serves something else at that path (an HTML page) has no referrers API.
        if (contentType !== MediaType.OCI_INDEX && contentType !== 'application/json') {
          await res.discard();
          return 'absent';
        }
        const bytes = await res.bytes(MAX_MANIFEST_SIZE);
        let parsed;
        try {
          parsed = parseManifest(bytes, MediaType.OCI_INDEX, { digest: `referrers list ${what}` });
        } catch (e) {
          throw new MirrorError('REGISTRY', `the registry's referrers list ${what} is not a valid index: ${e instanceof Error ? e.message : String(e)}`, {
            phase: 'referrers',
            cause: e,
            hint: REFERRERS_HINT,
          });
        }
        if (parsed.kind !== 'index') throw new MirrorError('REGISTRY', `the registry's referrers list ${what} is not an index`, { phase: 'referrers', hint: REFERRERS_HINT });
        const applied = (res.headers['oci-filters-applied'] ?? '').split(',').map((s) => s.trim());
        const next = nextLink(res.headers['link']);
        return { list: parsed.index.manifests, next: next === undefined ? undefined : new URL(next, res.url).toString(), filtered: applied.includes('artifactType') };
      },
    );
    if (answer === 'absent' || answer === 'unknown') {
      if (page === 0) return { kind: answer };
      // A later page that vanished: the registry has the API, the list is what was read.
      break;
    }
    out.push(...answer.list);
    if (out.length > MAX_REFERRERS_LISTED) {
      throw new MirrorError('REGISTRY', `more than ${MAX_REFERRERS_LISTED} referrers ${what}`, { phase: 'referrers', hint: REFERRERS_HINT });
    }
    filtered = filtered || answer.filtered;
    url = answer.next;
  }
  return { kind: 'list', list: out, filtered };
}

/** FallbackIndex is a subject's fallback tag index as read. */
export interface FallbackIndex {
  manifests: Descriptor[];
  bytes: Uint8Array;
  mediaType: string;
}

/** fallbackIndex reads the fallback tag's index of a subject, or undefined when the tag does not exist. */
export async function fallbackIndex(t: RegistryTransport, repo: string, digest: string, options: SignalOption = {}): Promise<FallbackIndex | undefined> {
  const tag = fallbackTag(digest);
  let m;
  try {
    m = await getManifest(t, repo, tag, options);
  } catch (e) {
    if (e instanceof MirrorError && e.code === 'NOT_FOUND') return undefined;
    throw e;
  }
  let parsed;
  try {
    parsed = parseManifest(m.bytes, m.mediaType || undefined, { digest: `${repo}:${tag}` });
  } catch (e) {
    throw new MirrorError('REGISTRY', `${repo}:${tag}, the referrers fallback tag of ${digest}, cannot be read: ${e instanceof Error ? e.message : String(e)}`, {
      phase: 'referrers',
      cause: e,
      hint: REFERRERS_HINT,
    });
  }
  if (parsed.kind !== 'index') {
    throw new MirrorError('REGISTRY', `${repo}:${tag} is not an index, so it cannot list the referrers of ${digest}`, { phase: 'referrers', hint: REFERRERS_HINT });
  }
  return { manifests: parsed.index.manifests, bytes: m.bytes, mediaType: m.mediaType };
}

/**
 * mergeReferrers gives the bytes of a fallback-tag index that lists `referrers` in addition to what `existing` lists
 * (entries another tool put there are kept, in their order, with every field of the index; a digest already listed
 * is not added twice); or undefined when nothing needs to change.
 */
export function mergeReferrers(existing: { bytes: Uint8Array } | undefined, referrers: readonly Descriptor[]): Uint8Array | undefined {
  const doc: Record<string, unknown> & { manifests?: unknown } =
    existing === undefined ? { schemaVersion: 2, mediaType: MediaType.OCI_INDEX, manifests: [] } : (decodeJson(existing.bytes, 'referrers fallback index') as Record<string, unknown>);
  const list: unknown[] = Array.isArray(doc.manifests) ? doc.manifests : [];
  const listed = new Set(list.map((d) => (typeof d === 'object' && d !== null ? (d as { digest?: unknown }).digest : undefined)));
  const added: Descriptor[] = [];
  for (const r of referrers) {
    if (listed.has(r.digest)) continue;
    listed.add(r.digest);
    added.push(referrerEntry(r));
  }
  if (existing !== undefined && added.length === 0) return undefined;
  return Buffer.from(JSON.stringify({ schemaVersion: 2, ...doc, mediaType: doc.mediaType ?? MediaType.OCI_INDEX, manifests: [...list, ...added] }));
}

/** mergeReferrer is {@link mergeReferrers} for one referrer. */
export function mergeReferrer(existing: { bytes: Uint8Array } | undefined, referrer: Descriptor): Uint8Array | undefined {
  return mergeReferrers(existing, [referrer]);
}

/** referrerEntry is the descriptor listed for a referrer: media type, digest, size, artifactType and annotations. */
function referrerEntry(d: Descriptor): Descriptor {
  const out: Descriptor = { mediaType: d.mediaType, digest: d.digest, size: d.size };
  if (d.artifactType !== undefined) out.artifactType = d.artifactType;
  if (d.annotations !== undefined) out.annotations = d.annotations;
  return out;
}
