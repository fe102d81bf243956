/** The repository catalog (`GET /v2/_catalog`, every page) and manifest deletion by digest: what `sync` needs beyond copying. */
import { MirrorError, redactUrl } from '../errors/index.js';
import { CATALOG_SCOPE } from './auth.js';
import type { SignalOption } from './blob.js';
import { nextLink } from './tags.js';
import { PageWalk } from './pages.js';
import type { RegistryTransport } from './transport.js';
import { parseJson } from '../oci/json.js';

/** CATALOG_PAGE_SIZE is the page size asked of the catalog. */
export const CATALOG_PAGE_SIZE = 1000;
/** MAX_CATALOG_PAGES bounds how many catalog pages are followed. */
export const MAX_CATALOG_PAGES = 100_000;
/** CATALOG_RESPONSE_LIMIT is the most bytes of one catalog page read. */
export const CATALOG_RESPONSE_LIMIT = 16 * 1024 * 1024;
/** MAX_CATALOG_REPOSITORIES bounds the distinct repositories a catalog may list (their names are kept to skip repeats). */
export const MAX_CATALOG_REPOSITORIES = 1_000_000;

/**
 * iterateCatalog gives the registry's repositories whose path is `prefix` or under `prefix/` (every one for `''`),
 * page by page, with a token for `registry:catalog:*` where the registry uses tokens. A registry that does not list
 * its catalog answers with an error (404, 405, 401/403 for the catalog scope), thrown as such.
 */
export async function* iterateCatalog(t: RegistryTransport, prefix: string, options: SignalOption = {}): AsyncGenerator<string, void, undefined> {
  // URLs are compared whole (the first is made absolute too), so a Link back to the first page is seen as one.
  let url: string | undefined = (await t.url(`/v2/_catalog?n=${CATALOG_PAGE_SIZE}`)).toString();
  const walk = new PageWalk(`the catalog of ${t.host}`, 'repositories', MAX_CATALOG_REPOSITORIES, MAX_CATALOG_PAGES, { phase: 'catalog' });
  while (url !== undefined) {
    walk.visit(url);
    const current: string = url;
    const result: { names: string[]; next: string | undefined } = await t.call(
      { method: 'GET', url: current, scopes: [CATALOG_SCOPE], ok: [200], context: { phase: 'catalog', what: `of ${t.host}` }, signal: options.signal },
      async (res) => {
        const text = Buffer.from(await res.bytes(CATALOG_RESPONSE_LIMIT)).toString('utf8');
        let parsed: unknown;
        try {
          parsed = parseJson(text);
        } catch {
          throw new MirrorError('REGISTRY', `the catalog of ${t.host} is not JSON`, { phase: 'catalog', url: redactUrl(res.url) });
        }
        const list = typeof parsed === 'object' && parsed !== null ? (parsed as { repositories?: unknown }).repositories : undefined;
        const names = Array.isArray(list) ? list.filter((x): x is string => typeof x === 'string') : [];
        const next = nextLink(res.headers['link']);
        return { names, next: next === undefined ? undefined : new URL(next, res.url).toString() };
      },
    );
    const fresh = walk.fresh(result.names, result.next);
    if (fresh === undefined) return;
    for (const name of fresh) if (prefix === '' || name === prefix || name.startsWith(`${prefix}/`)) yield name;
    url = result.next;
  }
}

/** deleteManifest deletes a manifest by digest (every tag on it goes with it); false when it was already gone. */
export async function deleteManifest(t: RegistryTransport, repository: string, digest: string, options: SignalOption = {}): Promise<boolean> {
  return t.call(
    {
      method: 'DELETE',
      url: `/v2/${repository}/manifests/${digest}`,
      scopes: [{ repository, actions: ['delete'] }],
      ok: [200, 202, 204, 404],
      context: { phase: 'prune', what: `${repository}@${digest}` },
      signal: options.signal,
    },
    async (res) => {
      await res.discard();
      return res.status !== 404;
    },
  );
}
