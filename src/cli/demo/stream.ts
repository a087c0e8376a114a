import { createHash } from 'node:crypto';
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

/** Size of the blocks ChainDigest folds into its chain. */
const BLOCK = 64 * 1024;

/** A ChainDigest's whole state: small and structured-cloneable, so it fits in a checkpoint. */
export interface DigestState {
  readonly chain: Uint8Array;
  readonly tail: Uint8Array;
}

/**
 * sha-256 chained over 64 KiB blocks: chain = sha256(chain || block), and the digest is
 * sha256(chain || tail). A plain sha-256 cannot be checkpointed (node:crypto cannot export a hash's
 * state), and the server's digest of a session's input must survive every migration; this one is
 * independent of how the stream was cut into chunks, so client and servers compute the same value.
 */
export class ChainDigest {
  #chain: Buffer;
  #tail: Buffer;

  constructor(state?: DigestState) {
    this.#chain = state ? Buffer.from(state.chain) : Buffer.alloc(32);
    this.#tail = state ? Buffer.from(state.tail) : Buffer.alloc(0);
  }

  /** Adds bytes; true when at least one block was folded into the chain (a good moment to checkpoint). */
  update(chunk: Buffer): boolean {
    let data = this.#tail.length > 0 ? Buffer.concat([this.#tail, chunk]) : chunk;
    let folded = false;
    while (data.length >= BLOCK) {
      this.#chain = createHash('sha256').update(this.#chain).update(data.subarray(0, BLOCK)).digest();
      data = data.subarray(BLOCK);
      folded = true;
    }
    // A copy: the chunk may be a view of a socket buffer that gets reused.
    this.#tail = Buffer.from(data);
    return folded;
  }

  get state(): DigestState {
    return { chain: this.#chain, tail: this.#tail };
  }

  digest(): Buffer {
    return createHash('sha256').update(this.#chain).update(this.#tail).digest();
  }
}
