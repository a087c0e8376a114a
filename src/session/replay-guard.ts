/**
 * Admits each early-resume proof at most once. A proof carries the client's clock; one outside
 * [now - window, now + window] is not admitted, so a proof need only be remembered for about two
 * windows. Proofs sent before this server started are not admitted either: a restarted server has
 * forgotten what it admitted before. Not admitting is safe: the client falls back to the
 * challenge-response resume. Memory is bounded by `capacity` (full: nothing new is admitted).
 */
export class ReplayGuard {
  readonly #window: number;
  readonly #capacity: number;
  readonly #startedAt: number;
  /** proof (hex) -> when it may be forgotten; insertion order is roughly expiry order. */
  readonly #seen = new Map<string, number>();

  constructor(window: number, capacity: number, startedAt = Date.now()) {
    this.#window = window;
    this.#capacity = capacity;
    this.#startedAt = startedAt;
  }

  get size(): number {
    return this.#seen.size;
  }

  admit(proof: Uint8Array, sentAt: number, now = Date.now()): boolean {
    if (sentAt < this.#startedAt || Math.abs(now - sentAt) > this.#window) return false;
    this.#forget(now);
    const key = Buffer.from(proof.buffer, proof.byteOffset, proof.byteLength).toString('hex');
    if (this.#seen.has(key) || this.#seen.size >= this.#capacity) return false;
    // After this, `sentAt` is outside the window: a replay is refused by the clock check.
    this.#seen.set(key, sentAt + this.#window);
    return true;
  }

  #forget(now: number): void {
    for (const [key, until] of this.#seen) {
      if (until >= now) return;
      this.#seen.delete(key);
    }
  }
}
