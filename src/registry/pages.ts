/** What a walk through a paged listing (tag list, catalog) has seen, so a registry that repeats itself cannot loop it. */
import { MirrorError, type MirrorErrorOptions, redactUrl } from '../errors/index.js';

/**
 * PageWalk remembers the pages read (absolute URLs) and the names given, and fails a listing it cannot finish: a
 * Link back to a page already read, a page of names all given before that still links on (a registry going round
 * in circles under new URLs, or one that ignores `last`), more than `maxPages` pages or more than `maxNames` distinct
 * names. The names given so far are then not the whole list, so nothing may be concluded from what is missing
 * (`sync --prune` prunes nothing). A name is given once however often the registry repeats it.
 */
export class PageWalk {
  private readonly pages = new Set<string>();
  private readonly names = new Set<string>();

  /**
   * @param what the listing, for the error (`tag list of team/app`, `the catalog of quay.io`).
   * @param noun what it lists (`tags`, `repositories`).
   */
  constructor(
    private readonly what: string,
    private readonly noun: string,
    private readonly maxNames: number,
    private readonly maxPages: number,
    private readonly context: MirrorErrorOptions,
  ) {}

  /** visit records a page about to be read; a page read already, or one past `maxPages`, fails the listing. */
  visit(url: string): void {
    if (this.pages.size >= this.maxPages) throw this.incomplete(`it has more than ${this.maxPages} pages`);
    if (this.pages.has(url)) throw this.incomplete(`page ${this.pages.size + 1} links back to a page already read (${redactUrl(url)})`);
    this.pages.add(url);
  }

  /**
   * fresh gives the names of the page just read that were not given before; undefined at the end (a page with names,
   * none new, and no `next`); a page like that which links on fails the listing.
   */
  fresh(page: readonly string[], next: string | undefined): string[] | undefined {
    const out: string[] = [];
    for (const name of page) {
      if (this.names.has(name)) continue;
      if (this.names.size >= this.maxNames) throw new MirrorError('REGISTRY', `${this.what} has more than ${this.maxNames} ${this.noun}; refused`, this.context);
      this.names.add(name);
      out.push(name);
    }
    if (out.length > 0 || page.length === 0) return out;
    if (next === undefined) return undefined;
    throw this.incomplete(`page ${this.pages.size} repeats ${this.noun} already listed and links to another page`);
  }

  /** incomplete is the error of a listing that cannot be finished. */
  private incomplete(why: string): MirrorError {
    return new MirrorError('REGISTRY', `${this.what} is incomplete: ${why}`, this.context);
  }
}
