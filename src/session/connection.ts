import type { Socket } from 'node:net';
import {
  createError,
  ErrorCodes,
  isLazarusError,
  type LazarusError,
  peerEventError,
} from '../wire/errors.ts';
import { FrameDecoder, type FrameSink } from '../wire/frame-decoder.ts';
import { DATA_PREFIX_SIZE, decode, encode, FrameType, sessionDecoderOptions } from './protocol.ts';
import { keepaliveTicker } from './ticker.ts';

/** Payloads up to this size are copied into their frame rather than written separately. */
const SMALL_PAYLOAD = 16 * 1024;

/** What a Connection reports; the session or handshake currently in charge implements it. */
export interface ConnectionHandler {
  /** A whole control frame. */
  onFrame(type: number, body: Buffer): void;
  /** The start of a DATA frame with its piggybacked ack; its payload follows as onData calls. */
  onDataAck(ack: number): void;
  onData(chunk: Buffer): void;
  /** Every frame of one socket read has been delivered (a point to acknowledge). */
  onReadEnd(): void;
  /** The socket can take more writes. */
  onDrain(): void;
  /** The connection is gone; `err` says why when it broke rather than closed. */
  onClose(err: Error | undefined): void;
}

const ignore = (): void => {};
const refuseData = (): void => {
  throw createError(ErrorCodes.PROTOCOL, 'data before the handshake finished');
};

/**
 * A handler for a connection the session has left but not closed yet: whatever still arrives on it
 * belongs to no one (the session resumes elsewhere from its own offsets).
 */
export const discardingHandler: ConnectionHandler = {
  onFrame: ignore,
  onDataAck: ignore,
  onData: ignore,
  onReadEnd: ignore,
  onDrain: ignore,
  onClose: ignore,
};

/** A handler for a connection still in its handshake: control frames only, data is a protocol error. */
export function handshakeHandler(h: Pick<ConnectionHandler, 'onFrame' | 'onClose'>): ConnectionHandler {
  // Shared no-ops, not closures made per connection.
  return {
    onFrame: h.onFrame,
    onClose: h.onClose,
    onDataAck: refuseData,
    onData: ignore,
    onReadEnd: ignore,
    onDrain: ignore,
  };
}

export interface KeepaliveOptions {
  /** Ping at most this often. */
  readonly interval: number;
  /** Declare the connection dead after this long without receiving anything. */
  readonly timeout: number;
  /**
   * Ping only once nothing has been heard from the peer for this long: traffic proves the peer alive,
   * and thousands of sessions need not cost a ping each per interval. 0 pings every interval, busy or
   * not, for a client whose policies read the RTT.
   */
  readonly quietFor: number;
}

/**
 * One TCP (or TLS) connection carrying session frames: the edge between the socket and the protocol.
 * It decodes frames, writes them (header and payload corked into one writev, payload never copied),
 * and watches liveness with keepalive pings, so a stalled path is detected even when TCP says nothing.
 * A session outlives many Connections.
 */
export class Connection implements FrameSink {
  readonly socket: Socket;
  #handler: ConnectionHandler;
  readonly #decoder: FrameDecoder;
  #closed = false;
  #keepalive: KeepaliveOptions | undefined;
  #lastReceived = Date.now();
  #lastPing = Date.now();
  /** The protocol error this connection was closed for, if any (a bad frame, not a plain break). */
  failure: LazarusError | undefined;
  /** Round-trip time from the last PONG, in ms; undefined until one arrived. */
  rtt: number | undefined;

  constructor(socket: Socket, handler: ConnectionHandler, maxFrameSize: number) {
    this.socket = socket;
    this.#handler = handler;
    this.#decoder = new FrameDecoder(this, sessionDecoderOptions(maxFrameSize));
    socket.on('data', (chunk: Buffer) => this.#onSocketData(chunk));
    socket.on('drain', () => this.#handler.onDrain());
    socket.on('end', () => this.#onSocketEnd());
    socket.on('error', (err) => this.close(err));
    socket.on('close', () => {
      if (!this.#closed) this.close(peerEventError(ErrorCodes.PROTOCOL, 'connection closed'));
    });
  }

  get closed(): boolean {
    return this.#closed;
  }

  /** True when the socket's buffer is over its high-water mark. */
  get needsDrain(): boolean {
    return this.socket.writableNeedDrain;
  }

  setHandler(handler: ConnectionHandler): void {
    this.#handler = handler;
  }

  startKeepalive(options: KeepaliveOptions): void {
    this.#keepalive = options;
    this.#lastReceived = Date.now();
    keepaliveTicker.add(this, options.interval);
  }

  /** Called by the ticker: ping when quiet, break when the peer has been silent too long. */
  tick(now: number): void {
    const ka = this.#keepalive;
    if (!ka || this.#closed) return;
    if (now - this.#lastReceived >= ka.timeout) {
      this.close(
        createError(ErrorCodes.KEEPALIVE_TIMEOUT, `no traffic from peer for ${now - this.#lastReceived} ms`),
      );
      return;
    }
    if (now - this.#lastReceived < ka.quietFor) return;
    if (now - this.#lastPing >= ka.interval) {
      this.#lastPing = now;
      this.send(encode.ping(now));
    }
  }

  send(frame: Buffer): boolean {
    if (this.#closed) return false;
    return this.socket.write(frame);
  }

  /** Writes DATA frames of at most `maxPayload` bytes for `chunks`; returns false when the socket is full. */
  sendData(ack: number, chunks: readonly Buffer[], maxPayload: number): boolean {
    if (this.#closed) return false;
    const socket = this.socket;
    socket.cork();
    for (const chunk of chunks) {
      for (let at = 0; at < chunk.length; at += maxPayload) {
        const piece = at === 0 && chunk.length <= maxPayload ? chunk : chunk.subarray(at, at + maxPayload);
        if (piece.length <= SMALL_PAYLOAD) {
          // Copying a small payload next to its header is cheaper than a two-buffer writev.
          const frame = encode.dataHeader(ack, piece.length, piece.length);
          frame.set(piece, frame.length - piece.length);
          socket.write(frame);
        } else {
          socket.write(encode.dataHeader(ack, piece.length));
          socket.write(piece);
        }
      }
    }
    socket.uncork();
    return !socket.writableNeedDrain;
  }

  /** Sends a last frame (e.g. REFUSED) then closes gracefully; `err` is reported to the handler. */
  endWith(frame: Buffer, err?: Error): void {
    if (this.#closed) return;
    this.socket.end(frame);
    // A peer that never reads must not keep the socket open forever.
    setTimeout(() => this.socket.destroy(), 2000).unref();
    this.#finish(err);
  }

  /** Closes the connection because of a protocol error, telling the peer why first. */
  fail(err: LazarusError): void {
    if (this.#closed) return;
    this.failure = err;
    this.endWith(encode.refused({ code: err.code, message: err.message }), err);
  }

  close(err?: Error): void {
    if (this.#closed) return;
    this.socket.destroy();
    this.#finish(err);
  }

  #finish(err: Error | undefined): void {
    this.#closed = true;
    this.#decoder.stop();
    keepaliveTicker.delete(this);
    this.#handler.onClose(err);
  }

  #onSocketData(chunk: Buffer): void {
    this.#lastReceived = Date.now();
    try {
      this.#decoder.push(chunk);
      if (!this.#closed) this.#handler.onReadEnd();
    } catch (err) {
      // Only protocol errors close the connection; an exception from application code (a 'data'
      // listener runs inside push) is not ours to hide.
      if (!isLazarusError(err)) throw err;
      this.fail(err);
    }
  }

  #onSocketEnd(): void {
    if (this.#closed) return;
    try {
      this.#decoder.end();
      this.close(peerEventError(ErrorCodes.PROTOCOL, 'connection ended by peer'));
    } catch (err) {
      if (!isLazarusError(err)) throw err;
      this.close(err);
    }
  }

  onFrame(type: number, body: Buffer): void {
    if (type === FrameType.PING) {
      this.send(encode.pong(decode.offset(body, 'PING')));
      return;
    }
    if (type === FrameType.PONG) {
      this.rtt = Date.now() - decode.offset(body, 'PONG');
      return;
    }
    this.#handler.onFrame(type, body);
  }

  onStreamStart(_type: number, prefix: Buffer): void {
    this.#handler.onDataAck(decode.offset(prefix.subarray(0, DATA_PREFIX_SIZE), 'DATA'));
  }

  onStreamChunk(chunk: Buffer): void {
    this.#handler.onData(chunk);
  }
}
