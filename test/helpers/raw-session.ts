import net from 'node:net';
import { resumeProof } from '../../src/session/credentials.ts';
import {
  DATA_PREFIX_SIZE,
  decode,
  encode,
  FrameType,
  type Opened,
  type Refusal,
  type ServerHello,
  sessionDecoderOptions,
} from '../../src/session/protocol.ts';
import type { LazarusError } from '../../src/wire/errors.ts';
import { DEFAULT_MAX_FRAME_SIZE } from '../../src/wire/frame.ts';
import { FrameDecoder } from '../../src/wire/frame-decoder.ts';

/**
 * A hand-driven session protocol client for tests: one TCP connection, frames written as given
 * (build them with encode.* / encodeFrame), frames received parsed with the session FrameDecoder.
 * It answers PINGs (so a long test is not cut by keepalive) and otherwise does only what it is told.
 */

export interface RawFrame {
  readonly type: number;
  /** A copy of the body; for DATA, the ack prefix followed by the payload. */
  readonly body: Buffer;
}

export class RawConnection {
  readonly socket: net.Socket;
  /** Every frame received except PING/PONG, in order. */
  readonly frames: RawFrame[] = [];
  /** PINGs (answered automatically) and PONGs received; neither is kept in `frames`. */
  pings = 0;
  pongs = 0;
  /** Set when the server sent something the session decoder refuses. */
  decodeError: LazarusError | undefined;
  /** Set when the socket reported an error (e.g. ECONNRESET). */
  socketError: Error | undefined;
  readonly closed: Promise<void>;
  #isClosed = false;
  #read = 0;
  #wake: (() => void) | undefined;
  #stream: { parts: Buffer[]; remaining: number } | undefined;
  readonly #decoder: FrameDecoder;

  private constructor(socket: net.Socket) {
    this.socket = socket;
    this.#decoder = new FrameDecoder(
      {
        onFrame: (type, body) => {
          if (type === FrameType.PING) {
            this.pings++;
            if (!socket.destroyed && socket.writable) socket.write(encode.pong(decode.offset(body, 'PING')));
            return;
          }
          if (type === FrameType.PONG) {
            this.pongs++;
            return;
          }
          this.#add({ type, body: Buffer.from(body) });
        },
        onStreamStart: (_type, prefix, remaining) => {
          this.#stream = { parts: [Buffer.from(prefix)], remaining };
          if (remaining === 0) this.#endStream();
        },
        onStreamChunk: (chunk) => {
          const s = this.#stream!;
          s.parts.push(Buffer.from(chunk));
          s.remaining -= chunk.length;
          if (s.remaining === 0) this.#endStream();
        },
      },
      sessionDecoderOptions(DEFAULT_MAX_FRAME_SIZE),
    );
    socket.on('data', (chunk: Buffer) => {
      try {
        this.#decoder.push(chunk);
      } catch (err) {
        this.decodeError = err as LazarusError;
        socket.destroy();
      }
    });
    socket.on('error', (err) => {
      this.socketError = err;
    });
    this.closed = new Promise((resolve) =>
      socket.once('close', () => {
        this.#isClosed = true;
        this.#notify();
        resolve();
      }),
    );
  }

  static connect(port: number, host = '127.0.0.1'): Promise<RawConnection> {
    return new Promise((resolve, reject) => {
      const socket = net.connect({ port, host });
      const raw = new RawConnection(socket);
      socket.once('connect', () => {
        socket.off('error', reject);
        resolve(raw);
      });
      socket.once('error', reject);
    });
  }

  get isClosed(): boolean {
    return this.#isClosed;
  }

  send(bytes: Uint8Array): void {
    this.socket.write(bytes);
  }

  /** Sends `bytes` (if any) and ends our side. */
  end(bytes?: Uint8Array): void {
    if (bytes) this.socket.end(bytes);
    else this.socket.end();
  }

  destroy(): void {
    this.socket.destroy();
  }

  /** The next frame not yet returned by next(); rejects after `ms` or when the connection closes first. */
  async next(ms = 3000): Promise<RawFrame> {
    const deadline = Date.now() + ms;
    while (this.#read >= this.frames.length) {
      if (this.#isClosed)
        throw new Error(`connection closed while waiting for a frame (${this.#describe()})`);
      const left = deadline - Date.now();
      if (left <= 0) throw new Error(`no frame within ${ms} ms (${this.#describe()})`);
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, left);
        this.#wake = () => {
          clearTimeout(timer);
          resolve();
        };
      });
    }
    return this.frames[this.#read++]!;
  }

  /** The next frame, which must be of `type`. */
  async expect(type: number, ms = 3000): Promise<Buffer> {
    const frame = await this.next(ms);
    if (frame.type !== type) {
      const detail =
        frame.type === FrameType.REFUSED ? `: ${JSON.stringify(decode.refusal(frame.body, 'REFUSED'))}` : '';
      throw new Error(`expected frame 0x${type.toString(16)}, got 0x${frame.type.toString(16)}${detail}`);
    }
    return frame.body;
  }

  /** Asks for the server's hello (CLIENT_HELLO, the client speaks first) and reads it. */
  async hello(ms = 3000): Promise<ServerHello> {
    this.send(encode.clientHello());
    return this.readHello(ms);
  }

  /** Reads the SERVER_HELLO the server's first answer starts with. */
  async readHello(ms = 3000): Promise<ServerHello> {
    return decode.serverHello(await this.expect(FrameType.SERVER_HELLO, ms));
  }

  /** Resolves once the socket is fully closed; rejects after `ms`. */
  async waitClosed(ms = 3000): Promise<void> {
    let timer: NodeJS.Timeout | undefined;
    try {
      await Promise.race([
        this.closed,
        new Promise<never>((_, reject) => {
          timer = setTimeout(
            () => reject(new Error(`connection still open after ${ms} ms (${this.#describe()})`)),
            ms,
          );
        }),
      ]);
    } finally {
      clearTimeout(timer);
    }
  }

  /** The REFUSED frames received, decoded. */
  refusals(): Refusal[] {
    return this.frames
      .filter((f) => f.type === FrameType.REFUSED)
      .map((f) => decode.refusal(f.body, 'REFUSED'));
  }

  /** DATA payload received so far, concatenated. */
  dataPayload(): Buffer {
    return Buffer.concat(
      this.frames.filter((f) => f.type === FrameType.DATA).map((f) => f.body.subarray(DATA_PREFIX_SIZE)),
    );
  }

  #add(frame: RawFrame): void {
    this.frames.push(frame);
    this.#notify();
  }

  #notify(): void {
    const wake = this.#wake;
    this.#wake = undefined;
    wake?.();
  }

  #endStream(): void {
    const s = this.#stream!;
    this.#stream = undefined;
    this.#add({ type: FrameType.DATA, body: Buffer.concat(s.parts) });
  }

  #describe(): string {
    const types = this.frames.map((f) => `0x${f.type.toString(16)}`).join(',');
    return `frames [${types}]${this.#isClosed ? ', closed' : ''}${this.decodeError ? `, ${this.decodeError.code}` : ''}`;
  }
}

/** Credentials of a session opened by hand. */
export interface RawSession extends Opened {
  /** The connection that opened it, still attached to the session. */
  readonly conn: RawConnection;
  readonly hello: ServerHello;
}

/**
 * Opens a session by hand: OPEN, then SERVER_HELLO and OPENED. With `confirm`, also sends ACK(0) as
 * a real client does, so the server hands the session to its application.
 */
export async function openRaw(port: number, confirm = true): Promise<RawSession> {
  const conn = await RawConnection.connect(port);
  conn.send(encode.open());
  const hello = await conn.readHello();
  const opened = decode.opened(await conn.expect(FrameType.OPENED));
  if (confirm) conn.send(encode.ack(0));
  return { conn, hello, ...opened };
}

export interface ResumeAttempt {
  readonly conn: RawConnection;
  readonly hello: ServerHello;
}

/**
 * Connects and sends RESUME for `session`. The proof is computed over this connection's nonce unless
 * `proof` is given (a function of that nonce, to forge or replay one).
 */
export async function resumeRaw(
  port: number,
  session: Pick<Opened, 'sessionId' | 'secret' | 'ticket'>,
  received: number,
  proof?: (nonce: Buffer) => Buffer,
): Promise<ResumeAttempt> {
  const conn = await RawConnection.connect(port);
  const hello = await conn.hello();
  conn.send(
    encode.resume({
      ticket: session.ticket,
      proof: proof ? proof(hello.nonce) : resumeProof(session.secret, hello.nonce, session.sessionId),
      received,
    }),
  );
  return { conn, hello };
}
