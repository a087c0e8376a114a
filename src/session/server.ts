import { EventEmitter } from 'node:events';
import net, { type AddressInfo } from 'node:net';
import tls from 'node:tls';
import { createError, ErrorCodes, isLazarusError, type LazarusError } from '../wire/errors.ts';
import { Connection, handshakeHandler } from './connection.ts';
import {
  checkResumeProof,
  deriveSessionSecret,
  mintTicket,
  newNonce,
  newSessionId,
  poolSecretBytes,
  verifyTicket,
} from './credentials.ts';
import { channels } from './diagnostics.ts';
import { type CommonOptions, type ResolvedCommon, resolveCommon } from './options.ts';
import { decode, encode, FrameType, type ResumeRequest } from './protocol.ts';
import { SessionStream, type SessionTuning } from './session-stream.ts';

export interface ServerOptions extends CommonOptions {
  /** Pool secret: MACs tickets and derives session secrets. Default: random, private to this server. */
  secret?: string | Uint8Array;
  /** Name announced in the hello. Default: random. */
  serverId?: string;
  /** Listen with TLS, with these options for node:tls. */
  tls?: tls.TlsOptions;
  /** How long a closed or failed session's id is remembered, to answer late resumes. Default 2x resumeTimeout. */
  tombstoneTtl?: number;
}

export type SessionHandler = (session: ServerSession) => void;

/**
 * The server end of one session. The application gets it once the client has confirmed the open, and
 * uses it as a Duplex; it survives any number of the client's reconnects.
 */
export class ServerSession extends SessionStream {
  readonly side = 'server';
  readonly sessionId: string;
  readonly #server: SessionServer;
  #confirmed = false;
  #resumeTimer: NodeJS.Timeout | undefined;

  constructor(server: SessionServer, sessionId: string, tuning: SessionTuning) {
    super(tuning);
    this.sessionId = sessionId;
    this.#server = server;
    // A session error must never crash the server, even if the application forgot a listener.
    this.on('error', (err) => server.emit('sessionError', err, this));
  }

  /** Attaches the connection that opened or resumed this session. */
  attachConnection(conn: Connection, peerReceived: number): number {
    const old = this.detach();
    old?.close();
    clearTimeout(this.#resumeTimer);
    this.#resumeTimer = undefined;
    return this.attach(conn, peerReceived);
  }

  /** The client proved it holds the session: hand it to the application. */
  #confirm(): void {
    if (this.#confirmed) return;
    this.#confirmed = true;
    this.#server.handOver(this);
  }

  override onFrame(type: number, body: Buffer): void {
    this.#confirm();
    super.onFrame(type, body);
  }

  override onDataAck(ack: number): void {
    this.#confirm();
    super.onDataAck(ack);
  }

  resumedBy(conn: Connection, request: ResumeRequest): void {
    this.checkPeerOffset(request.received);
    // RESUMED must precede the retransmission that attaching starts.
    conn.send(encode.resumed(this.receivedOffset));
    const retransmitted = this.attachConnection(conn, request.received);
    this.#confirm();
    channels.resume.publish({ side: this.side, sessionId: this.sessionId, retransmitted });
    this.emit('resumed', { attempt: 0, retransmitted });
  }

  protected onDetached(): void {
    const timeout = this.#server.resumeTimeout;
    this.#resumeTimer = setTimeout(() => {
      if (!this.#confirmed) {
        // The client never learned it had a session: drop it without involving the application.
        this.destroy();
        return;
      }
      this.destroy(
        createError(ErrorCodes.RESUME_TIMEOUT, `client did not resume the session within ${timeout} ms`),
      );
    }, timeout);
  }

  protected onComplete(): void {
    // Our FIN is acknowledged and the client's received: tell the client we are done, so it stops.
    const conn = this.detach();
    conn?.endWith(encode.refused({ code: ErrorCodes.SESSION_CLOSED, message: 'session closed' }));
    this.destroy();
  }

  protected override onDestroyed(err: Error | null): void {
    clearTimeout(this.#resumeTimer);
    this.#server.retire(this, err);
  }
}

interface Tombstone {
  readonly code: LazarusError['code'];
  readonly expiresAt: number;
}

/**
 * A lazarus session server. `handler` (or the 'session' event) receives one ServerSession per client
 * session, not per TCP connection. Events: 'session', 'sessionError' (err, session),
 * 'connectionError' (err, remoteAddress) for refused connections and bad frames.
 */
export class SessionServer extends EventEmitter {
  readonly serverId: string;
  readonly #secret: Buffer;
  readonly #common: ResolvedCommon;
  readonly #listener: net.Server;
  readonly #sessions = new Map<string, ServerSession>();
  readonly #tombstones = new Map<string, Tombstone>();
  readonly #handshaking = new Set<Connection>();
  readonly #tombstoneTtl: number;
  #sweeper: NodeJS.Timeout | undefined;
  #closing = false;

  constructor(options: ServerOptions = {}, handler?: SessionHandler) {
    super();
    this.#common = resolveCommon(options);
    this.#secret = poolSecretBytes(options.secret);
    this.serverId = options.serverId ?? newNonce().subarray(0, 6).toString('hex');
    this.#tombstoneTtl = options.tombstoneTtl ?? 2 * this.#common.resumeTimeout;
    const onSocket = (socket: net.Socket) => this.#onSocket(socket);
    this.#listener = options.tls ? tls.createServer(options.tls, onSocket) : net.createServer(onSocket);
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

  /** Listens on `port` (0: any) of `host` (default loopback). */
  listen(port = 0, host = '127.0.0.1'): Promise<AddressInfo> {
    return new Promise((resolve, reject) => {
      this.#listener.once('error', reject);
      this.#listener.listen(port, host, () => {
        this.#listener.off('error', reject);
        resolve(this.#listener.address() as AddressInfo);
      });
    });
  }

  address(): AddressInfo | null {
    return this.#listener.address() as AddressInfo | null;
  }

  /** Stops listening and aborts every session (ERR_LZ_SERVER_CLOSING). */
  async close(): Promise<void> {
    this.#closing = true;
    const closed = new Promise<void>((resolve) => this.#listener.close(() => resolve()));
    for (const conn of this.#handshaking) conn.close();
    for (const session of [...this.#sessions.values()]) {
      session.destroy(createError(ErrorCodes.SERVER_CLOSING, 'server is closing'));
    }
    clearInterval(this.#sweeper);
    this.#sweeper = undefined;
    await closed;
  }

  /** @internal Called by a session once its client has confirmed it. */
  handOver(session: ServerSession): void {
    channels.open.publish({ side: 'server', sessionId: session.sessionId });
    this.emit('session', session);
  }

  /** @internal Called by a session when it is destroyed. */
  retire(session: ServerSession, err: Error | null): void {
    if (this.#sessions.get(session.sessionId) !== session) return;
    this.#sessions.delete(session.sessionId);
    const code =
      err === null ? ErrorCodes.SESSION_CLOSED : isLazarusError(err) ? err.code : ErrorCodes.SESSION_ABORTED;
    this.#tombstones.set(session.sessionId, { code, expiresAt: Date.now() + this.#tombstoneTtl });
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
    const timer = setTimeout(
      () =>
        conn.close(
          createError(ErrorCodes.HANDSHAKE_TIMEOUT, 'client did not complete the handshake in time'),
        ),
      this.#common.handshakeTimeout,
    ).unref();
    const refuse = (err: LazarusError) => {
      channels.refused.publish({ error: err, remoteAddress });
      conn.fail(err);
    };
    const handshake = handshakeHandler({
      onFrame: (type, body) => {
        clearTimeout(timer);
        this.#handshaking.delete(conn);
        try {
          if (type === FrameType.OPEN) {
            decode.open(body);
            this.#open(conn);
          } else if (type === FrameType.RESUME) {
            this.#resume(conn, nonce, decode.resume(body));
          } else {
            throw createError(
              ErrorCodes.PROTOCOL,
              `expected OPEN or RESUME, got frame 0x${type.toString(16)}`,
            );
          }
        } catch (err) {
          if (!isLazarusError(err)) throw err;
          refuse(err);
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
    socket.setNoDelay(this.#common.tuning.noDelay);
    this.#handshaking.add(conn);
    conn.send(encode.serverHello({ nonce, serverId: this.serverId }));
  }

  #open(conn: Connection): void {
    if (this.#closing) throw createError(ErrorCodes.SERVER_CLOSING, 'server is closing');
    const id = newSessionId();
    const hex = id.toString('hex');
    const session = new ServerSession(this, hex, this.#common.tuning);
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

  #resume(conn: Connection, nonce: Buffer, request: ResumeRequest): void {
    const { sessionId } = verifyTicket(this.#secret, request.ticket);
    checkResumeProof(deriveSessionSecret(this.#secret, sessionId), nonce, sessionId, request.proof);
    const hex = sessionId.toString('hex');
    const session = this.#sessions.get(hex);
    if (!session) {
      const tomb = this.#tombstones.get(hex);
      if (tomb) throw createError(tomb.code, `session ${hex} has ended`);
      throw createError(ErrorCodes.UNKNOWN_SESSION, `session ${hex} is not known to this server`);
    }
    try {
      session.resumedBy(conn, request);
    } catch (err) {
      // A client that claims impossible offsets cannot continue this session.
      session.destroy(err as Error);
      throw err;
    }
  }
}

export function createServer(options?: ServerOptions, handler?: SessionHandler): SessionServer {
  return new SessionServer(options, handler);
}
