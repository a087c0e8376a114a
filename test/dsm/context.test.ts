import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { DsmContext, type Syncer, type WorkerRequest } from '../../src/dsm/context.ts';
import { PageState, PageTable, planLayout } from '../../src/dsm/pages.ts';

/** Node 1 of 2; region 'r' of 8 pages homed at node 0, region 'own' of 2 pages homed here. */
function setup() {
  const layout = planLayout(
    [
      { name: 'r', bytes: 8 * 4096, placement: { kind: 'explicit', home: () => 0 } },
      { name: 'own', bytes: 2 * 4096, placement: { kind: 'explicit', home: () => 1 } },
    ],
    4096,
    2,
  );
  const pages = new PageTable(layout, 1);
  const calls: WorkerRequest[] = [];
  // Answers a fetch as the protocol thread would: the pages become valid.
  const syncer: Syncer = {
    call(req) {
      calls.push(req);
      if (req.op === 'fetch') for (const p of req.pages) pages.state[p] = PageState.VALID;
    },
  };
  return { ctx: new DsmContext(pages, layout.regions, 2, syncer), calls, pages };
}

describe('DsmContext', () => {
  test('read() of scattered views fetches every stale page in one request, and nothing once valid', () => {
    const { ctx, calls } = setup();
    // u32 words 0..9 (page 0), 4096..4099 (page 4), 7168..8191 (page 7), and 'own' (page 8, homed here).
    ctx.read(ctx.u32('r', 0, 10), ctx.u32('r', 4096, 4), ctx.u32('r', 7168, 1024), ctx.u32('own', 0, 4));
    assert.equal(calls.length, 1);
    assert.deepEqual(calls[0], { op: 'fetch', pages: [0, 4, 7] });
    ctx.read(ctx.u32('r', 0, 10), ctx.u32('r', 4096, 4));
    assert.equal(calls.length, 1, 'valid pages cost no request');
  });

  test('write() of several views fetches once and sends every page written at the next barrier', () => {
    const { ctx, calls } = setup();
    const a = ctx.u32('r', 1024, 2);
    const b = ctx.u32('r', 5 * 1024, 2);
    ctx.write(a, b, ctx.u32('own', 0, 1));
    assert.deepEqual(calls, [{ op: 'fetch', pages: [1, 5] }]);
    a[0] = 7;
    b[1] = 9;
    ctx.barrier();
    const last = calls.at(-1)!;
    if (last.op !== 'barrier') assert.fail(`last call ${last.op}, not the barrier`);
    assert.deepEqual([...last.flush.pages], [1, 5, 8]);
    // Diffs go home for the pages homed elsewhere only, with what changed.
    assert.deepEqual(
      last.flush.diffs.map((d) => d.page),
      [1, 5],
    );
  });
});
