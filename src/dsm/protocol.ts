import { createError, ErrorCodes, isLazarusError, type LazarusError } from '../wire/errors.ts';
import { type Arrival, BarrierManager } from './barriers.ts';
import { applyDiff, validateDiff } from './diff.ts';
import type { LockSnapshot, ProtocolSnapshot } from './ft/checkpoint-codec.ts';
import type { FtCore } from './ft/core.ts';
import { forEachPage, type Interval, IntervalLog, pageRuns } from './intervals.ts';
import { LocalLocks, LockManager } from './locks.ts';
import { MAX_BATCH_BYTES, type PageData, type ProtocolMessage, type PushOrder } from './messages.ts';
import { PageState, type PageTable } from './pages.ts';
import { type DsmStats, emptyStats, publish } from './stats.ts';
import type { VectorTime } from './vector-time.ts';

/**
 * Sends protocol messages to other nodes; sockets live behind it (or a test's in-memory network).
 * `send` must serialise the message before returning: page data is passed as views of live pages.
 * It may return the encoded frame, which must then never be written to again: the sender's log
 * (FT) keeps page data as views of it instead of copying the pages once more.
 */
export interface Transport {
  send(to: number, msg: ProtocolMessage): Uint8Array | undefined;
}

/**
 * Seams for fault tolerance (issue 5): everything a re-executing node would need from its peers goes
 * through `onLogged` just before it is sent (diffs to homes, lock grants, barrier releases), and the
 * node's own safe points are reported, so sender-side logging and checkpoints attach without
 * touching the protocol.
 */
export interface DsmHooks {
  onLogged?(to: number, msg: ProtocolMessage): void;
  onIntervalClosed?(interval: Interval): void;
  onBarrierPassed?(episode: number, time: VectorTime): void;
}

/** What the app wrote since the last synchronisation: every dirtied page, and diffs of the non-home ones. */
export interface Flush {
  readonly pages: Uint32Array;
  readonly diffs: readonly PageData[];
}

/** Locks are numbered 0..MAX_LOCKS-1; manager of lock l is node l % nodes (FT: the supervisor). */
export const MAX_LOCKS = 1 << 20;

export interface DsmProtocolOptions {
  readonly me: number;
  readonly nodes: number;
  readonly pages: PageTable;
  readonly transport: Transport;
  readonly hooks?: DsmHooks;
  /** Fault tolerance on: logging, dedup of re-sent messages, re-execution from logs (ft/). */
  readonly ft?: FtCore;
}

type Pending = { resolve: () => void; reject: (err: Error) => void };
type Request = Pending & { from: number; pages?: ReadonlySet<number>; msg?: ProtocolMessage };
type Release = Extract<ProtocolMessage, { type: 'barrier-release' }>;

/** This node's barrier in progress: done once released and every wanted page has been pushed. */
type PendingBarrier = Pending & {
  readonly episode: number;
  released: boolean;
  readonly wanted: ReadonlySet<number>;
  readonly pushed: Map<number, Uint8Array>;
};

/**
 * Home-based lazy release consistency, one node's share, with no sockets, timers or threads:
 * messages come in through `receive`, go out through the Transport; the app side calls fetch /
 * acquire / release / barrier one at a time (the app is one thread, blocked during each call).
 *
 * Diffs are acknowledged by their homes before an interval's write notices can leave the node, so a
 * node that learns of a notice always finds the home page up to date: fetches need no versions.
 */
export class DsmProtocol {
  readonly me: number;
  readonly nodes: number;
  readonly pages: PageTable;
  readonly stats: DsmStats = emptyStats();
  readonly log: IntervalLog;
  readonly #transport: Transport;
  readonly #hooks: DsmHooks;
  readonly #locks = new LocalLocks();
  readonly #lockManager = new LockManager();
  readonly #barrierManager: BarrierManager;
  /** Outstanding page fetches and diff batches, by request id, with the node that must answer. */
  readonly #requests = new Map<number, Request>();
  readonly #acquiring = new Map<number, Pending & { acq: number }>();
  readonly #ft: FtCore | undefined;
  /**
   * The barrier manager: node 0 without FT; with FT the supervisor (ft/core.ts), which also manages
   * every lock, so that every compute node can fail without taking a manager's state with it.
   */
  readonly #manager: number;
  #barrier: PendingBarrier | undefined;
  #episode = 0;
  /** The vector time every node had after the last barrier; arrivals send what lies beyond it. */
  #barrierTime: VectorTime;
  #nextReq = 1;
  #failure: LazarusError | undefined;

  constructor(options: DsmProtocolOptions) {
    this.me = options.me;
    this.nodes = options.nodes;
    this.pages = options.pages;
    this.#transport = options.transport;
    this.#hooks = options.hooks ?? {};
    this.#ft = options.ft;
    this.#manager = options.ft ? options.ft.supervisor : 0;
    this.log = new IntervalLog(options.nodes);
    this.#barrierManager = new BarrierManager(options.nodes);
    this.#barrierTime = this.log.time();
  }

  /** Makes the given pages valid locally, fetching the invalid ones from their homes. */
  async fetch(pages: readonly number[]): Promise<void> {
    this.#checkAlive();
    const wanted = new Set<number>();
    for (const p of pages) {
      this.pages.checkPage(p);
      if (this.pages.state[p] !== PageState.VALID) wanted.add(p);
    }
    const size = this.pages.pageSize;
    const waits: Promise<void>[] = [];
    for (const [home, batches] of this.#batchByNode(
      [...wanted],
      (p) => this.pages.homes[p]!,
      () => size,
    )) {
      for (const batch of batches) {
        const req = this.#newReq();
        if (this.#replayReply(req, batch)) continue;
        const msg: ProtocolMessage = { type: 'page-req', req, pages: batch };
        waits.push(this.#expect(req, home, new Set(batch), msg));
        this.#send(home, msg);
      }
    }
    this.#maybeCaughtUp();
    await Promise.all(waits);
  }

  /**
   * Ends the current interval: diffs go to their homes and are acknowledged, then the interval and
   * its write notices are recorded, ready to travel with the next grant or barrier.
   */
  async closeInterval(flush: Flush): Promise<void> {
    this.#checkAlive();
    if (flush.pages.length === 0) return;
    const runs = pageRuns(flush.pages);
    this.#checkRuns(runs);
    for (const d of flush.diffs) {
      this.pages.checkPage(d.page);
      if (this.pages.isHome(d.page))
        throw createError(ErrorCodes.INVALID_ARGUMENT, `diff for home page ${d.page}`);
    }
    const changed = flush.diffs.filter((d) => d.data.length > 0);
    const byHome = this.#batchByNode(
      changed,
      (d) => this.pages.homes[d.page]!,
      (d) => d.data.length,
    );
    const waits: Promise<void>[] = [];
    // With FT, homes dedupe re-sent diffs by interval and order re-applied ones by vector time.
    const ft = this.#ft ? { seq: this.log.known(this.me) + 1, time: this.log.time() } : undefined;
    for (const [home, batches] of byHome) {
      for (const diffs of batches) {
        const req = this.#newReq();
        const msg: ProtocolMessage = ft ? { type: 'diffs', req, diffs, ft } : { type: 'diffs', req, diffs };
        waits.push(this.#expect(req, home, undefined, msg));
        this.stats.diffsSent += diffs.length;
        for (const d of diffs) this.stats.diffBytesSent += d.data.length;
        this.#sendLogged(home, msg);
      }
    }
    await Promise.all(waits);
    const interval = this.log.append(this.me, runs);
    this.stats.intervals++;
    this.#hooks.onIntervalClosed?.(interval);
    this.#maybeCaughtUp();
  }

  async acquire(lock: number, flush: Flush): Promise<void> {
    checkLock(lock);
    await this.closeInterval(flush);
    this.#locks.requested(lock);
    const started = performance.now();
    this.#checkAlive();
    const ft = this.#ft;
    const acq = ft ? ++ft.acq : 0;
    const granted = new Promise<void>((resolve, reject) =>
      this.#acquiring.set(lock, { resolve, reject, acq }),
    );
    if (ft) this.#deliverLoggedFwds(acq);
    const logged = ft?.replay?.grants.get(acq);
    if (ft && logged) {
      ft.replay!.grants.delete(acq);
      ft.counters.replayedAnswers++;
      if (logged.lock !== lock)
        throw this.#diverged(`request ${acq} was for lock ${logged.lock}, now ${lock}`);
      this.#onGrant(lock, logged.intervals);
    } else {
      // The manager drops it if the first run's request got there: the grant then comes live.
      const msg: ProtocolMessage = { type: 'lock-req', lock, node: this.me, time: this.log.time() };
      this.#send(this.#managerOf(lock), ft ? { ...msg, ft: { acq } } : msg);
    }
    this.#maybeCaughtUp();
    await granted;
    this.stats.lockAcquires++;
    this.stats.lockWaitMs += performance.now() - started;
    publish({ node: this.me, event: 'acquire', lock });
  }

  async release(lock: number, flush: Flush): Promise<void> {
    checkLock(lock);
    if (!this.#locks.holds(lock))
      throw createError(ErrorCodes.INVALID_ARGUMENT, `lock ${lock} is not held by this node`);
    await this.closeInterval(flush);
    const next = this.#locks.released(lock);
    if (next) this.#grant(lock, next.node, next.time, next.acq);
    publish({ node: this.me, event: 'release', lock });
  }

  /**
   * Waits for every node. `want` names pages the app will read right after: their homes push them
   * when the barrier completes (one message instead of a request and a reply after it).
   */
  async barrier(flush: Flush, want: readonly number[] = []): Promise<void> {
    await this.closeInterval(flush);
    const episode = this.#episode;
    const wanted = new Set<number>();
    for (const p of want) {
      this.pages.checkPage(p);
      if (!this.pages.isHome(p)) wanted.add(p);
    }
    const started = performance.now();
    this.#checkAlive();
    const pushed = new Map<number, Uint8Array>();
    const done = new Promise<void>((resolve, reject) => {
      this.#barrier = { episode, resolve, reject, released: false, wanted, pushed };
    });
    if (this.#ft) this.#ft.arrivals = episode + 1;
    const logged = this.#ft?.replay?.releases.get(episode);
    if (logged) {
      // Re-execution: the release this node got the first time, and the pages pushed with it.
      this.#ft!.replay!.releases.delete(episode);
      this.#ft!.counters.replayedAnswers++;
      this.#onRelease(logged);
      for (const p of this.#ft!.replay!.pushes.get(episode) ?? []) {
        if (wanted.has(p.page) && !pushed.has(p.page)) pushed.set(p.page, p.data);
      }
      this.#ft!.replay!.pushes.delete(episode);
      if (this.#barrier) this.#settleBarrier(this.#barrier);
    } else {
      const arrive: ProtocolMessage = {
        type: 'barrier-arrive',
        episode,
        time: this.log.time(),
        intervals: this.log.since(this.#barrierTime),
        want: pageRuns(Uint32Array.from(wanted)),
      };
      this.#send(this.#manager, this.#ft ? { ...arrive, ft: { ckpt: this.#ft.own } } : arrive);
      publish({ node: this.me, event: 'arrive', episode });
    }
    this.#maybeCaughtUp();
    await done;
    // The release's notices are learnt: a pushed page replaces only a copy they made stale.
    for (const [page, data] of pushed) {
      if (this.pages.state[page] === PageState.VALID) continue;
      this.pages.page(page).set(data);
      this.pages.state[page] = PageState.VALID;
      this.stats.pageFetches++;
      this.stats.pageFetchBytes += data.length;
    }
    this.#episode++;
    this.#barrierTime = this.log.time();
    this.stats.barriers++;
    this.stats.barrierWaitMs += performance.now() - started;
    this.#hooks.onBarrierPassed?.(episode, this.#barrierTime);
    publish({ node: this.me, event: 'barrier', episode });
  }

  /**
   * Handles one message from `from`. Throws a LazarusError (and changes nothing) when the message is
   * malformed for this node: page out of range or not homed here, bad diff, unexpected reply...
   */
  receive(from: number, msg: ProtocolMessage): void {
    this.#checkSender(from);
    if (from !== this.me) this.stats.messagesReceived++;
    const ft = this.#ft;
    if (ft && from !== this.me && this.#ftIntercept(ft, from, msg)) return;
    switch (msg.type) {
      case 'page-req': {
        for (const p of msg.pages) this.#checkHomePage(p);
        if (ft && msg.req > ft.reqsFrom[from]!) ft.reqsFrom[from] = msg.req;
        // Views, not copies: transports encode synchronously (self never fetches its own pages).
        const pages = msg.pages.map((page) => ({ page, data: this.pages.page(page) }));
        this.stats.pagesServed += pages.length;
        this.#sendLogged(from, { type: 'page-reply', req: msg.req, pages });
        publish({ node: this.me, event: 'served', to: from, pages: pages.length });
        return;
      }
      case 'page-reply': {
        const pending = this.#take(msg.req, from);
        const expected = pending.pages;
        if (!expected || msg.pages.length !== expected.size) throw this.#unexpected('page reply', msg.req);
        const seen = new Set<number>();
        for (const { page, data } of msg.pages) {
          if (!expected.has(page) || seen.has(page) || data.length !== this.pages.pageSize) {
            throw createError(ErrorCodes.DSM_OUT_OF_RANGE, `page reply ${msg.req}: bad page ${page}`);
          }
          seen.add(page);
        }
        this.#installPages(msg.pages);
        if (ft) ft.keepReceived(from, msg);
        this.#requests.delete(msg.req);
        pending.resolve();
        return;
      }
      case 'diffs': {
        for (const d of msg.diffs) {
          this.#checkHomePage(d.page);
          validateDiff(d.data, this.pages.pageSize);
        }
        if (ft && msg.req > ft.reqsFrom[from]!) ft.reqsFrom[from] = msg.req;
        if (ft && msg.ft) {
          if (ft.seenDiffs(from, msg.ft.seq, msg.req)) {
            ft.counters.dupsDropped++;
            this.#send(from, { type: 'diff-ack', req: msg.req });
            return;
          }
          ft.markDiffs(from, msg.ft.seq, [msg.req]);
        }
        for (const d of msg.diffs) applyDiff(this.pages.page(d.page), d.data);
        this.stats.diffsApplied += msg.diffs.length;
        this.#send(from, { type: 'diff-ack', req: msg.req });
        return;
      }
      case 'diff-ack': {
        const pending = this.#take(msg.req, from);
        if (pending.pages) throw this.#unexpected('diff ack', msg.req);
        this.#requests.delete(msg.req);
        pending.resolve();
        return;
      }
      case 'lock-req': {
        checkLock(msg.lock);
        if (this.#managerOf(msg.lock) !== this.me || msg.node !== from) {
          throw createError(ErrorCodes.PROTOCOL, `lock request for ${msg.lock} misrouted`);
        }
        this.#checkTime(msg.time);
        if (ft && msg.ft) {
          // A restarted node asks again for what it asked before its failure: that request is queued.
          if (msg.ft.acq <= ft.lastAcq[from]!) {
            ft.counters.dupsDropped++;
            return;
          }
          ft.lastAcq[from] = msg.ft.acq;
          const tailAcq = ft.tailAcq.get(msg.lock) ?? 0;
          const tail = this.#lockManager.request(msg.lock, msg.node);
          ft.tailAcq.set(msg.lock, msg.ft.acq);
          if (tail === undefined) this.#grant(msg.lock, msg.node, msg.time, msg.ft.acq);
          else {
            const seq = ++ft.fwdSeq[tail]!;
            this.#sendLogged(tail, {
              ...msg,
              type: 'lock-fwd',
              ft: { acq: msg.ft.acq, after: tailAcq, seq },
            });
          }
          return;
        }
        const tail = this.#lockManager.request(msg.lock, msg.node);
        if (tail === undefined) this.#grant(msg.lock, msg.node, msg.time);
        else this.#send(tail, { type: 'lock-fwd', lock: msg.lock, node: msg.node, time: msg.time });
        return;
      }
      case 'lock-fwd': {
        checkLock(msg.lock);
        if (this.#managerOf(msg.lock) !== from)
          throw createError(ErrorCodes.PROTOCOL, `lock ${msg.lock} forwarded by a non-manager`);
        this.#checkNode(msg.node);
        this.#checkTime(msg.time);
        if (ft && msg.ft && !ft.takeFwd(msg.ft.seq)) {
          ft.counters.dupsDropped++;
          return;
        }
        const acq = msg.ft?.acq;
        const waiter =
          acq === undefined ? { node: msg.node, time: msg.time } : { node: msg.node, time: msg.time, acq };
        if (this.#locks.forwarded(msg.lock, waiter)) this.#grant(msg.lock, msg.node, msg.time, acq);
        return;
      }
      case 'lock-grant': {
        const pending = this.#acquiring.get(msg.lock);
        if (ft && msg.ft && pending?.acq !== msg.ft.acq) {
          // A re-executing granter passes the token again: this node already has had it.
          ft.counters.dupsDropped++;
          return;
        }
        if (!pending)
          throw createError(ErrorCodes.PROTOCOL, `grant of lock ${msg.lock} that was not requested`);
        this.#onGrant(msg.lock, msg.intervals);
        return;
      }
      case 'barrier-arrive': {
        if (this.me !== this.#manager)
          throw createError(ErrorCodes.PROTOCOL, 'barrier arrival at a non-manager');
        this.#checkTime(msg.time);
        for (const iv of msg.intervals) this.#checkInterval(iv);
        this.#checkRuns(msg.want);
        if (ft && msg.ft) {
          ft.learnOne(from, msg.ft.ckpt);
          if (msg.episode + 1 > ft.arrivalsFrom[from]!) ft.arrivalsFrom[from] = msg.episode + 1;
          // A restarted node arriving again at a barrier it had reached (or passed) before failing.
          if (msg.episode < this.#barrierManager.episode || this.#barrierManager.hasArrived(from)) {
            ft.counters.dupsDropped++;
            return;
          }
        }
        const all = this.#barrierManager.arrive(msg.episode, {
          node: from,
          time: msg.time,
          intervals: msg.intervals,
          want: msg.want,
        });
        if (!all) return;
        // Every node, this one included, is blocked in the barrier: merging notices is safe now.
        this.#learn(all.flatMap((a) => a.intervals));
        const orders = this.#pushOrders(all);
        for (const a of all) {
          const release: ProtocolMessage = {
            type: 'barrier-release',
            episode: msg.episode,
            intervals: this.log.since(a.time),
            serve: orders.get(a.node) ?? [],
          };
          this.#sendLogged(a.node, ft ? { ...release, ft: { ckpts: ft.table.all() } } : release);
        }
        return;
      }
      case 'barrier-release': {
        const pending = this.#barrier;
        if (from !== this.#manager || !pending || pending.episode !== msg.episode || pending.released) {
          throw createError(ErrorCodes.PROTOCOL, `unexpected release of barrier ${msg.episode}`);
        }
        this.#onRelease(msg);
        return;
      }
      case 'page-push': {
        const pending = this.#barrier;
        if (!pending || pending.episode !== msg.episode) {
          if (ft) {
            ft.counters.dupsDropped++;
            return;
          }
          throw createError(ErrorCodes.PROTOCOL, `unexpected page push for barrier ${msg.episode}`);
        }
        for (const { page, data } of msg.pages) {
          if (
            !pending.wanted.has(page) ||
            (pending.pushed.has(page) && !ft) ||
            this.pages.homes[page] !== from ||
            data.length !== this.pages.pageSize
          ) {
            throw createError(ErrorCodes.DSM_OUT_OF_RANGE, `page push from node ${from}: bad page ${page}`);
          }
        }
        for (const { page, data } of msg.pages)
          if (!pending.pushed.has(page)) pending.pushed.set(page, data.slice());
        this.#settleBarrier(pending);
        return;
      }
    }
  }

  /**
   * FT routing before normal handling; true when the message was taken care of. While this node
   * re-executes, requests from peers wait (its pages are in the past), and answers it has not asked
   * for yet are kept for when it does.
   */
  #ftIntercept(ft: FtCore, from: number, msg: ProtocolMessage): boolean {
    if (!ft.replay) return false;
    switch (msg.type) {
      case 'page-req':
      case 'diffs':
      case 'lock-fwd':
        if (!ft.replaying) return false;
        ft.deferred.push({ from, msg });
        return true;
      case 'lock-grant':
        if (this.#acquiring.get(msg.lock)?.acq === msg.ft?.acq) return false;
        return ft.replaying ? ft.replay.add(from, msg) : false;
      case 'barrier-release':
        if (this.#barrier?.episode === msg.episode && !this.#barrier.released) return false;
        return ft.replay.add(from, msg);
      case 'page-push':
        if (this.#barrier?.episode === msg.episode) return false;
        // Pushes for a barrier this node has passed are duplicates from a re-executing home.
        return msg.episode >= this.#episode ? ft.replay.add(from, msg) : false;
      default:
        return false;
    }
  }

  /** Takes in a logged answer sent back to this restarted node (between RECOVER_BEGIN and END). */
  receiveLogged(from: number, msg: ProtocolMessage): void {
    const ft = this.#ft;
    if (!ft?.replay)
      throw createError(ErrorCodes.PROTOCOL, 'logged messages for a node that is not recovering');
    this.#checkSender(from);
    if (msg.type === 'diffs') {
      if (!msg.ft) throw createError(ErrorCodes.PROTOCOL, 'logged diffs without an interval');
      for (const d of msg.diffs) {
        this.#checkHomePage(d.page);
        validateDiff(d.data, this.pages.pageSize);
      }
      if (msg.ft.seq >= ft.applied[from]!) ft.pending.add(from, msg.ft.seq, msg.ft.time, msg.req, msg.diffs);
      return;
    }
    if (!ft.replay.add(from, msg)) throw createError(ErrorCodes.PROTOCOL, `cannot replay a ${msg.type}`);
  }

  /** Re-sends what this node still waits for from `node` (it restarted and lost it). */
  resendTo(node: number): void {
    for (const r of this.#requests.values()) if (r.from === node && r.msg) this.#send(node, r.msg);
  }

  /** Forwards logged for this node that follow its request `acq` (or an earlier one). */
  #deliverLoggedFwds(acq: number): void {
    const ft = this.#ft;
    if (!ft?.replay) return;
    for (const f of ft.replay.takeFwds(this.me, acq)) {
      if (!ft.takeFwd(f.seq)) continue;
      if (this.#locks.forwarded(f.lock, { node: f.node, time: f.time, acq: f.acq }))
        this.#grant(f.lock, f.node, f.time, f.acq);
    }
  }

  /** Called once the restored state is in place: forwards for requests made before the checkpoint. */
  startReplay(): void {
    if (!this.#ft) return;
    this.#deliverLoggedFwds(this.#ft.acq);
    this.#maybeCaughtUp();
  }

  /**
   * The re-execution needs its first live answer: it has redone everything its first run did, so
   * it applies every diff still pending and serves the requests peers made meanwhile.
   */
  /**
   * A re-execution has caught up once it has made at least as many requests, lock requests and
   * barrier arrivals, and closed as many intervals, as any survivor saw from its first run.
   */
  #maybeCaughtUp(): void {
    const ft = this.#ft;
    if (!ft?.replaying) return;
    const c = ft.crashPoint;
    const reqs = this.#nextReq - 1;
    if (reqs >= c.reqs && ft.acq >= c.acq && ft.arrivals >= c.arrivals && this.log.known(this.me) >= c.seq) {
      this.#catchUp();
    }
  }

  /** Called by the runtime when the app has finished (a re-execution may end without a live call). */
  appDone(): void {
    this.#catchUp();
  }

  /** Told once a re-execution has caught up (the runtime reports it to the coordinator). */
  onCaughtUp: (() => void) | undefined;

  #catchUp(): void {
    const ft = this.#ft;
    if (!ft?.replaying) return;
    ft.replaying = false;
    queueMicrotask(() => this.onCaughtUp?.());
    this.#applyPending(() => true);
    const deferred = ft.deferred;
    ft.deferred = [];
    publish({ node: this.me, event: 'caught-up', deferred: deferred.length });
    for (const { from, msg } of deferred) {
      try {
        this.receive(from, msg);
      } catch (err) {
        this.fail(isLazarusError(err) ? err : createError(ErrorCodes.PROTOCOL, String(err), err));
      }
    }
  }

  #applyPending(covered: (writer: number, seq: number) => boolean): void {
    const ft = this.#ft;
    if (!ft || ft.pending.size === 0) return;
    for (const d of ft.pending.take(covered)) {
      // Re-applying a batch the checkpoint already had is harmless here: nothing that overwrote it
      // can have been applied before it (this runs in happens-before order).
      if (d.seq < ft.applied[d.writer]!) continue;
      for (const p of d.diffs) applyDiff(this.pages.page(p.page), p.data);
      ft.markDiffs(d.writer, d.seq, d.reqs);
      this.stats.diffsApplied += d.diffs.length;
    }
  }

  #replayReply(req: number, batch: readonly number[]): boolean {
    const ft = this.#ft;
    const logged = ft?.replay?.replies.get(req);
    if (!ft || !logged) return false;
    ft.replay!.replies.delete(req);
    if (logged.length !== batch.length || logged.some((p, i) => p.page !== batch[i])) {
      throw this.#diverged(`request ${req} fetched other pages the first time`);
    }
    ft.counters.replayedAnswers++;
    this.#installPages(logged);
    ft.keepReceived(this.pages.homes[batch[0]!]!, { type: 'page-reply', req, pages: logged });
    return true;
  }

  #installPages(pages: readonly PageData[]): void {
    for (const { page, data } of pages) {
      this.pages.page(page).set(data);
      this.pages.state[page] = PageState.VALID;
      this.stats.pageFetchBytes += data.length;
    }
    this.stats.pageFetches += pages.length;
  }

  #onGrant(lock: number, intervals: readonly Interval[]): void {
    const pending = this.#acquiring.get(lock);
    if (!pending) throw createError(ErrorCodes.PROTOCOL, `grant of lock ${lock} that was not requested`);
    this.#learn(intervals);
    this.#locks.granted(lock);
    this.#acquiring.delete(lock);
    pending.resolve();
  }

  #onRelease(msg: Release): void {
    const pending = this.#barrier;
    if (!pending || pending.episode !== msg.episode || pending.released) {
      throw createError(ErrorCodes.PROTOCOL, `unexpected release of barrier ${msg.episode}`);
    }
    for (const order of msg.serve) {
      this.#checkNode(order.node);
      this.#checkRuns(order.runs);
      forEachPage(order.runs, (p) => this.#checkHomePage(p));
    }
    if (this.#ft && msg.ft) this.#ft.learn(msg.ft.ckpts);
    this.#learn(msg.intervals);
    // Pushed now, before this node's app can resume and write: the pages are as of the barrier.
    for (const order of msg.serve) {
      const pages: PageData[] = [];
      forEachPage(order.runs, (page) => pages.push({ page, data: this.pages.page(page) }));
      const batches =
        this.#batchByNode(
          pages,
          () => order.node,
          (d) => d.data.length,
        ).get(order.node) ?? [];
      for (const batch of batches) {
        this.stats.pagesServed += batch.length;
        this.#sendLogged(order.node, { type: 'page-push', episode: msg.episode, pages: batch });
        publish({ node: this.me, event: 'served', to: order.node, pages: batch.length });
      }
    }
    pending.released = true;
    this.#settleBarrier(pending);
  }

  #managerOf(lock: number): number {
    return this.#ft ? this.#manager : lock % this.nodes;
  }

  #diverged(what: string): LazarusError {
    return createError(ErrorCodes.DSM_DIVERGED, `node ${this.me} re-executed differently: ${what}`);
  }

  /** The protocol state a checkpoint needs (taken at a safe point: no call of the app in flight). */
  snapshot(): ProtocolSnapshot {
    const ft = this.#ft;
    return {
      nextReq: this.#nextReq,
      episode: this.#episode,
      barrierTime: this.#barrierTime.slice(),
      acq: ft?.acq ?? 0,
      fwds: ft?.fwds ?? 0,
      // The last interval of each writer may be partly applied: the checkpoint claims the one before.
      applied: ft ? ft.applied.map((s) => Math.max(0, s - 1)) : new Uint32Array(this.nodes),
      intervals: this.log.all(),
      locks: this.#locks.snapshot(),
      table: ft ? [...ft.table.all()] : [],
    };
  }

  /** Puts a checkpoint's protocol state back (fresh protocol, before the app starts). */
  restore(snap: ProtocolSnapshot): void {
    this.#nextReq = snap.nextReq;
    this.#episode = snap.episode;
    this.#barrierTime = snap.barrierTime.slice();
    this.log.addAll(snap.intervals);
    this.#locks.restore(snap.locks as LockSnapshot[]);
    const ft = this.#ft;
    if (!ft) return;
    ft.acq = snap.acq;
    ft.fwds = snap.fwds;
    ft.arrivals = snap.episode;
    ft.applied = snap.applied.slice();
  }

  /** Stops the node: every pending and later operation rejects with `err`. */
  fail(err: LazarusError): void {
    if (this.#failure) return;
    this.#failure = err;
    for (const p of this.#requests.values()) p.reject(err);
    for (const p of this.#acquiring.values()) p.reject(err);
    this.#barrier?.reject(err);
    this.#requests.clear();
    this.#acquiring.clear();
    this.#barrier = undefined;
  }

  get failure(): LazarusError | undefined {
    return this.#failure;
  }

  /** Groups items by destination node, in batches of at most MAX_BATCH_BYTES (at least one item). */
  #batchByNode<T>(
    items: readonly T[],
    nodeOf: (item: T) => number,
    sizeOf: (item: T) => number,
  ): Map<number, T[][]> {
    const byHome = new Map<number, { batches: T[][]; bytes: number }>();
    for (const item of items) {
      const home = nodeOf(item);
      const entry = byHome.get(home) ?? { batches: [[]], bytes: 0 };
      byHome.set(home, entry);
      if (entry.bytes + sizeOf(item) > MAX_BATCH_BYTES && entry.bytes > 0) {
        entry.batches.push([]);
        entry.bytes = 0;
      }
      entry.batches[entry.batches.length - 1]!.push(item);
      entry.bytes += sizeOf(item);
    }
    return new Map([...byHome].map(([home, e]) => [home, e.batches]));
  }

  #settleBarrier(pending: PendingBarrier): void {
    if (!pending.released || pending.pushed.size < pending.wanted.size) return;
    this.#barrier = undefined;
    pending.resolve();
  }

  /** For each home, the pages each node wants from it after the barrier. */
  #pushOrders(arrivals: readonly Arrival[]): Map<number, PushOrder[]> {
    const byHome = new Map<number, Map<number, number[]>>();
    for (const a of arrivals) {
      forEachPage(a.want, (p) => {
        const home = this.pages.homes[p]!;
        if (home === a.node) return;
        const forHome = byHome.get(home) ?? new Map<number, number[]>();
        byHome.set(home, forHome);
        const pages = forHome.get(a.node) ?? [];
        forHome.set(a.node, pages);
        pages.push(p);
      });
    }
    return new Map(
      [...byHome].map(([home, m]) => [
        home,
        [...m].map(([node, pages]) => ({ node, runs: pageRuns(Uint32Array.from(pages)) })),
      ]),
    );
  }

  #grant(lock: number, to: number, time: VectorTime, acq?: number): void {
    const msg: ProtocolMessage = { type: 'lock-grant', lock, intervals: this.log.since(time) };
    this.#sendLogged(to, acq !== undefined && this.#ft ? { ...msg, ft: { acq } } : msg);
  }

  /** Adds write notices and invalidates the non-home pages they name; checked before anything changes. */
  #learn(intervals: readonly Interval[]): void {
    for (const iv of intervals) this.#checkInterval(iv);
    const { homes, state } = this.pages;
    for (const iv of this.log.addAll(intervals)) {
      if (iv.node === this.me) continue;
      const runs = iv.runs;
      for (let r = 0; r < runs.length; r += 2) {
        const end = runs[r]! + runs[r + 1]!;
        for (let p = runs[r]!; p < end; p++) if (homes[p] !== this.me) state[p] = PageState.INVALID;
      }
    }
    // A restarted home re-applies logged diffs once it re-learns their intervals, as its first run had.
    if (this.#ft?.replay) this.#applyPending((w, seq) => seq <= this.log.known(w));
  }

  #checkInterval(iv: Interval): void {
    this.#checkNode(iv.node);
    if (iv.seq < 1 || (iv.node === this.me && iv.seq > this.log.known(this.me))) {
      throw createError(ErrorCodes.PROTOCOL, `interval ${iv.node}:${iv.seq} cannot exist`);
    }
    this.#checkRuns(iv.runs);
  }

  /** Every (first, count) run must be non-empty and inside the space. */
  #checkRuns(runs: Uint32Array): void {
    const n = this.pages.numPages;
    if (runs.length % 2 !== 0)
      throw createError(ErrorCodes.MALFORMED_FRAME, 'write notice runs come in pairs');
    for (let r = 0; r < runs.length; r += 2) {
      if (runs[r + 1] === 0 || runs[r]! + runs[r + 1]! > n) {
        throw createError(ErrorCodes.DSM_OUT_OF_RANGE, `pages ${runs[r]}+${runs[r + 1]} outside 0..${n - 1}`);
      }
    }
  }

  #checkTime(time: VectorTime): void {
    if (time.length !== this.nodes) {
      throw createError(
        ErrorCodes.MALFORMED_FRAME,
        `vector time of ${time.length} entries for ${this.nodes} nodes`,
      );
    }
  }

  /** Messages come from compute nodes, and with FT from the supervisor (releases, forwards, grants). */
  #checkSender(from: number): void {
    if (this.#ft && from === this.#manager) return;
    this.#checkNode(from);
  }

  #checkNode(node: number): void {
    if (!Number.isInteger(node) || node < 0 || node >= this.nodes) {
      throw createError(ErrorCodes.DSM_OUT_OF_RANGE, `node ${node} outside 0..${this.nodes - 1}`);
    }
  }

  #checkHomePage(page: number): void {
    this.pages.checkPage(page);
    if (!this.pages.isHome(page))
      throw createError(ErrorCodes.DSM_OUT_OF_RANGE, `page ${page} is not homed at node ${this.me}`);
  }

  #checkAlive(): void {
    if (this.#failure) throw this.#failure;
  }

  #newReq(): number {
    const req = this.#nextReq;
    this.#nextReq = this.#nextReq === 0xffffffff ? 1 : this.#nextReq + 1;
    return req;
  }

  #expect(
    req: number,
    from: number,
    pages: ReadonlySet<number> | undefined,
    msg: ProtocolMessage,
  ): Promise<void> {
    if (this.#failure) return Promise.reject(this.#failure);
    return new Promise((resolve, reject) => {
      const base: Request = { resolve, reject, from };
      if (pages) base.pages = pages;
      // Kept only with FT: a restarted peer lost it and is sent it again.
      if (this.#ft) base.msg = msg;
      this.#requests.set(req, base);
    });
  }

  #take(req: number, from: number): Request {
    const pending = this.#requests.get(req);
    if (!pending || pending.from !== from) throw this.#unexpected('reply', req);
    return pending;
  }

  #unexpected(what: string, req: number): LazarusError {
    return createError(ErrorCodes.PROTOCOL, `unexpected ${what} for request ${req}`);
  }

  /**
   * Sends, then logs: the message leaves before the log's work, and page data (views of live pages)
   * is logged as views of the encoded frame, the bytes that were sent (copied only when the
   * transport gave no frame). Nothing can change a page between the two: both run in this turn.
   */
  #sendLogged(to: number, msg: ProtocolMessage): void {
    this.#hooks.onLogged?.(to, msg);
    const frame = this.#send(to, msg);
    if (this.#ft?.shouldLog(to)) this.#ft.log.append(to, msg, frame);
  }

  /** Returns the encoded frame when the transport gives it (never for local delivery). */
  #send(to: number, msg: ProtocolMessage): Uint8Array | undefined {
    if (to !== this.me) {
      this.stats.messagesSent++;
      try {
        return this.#transport.send(to, msg);
      } catch (err) {
        // A node that cannot reach a peer cannot go on: every waiting operation fails with it.
        this.fail(isLazarusError(err) ? err : createError(ErrorCodes.DSM_PEER_LOST, String(err), err));
      }
      return undefined;
    }
    // Local delivery is deferred like a network message, so handlers never re-enter each other.
    queueMicrotask(() => {
      try {
        this.receive(this.me, msg);
      } catch (err) {
        this.fail(err as LazarusError);
      }
    });
  }
}

function checkLock(lock: number): void {
  if (!Number.isInteger(lock) || lock < 0 || lock >= MAX_LOCKS) {
    throw createError(ErrorCodes.DSM_OUT_OF_RANGE, `lock ${lock} outside 0..${MAX_LOCKS - 1}`);
  }
}
