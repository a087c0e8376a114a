import type { Interval } from '../intervals.ts';
import type { PageData, ProtocolMessage } from '../messages.ts';
import type { VectorTime } from '../vector-time.ts';

export type LoggedRelease = Extract<ProtocolMessage, { type: 'barrier-release' }>;
export interface LoggedFwd {
  readonly lock: number;
  readonly node: number;
  readonly time: VectorTime;
  readonly acq: number;
  readonly after: number;
  readonly seq: number;
}

/**
 * What a restarted node got back from its peers' logs (and answers that reach it live before it
 * asks for them): its re-execution takes each answer from here instead of asking again, so it sees
 * exactly what its first run saw.
 */
export class ReplayStore {
  readonly replies = new Map<number, readonly PageData[]>();
  readonly pushes = new Map<number, PageData[]>();
  readonly grants = new Map<number, { lock: number; intervals: readonly Interval[] }>();
  readonly releases = new Map<number, LoggedRelease>();
  readonly fwds: LoggedFwd[] = [];

  /** Files one logged answer; returns false for messages that are not answers (diffs go elsewhere). */
  add(from: number, msg: ProtocolMessage): boolean {
    switch (msg.type) {
      case 'page-reply':
        this.replies.set(msg.req, msg.pages);
        return true;
      case 'page-push': {
        const list = this.pushes.get(msg.episode) ?? [];
        this.pushes.set(msg.episode, list);
        for (const p of msg.pages) list.push({ page: p.page, data: Uint8Array.from(p.data) });
        return true;
      }
      case 'lock-grant':
        if (!msg.ft) return false;
        this.grants.set(msg.ft.acq, { lock: msg.lock, intervals: msg.intervals });
        return true;
      case 'barrier-release':
        this.releases.set(msg.episode, msg);
        return true;
      case 'lock-fwd':
        if (!msg.ft) return false;
        void from;
        if (!this.fwds.some((f) => f.seq === msg.ft!.seq)) {
          this.fwds.push({ lock: msg.lock, node: msg.node, time: msg.time, ...msg.ft });
          this.fwds.sort((a, b) => a.seq - b.seq);
        }
        return true;
      default:
        return false;
    }
  }

  /**
   * Removes and returns the forwards that can be taken once this node (`me`) has made its requests
   * up to `upTo`: those following one of them, except forwards of this node's own later request,
   * which the manager could only send once that request was made (taking one earlier would pass the
   * token to a request this node has not made yet).
   */
  takeFwds(me: number, upTo: number): LoggedFwd[] {
    const out = this.fwds.filter((f) => f.after <= upTo && (f.node !== me || f.acq <= upTo));
    for (const f of out) this.fwds.splice(this.fwds.indexOf(f), 1);
    return out;
  }

  get size(): number {
    return this.replies.size + this.pushes.size + this.grants.size + this.releases.size + this.fwds.length;
  }
}
