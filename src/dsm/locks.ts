import { createError, ErrorCodes } from '../wire/errors.ts';
import type { LockSnapshot } from './ft/checkpoint-codec.ts';
import type { VectorTime } from './vector-time.ts';

/**
 * Distributed lock queue (as in TreadMarks): the manager of a lock only remembers the last requester
 * (the tail) and forwards each new request to it; the token, with the write notices the next holder
 * lacks, goes straight from releaser to next holder.
 */

/** Manager side: which node asked last. */
export class LockManager {
  readonly #tails = new Map<number, number>();

  /** Returns the node to forward the request to, or undefined when the lock was never taken (grant now). */
  request(lock: number, requester: number): number | undefined {
    const tail = this.#tails.get(lock);
    this.#tails.set(lock, requester);
    return tail;
  }
}

export interface Waiter {
  readonly node: number;
  readonly time: VectorTime;
  /** With FT: the waiter's request number, echoed in the grant so duplicates can be told apart. */
  readonly acq?: number;
}

/** `token`: this node received the lock last and has not passed it on; it may be idle here. */
type Local = { state: 'idle' | 'waiting' | 'held'; token: boolean; next: Waiter | undefined };

/** Holder side: this node's view of the locks it asked for, holds, or still has the token of. */
export class LocalLocks {
  readonly #locks = new Map<number, Local>();

  requested(lock: number): void {
    const l = this.#locks.get(lock) ?? { state: 'idle', token: false, next: undefined };
    if (l.state !== 'idle')
      throw createError(ErrorCodes.INVALID_ARGUMENT, `lock ${lock} is already ${l.state} by this node`);
    l.state = 'waiting';
    this.#locks.set(lock, l);
  }

  granted(lock: number): void {
    const l = this.#locks.get(lock);
    if (l?.state !== 'waiting')
      throw createError(ErrorCodes.PROTOCOL, `grant of lock ${lock} that was not requested`);
    l.state = 'held';
    l.token = true;
  }

  holds(lock: number): boolean {
    return this.#locks.get(lock)?.state === 'held';
  }

  /**
   * A request forwarded by the manager (possibly this node's own). Returns true when the token is
   * idle here and must be granted now; otherwise the waiter is kept for the release.
   */
  forwarded(lock: number, waiter: Waiter): boolean {
    const l = this.#locks.get(lock);
    if (!l || l.next || (l.state === 'idle' && !l.token)) {
      throw createError(ErrorCodes.PROTOCOL, `forwarded request for lock ${lock} this node cannot serve`);
    }
    if (l.token && l.state !== 'held') {
      l.token = false;
      this.#forget(lock, l);
      return true;
    }
    l.next = waiter;
    return false;
  }

  /** Releases a held lock; returns the waiter to pass the token to, if any. */
  released(lock: number): Waiter | undefined {
    const l = this.#locks.get(lock);
    if (l?.state !== 'held')
      throw createError(ErrorCodes.INVALID_ARGUMENT, `lock ${lock} is not held by this node`);
    const next = l.next;
    l.state = 'idle';
    l.next = undefined;
    if (next) {
      l.token = false;
      this.#forget(lock, l);
    }
    return next;
  }

  /** State at a safe point (nothing is 'waiting' there), for a checkpoint. */
  snapshot(): LockSnapshot[] {
    return [...this.#locks].map(([lock, l]) => {
      const base = { lock, held: l.state === 'held', token: l.token };
      return l.next
        ? { ...base, next: { node: l.next.node, acq: l.next.acq ?? 0, time: l.next.time } }
        : base;
    });
  }

  restore(locks: readonly LockSnapshot[]): void {
    this.#locks.clear();
    for (const s of locks) {
      const next = s.next ? { node: s.next.node, time: s.next.time, acq: s.next.acq } : undefined;
      this.#locks.set(s.lock, { state: s.held ? 'held' : 'idle', token: s.token, next });
    }
  }

  #forget(lock: number, l: Local): void {
    if (l.state === 'idle' && !l.token && !l.next) this.#locks.delete(lock);
  }
}
