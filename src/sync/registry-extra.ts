/**
 * The two distribution API calls only `sync` needs: the repository catalog (`GET /v2/_catalog`, every page) and
 * deleting a manifest by digest (`--prune`). They go through a registry transport of their own for the host, with
 * the same settings, credentials and request limiter as the host's client.
 */
import { MirrorError, redactUrl } from '../errors/index.js';
import { noEvents, type EventSink } from '../events/index.js';
import type { HttpTimeouts } from '../net/http.js';
import type { HostSettingsResolver, RetryOptions } from '../net/types.js';
import type { CredentialResolver } from '../auth/types.js';
import { DEFAULT_USER_AGENT, nextLink, type RequestLimiter } from '../registry/index.js';
import { RegistryTransport } from '../registry/transport.js';

/** CATALOG_PAGE_SIZE is the page size asked of the catalog. */
export const CATALOG_PAGE_SIZE = 1000;
/** MAX_CATALOG_PAGES bounds how many catalog pages are followed. */
export const MAX_CATALOG_PAGES = 100_000;
/** CATALOG_RESPONSE_LIMIT is the most bytes of one catalog page read. */
export const CATALOG_RESPONSE_LIMIT = 16 * 1024 * 1024;

/** ExtraOptions configure {@link RegistryExtra}. */
export interface ExtraOptions {
  host: string;
  scheme: 'http' | 'https';
  settings: HostSettingsResolver;
  credentials: CredentialResolver;
  retry?: RetryOptions | undefined;
  timeouts?: HttpTimeouts | undefined;
  limiter?: RequestLimiter | undefined;
  events?: EventSink | undefined;
}

/** RegistryExtra lists a registry's repositories and deletes manifests. */
export class RegistryExtra {
  private readonly t: RegistryTransport;

  constructor(private readonly options: ExtraOptions) {
    this.t = new RegistryTransport({
      host: options.host,
      scheme: options.scheme,
      settings: options.settings,
      credentials: options.credentials,
      retry: options.retry ?? {},
      events: options.events ?? noEvents,
      userAgent: DEFAULT_USER_AGENT,
      timeouts: options.timeouts,
      limiter: options.limiter,
    });
  }

  /**
   * repositories gives the registry's repositories whose path is `prefix` or under `prefix/` (every one for `''`),
   * page by page. A registry that does not list its catalog (404, 405, an error code) is a REGISTRY error saying so.
   */
  async *repositories(prefix: string, signal?: AbortSignal): AsyncGenerator<string, void, undefined> {
    let url: string | undefined = `/v2/_catalog?n=${CATALOG_PAGE_SIZE}`;
    const seen = new Set<string>();
    for (let page = 0; url !== undefined; page++) {
      if (page >= MAX_CATALOG_PAGES || seen.has(url)) return;
      seen.add(url);
      const current: string = url;
      const result: { names: string[]; next: string | undefined } = await this.t.call(
        { method: 'GET', url: current, scopes: [], ok: [200], context: { phase: 'catalog', what: `of ${this.options.host}` }, signal },
        async (res) => {
          const text = Buffer.from(await res.bytes(CATALOG_RESPONSE_LIMIT)).toString('utf8');
          let parsed: unknown;
          try {
            parsed = JSON.parse(text);
          } catch {
            throw new MirrorError('REGISTRY', `the catalog of ${this.options.host} is not JSON`, { phase: 'catalog', url: redactUrl(res.url) });
          }
          const list = typeof parsed === 'object' && parsed !== null ? (parsed as { repositories?: unknown }).repositories : undefined;
          const names = Array.isArray(list) ? list.filter((x): x is string => typeof x === 'string') : [];
          const next = nextLink(res.headers['link']);
          return { names, next: next === undefined ? undefined : new URL(next, res.url).toString() };
        },
      );
      for (const name of result.names) if (prefix === '' || name === prefix || name.startsWith(`${prefix}/`)) yield name;
      url = result.next;
    }
  }

  /** deleteManifest deletes a manifest by digest (every tag on it goes with it); false when it was already gone. */
  async deleteManifest(repository: string, digest: string, signal?: AbortSignal): Promise<boolean> {
    return this.t.call(
      {
        method: 'DELETE',
        url: `/v2/${repository}/manifests/${digest}`,
        scopes: [{ repository, actions: ['delete'] }],
        ok: [200, 202, 204, 404],
        context: { phase: 'prune', what: `${repository}@${digest}` },
        signal,
      },
      async (res) => {
        await res.discard();
        return res.status !== 404;
      },
    );
  }
}
