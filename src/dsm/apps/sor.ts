import { checkExact, type DsmApp, type DsmParams } from '../app.ts';
import { blockOwner, blockRange } from '../pages.ts';

/**
 * Red-black successive over-relaxation on an n x n grid with fixed boundaries. Rows are split in
 * blocks over the nodes. Red points depend only on black ones and vice versa, so any row split gives
 * the sequential result bit for bit.
 *
 * A plain half-sweep streams the whole grid through memory for four flops a point, so on two cores
 * sharing a memory bus two copies of it barely run faster than one. The kernel (the sequential
 * program's too) therefore does ROUND half-sweeps per pass, as a wavefront over the rows: row i's
 * half-sweep h runs at step i + 2h, once its neighbours have had half-sweep h - 1 and before they
 * have h + 1, so the rows in flight stay in cache. Between barriers a node relaxes its segment of the
 * grid in place: a region homed at that node holding its own rows plus ROUND ghost rows on each side,
 * taken from the neighbours' halo blocks at the barrier (or, before the first pass, computed: they
 * hold their initial values); each half-sweep the rows it can still compute correctly shrink by one
 * on each side, so after ROUND of them its own rows are exact (the ghost rows' work is redundant,
 * their owners do it too). One barrier per ROUND half-sweeps instead of one per half-sweep, and no
 * copy of the grid: the segment is both the working block and, for fault tolerance, the state a
 * restarted node resumes from. Node 0 assembles the grid at the end.
 */

const OMEGA = 1.25;
/** Half-sweeps per pass (even: a pass ends after a black half-sweep, as an iteration does). */
const ROUND = 8;

/** Grid row i's initial values, written at offset `at` of `g`. */
function initRow(g: Float64Array, n: number, at: number, i: number): void {
  for (let j = 0; j < n; j++) {
    const edge = i === 0 || j === 0 || i === n - 1 || j === n - 1;
    g[at + j] = edge ? Math.sin((i + 2 * j) / n) + 1 : 0;
  }
}

/** One colour's half-sweep over the interior points of the row at offset `at` of `g`. */
function relaxRow(g: Float64Array, n: number, at: number, i: number, color: number): void {
  for (let j = 1 + ((i + 1 + color) & 1); j < n - 1; j += 2) {
    const p = at + j;
    g[p] = (1 - OMEGA) * g[p]! + (OMEGA / 4) * (g[p - n]! + g[p + n]! + g[p - 1]! + g[p + 1]!);
  }
}

/**
 * `count` half-sweeps, the first of colour 0, over `g`, which holds grid rows [a, b) of an n-row
 * grid. Rows 0 and n - 1 are fixed; elsewhere the computable rows shrink by one per half-sweep at
 * each end that is not the grid's edge.
 */
function pass(g: Float64Array, n: number, a: number, b: number, count: number): void {
  const from = (h: number) => (a === 0 ? 1 : a + 1 + h);
  const to = (h: number) => (b === n ? n - 1 : b - 1 - h);
  const last = to(count - 1) - 1 + 2 * (count - 1);
  for (let t = from(0); t <= last; t++) {
    for (let h = 0; h < count; h++) {
      const i = t - 2 * h;
      if (i >= from(h) && i < to(h)) relaxRow(g, n, (i - a) * n, i, h & 1);
    }
  }
}

/** Half-sweeps in each pass: ROUND, and what is left for the last. */
function passes(iters: number): number[] {
  const out: number[] = [];
  for (let left = 2 * iters; left > 0; left -= ROUND) out.push(Math.min(ROUND, left));
  return out;
}

/** Node k's segment: grid rows [a, b), its own rows and up to ROUND ghost rows on each side. */
function segment(k: number, n: number, nodes: number): { a: number; b: number } {
  const { start, end } = blockRange(k, n, nodes);
  return { a: Math.max(0, start - ROUND), b: Math.min(n, end + ROUND) };
}

/**
 * Where the halo rows live: for each node and pass parity, its first ROUND rows ("top") and its last
 * ROUND rows ("bottom"), positionally (a node with fewer rows leaves the rest unused).
 */
function haloOffset(node: number, parity: number, side: 'top' | 'bottom', n: number): number {
  return ((node * 2 + parity) * 2 + (side === 'top' ? 0 : 1)) * ROUND * n;
}

export const sor: DsmApp = {
  name: 'sor',
  description: 'red-black SOR on a grid (barriers, nearest-neighbour sharing, ghost rows)',
  params: (size) => ({ n: size ?? 512, iters: 20 }),
  layout: ({ n }: DsmParams, nodes: number) => [
    // Node k's segment (own rows and ghost rows), a region of its own: page-aligned, homed at k.
    ...Array.from({ length: nodes }, (_, k) => {
      const { a, b } = segment(k, n!, nodes);
      return {
        name: `seg${k}`,
        bytes: Math.max(1, b - a) * n! * 8,
        placement: { kind: 'explicit' as const, home: () => k },
      };
    }),
    {
      // Each node's halo blocks, at that node.
      name: 'halo',
      bytes: nodes * 4 * ROUND * n! * 8,
      placement: { kind: 'explicit', home: (offset) => Math.floor(offset / (4 * ROUND * n! * 8)) },
    },
  ],
  run(ctx, { n, iters }) {
    const size = n!;
    const { start, end } = blockRange(ctx.node, size, ctx.nodes);
    const { a, b } = segment(ctx.node, size, ctx.nodes);
    // Grid row i is at (i - a) * size in the segment.
    const seg = ctx.f64(`seg${ctx.node}`, 0, (b - a) * size);
    const halo = ctx.f64('halo');
    // A ghost row r comes from its owner's halo: the owner's bottom block above us, its top block below.
    const ghostSource = (r: number, parity: number): number => {
      const owner = blockOwner(r, size, ctx.nodes);
      const range = blockRange(owner, size, ctx.nodes);
      return r < start
        ? haloOffset(owner, parity, 'bottom', size) + (r - (range.end - ROUND)) * size
        : haloOffset(owner, parity, 'top', size) + (r - range.start) * size;
    };
    const ghostRows: number[] = [];
    for (let r = a; r < start; r++) ghostRows.push(r);
    for (let r = end; r < b; r++) ghostRows.push(r);
    const ghostView = (r: number, parity: number) => {
      const at = ghostSource(r, parity);
      return halo.subarray(at, at + size);
    };
    const ghostViews = (parity: number) => ghostRows.map((r) => ghostView(r, parity));
    // Neighbours read our boundary rows from the halo of one parity while we write the other's, and
    // nobody reads a segment until the end: no data race between barriers, however deep the ghosts.
    const publish = (parity: number) => {
      const top = halo.subarray(haloOffset(ctx.node, parity, 'top', size));
      const bottom = halo.subarray(haloOffset(ctx.node, parity, 'bottom', size));
      const first = Math.min(end, start + ROUND);
      const from = Math.max(start, end - ROUND);
      ctx.write(top.subarray(0, ROUND * size));
      ctx.write(bottom.subarray(0, ROUND * size));
      top.set(seg.subarray((start - a) * size, (first - a) * size));
      bottom.set(seg.subarray((from - a) * size, (end - a) * size), (from - (end - ROUND)) * size);
    };
    // Every row of the segment starts at its initial value, ghost rows too (a function of the row):
    // the first pass needs nothing from the neighbours, so no barrier comes before it.
    if (!ctx.restored && end > start) {
      ctx.write(seg);
      for (let i = a; i < b; i++) initRow(seg, size, (i - a) * size, i);
    }
    // Safe point (FT): after a restart, resume at pass restored[0] with halo parity restored[1] (the
    // segment and the halo are this node's pages, restored from its checkpoint).
    let parity = ctx.restored?.[1] ?? 0;
    const all = passes(iters!);
    for (let k = ctx.restored?.[0] ?? 0; k < all.length; k++) {
      // Nobody reads the last pass's boundary rows: the app's final barrier is the only one after it.
      const last = k === all.length - 1;
      if (end > start) {
        ctx.write(seg);
        if (k > 0) {
          // Fetched with the barrier's prefetch, or here in one request after a restart.
          const views = ghostViews(parity);
          ctx.read(...views);
          for (let i = 0; i < ghostRows.length; i++) seg.set(views[i]!, (ghostRows[i]! - a) * size);
        }
        pass(seg, size, a, b, all[k]!);
        if (!last) publish(1 - parity);
      }
      if (last) break;
      parity = 1 - parity;
      ctx.barrier(...ghostViews(parity));
      ctx.safePoint([k + 1, parity]);
    }
  },
  result(ctx, { n }) {
    const size = n!;
    const grid = new Float64Array(size * size);
    for (let k = 0; k < ctx.nodes; k++) {
      const { start, end } = blockRange(k, size, ctx.nodes);
      const { a } = segment(k, size, ctx.nodes);
      const own = ctx.f64(`seg${k}`, (start - a) * size, (end - start) * size);
      ctx.read(own);
      grid.set(own, start * size);
    }
    return grid;
  },
  sequential({ n, iters }) {
    const size = n!;
    const g = new Float64Array(size * size);
    for (let i = 0; i < size; i++) initRow(g, size, i * size, i);
    for (const count of passes(iters!)) pass(g, size, 0, size, count);
    return g;
  },
  check: checkExact,
};
