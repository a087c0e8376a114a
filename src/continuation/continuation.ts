import { createError, ErrorCodes } from '../wire/errors.ts';
import { FieldReader, FieldWriter } from '../wire/fields.ts';

/**
 * A session's continuation: everything another server needs to carry the session on, pulled from
 * the owner only when the client migrates. The snapshot is the handler's state at its last
 * checkpoint; the input log and the output since then let the new server rebuild the rest by replay.
 *
 *   input:  ... checkpoint.inputOffset | inputLog ................| received
 *   output: ... outputStart ... checkpoint.outputOffset | ........| outputStart + output.length
 */
export interface Continuation {
  readonly sessionId: Buffer;
  /** Epoch the new owner takes: the old owner's plus one. */
  readonly epoch: number;
  /** Serialized handler state at the checkpoint; undefined: no checkpoint yet (replay from the start). */
  readonly snapshot: Buffer | undefined;
  /** Input consumed by the handler at the checkpoint. */
  readonly inputOffset: number;
  /** Output produced by the handler at the checkpoint. */
  readonly outputOffset: number;
  /** Input received since inputOffset. */
  readonly inputLog: Buffer;
  readonly finReceived: boolean;
  /** Offset of the first byte of `output`: no later than outputOffset nor than what the client acknowledged. */
  readonly outputStart: number;
  /** What the client has acknowledged. */
  readonly acked: number;
  readonly output: Buffer;
  readonly finQueued: boolean;
}

const FORMAT = 1;

/**
 * Encodes a continuation as pieces to write in order: small field buffers around the snapshot and
 * the logs, which are not copied (a large snapshot would otherwise be copied on every hand-over).
 */
export function encodeContinuationParts(c: Continuation): Buffer[] {
  const head = new FieldWriter(32)
    .u8(FORMAT)
    .fixed(c.sessionId)
    .u32(c.epoch)
    .u8(c.snapshot ? 1 : 0);
  if (c.snapshot) head.u32(c.snapshot.length);
  const mid = new FieldWriter(24).u64(c.inputOffset).u64(c.outputOffset).u32(c.inputLog.length);
  const tail = new FieldWriter(24)
    .u8(c.finReceived ? 1 : 0)
    .u64(c.outputStart)
    .u64(c.acked);
  tail.u32(c.output.length);
  const parts = [head.finish(), c.snapshot, mid.finish(), c.inputLog, tail.finish(), c.output];
  parts.push(Buffer.of(c.finQueued ? 1 : 0));
  return parts.filter((p): p is Buffer => p !== undefined && p.length > 0);
}

/** The continuation in one buffer (see encodeContinuationParts). */
export function encodeContinuation(c: Continuation): Buffer {
  return Buffer.concat(encodeContinuationParts(c));
}

/**
 * Decodes and checks a continuation: every offset must be consistent with the others. Large fields
 * stay views of `body`, which must not be reused afterwards.
 */
export function decodeContinuation(body: Buffer): Continuation {
  const r = new FieldReader(body, 'continuation');
  const format = r.u8();
  if (format !== FORMAT)
    throw createError(ErrorCodes.MALFORMED_FRAME, `continuation format ${format} is unknown`);
  const sessionId = Buffer.from(r.fixed(16));
  const epoch = r.u32();
  const hasSnapshot = r.u8();
  const snapshot = hasSnapshot === 1 ? own(r.bytes32()) : undefined;
  if (hasSnapshot > 1) throw createError(ErrorCodes.MALFORMED_FRAME, 'continuation: bad snapshot flag');
  const inputOffset = r.u64();
  const outputOffset = r.u64();
  const inputLog = own(r.bytes32());
  const finReceived = flag(r);
  const outputStart = r.u64();
  const acked = r.u64();
  const output = own(r.bytes32());
  const finQueued = flag(r);
  r.end();
  return checkContinuation({
    sessionId,
    epoch,
    snapshot,
    inputOffset,
    outputOffset,
    inputLog,
    finReceived,
    outputStart,
    acked,
    output,
    finQueued,
  });
}

/** Throws unless the continuation's offsets agree: the output log must start at or before the checkpoint. */
export function checkContinuation(c: Continuation): Continuation {
  const outputEnd = c.outputStart + c.output.length;
  if (!Number.isSafeInteger(outputEnd) || !Number.isSafeInteger(c.inputOffset + c.inputLog.length)) {
    throw createError(ErrorCodes.MALFORMED_FRAME, 'continuation: offsets overflow');
  }
  if (
    c.outputStart > c.outputOffset ||
    c.outputOffset > outputEnd ||
    c.acked < c.outputStart ||
    c.acked > outputEnd
  ) {
    throw createError(
      ErrorCodes.MALFORMED_FRAME,
      `continuation: output offsets are inconsistent (start ${c.outputStart}, checkpoint ${c.outputOffset}, acked ${c.acked}, end ${outputEnd})`,
    );
  }
  return c;
}

/**
 * A field of the frame body, kept as a view when it is most of the memory behind it (a large snapshot
 * is not copied again), copied otherwise (a small one must not pin a whole socket chunk).
 */
function own(field: Buffer): Buffer {
  return field.length * 2 >= field.buffer.byteLength ? field : Buffer.from(field);
}

function flag(r: FieldReader): boolean {
  const v = r.u8();
  if (v > 1) throw createError(ErrorCodes.MALFORMED_FRAME, 'continuation: bad flag');
  return v === 1;
}
