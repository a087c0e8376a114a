import { checkExact, type DsmApp, type DsmParams, seededRandom } from '../app.ts';

/**
 * LU factorisation without pivoting of a diagonally dominant n x n matrix, in place, blocked by
 * rows: row block r (bs rows) belongs to node r % nodes (cyclic, for balance) and is homed there.
 * Step kb: the owner of block kb finishes it (elimination inside the block), barrier, then every
 * node eliminates block kb's pivots from its later blocks. Each element sees the same operations in
 * the same order as in the plain right-looking loop (pivot k before k + 1): bitwise equal. The
 * sequential program runs the same blocked loop on one thread, so the two share their kernel.
 */

function init(a: Float64Array, n: number, lo: number, hi: number, seed: number): void {
  for (let i = lo; i < hi; i++) {
    const rnd = seededRandom(seed * 100003 + i);
    for (let j = 0; j < n; j++) a[i * n + j] = rnd() + (i === j ? n : 0);
  }
}

/** Eliminates pivots [k0, k1) from row i (rows k0..k1-1 must be final). */
function eliminate(a: Float64Array, n: number, i: number, k0: number, k1: number): void {
  const ri = i * n;
  for (let k = k0; k < k1 && k < i; k++) {
    const rk = k * n;
    const l = a[ri + k]! / a[rk + k]!;
    a[ri + k] = l;
    for (let j = k + 1; j < n; j++) a[ri + j] = a[ri + j]! - l * a[rk + j]!;
  }
}

export const lu: DsmApp = {
  name: 'lu',
  description: 'blocked LU factorisation (barriers, pivot rows broadcast)',
  params: (size) => ({ n: size ?? 256, bs: 16, seed: 7 }),
  layout: ({ n, bs }: DsmParams) => [
    {
      name: 'a',
      bytes: n! * n! * 8,
      placement: {
        kind: 'explicit',
        home: (offset, nodes) => Math.floor(Math.floor(offset / (n! * 8)) / bs!) % nodes,
      },
    },
  ],
  run(ctx, { n, bs, seed }) {
    const size = n!;
    const block = bs!;
    const blocks = Math.ceil(size / block);
    const a = ctx.f64('a');
    const rowsOf = (rb: number) => {
      const lo = rb * block;
      return ctx.f64('a', lo * size, (Math.min(size, lo + block) - lo) * size);
    };
    // Safe point (FT): resume at pivot block restored[0] after a restart.
    const from = ctx.restored?.[0] ?? 0;
    if (!ctx.restored) {
      for (let rb = ctx.node; rb < blocks; rb += ctx.nodes) {
        ctx.write(rowsOf(rb));
        init(a, size, rb * block, Math.min(size, (rb + 1) * block), seed!);
      }
    }
    for (let kb = from; kb < blocks; kb++) {
      const k0 = kb * block;
      const k1 = Math.min(size, k0 + block);
      if (kb % ctx.nodes === ctx.node) {
        ctx.write(rowsOf(kb));
        for (let i = k0 + 1; i < k1; i++) eliminate(a, size, i, k0, i);
      }
      let first = kb + 1;
      while (first % ctx.nodes !== ctx.node) first++;
      ctx.barrier(...(first < blocks ? [rowsOf(kb)] : []));
      for (let rb = first; rb < blocks; rb += ctx.nodes) {
        ctx.write(rowsOf(rb));
        for (let i = rb * block; i < Math.min(size, (rb + 1) * block); i++) eliminate(a, size, i, k0, k1);
      }
      ctx.safePoint([kb + 1]);
    }
  },
  result: (ctx) => ctx.gather(ctx.f64('a')),
  sequential({ n, bs, seed }) {
    const size = n!;
    const block = bs!;
    const a = new Float64Array(size * size);
    init(a, size, 0, size, seed!);
    // The DSM's loop on one node, without the DSM (the same kernel, so the comparison times the DSM).
    for (let k0 = 0; k0 < size; k0 += block) {
      const k1 = Math.min(size, k0 + block);
      for (let i = k0 + 1; i < k1; i++) eliminate(a, size, i, k0, i);
      for (let i = k1; i < size; i++) eliminate(a, size, i, k0, k1);
    }
    return a;
  },
  check: checkExact,
};
