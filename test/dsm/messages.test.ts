import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import fc from 'fast-check';
import {
  DSM_FRAME_TYPES,
  DSM_MAX_FRAME_SIZE,
  type DsmMessage,
  decodeMessage,
  encodeMessage,
  MsgType,
} from '../../src/dsm/messages.ts';
import { ErrorCodes, LazarusError } from '../../src/wire/errors.ts';
import { FrameDecoder } from '../../src/wire/frame-decoder.ts';

const u16 = fc.integer({ min: 0, max: 0xffff });
const u32 = fc.integer({ min: 0, max: 0xffffffff });
const bytes = (n: number) => fc.uint8Array({ minLength: n, maxLength: n }).map((b) => Buffer.from(b));
const vt = fc.array(u32, { maxLength: 8 }).map((a) => Uint32Array.from(a));
const pageData = fc.record({ page: u32, data: fc.uint8Array({ maxLength: 64 }).map((b) => Buffer.from(b)) });
const runs = fc.array(fc.tuple(u32, u32), { maxLength: 6 }).map((a) => Uint32Array.from(a.flat()));
const interval = fc.record({
  node: u16,
  seq: u32,
  runs,
});
const text = fc.string({ maxLength: 40 });

const startFields = {
  type: fc.constant('start' as const),
  node: u16,
  nodes: u16,
  pageSize: u32,
  app: text,
  params: text,
  peers: fc.array(fc.record({ node: u16, host: text, port: u16 }), { maxLength: 4 }),
};
const messageArb: fc.Arbitrary<DsmMessage> = fc.oneof(
  fc.record({ type: fc.constant('hello'), node: u16, nonce: bytes(16), host: text, port: u16 }),
  fc.record({ type: fc.constant('challenge'), nonce: bytes(16), mac: bytes(32) }),
  fc.record({ type: fc.constant('proof'), mac: bytes(32) }),
  fc.record({ type: fc.constant('welcome'), node: u16, assigned: u16 }),
  fc.record(startFields),
  // With FT settings, and the coordinator's word that the node replaces a failed one.
  fc.record(
    { ...startFields, ft: text, recover: fc.constant(true as const) },
    { requiredKeys: [...(Object.keys(startFields) as (keyof typeof startFields)[]), 'ft'] },
  ),
  fc.constantFrom({ type: 'ready' } as const, { type: 'go' } as const, { type: 'shutdown' } as const),
  fc.record({ type: fc.constant('done'), ok: fc.boolean(), stats: text, code: text, message: text }),
  fc.record({ type: fc.constant('error'), code: text, message: text }),
  fc.record({ type: fc.constant('page-req'), req: u32, pages: fc.array(u32, { maxLength: 8 }) }),
  fc.record({ type: fc.constant('page-reply'), req: u32, pages: fc.array(pageData, { maxLength: 4 }) }),
  fc.record({ type: fc.constant('diffs'), req: u32, diffs: fc.array(pageData, { maxLength: 4 }) }),
  fc.record({ type: fc.constant('diff-ack'), req: u32 }),
  fc.record({
    type: fc.constantFrom('lock-req' as const, 'lock-fwd' as const),
    lock: u32,
    node: u16,
    time: vt,
  }),
  fc.record({ type: fc.constant('lock-grant'), lock: u32, intervals: fc.array(interval, { maxLength: 4 }) }),
  fc.record({
    type: fc.constant('barrier-arrive'),
    episode: u32,
    time: vt,
    intervals: fc.array(interval, { maxLength: 4 }),
    want: runs,
  }),
  fc.record({
    type: fc.constant('barrier-release'),
    episode: u32,
    intervals: fc.array(interval, { maxLength: 4 }),
    serve: fc.array(fc.record({ node: u16, runs }), { maxLength: 3 }),
  }),
  fc.record({ type: fc.constant('page-push'), episode: u32, pages: fc.array(pageData, { maxLength: 4 }) }),
);

/** Decodes a stream of frames the way the mesh does. */
function decodeStream(chunks: readonly Buffer[]): DsmMessage[] {
  const out: DsmMessage[] = [];
  const decoder = new FrameDecoder(
    { onFrame: (type, body) => out.push(decodeMessage(type, body)), onStreamStart() {}, onStreamChunk() {} },
    { types: DSM_FRAME_TYPES, maxFrameSize: DSM_MAX_FRAME_SIZE },
  );
  for (const c of chunks) decoder.push(c);
  decoder.end();
  return out;
}

const typed = (err: unknown) => err instanceof LazarusError && err.code.startsWith('ERR_LZ_');

function normalise(msg: DsmMessage): unknown {
  return JSON.parse(JSON.stringify(msg, (_k, v) => (ArrayBuffer.isView(v) ? [...(v as Uint8Array)] : v)));
}

describe('dsm messages', () => {
  test('every message survives encode / decode under any chunking', () => {
    fc.assert(
      fc.property(fc.array(messageArb, { minLength: 1, maxLength: 5 }), fc.nat(1000), (msgs, cut) => {
        const bytes = Buffer.concat(msgs.map(encodeMessage));
        const at = cut % (bytes.length + 1);
        const got = decodeStream([bytes.subarray(0, at), bytes.subarray(at)]);
        assert.deepEqual(got.map(normalise), msgs.map(normalise));
      }),
    );
  });

  test('random bodies for every frame type give a message or a typed error, nothing else', () => {
    const types = [...DSM_FRAME_TYPES];
    fc.assert(
      fc.property(fc.constantFrom(...types), fc.uint8Array({ maxLength: 300 }), (type, body) => {
        try {
          decodeMessage(type, Buffer.from(body));
        } catch (err) {
          assert.ok(typed(err), String(err));
        }
      }),
      { numRuns: 2000 },
    );
  });

  test('truncated or extended frames are refused with MALFORMED_FRAME', () => {
    fc.assert(
      fc.property(messageArb, fc.nat(), (msg, n) => {
        const frame = encodeMessage(msg);
        const type = frame[4]!;
        const body = frame.subarray(5);
        if (body.length > 0) {
          const cut = body.subarray(0, n % body.length);
          assert.throws(
            () => decodeMessage(type, cut),
            (err) => typed(err),
          );
        }
        assert.throws(
          () => decodeMessage(type, Buffer.concat([body, Buffer.from([n & 255])])),
          (err) => err instanceof LazarusError && err.code === ErrorCodes.MALFORMED_FRAME,
        );
      }),
    );
  });

  test('random byte streams: only typed errors; huge lengths and counts never allocate', () => {
    fc.assert(
      fc.property(fc.array(fc.uint8Array({ maxLength: 200 }), { maxLength: 5 }), (chunks) => {
        try {
          decodeStream(chunks.map((c) => Buffer.from(c)));
        } catch (err) {
          assert.ok(typed(err), String(err));
        }
      }),
      { numRuns: 2000 },
    );
    const huge = Buffer.alloc(5);
    huge.writeUInt32BE(0xffffffff, 0);
    huge[4] = MsgType.PAGE_REPLY;
    assert.throws(
      () => decodeStream([huge]),
      (err) => err instanceof LazarusError && err.code === ErrorCodes.FRAME_TOO_LARGE,
    );
    const body = Buffer.alloc(8);
    body.writeUInt32BE(0xffffffff, 4); // a page request claiming 4 billion pages in 8 bytes
    assert.throws(
      () => decodeMessage(MsgType.PAGE_REQ, body),
      (err) => err instanceof LazarusError && err.code === ErrorCodes.MALFORMED_FRAME,
    );
  });

  test('a hello with the wrong magic or version is refused', () => {
    const hello = encodeMessage({
      type: 'hello',
      node: 1,
      nonce: Buffer.alloc(16),
      host: 'h',
      port: 1,
    }).subarray(5);
    const badMagic = Buffer.from(hello);
    badMagic[0] = badMagic[0]! ^ 1;
    assert.throws(
      () => decodeMessage(MsgType.HELLO, badMagic),
      (err) => err instanceof LazarusError && err.code === ErrorCodes.BAD_MAGIC,
    );
    const badVersion = Buffer.from(hello);
    badVersion[4] = 99;
    assert.throws(
      () => decodeMessage(MsgType.HELLO, badVersion),
      (err) => err instanceof LazarusError && err.code === ErrorCodes.UNSUPPORTED_VERSION,
    );
  });
});
