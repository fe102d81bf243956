/** Tag listing with pagination (`Link: <...>; rel="next"`). */
import { MirrorError } from '../errors/index.js';
import { pullScope } from './auth.js';
import { RegistryHttpError } from './errors.js';
import type { SignalOption } from './blob.js';
import { PageWalk } from './pages.js';
import type { RegistryTransport } from './transport.js';
import { parseJson } from '../oci/json.js';

/** TAGS_RESPONSE_LIMIT is the most bytes of one tag list page that are read. */
export const TAGS_RESPONSE_LIMIT = 16 * 1024 * 1024;
/** MAX_TAG_PAGES bounds how many pages are followed. */
export const MAX_TAG_PAGES = 10_000;
/**
 * MAX_TAGS bounds the distinct tags one repository may list (the largest public repositories hold tens of
 * thousands): a registry that lists new names without end is stopped there, with the names seen kept in memory
 * (about 30 MB at the bound; at a million, a hostile registry took list-tags past 600 MB).
 */
export const MAX_TAGS = 250_000;

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

/** TagPage is one page of a tag list, and the absolute URL of the next one when the registry gave a `Link`. */
interface TagPage {
  tags: string[];
  next: string | undefined;
}

/** readTagPage reads one page of a repository's tag list (`url` relative to the registry, or absolute). */
async function readTagPage(t: RegistryTransport, repo: string, url: string, signal: AbortSignal | undefined): Promise<TagPage> {
  return t.call(
    { method: 'GET', url, scopes: [pullScope(repo)], ok: [200], context: { phase: 'tags', what: `of ${repo}` }, signal },
    async (res) => {
      const page = parseTags(repo, Buffer.from(await res.bytes(TAGS_RESPONSE_LIMIT)).toString('utf8'), res.status);
      const next = nextLink(res.headers['link']);
      return { tags: page, next: next === undefined ? undefined : new URL(next, res.url).toString() };
    },
  );
}

/**
 * parseTags reads the `tags` of a tag list body: a null list is no tags (distribution's answer for a repository
 * without any); a body without a `tags` list is no tag list, and is refused rather than read as an empty one.
 */
function parseTags(repo: string, text: string, status: number): string[] {
  let parsed: unknown;
  try {
    parsed = parseJson(text);
  } catch {
    throw new MirrorError('REGISTRY', `tag list of ${repo} is not JSON`, { phase: 'tags', status });
  }
  const list = typeof parsed === 'object' && parsed !== null && !Array.isArray(parsed) ? (parsed as { tags?: unknown }).tags : undefined;
  if (list === null) return [];
  if (!Array.isArray(list)) throw new MirrorError('REGISTRY', `tag list of ${repo} has no "tags" list`, { phase: 'tags', status });
  return list.filter((x): x is string => typeof x === 'string');
}

/** tagListPath is the API path of a repository's tag list, asking pages of `pageSize` when given. */
function tagListPath(repo: string, pageSize: number | undefined): string {
  return `/v2/${repo}/tags/list${pageSize !== undefined ? `?n=${pageSize}` : ''}`;
}

/**
 * wholeTagList reads a repository's tag list when it fits in one page of `pageSize` (asked with `n`): the tags, or
 * undefined when the registry gives a next page, refuses the listing, or answers something else than a list. A
 * repository the registry does not know (404 `NAME_UNKNOWN`) has no tags. Nothing is retried beyond the transport's
 * own policy, and nothing throws but an abort: the caller falls back to asking tag by tag.
 */
export async function wholeTagList(t: RegistryTransport, repo: string, options: ListTagsOptions = {}): Promise<string[] | undefined> {
  try {
    const page = await readTagPage(t, repo, tagListPath(repo, options.pageSize), options.signal);
    return page.next === undefined ? page.tags : undefined;
  } catch (e) {
    if (options.signal?.aborted) throw e;
    const unknown = e instanceof RegistryHttpError && e.context.status === 404 && e.details.some((d) => d.code === 'NAME_UNKNOWN');
    return unknown ? [] : undefined;
  }
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
 * registry does not know has no tags. A registry that goes round in circles (a Link back to a page read, a page of
 * tags all given before that links on) or lists more than {@link MAX_TAG_PAGES} pages fails the listing after the
 * tags it gave: it is not taken for the whole list (a registry that ignores `last` answers page 1 again).
 */
export async function* iterateTags(t: RegistryTransport, repo: string, options: ListTagsOptions = {}): AsyncGenerator<string, void, undefined> {
  // URLs are compared whole (the first is made absolute too), so a Link back to the first page is seen as one.
  let url: string | undefined = (await t.url(tagListPath(repo, options.pageSize))).toString();
  const walk = new PageWalk(`tag list of ${repo}`, 'tags', MAX_TAGS, MAX_TAG_PAGES, { phase: 'tags' });
  while (url !== undefined) {
    walk.visit(url);
    const result = await readTagPage(t, repo, url, options.signal);
    const fresh = walk.fresh(result.tags, result.next);
    if (fresh === undefined) return;
    yield* fresh;
    url = result.next;
  }
}
