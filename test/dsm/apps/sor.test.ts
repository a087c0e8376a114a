import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { sor } from '../../../src/dsm/apps/sor.ts';
import { testOnNodeCounts } from './run-app.ts';

// 48 rows: at 8 nodes each has fewer rows than a pass has ghost rows. 100 rows of 800 B: node
// boundaries fall inside pages, and 12 half-sweeps end with a short pass.
describe('dsm app: sor (n 48)', () => testOnNodeCounts('sor', { n: 48, iters: 3 }));
describe('dsm app: sor (n 100)', () => testOnNodeCounts('sor', { n: 100, iters: 6 }));

/** Textbook red-black SOR, one half-sweep over the whole grid at a time (same init, same formula). */
function plainSor(n: number, iters: number): Float64Array {
  const omega = 1.25;
  const g = new Float64Array(n * n);
  for (let i = 0; i < n; i++) {
    for (let j = 0; j < n; j++) {
      const edge = i === 0 || j === 0 || i === n - 1 || j === n - 1;
      g[i * n + j] = edge ? Math.sin((i + 2 * j) / n) + 1 : 0;
    }
  }
  for (let it = 0; it < iters; it++) {
    for (let color = 0; color < 2; color++) {
      for (let i = 1; i < n - 1; i++) {
        for (let j = 1 + ((i + 1 + color) & 1); j < n - 1; j += 2) {
          const p = i * n + j;
          g[p] = (1 - omega) * g[p]! + (omega / 4) * (g[p - n]! + g[p + n]! + g[p - 1]! + g[p + 1]!);
        }
      }
    }
  }
  return g;
}

// The DSM nodes and the sequential program share the wavefront kernel, so comparing them cannot
// catch a wrong kernel: this compares it with plain half-sweeps.
describe('sor kernel', () => {
  for (const [n, iters] of [
    [3, 2],
    [16, 1],
    [33, 3],
    [64, 7],
    [100, 20],
  ] as const) {
    test(`wavefront passes equal plain red-black SOR bit for bit (n ${n}, ${iters} iterations)`, () => {
      const check = sor.check(sor.sequential({ n, iters }), plainSor(n, iters));
      assert.ok(check.ok, check.detail);
    });
  }
});
