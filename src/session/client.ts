import net from 'node:net';
import tls from 'node:tls';
import { codeFromWire, createError, ErrorCodes } from '../wire/errors.ts';
import { Connection, discardingHandler, handshakeHandler } from './connection.ts';
import { earlyResumeProof, newClientNonce, resumeProof } from './credentials.ts';
import { channels } from './diagnostics.ts';
import type { MigrationDecision, MigrationPolicy, PolicyView } from './migration.ts';
import { type CommonOptions, type ResolvedCommon, resolveCommon } from './options.ts';
import { decode, encode, FrameType, type MemberAddress, type Opened } from './protocol.ts';
import { SessionStream, type SessionTuning } from './session-stream.ts';
import { keepaliveTicker } from './ticker.ts';

export interface ConnectOptions extends CommonOptions {
  port: number;
  /** Default '127.0.0.1'. */
  host?: string;
  /** Connect with TLS, with these options for node:tls. */
  tls?: tls.ConnectionOptions;
  /** Destroys the session with ERR_LZ_ABORTED when aborted. */
  signal?: AbortSignal;
  /** How long the first open may keep retrying after the TCP connection broke. Default 10 s. */
  connectTimeout?: number;
  /** First reconnect delay; doubles per attempt up to reconnectDelayMax, with jitter. Default 10 ms. */
  reconnectDelay?: number;
  /** Default 1 s. */
  reconnectDelayMax?: number;
  /** When to migrate (see src/pool/policies.ts). Default: none (migrate only by hand or on failover). */
  policies?: readonly MigrationPolicy[];
  /** How often periodic policies are checked (ms). Default 100. */
  policyInterval?: number;
  /** Least time between two policy-driven migrations (ms). Default 1000. */
  minDwell?: number;
  /** Failed reconnects to one server before trying an alternate. Default 3. */
  failoverAfter?: number;
  /**
   * Resume with the connect, not after the server's hello, when the member dialled is known by id
   * (saves a round trip per migration; the server may still ask for the hello's nonce). Default true.
   */
  earlyResume?: boolean;
}

export type ClientStatus = 'opening' | 'open' | 'reconnecting' | 'migrating' | 'closed';

export interface ReconnectingEvent {
  readonly attempt: number;
  readonly delay: number;
  readonly error: Error | undefined;
  /** Where the next attempt goes. */
  readonly target: string;
}

export interface ResumedEvent {
  readonly attempt: number;
  /** Bytes this side sent again because the peer had not received them. */
  readonly retransmitted: number;
  /** Server now holding the session. */
  readonly serverId: string;
}

export interface MigratedEvent {
  readonly from: string | undefined;
  readonly to: string;
  readonly reason: string;
  /** From the decision to the session resumed on the new server. */
  readonly ms: number;
}

/** Codes the server sends in REFUSED after which retrying cannot help. */
const FATAL_REFUSALS: ReadonlySet<string> = new Set([
  ErrorCodes.AUTH_FAILED,
  ErrorCodes.BAD_TICKET,
  ErrorCodes.UNKNOWN_SESSION,
  ErrorCodes.STALE_OFFSET,
  ErrorCodes.SESSION_ABORTED,
  ErrorCodes.RESUME_TIMEOUT,
  ErrorCodes.BAD_MAGIC,
  ErrorCodes.UNSUPPORTED_VERSION,
  ErrorCodes.DIVERGENCE,
]);

interface Target {
  readonly id: string | undefined;
  readonly host: string;
  readonly port: number;
}

interface PendingMigration {
  readonly to: string;
  readonly reason: string;
  readonly startedAt: number;
  readonly resolve: () => void;
  readonly reject: (err: Error) => void;
}

/**
 * The client end of a migratory session: a Duplex with the net.Socket surface that survives broken
 * connections and moves between the servers of a pool. When its connection breaks it reconnects with
 * backoff and resumes (failing over to an alternate after repeated failures); when a policy or the
 * application decides, it migrates: it resumes on another server, which pulls the session from its
 * owner. Each side retransmits what the other lacks; the application sees one continuous stream.
 *
 * Events beyond net.Socket's: 'reconnecting' (ReconnectingEvent), 'resumed' (ResumedEvent),
 * 'migrating' ({ to, reason }), 'migrated' (MigratedEvent), 'advice' ({ kind, target, pushed }), 'pool' (members: at open and when they change).
 */
export class ClientSession extends SessionStream {
  readonly side = 'client';
  readonly #options: ConnectOptions;
  readonly #common: ResolvedCommon;
  readonly #policies: readonly MigrationPolicy[];
  #status: ClientStatus = 'opening';
  #credentials: Opened | undefined;
  #sessionIdHex: string | undefined;
  #attempt = 0;
  #brokenSince: number | undefined;
  readonly #startedAt = Date.now();
  #everConnected = false;
  #dialing: Connection | undefined;
  /**
   * The connection a migration left, closed once the session is attached again: closing it at once
   * would wake its server in the middle of the migration (the new owner's pull closes it anyway).
   */
  #leaving: Connection | undefined;
  #reconnectTimer: NodeJS.Timeout | undefined;
  #refed = true;
  readonly #onAbort: () => void;
  #target: Target;
  /** Server ids seen in hellos, by address: lets a resume to an address known only so be early too. */
  readonly #idAt = new Map<string, string>();
  /** Where the session was opened. */
  readonly #home: Target;
  #ownerId: string | undefined;
  /**
   * The member our owner pushes the session to, until we attach again: the one we told it in a
   * HANDOFF, or the one it said it handed the session to (a drain's pushed advice).
   */
  #handedOffTo: string | undefined;
  #members: readonly MemberAddress[] = [];
  /** The last POOL body received, to tell a repeated list from a new one. */
  #poolBody: Buffer | undefined;
  #migration: PendingMigration | undefined;
  #lastMigrationAt = 0;
  #attachedAt = 0;
  #lastReceivedAt = 0;
  #advice: PolicyView['advice'];
  #nextAlternate = 0;

  constructor(options: ConnectOptions) {
    const common = resolveCommon(options);
    super(clientTuning(common.tuning, options.policies ?? []));
    if (!Number.isInteger(options.port) || options.port <= 0 || options.port > 65535) {
      throw createError(
        ErrorCodes.INVALID_ARGUMENT,
        `port must be an integer in 1..65535, got ${options.port}`,
      );
    }
    this.#options = options;
    this.#common = common;
    this.#policies = options.policies ?? [];
    this.#home = { id: undefined, host: options.host ?? '127.0.0.1', port: options.port };
    this.#target = this.#home;
    this.#onAbort = () =>
      this.destroy(createError(ErrorCodes.ABORTED, 'session aborted', options.signal?.reason));
    if (options.signal?.aborted) {
      process.nextTick(this.#onAbort);
      return;
    }
    options.signal?.addEventListener('abort', this.#onAbort, { once: true });
    this.#dial();
  }

  get status(): ClientStatus {
    return this.#status;
  }

  get sessionId(): string | undefined {
    return this.#sessionIdHex;
  }

  /** Id of the server holding the session, once known. */
  get serverId(): string | undefined {
    return this.#ownerId;
  }

  /** The pool's members as last announced by the server. */
  get members(): readonly MemberAddress[] {
    return this.#members;
  }

  /** As net.Socket: true until the session is open. */
  get connecting(): boolean {
    return this.#status === 'opening';
  }

  get pending(): boolean {
    return this.#status !== 'open';
  }

  get readyState(): 'opening' | 'open' | 'readOnly' | 'writeOnly' | 'closed' {
    if (this.#status === 'opening') return 'opening';
    if (this.destroyed) return 'closed';
    if (this.readable && this.writable) return 'open';
    return this.readable ? 'readOnly' : this.writable ? 'writeOnly' : 'closed';
  }

  ref(): this {
    this.#refed = true;
    this.connection?.socket.ref();
    this.#dialing?.socket.ref();
    this.#reconnectTimer?.ref();
    return this;
  }

  unref(): this {
    this.#refed = false;
    this.connection?.socket.unref();
    this.#dialing?.socket.unref();
    this.#reconnectTimer?.unref();
    return this;
  }

  /**
   * Moves the session to another pool member (`to`, or the next alternate): resolves once it is
   * resumed there. Rejects with ERR_LZ_MIGRATION_FAILED if it cannot move (the session may then fail
   * too, e.g. when its owner is gone).
   */
  migrate(to?: string, reason = 'requested'): Promise<void> {
    if (this.destroyed) return Promise.reject(createError(ErrorCodes.MIGRATION_FAILED, 'session is closed'));
    if (!this.#credentials)
      return Promise.reject(createError(ErrorCodes.MIGRATION_FAILED, 'session is not open yet'));
    const member = to === undefined ? this.#alternate() : this.#members.find((m) => m.id === to);
    if (!member) {
      return Promise.reject(
        createError(
          ErrorCodes.MIGRATION_FAILED,
          to ? `no pool member ${to}` : 'no alternate server is known',
        ),
      );
    }
    this.#migration?.reject(createError(ErrorCodes.MIGRATION_FAILED, 'superseded by another migration'));
    return new Promise<void>((resolve, reject) => {
      this.#migration = { to: member.id, reason, startedAt: Date.now(), resolve, reject };
      this.#target = member;
      this.#status = 'migrating';
      this.emit('migrating', { to: member.id, reason });
      // Leave the current server, telling it where to: it may push the session there at once,
      // else the new one pulls it when we arrive. An owner that has pushed it already needs no word;
      // if it pushed it elsewhere, the member we go to pulls it from there (a redirect).
      const leaving = this.connection;
      if (this.#handedOffTo !== undefined) {
        if (this.#handedOffTo !== member.id) this.#handedOffTo = undefined;
      } else if (member.id !== this.#ownerId && leaving && !leaving.closed) {
        leaving.send(encode.handoff(member.id));
        this.#handedOffTo = member.id;
      }
      const conn = this.detach();
      if (conn) {
        conn.setHandler(discardingHandler);
        this.#closeLeaving();
        this.#leaving = conn;
      }
      // Cleared first: an attempt abandoned here must not retry from its close.
      const dialing = this.#dialing;
      this.#dialing = undefined;
      dialing?.close();
      clearTimeout(this.#reconnectTimer);
      this.#reconnectTimer = undefined;
      this.#dial();
    });
  }

  /** Called by the shared ticker: evaluates periodic policies. */
  tick(now: number): void {
    this.#checkPolicies(now);
  }

  #dial(): void {
    const { host, port } = this.#target;
    // Made before the connect: the less this process does between connect() and its next poll,
    // the likelier the frame is already there when the server accepts.
    const earlyFrame = this.#earlyResume();
    const socket = this.#options.tls
      ? tls.connect({ ...this.#options.tls, host, port })
      : // TCP_NODELAY set as the socket is made, not by a later call per attach.
        net.connect({ host, port, noDelay: this.#common.tuning.noDelay });
    // A migration the application asked for keeps the process alive until it is done.
    if (!this.#refed && !this.#migration) socket.unref();
    socket.once(this.#options.tls ? 'secureConnect' : 'connect', () => {
      this.#everConnected = true;
    });
    const timer = setTimeout(
      () =>
        conn.close(
          createError(ErrorCodes.HANDSHAKE_TIMEOUT, 'server did not complete the handshake in time'),
        ),
      this.#common.handshakeTimeout,
    ).unref();
    let helloId = '';
    let helloNonce: Buffer | undefined;
    // The client speaks first, queued until the connection is up (node writes it then, in one go):
    // OPEN, an early resume, or a request for the nonce a RESUME proof needs.
    const credentials = this.#credentials;
    socket.write(earlyFrame ?? (credentials ? encode.clientHello() : encode.open()));
    const handshake = handshakeHandler({
      onFrame: (type, body) => {
        switch (type) {
          case FrameType.SERVER_HELLO: {
            if (helloNonce) throw createError(ErrorCodes.PROTOCOL, 'a second SERVER_HELLO');
            const hello = decode.serverHello(body);
            helloId = hello.serverId;
            helloNonce = hello.nonce;
            this.#idAt.set(`${host}:${port}`, hello.serverId);
            if (credentials && !earlyFrame) this.#sendResume(conn, credentials, hello.nonce);
            return;
          }
          case FrameType.CHALLENGE:
            decode.challenge(body);
            if (!earlyFrame || !credentials || !helloNonce)
              throw createError(ErrorCodes.PROTOCOL, 'unexpected CHALLENGE');
            this.#sendResume(conn, credentials, helloNonce);
            return;
          case FrameType.OPENED:
            clearTimeout(timer);
            this.#onOpened(conn, decode.opened(body), helloId);
            return;
          case FrameType.RESUMED: {
            clearTimeout(timer);
            const r = decode.resumed(body);
            this.#onResumed(conn, r.received, r.epoch, helloId);
            return;
          }
          case FrameType.REFUSED:
            clearTimeout(timer);
            this.#onRefused(conn, decode.refusal(body, 'REFUSED'));
            return;
          default:
            throw createError(
              ErrorCodes.PROTOCOL,
              `unexpected frame 0x${type.toString(16)} during handshake`,
            );
        }
      },
      onClose: (err) => {
        clearTimeout(timer);
        // Only the attempt in charge retries; one abandoned by migrate() just goes.
        if (this.#dialing !== conn) return;
        this.#dialing = undefined;
        if (!this.connection) this.#retry(err);
      },
    });
    const conn = new Connection(socket, handshake, this.#common.maxFrameSize);
    this.#dialing = conn;
  }

  /** An EARLY_RESUME for the member dialled, when it is known by id (and early resume is on). */
  #earlyResume(): Buffer | undefined {
    const creds = this.#credentials;
    const { host, port, id } = this.#target;
    const serverId = id ?? this.#idAt.get(`${host}:${port}`);
    if (!creds || serverId === undefined || this.#options.earlyResume === false) return undefined;
    const clientNonce = newClientNonce();
    const sentAt = Date.now();
    return encode.earlyResume({
      ticket: creds.ticket,
      proof: earlyResumeProof(creds.secret, serverId, clientNonce, sentAt, creds.sessionId),
      received: this.receivedOffset,
      epoch: this.epoch,
      ownerHint: this.#ownerId ?? '',
      serverId,
      clientNonce,
      sentAt,
      pushed: this.#handedOffTo === serverId,
    });
  }

  #sendResume(conn: Connection, creds: Opened, nonce: Buffer): void {
    conn.send(
      encode.resume({
        ticket: creds.ticket,
        proof: resumeProof(creds.secret, nonce, creds.sessionId),
        received: this.receivedOffset,
        epoch: this.epoch,
        ownerHint: this.#ownerId ?? '',
      }),
    );
  }

  #onOpened(conn: Connection, opened: Opened, serverId: string): void {
    if (this.#credentials) throw createError(ErrorCodes.PROTOCOL, 'OPENED for a session already open');
    // Copy: the frame body is a view of a socket chunk.
    this.#credentials = {
      sessionId: Buffer.from(opened.sessionId),
      secret: Buffer.from(opened.secret),
      ticket: Buffer.from(opened.ticket),
    };
    this.#sessionIdHex = this.#credentials.sessionId.toString('hex');
    this.#dialing = undefined;
    this.#ownerId = serverId;
    this.#attachHere(conn, 0);
    // Tells the server we hold the credentials, so it hands the session to its application.
    conn.send(encode.ack(this.receivedOffset));
    this.#status = 'open';
    if (this.#policies.some((p) => p.periodic !== false)) {
      keepaliveTicker.add(this, this.#options.policyInterval ?? 100);
    }
    channels.open.publish({ side: this.side, sessionId: this.#sessionIdHex });
    this.emit('connect');
    this.emit('ready');
  }

  #onResumed(conn: Connection, peerReceived: number, epoch: number, serverId: string): void {
    if (!this.#credentials) throw createError(ErrorCodes.PROTOCOL, 'RESUMED before the session was opened');
    if (epoch < this.epoch) {
      // A stale owner (the session has moved on since): fence it out and look elsewhere.
      throw createError(
        ErrorCodes.SESSION_MOVED,
        `server ${serverId} offers epoch ${epoch}, session is at ${this.epoch}`,
      );
    }
    this.#dialing = undefined;
    let retransmitted: number;
    try {
      retransmitted = this.#attachHere(conn, peerReceived);
    } catch (err) {
      conn.close();
      this.destroy(err as Error);
      return;
    }
    const from = this.#ownerId;
    this.epoch = epoch;
    this.#ownerId = serverId;
    const event: ResumedEvent = { attempt: this.#attempt, retransmitted, serverId };
    this.#attempt = 0;
    this.#brokenSince = undefined;
    this.#status = 'open';
    channels.resume.publish({ side: this.side, sessionId: this.#sessionIdHex, retransmitted });
    this.emit('resumed', event);
    if (from !== serverId) this.#finishMigration(from, serverId);
  }

  #closeLeaving(): void {
    this.#leaving?.close();
    this.#leaving = undefined;
  }

  #attachHere(conn: Connection, peerReceived: number): number {
    const retransmitted = this.attach(conn, peerReceived);
    this.#handedOffTo = undefined;
    this.#closeLeaving();
    this.#attachedAt = Date.now();
    this.#lastReceivedAt = this.#attachedAt;
    this.#advice = undefined;
    return retransmitted;
  }

  #finishMigration(from: string | undefined, to: string): void {
    const m = this.#migration;
    this.#migration = undefined;
    this.#lastMigrationAt = Date.now();
    if (!this.#refed) this.connection?.socket.unref();
    const event: MigratedEvent = {
      from,
      to,
      reason: m?.reason ?? 'failover',
      ms: m ? Date.now() - m.startedAt : 0,
    };
    for (const p of this.#policies) p.reset?.(this.#view(Date.now()));
    this.emit('migrated', event);
    m?.resolve();
  }

  #onRefused(conn: Connection, refusal: { code: string; message: string }): void {
    const code = codeFromWire(refusal.code);
    // Closing an attached connection below must not read as a break; we decide what follows.
    const attached = conn === this.connection;
    if (attached) this.detach();
    if (code === ErrorCodes.SESSION_CLOSED && this.finReceived) {
      // The server closed after receiving everything we sent: the session ended cleanly.
      this.markPeerClosed();
      conn.close();
      this.destroy();
      return;
    }
    const err = createError(code, `server refused: ${refusal.message}`);
    if (code === ErrorCodes.ORIGIN_UNREACHABLE || code === ErrorCodes.MIGRATION_FAILED) {
      // The new server could not take the session over; its owner, if alive, still holds it:
      // the migration fails, the session goes back to its owner.
      const m = this.#migration;
      this.#migration = undefined;
      m?.reject(createError(ErrorCodes.MIGRATION_FAILED, `migration to ${m.to} failed: ${err.message}`, err));
      this.#target = this.#members.find((x) => x.id === this.#ownerId) ?? this.#home;
      conn.close(err);
      if (attached) this.#retry(err);
      return;
    }
    if (FATAL_REFUSALS.has(code) || code === ErrorCodes.SESSION_CLOSED) {
      conn.close();
      const m = this.#migration;
      this.destroy(
        m
          ? createError(ErrorCodes.MIGRATION_FAILED, `migration to ${m.to} failed: ${err.message}`, err)
          : err,
      );
      return;
    }
    conn.close(err);
    // A handshake connection retries from its own close handler.
    if (attached) this.#retry(err);
  }

  override onFrame(type: number, body: Buffer): void {
    switch (type) {
      case FrameType.REFUSED: {
        // The server ends with REFUSED(SESSION_CLOSED) once both sides are done, with
        // REFUSED(SESSION_MOVED) when the session left it, or reports a protocol error it saw.
        const conn = this.connection;
        if (conn) this.#onRefused(conn, decode.refusal(body, 'REFUSED'));
        return;
      }
      case FrameType.POOL:
        // Every resume brings the list; it is news only when it changed.
        if (this.#poolBody?.equals(body)) return;
        this.#members = decode.pool(body);
        // A copy: the body is a view of a read buffer that it would keep alive.
        this.#poolBody = Buffer.from(body);
        this.emit('pool', this.#members);
        return;
      case FrameType.ADVICE: {
        const advice = decode.advice(body);
        if (advice.pushed) this.#handedOffTo = advice.target;
        this.#advice = { ...advice, at: Date.now() };
        this.emit('advice', advice);
        this.#checkPolicies(Date.now());
        return;
      }
      default:
        super.onFrame(type, body);
    }
  }

  override onData(chunk: Buffer): void {
    this.#lastReceivedAt = Date.now();
    super.onData(chunk);
  }

  protected onDetached(err: Error | undefined): void {
    // Our owner said it handed the session to another member (it drains): resume there, not here.
    const pushedTo = this.#members.find((m) => m.id === this.#handedOffTo);
    if (pushedTo && !this.#migration) this.#target = pushedTo;
    this.#retry(err);
  }

  protected onComplete(): void {
    // Wait for the server's REFUSED(SESSION_CLOSED): it proves the server saw our last ack, so it
    // will not wait for us. If the connection breaks first we resume to deliver it.
  }

  #view(now: number): PolicyView {
    return {
      now,
      connected: this.connection !== undefined,
      ownerId: this.#ownerId,
      members: this.#members,
      rtt: this.rtt,
      bytesRead: this.bytesRead,
      lastReceivedAt: this.#lastReceivedAt,
      attachedAt: this.#attachedAt,
      unacknowledged: this.unacknowledged,
      advice: this.#advice,
    };
  }

  #checkPolicies(now: number): void {
    if (this.#policies.length === 0 || this.#migration || this.#status !== 'open' || this.destroyed) return;
    if (now - this.#lastMigrationAt < (this.#options.minDwell ?? 1000)) return;
    const view = this.#view(now);
    let decision: MigrationDecision | undefined;
    let by = '';
    for (const policy of this.#policies) {
      decision = policy.check(view);
      if (decision) {
        by = policy.name;
        break;
      }
    }
    if (!decision) return;
    this.#advice = undefined;
    const to =
      decision.target && this.#members.some((m) => m.id === decision.target) ? decision.target : undefined;
    this.migrate(to, `${by}: ${decision.reason}`).catch(() => {
      // The session reports the failure itself ('error'); the policy only asked.
    });
  }

  /** The next member other than the current owner, round robin over the whole pool. */
  #alternate(): MemberAddress | undefined {
    const members = this.#members;
    for (let i = 0; i < members.length; i++) {
      const m = members[this.#nextAlternate++ % members.length]!;
      if (m.id !== this.#ownerId) return m;
    }
    return undefined;
  }

  #retry(err: Error | undefined): void {
    if (this.destroyed) return;
    const now = Date.now();
    if (!this.#credentials) {
      if (!this.#everConnected || now - this.#startedAt > (this.#options.connectTimeout ?? 10_000)) {
        this.destroy(
          createError(ErrorCodes.CONNECT_FAILED, `could not open a session: ${err?.message}`, err),
        );
        return;
      }
    } else {
      this.#brokenSince ??= now;
      if (now - this.#brokenSince > this.#common.resumeTimeout) {
        if (this.completed) {
          // Everything was exchanged both ways; only the server's goodbye was lost.
          this.destroy();
          return;
        }
        const code = this.#migration ? ErrorCodes.MIGRATION_FAILED : ErrorCodes.RESUME_TIMEOUT;
        this.destroy(
          createError(
            code,
            `session could not be resumed within ${this.#common.resumeTimeout} ms: ${err?.message}`,
            err,
          ),
        );
        return;
      }
      if (!this.#migration) this.#status = 'reconnecting';
      // Connection lost and the server keeps failing: fail over to an alternate.
      if (this.#attempt + 1 >= (this.#options.failoverAfter ?? 3)) {
        const alternate = this.#alternate();
        if (alternate) this.#target = alternate;
      }
    }
    const base = this.#options.reconnectDelay ?? 10;
    const max = this.#options.reconnectDelayMax ?? 1000;
    const delay = Math.round(
      Math.min(max, base * 2 ** Math.min(this.#attempt, 20)) * (0.5 + Math.random() / 2),
    );
    this.#attempt++;
    const event: ReconnectingEvent = {
      attempt: this.#attempt,
      delay,
      error: err,
      target: this.#target.id ?? `${this.#target.host}:${this.#target.port}`,
    };
    this.emit('reconnecting', event);
    this.#reconnectTimer = setTimeout(() => {
      this.#reconnectTimer = undefined;
      if (!this.destroyed) this.#dial();
    }, delay);
    if (!this.#refed && !this.#migration) this.#reconnectTimer.unref();
  }

  protected override onDestroyed(err: Error | null): void {
    this.#status = 'closed';
    keepaliveTicker.delete(this);
    clearTimeout(this.#reconnectTimer);
    const dialing = this.#dialing;
    this.#dialing = undefined;
    dialing?.close();
    this.#closeLeaving();
    this.#options.signal?.removeEventListener('abort', this.#onAbort);
    this.#migration?.reject(
      err ?? createError(ErrorCodes.MIGRATION_FAILED, 'session closed during migration'),
    );
    this.#migration = undefined;
  }
}

/** A client whose policies read the RTT pings on a fixed period, the shortest any of them asks for. */
function clientTuning(tuning: SessionTuning, policies: readonly MigrationPolicy[]): SessionTuning {
  const every = Math.min(...policies.map((p) => p.rttSampleEvery ?? Number.POSITIVE_INFINITY));
  if (!Number.isFinite(every)) return tuning;
  const keepalive = tuning.keepalive;
  return {
    ...tuning,
    keepalive: { ...keepalive, interval: Math.min(keepalive.interval, every), quietFor: 0 },
  };
}

/**
 * Opens a migratory session to a lazarus server. Returns at once, like net.connect; 'connect' fires
 * when the session is open. Writes before that are kept and sent on open.
 */
export function connect(options: ConnectOptions, connectListener?: () => void): ClientSession {
  const session = new ClientSession(options);
  if (connectListener) session.once('connect', connectListener);
  return session;
}
