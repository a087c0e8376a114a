import { createError, ErrorCodes } from '../wire/errors.ts';
import type { VectorTime } from './vector-time.ts';

/**
 * An interval is what a node wrote between two synchronisation points: its write notices are the
 * pages it dirtied, kept as (first page, count) runs because apps dirty long contiguous stretches.
 * Node j's intervals are numbered 1, 2, ... (seq); entry j of a vector time counts how many of them
 * a node has seen.
 */
export interface Interval {
  readonly node: number;
  readonly seq: number;
  /** Pairs: first page, number of pages. */
  readonly runs: Uint32Array;
}

/** Calls `fn` for every page of (first, count) runs. */
export function forEachPage(runs: Uint32Array, fn: (page: number) => void): void {
  for (let r = 0; r + 1 < runs.length; r += 2) {
    const end = runs[r]! + runs[r + 1]!;
    for (let p = runs[r]!; p < end; p++) fn(p);
  }
}

/** Sorts a page list and compresses it into (first, count) runs. */
export function pageRuns(pages: Uint32Array): Uint32Array {
  const sorted = pages.slice().sort();
  const out: number[] = [];
  for (let i = 0; i < sorted.length; ) {
    const first = sorted[i]!;
    let next = first + 1;
    i++;
    while (i < sorted.length && sorted[i]! <= next) next = Math.max(next, sorted[i++]! + 1);
    out.push(first, next - first);
  }
  return Uint32Array.from(out);
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
  append(node: number, runs: Uint32Array): Interval {
    const list = this.#list(node);
    const iv = { node, seq: list.length + 1, runs };
    list.push(iv);
    return iv;
  }

  /** Every known interval (a checkpoint keeps them: grants and barriers send suffixes of them). */
  all(): Interval[] {
    return this.#byNode.flat();
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
