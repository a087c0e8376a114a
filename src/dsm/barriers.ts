import { createError, ErrorCodes } from '../wire/errors.ts';
import type { Interval } from './intervals.ts';
import type { VectorTime } from './vector-time.ts';

export interface Arrival {
  readonly node: number;
  readonly time: VectorTime;
  readonly intervals: readonly Interval[];
  /** Pages (runs) the node wants pushed after the barrier. */
  readonly want: Uint32Array;
}

/**
 * The barrier manager's bookkeeping: arrivals of the current episode are only stored, never merged
 * into the manager's own state, until every node has arrived (the manager's own app may still be
 * writing pages that a merged notice would invalidate).
 */
export class BarrierManager {
  readonly #nodes: number;
  #episode = 0;
  #arrivals = new Map<number, Arrival>();

  constructor(nodes: number) {
    this.#nodes = nodes;
  }

  /** The episode now gathering arrivals. */
  get episode(): number {
    return this.#episode;
  }

  hasArrived(node: number): boolean {
    return this.#arrivals.has(node);
  }

  /** Records an arrival; returns all arrivals once the last node is in, and opens the next episode. */
  arrive(episode: number, arrival: Arrival): Arrival[] | undefined {
    if (episode !== this.#episode) {
      throw createError(
        ErrorCodes.PROTOCOL,
        `node ${arrival.node} arrived at barrier ${episode}, expected ${this.#episode}`,
      );
    }
    if (this.#arrivals.has(arrival.node)) {
      throw createError(ErrorCodes.PROTOCOL, `node ${arrival.node} arrived twice at barrier ${episode}`);
    }
    this.#arrivals.set(arrival.node, arrival);
    if (this.#arrivals.size < this.#nodes) return undefined;
    const all = [...this.#arrivals.values()];
    this.#arrivals = new Map();
    this.#episode++;
    return all;
  }
}
