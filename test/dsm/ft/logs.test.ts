import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import fc from 'fast-check';
import { type LogKind, SenderLog } from '../../../src/dsm/ft/logs.ts';
import { PendingDiffs } from '../../../src/dsm/ft/pending-diffs.ts';
import { CheckpointClock } from '../../../src/dsm/ft/policy.ts';
import { CkptTable, initialCkpt, neededBy } from '../../../src/dsm/ft/trimming.ts';
import { type CkptInfo, encodeMessage, type ProtocolMessage } from '../../../src/dsm/messages.ts';

const NODES = 4;
const time = (...v: number[]) => Uint32Array.from(v);

function msgOf(kind: LogKind, key: number): ProtocolMessage {
  switch (kind) {
    case 'diffs':
      return {
        type: 'diffs',
        req: key,
        diffs: [{ page: 1, data: new Uint8Array(12) }],
        ft: { seq: key, time: new Uint32Array(NODES) },
      };
    case 'reply':
      return { type: 'page-reply', req: key, pages: [{ page: 2, data: new Uint8Array(256) }] };
    case 'push':
      return { type: 'page-push', episode: key, pages: [{ page: 3, data: new Uint8Array(256) }] };
    case 'grant':
      return { type: 'lock-grant', lock: 1, intervals: [], ft: { acq: key } };
    case 'release':
      return { type: 'barrier-release', episode: key, intervals: [], serve: [] };
    case 'fwd':
      return {
        type: 'lock-fwd',
        lock: 1,
        node: 2,
        time: new Uint32Array(NODES),
        ft: { acq: 1, after: 1, seq: key },
      };
  }
}

const kindArb = fc.constantFrom<LogKind>('diffs', 'reply', 'push', 'grant', 'release', 'fwd');
const ckptArb: fc.Arbitrary<CkptInfo> = fc.record({
  req: fc.integer({ min: 1, max: 50 }),
  episode: fc.integer({ min: 0, max: 50 }),
  acq: fc.integer({ min: 0, max: 50 }),
  fwds: fc.integer({ min: 0, max: 50 }),
  time: fc
    .array(fc.integer({ min: 0, max: 50 }), { minLength: NODES, maxLength: NODES })
    .map((a) => Uint32Array.from(a)),
});

describe('FT sender log and lazy log trimming', () => {
  test('trimming keeps exactly the entries a restart from the table position can ask for', () => {
    fc.assert(
      fc.property(
        fc.array(fc.tuple(fc.integer({ min: 1, max: NODES - 1 }), kindArb, fc.integer({ min: 0, max: 60 })), {
          maxLength: 60,
        }),
        fc.array(ckptArb, { minLength: NODES, maxLength: NODES }),
        (entries, infos) => {
          const log = new SenderLog(NODES);
          for (const [to, kind, key] of entries) log.append(to, msgOf(kind, key));
          const table = new CkptTable(NODES, infos);
          const before = log.entries;
          const dropped = log.trim((e) => table.needed(e, 0));
          assert.equal(log.entries, before - dropped, 'entry count follows the drops');
          for (let to = 0; to < NODES; to++) {
            for (const e of log.for(to))
              assert.ok(neededBy(infos[to]!, e.kind, e.key, 0), 'kept entry must be needed');
          }
          const kept = entries.filter(([to, kind, key]) => neededBy(infos[to]!, kind, key, 0)).length;
          assert.equal(log.entries, kept, 'every needed entry is kept');
          assert.ok(log.bytes >= 0, 'retained bytes never go negative');
        },
      ),
    );
  });

  test('what each checkpoint position makes unnecessary', () => {
    const c: CkptInfo = { req: 10, episode: 4, acq: 3, fwds: 2, time: time(0, 5, 0, 0) };
    // writer 1's interval 5 was known at the checkpoint, so its diffs had been applied.
    assert.equal(neededBy(c, 'diffs', 5, 1), false, 'diffs of a known interval');
    assert.equal(neededBy(c, 'diffs', 6, 1), true, 'diffs of a later interval');
    assert.equal(neededBy(c, 'reply', 9, 0), false, 'reply to a request before the checkpoint');
    assert.equal(neededBy(c, 'reply', 10, 0), true, 'reply to the first request after it');
    assert.equal(neededBy(c, 'release', 3, 0), false, 'release of a passed barrier');
    assert.equal(neededBy(c, 'push', 4, 0), true, 'pushes for the next barrier');
    assert.equal(neededBy(c, 'grant', 3, 0), false, 'grant of a request made before');
    assert.equal(neededBy(c, 'grant', 4, 0), true, 'grant of a later request');
    assert.equal(neededBy(c, 'fwd', 2, 0), false, 'forward received before');
    assert.equal(neededBy(c, 'fwd', 3, 0), true, 'forward received after');
  });

  test('the checkpoint table only moves forward', () => {
    const t = new CkptTable(NODES);
    const newer = { ...initialCkpt(NODES), req: 5, episode: 2, time: time(1, 0, 0, 0) };
    assert.equal(t.update(1, newer), true, 'a newer position is taken');
    assert.equal(t.update(1, initialCkpt(NODES)), false, 'an older one is not');
    assert.equal(t.get(1).req, 5, 'the newer one stays');
    assert.equal(t.update(1, { ...newer, time: time(1, 0) }), false, 'wrong width is ignored');
  });

  test('log segments: entries since a mark, in order', () => {
    const log = new SenderLog(NODES);
    log.append(1, msgOf('reply', 1));
    const mark = log.nextId;
    log.append(2, msgOf('push', 1));
    log.append(1, msgOf('grant', 1));
    assert.deepEqual(
      log.since(mark).map((e) => e.kind),
      ['push', 'grant'],
      'segment after the mark',
    );
    assert.equal(log.append(1, { type: 'diff-ack', req: 1 }), undefined, 'acks are never logged');
  });

  test('page data in replies is copied: later writes to the page do not change the log', () => {
    const log = new SenderLog(NODES);
    const page = new Uint8Array(256).fill(1);
    log.append(1, { type: 'page-reply', req: 1, pages: [{ page: 0, data: page }] });
    page.fill(9);
    const e = log.for(1)[0]!;
    assert.equal(e.msg.type === 'page-reply' && e.msg.pages[0]!.data[0], 1, 'logged copy unchanged');
  });

  test('with the encoded frame, page data is logged as views of the frame: the bytes sent, no copy', () => {
    const log = new SenderLog(NODES);
    const a = new Uint8Array(256).fill(1);
    const b = new Uint8Array(256).fill(2);
    const msg: ProtocolMessage = {
      type: 'page-push',
      episode: 3,
      pages: [
        { page: 4, data: a },
        { page: 7, data: b },
      ],
    };
    const frame = encodeMessage(msg);
    const e = log.append(1, msg, frame)!;
    a.fill(9);
    b.fill(9);
    assert.ok(e.msg.type === 'page-push', 'a push');
    assert.deepEqual(
      e.msg.pages.map((p) => [p.page, p.data.length, p.data[0], p.data[255]]),
      [
        [4, 256, 1, 1],
        [7, 256, 2, 2],
      ],
      'pages as sent',
    );
    for (const p of e.msg.pages) {
      // Same memory and inside the frame's bytes (a small frame lives in Node's shared pool).
      assert.equal(p.data.buffer, frame.buffer, 'a view of the frame');
      assert.ok(
        p.data.byteOffset >= frame.byteOffset &&
          p.data.byteOffset + p.data.length <= frame.byteOffset + frame.length,
        'within the frame',
      );
    }
    assert.equal(e.key, 3, 'keyed by episode');
    assert.equal(e.bytes, 8 + 2 * (8 + 256), 'counted as before');
    // A frame that is not this message's: the pages are copied instead.
    const other = encodeMessage({ type: 'page-push', episode: 3, pages: [{ page: 5, data: b }] });
    const f = log.append(1, msg, other)!;
    assert.ok(f.msg.type === 'page-push', 'a push');
    assert.deepEqual(
      f.msg.pages.map((p) => [p.page, p.data[0]]),
      [
        [4, 9],
        [7, 9],
      ],
      'copied from the message',
    );
    assert.notEqual(f.msg.pages[0]!.data.buffer, other.buffer, 'not a view of the wrong frame');
  });
});

describe('FT pending diffs at a restarted home', () => {
  test('taken in an order consistent with happens-before, each batch once', () => {
    // Random executions: each step one node closes an interval after learning what some other
    // node knew (a grant or barrier): its vector time is then known, and so is happens-before.
    fc.assert(
      fc.property(
        fc.array(fc.tuple(fc.integer({ min: 0, max: NODES - 1 }), fc.integer({ min: 0, max: NODES - 1 })), {
          maxLength: 40,
        }),
        (steps) => {
          const clocks = Array.from({ length: NODES }, () => new Uint32Array(NODES));
          const pending = new PendingDiffs();
          const made: { writer: number; seq: number; time: Uint32Array }[] = [];
          for (const [writer, from] of steps) {
            const c = clocks[writer]!;
            for (let i = 0; i < NODES; i++) c[i] = Math.max(c[i]!, clocks[from]![i]!);
            const t = c.slice();
            c[writer]!++;
            made.push({ writer, seq: c[writer]!, time: t });
            pending.add(writer, c[writer]!, t, 1, [{ page: 0, data: new Uint8Array(0) }]);
            pending.add(writer, c[writer]!, t, 1, [{ page: 0, data: new Uint8Array(0) }]);
          }
          const order = pending.take(() => true);
          assert.equal(order.length, made.length, 'every interval once');
          for (const d of order) assert.equal(d.diffs.length, 1, 'a batch re-sent is taken once');
          const pos = new Map(order.map((d, i) => [`${d.writer}:${d.seq}`, i]));
          for (const b of made) {
            for (const a of made) {
              // a happened before b when b's writer had seen a.
              if (a !== b && b.time[a.writer]! >= a.seq) {
                assert.ok(
                  pos.get(`${a.writer}:${a.seq}`)! < pos.get(`${b.writer}:${b.seq}`)!,
                  'happens-before respected',
                );
              }
            }
          }
        },
      ),
    );
  });
});

describe('FT checkpoint clock', () => {
  test('nodes choose different safe points; time and force also trigger', () => {
    const due = (node: number) => {
      const c = new CheckpointClock(node, { everySafePoints: 3 });
      return Array.from({ length: 6 }, () => c.due(0));
    };
    assert.notDeepEqual(due(1), due(2), 'nodes 1 and 2 checkpoint at different safe points');
    assert.equal(due(1).filter(Boolean).length, 2, 'every 3rd safe point');
    const t = new CheckpointClock(1, { intervalMs: 100 });
    assert.equal(t.due(1000), false, 'the interval starts at the first safe point, not at start-up');
    assert.equal(t.due(1050), false, 'not yet');
    assert.equal(t.due(1100), true, 'an interval later');
    t.force();
    assert.equal(t.due(1101), true, 'forced');
    assert.equal(t.due(1102), false, 'once');
  });

  test('a clock in the app thread, forced from the main thread through the shared flag', () => {
    const flag = new SharedArrayBuffer(4);
    const main = new CheckpointClock(1, { intervalMs: 1e9 }, flag);
    const app = new CheckpointClock(1, { intervalMs: 1e9 }, flag);
    assert.equal(app.due(0), false, 'not due');
    main.force();
    assert.equal(app.due(1), true, 'forced from the other clock');
    assert.equal(app.due(2), false, 'once');
    app.force();
    assert.equal(main.due(3), true, 'either way');
  });
});
