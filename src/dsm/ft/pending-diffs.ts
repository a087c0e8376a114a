import type { PageData } from '../messages.ts';
import type { VectorTime } from '../vector-time.ts';

export interface PendingDiff {
  readonly writer: number;
  readonly seq: number;
  readonly time: VectorTime;
  /** Every batch of the interval's diffs for this home (big intervals travel in several). */
  readonly diffs: PageData[];
  /** Request ids of the batches, to take each once. */
  readonly reqs: Set<number>;
}

/**
 * Diffs a restarted home got back from the writers' logs. They are applied only when the home
 * re-learns their interval (or when it catches up), never earlier: a diff from later in the run
 * would overwrite words the home's re-execution still has to read or write first.
 */
export class PendingDiffs {
  readonly #byWriter = new Map<number, Map<number, PendingDiff>>();

  add(writer: number, seq: number, time: VectorTime, req: number, diffs: readonly PageData[]): void {
    const m = this.#byWriter.get(writer) ?? new Map<number, PendingDiff>();
    this.#byWriter.set(writer, m);
    const d = m.get(seq) ?? { writer, seq, time, diffs: [], reqs: new Set<number>() };
    m.set(seq, d);
    if (d.reqs.has(req)) return;
    d.reqs.add(req);
    d.diffs.push(...diffs);
  }

  get size(): number {
    let n = 0;
    for (const m of this.#byWriter.values()) n += m.size;
    return n;
  }

  /**
   * Removes and returns the diffs `covered` selects, in an order consistent with happens-before:
   * if interval a precedes b, b's writer had seen a, so b's vector time sums to more than a's.
   */
  take(covered: (writer: number, seq: number) => boolean): PendingDiff[] {
    const out: PendingDiff[] = [];
    for (const [writer, m] of this.#byWriter) {
      for (const [seq, d] of m) {
        if (!covered(writer, seq)) continue;
        out.push(d);
        m.delete(seq);
      }
    }
    return out.sort((a, b) => sum(a.time) - sum(b.time) || a.writer - b.writer || a.seq - b.seq);
  }
}

function sum(t: VectorTime): number {
  let s = 0;
  for (const v of t) s += v;
  return s;
}
