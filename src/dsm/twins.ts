import { createDiff } from './diff.ts';
import type { PageData } from './messages.ts';
import type { PageTable } from './pages.ts';
import type { Flush } from './protocol.ts';

/**
 * The writer's side of an interval: the pages dirtied since the last synchronisation and, for pages
 * homed elsewhere, a twin taken on the first write, so the release can send only what changed. Home
 * pages need no twin: the home copy is the master and is written in place.
 */
export class WriteTracker {
  readonly #pages: PageTable;
  readonly #dirty: Uint8Array;
  #dirtyList: number[] = [];
  #twins = new Map<number, Uint8Array>();

  constructor(pages: PageTable) {
    this.#pages = pages;
    this.#dirty = new Uint8Array(pages.numPages);
  }

  /** Call before writing to `page` (which must be valid). */
  markWrite(page: number): void {
    if (this.#dirty[page] === 1) return;
    this.#dirty[page] = 1;
    this.#dirtyList.push(page);
    if (!this.#pages.isHome(page)) this.#twins.set(page, this.#pages.page(page).slice());
  }

  /** Ends the interval: the dirty pages and the diffs against their twins; twins are dropped. */
  flush(): Flush {
    const pages = Uint32Array.from(this.#dirtyList);
    const diffs: PageData[] = [];
    for (const [page, twin] of this.#twins)
      diffs.push({ page, data: createDiff(this.#pages.page(page), twin) });
    for (const p of pages) this.#dirty[p] = 0;
    this.#dirtyList = [];
    this.#twins = new Map();
    return { pages, diffs };
  }
}
