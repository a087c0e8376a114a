import { createError, ErrorCodes } from '../wire/errors.ts';
import type { DsmResult } from './app.ts';
import type { WorkerOutcome } from './bridge.ts';
import { type ControlMessage, MAX_BATCH_BYTES } from './messages.ts';

/**
 * Node 0's result travelling to a coordinator that runs in another process (FT runs: the
 * supervisor computes nothing, node 0 is a child like the others). A result can be far larger than
 * a frame (sor's grid), so it goes in RESULT chunks of at most MAX_BATCH_BYTES, before DONE.
 */

type ResultMsg = Extract<ControlMessage, { type: 'result' }>;

/** RESULT `kind`: index in this list; 0 is "no result". */
const KINDS = [undefined, Float64Array, Int32Array, Uint32Array] as const;

export function resultChunks(outcome: WorkerOutcome): ResultMsg[] {
  const r = outcome.result;
  const kind = r ? KINDS.findIndex((k) => k !== undefined && r instanceof k) : 0;
  if (kind < 0) throw createError(ErrorCodes.DSM_APP_FAILED, 'result is not a Float64/Int32/Uint32Array');
  const bytes = r ? new Uint8Array(r.buffer, r.byteOffset, r.byteLength) : new Uint8Array(0);
  const chunks: ResultMsg[] = [];
  let offset = 0;
  do {
    const data = bytes.subarray(offset, offset + MAX_BATCH_BYTES);
    chunks.push({ type: 'result', kind, ms: outcome.ms, total: bytes.length, offset, data });
    offset += data.length;
  } while (offset < bytes.length);
  return chunks;
}

/**
 * Coordinator side: puts the chunks back together. A restarted node 0 sends its result again from
 * the start; a chunk always overwrites, so the last incarnation's result is the one kept.
 */
export class ResultAssembler {
  #kind = 0;
  #ms = 0;
  #bytes: Uint8Array | undefined;
  #received = 0;

  add(msg: ResultMsg): void {
    const Kind = KINDS[msg.kind];
    if (msg.kind >= KINDS.length || (Kind && msg.total % Kind.BYTES_PER_ELEMENT !== 0)) {
      throw createError(ErrorCodes.MALFORMED_FRAME, `result of kind ${msg.kind} and ${msg.total} bytes`);
    }
    if (msg.offset + msg.data.length > msg.total) {
      throw createError(ErrorCodes.MALFORMED_FRAME, 'result chunk beyond the result');
    }
    if (msg.offset === 0 || !this.#bytes || this.#bytes.length !== msg.total) {
      this.#bytes = new Uint8Array(msg.total);
      this.#received = 0;
    }
    this.#bytes.set(msg.data, msg.offset);
    this.#received += msg.data.length;
    this.#kind = msg.kind;
    this.#ms = msg.ms;
  }

  /** The whole result, once every chunk is in (at DONE); undefined if it is incomplete. */
  outcome(): WorkerOutcome | undefined {
    const bytes = this.#bytes;
    if (!bytes || this.#received !== bytes.length) return undefined;
    const Kind = KINDS[this.#kind];
    const result: DsmResult | undefined = Kind
      ? new Kind(bytes.buffer as ArrayBuffer, 0, bytes.length / Kind.BYTES_PER_ELEMENT)
      : undefined;
    return { result, ms: this.#ms };
  }
}
