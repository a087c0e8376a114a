import { checkExact, type DsmApp, type DsmParams } from '../app.ts';
import { blockOwner, blockRange, type RegionSpec } from '../pages.ts';

/**
 * C = A x B on n x n matrices. Rows of A, B and C are split in blocks (each node is home of its
 * rows and fills them); every node then reads all of B (read sharing) and computes its rows of C.
 * The dot products run in the same order as the sequential program: bitwise equal.
 */

const a = (i: number, j: number) => ((i * 7 + j * 3) % 17) / 17 - 0.5;
const b = (i: number, j: number) => ((i * 5 + j * 11) % 13) / 13 - 0.25;

function fill(m: Float64Array, n: number, lo: number, hi: number, f: (i: number, j: number) => number): void {
  for (let i = lo; i < hi; i++) for (let j = 0; j < n; j++) m[i * n + j] = f(i, j);
}

/** Rows [lo, hi) of C = A x B (i-k-j order: streams rows of B). */
function multiply(
  A: Float64Array,
  B: Float64Array,
  C: Float64Array,
  n: number,
  lo: number,
  hi: number,
): void {
  for (let i = lo; i < hi; i++) {
    const ci = i * n;
    for (let j = 0; j < n; j++) C[ci + j] = 0;
    for (let k = 0; k < n; k++) {
      const aik = A[i * n + k]!;
      const bk = k * n;
      for (let j = 0; j < n; j++) C[ci + j] = C[ci + j]! + aik * B[bk + j]!;
    }
  }
}

function rowsRegion(name: string, n: number): RegionSpec {
  return {
    name,
    bytes: n * n * 8,
    placement: {
      kind: 'explicit',
      home: (offset, nodes) => blockOwner(Math.floor(offset / (n * 8)), n, nodes),
    },
  };
}

export const matmul: DsmApp = {
  name: 'matmul',
  description: 'dense matrix multiply (read sharing of B)',
  params: (size) => ({ n: size ?? 256 }),
  layout: ({ n }: DsmParams) => [rowsRegion('a', n!), rowsRegion('b', n!), rowsRegion('c', n!)],
  run(ctx, { n }) {
    const size = n!;
    const { start, end } = blockRange(ctx.node, size, ctx.nodes);
    const [A, B, C] = [ctx.f64('a'), ctx.f64('b'), ctx.f64('c')];
    const rows = (name: string) => ctx.f64(name, start * size, (end - start) * size);
    // Safe point (FT): after the barrier, a restart skips the fill.
    if (!ctx.restored) {
      ctx.write(rows('a'));
      ctx.write(rows('b'));
      fill(A, size, start, end, a);
      fill(B, size, start, end, b);
      ctx.barrier(B);
      ctx.safePoint([1]);
    }
    ctx.write(rows('c'));
    multiply(A, B, C, size, start, end);
  },
  result: (ctx) => ctx.gather(ctx.f64('c')),
  sequential({ n }) {
    const size = n!;
    const [A, B, C] = [
      new Float64Array(size * size),
      new Float64Array(size * size),
      new Float64Array(size * size),
    ];
    fill(A, size, 0, size, a);
    fill(B, size, 0, size, b);
    multiply(A, B, C, size, 0, size);
    return C;
  },
  check: checkExact,
};
