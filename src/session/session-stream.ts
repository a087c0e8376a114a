import { Duplex } from 'node:stream';
import { codeFromWire, createError, ErrorCodes, type LazarusError, peerEventError } from '../wire/errors.ts';
import type { Connection, ConnectionHandler, KeepaliveOptions } from './connection.ts';
import { channels } from './diagnostics.ts';
import { decode, encode, FrameType } from './protocol.ts';
import { SendBuffer } from './send-buffer.ts';

export interface SessionTuning {
  /** Bytes sent but not yet acknowledged before writes are held back (write() returns false). */
  readonly maxUnacked: number;
  /** Acknowledge after a socket read once this many received bytes are unacknowledged... */
  readonly ackEvery: number;
  /** ...or after this many ms, when nothing carries the ack sooner. */
  readonly ackDelay: number;
  /** Largest DATA payload per frame. */
  readonly maxDataFrame: number;
  readonly keepalive: KeepaliveOptions;
  /** Destroy the session with ERR_LZ_IDLE_TIMEOUT after this many ms without data either way. */
  readonly idleTimeout: number | undefined;
  readonly allowHalfOpen: boolean;
  readonly noDelay: boolean;
}

export const DEFAULT_TUNING: SessionTuning = {
  maxUnacked: 8 * 1024 * 1024,
  ackEvery: 2 * 1024 * 1024,
  ackDelay: 10,
  maxDataFrame: 256 * 1024,
  keepalive: { interval: 5000, timeout: 15_000, quietFor: 5000 },
  idleTimeout: undefined,
  allowHalfOpen: false,
  noDelay: true,
};

export type SessionSide = 'client' | 'server';

/** A stream's position, carried by a continuation from one server to the next. */
export interface StreamState {
  /** Payload bytes received from the peer. */
  readonly received: number;
  readonly finReceived: boolean;
  /** Offset of the first output byte held. */
  readonly outputStart: number;
  /** Offset the peer has acknowledged. */
  readonly acked: number;
  /** Output from outputStart on. */
  readonly output: readonly Buffer[];
  readonly finQueued: boolean;
}

/**
 * A session's byte stream in one direction each way, independent of any TCP connection.
 *
 * Each side numbers the bytes it sends; the peer acknowledges cumulative offsets (piggybacked on DATA
 * and on a short timer). What is sent and not yet acknowledged stays in a SendBuffer, so when a
 * connection breaks nothing is lost: the next connection's handshake tells each side what the other
 * has, and each retransmits exactly the rest. The application sees one continuous Duplex.
 *
 * Subclasses (client, server) own the connections and handshakes; this class owns the stream.
 */
export abstract class SessionStream extends Duplex implements ConnectionHandler {
  protected readonly tuning: SessionTuning;
  abstract readonly side: SessionSide;
  #send = new SendBuffer();
  /** Payload bytes received. */
  #received = 0;
  #finReceived = false;
  /** Highest ack sent to the peer (an offset counting FIN). */
  #ackSent = 0;
  #finQueued = false;
  #finAcked = false;
  #completed = false;
  #conn: Connection | undefined;
  /** The callback of a write held back by backpressure. */
  #pendingWrite: ((err?: Error | null) => void) | undefined;
  /** Bytes of that write: already in the send buffer, still counted by writableLength. */
  #pendingBytes = 0;
  #ackTimer: NodeJS.Timeout | undefined;
  /**
   * Acknowledgements stop here while input is held (the application must checkpoint first): the
   * peer can then send at most one window more. Infinity when not held.
   */
  #ackCap = Number.POSITIVE_INFINITY;
  #peerAborted = false;
  #idleTimer: NodeJS.Timeout | undefined;
  #userTimeout: NodeJS.Timeout | undefined;
  #noDelay: boolean;
  #keepAlive: { enable: boolean; delay: number } | undefined;
  /** Last socket used, for address getters while disconnected. */
  #lastSocket: Connection['socket'] | undefined;
  bytesRead = 0;
  bytesWritten = 0;

  constructor(tuning: SessionTuning) {
    super({ allowHalfOpen: tuning.allowHalfOpen, autoDestroy: false, emitClose: true });
    this.tuning = tuning;
    this.#noDelay = tuning.noDelay;
    if (tuning.idleTimeout !== undefined) {
      const ms = tuning.idleTimeout;
      this.#idleTimer = setTimeout(
        () => this.destroy(createError(ErrorCodes.IDLE_TIMEOUT, `no data either way for ${ms} ms`)),
        ms,
      ).unref();
    }
  }

  /** Hex session id, once known. */
  abstract get sessionId(): string | undefined;

  /** Called when the connection in charge is lost; `err` says why. */
  protected abstract onDetached(err: Error | undefined): void;

  /** Both directions are finished: our FIN is acknowledged and the peer's received. */
  protected abstract onComplete(): void;

  protected get connection(): Connection | undefined {
    return this.#conn;
  }

  protected get completed(): boolean {
    return this.#completed;
  }

  protected get finReceived(): boolean {
    return this.#finReceived;
  }

  /** Both directions have ended (FIN sent and received); only the final acknowledgements are pending. */
  get ending(): boolean {
    return this.#finQueued && this.#finReceived && !this.destroyed;
  }

  /** What we have received, counting a received FIN as one offset. */
  get receivedOffset(): number {
    return this.#received + (this.#finReceived ? 1 : 0);
  }

  /** What we have written, counting a queued FIN as one offset. */
  get sentOffset(): number {
    return this.#send.end + (this.#finQueued ? 1 : 0);
  }

  /** Bytes written and not yet acknowledged by the peer. */
  get unacknowledged(): number {
    return this.#send.size;
  }

  /** Changes of owner this session has been through (fences stale owners). */
  epoch = 0;

  /** Round-trip time of the current connection (ms), from keepalive pings. */
  get rtt(): number | undefined {
    return this.#conn?.rtt;
  }

  /**
   * Puts a connection whose handshake just finished in charge. `peerReceived` is what the peer says it
   * has received from us; everything after it is retransmitted now.
   */
  protected attach(conn: Connection, peerReceived: number): number {
    this.checkPeerOffset(peerReceived);
    this.#applyAck(peerReceived);
    this.#conn = conn;
    this.#lastSocket = conn.socket;
    conn.setHandler(this);
    conn.socket.setNoDelay(this.#noDelay);
    if (this.#keepAlive) conn.socket.setKeepAlive(this.#keepAlive.enable, this.#keepAlive.delay);
    conn.startKeepalive(this.tuning.keepalive);
    // The handshake told the peer what we have received, which it takes as an acknowledgement.
    this.#ackSent = this.receivedOffset;
    this.#clearAckTimer();
    let retransmitted = 0;
    if (peerReceived < this.#send.end) {
      const chunks = this.#send.from(peerReceived);
      for (const c of chunks) retransmitted += c.length;
      conn.sendData(this.#ackSent, chunks, this.tuning.maxDataFrame);
    }
    if (this.#finQueued && !this.#finAcked) conn.send(encode.fin(this.#send.end));
    this.#releaseWrite();
    return retransmitted;
  }

  /** Throws ERR_LZ_STALE_OFFSET unless the peer can really have received exactly `peerReceived`. */
  protected checkPeerOffset(peerReceived: number): void {
    if (peerReceived < this.#send.acked || peerReceived > this.sentOffset) {
      throw createError(
        ErrorCodes.STALE_OFFSET,
        `peer claims offset ${peerReceived}, outside what it can have received [${this.#send.acked}, ${this.sentOffset}]`,
      );
    }
  }

  /** Stops using the current connection (it broke, or a newer one replaced it). */
  protected detach(): Connection | undefined {
    const conn = this.#conn;
    this.#conn = undefined;
    this.#clearAckTimer();
    this.#releaseWrite();
    return conn;
  }

  // ---- ConnectionHandler: frames on the connection in charge ----

  onFrame(type: number, body: Buffer): void {
    switch (type) {
      case FrameType.ACK:
        this.#applyAck(decode.offset(body, 'ACK'));
        return;
      case FrameType.FIN:
        this.#onFin(decode.offset(body, 'FIN'));
        return;
      case FrameType.ABORT: {
        const r = decode.refusal(body, 'ABORT');
        this.#peerAborted = true;
        // A divergence keeps its code on both sides; anything else is the peer's abort.
        const code =
          codeFromWire(r.code) === ErrorCodes.DIVERGENCE ? ErrorCodes.DIVERGENCE : ErrorCodes.SESSION_ABORTED;
        this.destroy(peerEventError(code, `peer aborted the session: ${r.code}: ${r.message}`, r));
        return;
      }
      default:
        throw createError(
          ErrorCodes.PROTOCOL,
          `frame type 0x${type.toString(16)} is not allowed in a session`,
        );
    }
  }

  onDataAck(ack: number): void {
    this.#applyAck(ack);
  }

  onData(chunk: Buffer): void {
    if (this.#finReceived) throw createError(ErrorCodes.PROTOCOL, 'data after FIN');
    this.#received += chunk.length;
    this.bytesRead += chunk.length;
    this.onInput(chunk);
    this.#touch();
    // Never pause the connection for a slow reader: acks and control frames must keep flowing.
    // Flow control is the acknowledgement itself, which covers only what the application consumed.
    this.push(chunk);
  }

  /** One socket read was processed: acknowledge once for all the frames it held. */
  onReadEnd(): void {
    this.#scheduleAck();
  }

  onDrain(): void {
    this.#releaseWrite();
  }

  onClose(err: Error | undefined): void {
    if (!this.#conn) return;
    this.detach();
    channels.break.publish({ side: this.side, sessionId: this.sessionId, error: err });
    if (!this.destroyed) this.onDetached(err);
  }

  // ---- Duplex ----

  override _write(chunk: Buffer, _encoding: BufferEncoding, callback: (err?: Error | null) => void): void {
    this.#sendChunks([chunk], callback);
  }

  override _writev(
    chunks: Array<{ chunk: Buffer; encoding: BufferEncoding }>,
    callback: (err?: Error | null) => void,
  ): void {
    this.#sendChunks(
      chunks.map((c) => c.chunk),
      callback,
    );
  }

  override _final(callback: (err?: Error | null) => void): void {
    // A restored session may already carry the FIN its handler queues again while replaying.
    if (!this.#finQueued) {
      this.#finQueued = true;
      this.#conn?.send(encode.fin(this.#send.end));
    }
    callback();
  }

  override _read(): void {
    // The application consumed input: it may be time to acknowledge it.
    this.#scheduleAck();
  }

  override _destroy(err: Error | null, callback: (err: Error | null) => void): void {
    this.#clearAckTimer();
    clearTimeout(this.#idleTimer);
    clearTimeout(this.#userTimeout);
    const conn = this.detach();
    if (conn && !this.#completed && !this.#peerAborted) {
      const code = (err as LazarusError | null)?.code ?? ErrorCodes.SESSION_ABORTED;
      conn.endWith(encode.abort({ code, message: err?.message ?? 'session destroyed by peer' }));
    } else {
      conn?.close();
    }
    channels.close.publish({ side: this.side, sessionId: this.sessionId, error: err ?? undefined });
    this.onDestroyed(err);
    callback(err);
  }

  /** Subclass cleanup after the stream is destroyed. */
  protected onDestroyed(_err: Error | null): void {}

  /** Every received payload chunk passes here (a server logs input for its continuation). */
  protected onInput(_chunk: Buffer): void {}

  /**
   * Every written chunk passes here first; what it returns is sent. A restored server session
   * swallows (and compares) the output its handler reproduces while replaying. Throwing fails the write.
   */
  protected takeLiveOutput(chunks: Buffer[]): Buffer[] {
    return chunks;
  }

  /**
   * Stops (or restarts) taking input from the peer, whatever the application's reading pace: the
   * acknowledgement stays where it is, so the peer's writes stop completing after one window.
   */
  protected holdInput(hold: boolean): void {
    this.#ackCap = hold ? this.#ackSent : Number.POSITIVE_INFINITY;
    if (!hold) this.#scheduleAck();
  }

  /** Payload bytes received from the peer (FIN not counted). */
  protected get receivedPayload(): number {
    return this.#received;
  }

  /** Keeps written bytes from `offset` on even once acknowledged (they belong to a continuation). */
  protected retainOutput(offset: number): void {
    this.#send.retain(offset);
  }

  /** Where the stream stands, for a continuation: taken while frozen (no connection attached). */
  protected streamState(): StreamState {
    // Writes still queued in the Writable were produced before the freeze and belong to the output.
    const queued = (this as unknown as { writableBuffer?: Array<{ chunk: Buffer }> }).writableBuffer ?? [];
    return {
      received: this.#received,
      finReceived: this.#finReceived,
      outputStart: this.#send.base,
      acked: this.#send.acked,
      output: [...this.#send.from(this.#send.base), ...queued.map((q) => q.chunk)],
      finQueued: this.#finQueued,
    };
  }

  /**
   * Starts this stream where a continuation left off, before any connection is attached. Output from
   * `retainFrom` on is kept even once acknowledged (it belongs to the next continuation).
   */
  protected restoreStream(state: StreamState, retainFrom: number): void {
    this.#received = state.received;
    this.#finReceived = state.finReceived;
    this.#ackSent = this.receivedOffset;
    this.#send = new SendBuffer(state.outputStart);
    for (const chunk of state.output) this.#send.push(chunk);
    this.#send.retain(retainFrom);
    if (state.acked > state.outputStart) this.#send.ack(state.acked);
    this.#finQueued = state.finQueued;
  }

  /** True while written output is compared with a log rather than sent (see ServerSession). */
  protected get replayingOutput(): boolean {
    return false;
  }

  /** Output offset including writes still queued in the Writable: what the application has produced. */
  protected get producedOffset(): number {
    return this.#send.end + this.writableLength - this.#pendingBytes;
  }

  // ---- net.Socket surface ----

  setNoDelay(noDelay = true): this {
    this.#noDelay = noDelay;
    this.#conn?.socket.setNoDelay(noDelay);
    return this;
  }

  setKeepAlive(enable = false, initialDelay = 0): this {
    this.#keepAlive = { enable, delay: initialDelay };
    this.#conn?.socket.setKeepAlive(enable, initialDelay);
    return this;
  }

  /** As net.Socket: emit 'timeout' after `ms` without data either way (0 disables). */
  setTimeout(ms: number, callback?: () => void): this {
    clearTimeout(this.#userTimeout);
    this.#userTimeout = undefined;
    if (ms > 0) this.#userTimeout = setTimeout(() => this.emit('timeout'), ms).unref();
    if (callback) this.once('timeout', callback);
    return this;
  }

  address(): ReturnType<Connection['socket']['address']> | Record<string, never> {
    return this.#lastSocket?.address() ?? {};
  }

  get remoteAddress(): string | undefined {
    return this.#lastSocket?.remoteAddress;
  }

  get remotePort(): number | undefined {
    return this.#lastSocket?.remotePort;
  }

  get remoteFamily(): string | undefined {
    return this.#lastSocket?.remoteFamily;
  }

  get localAddress(): string | undefined {
    return this.#lastSocket?.localAddress;
  }

  get localPort(): number | undefined {
    return this.#lastSocket?.localPort;
  }

  // ---- internals ----

  #sendChunks(chunks: Buffer[], callback: (err?: Error | null) => void): void {
    let live: Buffer[];
    try {
      live = this.takeLiveOutput(chunks.filter((c) => c.length > 0));
    } catch (err) {
      // E.g. a replay that diverged: the session cannot go on, and the peer must be told why.
      this.destroy(err as Error);
      callback();
      return;
    }
    for (const c of live) {
      this.#send.push(c);
      this.bytesWritten += c.length;
    }
    this.#touch();
    if (this.#conn && live.length > 0) {
      // The piggybacked ack makes a pending ack timer a no-op; leaving it avoids timer churn.
      this.#ackSent = this.#ackable();
      this.#conn.sendData(this.#ackSent, live, this.tuning.maxDataFrame);
    }
    this.#pendingWrite = callback;
    this.#pendingBytes = chunks.reduce((n, c) => n + c.length, 0);
    this.#releaseWrite();
  }

  /** Lets the held write complete once there is room: unacked bytes under budget, socket not full. */
  #releaseWrite(): void {
    const cb = this.#pendingWrite;
    if (!cb) return;
    // Output a restored handler re-produces while replaying is not new: it must never wait for acks.
    if (this.#send.held >= this.tuning.maxUnacked && !this.replayingOutput) return;
    if (this.#conn?.needsDrain) return;
    this.#pendingWrite = undefined;
    this.#pendingBytes = 0;
    cb();
  }

  #applyAck(ack: number): void {
    if (ack > this.#send.end) {
      if (!this.#finQueued || ack !== this.#send.end + 1) {
        throw createError(ErrorCodes.STALE_OFFSET, `ack ${ack} is beyond what was sent (${this.sentOffset})`);
      }
      if (this.#send.acked < this.#send.end) this.#send.ack(this.#send.end);
      if (!this.#finAcked) {
        this.#finAcked = true;
        this.#checkComplete();
      }
    } else if (ack > this.#send.acked) {
      this.#send.ack(ack);
    } else if (ack < this.#send.acked) {
      throw createError(ErrorCodes.STALE_OFFSET, `ack ${ack} went backwards (had ${this.#send.acked})`);
    }
    this.#releaseWrite();
  }

  #onFin(offset: number): void {
    if (this.#finReceived || offset !== this.#received) {
      throw createError(
        ErrorCodes.PROTOCOL,
        `FIN at ${offset} does not match the ${this.#received} bytes received`,
      );
    }
    this.#finReceived = true;
    this.push(null);
    this.#sendAck();
    this.#checkComplete();
  }

  /** Marks both directions finished when the peer confirms it holds everything (e.g. it closed). */
  protected markPeerClosed(): void {
    if (this.#finQueued && !this.#finAcked) {
      if (this.#send.acked < this.#send.end) this.#send.ack(this.#send.end);
      this.#finAcked = true;
    }
    this.#checkComplete();
  }

  #checkComplete(): void {
    if (this.#completed || !this.#finAcked || !this.#finReceived) return;
    this.#completed = true;
    this.#sendAck();
    this.onComplete();
  }

  /**
   * What we can acknowledge: what the application has consumed (never more than one window sits
   * unread), held at the cap while input is held, and never below an ack already sent.
   */
  #ackable(): number {
    const consumed = this.receivedOffset - this.readableLength;
    return Math.max(this.#ackSent, Math.min(consumed, this.#ackCap));
  }

  #scheduleAck(): void {
    const pending = this.#ackable() - this.#ackSent;
    if (pending <= 0) return;
    // A FIN is acknowledged at once: the peer's completion waits for it.
    if (pending >= this.tuning.ackEvery || (this.#finReceived && this.readableLength === 0)) {
      this.#sendAck();
    } else if (!this.#ackTimer) {
      this.#ackTimer = setTimeout(() => {
        this.#ackTimer = undefined;
        this.#sendAck();
      }, this.tuning.ackDelay);
    }
  }

  #sendAck(): void {
    const conn = this.#conn;
    const ack = this.#ackable();
    if (!conn || ack <= this.#ackSent) return;
    this.#ackSent = ack;
    conn.send(encode.ack(ack));
  }

  #clearAckTimer(): void {
    if (this.#ackTimer) {
      clearTimeout(this.#ackTimer);
      this.#ackTimer = undefined;
    }
  }

  #touch(): void {
    this.#idleTimer?.refresh();
    this.#userTimeout?.refresh();
  }
}
