import { bytesAfter } from '../wire/buffers.ts';
import { createError, ErrorCodes } from '../wire/errors.ts';

/**
 * The bytes a side has sent, kept by reference (never copied) with their stream offsets, so any
 * suffix can be retransmitted after a reconnect. Bytes are dropped once the peer acknowledges them,
 * except from a retention point on: a server keeps the output produced since its last checkpoint,
 * because that output is part of the session's continuation.
 */
export class SendBuffer {
  #chunks: Buffer[] = [];
  /** Index of the first live chunk; the array is compacted lazily so acks cost O(1) amortised. */
  #head = 0;
  /** Offset of the first byte held. */
  #base: number;
  /** Offset the peer has acknowledged. */
  #acked: number;
  /** Offset just after the last byte written. */
  #end: number;
  /** Bytes from here on are held even when acknowledged. */
  #retainFrom = Number.POSITIVE_INFINITY;

  /** `start`: the stream offset of the first byte this buffer will hold (non-zero for a restored session). */
  constructor(start = 0) {
    this.#base = start;
    this.#acked = start;
    this.#end = start;
  }

  get base(): number {
    return this.#base;
  }

  get acked(): number {
    return this.#acked;
  }

  get end(): number {
    return this.#end;
  }

  /** Bytes sent and not acknowledged. */
  get size(): number {
    return this.#end - this.#acked;
  }

  /** Bytes held: unacknowledged plus retained. */
  get held(): number {
    return this.#end - this.#base;
  }

  push(chunk: Buffer): void {
    if (chunk.length === 0) return;
    this.#chunks.push(chunk);
    this.#end += chunk.length;
  }

  /** Records a cumulative acknowledgement and drops what is no longer needed. */
  ack(offset: number): void {
    if (offset < this.#acked || offset > this.#end) {
      throw createError(
        ErrorCodes.STALE_OFFSET,
        `acknowledged offset ${offset} is outside the unacknowledged range [${this.#acked}, ${this.#end}]`,
      );
    }
    this.#acked = offset;
    this.#drop(Math.min(offset, this.#retainFrom));
  }

  /** Holds bytes from `offset` on even once acknowledged (earlier bytes go when acknowledged). */
  retain(offset: number): void {
    this.#retainFrom = offset;
    this.#drop(Math.min(this.#acked, offset));
  }

  /** The held bytes from `offset` on, as views of the written buffers. */
  from(offset: number): Buffer[] {
    if (offset < this.#base || offset > this.#end) {
      throw createError(ErrorCodes.STALE_OFFSET, `offset ${offset} is outside [${this.#base}, ${this.#end}]`);
    }
    return bytesAfter(this.#chunks, offset - this.#base, this.#head);
  }

  #drop(upTo: number): void {
    let drop = upTo - this.#base;
    while (drop > 0) {
      const first = this.#chunks[this.#head]!;
      if (first.length <= drop) {
        drop -= first.length;
        this.#base += first.length;
        this.#chunks[this.#head] = EMPTY;
        this.#head++;
      } else {
        this.#chunks[this.#head] = first.subarray(drop);
        this.#base += drop;
        drop = 0;
      }
    }
    if (this.#head > 64 && this.#head * 2 > this.#chunks.length) {
      this.#chunks = this.#chunks.slice(this.#head);
      this.#head = 0;
    }
  }
}

const EMPTY = Buffer.alloc(0);
