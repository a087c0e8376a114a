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

export const sor: DsmApp = {
  name: 'sor',
  description: 'red-black SOR on a grid (barriers, nearest-neighbour sharing, ghost rows)',
  params: (size) => ({ n: size ?? 512, iters: 20 }),
  layout: ({ n }: DsmParams) => [
    {
      name: 'grid',
      bytes: n! * n! * 8,
      placement: {
        kind: 'explicit',
        home: (offset, nodes) => blockOwner(Math.floor(offset / (n! * 8)), n!, nodes),
      },
    },
  ],
  run(ctx, { n, iters }) {
    const size = n!;
    const { start, end } = blockRange(ctx.node, size, ctx.nodes);
    const g = ctx.f64('grid');
    const mine = ctx.f64('grid', start * size, (end - start) * size);
    // Ghost rows: as many as a pass has half-sweeps, within the grid, in private copies (the work on
    // them must not reach their homes). Own rows are relaxed in place.
    const a = Math.max(0, start - ROUND);
    const b = Math.min(size, end + ROUND);
    const above = ctx.f64('grid', a * size, (start - a) * size);
    const below = ctx.f64('grid', end * size, (b - end) * size);
    const top = new Float64Array(above.length);
    const bottom = new Float64Array(below.length);
    const rowAt: RowAt = (i) =>
      i < start ? [top, (i - a) * size] : i >= end ? [bottom, (i - end) * size] : [g, i * size];
    ctx.write(mine);
    for (let i = start; i < end; i++) initRow(g, size, i);
    ctx.barrier(above, below);
    for (const count of passes(iters!)) {
      if (end > start) {
        ctx.read(above);
        ctx.read(below);
        top.set(above);
        bottom.set(below);
        ctx.write(mine);
        pass(rowAt, size, a, b, count);
      }
      ctx.barrier(above, below);
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
