import { checkExact, type DsmApp, type DsmParams } from '../app.ts';
import { blockOwner, blockRange } from '../pages.ts';

/**
 * Red-black successive over-relaxation on an n x n grid with fixed boundaries. Rows are split in
 * blocks over the nodes (each node is home of its rows); each half-sweep reads the neighbours'
 * boundary rows and ends with a barrier. Red points depend only on black ones and vice versa, so
 * any row split gives the sequential result bit for bit.
 */

const OMEGA = 1.25;

function initRow(g: Float64Array, n: number, i: number): void {
  for (let j = 0; j < n; j++) {
    const edge = i === 0 || j === 0 || i === n - 1 || j === n - 1;
    g[i * n + j] = edge ? Math.sin((i + 2 * j) / n) + 1 : 0;
  }
}

/** One colour's half-sweep over rows [lo, hi) (interior rows only). */
function relax(g: Float64Array, n: number, lo: number, hi: number, color: number): void {
  const from = Math.max(lo, 1);
  const to = Math.min(hi, n - 1);
  for (let i = from; i < to; i++) {
    const row = i * n;
    for (let j = 1 + ((i + 1 + color) & 1); j < n - 1; j += 2) {
      const at = row + j;
      g[at] = (1 - OMEGA) * g[at]! + (OMEGA / 4) * (g[at - n]! + g[at + n]! + g[at - 1]! + g[at + 1]!);
    }
  }
}

export const sor: DsmApp = {
  name: 'sor',
  description: 'red-black SOR on a grid (barriers, nearest-neighbour sharing)',
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
    const above = ctx.f64('grid', Math.max(0, start - 1) * size, size);
    const below = ctx.f64('grid', Math.min(size - 1, end) * size, size);
    ctx.write(mine);
    for (let i = start; i < end; i++) initRow(g, size, i);
    ctx.barrier(above, below);
    for (let it = 0; it < iters!; it++) {
      for (let color = 0; color < 2; color++) {
        if (end > start) {
          ctx.read(above);
          ctx.read(below);
          ctx.write(mine);
          relax(g, size, start, end, color);
        }
        ctx.barrier(above, below);
      }
    }
  },
  result: (ctx) => ctx.gather(ctx.f64('grid')),
  sequential({ n, iters }) {
    const size = n!;
    const g = new Float64Array(size * size);
    for (let i = 0; i < size; i++) initRow(g, size, i);
    for (let it = 0; it < iters!; it++)
      for (let color = 0; color < 2; color++) relax(g, size, 0, size, color);
    return g;
  },
  check: checkExact,
};
