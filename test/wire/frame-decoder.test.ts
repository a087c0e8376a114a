import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import fc from 'fast-check';
import { ErrorCodes, LazarusError } from '../../src/wire/errors.ts';
import {
  DEFAULT_MAX_FRAME_SIZE,
  encodeFrame,
  encodeFrameHeader,
  FRAME_HEADER_SIZE,
} from '../../src/wire/frame.ts';
import { FrameDecoder, type FrameDecoderOptions, type FrameSink } from '../../src/wire/frame-decoder.ts';

// ---------------------------------------------------------------------------------------------------
// Protocol under test: a few buffered types (including the extremes 0x00 and 0xff) and streamed types
// with prefixes of 0, 1 and 8 bytes.

const BUFFERED = [0x00, 0x01, 0x02, 0x7f, 0xff] as const;
const STREAMED: ReadonlyMap<number, number> = new Map([
  [0x10, 0],
  [0x11, 1],
  [0x12, 8],
]);
const TYPES: ReadonlySet<number> = new Set([...BUFFERED, ...STREAMED.keys()]);
const MAX = 200;
const OPTIONS: FrameDecoderOptions = { types: TYPES, streamed: STREAMED, maxFrameSize: MAX };
const UNKNOWN_TYPES = Array.from({ length: 256 }, (_, i) => i).filter((t) => !TYPES.has(t));
const DECODER_CODES: ReadonlySet<string> = new Set([
  ErrorCodes.UNKNOWN_FRAME_TYPE,
  ErrorCodes.FRAME_TOO_LARGE,
  ErrorCodes.FRAME_TRUNCATED,
  ErrorCodes.MALFORMED_FRAME,
]);

interface Frame {
  readonly type: number;
  readonly body: Buffer;
}

/** What the recorder reports for one frame; streamed frames carry their prefix size and `remaining`. */
type Delivered =
  | { type: number; body: Buffer }
  | { type: number; body: Buffer; prefix: number; remaining: number };

function expected(frame: Frame): Delivered {
  const prefix = STREAMED.get(frame.type);
  if (prefix === undefined) return { type: frame.type, body: frame.body };
  return { type: frame.type, body: frame.body, prefix, remaining: frame.body.length - prefix };
}

/**
 * A sink that rebuilds frames from the callbacks and checks the callback protocol as it goes: no
 * buffered frame or new stream inside an open stream, no chunk outside one, no empty or overlong chunk.
 */
class Recorder implements FrameSink {
  readonly frames: Delivered[] = [];
  /** Frames whose last byte has been delivered. */
  completed = 0;
  /** Bytes (prefix plus chunks) delivered for streamed frames. */
  streamedBytes = 0;
  /** One entry per callback, for comparing runs. */
  readonly log: string[] = [];
  #open:
    | { frame: { type: number; body: Buffer; prefix: number; remaining: number }; left: number }
    | undefined;

  onFrame(type: number, body: Buffer): void {
    assert.equal(this.#open, undefined, 'onFrame inside an open stream');
    this.log.push(`frame ${type} ${body.toString('hex')}`);
    this.frames.push({ type, body: Buffer.from(body) });
    this.completed++;
  }

  onStreamStart(type: number, prefix: Buffer, remaining: number): void {
    assert.equal(this.#open, undefined, 'onStreamStart inside an open stream');
    assert.ok(Number.isInteger(remaining) && remaining >= 0, `bad remaining ${remaining}`);
    this.log.push(`start ${type} ${prefix.toString('hex')} ${remaining}`);
    const frame = { type, body: Buffer.from(prefix), prefix: prefix.length, remaining };
    this.frames.push(frame);
    this.streamedBytes += prefix.length;
    if (remaining === 0) this.completed++;
    else this.#open = { frame, left: remaining };
  }

  onStreamChunk(chunk: Buffer): void {
    const open = this.#open;
    assert.ok(open !== undefined, 'onStreamChunk outside a stream');
    assert.ok(chunk.length > 0, 'empty stream chunk');
    assert.ok(chunk.length <= open.left, 'stream chunk beyond the announced length');
    this.log.push(`chunk ${chunk.toString('hex')}`);
    open.frame.body = Buffer.concat([open.frame.body, chunk]);
    open.left -= chunk.length;
    this.streamedBytes += chunk.length;
    if (open.left === 0) {
      this.#open = undefined;
      this.completed++;
    }
  }
}

// ---------------------------------------------------------------------------------------------------
// Arbitraries

const bytesArb = (minLength: number, maxLength: number): fc.Arbitrary<Buffer> =>
  fc.uint8Array({ minLength, maxLength }).map((u) => Buffer.from(u));

const frameArb: fc.Arbitrary<Frame> = fc.oneof(
  fc.record({ type: fc.constantFrom(...BUFFERED), body: bytesArb(0, 40) }),
  fc.constantFrom(...STREAMED.keys()).chain((type) => {
    const prefix = STREAMED.get(type)!;
    return fc.record({
      type: fc.constant(type),
      // Bodies from exactly the prefix (nothing streamed) to well beyond it.
      body: fc.oneof(bytesArb(prefix, prefix), bytesArb(prefix, prefix + 40)),
    });
  }),
);

interface Encoded {
  readonly frames: Frame[];
  readonly bytes: Buffer;
  /** Offset of each frame's first byte. */
  readonly starts: number[];
  /** Offset just past each frame's last byte. */
  readonly ends: number[];
}

/**
 * Encodes frames either whole (encodeFrame) or as encodeFrameHeader with a random leading slice of the
 * body as its `prefix`, followed by the rest of the body (as a writev would send it).
 */
function encode(items: ReadonlyArray<readonly [Frame, boolean, number]>): Encoded {
  const parts: Buffer[] = [];
  const starts: number[] = [];
  const ends: number[] = [];
  let at = 0;
  for (const [frame, whole, cut] of items) {
    starts.push(at);
    if (whole) {
      parts.push(encodeFrame(frame.type, frame.body));
    } else {
      const k = cut % (frame.body.length + 1);
      parts.push(encodeFrameHeader(frame.type, frame.body.length, frame.body.subarray(0, k)));
      parts.push(frame.body.subarray(k));
    }
    at += FRAME_HEADER_SIZE + frame.body.length;
    ends.push(at);
  }
  const bytes = Buffer.concat(parts);
  assert.equal(bytes.length, at);
  return { frames: items.map(([frame]) => frame), bytes, starts, ends };
}

const encodedArb = (minLength = 0): fc.Arbitrary<Encoded> =>
  fc.array(fc.tuple(frameArb, fc.boolean(), fc.nat()), { minLength, maxLength: 10 }).map(encode);

/** How to cut a byte stream: 1-byte chunks, or random cut points (repeats give empty chunks). */
type Chunking = 'bytes' | number[];
const chunkingArb: fc.Arbitrary<Chunking> = fc.oneof(
  fc.constant('bytes' as const),
  fc.array(fc.nat(), { maxLength: 12 }),
);

function split(bytes: Buffer, chunking: Chunking): Buffer[] {
  if (chunking === 'bytes') return Array.from(bytes, (_, i) => bytes.subarray(i, i + 1));
  const cuts = chunking.map((c) => c % (bytes.length + 1)).sort((a, b) => a - b);
  const out: Buffer[] = [];
  let prev = 0;
  for (const cut of [...cuts, bytes.length]) {
    out.push(bytes.subarray(prev, cut));
    prev = cut;
  }
  return out;
}

function catchError(fn: () => void): unknown {
  try {
    fn();
  } catch (err) {
    return err;
  }
  return undefined;
}

function assertLazarus(err: unknown, code?: string): asserts err is LazarusError {
  assert.ok(err instanceof LazarusError, `expected a LazarusError, got ${String(err)}`);
  assert.ok(DECODER_CODES.has(err.code), `unexpected code ${err.code}`);
  if (code !== undefined) assert.equal(err.code, code);
}

function header(type: number, length: number): Buffer {
  return encodeFrameHeader(type, length);
}

// ---------------------------------------------------------------------------------------------------
// Reference model: a whole-buffer parser stating what the decoder must report for a byte stream.

interface ModelResult {
  readonly frames: Frame[];
  /** The decoder's error and the stream offset at which it becomes known (`at` bytes pushed). */
  readonly error?: { readonly code: string; readonly at: number };
}

function model(bytes: Buffer, options: FrameDecoderOptions = OPTIONS): ModelResult {
  const frames: Frame[] = [];
  const max = options.maxFrameSize ?? DEFAULT_MAX_FRAME_SIZE;
  let pos = 0;
  while (pos + FRAME_HEADER_SIZE <= bytes.length) {
    const length = bytes.readUInt32BE(pos);
    const type = bytes[pos + 4]!;
    const at = pos + FRAME_HEADER_SIZE;
    if (!options.types.has(type)) return { frames, error: { code: ErrorCodes.UNKNOWN_FRAME_TYPE, at } };
    if (length > max) return { frames, error: { code: ErrorCodes.FRAME_TOO_LARGE, at } };
    const prefix = options.streamed?.get(type);
    if (prefix !== undefined && length < prefix)
      return { frames, error: { code: ErrorCodes.MALFORMED_FRAME, at } };
    if (at + length > bytes.length) break;
    frames.push({ type, body: Buffer.from(bytes.subarray(at, at + length)) });
    pos = at + length;
  }
  if (pos < bytes.length) return { frames, error: { code: ErrorCodes.FRAME_TRUNCATED, at: Infinity } };
  return { frames };
}

/** Byte soup built from valid frames, bad headers (unknown type, huge or short length) and noise. */
const segmentArb: fc.Arbitrary<Buffer> = fc.oneof(
  { arbitrary: encodedArb(1).map((e) => e.bytes), weight: 3 },
  fc
    .tuple(
      fc.oneof(fc.constantFrom(...TYPES), fc.integer({ min: 0, max: 255 })),
      fc.oneof(
        fc.integer({ min: 0, max: 60 }),
        fc.constantFrom(MAX, MAX + 1, 2 ** 32 - 1),
        fc.integer({ min: MAX + 1, max: 2 ** 32 - 1 }),
      ),
      bytesArb(0, 40),
    )
    .map(([type, length, rest]) => Buffer.concat([header(type, length), rest])),
  fc
    .constantFrom(...[...STREAMED].filter(([, p]) => p > 0))
    .chain(([type, prefix]) => fc.integer({ min: 0, max: prefix - 1 }).map((len) => header(type, len))),
  bytesArb(0, 30),
);

const soupArb: fc.Arbitrary<Buffer> = fc.oneof(
  bytesArb(0, 200),
  encodedArb().map((e) => e.bytes),
  fc.tuple(fc.array(segmentArb, { maxLength: 6 }), fc.option(fc.nat())).map(([segments, cut]) => {
    const bytes = Buffer.concat(segments);
    return cut === null ? bytes : bytes.subarray(0, cut % (bytes.length + 1));
  }),
);

// ---------------------------------------------------------------------------------------------------

describe('FrameDecoder round trip', () => {
  test('random frame sequences come out unchanged under any chunking', () => {
    fc.assert(
      fc.property(encodedArb(), chunkingArb, (enc, chunking) => {
        const rec = new Recorder();
        const dec = new FrameDecoder(rec, OPTIONS);
        let pos = 0;
        for (const chunk of split(enc.bytes, chunking)) {
          dec.push(chunk);
          pos += chunk.length;
          // Exactly the frames that ended by now have been delivered: nothing is held back.
          const done = enc.ends.filter((e) => e <= pos).length;
          assert.equal(rec.completed, done, `frames completed after ${pos} bytes`);
          assert.equal(dec.midFrame, pos !== 0 && !enc.ends.includes(pos), `midFrame after ${pos} bytes`);
          // Streamed bytes are passed on as they arrive once the prefix is complete, never buffered.
          let streamed = 0;
          enc.frames.forEach((frame, i) => {
            const prefix = STREAMED.get(frame.type);
            const bodyStart = enc.starts[i]! + FRAME_HEADER_SIZE;
            if (prefix !== undefined && pos >= bodyStart + prefix)
              streamed += Math.min(pos - bodyStart, frame.body.length);
          });
          assert.equal(rec.streamedBytes, streamed, `streamed bytes after ${pos} bytes`);
        }
        assert.equal(dec.midFrame, false);
        dec.end();
        assert.deepEqual(rec.frames, enc.frames.map(expected));
      }),
      { numRuns: 300 },
    );
  });

  test('a frame of exactly maxFrameSize is accepted', () => {
    for (const type of [0x01, 0x12]) {
      const body = Buffer.alloc(MAX, 0xab);
      const rec = new Recorder();
      const dec = new FrameDecoder(rec, OPTIONS);
      dec.push(encodeFrame(type, body));
      dec.end();
      assert.deepEqual(rec.frames, [expected({ type, body })]);
    }
  });

  test('zero-length frames of every kind are delivered at once', () => {
    const rec = new Recorder();
    const dec = new FrameDecoder(rec, OPTIONS);
    dec.push(encodeFrame(0x01));
    assert.deepEqual(rec.frames, [{ type: 0x01, body: Buffer.alloc(0) }]);
    assert.equal(dec.midFrame, false);
    // A streamed type with an empty prefix and an empty body: nothing is left to wait for.
    dec.push(encodeFrame(0x10));
    assert.deepEqual(rec.frames[1], { type: 0x10, body: Buffer.alloc(0), prefix: 0, remaining: 0 });
    assert.equal(dec.midFrame, false);
    dec.end();
  });

  test('a streamed frame with an empty prefix starts as soon as its header is complete', () => {
    const rec = new Recorder();
    const dec = new FrameDecoder(rec, OPTIONS);
    dec.push(header(0x10, 3));
    assert.deepEqual(rec.log, ['start 16  3']);
    assert.equal(dec.midFrame, true);
    dec.push(Buffer.from([1, 2, 3]));
    assert.equal(dec.midFrame, false);
    assert.deepEqual(rec.frames, [{ type: 0x10, body: Buffer.from([1, 2, 3]), prefix: 0, remaining: 3 }]);
  });

  test('bodies and stream chunks lying inside one input chunk are views, not copies', () => {
    const input = Buffer.concat([
      encodeFrame(0x01, Buffer.from('abc')),
      encodeFrame(0x11, Buffer.from('pxyz')),
    ]);
    const seen: Buffer[] = [];
    const dec = new FrameDecoder(
      {
        onFrame: (_t, body) => seen.push(body),
        onStreamStart: (_t, prefix) => seen.push(prefix),
        onStreamChunk: (chunk) => seen.push(chunk),
      },
      OPTIONS,
    );
    dec.push(input);
    assert.deepEqual(
      seen.map((b) => b.toString()),
      ['abc', 'p', 'xyz'],
    );
    // Views see later writes to the input; copies would not.
    input.fill('*');
    assert.deepEqual(
      seen.map((b) => b.toString()),
      ['***', '*', '***'],
    );
  });

  test('empty pushes change nothing', () => {
    const rec = new Recorder();
    const dec = new FrameDecoder(rec, OPTIONS);
    dec.push(Buffer.alloc(0));
    assert.equal(dec.midFrame, false);
    dec.push(header(0x01, 2));
    dec.push(Buffer.alloc(0));
    assert.equal(dec.midFrame, true);
    assert.equal(rec.completed, 0);
    dec.push(Buffer.from([7, 8]));
    assert.deepEqual(rec.frames, [{ type: 0x01, body: Buffer.from([7, 8]) }]);
  });
});

describe('FrameDecoder robustness', () => {
  test('arbitrary input: only decoder LazarusErrors, raised at the right byte, then silence', () => {
    fc.assert(
      fc.property(soupArb, chunkingArb, (bytes, chunking) => {
        const want = model(bytes);
        const rec = new Recorder();
        const dec = new FrameDecoder(rec, OPTIONS);
        let pos = 0;
        let failed: LazarusError | undefined;
        for (const chunk of split(bytes, chunking)) {
          if (failed) {
            const before = rec.log.length;
            dec.push(chunk);
            assert.equal(rec.log.length, before, 'callbacks after a failure');
            continue;
          }
          const err = catchError(() => dec.push(chunk));
          if (err !== undefined) {
            assertLazarus(err);
            assert.ok(want.error, `unexpected ${err.code}`);
            assert.equal(err.code, want.error.code);
            assert.ok(pos < want.error.at && want.error.at <= pos + chunk.length, 'raised at the wrong byte');
            failed = err;
          }
          pos += chunk.length;
        }
        const endErr = catchError(() => dec.end());
        if (failed) {
          assert.equal(endErr, undefined, 'end() after a failure must not throw again');
        } else if (want.error) {
          assertLazarus(endErr, ErrorCodes.FRAME_TRUNCATED);
          assert.equal(want.error.code, ErrorCodes.FRAME_TRUNCATED);
          // Failed now: further input is ignored and end() stays quiet.
          const before = rec.log.length;
          dec.push(encodeFrame(0x01, Buffer.from([1])));
          assert.equal(rec.log.length, before);
          assert.equal(
            catchError(() => dec.end()),
            undefined,
          );
        } else {
          assert.equal(endErr, undefined);
        }
        // Every frame before the failure was delivered whole; a truncated stream only partially.
        assert.deepEqual(rec.frames.slice(0, want.frames.length), want.frames.map(expected));
        assert.ok(rec.completed === want.frames.length, 'completed frames');
      }),
      { numRuns: 400 },
    );
  });

  test('an oversized length is refused as soon as the header is complete', () => {
    fc.assert(
      fc.property(
        fc.constantFrom(...TYPES),
        fc.oneof(fc.constant(MAX + 1), fc.integer({ min: MAX + 1, max: 2 ** 32 - 1 })),
        (type, length) => {
          const rec = new Recorder();
          const dec = new FrameDecoder(rec, OPTIONS);
          const head = header(type, length);
          for (let i = 0; i < FRAME_HEADER_SIZE - 1; i++) dec.push(head.subarray(i, i + 1));
          assertLazarus(
            catchError(() => dec.push(head.subarray(FRAME_HEADER_SIZE - 1))),
            ErrorCodes.FRAME_TOO_LARGE,
          );
          // The body that follows is ignored, and so is a valid frame after it.
          dec.push(Buffer.alloc(64));
          dec.push(encodeFrame(0x01, Buffer.from([1])));
          assert.deepEqual(rec.log, []);
          assert.equal(
            catchError(() => dec.end()),
            undefined,
          );
        },
      ),
    );
  });

  test('without maxFrameSize the default maximum applies', () => {
    const dec = new FrameDecoder(new Recorder(), { types: TYPES });
    dec.push(header(0x01, DEFAULT_MAX_FRAME_SIZE));
    assert.equal(dec.midFrame, true);
    const dec2 = new FrameDecoder(new Recorder(), { types: TYPES });
    assertLazarus(
      catchError(() => dec2.push(header(0x01, DEFAULT_MAX_FRAME_SIZE + 1))),
      ErrorCodes.FRAME_TOO_LARGE,
    );
  });

  test('unknown frame types are refused at the header, after the preceding frames', () => {
    fc.assert(
      fc.property(encodedArb(), fc.constantFrom(...UNKNOWN_TYPES), fc.nat(MAX), (enc, type, length) => {
        const rec = new Recorder();
        const dec = new FrameDecoder(rec, OPTIONS);
        dec.push(enc.bytes);
        assertLazarus(
          catchError(() => dec.push(header(type, length))),
          ErrorCodes.UNKNOWN_FRAME_TYPE,
        );
        assert.deepEqual(rec.frames, enc.frames.map(expected));
      }),
    );
  });

  test('every one of the 256 type bytes is accepted exactly when it is known', () => {
    for (let type = 0; type < 256; type++) {
      const rec = new Recorder();
      const dec = new FrameDecoder(rec, OPTIONS);
      const bytes = encodeFrame(type, Buffer.alloc(STREAMED.get(type) ?? 0, 5));
      const err = catchError(() => dec.push(bytes));
      if (TYPES.has(type)) {
        assert.equal(err, undefined, `type ${type}`);
        assert.equal(rec.completed, 1, `type ${type}`);
      } else {
        assertLazarus(err, ErrorCodes.UNKNOWN_FRAME_TYPE);
        assert.equal(rec.log.length, 0);
      }
    }
  });

  test('a streamed frame shorter than its prefix is malformed', () => {
    fc.assert(
      fc.property(
        fc
          .constantFrom(...[...STREAMED].filter(([, p]) => p > 0))
          .chain(([type, prefix]) => fc.tuple(fc.constant(type), fc.integer({ min: 0, max: prefix - 1 }))),
        chunkingArb,
        ([type, length], chunking) => {
          const rec = new Recorder();
          const dec = new FrameDecoder(rec, OPTIONS);
          const bytes = Buffer.concat([header(type, length), Buffer.alloc(length + 16, 1)]);
          let err: unknown;
          for (const chunk of split(bytes, chunking)) {
            err ??= catchError(() => dec.push(chunk));
            if (err === undefined) continue;
            dec.push(chunk); // ignored once failed
          }
          assertLazarus(err, ErrorCodes.MALFORMED_FRAME);
          assert.deepEqual(rec.log, []);
        },
      ),
    );
  });

  test('truncated encodings: end() fails exactly when input stopped inside a frame', () => {
    fc.assert(
      fc.property(encodedArb(1), fc.nat(), chunkingArb, (enc, cutSeed, chunking) => {
        const cut = cutSeed % (enc.bytes.length + 1);
        const rec = new Recorder();
        const dec = new FrameDecoder(rec, OPTIONS);
        for (const chunk of split(enc.bytes.subarray(0, cut), chunking)) dec.push(chunk);
        const boundary = cut === 0 || enc.ends.includes(cut);
        assert.equal(dec.midFrame, !boundary);
        const err = catchError(() => dec.end());
        if (boundary) assert.equal(err, undefined);
        else assertLazarus(err, ErrorCodes.FRAME_TRUNCATED);
        assert.equal(rec.completed, enc.ends.filter((e) => e <= cut).length);
      }),
    );
  });

  test('stop() from inside any callback stops delivery at once, for this and later pushes', () => {
    fc.assert(
      fc.property(encodedArb(1), chunkingArb, fc.nat(), (enc, chunking, seed) => {
        const chunks = split(enc.bytes, chunking);
        const full = new Recorder();
        const fullDec = new FrameDecoder(full, OPTIONS);
        for (const chunk of chunks) fullDec.push(chunk);
        const stopAt = 1 + (seed % full.log.length);

        const rec = new Recorder();
        let dec: FrameDecoder | undefined;
        const stopping: FrameSink = {
          onFrame: (type, body) => {
            rec.onFrame(type, body);
            if (rec.log.length === stopAt) dec!.stop();
          },
          onStreamStart: (type, prefix, remaining) => {
            rec.onStreamStart(type, prefix, remaining);
            if (rec.log.length === stopAt) dec!.stop();
          },
          onStreamChunk: (chunk) => {
            rec.onStreamChunk(chunk);
            if (rec.log.length === stopAt) dec!.stop();
          },
        };
        dec = new FrameDecoder(stopping, OPTIONS);
        for (const chunk of chunks) dec.push(chunk);
        dec.push(encodeFrame(0x01, Buffer.from([9])));
        assert.deepEqual(rec.log, full.log.slice(0, stopAt));
      }),
    );
  });
});
