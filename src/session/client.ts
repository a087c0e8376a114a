import net from 'node:net';
import tls from 'node:tls';
import { codeFromWire, createError, ErrorCodes } from '../wire/errors.ts';
import { Connection, handshakeHandler } from './connection.ts';
import { resumeProof } from './credentials.ts';
import { channels } from './diagnostics.ts';
import { type CommonOptions, type ResolvedCommon, resolveCommon } from './options.ts';
import { decode, encode, FrameType, type Opened } from './protocol.ts';
import { SessionStream } from './session-stream.ts';

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
}

export type ClientStatus = 'opening' | 'open' | 'reconnecting' | 'closed';

export interface ReconnectingEvent {
  readonly attempt: number;
  readonly delay: number;
  readonly error: Error | undefined;
}

export interface ResumedEvent {
  readonly attempt: number;
  /** Bytes this side sent again because the peer had not received them. */
  readonly retransmitted: number;
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
]);

/**
 * The client end of a migratory session: a Duplex with the net.Socket surface that survives broken
 * connections. When its TCP connection breaks it reconnects with backoff and resumes, and each side
 * retransmits what the other lacks, until the session ends or its resume timeout passes.
 *
 * Events beyond net.Socket's: 'reconnecting' (ReconnectingEvent), 'resumed' (ResumedEvent).
 */
export class ClientSession extends SessionStream {
  readonly side = 'client';
  readonly #options: ConnectOptions;
  readonly #common: ResolvedCommon;
  #status: ClientStatus = 'opening';
  #credentials: Opened | undefined;
  #sessionIdHex: string | undefined;
  #attempt = 0;
  #brokenSince: number | undefined;
  readonly #startedAt = Date.now();
  #everConnected = false;
  #dialing: Connection | undefined;
  #reconnectTimer: NodeJS.Timeout | undefined;
  #refed = true;
  readonly #onAbort: () => void;

  constructor(options: ConnectOptions) {
    const common = resolveCommon(options);
    super(common.tuning);
    if (!Number.isInteger(options.port) || options.port <= 0 || options.port > 65535) {
      throw createError(
        ErrorCodes.INVALID_ARGUMENT,
        `port must be an integer in 1..65535, got ${options.port}`,
      );
    }
    this.#options = options;
    this.#common = common;
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

  #dial(): void {
    const { host = '127.0.0.1', port } = this.#options;
    const socket = this.#options.tls
      ? tls.connect({ ...this.#options.tls, host, port })
      : net.connect({ host, port });
    if (!this.#refed) socket.unref();
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
    const handshake = handshakeHandler({
      onFrame: (type, body) => {
        switch (type) {
          case FrameType.SERVER_HELLO:
            this.#onServerHello(conn, decode.serverHello(body).nonce);
            return;
          case FrameType.OPENED:
            clearTimeout(timer);
            this.#onOpened(conn, decode.opened(body));
            return;
          case FrameType.RESUMED:
            clearTimeout(timer);
            this.#onResumed(conn, decode.offset(body, 'RESUMED'));
            return;
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
        if (this.#dialing === conn) this.#dialing = undefined;
        if (!this.connection) this.#retry(err);
      },
    });
    const conn = new Connection(socket, handshake, this.#common.maxFrameSize);
    this.#dialing = conn;
  }

  #onServerHello(conn: Connection, nonce: Buffer): void {
    const creds = this.#credentials;
    if (!creds) {
      conn.send(encode.open());
      return;
    }
    conn.send(
      encode.resume({
        ticket: creds.ticket,
        proof: resumeProof(creds.secret, nonce, creds.sessionId),
        received: this.receivedOffset,
      }),
    );
  }

  #onOpened(conn: Connection, opened: Opened): void {
    if (this.#credentials) throw createError(ErrorCodes.PROTOCOL, 'OPENED for a session already open');
    // Copy: the frame body is a view of a socket chunk.
    this.#credentials = {
      sessionId: Buffer.from(opened.sessionId),
      secret: Buffer.from(opened.secret),
      ticket: Buffer.from(opened.ticket),
    };
    this.#sessionIdHex = this.#credentials.sessionId.toString('hex');
    this.#dialing = undefined;
    this.attach(conn, 0);
    // Tells the server we hold the credentials, so it hands the session to its application.
    conn.send(encode.ack(this.receivedOffset));
    this.#status = 'open';
    channels.open.publish({ side: this.side, sessionId: this.#sessionIdHex });
    this.emit('connect');
    this.emit('ready');
  }

  #onResumed(conn: Connection, peerReceived: number): void {
    if (!this.#credentials) throw createError(ErrorCodes.PROTOCOL, 'RESUMED before the session was opened');
    this.#dialing = undefined;
    let retransmitted: number;
    try {
      retransmitted = this.attach(conn, peerReceived);
    } catch (err) {
      conn.close();
      this.destroy(err as Error);
      return;
    }
    const event: ResumedEvent = { attempt: this.#attempt, retransmitted };
    this.#attempt = 0;
    this.#brokenSince = undefined;
    this.#status = 'open';
    channels.resume.publish({ side: this.side, sessionId: this.#sessionIdHex, retransmitted });
    this.emit('resumed', event);
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
    if (FATAL_REFUSALS.has(code) || code === ErrorCodes.SESSION_CLOSED) {
      conn.close();
      this.destroy(err);
      return;
    }
    conn.close(err);
    // A handshake connection retries from its own close handler.
    if (attached) this.#retry(err);
  }

  override onFrame(type: number, body: Buffer): void {
    // On a live session the server ends with REFUSED(SESSION_CLOSED) once both sides are done,
    // or reports a protocol error it saw on this connection (after which we resume).
    if (type === FrameType.REFUSED) {
      const conn = this.connection;
      if (conn) this.#onRefused(conn, decode.refusal(body, 'REFUSED'));
      return;
    }
    super.onFrame(type, body);
  }

  protected onDetached(err: Error | undefined): void {
    this.#retry(err);
  }

  protected onComplete(): void {
    // Wait for the server's REFUSED(SESSION_CLOSED): it proves the server saw our last ack, so it
    // will not wait for us. If the connection breaks first we resume to deliver it.
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
        this.destroy(
          createError(
            ErrorCodes.RESUME_TIMEOUT,
            `session could not be resumed within ${this.#common.resumeTimeout} ms: ${err?.message}`,
            err,
          ),
        );
        return;
      }
      this.#status = 'reconnecting';
    }
    const base = this.#options.reconnectDelay ?? 10;
    const max = this.#options.reconnectDelayMax ?? 1000;
    const delay = Math.round(
      Math.min(max, base * 2 ** Math.min(this.#attempt, 20)) * (0.5 + Math.random() / 2),
    );
    this.#attempt++;
    const event: ReconnectingEvent = { attempt: this.#attempt, delay, error: err };
    this.emit('reconnecting', event);
    this.#reconnectTimer = setTimeout(() => {
      this.#reconnectTimer = undefined;
      if (!this.destroyed) this.#dial();
    }, delay);
    if (!this.#refed) this.#reconnectTimer.unref();
  }

  protected override onDestroyed(): void {
    this.#status = 'closed';
    clearTimeout(this.#reconnectTimer);
    this.#dialing?.close();
    this.#dialing = undefined;
    this.#options.signal?.removeEventListener('abort', this.#onAbort);
  }
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
