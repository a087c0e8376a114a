import { createError, ErrorCodes } from '../../wire/errors.ts';
import type { ControlMessage, DsmMessage } from '../messages.ts';
import type { DsmProtocol } from '../protocol.ts';
import { publish } from '../stats.ts';
import type { FtCore } from './core.ts';
import { neededBy } from './trimming.ts';

type RecoverReq = Extract<ControlMessage, { type: 'recover-req' }>;

/**
 * Survivor side of a restart: peer `from` came back from the checkpoint `req.ckpt` describes. Its
 * position is now known for sure (LLT may use it); it gets every logged message it will ask for
 * again, framed by RECOVER_BEGIN/END, then whatever this node still waits for from it.
 */
export function answerRecovery(
  send: (to: number, msg: DsmMessage) => void,
  protocol: DsmProtocol,
  core: FtCore,
  from: number,
  req: RecoverReq,
): number {
  if (req.ckpt.time.length !== core.nodes || req.applied.length !== core.nodes) {
    throw createError(ErrorCodes.MALFORMED_FRAME, 'recovery request of the wrong width');
  }
  core.learnOne(from, req.ckpt);
  const seen = {
    reqs: core.reqsFrom[from]!,
    acq: core.lastAcq[from]!,
    arrivals: core.arrivalsFrom[from]!,
    seq: protocol.log.known(from),
  };
  const relog = core.received.get(from) ?? [];
  send(from, { type: 'recover-begin', seen, relog: relog.length });
  for (const m of relog) send(from, m);
  let sent = 0;
  for (const e of core.log.for(from)) {
    if (!neededBy(req.ckpt, e.kind, e.key, core.me)) continue;
    // Diffs the home had applied by its checkpoint would be dropped there anyway.
    if (e.kind === 'diffs' && e.key <= req.applied[core.me]!) continue;
    send(from, e.msg);
    sent++;
  }
  send(from, { type: 'recover-end' });
  protocol.resendTo(from);
  publish({ node: core.me, event: 'recovery-answered', peer: from, entries: sent });
  return sent;
}

/** Recovering side: which peers are sending logged messages now, and when all have finished. */
export class RecoveryCollector {
  readonly done: Promise<void>;
  readonly #waiting: Set<number>;
  readonly #open = new Set<number>();
  readonly #relog = new Map<number, number>();
  #resolve!: () => void;

  constructor(peers: readonly number[]) {
    this.#waiting = new Set(peers);
    this.done = new Promise((resolve) => {
      this.#resolve = resolve;
    });
    if (this.#waiting.size === 0) this.#resolve();
  }

  /** True while `from` is between BEGIN and END: its protocol messages are logged ones. */
  logging(from: number): boolean {
    return this.#open.has(from);
  }

  begin(from: number, relog: number): void {
    if (!this.#waiting.has(from))
      throw createError(ErrorCodes.PROTOCOL, `unexpected recovery data from ${from}`);
    this.#open.add(from);
    this.#relog.set(from, relog);
  }

  /** True (once per message) while `from` is sending back replies this node had served it. */
  takeRelog(from: number): boolean {
    const n = this.#relog.get(from) ?? 0;
    if (n === 0) return false;
    this.#relog.set(from, n - 1);
    return true;
  }

  end(from: number): void {
    if (!this.#open.delete(from))
      throw createError(ErrorCodes.PROTOCOL, `recovery end without begin from ${from}`);
    this.#waiting.delete(from);
    if (this.#waiting.size === 0) this.#resolve();
  }
}
