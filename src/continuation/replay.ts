import { createError, ErrorCodes } from '../wire/errors.ts';

/**
 * Compares what a restored handler writes while replaying with the output the old owner logged.
 * Output that matches is swallowed (the client has it, or gets it from the log); once the log is
 * matched in full, output is live. The first differing byte is a divergence: the handler is not
 * deterministic, and going on would corrupt the client's stream.
 */
export class OutputComparator {
  readonly #expected: Buffer;
  #matched = 0;

  constructor(expected: Buffer) {
    this.#expected = expected;
  }

  get done(): boolean {
    return this.#matched === this.#expected.length;
  }

  /** Bytes still expected. */
  get remaining(): number {
    return this.#expected.length - this.#matched;
  }

  /** Consumes replayed output; returns the part past the log (live output). Throws on divergence. */
  take(chunk: Buffer): Buffer | undefined {
    const n = Math.min(chunk.length, this.remaining);
    if (n > 0) {
      const expected = this.#expected.subarray(this.#matched, this.#matched + n);
      if (!expected.equals(chunk.subarray(0, n))) {
        let at = 0;
        while (expected[at] === chunk[at]) at++;
        throw createError(
          ErrorCodes.DIVERGENCE,
          `replayed output differs from the logged output at byte ${this.#matched + at} after the checkpoint`,
        );
      }
      this.#matched += n;
    }
    return n < chunk.length ? chunk.subarray(n) : undefined;
  }
}
