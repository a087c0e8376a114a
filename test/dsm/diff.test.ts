import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import fc from 'fast-check';
import { applyDiff, createDiff, validateDiff } from '../../src/dsm/diff.ts';
import { ErrorCodes, LazarusError } from '../../src/wire/errors.ts';

const PAGE = 256;
const pageArb = fc.uint8Array({ minLength: PAGE, maxLength: PAGE });
/** A page and a twin differing in a few random bytes (so runs of several shapes appear). */
const pairArb = fc
  .tuple(pageArb, fc.array(fc.tuple(fc.nat(PAGE - 1), fc.integer({ min: 0, max: 255 })), { maxLength: 40 }))
  .map(([twin, edits]) => {
    const page = twin.slice();
    for (const [at, v] of edits) page[at] = v;
    return { page, twin };
  });

function isTyped(code: string) {
  return (err: unknown) => err instanceof LazarusError && err.code === code;
}

describe('diff', () => {
  test('applying diff(page, twin) to the twin yields the page', () => {
    fc.assert(
      fc.property(pairArb, ({ page, twin }) => {
        const diff = createDiff(page, twin);
        const copy = twin.slice();
        applyDiff(copy, diff);
        assert.deepEqual(copy, page);
      }),
    );
  });

  test('a page equal to its twin has an empty diff; a diff never exceeds page + headers', () => {
    fc.assert(
      fc.property(pairArb, ({ page, twin }) => {
        assert.equal(createDiff(twin, twin.slice()).length, 0);
        const diff = createDiff(page, twin);
        assert.ok(diff.length <= PAGE + 8 * (PAGE / 8), `diff of ${diff.length} bytes`);
      }),
    );
  });

  test('diffs of disjoint writers compose at the home in any order (multi-writer pages)', () => {
    fc.assert(
      fc.property(pageArb, fc.uint8Array({ minLength: PAGE / 4, maxLength: PAGE / 4 }), (base, owner) => {
        // Each 32-bit word is written by writer 0 or 1 (owner byte parity), as two nodes sharing a page.
        const writers = [base.slice(), base.slice()];
        const expected = base.slice();
        for (let w = 0; w < PAGE / 4; w++) {
          const who = owner[w]! & 1;
          for (let b = 0; b < 4; b++) {
            const v = (base[w * 4 + b]! + 1 + who) & 255;
            writers[who]![w * 4 + b] = v;
            expected[w * 4 + b] = v;
          }
        }
        const diffs = writers.map((page) => createDiff(page, base));
        for (const order of [
          [0, 1],
          [1, 0],
        ]) {
          const home = base.slice();
          for (const i of order) applyDiff(home, diffs[i]!);
          assert.deepEqual(home, expected);
        }
      }),
    );
  });

  test('random bytes as a diff: applied entirely or refused with DSM_BAD_DIFF, page untouched', () => {
    fc.assert(
      fc.property(pageArb, fc.uint8Array({ maxLength: 600 }), (page, junk) => {
        const before = page.slice();
        try {
          validateDiff(junk, PAGE);
        } catch (err) {
          assert.ok(isTyped(ErrorCodes.DSM_BAD_DIFF)(err), String(err));
          assert.throws(() => applyDiff(page, junk), isTyped(ErrorCodes.DSM_BAD_DIFF));
          assert.deepEqual(page, before);
          return;
        }
        applyDiff(page, junk);
      }),
    );
  });

  test('a run past the end of the page is refused before any earlier run is applied', () => {
    const page = new Uint8Array(PAGE);
    const good = Buffer.alloc(12);
    good.writeUInt32BE(0, 0);
    good.writeUInt32BE(1, 4);
    good.writeUInt32BE(0xdeadbeef, 8);
    const bad = Buffer.alloc(12);
    bad.writeUInt32BE(PAGE / 4 - 1 + 1, 0);
    bad.writeUInt32BE(1, 4);
    assert.throws(() => applyDiff(page, Buffer.concat([good, bad])), isTyped(ErrorCodes.DSM_BAD_DIFF));
    assert.ok(page.every((b) => b === 0));
    const overflow = Buffer.alloc(8);
    overflow.writeUInt32BE(1, 0);
    overflow.writeUInt32BE(0xffffffff, 4);
    assert.throws(() => applyDiff(page, overflow), isTyped(ErrorCodes.DSM_BAD_DIFF));
  });
});
