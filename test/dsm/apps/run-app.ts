import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { DsmParams } from '../../../src/dsm/app.ts';
import { runApp } from '../../../src/dsm/launcher.ts';

/** Runs `app` with small params on 1, 2, 4 and 8 local node processes; each result must match sequential. */
export function testOnNodeCounts(app: string, params: DsmParams): void {
  for (const nodes of [1, 2, 4, 8]) {
    test(`${app} on ${nodes} node(s) equals the sequential run`, async () => {
      const r = await runApp({ app, nodes, params, timeoutMs: 60_000 });
      assert.ok(r.check.ok, r.check.detail);
      assert.equal(r.run.stats.length, nodes);
      const fetched = r.run.stats.reduce((n, s) => n + s.pageFetches, 0);
      // One node owns everything; more nodes must actually share pages.
      if (nodes === 1) assert.equal(fetched, 0);
      else assert.ok(fetched > 0, 'no page was fetched');
    });
  }
}
