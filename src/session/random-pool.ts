import { randomBytes, randomFill } from 'node:crypto';

/**
 * Random bytes for nonces and session ids, handed out from a block that is refilled in the background:
 * a connection's setup then costs a slice, not a call into the CSPRNG (tens of microseconds on a cold
 * CPU, on the path of every accept and migration). Every byte is handed out once. When the spare block
 * is not ready yet, bytes come straight from randomBytes.
 */
export class RandomPool {
  readonly #blockSize: number;
  #block: Buffer;
  #offset = 0;
  #spare: Buffer | undefined;
  #filling = false;

  constructor(blockSize = 16 * 1024) {
    this.#blockSize = blockSize;
    this.#block = randomBytes(blockSize);
  }

  /** `n` fresh random bytes (a view: do not write to it). */
  take(n: number): Buffer {
    if (this.#offset + n > this.#block.length) {
      if (!this.#spare || n > this.#blockSize) return randomBytes(n);
      this.#block = this.#spare;
      this.#spare = undefined;
      this.#offset = 0;
    }
    const out = this.#block.subarray(this.#offset, this.#offset + n);
    this.#offset += n;
    if (!this.#spare && !this.#filling) this.#fill();
    return out;
  }

  #fill(): void {
    this.#filling = true;
    randomFill(Buffer.allocUnsafe(this.#blockSize), (err, buf) => {
      this.#filling = false;
      if (!err) this.#spare = buf;
    });
  }
}

/** The process's pool for session protocol nonces and ids. */
export const randomPool = new RandomPool();
