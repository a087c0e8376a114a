import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { Job, Result } from '../../examples/multipart/service.ts';
import { type PartsState, SessionParts } from '../../src/continuation/parts.ts';
import { within } from '../helpers/streams.ts';

// The multipart example's worker: a hash chain extended by each job, answering with the new link.
const WORKER = new URL('../../examples/multipart/worker.ts', import.meta.url);

function jobs(from: number, to: number): Job[] {
  return Array.from({ length: to - from }, (_, i) => ({ seq: from + i, rounds: 50, text: `t${from + i}` }));
}

/** Runs jobs [0, total) on fresh parts and returns every answer, in order. */
async function uninterrupted(total: number): Promise<Result[]> {
  const got: Result[] = [];
  let done!: () => void;
  const all = new Promise<void>((r) => (done = r));
  const parts = new SessionParts({
    worker: WORKER,
    onMessage: (m) => {
      got.push(m as Result);
      if (got.length === total) done();
    },
  });
  parts.open();
  for (const j of jobs(0, total)) parts.post(j);
  await within(10_000, 'answers', all);
  await parts.close();
  return got;
}

test('parts: a cut holds the worker state and the answers in flight; restored parts go on identically', async () => {
  const reference = await uninterrupted(60);
  const first: Result[] = [];
  const parts = new SessionParts({ worker: WORKER, onMessage: (m) => first.push(m as Result) });
  parts.open();
  for (const j of jobs(0, 40)) parts.post(j);
  let state: PartsState | undefined;
  const cut = parts.snapshot(
    () => ({ handled: first.length }),
    (s) => {
      state = s;
    },
  );
  assert.throws(() => parts.post(jobs(40, 41)[0]), /during a snapshot/, 'posting during a cut is refused');
  await within(10_000, 'cut', cut);
  assert.ok(state, 'the cut committed');
  const handled = (state.main as { handled: number }).handled;
  // Every job posted before the marker is in the worker's state; its answers are handled or in flight.
  assert.equal(
    (state.worker as { length: number }).length,
    40,
    'the worker state includes every job before the marker',
  );
  assert.equal(handled + state.inFlight.length, 40, 'answers handled + in flight = jobs posted');
  assert.deepEqual(
    first.slice(handled),
    state.inFlight,
    'answers held during the cut are handled after it, in order',
  );
  await parts.close();

  // A new owner: the worker from its state, the answers in flight re-delivered first, then new jobs.
  const second: Result[] = [];
  let done!: () => void;
  const all = new Promise<void>((r) => (done = r));
  const restored = new SessionParts({
    worker: WORKER,
    restored: state,
    onMessage: (m) => {
      second.push(m as Result);
      if (handled + second.length === 60) done();
    },
  });
  assert.deepEqual(restored.restoredMain, { handled }, 'the main state comes back');
  restored.open();
  for (const j of jobs(40, 60)) restored.post(j);
  await within(10_000, 'answers after restore', all);
  await restored.close();
  assert.deepEqual([...first.slice(0, handled), ...second], reference, 'the answers of an uninterrupted run');
});

test('parts: closing during a cut rejects it', async () => {
  const parts = new SessionParts({ worker: WORKER, onMessage: () => {} });
  parts.open();
  for (const j of jobs(0, 200)) parts.post(j);
  const cut = parts.snapshot(
    () => undefined,
    () => assert.fail('a closed cut must not commit'),
  );
  const rejected = assert.rejects(cut, /closed during a snapshot/, 'the cut is rejected');
  await parts.close();
  await rejected;
});
