import { createError, ErrorCodes, isLazarusError, type LazarusError } from '../../wire/errors.ts';
import type { ControlMessage, DsmMessage, ProtocolMessage } from '../messages.ts';
import { type Layout, PageTable } from '../pages.ts';
import { DsmProtocol } from '../protocol.ts';
import type { DsmStats } from '../stats.ts';
import { FtCore, type GcMode, supervisorOf } from './core.ts';
import { answerRecovery } from './recovery.ts';

/**
 * The supervisor's protocol role in an FT run: the barrier manager and the manager of every lock,
 * in the launcher's process, computing nothing. It is a DsmProtocol endpoint with id `nodes` that
 * runs no app and writes no page (its page table is never written: only the homes and page states
 * are used, to order pushes after a barrier), so the manager code is the same one FT-off node 0
 * runs. Like any node it logs what it sends to compute nodes (releases, lock forwards, first grants),
 * trims that log by the checkpoint positions arrivals carry, and answers a restarted node's
 * RECOVER_REQ: no compute node holds manager state, so any of them can fail.
 */
export class SupervisorRole {
  readonly protocol: DsmProtocol;
  readonly ft: FtCore;
  readonly #send: (to: number, msg: DsmMessage) => void;
  readonly #reject: (node: number, err: LazarusError) => void;

  constructor(
    layout: Layout,
    nodes: number,
    gc: GcMode,
    send: (to: number, msg: DsmMessage) => void,
    reject: (node: number, err: LazarusError) => void,
  ) {
    const me = supervisorOf(nodes);
    this.#send = send;
    this.#reject = reject;
    this.ft = new FtCore(me, nodes, gc);
    this.protocol = new DsmProtocol({
      me,
      nodes,
      pages: new PageTable(layout, me),
      // A compute node that is down misses nothing: what it needs is in the log (which copies what
      // little it keeps of these messages: releases and grants carry no page data).
      transport: {
        send: (to, msg) => {
          send(to, msg);
          return undefined;
        },
      },
      ft: this.ft,
    });
  }

  /** Barrier arrivals and lock requests; anything else (or a malformed one) closes that peer. */
  receive(from: number, msg: ProtocolMessage): void {
    try {
      if (msg.type !== 'barrier-arrive' && msg.type !== 'lock-req')
        throw createError(ErrorCodes.PROTOCOL, `the supervisor got ${msg.type}`);
      this.protocol.receive(from, msg);
    } catch (err) {
      this.#reject(from, isLazarusError(err) ? err : createError(ErrorCodes.PROTOCOL, String(err), err));
    }
  }

  /** A restarted node asks for what was logged for it (releases, forwards, grants). */
  answerRecovery(from: number, msg: Extract<ControlMessage, { type: 'recover-req' }>): void {
    answerRecovery(this.#send, this.protocol, this.ft, from, msg);
  }

  stats(): DsmStats {
    const ft = this.ft;
    return {
      ...this.protocol.stats,
      ft: {
        ...ft.counters,
        retainedLogEntries: ft.log.entries,
        retainedLogBytes: ft.log.bytes,
        retainedCheckpoints: 0,
        retainedCheckpointBytes: 0,
        series: [],
      },
    };
  }
}
