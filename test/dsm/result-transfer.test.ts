import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { DSM_MAX_FRAME_SIZE, decodeMessage, encodeMessage, MAX_BATCH_BYTES } from '../../src/dsm/messages.ts';
import { ResultAssembler, resultChunks } from '../../src/dsm/result-transfer.ts';
import { ErrorCodes, LazarusError } from '../../src/wire/errors.ts';

/** Encodes and decodes a message the way it crosses the mesh (5-byte frame header skipped). */
function wire<T extends Parameters<typeof encodeMessage>[0]>(msg: T): T {
  const frame = encodeMessage(msg);
  assert.ok(frame.length <= DSM_MAX_FRAME_SIZE, `frame of ${frame.length} bytes is too large`);
  return decodeMessage(frame[4]!, frame.subarray(5)) as T;
}

describe("node 0's result to the supervisor (RESULT chunks)", () => {
  test('a result larger than a frame goes in chunks and comes back bit for bit, with its time', () => {
    const result = Float64Array.from({ length: 300_000 }, (_, i) => Math.sin(i) * 1e6);
    const chunks = resultChunks({ result, ms: 123.456 });
    assert.ok(chunks.length === Math.ceil(result.byteLength / MAX_BATCH_BYTES), 'one chunk per batch');
    const a = new ResultAssembler();
    for (const c of chunks) a.add(wire(c));
    const out = a.outcome();
    assert.ok(out?.result instanceof Float64Array, 'a Float64Array again');
    assert.deepEqual(out.result, result);
    assert.equal(out.ms, 123.456);
  });

  test('a restarted node 0 sends again from the start: the last result wins; incomplete is undefined', () => {
    const a = new ResultAssembler();
    const first = resultChunks({ result: Uint32Array.from({ length: 400_000 }, (_, i) => i), ms: 1 });
    a.add(wire(first[0]!));
    assert.equal(a.outcome(), undefined, 'not all chunks in yet');
    const again = Int32Array.from([1, -2, 3]);
    for (const c of resultChunks({ result: again, ms: 2 })) a.add(wire(c));
    assert.deepEqual(a.outcome(), { result: again, ms: 2 });
    const none = new ResultAssembler();
    for (const c of resultChunks({ result: undefined, ms: 3 })) none.add(wire(c));
    assert.deepEqual(none.outcome(), { result: undefined, ms: 3 });
  });

  test('chunks beyond the result or of an unknown kind are refused with a typed error', () => {
    const a = new ResultAssembler();
    const bad = (m: Parameters<ResultAssembler['add']>[0]) =>
      assert.throws(
        () => a.add(m),
        (e: unknown) => e instanceof LazarusError && e.code === ErrorCodes.MALFORMED_FRAME,
        'MALFORMED_FRAME',
      );
    bad({ type: 'result', kind: 9, ms: 0, total: 8, offset: 0, data: new Uint8Array(8) });
    bad({ type: 'result', kind: 1, ms: 0, total: 12, offset: 0, data: new Uint8Array(12) });
    bad({ type: 'result', kind: 1, ms: 0, total: 8, offset: 4, data: new Uint8Array(8) });
  });
});
