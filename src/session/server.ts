import { EventEmitter, once } from 'node:events';
import net, { type AddressInfo } from 'node:net';
import tls from 'node:tls';
import {
  type Continuation,
  checkContinuation,
  encodeContinuationParts,
} from '../continuation/continuation.ts';
import { createError, ErrorCodes, isLazarusError, type LazarusError } from '../wire/errors.ts';
import { Connection, handshakeHandler } from './connection.ts';
import {
  checkProof,
  checkResumeProof,
  deriveSessionSecret,
  earlyResumeProof,
  mintTicket,
  newNonce,
  newSessionId,
  poolSecretBytes,
  verifyTicket,
} from './credentials.ts';
import { channels } from './diagnostics.ts';
import { type CommonOptions, positive, type ResolvedCommon, resolveCommon } from './options.ts';
import {
  AdviceKind,
  decode,
  type EarlyResumeRequest,
  encode,
  FrameType,
  type MemberAddress,
  type ResumeRequest,
} from './protocol.ts';
import { ReplayGuard } from './replay-guard.ts';
import { type ContinuationOptions, ServerSession, type SessionHost } from './server-session.ts';
import type { SessionTuning } from './session-stream.ts';

export { ServerSession };

/**
 * What a server needs from the pool it belongs to (implemented in src/pool). Kept as an interface so
 * the transport does not depend on how membership or pulls work.
 */
export interface SessionPool {
  readonly selfId: string;
  /** The pool secret: tickets from any member verify on every member. */
  readonly secret: Buffer;
  /** Where clients reach this member. */
  readonly self: MemberAddress;
  /** Every member, this one included, as clients should see them. */
  members(): readonly MemberAddress[];
  /** Calls `listener` whenever the members change; returns a function that stops it. */
  onMembersChange(listener: () => void): () => void;
  /**
   * Pulls a session's continuation from its owner (`ownerHint` first, following redirects); `epoch`
   * is the highest the client has seen, so a stale owner hands nothing over.
   */
  pull(sessionId: Buffer, ownerHint: string, epoch: number, signal?: AbortSignal): Promise<Continuation>;
  /**
   * Hands a session (its encoded continuation) to member `to` unasked: 'moved' once `to` has it or
   * may have it, 'kept' when it surely did not get it.
   */
  push?(to: string, parts: readonly Buffer[]): Promise<'moved' | 'kept'>;
  /** Starts serving this server's sessions to the other members. */
  start(server: SessionServer): Promise<void>;
  close(): Promise<void>;
}

/** What an owner answers a pull: the session's encoded continuation in pieces, or why not. */
export type Surrender =
  | { readonly kind: 'continuation'; readonly parts: Buffer[] }
  | { readonly kind: 'refused'; readonly code: string; readonly message: string; readonly redirect: string };

export interface ServerOptions extends CommonOptions {
  /** Pool secret: MACs tickets and derives session secrets. Default: the pool's, else random. */
  secret?: string | Uint8Array;
  /** Name announced in the hello. Default: the pool member id, else random. */
  serverId?: string;
  /** Listen with TLS, with these options for node:tls. */
  tls?: tls.TlsOptions;
  /** How long a closed or failed session's id is remembered, to answer late resumes. Default 2x resumeTimeout. */
  tombstoneTtl?: number;
  /** Membership in a pool of equivalent servers: sessions can then migrate here and away. */
  pool?: SessionPool;
  /** Keep continuations (input log, output since checkpoint). Default: on in a pool. */
  continuations?: boolean;
  /** Log size (input + output since the last checkpoint) that triggers 'checkpointNeeded'. Default 4 MiB. */
  logBudget?: number;
  /** Advise clients to move once this server holds more sessions than this. */
  maxSessions?: number;
  /**
   * Admit resumes sent with the connect (one round trip less per migration): each proof once, if
   * its client clock is within `window` ms of ours. `false`: every resume answers the hello's nonce.
   * Default { window: 30 s, capacity: 100,000 proofs remembered }.
   */
  earlyResume?: false | { window?: number; capacity?: number };
}

export type SessionHandler = (session: ServerSession) => void;

interface Tombstone {
  readonly code: LazarusError['code'];
  readonly expiresAt: number;
  /** Where the session went, when it migrated. */
  readonly movedTo?: string;
}

export interface DrainReport {
  /** Sessions that moved to other servers. */
  readonly moved: number;
  /** Sessions still here at the deadline. */
  readonly remaining: number;
  readonly ms: number;
}

/** How long a member waits for a session its client says is being pushed before pulling it. */
const PUSH_GRACE_MS = 250;
/**
 * How long a session handed over waits before its old connection is closed and it is freed here.
 * Neither is part of the move, and done at once they compete for the cores with its last steps (the
 * new owner answering the client's resume, the client reading the answer): with the three on two
 * cores, closing at once made the 64 KiB migration's median 10% slower (bench/migration.ts, 6 pairs).
 */
const RETIRE_DELAY_MS = 3;
/** Why a pull stops when the push wins the race: made once (a default abort reason costs a DOMException). */
const PUSHED_MEANWHILE = createError(ErrorCodes.ABORTED, 'the session was pushed here meanwhile');
/**
 * How long an advised session keeps its place in a drain's window without moving. A move takes
 * milliseconds; one still there after this could not be handed over (the member it went to did not
 * take it) or ignores the advice, and the next sessions are advised in its place.
 */
const ADVICE_PLACE_MS = 1000;

/**
 * A lazarus session server. `handler` (or the 'session' event) receives one ServerSession per client
 * session, not per TCP connection. Events: 'session', 'sessionError' (err, session),
 * 'connectionError' (err, remoteAddress) for refused connections and bad frames, 'migrated'
 * (sessionId, to) and 'adopted' (sessionId) when a session leaves or arrives.
 */
export class SessionServer extends EventEmitter implements SessionHost {
  readonly serverId: string;
  readonly #secret: Buffer;
  readonly #common: ResolvedCommon;
  /** Every session's tuning: the common one, with the server's way of keeping alive. */
  readonly #tuning: SessionTuning;
  readonly #cont: ContinuationOptions;
  readonly #pool: SessionPool | undefined;
  readonly #maxSessions: number;
  readonly #listener: net.Server;
  readonly #sessions = new Map<string, ServerSession>();
  readonly #tombstones = new Map<string, Tombstone>();
  readonly #handshaking = new Set<Connection>();
  /**
   * Pulls in flight here, by session id, so two resumes of one session share one pull; a push of the
   * session that arrives meanwhile is taken instead.
   */
  readonly #pulling = new Map<
    string,
    { adopted: Promise<ServerSession>; takePushed: (continuation: Continuation) => void }
  >();
  /** Sessions this server is pushing to another member (frozen), with what waits for the outcome. */
  readonly #handingOver = new Map<string, Array<() => void>>();
  readonly #tombstoneTtl: number;
  readonly #replayGuard: ReplayGuard | undefined;
  #sweeper: NodeJS.Timeout | undefined;
  #closing = false;
  #draining = false;
  #stopWatchingMembers: (() => void) | undefined;
  #nextDrainTarget = 0;
  /** The last POOL frame encoded, and the member list it was encoded from. */
  #poolFrame: { members: readonly MemberAddress[]; frame: Buffer } | undefined;

  constructor(options: ServerOptions = {}, handler?: SessionHandler) {
    super();
    this.#common = resolveCommon(options);
    // Clients ping anyway: a server probes only a client quiet for half the timeout.
    const keepalive = this.#common.tuning.keepalive;
    this.#tuning = { ...this.#common.tuning, keepalive: { ...keepalive, quietFor: keepalive.timeout / 2 } };
    this.#pool = options.pool;
    this.#secret = options.pool ? options.pool.secret : poolSecretBytes(options.secret);
    this.serverId = options.serverId ?? options.pool?.selfId ?? newNonce().subarray(0, 6).toString('hex');
    this.#cont = {
      enabled: options.continuations ?? options.pool !== undefined,
      logBudget: options.logBudget ?? 4 * 1024 * 1024,
    };
    this.#maxSessions = options.maxSessions ?? Number.POSITIVE_INFINITY;
    this.#tombstoneTtl = options.tombstoneTtl ?? 2 * this.#common.resumeTimeout;
    const early = options.earlyResume ?? {};
    this.#replayGuard = early
      ? new ReplayGuard(
          positive('earlyResume.window', early.window, 30_000),
          Math.floor(positive('earlyResume.capacity', early.capacity, 100_000)),
        )
      : undefined;
    const onSocket = (socket: net.Socket) => this.#onSocket(socket);
    // TCP_NODELAY set as sockets are accepted, not by a call per socket.
    const noDelay = this.#common.tuning.noDelay;
    this.#listener = options.tls
      ? tls.createServer({ ...options.tls, noDelay }, onSocket)
      : net.createServer({ noDelay }, onSocket);
    // TLS handshake failures and the like concern one connection only.
    this.#listener.on('tlsClientError', (err: Error) => this.emit('connectionError', err, undefined));
    if (handler) this.on('session', handler);
  }

  get resumeTimeout(): number {
    return this.#common.resumeTimeout;
  }

  /** Live sessions by hex id. */
  get sessions(): ReadonlyMap<string, ServerSession> {
    return this.#sessions;
  }

  /**
   * Listens on `port` (0: any) of `host` (default loopback). In a pool, the defaults are this
   * member's address, and the pool's server-to-server channel starts too.
   */
  async listen(port?: number, host?: string): Promise<AddressInfo> {
    const self = this.#pool?.self;
    const address = await new Promise<AddressInfo>((resolve, reject) => {
      this.#listener.once('error', reject);
      // A deep accept queue: a drain elsewhere sends many clients here at once.
      this.#listener.listen(port ?? self?.port ?? 0, host ?? self?.host ?? '127.0.0.1', 4096, () => {
        this.#listener.off('error', reject);
        resolve(this.#listener.address() as AddressInfo);
      });
    });
    await this.#pool?.start(this);
    // Clients learn the alternates at open and again whenever the pool changes.
    this.#stopWatchingMembers ??= this.#pool?.onMembersChange(() => {
      this.#poolFrame = undefined;
      for (const session of this.#sessions.values()) session.announcePool();
    });
    return address;
  }

  address(): AddressInfo | null {
    return this.#listener.address() as AddressInfo | null;
  }

  /**
   * Stops listening and aborts every session (ERR_LZ_SERVER_CLOSING), except that sessions already
   * ending both ways get up to `graceMs` to exchange their last acknowledgements and close cleanly.
   */
  async close(graceMs = 2000): Promise<void> {
    this.#closing = true;
    const closed = new Promise<void>((resolve) => this.#listener.close(() => resolve()));
    for (const conn of this.#handshaking) conn.close();
    const ending = [...this.#sessions.values()].filter((s) => s.ending);
    for (const session of this.#sessions.values()) {
      if (!session.ending) session.destroy(createError(ErrorCodes.SERVER_CLOSING, 'server is closing'));
    }
    if (ending.length > 0) {
      const deadline = new Promise((resolve) => setTimeout(resolve, graceMs).unref());
      await Promise.race([
        Promise.all(ending.map((s) => (s.destroyed ? undefined : once(s, 'close')))),
        deadline,
      ]);
      for (const session of ending)
        session.destroy(createError(ErrorCodes.SERVER_CLOSING, 'server is closing'));
    }
    clearInterval(this.#sweeper);
    this.#sweeper = undefined;
    this.#stopWatchingMembers?.();
    this.#stopWatchingMembers = undefined;
    await this.#pool?.close();
    await closed;
  }

  /**
   * Moves every session away, as before a deploy: hands each one over to another member and tells
   * its client to resume there (or, without a pool that pushes, advises it to migrate), and resolves
   * when none is left or at the deadline. New sessions are moved on arrival.
   */
  async drain(deadlineMs = 30_000, window = 256): Promise<DrainReport> {
    const started = Date.now();
    this.#draining = true;
    let moved = 0;
    // Moved `window` at a time, the next as each one leaves: moving thousands at once would
    // stampede the other members' accept queues and this server's own event loop. Sessions are taken
    // in order from a live iterator, so each step costs O(1) however many sessions there are.
    const advised = new Set<string>();
    /** Advised sessions still holding a place in the window, with when they were advised. */
    const inFlight = new Map<string, number>();
    let queue = this.#sessions.values();
    const adviseMore = () => {
      while (inFlight.size < window) {
        const next = queue.next();
        if (next.done) return;
        const session = next.value;
        if (session.destroyed || advised.has(session.sessionId)) continue;
        advised.add(session.sessionId);
        inFlight.set(session.sessionId, Date.now());
        this.#adviseDrain(session);
      }
    };
    const onMigrated = (hex: string) => {
      moved++;
      inFlight.delete(hex);
      adviseMore();
    };
    this.on('migrated', onMigrated);
    try {
      adviseMore();
      while (this.#sessions.size > 0 && Date.now() - started < deadlineMs) {
        await new Promise((resolve) => setTimeout(resolve, 20));
        // Sessions that ended without moving free their place, and so do those advised long ago
        // that have not moved (a client that ignores advice must not hold up the rest); sessions
        // that arrived after the iterator ran out are taken by a fresh one.
        const now = Date.now();
        for (const [hex, at] of inFlight) {
          if (!this.#sessions.has(hex) || now - at > ADVICE_PLACE_MS) inFlight.delete(hex);
        }
        if (inFlight.size < window) queue = this.#sessions.values();
        adviseMore();
      }
    } finally {
      this.off('migrated', onMigrated);
    }
    return { moved, remaining: this.#sessions.size, ms: Date.now() - started };
  }

  /** Ends a drain: the server takes sessions again. */
  undrain(): void {
    this.#draining = false;
  }

  /**
   * Freezes a session and returns its encoded continuation for `newOwner` (a pull from a peer).
   * Returns a refusal when the session is not here, with where it went if it moved.
   */
  surrender(sessionId: Buffer, newOwner: string, epoch: number): Surrender | Promise<Surrender> {
    const hex = sessionId.toString('hex');
    const waiting = this.#handingOver.get(hex);
    if (waiting) {
      // Being pushed elsewhere right now: answer once that is settled (moved: a redirect).
      return new Promise((resolve) =>
        waiting.push(() => resolve(this.surrender(sessionId, newOwner, epoch))),
      );
    }
    const session = this.#sessions.get(hex);
    if (!session) {
      const tomb = this.#tombstones.get(hex);
      const code = tomb?.code ?? ErrorCodes.UNKNOWN_SESSION;
      return { kind: 'refused', code, message: `session ${hex} is not here`, redirect: tomb?.movedTo ?? '' };
    }
    if (session.epoch < epoch) {
      // The client has seen a newer owner than us: we are stale and must not hand anything over.
      return {
        kind: 'refused',
        code: ErrorCodes.SESSION_MOVED,
        message: `session ${hex} is at epoch ${epoch}, this owner at ${session.epoch}`,
        redirect: '',
      };
    }
    const frozen = this.#freeze(hex, session);
    if (frozen.kind === 'continuation') this.#gone(hex, session, newOwner);
    return frozen;
  }

  /**
   * Freezes a session and encodes its continuation, checked before anything is given up: a
   * continuation the new owner would reject must not cost the session (it is thawed, and refused).
   */
  #freeze(hex: string, session: ServerSession): Surrender {
    try {
      return { kind: 'continuation', parts: encodeContinuationParts(checkContinuation(session.freeze())) };
    } catch (err) {
      session.thaw();
      const code = isLazarusError(err) ? err.code : ErrorCodes.MIGRATION_FAILED;
      return {
        kind: 'refused',
        code,
        message: `cannot hand over session ${hex}: ${(err as Error).message}`,
        redirect: '',
      };
    }
  }

  /** A frozen session now belongs to `newOwner`: a late resume here is redirected there. */
  #gone(hex: string, session: ServerSession, newOwner: string): void {
    this.#sessions.delete(hex);
    this.#tombstone(hex, { code: ErrorCodes.SESSION_MOVED, movedTo: newOwner });
    // Told once the continuation is on its way; its ending (the old connection closed, the
    // application told) once the move is done too.
    setImmediate(() => this.emit('migrated', hex, newOwner));
    setTimeout(() => session.handedOver(newOwner), RETIRE_DELAY_MS);
  }

  /**
   * @internal The client of `session` said it is moving to member `to`: hand the session over now,
   * unasked, so the new owner need not pull it when the client arrives (one round trip off the
   * move). Pulls and resumes of it wait until the push is settled; if `to` surely did not get it,
   * the session carries on here.
   */
  handoff(session: ServerSession, to: string): void {
    const pool = this.#pool;
    const hex = session.sessionId;
    if (!pool?.push || !this.#canPush(session, to)) return;
    const frozen = this.#freeze(hex, session);
    // Not encodable: left to the pull, which reports why.
    if (frozen.kind === 'refused') return;
    this.#handingOver.set(hex, []);
    // A push that throws (a pool breaking its contract) counts as not sent: the session stays here.
    pool
      .push(to, frozen.parts)
      .catch(() => 'kept' as const)
      .then((outcome) => {
        const waiting = this.#handingOver.get(hex) ?? [];
        this.#handingOver.delete(hex);
        if (outcome === 'moved') this.#gone(hex, session, to);
        else session.thaw();
        for (const next of waiting) next();
      });
  }

  /** A push of `session` to member `to` could start now (the pool pushes, `to` is another member, no push is under way). */
  #canPush(session: ServerSession, to: string): boolean {
    const pool = this.#pool;
    return (
      pool?.push !== undefined &&
      to !== '' &&
      to !== this.serverId &&
      this.#sessions.get(session.sessionId) === session &&
      !this.#handingOver.has(session.sessionId) &&
      pool.members().some((m) => m.id === to)
    );
  }

  /**
   * @internal A member handed us a session unasked (its client is on its way here). If a resume of
   * it is already pulling it, this continuation settles that pull.
   */
  acceptPush(continuation: Continuation, from: string): void {
    const hex = continuation.sessionId.toString('hex');
    if (this.#closing) throw createError(ErrorCodes.SERVER_CLOSING, 'server is closing');
    if (this.#sessions.has(hex)) {
      throw createError(ErrorCodes.MIGRATION_FAILED, `session ${hex} from ${from} is already here`);
    }
    const pulling = this.#pulling.get(hex);
    if (pulling) {
      pulling.takePushed(continuation);
      return;
    }
    const session = this.#adopted(hex, continuation);
    // The push is accepted once the session is ours: a handler whose replay fails (a divergence)
    // fails the session here, as it would on a pull; the old owner must not take it back.
    try {
      session.awaitResume();
    } catch (err) {
      session.destroy(err as Error);
    }
  }

  /** @internal Called by a session once its client has confirmed it. */
  handOver(session: ServerSession): void {
    channels.open.publish({ side: 'server', sessionId: session.sessionId });
    this.emit('session', session);
    if (this.#draining) this.#adviseDrain(session);
    else if (this.#sessions.size > this.#maxSessions) session.advise(AdviceKind.OVERLOAD, this.#pickTarget());
  }

  /** @internal Called by a session when it is destroyed. */
  retire(session: ServerSession, err: Error | null): void {
    if (this.#sessions.get(session.sessionId) !== session) return;
    this.#sessions.delete(session.sessionId);
    const code =
      err === null ? ErrorCodes.SESSION_CLOSED : isLazarusError(err) ? err.code : ErrorCodes.SESSION_ABORTED;
    this.#tombstone(session.sessionId, { code });
  }

  /** @internal */
  poolFrame(): Buffer | undefined {
    const members = this.#pool?.members();
    if (!members) return undefined;
    // Every resume announces the pool, and the list seldom changes. Kept until a change is
    // announced or the membership hands out another list.
    if (this.#poolFrame?.members !== members) this.#poolFrame = { members, frame: encode.pool(members) };
    return this.#poolFrame.frame;
  }

  /**
   * A draining server hands the session over at once, as if its client had announced the move:
   * every session leaves, whether or not its client heeds advice (one that does not resumes, once
   * its connection closes, where the pushed advice said), and the client's move costs no HANDOFF.
   * Told first, so the advice leaves on the connection before freezing detaches it.
   */
  #adviseDrain(session: ServerSession): void {
    const target = this.#pickTarget();
    if (!this.#canPush(session, target)) {
      session.advise(AdviceKind.DRAIN, target);
      return;
    }
    session.advisePushed(target);
    this.handoff(session, target);
  }

  /** Spreads moved sessions over the other members, round robin. */
  #pickTarget(): string {
    const others = (this.#pool?.members() ?? []).filter((m) => m.id !== this.serverId);
    if (others.length === 0) return '';
    return others[this.#nextDrainTarget++ % others.length]!.id;
  }

  #tombstone(hex: string, t: Omit<Tombstone, 'expiresAt'>): void {
    this.#tombstones.set(hex, { ...t, expiresAt: Date.now() + this.#tombstoneTtl });
    this.#sweeper ??= setInterval(() => this.#sweep(), Math.max(1000, this.#tombstoneTtl / 4)).unref();
  }

  #sweep(): void {
    const now = Date.now();
    for (const [id, t] of this.#tombstones) if (t.expiresAt <= now) this.#tombstones.delete(id);
    if (this.#tombstones.size === 0) {
      clearInterval(this.#sweeper);
      this.#sweeper = undefined;
    }
  }

  #onSocket(socket: net.Socket): void {
    const remoteAddress = socket.remoteAddress;
    if (this.#closing) {
      socket.destroy();
      return;
    }
    const nonce = newNonce();
    // Before the first frame the hello is still owed; it leaves with the first answer. After it,
    // the client may OPEN or RESUME against its nonce.
    let greeted = false;
    const timer = setTimeout(
      () =>
        conn.close(
          createError(ErrorCodes.HANDSHAKE_TIMEOUT, 'client did not complete the handshake in time'),
        ),
      this.#common.handshakeTimeout,
    ).unref();
    const done = () => {
      clearTimeout(timer);
      this.#handshaking.delete(conn);
    };
    const first = (type: number, body: Buffer) => {
      greeted = true;
      conn.send(encode.serverHello({ nonce, serverId: this.serverId }));
      if (type === FrameType.EARLY_RESUME) {
        const request = decode.earlyResume(body);
        const sessionId = this.#admitEarly(request);
        if (!sessionId) {
          // Not admitted: the client answers the hello's nonce instead, on this connection.
          conn.send(encode.challenge());
          return;
        }
        done();
        this.#resume(conn, sessionId, request);
      } else if (type === FrameType.CLIENT_HELLO) {
        decode.greeting(body, 'CLIENT_HELLO');
      } else if (type === FrameType.OPEN) {
        decode.greeting(body, 'OPEN');
        done();
        this.#open(conn);
      } else {
        throw createError(
          ErrorCodes.PROTOCOL,
          `expected OPEN, EARLY_RESUME or CLIENT_HELLO, got frame 0x${type.toString(16)}`,
        );
      }
    };
    const handshake = handshakeHandler({
      onFrame: (type, body) => {
        if (!greeted) {
          // The hello and the answer leave in one write.
          socket.cork();
          try {
            first(type, body);
          } finally {
            socket.uncork();
          }
          return;
        }
        done();
        if (type === FrameType.OPEN) {
          decode.greeting(body, 'OPEN');
          this.#open(conn);
        } else if (type === FrameType.RESUME) {
          const request = decode.resume(body);
          const { sessionId } = verifyTicket(this.#secret, request.ticket);
          checkResumeProof(deriveSessionSecret(this.#secret, sessionId), nonce, sessionId, request.proof);
          this.#resume(conn, sessionId, request);
        } else {
          throw createError(ErrorCodes.PROTOCOL, `expected OPEN or RESUME, got frame 0x${type.toString(16)}`);
        }
      },
      onClose: (err) => {
        clearTimeout(timer);
        this.#handshaking.delete(conn);
        if (err && isLazarusError(err)) {
          channels.refused.publish({ error: err, remoteAddress });
          this.emit('connectionError', err, remoteAddress);
        }
      },
    });
    const conn = new Connection(socket, handshake, this.#common.maxFrameSize);
    this.#handshaking.add(conn);
  }

  #open(conn: Connection): void {
    if (this.#closing) throw createError(ErrorCodes.SERVER_CLOSING, 'server is closing');
    const id = newSessionId();
    const hex = id.toString('hex');
    const session = new ServerSession(this, hex, this.#tuning, this.#cont);
    this.#sessions.set(hex, session);
    conn.send(
      encode.opened({
        sessionId: id,
        secret: deriveSessionSecret(this.#secret, id),
        ticket: mintTicket(this.#secret, id),
      }),
    );
    session.attachConnection(conn, 0);
  }

  /**
   * The session id of an early resume this server admits, else undefined (fall back to the
   * challenge). A wrong ticket or proof is refused outright: no challenge can make it right.
   */
  #admitEarly(request: EarlyResumeRequest): Buffer | undefined {
    const { sessionId } = verifyTicket(this.#secret, request.ticket);
    const secret = deriveSessionSecret(this.#secret, sessionId);
    const { serverId, clientNonce, sentAt } = request;
    checkProof(earlyResumeProof(secret, serverId, clientNonce, sentAt, sessionId), request.proof);
    if (serverId !== this.serverId || !this.#replayGuard?.admit(request.proof, sentAt)) return undefined;
    return sessionId;
  }

  /** Resumes (here, or by pulling it from its owner) a session whose client has proved itself. */
  #resume(conn: Connection, sessionId: Buffer, request: ResumeRequest | EarlyResumeRequest): void {
    const hex = sessionId.toString('hex');
    const waiting = this.#handingOver.get(hex);
    if (waiting) {
      // Back here while its push is in flight (the client could not reach the new owner): once
      // settled, the session is either still here or redirected.
      waiting.push(() => {
        if (conn.closed) return;
        try {
          this.#resume(conn, sessionId, request);
        } catch (err) {
          conn.fail(err as LazarusError);
        }
      });
      return;
    }
    const session = this.#sessions.get(hex);
    if (session) {
      this.#resumeHere(conn, session, request.received);
      return;
    }
    const tomb = this.#tombstones.get(hex);
    if (tomb && !tomb.movedTo) throw createError(tomb.code, `session ${hex} has ended`);
    const pool = this.#pool;
    if (!pool) throw createError(ErrorCodes.UNKNOWN_SESSION, `session ${hex} is not known to this server`);
    // The session lives elsewhere: pull its continuation from its owner, now that the client is here.
    // Where the client last had it is the freshest news; where we sent it is the fallback (our
    // tombstone may be older than the client's later moves).
    const hints = [...new Set([request.ownerHint, tomb?.movedTo])].filter(
      (h): h is string => h !== undefined && h !== '' && h !== this.serverId,
    );
    const pullFrom = async (signal: AbortSignal): Promise<Continuation> => {
      let first: unknown;
      for (const hint of hints) {
        try {
          return await pool.pull(sessionId, hint, request.epoch ?? 0, signal);
        } catch (err) {
          first ??= err;
        }
      }
      throw first ?? createError(ErrorCodes.UNKNOWN_SESSION, `no known owner for session ${hex}`);
    };
    // The client told its owner to push the session here: it is on its way, and a pull now would only
    // wait for it. Pull only if it has not come after a while (say the owner died meanwhile).
    const grace = 'pushed' in request && request.pushed === true ? PUSH_GRACE_MS : 0;
    this.#adopt(hex, pullFrom, grace).then(
      (adopted) => {
        if (conn.closed) adopted.awaitResume();
        else this.#resumeHere(conn, adopted, request.received);
      },
      (err: Error) => {
        const code = isLazarusError(err) ? err.code : ErrorCodes.MIGRATION_FAILED;
        conn.fail(createError(code, `cannot take over session ${hex}: ${err.message}`, err));
      },
    );
  }

  #resumeHere(conn: Connection, session: ServerSession, received: number): void {
    try {
      session.resumedBy(conn, received);
      // Advice sent while the client was away was lost with its connection.
      if (this.#draining) this.#adviseDrain(session);
    } catch (err) {
      // A client that claims impossible offsets cannot continue this session.
      session.destroy(err as Error);
      throw err;
    }
  }

  /**
   * Restores a pulled continuation as a local session, once even if several resumes race for it. A
   * push of the session that arrives meanwhile settles it at once (the pull's answer will only be a
   * redirect here).
   */
  #adopt(
    hex: string,
    pull: (signal: AbortSignal) => Promise<Continuation>,
    graceMs: number,
  ): Promise<ServerSession> {
    const pending = this.#pulling.get(hex);
    if (pending) return pending.adopted;
    const stopPulling = new AbortController();
    let takePushed!: (continuation: Continuation) => void;
    const pushed = new Promise<Continuation>((resolve) => {
      takePushed = (continuation) => {
        stopPulling.abort(PUSHED_MEANWHILE);
        resolve(continuation);
      };
    });
    const pulled =
      graceMs === 0
        ? pull(stopPulling.signal)
        : new Promise<Continuation>((resolve, reject) => {
            const timer = setTimeout(() => pull(stopPulling.signal).then(resolve, reject), graceMs);
            stopPulling.signal.addEventListener('abort', () => clearTimeout(timer), { once: true });
          });
    const adopted = Promise.race([pulled, pushed])
      .then((continuation) => this.#adopted(hex, continuation))
      .finally(() => this.#pulling.delete(hex));
    this.#pulling.set(hex, { adopted, takePushed });
    return adopted;
  }

  #adopted(hex: string, continuation: Continuation): ServerSession {
    const session = new ServerSession(this, hex, this.#tuning, this.#cont, continuation);
    this.#sessions.set(hex, session);
    this.#tombstones.delete(hex);
    this.emit('adopted', hex);
    return session;
  }
}

export function createServer(options?: ServerOptions, handler?: SessionHandler): SessionServer {
  return new SessionServer(options, handler);
}
