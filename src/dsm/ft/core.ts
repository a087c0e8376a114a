import type { CkptInfo, CrashPoint, ProtocolMessage } from '../messages.ts';
import type { FtCounters } from '../stats.ts';
import { SenderLog } from './logs.ts';
import { PendingDiffs } from './pending-diffs.ts';
import type { CheckpointPolicy } from './policy.ts';
import { ReplayStore } from './replay.ts';
import { CkptTable, initialCkpt } from './trimming.ts';

/** How much recovery state is garbage-collected: nothing, logs (LLT), logs and checkpoints (CGC). */
export type GcMode = 'none' | 'llt' | 'llt+cgc';

const GC_MODES: readonly GcMode[] = ['none', 'llt', 'llt+cgc'];

export function isGcMode(value: unknown): value is GcMode {
  return GC_MODES.includes(value as GcMode);
}

/** FT settings, the same on every node (they travel in START). */
export interface FtSettings {
  /** Checkpoint directory (each node writes its own files there, on its own host). */
  readonly dir: string;
  readonly policy: CheckpointPolicy;
  readonly gc: GcMode;
}

/**
 * With FT on, mesh id `nodes` (one past the last compute node) is the supervisor: the launcher's own
 * process, which computes nothing and runs the coordinator, the barrier manager and the manager of
 * every lock. It is the one component assumed not to fail (as a job scheduler is), so no recovery
 * ever has to rebuild a manager's queue, and every compute node 0..nodes-1 can fail and recover.
 */
export function supervisorOf(nodes: number): number {
  return nodes;
}

/**
 * The lowest id of a node that runs in its own process: 0 with FT (the coordinator is then the
 * supervisor, and node 0 a child like the others), 1 without (the coordinator is node 0).
 */
export function firstChildId(faultTolerant: boolean): number {
  return faultTolerant ? 0 : 1;
}

/**
 * One node's fault-tolerance state, driven by the protocol (protocol.ts) at the points where it
 * sends, receives and synchronises. Plain data; the decisions live in the protocol.
 */
export class FtCore {
  readonly me: number;
  readonly nodes: number;
  readonly gc: GcMode;
  /** The supervisor's mesh id (it never re-executes: nothing sent to it is logged). */
  readonly supervisor: number;
  readonly log: SenderLog;
  table: CkptTable;
  /** Lock requests this node has made (its acquisitions, numbered from 1). */
  acq = 0;
  /**
   * Lock forwards this node has taken, numbered from 1 by the manager: every one up to `fwds`, and
   * those in `fwdsAhead` (a re-execution takes logged forwards in the order of the requests they
   * follow, which for different locks need not be the order they were sent in).
   */
  fwds = 0;
  readonly fwdsAhead = new Set<number>();
  /**
   * Per writer: the last interval whose diffs this home has applied, and which batches (request
   * ids) of it, so re-sent diffs are applied once.
   */
  applied: Uint32Array;
  appliedReqs = new Map<number, Set<number>>();
  /** Manager only: forwards sent to each node, the last request seen from each, each tail's request. */
  readonly fwdSeq: Uint32Array;
  readonly lastAcq: Uint32Array;
  readonly tailAcq = new Map<number, number>();
  /** Highest request id received from each node; manager: barrier arrivals of each node. */
  readonly reqsFrom: Uint32Array;
  readonly arrivalsFrom: Uint32Array;
  /** This node's own barrier arrivals (episode + 1 of the last one). */
  arrivals = 0;
  /** While re-executing: how far the first run got, as the survivors saw it (max over them). */
  readonly crashPoint = { reqs: 0, acq: 0, arrivals: 0, seq: 0 };
  /** Set while this node re-executes after a restart; answers it will ask for again. */
  replay: ReplayStore | undefined;
  /** True until the re-execution first needs a live answer: live requests from peers wait until then. */
  replaying = false;
  readonly pending = new PendingDiffs();
  deferred: { from: number; msg: ProtocolMessage }[] = [];
  /**
   * Page replies this node received since its latest checkpoint, by home. A home logs what it
   * serves, but entries added after its own checkpoint die with it; these copies (views of the
   * received frames, not copies of the bytes) let a restarted home log them again.
   */
  readonly received = new Map<number, Extract<ProtocolMessage, { type: 'page-reply' }>[]>();
  receivedBytes = 0;
  /** This node's latest durable checkpoint position (what it piggybacks). */
  own: CkptInfo;
  readonly counters: FtCounters = {
    checkpointsStarted: 0,
    checkpoints: 0,
    checkpointFailures: 0,
    checkpointBytes: 0,
    checkpointMs: 0,
    checkpointBlockMs: 0,
    lastCheckpointBytes: 0,
    logTrimmed: 0,
    checkpointsCollected: 0,
    replayedAnswers: 0,
    dupsDropped: 0,
    recoveries: 0,
  };
  /** Called after the checkpoint table moved (the checkpointer runs CGC from it). */
  onTableChanged: (() => void) | undefined;

  constructor(me: number, nodes: number, gc: GcMode) {
    this.me = me;
    this.nodes = nodes;
    this.gc = gc;
    this.supervisor = supervisorOf(nodes);
    this.log = new SenderLog(nodes);
    this.table = new CkptTable(nodes);
    this.applied = new Uint32Array(nodes);
    this.fwdSeq = new Uint32Array(nodes);
    this.lastAcq = new Uint32Array(nodes);
    this.reqsFrom = new Uint32Array(nodes);
    this.arrivalsFrom = new Uint32Array(nodes);
    this.own = initialCkpt(nodes);
  }

  /** Merges one survivor's view of how far this node's first run got. */
  sawCrashPoint(seen: CrashPoint): void {
    const c = this.crashPoint;
    c.reqs = Math.max(c.reqs, seen.reqs);
    c.acq = Math.max(c.acq, seen.acq);
    c.arrivals = Math.max(c.arrivals, seen.arrivals);
    c.seq = Math.max(c.seq, seen.seq);
  }

  /** Starts a re-execution: answers will be taken from `store`. */
  startReplay(): ReplayStore {
    this.replay = new ReplayStore();
    this.replaying = true;
    this.counters.recoveries++;
    return this.replay;
  }

  /** Learns checkpoint positions (piggybacked); trims the log when any moved. */
  learn(infos: readonly CkptInfo[]): void {
    let moved = false;
    infos.forEach((info, node) => {
      if (this.table.update(node, info)) moved = true;
    });
    if (moved) this.trim();
  }

  learnOne(node: number, info: CkptInfo): void {
    if (this.table.update(node, info)) this.trim();
  }

  /** LLT: drops log entries no recovery can need any more (nothing with gc 'none'). */
  trim(): void {
    if (this.gc === 'none') return;
    this.counters.logTrimmed += this.log.trim((e) => this.table.needed(e, this.me));
    this.onTableChanged?.();
  }

  keepReceived(home: number, msg: Extract<ProtocolMessage, { type: 'page-reply' }>): void {
    const list = this.received.get(home) ?? [];
    this.received.set(home, list);
    list.push(msg);
    for (const p of msg.pages) this.receivedBytes += p.data.length;
  }

  /** After a checkpoint: replies to requests before `req` are never asked for again. */
  dropReceived(req: number): void {
    for (const [home, list] of this.received) {
      const kept = list.filter((m) => m.req >= req);
      for (const m of list) if (m.req < req) for (const p of m.pages) this.receivedBytes -= p.data.length;
      this.received.set(home, kept);
    }
  }

  /** Records forward `seq`; false when it was taken already (a duplicate). */
  takeFwd(seq: number): boolean {
    if (seq <= this.fwds || this.fwdsAhead.has(seq)) return false;
    this.fwdsAhead.add(seq);
    while (this.fwdsAhead.delete(this.fwds + 1)) this.fwds++;
    return true;
  }

  /** True when the diffs batch (writer, seq, req) has been applied here already. */
  seenDiffs(writer: number, seq: number, req: number): boolean {
    const last = this.applied[writer]!;
    return seq < last || (seq === last && this.appliedReqs.get(writer)?.has(req) === true);
  }

  markDiffs(writer: number, seq: number, reqs: Iterable<number>): void {
    if (seq > this.applied[writer]!) {
      this.applied[writer] = seq;
      this.appliedReqs.set(writer, new Set(reqs));
      return;
    }
    const set = this.appliedReqs.get(writer) ?? new Set<number>();
    this.appliedReqs.set(writer, set);
    for (const r of reqs) set.add(r);
  }

  /** Messages to the supervisor are never needed again (it never re-executes): not logged. */
  shouldLog(to: number): boolean {
    return to !== this.supervisor && to !== this.me;
  }
}
