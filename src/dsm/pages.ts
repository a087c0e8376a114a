import { createError, ErrorCodes } from '../wire/errors.ts';

/** Page states in the shared state array: a home page is always VALID on its home. */
export const PageState = { INVALID: 0, VALID: 1 } as const;

export const DEFAULT_PAGE_SIZE = 4096;
export const MIN_PAGE_SIZE = 256;
export const MAX_PAGE_SIZE = 65536;

/**
 * Where the pages of a region live. `block` splits the region into one contiguous run of pages per
 * node, `cyclic` deals pages round-robin, `explicit` asks the app for the home of the page starting
 * at byte `offset` of the region (so apps can place pages with the data their nodes own).
 */
export type Placement =
  | { readonly kind: 'block' }
  | { readonly kind: 'cyclic' }
  | { readonly kind: 'explicit'; readonly home: (offset: number, nodes: number) => number };

export interface RegionSpec {
  readonly name: string;
  readonly bytes: number;
  readonly placement: Placement;
}

/** A placed region: page-aligned, so regions never share a page (no false sharing between them). */
export interface Region {
  readonly name: string;
  readonly offset: number;
  readonly bytes: number;
}

export interface Layout {
  readonly pageSize: number;
  readonly numPages: number;
  readonly regions: readonly Region[];
  readonly homes: Uint16Array;
}

export function checkPageSize(pageSize: number): void {
  if (!Number.isInteger(pageSize) || pageSize < MIN_PAGE_SIZE || pageSize > MAX_PAGE_SIZE) {
    throw createError(
      ErrorCodes.INVALID_ARGUMENT,
      `page size ${pageSize} outside ${MIN_PAGE_SIZE}..${MAX_PAGE_SIZE}`,
    );
  }
  if ((pageSize & (pageSize - 1)) !== 0) {
    throw createError(ErrorCodes.INVALID_ARGUMENT, `page size ${pageSize} is not a power of two`);
  }
}

/** Lays regions out one after another, page-aligned, and computes every page's home. */
export function planLayout(specs: readonly RegionSpec[], pageSize: number, nodes: number): Layout {
  checkPageSize(pageSize);
  if (!Number.isInteger(nodes) || nodes < 1 || nodes > 0xfffe) {
    throw createError(ErrorCodes.INVALID_ARGUMENT, `node count ${nodes} outside 1..65534`);
  }
  const regions: Region[] = [];
  const homeRuns: { pages: number; placement: Placement }[] = [];
  let offset = 0;
  for (const spec of specs) {
    if (!Number.isSafeInteger(spec.bytes) || spec.bytes < 0) {
      throw createError(ErrorCodes.INVALID_ARGUMENT, `region ${spec.name}: bad size ${spec.bytes}`);
    }
    if (regions.some((r) => r.name === spec.name)) {
      throw createError(ErrorCodes.INVALID_ARGUMENT, `region ${spec.name} declared twice`);
    }
    const pages = Math.ceil(spec.bytes / pageSize);
    regions.push({ name: spec.name, offset, bytes: spec.bytes });
    homeRuns.push({ pages, placement: spec.placement });
    offset += pages * pageSize;
  }
  const numPages = offset / pageSize;
  if (numPages > 0xffffffff) throw createError(ErrorCodes.INVALID_ARGUMENT, 'shared space too large');
  const homes = new Uint16Array(numPages);
  let page = 0;
  for (const run of homeRuns) {
    for (let i = 0; i < run.pages; i++)
      homes[page + i] = placeOne(run.placement, i, run.pages, pageSize, nodes);
    page += run.pages;
  }
  return { pageSize, numPages, regions, homes };
}

function placeOne(placement: Placement, i: number, pages: number, pageSize: number, nodes: number): number {
  switch (placement.kind) {
    case 'block':
      return Math.min(nodes - 1, Math.floor((i * nodes) / pages));
    case 'cyclic':
      return i % nodes;
    case 'explicit': {
      const home = placement.home(i * pageSize, nodes);
      if (!Number.isInteger(home) || home < 0 || home >= nodes) {
        throw createError(ErrorCodes.INVALID_ARGUMENT, `explicit placement gave node ${home} for page ${i}`);
      }
      return home;
    }
  }
}

/** The owner of item `i` of `count` items split in contiguous blocks over `nodes` (block partitioning). */
export function blockOwner(i: number, count: number, nodes: number): number {
  return Math.min(nodes - 1, Math.floor((i * nodes) / count));
}

/** First and one-past-last item owned by `node` under blockOwner. */
export function blockRange(node: number, count: number, nodes: number): { start: number; end: number } {
  return { start: Math.ceil((node * count) / nodes), end: Math.ceil(((node + 1) * count) / nodes) };
}

/**
 * The local copy of the shared space, in SharedArrayBuffers so the app's worker and the protocol's
 * main thread see the same bytes: `data` holds the pages, `state` one PageState byte per page.
 */
export class PageTable {
  readonly pageSize: number;
  readonly numPages: number;
  readonly homes: Uint16Array;
  readonly data: Uint8Array;
  readonly state: Uint8Array;
  readonly me: number;

  constructor(layout: Pick<Layout, 'pageSize' | 'numPages' | 'homes'>, me: number, buffers?: PageBuffers) {
    this.pageSize = layout.pageSize;
    this.numPages = layout.numPages;
    this.homes = layout.homes;
    this.me = me;
    const b = buffers ?? allocatePageBuffers(layout.pageSize, layout.numPages);
    this.data = new Uint8Array(b.data);
    this.state = new Uint8Array(b.state);
    if (this.data.length !== this.pageSize * this.numPages || this.state.length !== this.numPages) {
      throw createError(ErrorCodes.INVALID_ARGUMENT, 'page buffers do not match the layout');
    }
    if (!buffers)
      for (let p = 0; p < this.numPages; p++) if (this.homes[p] === me) this.state[p] = PageState.VALID;
  }

  get buffers(): PageBuffers {
    return { data: this.data.buffer as SharedArrayBuffer, state: this.state.buffer as SharedArrayBuffer };
  }

  isHome(page: number): boolean {
    return this.homes[page] === this.me;
  }

  page(page: number): Uint8Array {
    return this.data.subarray(page * this.pageSize, (page + 1) * this.pageSize);
  }

  /** Throws DSM_OUT_OF_RANGE unless `page` names a page of the space. */
  checkPage(page: number): void {
    if (!Number.isInteger(page) || page < 0 || page >= this.numPages) {
      throw createError(ErrorCodes.DSM_OUT_OF_RANGE, `page ${page} outside 0..${this.numPages - 1}`);
    }
  }

  /** Pages covering a byte range, checked against the space. */
  pagesOf(offset: number, bytes: number): { first: number; last: number } {
    if (!Number.isSafeInteger(offset) || !Number.isSafeInteger(bytes) || offset < 0 || bytes < 0) {
      throw createError(ErrorCodes.DSM_OUT_OF_RANGE, `bad range ${offset}+${bytes}`);
    }
    if (offset + bytes > this.data.length) {
      throw createError(
        ErrorCodes.DSM_OUT_OF_RANGE,
        `range ${offset}+${bytes} past the ${this.data.length}-byte space`,
      );
    }
    // An empty range covers no page (last < first), wherever it sits.
    if (bytes === 0) return { first: 0, last: -1 };
    return {
      first: Math.floor(offset / this.pageSize),
      last: Math.floor((offset + bytes - 1) / this.pageSize),
    };
  }
}

export interface PageBuffers {
  readonly data: SharedArrayBuffer;
  readonly state: SharedArrayBuffer;
}

export function allocatePageBuffers(pageSize: number, numPages: number): PageBuffers {
  return { data: new SharedArrayBuffer(pageSize * numPages), state: new SharedArrayBuffer(numPages) };
}
