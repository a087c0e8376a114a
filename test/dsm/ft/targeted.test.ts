import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import type { ProgressEvent } from '../../../src/dsm/runtime.ts';
import { assertRecovered, runFt, SMALL } from './helpers.ts';

/**
 * Failures at the worst moments, each a real SIGKILL the node gives itself at a precise point, and
 * repeated failures of nodes that have already recovered once. Each moment is tried on node 0 too:
 * with FT it is a compute node like the others (the supervisor runs the managers).
 */
describe('FT: targeted failures', () => {
  for (const node of [2, 0]) {
    test(`node ${node} during a checkpoint (data written and synced, not yet renamed): restarts from the one before`, async () => {
      // lu on 4 nodes, a checkpoint at every 2nd safe point: the node's 2nd checkpoint is torn.
      const r = await runFt('lu', 4, { crash: { node, at: 'checkpoint:2' } });
      assertRecovered(r, node);
    });
  }

  for (const node of [3, 0]) {
    test(`node ${node} during a barrier (arrived, not yet released): the others wait for it`, async () => {
      const r = await runFt('radix', 4, { crash: { node, at: 'arrive:5' } });
      assertRecovered(r, node);
    });
  }

  for (const node of [2, 0]) {
    test(`node ${node} while holding a lock: the token is rebuilt by re-execution, no update is lost`, async () => {
      const r = await runFt('water', 4, { crash: { node, at: 'lock:7' } });
      assertRecovered(r, node);
      assert.ok(
        (r.run.run.stats[node]!.ft?.replayedAnswers ?? 0) > 0,
        'lock grants should have been replayed',
      );
    });
  }

  for (const [node, crashAt, when] of [
    [1, 'ready:1', 'connected to every peer, about to say it is ready'],
    [0, 'ready:1', 'connected to every peer, about to say it is ready'],
    [0, 'start:1', 'given the peer table, before the others could connect to it'],
  ] as const) {
    test(`node ${node} after the peer table went out, before the start (${when}): it rejoins and the start waits for it`, async () => {
      const r = await runFt('lu', 3, { crash: { node, at: crashAt } });
      assert.ok(r.run.check.ok, `result differs: ${r.run.check.detail}`);
      const kinds = r.events.map((e) => `${e.kind}${'node' in e ? ` ${e.node}` : ''}`);
      const first = (k: string) => kinds.indexOf(k);
      assert.ok(first(`node-lost ${node}`) > first('table-sent'), kinds.join(', '));
      assert.ok(first(`restarted ${node}`) > first(`node-lost ${node}`), kinds.join(', '));
      assert.ok(first(`rejoined ${node}`) > first(`restarted ${node}`), kinds.join(', '));
      assert.ok(
        first('started') > first(`rejoined ${node}`),
        `the start should wait for it: ${kinds.join(', ')}`,
      );
      assert.equal(r.run.run.stats[node]!.ft?.recoveries, 1, 'its last incarnation should be a recovery');
    });
  }

  test('while home of pages others fetch: they wait, then get the rebuilt pages', async () => {
    // matmul: every node reads all of B, homed in blocks; node 1 dies right after serving some.
    const r = await runFt('matmul', 4, { crash: { node: 1, at: 'serve:2' } });
    assertRecovered(r, 1);
  });

  test('node 0 while home of every page (water): all fetches and diffs wait for its rebuilt pages', async () => {
    // With SMALL params every water region is homed at node 0: every lock holder fetches from it.
    const r = await runFt('water', 4, { crash: { node: 0, at: 'serve:6' } });
    assertRecovered(r, 0);
  });

  /** sor on 4 nodes, killed in turn: each kill once the previous failure has been recovered. */
  async function killInTurn(first: { node: number; at: string }, then: number[]) {
    let kill!: (node: number) => void;
    let recoveries = 0;
    const r = await runFt(
      'sor',
      4,
      { crash: first, killer: (k) => (kill = k) },
      { ...SMALL.sor!, iters: 200 },
      (e: ProgressEvent) => {
        if (e.kind !== 'recovered') return;
        const next = then[recoveries++];
        if (next !== undefined) kill(next);
      },
    );
    assert.ok(r.run.check.ok, `result differs: ${r.run.check.detail}`);
    const lost = r.events.filter((e) => e.kind === 'node-lost').map((e) => ('node' in e ? e.node : -1));
    assert.deepEqual(lost, [first.node, ...then], 'nodes lost in the planned order');
    assert.equal(
      r.events.filter((e) => e.kind === 'recovered').length,
      then.length + 1,
      'every failure recovered',
    );
  }

  test('a node that fails again after it has rejoined, and then another node', async () => {
    // Node 1 dies at a barrier; once it has caught up it is killed again, and once it has caught up
    // again node 3 is killed (it depends on replies node 1 served it before its second failure:
    // node 1 got them back from node 3 when it recovered).
    await killInTurn({ node: 1, at: 'arrive:3' }, [1, 3]);
  });

  test('node 0 fails three times (each after it has caught up), then node 2, then node 0 again', async () => {
    await killInTurn({ node: 0, at: 'arrive:3' }, [0, 0, 2, 0]);
  });
});
