import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import type { GcMode } from '../../../src/dsm/ft/core.ts';
import type { FtStats } from '../../../src/dsm/stats.ts';
import { runFt } from './helpers.ts';

/**
 * Recovery state over a long run, read from the structures (retained log entries sampled at every
 * barrier, checkpoint files on disk), never from timing. Water: barriers, locks, page replies.
 */
const PARAMS = { m: 64, steps: 40, seed: 3 };

/** Every compute node's FT stats, and the supervisor's (it logs releases and lock forwards). */
async function retained(gc: GcMode): Promise<{ stats: FtStats[]; supervisor: FtStats }> {
  // wait: checkpoints are durable before the app goes on, so when they happen depends on the
  // program alone (not on how fast a loaded disk is), and so do the retention figures.
  const r = await runFt('water', 3, { gc, policy: { everySafePoints: 2, wait: true } }, PARAMS);
  assert.ok(r.run.check.ok, r.run.check.detail);
  const supervisor = r.run.run.supervisor?.ft;
  assert.ok(supervisor, 'the supervisor has no FT stats');
  const stats = r.run.run.stats.map((s, i) => {
    assert.ok(s.ft, `node ${i} has no FT stats`);
    return s.ft;
  });
  return { stats, supervisor };
}

/** Entries the supervisor keeps at the end of a run (it sends a release per node per barrier). */
const SUPERVISOR_BOUND = 30;

/** Largest retained entry count in the first and in the second half of the run (by barrier). */
function halves(ft: FtStats): { first: number; second: number; last: number } {
  const n = ft.series.length;
  const max = (from: number, to: number) => Math.max(0, ...ft.series.slice(from, to).map((s) => s[2]));
  return { first: max(0, n >> 1), second: max(n >> 1, n), last: ft.series[n - 1]?.[2] ?? 0 };
}

describe('FT log and checkpoint retention', () => {
  test('with LLT + CGC the retained log stays bounded and one or two checkpoints stay', async () => {
    const { stats, supervisor } = await retained('llt+cgc');
    assert.ok(
      supervisor.retainedLogEntries <= SUPERVISOR_BOUND,
      `supervisor keeps ${supervisor.retainedLogEntries}`,
    );
    assert.ok(supervisor.logTrimmed > 0, 'the supervisor trimmed nothing');
    for (const [node, ft] of stats.entries()) {
      const h = halves(ft);
      assert.ok(ft.series.length >= 80, `node ${node}: a sample per barrier`);
      assert.ok(h.second <= h.first + 4, `node ${node}: log grew from ${h.first} to ${h.second} entries`);
      assert.ok(ft.logTrimmed > 0, `node ${node}: nothing was trimmed`);
      assert.ok(ft.checkpoints >= 10, `node ${node}: only ${ft.checkpoints} checkpoints`);
      assert.ok(ft.retainedCheckpoints <= 2, `node ${node}: ${ft.retainedCheckpoints} checkpoints retained`);
    }
  });

  test('without GC the log grows with the run and every checkpoint stays', async () => {
    const { stats, supervisor } = await retained('none');
    assert.ok(
      supervisor.retainedLogEntries > 3 * SUPERVISOR_BOUND,
      `supervisor keeps ${supervisor.retainedLogEntries}`,
    );
    assert.equal(supervisor.logTrimmed, 0, 'the supervisor trims nothing without GC');
    for (const [node, ft] of stats.entries()) {
      const h = halves(ft);
      const counts = ft.series.map((x) => x[2]);
      assert.ok(
        counts.every((c, i) => i === 0 || c >= counts[i - 1]!),
        `node ${node}: without GC the log never shrinks`,
      );
      assert.ok(h.last >= 1.4 * h.first, `node ${node}: log should grow (${h.first} then ${h.last} entries)`);
      assert.equal(ft.logTrimmed, 0, `node ${node}: nothing is trimmed without GC`);
      assert.equal(ft.retainedCheckpoints, ft.checkpoints, `node ${node}: all checkpoints kept`);
    }
  });

  test('LLT alone bounds the log but keeps every checkpoint file', async () => {
    const { stats, supervisor } = await retained('llt');
    assert.ok(
      supervisor.retainedLogEntries <= SUPERVISOR_BOUND,
      `supervisor keeps ${supervisor.retainedLogEntries}`,
    );
    for (const [node, ft] of stats.entries()) {
      const h = halves(ft);
      assert.ok(h.second <= h.first + 4, `node ${node}: log grew from ${h.first} to ${h.second} entries`);
      assert.equal(ft.retainedCheckpoints, ft.checkpoints, `node ${node}: CGC is off`);
    }
  });
});
