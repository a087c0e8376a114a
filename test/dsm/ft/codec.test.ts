import assert from 'node:assert/strict';
import { mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import fc from 'fast-check';
import { type Checkpoint, decodeCheckpoint, encodeCheckpoint } from '../../../src/dsm/ft/checkpoint-codec.ts';
import { CheckpointStore } from '../../../src/dsm/ft/checkpoint-store.ts';
import { type DsmMessage, decodeMessage, encodeMessage } from '../../../src/dsm/messages.ts';
import { ErrorCodes, isLazarusError } from '../../../src/wire/errors.ts';
import { FRAME_HEADER_SIZE } from '../../../src/wire/frame.ts';

const u32 = fc.integer({ min: 0, max: 0xffffffff });

function checkpointArb(nodes: number, numPages: number, pageSize: number): fc.Arbitrary<Checkpoint> {
  const vt = fc.array(u32, { minLength: nodes, maxLength: nodes }).map((a) => Uint32Array.from(a));
  const ckpt = fc.record({ req: u32, episode: u32, acq: u32, fwds: u32, time: vt });
  return fc.record({
    node: fc.integer({ min: 0, max: nodes - 1 }),
    nodes: fc.constant(nodes),
    seq: u32,
    pageSize: fc.constant(pageSize),
    numPages: fc.constant(numPages),
    app: fc.array(fc.double({ noNaN: true }), { maxLength: 4 }),
    protocol: fc.record({
      nextReq: u32,
      episode: u32,
      barrierTime: vt,
      acq: u32,
      fwds: u32,
      applied: vt,
      intervals: fc.array(
        fc.record({
          node: fc.integer({ min: 0, max: nodes - 1 }),
          seq: fc.integer({ min: 1, max: 1000 }),
          runs: fc
            .array(fc.integer({ min: 0, max: 100 }), { maxLength: 4 })
            .map((a) => Uint32Array.from(a.length % 2 ? [...a, 1] : a)),
        }),
        { maxLength: 5 },
      ),
      locks: fc.array(
        fc.oneof(
          fc.record({ lock: u32, held: fc.boolean(), token: fc.boolean() }),
          fc.record({
            lock: u32,
            held: fc.boolean(),
            token: fc.boolean(),
            next: fc.record({ node: fc.integer({ min: 0, max: nodes - 1 }), acq: u32, time: vt }),
          }),
        ),
        { maxLength: 3 },
      ),
      table: fc.array(ckpt, { minLength: nodes, maxLength: nodes }),
    }),
    state: fc.uint8Array({ minLength: numPages, maxLength: numPages, max: 1 }),
    pages: fc.uint8Array({ minLength: numPages * pageSize, maxLength: numPages * pageSize }),
    segment: fc.array(
      fc.oneof(
        fc.record({
          to: fc.integer({ min: 0, max: nodes - 1 }),
          msg: fc.record({
            type: fc.constant('page-reply' as const),
            req: u32,
            pages: fc.array(fc.record({ page: u32, data: fc.uint8Array({ maxLength: 16 }) }), {
              maxLength: 2,
            }),
          }),
        }),
        fc.record({
          to: fc.integer({ min: 0, max: nodes - 1 }),
          msg: fc.record({
            type: fc.constant('lock-grant' as const),
            lock: u32,
            intervals: fc.constant([]),
            ft: fc.record({ acq: u32 }),
          }),
        }),
      ),
      { maxLength: 3 },
    ),
  }) as fc.Arbitrary<Checkpoint>;
}

function badCheckpoint(err: unknown): boolean {
  return isLazarusError(err) && err.code === ErrorCodes.DSM_BAD_CHECKPOINT;
}

describe('FT checkpoint codec', () => {
  test('round trip', () => {
    fc.assert(
      fc.property(checkpointArb(3, 4, 256), (c) => {
        const back = decodeCheckpoint(encodeCheckpoint(c));
        assert.equal(back.node, c.node, 'node');
        assert.deepEqual([...back.app], [...c.app], 'app state');
        assert.deepEqual(back.state, Uint8Array.from(c.state), 'page states');
        assert.deepEqual(back.pages, Uint8Array.from(c.pages), 'pages');
        assert.equal(back.protocol.nextReq, c.protocol.nextReq, 'next request');
        assert.deepEqual(back.protocol.locks.length, c.protocol.locks.length, 'locks');
        assert.deepEqual(
          back.protocol.table.map((t) => t.req),
          c.protocol.table.map((t) => t.req),
          'table',
        );
        assert.equal(back.segment.length, c.segment.length, 'segment');
      }),
      { numRuns: 50 },
    );
  });

  test('fuzz: random bytes, truncations and bit flips give DSM_BAD_CHECKPOINT and nothing else', () => {
    fc.assert(
      fc.property(checkpointArb(2, 2, 256), fc.nat(), fc.integer({ min: 0, max: 7 }), (c, at, bit) => {
        const bytes = encodeCheckpoint(c);
        const flipped = Buffer.from(bytes);
        flipped[at % flipped.length]! ^= 1 << bit;
        assert.throws(() => decodeCheckpoint(flipped), badCheckpoint, 'a flipped bit is caught');
        assert.throws(
          () => decodeCheckpoint(bytes.subarray(0, at % bytes.length)),
          badCheckpoint,
          'truncated',
        );
      }),
      { numRuns: 100 },
    );
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 400 }), (raw) => {
        assert.throws(() => decodeCheckpoint(Buffer.from(raw)), badCheckpoint, 'random bytes');
      }),
    );
  });
});

describe('FT message trailers', () => {
  const vt = fc.array(u32, { maxLength: 6 }).map((a) => Uint32Array.from(a));
  const ckpt = fc.record({ req: u32, episode: u32, acq: u32, fwds: u32, time: vt });
  const ftMessages: fc.Arbitrary<DsmMessage> = fc.oneof(
    fc.record({
      type: fc.constant('diffs'),
      req: u32,
      diffs: fc.constant([]),
      ft: fc.record({ seq: u32, time: vt }),
    }),
    fc.record({
      type: fc.constant('lock-req'),
      lock: u32,
      node: fc.integer({ min: 0, max: 0xffff }),
      time: vt,
      ft: fc.record({ acq: u32 }),
    }),
    fc.record({
      type: fc.constant('lock-fwd'),
      lock: u32,
      node: fc.integer({ min: 0, max: 0xffff }),
      time: vt,
      ft: fc.record({ acq: u32, after: u32, seq: u32 }),
    }),
    fc.record({
      type: fc.constant('lock-grant'),
      lock: u32,
      intervals: fc.constant([]),
      ft: fc.record({ acq: u32 }),
    }),
    fc.record({
      type: fc.constant('barrier-arrive'),
      episode: u32,
      time: vt,
      intervals: fc.constant([]),
      want: fc.constant(new Uint32Array(0)),
      ft: fc.record({ ckpt }),
    }),
    fc.record({
      type: fc.constant('barrier-release'),
      episode: u32,
      intervals: fc.constant([]),
      serve: fc.constant([]),
      ft: fc.record({ ckpts: fc.array(ckpt, { maxLength: 3 }) }),
    }),
    fc.record({ type: fc.constant('recover-req'), ckpt, applied: vt }),
    fc.record({
      type: fc.constant('recover-begin'),
      seen: fc.record({ reqs: u32, acq: u32, arrivals: u32, seq: u32 }),
      relog: u32,
    }),
    fc.constantFrom({ type: 'recover-end' } as const, { type: 'ping' } as const),
  );

  test('round trip', () => {
    fc.assert(
      fc.property(ftMessages, (msg) => {
        const frame = encodeMessage(msg);
        assert.deepEqual(
          decodeMessage(frame[4]!, frame.subarray(FRAME_HEADER_SIZE)),
          structuredClone(msg),
          'same message back',
        );
      }),
    );
  });

  test('fuzz: truncated or corrupted FT frames give typed errors', () => {
    fc.assert(
      fc.property(ftMessages, fc.nat(), (msg, cut) => {
        const frame = encodeMessage(msg);
        const body = frame.subarray(FRAME_HEADER_SIZE);
        if (body.length === 0) return;
        try {
          decodeMessage(frame[4]!, body.subarray(0, cut % body.length));
        } catch (err) {
          assert.ok(isLazarusError(err), `untyped error ${String(err)}`);
        }
      }),
    );
  });
});

describe('FT checkpoint store', () => {
  test('atomic files; a torn write is ignored and removed; CGC keeps the latest and what is needed', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'lz-ckpt-'));
    try {
      const store = new CheckpointStore(dir, 3);
      await store.write(1, Buffer.from('one'), [{ to: 1, kind: 'reply', key: 5 }]);
      await store.write(2, Buffer.from('two'), [{ to: 2, kind: 'grant', key: 1 }]);
      await store.write(3, Buffer.from('three'), []);
      writeFileSync(join(dir, 'ckpt-3-4.bin.tmp'), 'torn');
      assert.deepEqual(
        CheckpointStore.list(dir, 3).map((f) => f.seq),
        [1, 2, 3],
        'the torn one is not listed',
      );
      assert.equal(store.retained, 3, 'three retained');
      // The entry of checkpoint 1 is no longer needed; the one of checkpoint 2 still is.
      const gone = await store.collect((k) => k.kind === 'grant');
      assert.equal(gone, 1, 'one collected');
      assert.deepEqual(
        CheckpointStore.list(dir, 3).map((f) => f.seq),
        [2, 3],
        'checkpoint 1 deleted',
      );
      assert.equal(await store.collect(() => false), 1, 'then 2 goes; the latest always stays');
      assert.deepEqual(
        CheckpointStore.list(dir, 3).map((f) => f.seq),
        [3],
        'latest kept',
      );
      new CheckpointStore(dir, 3);
      assert.ok(!readdirSync(dir).some((n) => n.endsWith('.tmp')), 'a restart removes torn files');
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
