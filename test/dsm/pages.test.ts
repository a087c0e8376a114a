import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import fc from 'fast-check';
import { blockOwner, blockRange, PageState, PageTable, planLayout } from '../../src/dsm/pages.ts';
import { ErrorCodes, LazarusError } from '../../src/wire/errors.ts';

const code = (c: string) => (err: unknown) => err instanceof LazarusError && err.code === c;

describe('pages and placement', () => {
  test('regions are page-aligned and every page gets a home by its placement', () => {
    const layout = planLayout(
      [
        { name: 'a', bytes: 1000, placement: { kind: 'block' } },
        { name: 'b', bytes: 5 * 256, placement: { kind: 'cyclic' } },
        {
          name: 'c',
          bytes: 3 * 256,
          placement: { kind: 'explicit', home: (offset) => (offset === 0 ? 2 : 1) },
        },
      ],
      256,
      3,
    );
    assert.deepEqual(
      layout.regions.map((r) => [r.name, r.offset]),
      [
        ['a', 0],
        ['b', 1024],
        ['c', 2304],
      ],
    );
    assert.deepEqual([...layout.homes], [0, 0, 1, 2, 0, 1, 2, 0, 1, 2, 1, 1]);
    const table = new PageTable(layout, 1);
    assert.deepEqual(
      [...table.state].map((s) => s === PageState.VALID),
      [...layout.homes].map((h) => h === 1),
    );
  });

  test('bad layouts and ranges are refused with typed errors', () => {
    assert.throws(() => planLayout([], 300, 2), code(ErrorCodes.INVALID_ARGUMENT));
    assert.throws(() => planLayout([], 1 << 20, 2), code(ErrorCodes.INVALID_ARGUMENT));
    const explicit = { kind: 'explicit', home: () => 9 } as const;
    assert.throws(
      () => planLayout([{ name: 'x', bytes: 10, placement: explicit }], 256, 2),
      code(ErrorCodes.INVALID_ARGUMENT),
    );
    const t = new PageTable(planLayout([{ name: 'x', bytes: 512, placement: { kind: 'block' } }], 256, 1), 0);
    assert.throws(() => t.pagesOf(500, 13), code(ErrorCodes.DSM_OUT_OF_RANGE));
    assert.throws(() => t.pagesOf(-1, 1), code(ErrorCodes.DSM_OUT_OF_RANGE));
    assert.throws(() => t.checkPage(2), code(ErrorCodes.DSM_OUT_OF_RANGE));
    assert.deepEqual(t.pagesOf(512, 0), { first: 0, last: -1 });
    assert.deepEqual(t.pagesOf(255, 2), { first: 0, last: 1 });
  });

  test('blockRange is the inverse of blockOwner', () => {
    fc.assert(
      fc.property(fc.integer({ min: 0, max: 500 }), fc.integer({ min: 1, max: 40 }), (count, nodes) => {
        let covered = 0;
        for (let node = 0; node < nodes; node++) {
          const { start, end } = blockRange(node, count, nodes);
          for (let i = start; i < end; i++) assert.equal(blockOwner(i, count, nodes), node);
          covered += Math.max(0, end - start);
        }
        assert.equal(covered, count);
      }),
    );
  });
});
