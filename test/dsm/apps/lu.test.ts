import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { seededRandom } from '../../../src/dsm/app.ts';
import { lu } from '../../../src/dsm/apps/lu.ts';
import { testOnNodeCounts } from './run-app.ts';

describe('dsm app: lu', () => testOnNodeCounts('lu', { n: 48, bs: 4, seed: 5 }));

/** Plain right-looking LU without pivoting, unblocked (same input as the app). */
function plainLu(n: number, seed: number): Float64Array {
  const a = new Float64Array(n * n);
  for (let i = 0; i < n; i++) {
    const rnd = seededRandom(seed * 100003 + i);
    for (let j = 0; j < n; j++) a[i * n + j] = rnd() + (i === j ? n : 0);
  }
  for (let k = 0; k < n; k++) {
    for (let i = k + 1; i < n; i++) {
      const l = a[i * n + k]! / a[k * n + k]!;
      a[i * n + k] = l;
      for (let j = k + 1; j < n; j++) a[i * n + j] = a[i * n + j]! - l * a[k * n + j]!;
    }
  }
  return a;
}

// The DSM nodes and the sequential program share the blocked kernel: this checks it against the
// unblocked loop, block sizes dividing n or not.
describe('lu kernel', () => {
  for (const [n, bs] of [
    [1, 4],
    [10, 3],
    [48, 4],
    [50, 16],
    [64, 64],
  ] as const) {
    test(`blocked elimination equals the unblocked loop bit for bit (n ${n}, bs ${bs})`, () => {
      const check = lu.check(lu.sequential({ n, bs, seed: 5 }), plainLu(n, 5));
      assert.ok(check.ok, check.detail);
    });
  }
});
