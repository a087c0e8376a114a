import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { assertRecovered, runFt, SMALL } from './helpers.ts';

/**
 * Failures at the worst moments, each a real SIGKILL the node gives itself at a precise point, and
 * repeated failures of nodes that have already recovered once.
 */
describe('FT: targeted failures', () => {
  test('during a checkpoint (data written and synced, not yet renamed): restarts from the one before', async () => {
    // lu on 4 nodes, node 2 checkpoints at every 2nd safe point: its 2nd checkpoint is torn.
    const r = await runFt('lu', 4, { crash: { node: 2, at: 'checkpoint:2' } });
    assertRecovered(r, 2);
  });

  test('during a barrier (arrived, not yet released): the others wait for it', async () => {
    const r = await runFt('radix', 4, { crash: { node: 3, at: 'arrive:5' } });
    assertRecovered(r, 3);
  });

  test('while holding a lock: the token is rebuilt by re-execution, no update is lost', async () => {
    const r = await runFt('water', 4, { crash: { node: 2, at: 'lock:7' } });
    assertRecovered(r, 2);
    assert.ok((r.run.run.stats[2]!.ft?.replayedAnswers ?? 0) > 0, 'lock grants should have been replayed');
  });

  test('while home of pages others fetch: they wait, then get the rebuilt pages', async () => {
    // matmul: every node reads all of B, homed in blocks; node 1 dies right after serving some.
    const r = await runFt('matmul', 4, { crash: { node: 1, at: 'serve:2' } });
    assertRecovered(r, 1);
  });

  test('a node that fails again after it has rejoined, and then another node', async () => {
    // sor on 4 nodes: node 1 dies at a barrier; once it has caught up it is killed again, and
    // once it has caught up again node 3 is killed (it depends on replies node 1 served it before
    // its second failure: node 1 got them back from node 3 when it recovered).
    let kill!: (node: number) => void;
    let recoveries = 0;
    const r = await runFt(
      'sor',
      4,
      { crash: { node: 1, at: 'arrive:3' }, killer: (k) => (kill = k) },
      { ...SMALL.sor!, iters: 200 },
      (e) => {
        if (e.kind !== 'recovered') return;
        recoveries++;
        if (recoveries === 1) kill(1);
        else if (recoveries === 2) kill(3);
      },
    );
    assert.ok(r.run.check.ok, `result differs: ${r.run.check.detail}`);
    const lost = r.events.filter((e) => e.kind === 'node-lost').map((e) => ('node' in e ? e.node : -1));
    assert.deepEqual(lost, [1, 1, 3], 'node 1 twice, then node 3');
    assert.equal(r.events.filter((e) => e.kind === 'recovered').length, 3, 'three recoveries');
  });
});
