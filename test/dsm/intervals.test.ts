import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import fc from 'fast-check';
import { type Interval, IntervalLog, pageRuns } from '../../src/dsm/intervals.ts';
import { covers, equalTimes, mergeInto, zeroTime } from '../../src/dsm/vector-time.ts';
import { ErrorCodes, LazarusError } from '../../src/wire/errors.ts';

const NODES = 4;
const timeArb = fc.array(fc.nat(20), { minLength: NODES, maxLength: NODES }).map((a) => Uint32Array.from(a));

/** The intervals of a log holding `time` (pages named after the interval, to check identity). */
function intervalsUpTo(time: Uint32Array): Interval[] {
  const out: Interval[] = [];
  time.forEach((n, node) => {
    for (let seq = 1; seq <= n; seq++) out.push({ node, seq, runs: Uint32Array.of(node * 100 + seq, 1) });
  });
  return out;
}

describe('vector time', () => {
  test('merge is the least upper bound', () => {
    fc.assert(
      fc.property(timeArb, timeArb, (a, b) => {
        const m = a.slice();
        mergeInto(m, b);
        assert.ok(covers(m, a) && covers(m, b));
        const again = m.slice();
        mergeInto(again, a);
        assert.ok(equalTimes(again, m), 'merge is idempotent');
        assert.equal(covers(a, b) && covers(b, a), equalTimes(a, b));
        assert.ok(covers(a, zeroTime(NODES)));
      }),
    );
  });
});

describe('page runs', () => {
  test('runs cover exactly the pages listed, sorted and merged', () => {
    fc.assert(
      fc.property(fc.array(fc.nat(200), { maxLength: 60 }), (list) => {
        const runs = pageRuns(Uint32Array.from(list));
        const covered: number[] = [];
        for (let r = 0; r < runs.length; r += 2) {
          assert.ok(runs[r + 1]! > 0);
          if (r > 0) assert.ok(runs[r]! > runs[r - 2]! + runs[r - 1]!, 'runs are separated by a gap');
          for (let p = runs[r]!; p < runs[r]! + runs[r + 1]!; p++) covered.push(p);
        }
        assert.deepEqual(
          covered,
          [...new Set(list)].sort((a, b) => a - b),
        );
      }),
    );
  });
});

describe('interval log', () => {
  test('since(t) is exactly what a holder of t lacks, and adding it catches the holder up', () => {
    fc.assert(
      fc.property(timeArb, timeArb, (known, holder) => {
        const bound = holder.map((v, i) => Math.min(v, known[i]!));
        const log = new IntervalLog(NODES);
        // Shuffled input: addAll sorts per node.
        log.addAll(intervalsUpTo(known).reverse());
        assert.ok(equalTimes(log.time(), known));
        const missing = log.since(bound);
        const other = new IntervalLog(NODES);
        other.addAll(intervalsUpTo(bound));
        const added = other.addAll(missing);
        assert.equal(added.length, missing.length);
        assert.ok(equalTimes(other.time(), known));
        assert.equal(other.addAll(missing).length, 0, 'duplicates are ignored');
        for (const iv of missing) assert.ok(iv.seq > bound[iv.node]!);
      }),
    );
  });

  test('a gap in a node’s intervals is a protocol error', () => {
    const log = new IntervalLog(2);
    assert.throws(
      () => log.addAll([{ node: 1, seq: 2, runs: new Uint32Array() }]),
      (err) => err instanceof LazarusError && err.code === ErrorCodes.PROTOCOL,
    );
    assert.throws(
      () => log.addAll([{ node: 5, seq: 1, runs: new Uint32Array() }]),
      (err) => err instanceof LazarusError && err.code === ErrorCodes.DSM_OUT_OF_RANGE,
    );
    assert.equal(log.append(0, Uint32Array.of(3, 1)).seq, 1);
    assert.deepEqual([...log.time()], [1, 0]);
  });
});
