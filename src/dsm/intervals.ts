import { createError, ErrorCodes } from '../wire/errors.ts';
import type { VectorTime } from './vector-time.ts';

/**
 * An interval is what a node wrote between two synchronisation points: its write notices are the
 * pages it dirtied. Node j's intervals are numbered 1, 2, ... (seq); entry j of a vector time counts
 * how many of them a node has seen.
 */
export interface Interval {
  readonly node: number;
  readonly seq: number;
  readonly pages: Uint32Array;
}

/**
 * Every interval this node knows, per creating node, as a contiguous prefix; the lengths are the
 * node's vector time. Intervals are kept until issue-5 garbage collection (LLT) trims them.
 */
export class IntervalLog {
  readonly #byNode: Interval[][];

  constructor(nodes: number) {
    this.#byNode = Array.from({ length: nodes }, () => []);
  }

  get nodes(): number {
    return this.#byNode.length;
  }

  time(): VectorTime {
    return Uint32Array.from(this.#byNode, (list) => list.length);
  }

  known(node: number): number {
    return this.#list(node).length;
  }

  /**
   * Adds intervals (any order across nodes), ignoring those already known; returns the new ones.
   * A gap (seq beyond the next expected) is a protocol error: notices always travel as whole suffixes.
   */
  addAll(intervals: readonly Interval[]): Interval[] {
    const sorted = [...intervals].sort((a, b) => a.node - b.node || a.seq - b.seq);
    const added: Interval[] = [];
    for (const iv of sorted) {
      const list = this.#list(iv.node);
      if (iv.seq <= list.length) continue;
      if (iv.seq !== list.length + 1) {
        throw createError(
          ErrorCodes.PROTOCOL,
          `interval ${iv.node}:${iv.seq} arrived before ${iv.node}:${list.length + 1}`,
        );
      }
      list.push(iv);
      added.push(iv);
    }
    return added;
  }

  /** Appends this node's own next interval. */
  append(node: number, pages: Uint32Array): Interval {
    const list = this.#list(node);
    const iv = { node, seq: list.length + 1, pages };
    list.push(iv);
    return iv;
  }

  /** The intervals a holder of `time` has not seen. */
  since(time: VectorTime): Interval[] {
    const out: Interval[] = [];
    this.#byNode.forEach((list, node) => {
      for (let s = time[node] ?? 0; s < list.length; s++) out.push(list[s]!);
    });
    return out;
  }

  #list(node: number): Interval[] {
    const list = this.#byNode[node];
    if (!list)
      throw createError(ErrorCodes.DSM_OUT_OF_RANGE, `node ${node} outside 0..${this.#byNode.length - 1}`);
    return list;
  }
}
