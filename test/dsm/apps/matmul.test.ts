import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { runApp } from '../../../src/dsm/launcher.ts';
import { testOnNodeCounts } from './run-app.ts';

describe('dsm app: matmul', () => {
  testOnNodeCounts('matmul', { n: 40 });

  test('a node on a slow core has its rows taken over by the other, and the product is exact', async () => {
    // Node 1 sleeps 40 ms before each chunk: node 0 finishes its own rows long before and computes
    // some of node 1's, which it sends home as diffs (a static split would send none).
    const r = await runApp({
      app: 'matmul',
      nodes: 2,
      params: { n: 64, lagNode: 1, lagMs: 40 },
      timeoutMs: 60_000,
    });
    assert.ok(r.check.ok, r.check.detail);
    const [zero, one] = r.run.stats;
    assert.ok(zero!.diffBytesSent > 0, 'node 0 computed none of node 1 rows');
    assert.equal(one!.diffBytesSent, 0, 'node 1, the slow one, took no rows from node 0');
  });
});
