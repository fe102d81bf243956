/** What a walk through a paged listing (tag list, catalog) has seen, so a registry that repeats itself cannot loop it. */
import { MirrorError, type MirrorErrorOptions } from '../errors/index.js';

/**
 * PageWalk remembers the pages read (absolute URLs) and the names given: a Link back to a page already read ends
 * the walk, a name is given once however often the registry repeats it, a page that adds no new name ends the
 * walk (a registry going round in circles under new URLs), and more than `maxNames` distinct names is refused.
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
    private readonly context: MirrorErrorOptions,
  ) {}

  /** visit records a page about to be read; false when it was read already. */
  visit(url: string): boolean {
    if (this.pages.has(url)) return false;
    this.pages.add(url);
    return true;
  }

  /**
   * incomplete is the error of a listing that cannot be finished: a Link back to a page already read, a page of
   * names all given before that still links on, or more pages than the caller reads. The names given so far are not the
   * whole list, so nothing may be concluded from what is missing (`sync --prune` prunes nothing).
   */
  incomplete(why: string): MirrorError {
    return new MirrorError('REGISTRY', `${this.what} is incomplete: ${why}`, this.context);
  }

  /** fresh gives the names of a page not given before, or undefined when the page had names and none was new. */
  fresh(page: readonly string[]): string[] | undefined {
    const out: string[] = [];
    for (const name of page) {
      if (this.names.has(name)) continue;
      if (this.names.size >= this.maxNames) throw new MirrorError('REGISTRY', `${this.what} has more than ${this.maxNames} ${this.noun}; refused`, this.context);
      this.names.add(name);
      out.push(name);
    }
    return out.length === 0 && page.length > 0 ? undefined : out;
  }
}
