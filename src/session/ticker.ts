/**
 * One timer per process drives keepalive for every connection, instead of a timer per connection:
 * ten thousand idle sessions cost one interval, not ten thousand.
 */

interface Tickable {
  tick(now: number): void;
}

class Ticker {
  readonly #members = new Set<Tickable>();
  #timer: NodeJS.Timeout | undefined;
  #period = Number.POSITIVE_INFINITY;

  /** Registers `member` to be ticked at least every `interval / 2` ms. */
  add(member: Tickable, interval: number): void {
    this.#members.add(member);
    const period = Math.max(5, Math.min(1000, Math.floor(interval / 2)));
    if (period < this.#period || !this.#timer) {
      this.#period = Math.min(period, this.#period);
      if (this.#timer) clearInterval(this.#timer);
      this.#timer = setInterval(() => this.#tick(), this.#period).unref();
    }
  }

  delete(member: Tickable): void {
    this.#members.delete(member);
    if (this.#members.size === 0 && this.#timer) {
      clearInterval(this.#timer);
      this.#timer = undefined;
      this.#period = Number.POSITIVE_INFINITY;
    }
  }

  #tick(): void {
    const now = Date.now();
    for (const member of this.#members) member.tick(now);
  }
}

export const keepaliveTicker = new Ticker();
