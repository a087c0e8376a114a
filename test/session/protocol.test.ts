import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import fc from 'fast-check';
import {
  AdviceKind,
  CLIENT_NONCE_SIZE,
  DATA_PREFIX_SIZE,
  decode,
  encode,
  FrameType,
  MAGIC,
  NONCE_SIZE,
  PROOF_SIZE,
  SESSION_ID_SIZE,
  sessionDecoderOptions,
  VERSION,
} from '../../src/session/protocol.ts';
import { ErrorCodes, LazarusError } from '../../src/wire/errors.ts';
import { FRAME_HEADER_SIZE } from '../../src/wire/frame.ts';
import { FrameDecoder, type FrameSink } from '../../src/wire/frame-decoder.ts';

// ---------------------------------------------------------------------------------------------------
// Helpers

interface Decoded {
  type: number;
  body: Buffer;
}

/** Decodes `bytes` with the session decoder configuration, fed in random-sized pieces. */
function decodeFrames(bytes: Buffer, cuts: readonly number[] = [], max = 1024 * 1024): Decoded[] {
  const out: Decoded[] = [];
  let stream: { type: number; parts: Buffer[]; remaining: number } | undefined;
  const sink: FrameSink = {
    onFrame: (type, body) => out.push({ type, body: Buffer.from(body) }),
    onStreamStart: (type, prefix, remaining) => {
      stream = { type, parts: [Buffer.from(prefix)], remaining };
      if (remaining === 0) {
        out.push({ type, body: Buffer.concat(stream.parts) });
        stream = undefined;
      }
    },
    onStreamChunk: (chunk) => {
      assert.ok(stream, 'stream chunk outside a streamed frame');
      stream.parts.push(Buffer.from(chunk));
      stream.remaining -= chunk.length;
      if (stream.remaining === 0) {
        out.push({ type: stream.type, body: Buffer.concat(stream.parts) });
        stream = undefined;
      }
    },
  };
  const decoder = new FrameDecoder(sink, sessionDecoderOptions(max));
  let at = 0;
  for (const cut of [...cuts].sort((a, b) => a - b)) {
    if (cut <= at || cut >= bytes.length) continue;
    decoder.push(bytes.subarray(at, cut));
    at = cut;
  }
  decoder.push(bytes.subarray(at));
  decoder.end();
  return out;
}

/** The one frame in `frame`: checks the header (length, type) and returns the body. */
function bodyOf(frame: Buffer, type: number, cuts: readonly number[] = []): Buffer {
  assert.equal(frame.readUInt32BE(0), frame.length - FRAME_HEADER_SIZE, 'length field must match the body');
  assert.equal(frame[4], type, 'type byte');
  const frames = decodeFrames(frame, cuts);
  assert.equal(frames.length, 1, 'exactly one frame');
  assert.equal(frames[0]!.type, type, 'decoded type');
  return frames[0]!.body;
}

const bytes = (n: number) => fc.uint8Array({ minLength: n, maxLength: n }).map((u) => Buffer.from(u));
const anyBytes = (max: number) => fc.uint8Array({ maxLength: max, size: 'max' }).map((u) => Buffer.from(u));
/** Strings whose UTF-8 form fits a u16 length (code points, never lone surrogates). */
const str = fc.string({ unit: 'binary', maxLength: 200, size: 'max' });
const u32 = fc.integer({ min: 0, max: 0xffffffff });
const u64 = fc.oneof(
  fc.integer({ min: 0, max: Number.MAX_SAFE_INTEGER }),
  fc.constantFrom(0, 1, 2 ** 32 - 1, 2 ** 32, 2 ** 53 - 1),
);
const cutsArb = fc.array(fc.nat(400), { maxLength: 6 });

/** Asserts `fn` throws a LazarusError whose code is one of `codes`. */
function throwsTyped(fn: () => unknown, codes: readonly string[], what: string): void {
  let threw = false;
  try {
    fn();
  } catch (err) {
    threw = true;
    assert.ok(err instanceof LazarusError, `${what}: threw a non-LazarusError: ${String(err)}`);
    assert.ok(codes.includes(err.code), `${what}: code ${err.code}, expected one of ${codes.join(', ')}`);
  }
  assert.ok(threw, `${what}: did not throw`);
}

/** Runs `fn`; if it throws, the error must be a LazarusError with one of `codes`. */
function onlyTyped(fn: () => unknown, codes: readonly string[], what: string): void {
  try {
    fn();
  } catch (err) {
    assert.ok(err instanceof LazarusError, `${what}: threw a non-LazarusError: ${String(err)}`);
    assert.ok(codes.includes(err.code), `${what}: code ${err.code}, expected one of ${codes.join(', ')}`);
  }
}

// ---------------------------------------------------------------------------------------------------
// Every message, as an arbitrary valid instance: its encoded frame, type, and a decoder returning a
// value to compare with what was encoded.

interface Sample {
  readonly name: string;
  readonly type: number;
  readonly frame: Buffer;
  readonly expected: unknown;
  readonly decode: (body: Buffer) => unknown;
}

// fc.record builds null-prototype objects; decoders return plain ones, which strict deepEqual tells apart.
const member = fc
  .record({ id: str, host: str, port: fc.integer({ min: 0, max: 0xffff }) })
  .map((m) => ({ ...m }));
const refusal = fc.record({ code: str, message: str }).map((r) => ({ ...r }));

const samples: fc.Arbitrary<Sample> = fc.oneof(
  fc.record({ nonce: bytes(NONCE_SIZE), serverId: str }).map((h) => ({
    name: 'SERVER_HELLO',
    type: FrameType.SERVER_HELLO,
    frame: encode.serverHello(h),
    expected: { ...h },
    decode: decode.serverHello,
  })),
  // The two greetings carry only the magic and version.
  fc
    .constantFrom(['OPEN', encode.open()] as const, ['CLIENT_HELLO', encode.clientHello()] as const)
    .map(([name, frame]) => ({
      name,
      type: FrameType[name],
      frame,
      expected: undefined,
      decode: (b: Buffer) => decode.greeting(b, name),
    })),
  fc
    .record(
      { ticket: anyBytes(300), proof: bytes(PROOF_SIZE), received: u64, epoch: u32, ownerHint: str },
      // epoch and ownerHint are optional: sometimes absent.
      { requiredKeys: ['ticket', 'proof', 'received'] },
    )
    .map((r) => ({
      name: 'RESUME',
      type: FrameType.RESUME,
      frame: encode.resume(r),
      // Absent epoch and owner hint travel as 0 and ''.
      expected: { ...r, epoch: r.epoch ?? 0, ownerHint: r.ownerHint ?? '' },
      decode: decode.resume,
    })),
  fc
    .record({
      ticket: anyBytes(300),
      proof: bytes(PROOF_SIZE),
      received: u64,
      epoch: u32,
      ownerHint: str,
      serverId: str,
      clientNonce: bytes(CLIENT_NONCE_SIZE),
      sentAt: u64,
      pushed: fc.boolean(),
    })
    .map((r) => ({
      name: 'EARLY_RESUME',
      type: FrameType.EARLY_RESUME,
      frame: encode.earlyResume(r),
      expected: { ...r },
      decode: decode.earlyResume,
    })),
  fc.constant(null).map(() => ({
    name: 'CHALLENGE',
    type: FrameType.CHALLENGE,
    frame: encode.challenge(),
    expected: undefined,
    decode: decode.challenge,
  })),
  fc.record({ sessionId: bytes(SESSION_ID_SIZE), secret: bytes(32), ticket: anyBytes(300) }).map((o) => ({
    name: 'OPENED',
    type: FrameType.OPENED,
    frame: encode.opened(o),
    expected: { ...o },
    decode: decode.opened,
  })),
  fc.record({ received: u64, epoch: u32 }).map((r) => ({
    name: 'RESUMED',
    type: FrameType.RESUMED,
    frame: encode.resumed(r),
    expected: { ...r },
    decode: decode.resumed,
  })),
  fc.array(member, { maxLength: 10 }).map((members) => ({
    name: 'POOL',
    type: FrameType.POOL,
    frame: encode.pool(members),
    expected: members,
    decode: decode.pool,
  })),
  str.map((memberId) => ({
    name: 'HANDOFF',
    type: FrameType.HANDOFF,
    frame: encode.handoff(memberId),
    expected: memberId,
    decode: decode.handoff,
  })),
  fc
    .record({
      kind: fc.constantFrom(AdviceKind.OVERLOAD, AdviceKind.DRAIN),
      target: str,
      pushed: fc.boolean(),
    })
    .filter((a) => !a.pushed || a.target !== '')
    .map((a) => ({
      name: 'ADVICE',
      type: FrameType.ADVICE,
      frame: encode.advice(a),
      expected: { ...a },
      decode: decode.advice,
    })),
  refusal.map((r) => ({
    name: 'REFUSED',
    type: FrameType.REFUSED,
    frame: encode.refused(r),
    expected: r,
    decode: (b: Buffer) => decode.refusal(b, 'REFUSED'),
  })),
  refusal.map((r) => ({
    name: 'ABORT',
    type: FrameType.ABORT,
    frame: encode.abort(r),
    expected: r,
    decode: (b: Buffer) => decode.refusal(b, 'ABORT'),
  })),
  ...(['ack', 'fin', 'ping', 'pong'] as const).map((k) =>
    u64.map((v) => ({
      name: k.toUpperCase(),
      type: FrameType[k.toUpperCase() as 'ACK' | 'FIN' | 'PING' | 'PONG'],
      frame: encode[k](v),
      expected: v,
      decode: (b: Buffer) => decode.offset(b, k.toUpperCase()),
    })),
  ),
);

/** Every decoder, by name, for the hostile-input properties. */
const decoders: ReadonlyArray<readonly [string, (body: Buffer) => unknown]> = [
  ['serverHello', decode.serverHello],
  ['open', (b) => decode.greeting(b, 'OPEN')],
  ['clientHello', (b) => decode.greeting(b, 'CLIENT_HELLO')],
  ['resume', decode.resume],
  ['earlyResume', decode.earlyResume],
  ['challenge', decode.challenge],
  ['resumed', decode.resumed],
  ['pool', decode.pool],
  ['advice', decode.advice],
  ['handoff', decode.handoff],
  ['opened', decode.opened],
  ['refusal', (b) => decode.refusal(b, 'REFUSED')],
  ['offset', (b) => decode.offset(b, 'ACK')],
];

const DECODE_CODES = [ErrorCodes.MALFORMED_FRAME, ErrorCodes.BAD_MAGIC, ErrorCodes.UNSUPPORTED_VERSION];
const HELLO_PREFIX = Buffer.from([...Buffer.from(MAGIC.toString(16).padStart(8, '0'), 'hex'), VERSION]);

// ---------------------------------------------------------------------------------------------------

describe('session protocol: round trips', () => {
  test('every encode.* decodes back to its fields, under any chunking of the frame', () => {
    fc.assert(
      fc.property(samples, cutsArb, (s, cuts) => {
        const body = bodyOf(s.frame, s.type, cuts);
        assert.deepEqual(s.decode(body), s.expected, `${s.name} round trip`);
      }),
      { numRuns: 1000 },
    );
  });

  test('magic-bearing frames start with the magic and version', () => {
    fc.assert(
      fc.property(bytes(NONCE_SIZE), str, (nonce, serverId) => {
        const frames = [
          encode.serverHello({ nonce, serverId }),
          encode.open(),
          encode.resume({ ticket: nonce, proof: nonce, received: 0 }),
        ];
        for (const f of frames) {
          assert.deepEqual(
            f.subarray(FRAME_HEADER_SIZE, FRAME_HEADER_SIZE + 5),
            HELLO_PREFIX,
            'magic + version lead the body',
          );
        }
      }),
      { numRuns: 50 },
    );
  });

  test('DATA: header, ack prefix and payload (written separately or copied into room)', () => {
    fc.assert(
      fc.property(u64, anyBytes(3000), fc.boolean(), cutsArb, (ack, payload, copy, cuts) => {
        let frame: Buffer;
        if (copy) {
          const header = encode.dataHeader(ack, payload.length, payload.length);
          assert.equal(header.length, FRAME_HEADER_SIZE + DATA_PREFIX_SIZE + payload.length, 'room');
          payload.copy(header, FRAME_HEADER_SIZE + DATA_PREFIX_SIZE);
          frame = header;
        } else {
          const header = encode.dataHeader(ack, payload.length);
          assert.equal(header.length, FRAME_HEADER_SIZE + DATA_PREFIX_SIZE, 'header and prefix only');
          frame = Buffer.concat([header, payload]);
        }
        const body = bodyOf(frame, FrameType.DATA, cuts);
        assert.equal(decode.offset(body.subarray(0, DATA_PREFIX_SIZE), 'DATA'), ack, 'piggybacked ack');
        assert.deepEqual(body.subarray(DATA_PREFIX_SIZE), payload, 'payload');
      }),
      { numRuns: 500 },
    );
  });

  test('several frames back to back decode in order', () => {
    fc.assert(
      fc.property(fc.array(samples, { minLength: 1, maxLength: 8 }), cutsArb, (list, cuts) => {
        const frames = decodeFrames(Buffer.concat(list.map((s) => s.frame)), cuts);
        assert.equal(frames.length, list.length, 'frame count');
        for (const [i, s] of list.entries()) {
          assert.equal(frames[i]!.type, s.type, `frame ${i} type`);
          assert.deepEqual(s.decode(frames[i]!.body), s.expected, `frame ${i} (${s.name})`);
        }
      }),
      { numRuns: 300 },
    );
  });

  test('offsets above 2^53 - 1 are refused, not rounded', () => {
    fc.assert(
      fc.property(fc.integer({ min: 0x200000, max: 0xffffffff }), u32, (hi, lo) => {
        const body = Buffer.alloc(8);
        body.writeUInt32BE(hi, 0);
        body.writeUInt32BE(lo, 4);
        throwsTyped(() => decode.offset(body, 'ACK'), [ErrorCodes.MALFORMED_FRAME], `u64 ${hi}:${lo}`);
        const resumed = Buffer.concat([body, Buffer.alloc(4)]);
        throwsTyped(() => decode.resumed(resumed), [ErrorCodes.MALFORMED_FRAME], 'RESUMED offset');
      }),
      { numRuns: 100 },
    );
  });
});

describe('session protocol: hostile bodies', () => {
  test('random bodies: every decoder throws only typed errors', () => {
    fc.assert(
      fc.property(
        fc.oneof(
          anyBytes(200),
          // Past the magic and version, so the field parsing itself sees random bytes.
          anyBytes(200).map((b) => Buffer.concat([HELLO_PREFIX, b])),
        ),
        (body) => {
          for (const [name, fn] of decoders) onlyTyped(() => fn(body), DECODE_CODES, name);
        },
      ),
      { numRuns: 1500 },
    );
  });

  test('truncated bodies: every proper prefix of a valid body is MALFORMED_FRAME', () => {
    fc.assert(
      fc.property(samples, (s) => {
        const body = s.frame.subarray(FRAME_HEADER_SIZE);
        // Every cut in the leading fields, then a sample through the long ones, and the last byte
        // (an empty body, CHALLENGE's, has no proper prefix).
        const cuts = new Set<number>(body.length > 0 ? [body.length - 1] : []);
        for (let n = 0; n < body.length; n += n < 64 ? 1 : 1 + Math.floor(body.length / 64)) cuts.add(n);
        for (const n of cuts) {
          // A copy of exactly n bytes, so no decoder can read past it into the original.
          const cut = Buffer.from(body.subarray(0, n));
          throwsTyped(() => s.decode(cut), [ErrorCodes.MALFORMED_FRAME], `${s.name} cut to ${n}`);
        }
      }),
      { numRuns: 300 },
    );
  });

  test('trailing bytes: a valid body with anything appended is MALFORMED_FRAME', () => {
    fc.assert(
      fc.property(samples, fc.uint8Array({ minLength: 1, maxLength: 40 }), (s, extra) => {
        const body = Buffer.concat([s.frame.subarray(FRAME_HEADER_SIZE), extra]);
        throwsTyped(() => s.decode(body), [ErrorCodes.MALFORMED_FRAME], `${s.name} + ${extra.length}`);
      }),
      { numRuns: 500 },
    );
  });

  test('a wrong magic is BAD_MAGIC, a wrong version UNSUPPORTED_VERSION', () => {
    const hellos: ReadonlyArray<readonly [string, Buffer, (b: Buffer) => unknown]> = [
      [
        'serverHello',
        encode.serverHello({ nonce: Buffer.alloc(NONCE_SIZE), serverId: 's' }),
        decode.serverHello,
      ],
      ['open', encode.open(), (b) => decode.greeting(b, 'OPEN')],
      ['clientHello', encode.clientHello(), (b) => decode.greeting(b, 'CLIENT_HELLO')],
      [
        'resume',
        encode.resume({ ticket: Buffer.alloc(41), proof: Buffer.alloc(PROOF_SIZE), received: 3 }),
        decode.resume,
      ],
    ];
    fc.assert(
      fc.property(u32, fc.integer({ min: 0, max: 255 }), (magic, version) => {
        for (const [name, frame, fn] of hellos) {
          const body = Buffer.from(frame.subarray(FRAME_HEADER_SIZE));
          if (magic !== MAGIC) {
            const bad = Buffer.from(body);
            bad.writeUInt32BE(magic, 0);
            throwsTyped(() => fn(bad), [ErrorCodes.BAD_MAGIC], `${name} magic ${magic.toString(16)}`);
          }
          if (version !== VERSION) {
            const bad = Buffer.from(body);
            bad[4] = version;
            throwsTyped(() => fn(bad), [ErrorCodes.UNSUPPORTED_VERSION], `${name} version ${version}`);
          }
        }
      }),
      { numRuns: 300 },
    );
  });

  test('ADVICE with an unknown kind is MALFORMED_FRAME', () => {
    for (let kind = 0; kind < 256; kind++) {
      if (kind === AdviceKind.OVERLOAD || kind === AdviceKind.DRAIN) continue;
      const body = Buffer.from([kind, 0, 0]);
      throwsTyped(() => decode.advice(body), [ErrorCodes.MALFORMED_FRAME], `advice kind ${kind}`);
    }
  });

  test('ADVICE with unknown flags, or pushed to no member, is MALFORMED_FRAME', () => {
    const body = (flags: number, target: string) => {
      const b = Buffer.from(
        encode.advice({ kind: AdviceKind.DRAIN, target, pushed: false }).subarray(FRAME_HEADER_SIZE),
      );
      b[b.length - 1] = flags;
      return b;
    };
    assert.deepEqual(decode.advice(body(1, 'b')), { kind: AdviceKind.DRAIN, target: 'b', pushed: true });
    for (let flags = 2; flags < 256; flags++) {
      throwsTyped(
        () => decode.advice(body(flags, 'b')),
        [ErrorCodes.MALFORMED_FRAME],
        `advice flags ${flags}`,
      );
    }
    throwsTyped(() => decode.advice(body(1, '')), [ErrorCodes.MALFORMED_FRAME], 'pushed to no member');
  });
});

describe('session protocol: decoder configuration', () => {
  const known = new Set<number>(Object.values(FrameType));

  test('every frame type the protocol defines is accepted, every other refused', () => {
    for (let type = 0; type < 256; type++) {
      const frame = encodeFrameWithBody(type, type === FrameType.DATA ? 8 : 0);
      if (known.has(type)) {
        const frames = decodeFrames(frame);
        assert.equal(frames.length, 1, `type 0x${type.toString(16)} decodes`);
      } else {
        throwsTyped(
          () => decodeFrames(frame),
          [ErrorCodes.UNKNOWN_FRAME_TYPE],
          `unknown type 0x${type.toString(16)}`,
        );
      }
    }
  });

  test('lengths above the maximum are refused from the header alone', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 1024, max: 4 * 1024 * 1024 }),
        fc.constantFrom(...known),
        fc.integer({ min: 1, max: 0xffffffff }),
        (max, type, over) => {
          const length = Math.min(0xffffffff, max + over);
          const header = Buffer.alloc(FRAME_HEADER_SIZE);
          header.writeUInt32BE(length, 0);
          header[4] = type;
          const decoder = new FrameDecoder(nullSink, sessionDecoderOptions(max));
          // Only the header is fed: the refusal must not wait for (or buffer) the body.
          throwsTyped(() => decoder.push(header), [ErrorCodes.FRAME_TOO_LARGE], `length ${length} > ${max}`);
          // Exactly the maximum is fine.
          const ok = Buffer.from(header);
          ok.writeUInt32BE(max, 0);
          new FrameDecoder(nullSink, sessionDecoderOptions(max)).push(ok);
        },
      ),
      { numRuns: 300 },
    );
  });

  test('DATA shorter than its ack prefix is MALFORMED_FRAME', () => {
    for (let length = 0; length < DATA_PREFIX_SIZE; length++) {
      throwsTyped(
        () => decodeFrames(encodeFrameWithBody(FrameType.DATA, length)),
        [ErrorCodes.MALFORMED_FRAME],
        `DATA of ${length} bytes`,
      );
    }
  });

  test('random byte streams give frames or typed errors only', () => {
    fc.assert(
      fc.property(anyBytes(600), cutsArb, (stream, cuts) => {
        onlyTyped(
          () => decodeFrames(stream, cuts, 1024),
          [
            ErrorCodes.UNKNOWN_FRAME_TYPE,
            ErrorCodes.FRAME_TOO_LARGE,
            ErrorCodes.FRAME_TRUNCATED,
            ErrorCodes.MALFORMED_FRAME,
          ],
          'decoder',
        );
      }),
      { numRuns: 1000 },
    );
  });
});

const nullSink: FrameSink = { onFrame() {}, onStreamStart() {}, onStreamChunk() {} };

function encodeFrameWithBody(type: number, length: number): Buffer {
  const out = Buffer.alloc(FRAME_HEADER_SIZE + length);
  out.writeUInt32BE(length, 0);
  out[4] = type;
  return out;
}
