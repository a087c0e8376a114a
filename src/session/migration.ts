import type { AdviceKindValue, MemberAddress } from './protocol.ts';

/** What a migration policy sees of a client session, refreshed at every check. */
export interface PolicyView {
  readonly now: number;
  /** A connection is attached and the session is live. */
  readonly connected: boolean;
  /** Id of the server holding the session now. */
  readonly ownerId: string | undefined;
  /** Every pool member the client knows. */
  readonly members: readonly MemberAddress[];
  /** Round-trip time of the current connection (ms), from keepalive pings. */
  readonly rtt: number | undefined;
  /** Payload bytes received so far. */
  readonly bytesRead: number;
  /** When payload last arrived (ms epoch); when the connection was attached if none since. */
  readonly lastReceivedAt: number;
  /** When the current connection was attached. */
  readonly attachedAt: number;
  /** Bytes written and not yet acknowledged. */
  readonly unacknowledged: number;
  /** The latest advice from the server, if any since the last attach. */
  readonly advice:
    | { readonly kind: AdviceKindValue; readonly target: string; readonly at: number }
    | undefined;
}

/** A policy's verdict: move, why, and (optionally) where. */
export interface MigrationDecision {
  readonly reason: string;
  /** Member id to move to; undefined: the client picks an alternate. */
  readonly target?: string | undefined;
}

/**
 * Decides when a session should move. Policies are checked periodically and when advice arrives;
 * the mechanism (pull, resume, fencing) is the same whatever decided. Implementations: src/pool/policies.ts.
 */
export interface MigrationPolicy {
  readonly name: string;
  /** False for a policy that only reacts to events (advice): it is then not checked on a timer. */
  readonly periodic?: boolean;
  /**
   * For a policy that reads `view.rtt`: sample the RTT at least this often (ms), busy or not. Without
   * it, a client pings only when its server has gone quiet.
   */
  readonly rttSampleEvery?: number;
  check(view: PolicyView): MigrationDecision | undefined;
  /** Called after every migration, so a policy can reset its baseline. */
  reset?(view: PolicyView): void;
}
