import assert from 'node:assert/strict';
import { test } from 'node:test';
import fc from 'fast-check';
import { SendBuffer } from '../../src/session/send-buffer.ts';
import { ErrorCodes, LazarusError } from '../../src/wire/errors.ts';

// A model-based test: SendBuffer against the simplest thing that could be right — every byte ever
// pushed, in order, plus the offsets base (first byte held), acked and end.

type Op =
  | { readonly kind: 'push'; readonly size: number; readonly pad: number }
  | { readonly kind: 'ack'; readonly at: number }
  | { readonly kind: 'badAck'; readonly below: boolean; readonly by: number }
  | { readonly kind: 'from'; readonly at: number }
  | { readonly kind: 'badFrom'; readonly below: boolean; readonly by: number }
  | { readonly kind: 'retain'; readonly at: number };

const frac = fc.double({ min: 0, max: 1, noNaN: true });
const opArb: fc.Arbitrary<Op> = fc.oneof(
  {
    weight: 5,
    arbitrary: fc.record({
      kind: fc.constant('push' as const),
      // Zero-length pushes included; mostly small so many chunks (and the lazy compaction) get exercised.
      size: fc.oneof({ weight: 1, arbitrary: fc.constant(0) }, { weight: 6, arbitrary: fc.nat(40) }),
      pad: fc.nat(8),
    }),
  },
  { weight: 3, arbitrary: fc.record({ kind: fc.constant('ack' as const), at: frac }) },
  {
    weight: 1,
    arbitrary: fc.record({
      kind: fc.constant('badAck' as const),
      below: fc.boolean(),
      by: fc.integer({ min: 1, max: 50 }),
    }),
  },
  { weight: 3, arbitrary: fc.record({ kind: fc.constant('from' as const), at: frac }) },
  {
    weight: 1,
    arbitrary: fc.record({
      kind: fc.constant('badFrom' as const),
      below: fc.boolean(),
      by: fc.integer({ min: 1, max: 50 }),
    }),
  },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant('retain' as const), at: frac }) },
);

/** Where each pushed buffer sits in the stream, to check that returned chunks are views of it. */
interface Pushed {
  readonly start: number;
  readonly buf: Buffer;
}

class Model {
  readonly start: number;
  /** Every byte pushed, from `start` on. */
  bytes: number[] = [];
  pushed: Pushed[] = [];
  base: number;
  acked: number;
  retainFrom = Number.POSITIVE_INFINITY;

  constructor(start: number) {
    this.start = start;
    this.base = start;
    this.acked = start;
  }

  get end(): number {
    return this.start + this.bytes.length;
  }

  slice(from: number): Buffer {
    return Buffer.from(this.bytes.slice(from - this.start));
  }

  /** What a byte range may drop: acknowledged bytes before the retention point. */
  settle(): void {
    this.base = Math.max(this.base, Math.min(this.acked, this.retainFrom));
  }
}

function pick(lo: number, hi: number, f: number): number {
  return lo + Math.min(hi - lo, Math.floor(f * (hi - lo + 1)));
}

function expectStale(fn: () => unknown, what: string): void {
  assert.throws(
    fn,
    (err: unknown) => {
      assert.ok(err instanceof LazarusError, `${what}: threw a non-LazarusError: ${String(err)}`);
      assert.equal(err.code, ErrorCodes.STALE_OFFSET, `${what}: wrong code`);
      return true;
    },
    what,
  );
}

function checkState(sb: SendBuffer, m: Model, step: number): void {
  assert.equal(sb.base, m.base, `step ${step}: base`);
  assert.equal(sb.acked, m.acked, `step ${step}: acked`);
  assert.equal(sb.end, m.end, `step ${step}: end`);
  assert.equal(sb.size, m.end - m.acked, `step ${step}: size`);
  assert.equal(sb.held, m.end - m.base, `step ${step}: held`);
}

/** from(x) concatenated equals the model's bytes from x, and every chunk is a view of a pushed buffer. */
function checkFrom(sb: SendBuffer, m: Model, at: number, step: number): void {
  const chunks = sb.from(at);
  assert.ok(Array.isArray(chunks), `step ${step}: from(${at}) did not return an array`);
  assert.deepEqual(Buffer.concat(chunks), m.slice(at), `step ${step}: from(${at}) bytes differ`);
  let offset = at;
  for (const [i, chunk] of chunks.entries()) {
    assert.ok(chunk.length > 0, `step ${step}: from(${at}) returned an empty chunk #${i}`);
    const owner = m.pushed.find((p) => offset >= p.start && offset < p.start + p.buf.length);
    assert.ok(owner, `step ${step}: no pushed buffer holds offset ${offset}`);
    // A view, not a copy: same memory, at the position of this offset within the pushed buffer.
    assert.equal(chunk.buffer, owner.buf.buffer, `step ${step}: chunk #${i} at ${offset} is a copy`);
    assert.equal(
      chunk.byteOffset,
      owner.buf.byteOffset + (offset - owner.start),
      `step ${step}: chunk #${i} at ${offset} views the wrong bytes`,
    );
    assert.ok(
      offset + chunk.length <= owner.start + owner.buf.length,
      `step ${step}: chunk #${i} runs past its pushed buffer`,
    );
    offset += chunk.length;
  }
  assert.equal(offset, m.end, `step ${step}: from(${at}) stops at ${offset}, end is ${m.end}`);
}

function run(start: number, ops: readonly Op[]): void {
  const sb = new SendBuffer(start);
  const m = new Model(start);
  let fill = 1;
  checkState(sb, m, -1);
  for (const [step, op] of ops.entries()) {
    switch (op.kind) {
      case 'push': {
        // Each buffer owns its memory (Buffer.alloc never pools) and is a view at a non-zero offset.
        const backing = Buffer.alloc(op.size + op.pad);
        const buf = backing.subarray(op.pad);
        for (let i = 0; i < buf.length; i++) buf[i] = fill++ & 0xff;
        sb.push(buf);
        if (buf.length > 0) m.pushed.push({ start: m.end, buf });
        m.bytes.push(...buf);
        break;
      }
      case 'ack': {
        const at = pick(m.acked, m.end, op.at);
        sb.ack(at);
        m.acked = at;
        m.settle();
        break;
      }
      case 'badAck': {
        const at = op.below ? m.acked - op.by : m.end + op.by;
        expectStale(() => sb.ack(at), `step ${step}: ack(${at}) outside [${m.acked}, ${m.end}]`);
        break;
      }
      case 'from':
        checkFrom(sb, m, pick(m.base, m.end, op.at), step);
        break;
      case 'badFrom': {
        const at = op.below ? m.base - op.by : m.end + op.by;
        expectStale(() => sb.from(at), `step ${step}: from(${at}) outside [${m.base}, ${m.end}]`);
        break;
      }
      case 'retain': {
        // Retention points anywhere from before the start to beyond the end.
        const at = pick(m.start - 5, m.end + 5, op.at);
        sb.retain(at);
        m.retainFrom = at;
        m.settle();
        break;
      }
    }
    checkState(sb, m, step);
  }
  // Whatever happened, every offset still held reads back right (a sample of them when many).
  const step = Math.max(1, Math.floor((m.end - m.base) / 64));
  for (let at = m.base; at <= m.end; at += step) checkFrom(sb, m, at, ops.length);
  checkFrom(sb, m, m.end, ops.length);
}

test('SendBuffer matches an array model under random pushes (incl. empty), acks, from() and retain()', () => {
  fc.assert(
    fc.property(
      fc.oneof(fc.constant(0), fc.nat(1_000_000), fc.constant(2 ** 40)),
      fc.array(opArb, { maxLength: 300, size: 'max' }),
      (start, ops) => run(start, ops),
    ),
    { numRuns: 200 },
  );
});

test('SendBuffer: acks and from() with no retention point', () => {
  // Without retain(), base always follows acked: acknowledged bytes are dropped at once.
  fc.assert(
    fc.property(
      fc.array(
        fc.oneof(
          fc.record({ kind: fc.constant('push' as const), size: fc.nat(300), pad: fc.nat(3) }),
          fc.record({ kind: fc.constant('ack' as const), at: frac }),
          fc.record({ kind: fc.constant('from' as const), at: frac }),
        ),
        { maxLength: 400, size: 'max' },
      ),
      (ops) => {
        const sb = new SendBuffer();
        run(0, ops);
        // And the independent instance agrees that base === acked throughout.
        let end = 0;
        for (const op of ops) {
          if (op.kind === 'push') {
            sb.push(Buffer.alloc(op.size));
            end += op.size;
          } else if (op.kind === 'ack') {
            sb.ack(pick(sb.acked, end, op.at));
          }
          assert.equal(sb.base, sb.acked, 'base must follow acked when nothing is retained');
        }
      },
    ),
    { numRuns: 50 },
  );
});

test('SendBuffer: a failed ack or from() changes nothing', () => {
  const sb = new SendBuffer(100);
  const a = Buffer.from('hello ');
  const b = Buffer.from('world');
  sb.push(a);
  sb.push(b);
  sb.ack(103);
  expectStale(() => sb.ack(102), 'ack below acked');
  expectStale(() => sb.ack(112), 'ack beyond end');
  expectStale(() => sb.from(102), 'from below base');
  expectStale(() => sb.from(112), 'from beyond end');
  assert.equal(sb.acked, 103, 'acked unchanged');
  assert.equal(sb.base, 103, 'base unchanged');
  assert.equal(sb.end, 111, 'end unchanged');
  assert.equal(Buffer.concat(sb.from(103)).toString(), 'lo world', 'held bytes unchanged');
  assert.deepEqual(sb.from(111), [], 'from(end) is empty');
  // Views, not copies: a change to a written buffer shows through.
  b[0] = 'W'.charCodeAt(0);
  assert.equal(Buffer.concat(sb.from(103)).toString(), 'lo World', 'from() must return views');
});
