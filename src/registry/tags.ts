/** Tag listing with pagination (`Link: <...>; rel="next"`). */
import { MirrorError } from '../errors/index.js';
import { pullScope } from './auth.js';
import type { SignalOption } from './blob.js';
import type { RegistryTransport } from './transport.js';

/** TAGS_RESPONSE_LIMIT is the most bytes of one tag list page that are read. */
export const TAGS_RESPONSE_LIMIT = 16 * 1024 * 1024;
/** MAX_TAG_PAGES bounds how many pages are followed. */
export const MAX_TAG_PAGES = 10_000;

/** ListTagsOptions tune {@link listTags}. */
export interface ListTagsOptions extends SignalOption {
  /** Page size asked of the registry (`n`). Default: the registry's own. */
  pageSize?: number | undefined;
}

/** nextLink extracts the `rel="next"` target of a Link header. */
export function nextLink(link: string | undefined): string | undefined {
  if (link === undefined) return undefined;
  for (const part of link.split(/,(?=\s*<)/)) {
    const m = /^\s*<([^>]*)>(.*)$/.exec(part);
    if (m === null) continue;
    if (/;\s*rel="?next"?/i.test(m[2] ?? '')) return m[1];
  }
  return undefined;
}

/** listTags lists every tag of a repository, following pagination links (bounded by {@link MAX_TAG_PAGES}). */
export async function listTags(t: RegistryTransport, repo: string, options: ListTagsOptions = {}): Promise<string[]> {
  const tags: string[] = [];
  for await (const tag of iterateTags(t, repo, options)) tags.push(tag);
  return tags;
}

/**
 * iterateTags gives a repository's tags page by page as they arrive (so a caller can start on the first page while
 * the next is fetched, and never holds more than a page), following `Link: <...>; rel="next"`; a repository the
 * registry does not know has no tags.
 */
export async function* iterateTags(t: RegistryTransport, repo: string, options: ListTagsOptions = {}): AsyncGenerator<string, void, undefined> {
  let url: string | undefined = `/v2/${repo}/tags/list${options.pageSize !== undefined ? `?n=${options.pageSize}` : ''}`;
  const seen = new Set<string>();
  for (let page = 0; url !== undefined; page++) {
    if (page >= MAX_TAG_PAGES) throw new MirrorError('REGISTRY', `tag list of ${repo} has more than ${MAX_TAG_PAGES} pages`, { phase: 'tags' });
    // A registry whose Link leads back to a page already read would loop: stop there.
    if (seen.has(url)) return;
    seen.add(url);
    const current: string = url;
    const result: { tags: string[]; next: string | undefined } = await t.call(
      { method: 'GET', url: current, scopes: [pullScope(repo)], ok: [200], context: { phase: 'tags', what: `of ${repo}` }, signal: options.signal },
      async (res) => {
        const text = Buffer.from(await res.bytes(TAGS_RESPONSE_LIMIT)).toString('utf8');
        let parsed: unknown;
        try {
          parsed = JSON.parse(text);
        } catch {
          throw new MirrorError('REGISTRY', `tag list of ${repo} is not JSON`, { phase: 'tags', status: res.status });
        }
        const list = typeof parsed === 'object' && parsed !== null ? (parsed as { tags?: unknown }).tags : undefined;
        const page = Array.isArray(list) ? list.filter((x): x is string => typeof x === 'string') : [];
        const next = nextLink(res.headers['link']);
        return { tags: page, next: next === undefined ? undefined : new URL(next, res.url).toString() };
      },
    );
    yield* result.tags;
    url = result.next;
  }
}
