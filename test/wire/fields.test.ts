import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import fc from 'fast-check';
import { ErrorCodes, LazarusError } from '../../src/wire/errors.ts';
import { FieldReader, FieldWriter, readU64, writeU64 } from '../../src/wire/fields.ts';
import { encodeFrame, FRAME_HEADER_SIZE } from '../../src/wire/frame.ts';

const MAX_SAFE = Number.MAX_SAFE_INTEGER; // 2^53 - 1

type Field =
  | { readonly kind: 'u8' | 'u16' | 'u32' | 'u64'; readonly v: number }
  | { readonly kind: 'fixed' | 'bytes16' | 'bytes32'; readonly v: Buffer }
  | { readonly kind: 'string'; readonly v: string };

const bufArb = (maxLength: number): fc.Arbitrary<Buffer> =>
  fc.uint8Array({ maxLength }).map((u) => Buffer.from(u));

const fieldArb: fc.Arbitrary<Field> = fc
  .oneof(
    fc.record({ kind: fc.constant('u8' as const), v: fc.integer({ min: 0, max: 0xff }) }),
    fc.record({ kind: fc.constant('u16' as const), v: fc.integer({ min: 0, max: 0xffff }) }),
    fc.record({ kind: fc.constant('u32' as const), v: fc.integer({ min: 0, max: 0xffffffff }) }),
    fc.record({
      kind: fc.constant('u64' as const),
      v: fc.oneof(fc.maxSafeNat(), fc.nat(), fc.constantFrom(0, 2 ** 32 - 1, 2 ** 32, 2 ** 32 + 1, MAX_SAFE)),
    }),
    fc.record({ kind: fc.constant('fixed' as const), v: bufArb(40) }),
    // Up to 300 bytes so the high byte of the u16 length is exercised too.
    fc.record({ kind: fc.constant('bytes16' as const), v: bufArb(300) }),
    fc.record({ kind: fc.constant('bytes32' as const), v: bufArb(300) }),
    fc.record({ kind: fc.constant('string' as const), v: fc.string({ unit: 'binary', maxLength: 30 }) }),
  )
  .map((f): Field => ({ ...f })); // plain objects (fc.record's have a null prototype)

const recordArb = fc.array(fieldArb, { maxLength: 12 });

/** The expected encoding, built independently of FieldWriter (BigInt, DataView, TextEncoder). */
function expectedBytes(record: readonly Field[]): Buffer {
  const parts: Buffer[] = [];
  const uint = (size: 1 | 2 | 4, v: number): Buffer => {
    const b = Buffer.alloc(size);
    const view = new DataView(b.buffer, b.byteOffset, size);
    if (size === 1) view.setUint8(0, v);
    else if (size === 2) view.setUint16(0, v, false);
    else view.setUint32(0, v, false);
    return b;
  };
  for (const f of record) {
    switch (f.kind) {
      case 'u8':
        parts.push(uint(1, f.v));
        break;
      case 'u16':
        parts.push(uint(2, f.v));
        break;
      case 'u32':
        parts.push(uint(4, f.v));
        break;
      case 'u64': {
        const b = Buffer.alloc(8);
        b.writeBigUInt64BE(BigInt(f.v));
        parts.push(b);
        break;
      }
      case 'fixed':
        parts.push(f.v);
        break;
      case 'bytes16':
        parts.push(uint(2, f.v.length), f.v);
        break;
      case 'bytes32':
        parts.push(uint(4, f.v.length), f.v);
        break;
      case 'string': {
        const utf8 = Buffer.from(new TextEncoder().encode(f.v));
        parts.push(uint(2, utf8.length), utf8);
        break;
      }
    }
  }
  return Buffer.concat(parts);
}

function write(w: FieldWriter, record: readonly Field[]): Buffer {
  for (const f of record) {
    switch (f.kind) {
      case 'u8':
        w.u8(f.v);
        break;
      case 'u16':
        w.u16(f.v);
        break;
      case 'u32':
        w.u32(f.v);
        break;
      case 'u64':
        w.u64(f.v);
        break;
      case 'fixed':
        w.fixed(f.v);
        break;
      case 'bytes16':
        w.bytes16(f.v);
        break;
      case 'bytes32':
        w.bytes32(f.v);
        break;
      case 'string':
        w.string(f.v);
        break;
    }
  }
  return w.finish();
}

/** Reads back a record of the given shape (fixed fields use the known length). */
function read(r: FieldReader, shape: readonly Field[]): Field[] {
  return shape.map((f) => readOne(r, f));
}

function readOne(r: FieldReader, f: Field): Field {
  switch (f.kind) {
    case 'u8':
      return { kind: f.kind, v: r.u8() };
    case 'u16':
      return { kind: f.kind, v: r.u16() };
    case 'u32':
      return { kind: f.kind, v: r.u32() };
    case 'u64':
      return { kind: f.kind, v: r.u64() };
    case 'fixed':
      return { kind: f.kind, v: r.fixed(f.v.length) };
    case 'bytes16':
      return { kind: f.kind, v: r.bytes16() };
    case 'bytes32':
      return { kind: f.kind, v: r.bytes32() };
    case 'string':
      return { kind: f.kind, v: r.string() };
  }
}

function catchError(fn: () => void): unknown {
  try {
    fn();
  } catch (err) {
    return err;
  }
  return undefined;
}

function assertMalformed(err: unknown, what: string): void {
  assert.ok(err instanceof LazarusError, `expected a LazarusError, got ${String(err)}`);
  assert.equal(err.code, ErrorCodes.MALFORMED_FRAME);
  assert.ok(err.message.startsWith(`${what}: `), `message names the frame: ${err.message}`);
}

describe('FieldWriter / FieldReader', () => {
  test('random records encode to the expected big-endian bytes and read back unchanged', () => {
    fc.assert(
      fc.property(recordArb, fc.integer({ min: 0, max: 16 }), (record, initialSize) => {
        const bytes = write(new FieldWriter(initialSize), record);
        assert.deepEqual(bytes, expectedBytes(record));
        const r = new FieldReader(bytes, 'rec');
        assert.deepEqual(read(r, record), record);
        r.end();
      }),
      { numRuns: 300 },
    );
  });

  test('with room for a frame header, the body is the same and frame() gives what encodeFrame() does', () => {
    fc.assert(
      fc.property(
        recordArb,
        fc.integer({ min: 0, max: 16 }),
        fc.integer({ min: 0, max: 255 }),
        (record, initialSize, type) => {
          const w = new FieldWriter(initialSize, FRAME_HEADER_SIZE);
          const body = write(w, record);
          assert.deepEqual(body, expectedBytes(record));
          assert.deepEqual(w.frame(type), encodeFrame(type, expectedBytes(record)));
        },
      ),
      { numRuns: 300 },
    );
    assert.throws(() => new FieldWriter().u8(1).frame(1), RangeError);
  });

  test('end() rejects trailing bytes', () => {
    fc.assert(
      fc.property(recordArb, fc.uint8Array({ minLength: 1, maxLength: 20 }), (record, extra) => {
        const bytes = Buffer.concat([write(new FieldWriter(), record), extra]);
        const r = new FieldReader(bytes, 'trail');
        assert.deepEqual(read(r, record), record);
        const err = catchError(() => r.end());
        assertMalformed(err, 'trail');
        assert.match((err as Error).message, new RegExp(`\\b${extra.length} trailing bytes`));
      }),
    );
  });

  test('truncated bodies fail with ERR_LZ_MALFORMED_FRAME and never read past the body', () => {
    fc.assert(
      fc.property(
        recordArb.filter((rec) => expectedBytes(rec).length > 0),
        fc.nat(),
        fc.uint8Array({ maxLength: 16 }),
        (record, cutSeed, guard) => {
          const full = write(new FieldWriter(), record);
          const cut = cutSeed % full.length;
          // The body is a view into a larger buffer: the bytes after it must stay out of reach.
          const backing = Buffer.concat([full.subarray(0, cut), full.subarray(cut), guard]);
          const body = backing.subarray(0, cut);
          assertMalformed(
            catchError(() => read(new FieldReader(body, 'cut'), record)),
            'cut',
          );
        },
      ),
    );
  });

  test('random bodies read with random field sequences only ever fail as malformed', () => {
    const op = fc.constantFrom('u8', 'u16', 'u32', 'u64', 'fixed', 'bytes16', 'bytes32', 'string', 'end');
    fc.assert(
      fc.property(
        fc.uint8Array({ maxLength: 64 }).map((u) => Buffer.from(u)),
        fc.array(fc.tuple(op, fc.nat(80)), { maxLength: 16 }),
        (body, ops) => {
          const r = new FieldReader(body, 'rnd');
          for (const [name, n] of ops) {
            let v: unknown;
            const err = catchError(() => {
              if (name === 'fixed') v = r.fixed(n);
              else if (name === 'end') r.end();
              else v = r[name]();
            });
            if (err !== undefined) {
              assertMalformed(err, 'rnd');
              return;
            }
            if (typeof v === 'number') {
              assert.ok(Number.isSafeInteger(v) && v >= 0, `${name} gave ${v}`);
              const limit = { u8: 0xff, u16: 0xffff, u32: 0xffffffff, u64: MAX_SAFE }[name as 'u8'];
              assert.ok(v <= limit, `${name} gave ${v}`);
            } else if (Buffer.isBuffer(v)) {
              // A view inside the body, never beyond it.
              assert.equal(v.buffer, body.buffer);
              assert.ok(v.byteOffset >= body.byteOffset, 'view starts before the body');
              assert.ok(v.byteOffset + v.length <= body.byteOffset + body.length, 'view ends after the body');
            }
          }
        },
      ),
      { numRuns: 300 },
    );
  });

  test('u64 values above 2^53 - 1 are refused; 2^53 - 1 itself is read', () => {
    fc.assert(
      fc.property(
        fc.oneof(fc.constant(0x200000), fc.integer({ min: 0x200000, max: 0xffffffff })),
        fc.integer({ min: 0, max: 0xffffffff }),
        (hi, lo) => {
          const b = Buffer.alloc(8);
          b.writeUInt32BE(hi, 0);
          b.writeUInt32BE(lo, 4);
          assertMalformed(
            catchError(() => new FieldReader(b, 'big').u64()),
            'big',
          );
          assert.equal(readU64(b, 0), undefined);
        },
      ),
    );
    const max = Buffer.from([0x00, 0x1f, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff]);
    assert.equal(new FieldReader(max, 'max').u64(), MAX_SAFE);
    const twoTo53 = Buffer.from([0x00, 0x20, 0, 0, 0, 0, 0, 0]);
    assertMalformed(
      catchError(() => new FieldReader(twoTo53, 'big').u64()),
      'big',
    );
  });

  test('writeU64 / readU64 round trip safe integers at any offset', () => {
    fc.assert(
      fc.property(fc.maxSafeNat(), fc.nat(8), (v, at) => {
        const b = Buffer.alloc(at + 8 + 3, 0xee);
        writeU64(b, v, at);
        assert.equal(readU64(b, at), v);
        assert.equal(b.readBigUInt64BE(at), BigInt(v));
        // Nothing outside the 8 bytes is touched.
        assert.ok(
          b.subarray(0, at).every((x) => x === 0xee),
          'bytes before touched',
        );
        assert.ok(
          b.subarray(at + 8).every((x) => x === 0xee),
          'bytes after touched',
        );
      }),
    );
  });

  test('bytes16 and string refuse more than 65535 bytes', () => {
    const w = new FieldWriter();
    w.bytes16(Buffer.alloc(0xffff));
    assert.equal(w.finish().length, 2 + 0xffff);
    for (const fn of [
      () => new FieldWriter().bytes16(Buffer.alloc(0x10000)),
      () => new FieldWriter().string('é'.repeat(0x8000)), // 65536 UTF-8 bytes
    ]) {
      const err = catchError(fn);
      assert.ok(err instanceof LazarusError, `expected a LazarusError, got ${String(err)}`);
      assert.equal(err.code, ErrorCodes.INVALID_ARGUMENT);
    }
    const s = `${'é'.repeat(0x7fff)}a`; // exactly 65535 UTF-8 bytes
    const r = new FieldReader(new FieldWriter().string(s).finish(), 'max');
    assert.equal(r.string(), s);
    r.end();
  });

  test('fixed() returns a view of the body, not a copy', () => {
    const body = Buffer.from([1, 2, 3, 4]);
    const r = new FieldReader(body, 'view');
    r.u8();
    const v = r.fixed(2);
    body[1] = 9;
    assert.deepEqual([...v], [9, 3]);
  });

  test('an empty body reads nothing and ends cleanly', () => {
    const r = new FieldReader(Buffer.alloc(0), 'empty');
    assert.equal(r.fixed(0).length, 0);
    r.end();
    assertMalformed(
      catchError(() => r.u8()),
      'empty',
    );
  });
});
