import { checkExact, type DsmApp, type DsmParams } from '../app.ts';
import { blockOwner, blockRange } from '../pages.ts';

/**
 * Red-black successive over-relaxation on an n x n grid with fixed boundaries. Rows are split in
 * blocks over the nodes (each node is home of its rows). Red points depend only on black ones and
 * vice versa, so any row split gives the sequential result bit for bit.
 *
 * A plain half-sweep streams the whole grid through memory for four flops a point, so on two cores
 * sharing a memory bus two copies of it barely run faster than one. The kernel (the sequential
 * program's too) therefore does ROUND half-sweeps per pass, as a wavefront over the rows: row i's
 * half-sweep h runs at step i + 2h, once its neighbours have had half-sweep h - 1 and before they
 * have h + 1, so the rows in flight stay in cache. Between barriers a node relaxes its own rows in
 * place and private copies of ROUND ghost rows on each side, fetched at the barrier; each half-sweep
 * the rows it can still compute correctly shrink by one on each side, so after ROUND of them its own
 * rows are exact (the ghost rows' work is redundant, their owners do it too). One barrier per ROUND
 * half-sweeps instead of one per half-sweep.
 */

const OMEGA = 1.25;
/** Half-sweeps per pass (even: a pass ends after a black half-sweep, as an iteration does). */
const ROUND = 8;

function initRow(g: Float64Array, n: number, i: number): void {
  for (let j = 0; j < n; j++) {
    const edge = i === 0 || j === 0 || i === n - 1 || j === n - 1;
    g[i * n + j] = edge ? Math.sin((i + 2 * j) / n) + 1 : 0;
  }
}

/** Where grid row i lives: an array and the offset of the row in it. */
type RowAt = (i: number) => readonly [Float64Array, number];

/** One colour's half-sweep over the interior points of row i (same arithmetic order as the plain loop). */
function relaxRow(rowAt: RowAt, n: number, i: number, color: number): void {
  const [up, u] = rowAt(i - 1);
  const [g, c] = rowAt(i);
  const [down, d] = rowAt(i + 1);
  for (let j = 1 + ((i + 1 + color) & 1); j < n - 1; j += 2) {
    const p = c + j;
    g[p] = (1 - OMEGA) * g[p]! + (OMEGA / 4) * (up[u + j]! + down[d + j]! + g[p - 1]! + g[p + 1]!);
  }
}

/**
 * `count` half-sweeps, the first of colour 0, over grid rows [a, b) of an n-row grid. Rows 0 and
 * n - 1 are fixed; elsewhere the computable rows shrink by one per half-sweep at each end that is
 * not the grid's edge.
 */
function pass(rowAt: RowAt, n: number, a: number, b: number, count: number): void {
  const from = (h: number) => (a === 0 ? 1 : a + 1 + h);
  const to = (h: number) => (b === n ? n - 1 : b - 1 - h);
  const last = to(count - 1) - 1 + 2 * (count - 1);
  for (let t = from(0); t <= last; t++) {
    for (let h = 0; h < count; h++) {
      const i = t - 2 * h;
      if (i >= from(h) && i < to(h)) relaxRow(rowAt, n, i, h & 1);
    }
  }
}

/** Half-sweeps in each pass: ROUND, and what is left for the last. */
function passes(iters: number): number[] {
  const out: number[] = [];
  for (let left = 2 * iters; left > 0; left -= ROUND) out.push(Math.min(ROUND, left));
  return out;
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
    {
      name: 'grid',
      bytes: n! * n! * 8,
      placement: {
        kind: 'explicit',
        home: (offset, count) => blockOwner(Math.floor(offset / (n! * 8)), n!, count),
      },
    },
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
    const g = ctx.f64('grid');
    const mine = ctx.f64('grid', start * size, (end - start) * size);
    const halo = ctx.f64('halo');
    // Ghost rows, ROUND on each side, in private copies: the work on them stays here.
    const a = Math.max(0, start - ROUND);
    const b = Math.min(size, end + ROUND);
    const top = new Float64Array((start - a) * size);
    const bottom = new Float64Array((b - end) * size);
    const rowAt: RowAt = (i) =>
      i < start ? [top, (i - a) * size] : i >= end ? [bottom, (i - end) * size] : [g, i * size];
    // A ghost row r comes from its owner's halo: the owner's bottom block above us, its top block below.
    const ghostSource = (r: number, parity: number): number => {
      const owner = blockOwner(r, size, ctx.nodes);
      const range = blockRange(owner, size, ctx.nodes);
      return r < start
        ? haloOffset(owner, parity, 'bottom', size) + (r - (range.end - ROUND)) * size
        : haloOffset(owner, parity, 'top', size) + (r - range.start) * size;
    };
    const ghostViews = (parity: number) => {
      const views: Float64Array[] = [];
      for (let r = a; r < b; r++) {
        if (r === start) r = end;
        if (r >= b) break;
        views.push(halo.subarray(ghostSource(r, parity), ghostSource(r, parity) + size));
      }
      return views;
    };
    const myHalo = (parity: number) =>
      [
        halo.subarray(
          haloOffset(ctx.node, parity, 'top', size),
          haloOffset(ctx.node, parity, 'top', size) + ROUND * size,
        ),
        halo.subarray(
          haloOffset(ctx.node, parity, 'bottom', size),
          haloOffset(ctx.node, parity, 'bottom', size) + ROUND * size,
        ),
      ] as const;
    // Neighbours read our boundary rows from the halo of one parity while we write the other's, and
    // nobody reads the grid until the end: no data race between barriers, however deep the ghosts.
    const publish = (parity: number) => {
      const [t, bo] = myHalo(parity);
      ctx.write(t);
      ctx.write(bo);
      const first = Math.min(end, start + ROUND);
      t.set(g.subarray(start * size, first * size));
      const from = Math.max(start, end - ROUND);
      bo.set(g.subarray(from * size, end * size), (from - (end - ROUND)) * size);
    };
    // Safe point (FT): after a restart, resume at pass restored[0] with halo parity restored[1].
    if (!ctx.restored) {
      ctx.write(mine);
      for (let i = start; i < end; i++) initRow(g, size, i);
      publish(0);
      ctx.barrier(...ghostViews(0));
    }
    let parity = ctx.restored?.[1] ?? 0;
    const all = passes(iters!);
    for (let k = ctx.restored?.[0] ?? 0; k < all.length; k++) {
      const count = all[k]!;
      if (end > start) {
        for (const view of ghostViews(parity)) ctx.read(view);
        for (let r = a; r < start; r++)
          top.set(halo.subarray(ghostSource(r, parity), ghostSource(r, parity) + size), (r - a) * size);
        for (let r = end; r < b; r++)
          bottom.set(halo.subarray(ghostSource(r, parity), ghostSource(r, parity) + size), (r - end) * size);
        ctx.write(mine);
        pass(rowAt, size, a, b, count);
        publish(1 - parity);
      }
      parity = 1 - parity;
      ctx.barrier(...ghostViews(parity));
      ctx.safePoint([k + 1, parity]);
    }
  },
  result: (ctx) => ctx.gather(ctx.f64('grid')),
  sequential({ n, iters }) {
    const size = n!;
    const g = new Float64Array(size * size);
    for (let i = 0; i < size; i++) initRow(g, size, i);
    const rowAt: RowAt = (i) => [g, i * size];
    for (const count of passes(iters!)) pass(rowAt, size, 0, size, count);
    return g;
  },
  check: checkExact,
};
