import { createError, ErrorCodes } from '../wire/errors.ts';
import { PageState, type PageTable, type Region } from './pages.ts';
import type { Flush } from './protocol.ts';
import { WriteTracker } from './twins.ts';

/**
 * What the app thread asks of the protocol thread; each call blocks the app until it is done.
 * `prefetch` lists page ranges (first, last pairs) to make readable right after an acquire or
 * barrier, saving the app a second round trip through the main thread.
 */
export type WorkerRequest = (
  | { op: 'fetch'; pages: number[] }
  | { op: 'acquire'; lock: number; flush: Flush; prefetch: number[] }
  | { op: 'release'; lock: number; flush: Flush }
  | { op: 'barrier'; flush: Flush; prefetch: number[] }
  /**
   * A safe point of the app (FT only): `state` is the app's private state to resume from; `due`:
   * the worker's checkpoint clock says checkpoint here (absent: the main thread's clock decides).
   */
  | { op: 'safe-point'; flush: Flush; state: number[]; due?: boolean }
) & {
  /**
   * Intervals the app ended at safe points that were not due (FT), oldest first: the main thread
   * closes them, in order, before anything else of this request.
   */
  closed?: Flush[];
};

/** Performs a request synchronously (the worker blocks on Atomics until the main thread answers). */
export interface Syncer {
  call(req: WorkerRequest): void;
}

type TypedArrayOf<T> = {
  new (buffer: ArrayBufferLike, byteOffset: number, length: number): T;
  BYTES_PER_ELEMENT: number;
};

/**
 * The app's handle on the shared space, in its worker. Access is explicit: `read(view)` before
 * reading a range (fetches invalid pages), `write(view)` before writing one (also twins the pages);
 * between synchronisations, already-valid pages cost a state check and nothing else.
 */
export class DsmContext {
  readonly node: number;
  readonly nodes: number;
  readonly #pages: PageTable;
  readonly #regions: ReadonlyMap<string, Region>;
  readonly #tracker: WriteTracker;
  readonly #syncer: Syncer;
  readonly #clock: { due(): boolean } | undefined;
  /** Intervals ended at safe points that were not due, for the next request (see safePoint). */
  #closed: Flush[] = [];

  /**
   * The private state the app gave at the safe point this node restarted from (after a failure), or
   * undefined on a first run. An app that resumes from it must reach the same calls in the same order
   * as its first run did after that safe point.
   */
  readonly restored: readonly number[] | undefined;
  /**
   * Whether fault tolerance is on: an app that keeps shared data in private memory between
   * synchronisations must then put it back in shared memory before each safe point.
   */
  readonly faultTolerant: boolean;

  constructor(
    pages: PageTable,
    regions: readonly Region[],
    nodes: number,
    syncer: Syncer,
    ft: {
      readonly on: boolean;
      readonly restored?: readonly number[];
      /** The node's checkpoint clock, run here: a safe point that is not due costs no call. */
      readonly clock?: { due(): boolean };
    } = { on: false },
  ) {
    this.node = pages.me;
    this.nodes = nodes;
    this.faultTolerant = ft.on;
    this.restored = ft.restored;
    this.#pages = pages;
    this.#regions = new Map(regions.map((r) => [r.name, r]));
    this.#tracker = new WriteTracker(pages);
    this.#syncer = syncer;
    this.#clock = ft.clock;
  }

  get pageSize(): number {
    return this.#pages.pageSize;
  }

  region(name: string): Region {
    const r = this.#regions.get(name);
    if (!r) throw createError(ErrorCodes.INVALID_ARGUMENT, `no region ${name}`);
    return r;
  }

  f64(region: string, start = 0, length?: number): Float64Array {
    return this.#view(Float64Array, region, start, length);
  }

  i32(region: string, start = 0, length?: number): Int32Array {
    return this.#view(Int32Array, region, start, length);
  }

  u32(region: string, start = 0, length?: number): Uint32Array {
    return this.#view(Uint32Array, region, start, length);
  }

  /**
   * Makes the views' bytes readable: fetches the pages invalidated by earlier acquires, those of all
   * the views in one request (one round trip per home, however scattered the views).
   */
  read(...views: ArrayBufferView[]): void {
    const state = this.#pages.state;
    // Allocates only when something is missing: valid pages, the common case, cost a state check.
    let missing: number[] | undefined;
    for (const view of views) {
      const { first, last } = this.#range(view);
      for (let p = first; p <= last; p++) {
        if (state[p] === PageState.VALID) continue;
        missing ??= [];
        missing.push(p);
      }
    }
    if (missing) this.#call({ op: 'fetch', pages: missing });
  }

  /** Makes the views' bytes writable (and readable); their pages' changes go home at the next release. */
  write(...views: ArrayBufferView[]): void {
    this.read(...views);
    for (const view of views) {
      const { first, last } = this.#range(view);
      for (let p = first; p <= last; p++) this.#tracker.markWrite(p);
    }
  }

  /** Reads a whole view and returns a private copy of it (node 0 gathering a result). */
  gather<T extends Float64Array | Int32Array | Uint32Array>(view: T): T {
    this.read(view);
    return view.slice() as T;
  }

  /** Acquires a lock; the `prefetch` views are readable when it returns (as if read() were called). */
  acquire(lock: number, ...prefetch: ArrayBufferView[]): void {
    this.#call({
      op: 'acquire',
      lock,
      flush: this.#tracker.flush(),
      prefetch: this.#ranges(prefetch),
    });
  }

  release(lock: number): void {
    this.#call({ op: 'release', lock, flush: this.#tracker.flush() });
  }

  /** Waits for every node; the `prefetch` views are readable when it returns (as if read() were called). */
  barrier(...prefetch: ArrayBufferView[]): void {
    this.#call({ op: 'barrier', flush: this.#tracker.flush(), prefetch: this.#ranges(prefetch) });
  }

  /**
   * A point where the app could resume from `state` (plain numbers: loop indices and the like) plus
   * the shared space. With fault tolerance on, the node may checkpoint here (its own choice); without
   * it, this costs nothing. Call it between synchronisations, typically right after a barrier.
   */
  safePoint(state: readonly number[]): void {
    if (!this.faultTolerant) return;
    const flush = this.#tracker.flush();
    if (!this.#clock) {
      this.#call({ op: 'safe-point', flush, state: [...state] });
      return;
    }
    // Every safe point counts on the clock, and ends an interval when the app wrote (as it must for
    // a re-execution to number its intervals as the first run did, whatever the clock said). The
    // main thread hears of it only when a checkpoint is due; otherwise the interval goes with the
    // next request, closed before it. Nothing needs it earlier: its notices are owed to no one
    // before this node's next release or barrier, and its pages are in the shared space already.
    const due = this.#clock.due();
    if (due) this.#call({ op: 'safe-point', flush, state: [...state], due });
    else if (flush.pages.length > 0) this.#closed.push(flush);
  }

  #call(req: WorkerRequest): void {
    if (this.#closed.length > 0) {
      req.closed = this.#closed;
      this.#closed = [];
    }
    this.#syncer.call(req);
  }

  #ranges(views: readonly ArrayBufferView[]): number[] {
    return views.flatMap((v) => {
      const { first, last } = this.#range(v);
      return [first, last];
    });
  }

  #range(view: ArrayBufferView): { first: number; last: number } {
    if (view.buffer !== this.#pages.data.buffer) {
      throw createError(
        ErrorCodes.INVALID_ARGUMENT,
        'view is not over the shared space (use ctx.f64/i32/u32)',
      );
    }
    return this.#pages.pagesOf(view.byteOffset, view.byteLength);
  }

  #view<T>(ctor: TypedArrayOf<T>, name: string, start: number, length: number | undefined): T {
    const r = this.region(name);
    const total = Math.floor(r.bytes / ctor.BYTES_PER_ELEMENT);
    const len = length ?? total - start;
    if (!Number.isInteger(start) || !Number.isInteger(len) || start < 0 || len < 0 || start + len > total) {
      throw createError(
        ErrorCodes.DSM_OUT_OF_RANGE,
        `${name}[${start}..${start + len}) outside its ${total} elements`,
      );
    }
    return new ctor(this.#pages.data.buffer, r.offset + start * ctor.BYTES_PER_ELEMENT, len);
  }
}
