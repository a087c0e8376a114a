import { type Continuation, decodeContinuation } from '../continuation/continuation.ts';
import { poolSecretBytes } from '../session/credentials.ts';
import type { MemberAddress } from '../session/protocol.ts';
import type { SessionPool, SessionServer } from '../session/server.ts';
import { codeFromWire, createError, ErrorCodes } from '../wire/errors.ts';
import { type Member, type Membership, StaticMembership } from './membership.ts';
import { PeerLink, PeerLinks, PeerServer, type PeerService } from './peer-link.ts';
import type { DrainReport } from './peer-protocol.ts';

/**
 * Where a new owner gets a session's continuation. The default pulls it from the owner over the
 * server-to-server channel; a fallback (e.g. reading the owner's backdoor region when the owner does
 * not answer) plugs in here.
 */
export interface ContinuationSource {
  pull(sessionId: Buffer, ownerHint: string, epoch: number, newOwner: string): Promise<Continuation>;
}

export interface PoolOptions {
  /** This server's member id. */
  self: string;
  /** The members (this one included), or a membership source. */
  members: readonly Member[] | Membership;
  /** Shared by every member: authenticates peers, signs tickets. */
  secret: string | Uint8Array;
  /** How long a pull may take before the migration fails with ERR_LZ_ORIGIN_UNREACHABLE. Default 3 s. */
  pullTimeout?: number;
  /** Tried when the owner cannot be reached (the backdoor seam). */
  fallback?: ContinuationSource;
}

/** Redirects followed while looking for a session's owner. */
const MAX_HOPS = 4;

/**
 * A server's membership in a pool of equivalent servers: serves pulls of its sessions to the other
 * members over an authenticated channel, and pulls sessions from them when a client migrates here.
 */
export class Pool implements SessionPool {
  readonly selfId: string;
  readonly secret: Buffer;
  readonly #membership: Membership;
  readonly #pullTimeout: number;
  readonly #fallback: ContinuationSource | undefined;
  readonly #links: PeerLinks;
  #peerServer: PeerServer | undefined;

  constructor(options: PoolOptions) {
    this.selfId = options.self;
    this.secret = poolSecretBytes(options.secret);
    this.#membership = Array.isArray(options.members)
      ? new StaticMembership(options.members as readonly Member[])
      : (options.members as Membership);
    if (!this.#membership.get(this.selfId)) {
      throw createError(ErrorCodes.INVALID_ARGUMENT, `pool member ${this.selfId} is not in the member list`);
    }
    this.#pullTimeout = options.pullTimeout ?? 3000;
    this.#fallback = options.fallback;
    this.#links = new PeerLinks({ selfId: this.selfId, secret: this.secret });
  }

  get self(): MemberAddress {
    return this.#membership.get(this.selfId)!;
  }

  get membership(): Membership {
    return this.#membership;
  }

  members(): readonly MemberAddress[] {
    return this.#membership.members();
  }

  onMembersChange(listener: () => void): () => void {
    this.#membership.on('change', listener);
    return () => this.#membership.off('change', listener);
  }

  async start(server: SessionServer): Promise<void> {
    const me = this.#membership.get(this.selfId)!;
    const service: PeerService = {
      pull: (sessionId, newOwner, epoch) =>
        this.#membership.get(newOwner)
          ? server.surrender(sessionId, newOwner, epoch)
          : {
              kind: 'refused',
              code: ErrorCodes.PEER_AUTH_FAILED,
              message: `${newOwner} is not a pool member`,
              redirect: '',
            },
      accept: (body, from) => {
        // The continuation comes from an authenticated member, but is checked like a pulled one.
        const continuation = decodeContinuation(body);
        server.acceptPush(continuation, from);
      },
      drain: (deadlineMs) => server.drain(deadlineMs),
    };
    const peers = new PeerServer({ selfId: this.selfId, secret: this.secret }, service);
    peers.on('peerError', (err: Error) => server.emit('peerError', err));
    await peers.listen(me.peerPort, me.host);
    this.#peerServer = peers;
    // Links to the other members open now, not on the first pull, which has a deadline to meet.
    for (const m of this.#membership.members()) {
      if (m.id !== this.selfId) this.#links.get(m.id, m.host, m.peerPort, this.#pullTimeout).catch(() => {});
    }
  }

  async close(): Promise<void> {
    this.#links.closeAll();
    await this.#peerServer?.close();
    this.#peerServer = undefined;
  }

  /**
   * Hands a session's continuation to member `to` unasked. 'moved' once `to` has it, or may have it
   * (the push left but no answer came: as with a pull whose answer was lost, the session is `to`'s);
   * 'kept' when it surely did not get it.
   */
  async push(to: string, parts: readonly Buffer[]): Promise<'moved' | 'kept'> {
    const member = this.#membership.get(to);
    if (!member || to === this.selfId) return 'kept';
    let link: PeerLink;
    try {
      link = await this.#links.get(member.id, member.host, member.peerPort, this.#pullTimeout);
    } catch {
      return 'kept';
    }
    const outcome = await link.push(parts, this.#pullTimeout);
    return outcome === 'accepted' || outcome === 'unknown' ? 'moved' : 'kept';
  }

  async pull(
    sessionId: Buffer,
    ownerHint: string,
    epoch: number,
    signal?: AbortSignal,
  ): Promise<Continuation> {
    try {
      return await this.#pullFromOwner(sessionId, ownerHint, epoch, signal);
    } catch (err) {
      if (
        !this.#fallback ||
        codeFromWire((err as { code?: string }).code ?? '') !== ErrorCodes.ORIGIN_UNREACHABLE
      ) {
        throw err;
      }
      return this.#fallback.pull(sessionId, ownerHint, epoch, this.selfId);
    }
  }

  async #pullFromOwner(
    sessionId: Buffer,
    ownerHint: string,
    epoch: number,
    signal: AbortSignal | undefined,
  ): Promise<Continuation> {
    const newOwner = this.selfId;
    let ownerId = ownerHint;
    for (let hop = 0; hop < MAX_HOPS; hop++) {
      // The session reached us another way (pushed): asking further could pull it away again.
      if (signal?.aborted) throw createError(ErrorCodes.ABORTED, 'pull no longer needed', signal.reason);
      const owner = this.#membership.get(ownerId);
      if (!owner || ownerId === this.selfId) {
        throw createError(
          ErrorCodes.UNKNOWN_SESSION,
          `no pool member ${JSON.stringify(ownerId)} owns this session`,
        );
      }
      const link = await this.#links.get(owner.id, owner.host, owner.peerPort, this.#pullTimeout);
      const result = await link.pull(sessionId, newOwner, epoch, this.#pullTimeout);
      if (result.kind === 'continuation') {
        const continuation = decodeContinuation(result.body);
        if (!continuation.sessionId.equals(sessionId)) {
          throw createError(ErrorCodes.PROTOCOL, `member ${owner.id} answered with another session`);
        }
        return continuation;
      }
      if (!result.redirect || result.redirect === ownerId) {
        throw createError(
          codeFromWire(result.code),
          `member ${owner.id} refused the pull: ${result.message}`,
        );
      }
      ownerId = result.redirect;
    }
    throw createError(ErrorCodes.MIGRATION_FAILED, `session not found after ${MAX_HOPS} redirects`);
  }
}

export function createPool(options: PoolOptions): Pool {
  return new Pool(options);
}

/**
 * Asks a member to drain itself (move all its sessions away) and waits for its report; what
 * `lazarus drain` does. The caller authenticates with the pool secret like any member.
 */
export async function requestDrain(
  member: Member,
  secret: string | Uint8Array,
  deadlineMs: number,
  caller = 'lazarus-cli',
): Promise<DrainReport> {
  const link = await PeerLink.dial(
    member.host,
    member.peerPort,
    { selfId: caller, secret: poolSecretBytes(secret) },
    5000,
  );
  try {
    return await link.drain(deadlineMs, deadlineMs + 5000);
  } finally {
    link.close();
  }
}
