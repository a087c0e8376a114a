import { SeededRandom } from '../../faults/random.ts';

/** The server's transform of the stream: chunk-independent, so either side can apply it to any split. */
export function transform(chunk: Buffer): Buffer {
  const out = Buffer.allocUnsafe(chunk.length);
  for (let i = 0; i < chunk.length; i++) out[i] = chunk[i]! ^ 0x5c;
  return out;
}

const POOL_SIZE = 1 << 20;
const MAX_WRITE = 64 * 1024;

/** One write of the stream, as sent and as it must come back. */
export interface Piece {
  readonly plain: Buffer;
  readonly transformed: Buffer;
}

/**
 * A client's deterministic pseudo-random stream: writes of random sizes (many tiny, most large) cut
 * from a seeded pool at random offsets. Slicing a precomputed pool (and its transform) keeps the
 * generator cheap enough not to be the bottleneck, and pieces are never mutated, so the session may
 * keep them for retransmission.
 */
export class DemoStream {
  readonly #random: SeededRandom;
  readonly #pool: Buffer;
  readonly #transformed: Buffer;

  constructor(seed: number) {
    this.#random = new SeededRandom(seed);
    this.#pool = this.#random.bytes(POOL_SIZE);
    this.#transformed = transform(this.#pool);
  }

  /** The next write, at most `limit` bytes. */
  next(limit: number): Piece {
    const r = this.#random;
    const size = Math.min(limit, r.next() < 0.3 ? r.int(1, 512) : r.int(513, MAX_WRITE));
    const at = r.int(0, POOL_SIZE - size);
    return {
      plain: this.#pool.subarray(at, at + size),
      transformed: this.#transformed.subarray(at, at + size),
    };
  }
}
