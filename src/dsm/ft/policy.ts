/**
 * When a node checkpoints: at one of its app's safe points, chosen by the node alone. Either every
 * `everySafePoints`-th safe point (shifted by the node id, so nodes do not all checkpoint at the same
 * barrier), or once `intervalMs` have passed since the last checkpoint; whichever comes first.
 */
export interface CheckpointPolicy {
  readonly everySafePoints?: number;
  readonly intervalMs?: number;
  /**
   * The app waits at the safe point until the checkpoint is durable (default: only for the
   * snapshot; the file is written in the background). Waiting makes checkpoint moments depend on
   * the program alone, not on disk speed: tests use it to assert on retention.
   */
  readonly wait?: boolean;
}

export class CheckpointClock {
  readonly #node: number;
  readonly #policy: CheckpointPolicy;
  #count = 0;
  /** Time of the last checkpoint, or of the first safe point (start-up is not work to lose). */
  #last: number | undefined;
  #forced = false;
  /** The forced flag shared with another thread's clock of the same node (word 0), if any. */
  readonly #shared: Int32Array | undefined;

  /**
   * `shared`: a one-word flag in shared memory, so that the main thread can force the next safe
   * point while the app thread's clock (given the same flag) decides at each safe point.
   */
  constructor(node: number, policy: CheckpointPolicy, shared?: SharedArrayBuffer) {
    this.#node = node;
    this.#policy = policy;
    this.#shared = shared ? new Int32Array(shared, 0, 1) : undefined;
  }

  get wait(): boolean {
    return this.#policy.wait === true;
  }

  /** The next safe point checkpoints whatever the policy says (a peer recovered: see docs). */
  force(): void {
    if (this.#shared) Atomics.store(this.#shared, 0, 1);
    else this.#forced = true;
  }

  /** Called at every safe point; true when this one should be a checkpoint. */
  due(now = performance.now()): boolean {
    this.#count++;
    this.#last ??= now;
    const { everySafePoints: every, intervalMs } = this.#policy;
    const byCount = every !== undefined && every > 0 && (this.#count + this.#node) % every === 0;
    const byTime = intervalMs !== undefined && now - this.#last >= intervalMs;
    const forced = this.#shared ? Atomics.exchange(this.#shared, 0, 0) === 1 : this.#forced;
    if (!(byCount || byTime || forced)) return false;
    this.#forced = false;
    this.#last = now;
    return true;
  }
}
