/**
 * The input a server session received since its last checkpoint, kept by reference. Replaying it
 * through a restored handler rebuilds everything the handler did after the checkpoint.
 */
export class InputLog {
  #chunks: Buffer[] = [];
  /** Stream offset of the first logged byte. */
  #start: number;
  #size = 0;

  constructor(start = 0) {
    this.#start = start;
  }

  get start(): number {
    return this.#start;
  }

  get size(): number {
    return this.#size;
  }

  append(chunk: Buffer): void {
    this.#chunks.push(chunk);
    this.#size += chunk.length;
  }

  /** Forgets input before `offset` (a checkpoint covers it). */
  trimTo(offset: number): void {
    let drop = offset - this.#start;
    if (drop <= 0) return;
    if (drop > this.#size)
      throw new RangeError(`cannot trim input log to ${offset}: it ends at ${this.#start + this.#size}`);
    let i = 0;
    while (drop > 0) {
      const chunk = this.#chunks[i]!;
      if (chunk.length <= drop) {
        drop -= chunk.length;
        this.#start += chunk.length;
        this.#size -= chunk.length;
        i++;
      } else {
        this.#chunks[i] = chunk.subarray(drop);
        this.#start += drop;
        this.#size -= drop;
        drop = 0;
      }
    }
    this.#chunks = this.#chunks.slice(i);
  }

  chunks(): readonly Buffer[] {
    return this.#chunks;
  }
}
