import { createError, ErrorCodes } from '../wire/errors.ts';

/**
 * The bytes a side has sent and the peer has not yet acknowledged, kept by reference (never copied)
 * with their stream offsets, so any suffix can be retransmitted after a reconnect.
 */
export class SendBuffer {
  #chunks: Buffer[] = [];
  /** Index of the first live chunk; the array is compacted lazily so acks cost O(1) amortised. */
  #head = 0;
  /** Offset of the first unacknowledged byte. */
  #base = 0;
  /** Offset just after the last byte written. */
  #end = 0;

  get base(): number {
    return this.#base;
  }

  get end(): number {
    return this.#end;
  }

  /** Unacknowledged bytes held. */
  get size(): number {
    return this.#end - this.#base;
  }

  push(chunk: Buffer): void {
    if (chunk.length === 0) return;
    this.#chunks.push(chunk);
    this.#end += chunk.length;
  }

  /** Drops everything before `offset` (a cumulative acknowledgement). */
  ack(offset: number): void {
    if (offset < this.#base || offset > this.#end) {
      throw createError(
        ErrorCodes.STALE_OFFSET,
        `acknowledged offset ${offset} is outside the unacknowledged range [${this.#base}, ${this.#end}]`,
      );
    }
    let drop = offset - this.#base;
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

  /** The held bytes from `offset` on, as views of the written buffers. */
  from(offset: number): Buffer[] {
    if (offset < this.#base || offset > this.#end) {
      throw createError(ErrorCodes.STALE_OFFSET, `offset ${offset} is outside [${this.#base}, ${this.#end}]`);
    }
    const out: Buffer[] = [];
    let skip = offset - this.#base;
    for (let i = this.#head; i < this.#chunks.length; i++) {
      const chunk = this.#chunks[i]!;
      if (skip >= chunk.length) {
        skip -= chunk.length;
        continue;
      }
      out.push(skip > 0 ? chunk.subarray(skip) : chunk);
      skip = 0;
    }
    return out;
  }
}

const EMPTY = Buffer.alloc(0);
