import assert from 'node:assert/strict';
import { test } from 'node:test';
import { setImmediate as tick } from 'node:timers/promises';
import { RandomPool } from '../../src/session/random-pool.ts';

test('RandomPool hands out every byte once, across refills and when the spare block is not ready', async () => {
  const pool = new RandomPool(256);
  const seen = new Set<string>();
  const views: Buffer[] = [];
  for (let i = 0; i < 400; i++) {
    const n = 16 + (i % 3) * 8;
    const b = pool.take(n);
    assert.equal(b.length, n, 'asked length');
    views.push(b);
    seen.add(b.toString('hex'));
    // Sometimes let the background refill land, sometimes drain the block faster than it refills.
    if (i % 7 === 0) await tick();
  }
  assert.equal(seen.size, 400, 'no two takes are equal');
  // No take overlaps another in memory: ranges within one backing buffer are disjoint.
  const byBuffer = new Map<ArrayBufferLike, Array<[number, number]>>();
  for (const v of views) {
    const ranges = byBuffer.get(v.buffer) ?? [];
    ranges.push([v.byteOffset, v.byteOffset + v.length]);
    byBuffer.set(v.buffer, ranges);
  }
  for (const ranges of byBuffer.values()) {
    ranges.sort((a, b) => a[0] - b[0]);
    for (let i = 1; i < ranges.length; i++) {
      assert.ok(ranges[i]![0] >= ranges[i - 1]![1], 'handed-out ranges overlap');
    }
  }
  assert.equal(pool.take(1000).length, 1000, 'more than a block comes straight from the CSPRNG');
});
