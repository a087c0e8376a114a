import type { CkptInfo } from '../messages.ts';
import type { VectorTime } from '../vector-time.ts';
import type { LogEntry, LogKind } from './logs.ts';

/**
 * Lazy log trimming (LLT): which log entries a recovery can still ask for, judged only from the
 * checkpoint positions the protocol piggybacks (CkptInfo on barrier arrivals and releases). A node
 * that fails restarts from its latest durable checkpoint and re-executes from there, so it asks only
 * for what it received after that checkpoint. Safety argument: docs/ft-dsm.md.
 */

export function initialCkpt(nodes: number): CkptInfo {
  // Request ids start at 1; nothing else has happened before the first instruction.
  return { req: 1, episode: 0, acq: 0, fwds: 0, time: new Uint32Array(nodes) };
}

/**
 * True when a node restarted from checkpoint `c` may need entry (`kind`, `key`) sent to it by
 * `writer` (the node holding the log).
 */
export function neededBy(c: CkptInfo, kind: LogKind, key: number, writer: number): boolean {
  switch (kind) {
    // The home learnt interval writer:key before its checkpoint, so it had applied its diffs
    // (diffs are acknowledged before their write notices leave the writer).
    case 'diffs':
      return (c.time[writer] ?? 0) < key;
    // Requests issued before the checkpoint were answered before it (safe points are between calls).
    case 'reply':
      return key >= c.req;
    case 'push':
    case 'release':
      return key >= c.episode;
    case 'grant':
      return key > c.acq;
    case 'fwd':
      return key > c.fwds;
  }
}

/** Latest known checkpoint position of every node; positions only move forward. */
export class CkptTable {
  readonly #infos: CkptInfo[];

  constructor(nodes: number, infos?: readonly CkptInfo[]) {
    this.#infos = infos ? [...infos] : Array.from({ length: nodes }, () => initialCkpt(nodes));
  }

  get(node: number): CkptInfo {
    return this.#infos[node]!;
  }

  all(): readonly CkptInfo[] {
    return this.#infos;
  }

  /** Takes `info` for `node` if it is not older than what is known; returns true when it changed. */
  update(node: number, info: CkptInfo): boolean {
    const cur = this.#infos[node];
    if (!cur || info.time.length !== cur.time.length) return false;
    if (!notOlder(info, cur) || same(info, cur)) return false;
    this.#infos[node] = info;
    return true;
  }

  /** Is `e` (held by `writer`) still needed by the recovery of its destination? */
  needed(e: LogEntry, writer: number): boolean {
    return neededBy(this.get(e.to), e.kind, e.key, writer);
  }
}

function notOlder(a: CkptInfo, b: CkptInfo): boolean {
  return (
    a.req >= b.req && a.episode >= b.episode && a.acq >= b.acq && a.fwds >= b.fwds && covers(a.time, b.time)
  );
}

function same(a: CkptInfo, b: CkptInfo): boolean {
  return notOlder(a, b) && notOlder(b, a);
}

function covers(a: VectorTime, b: VectorTime): boolean {
  for (let i = 0; i < b.length; i++) if ((a[i] ?? 0) < b[i]!) return false;
  return true;
}
