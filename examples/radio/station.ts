/**
 * Radio: a streaming server in the spirit of an Internet radio server, on migratory sessions.
 *
 * A client tunes in with one line, `PLAY <station> <frames>\n`, and receives that many frames of the
 * station's source, paced by a timer (a few frames every few milliseconds, as a live stream is). The
 * source is generated: frame i of station s is a 16-byte header (magic "LZRF", station, index,
 * payload length) and a payload of seeded pseudo-random bytes, so any frame can be produced from its
 * index alone. The whole state of a listener is therefore its position in the source: the handler
 * checkpoints `{ station, total, next }` after every tick, and when the client moves to another
 * member of the pool, the new owner restarts the stream at `next`. The client sees one continuous
 * stream: no gap, no duplicate frame, byte for byte the source.
 *
 * Run: `npx tsx examples/radio/server.ts`, then `npx tsx examples/radio/client.ts` (it migrates
 * every 200 ms and checks the stream at the end).
 */
import { createHash } from 'node:crypto';
import { SeededRandom } from '../../src/faults/random.ts';
import type { ServerSession, SessionHandler } from '../../src/session/index.ts';

export const HEADER_BYTES = 16;
const MAGIC = 0x4c5a5246; // "LZRF"

export interface RadioOptions {
  /** Payload bytes per frame. Default 1024. */
  readonly frameBytes?: number;
  /** Timer period (ms). Default 5. */
  readonly intervalMs?: number;
  /** Frames sent per tick. Default 4. */
  readonly framesPerTick?: number;
  /** Longest accepted request line. Default 256. */
  readonly maxLine?: number;
}

/** Frame `index` of `station`: a pure function of both, so a new owner can resume anywhere. */
export function frame(station: number, index: number, payloadBytes: number): Buffer {
  const out = Buffer.allocUnsafe(HEADER_BYTES + payloadBytes);
  out.writeUInt32BE(MAGIC, 0);
  out.writeUInt32BE(station >>> 0, 4);
  out.writeUInt32BE(index >>> 0, 8);
  out.writeUInt32BE(payloadBytes, 12);
  // One generator per frame, seeded from (station, index): no need to run through earlier frames.
  new SeededRandom(Math.imul(station ^ 0x9e3779b9, 0x85ebca6b) ^ index)
    .bytes(payloadBytes)
    .copy(out, HEADER_BYTES);
  return out;
}

/** sha-256 of the first `frames` frames of a station: what a listener must receive. */
export function sourceHash(station: number, frames: number, payloadBytes: number): string {
  const hash = createHash('sha256');
  for (let i = 0; i < frames; i++) hash.update(frame(station, i, payloadBytes));
  return hash.digest('hex');
}

type RadioState =
  /** Tuning in: the request line read so far (input is checkpointed chunk by chunk). */
  | { readonly kind: 'request'; readonly line: string }
  | { readonly kind: 'playing'; readonly station: number; readonly total: number; readonly next: number };

export function radioHandler(options: RadioOptions = {}): SessionHandler {
  const frameBytes = options.frameBytes ?? 1024;
  const intervalMs = options.intervalMs ?? 5;
  const framesPerTick = options.framesPerTick ?? 4;
  const maxLine = options.maxLine ?? 256;

  return (session: ServerSession) => {
    let state: RadioState = (session.restoredState as RadioState | undefined) ?? {
      kind: 'request',
      line: '',
    };
    let timer: NodeJS.Timeout | undefined;
    let waitingForDrain = false;

    const stop = (): void => {
      clearInterval(timer);
      timer = undefined;
    };

    const tick = (): void => {
      if (state.kind !== 'playing' || waitingForDrain) return;
      const { station, total } = state;
      let next = state.next;
      let room = true;
      for (let i = 0; i < framesPerTick && next < total && room; i++) {
        room = session.write(frame(station, next, frameBytes));
        next++;
      }
      state = { kind: 'playing', station, total, next };
      // The position is the whole state: after this, nothing needs replaying on a new owner.
      session.checkpoint(state);
      if (next === total) {
        stop();
        session.end();
      } else if (!room) {
        // A slow listener: skip ticks until the session drains, so memory stays bounded.
        waitingForDrain = true;
        session.once('drain', () => {
          waitingForDrain = false;
        });
      }
    };

    const play = (): void => {
      if (state.kind !== 'playing') return;
      if (state.next >= state.total) {
        session.end();
        return;
      }
      timer = setInterval(tick, intervalMs);
    };

    session.on('data', (chunk: Buffer) => {
      if (state.kind === 'playing') {
        // Listeners have nothing more to say; what they send is read and dropped.
        session.checkpoint(state);
        return;
      }
      const line = state.line + chunk.toString('latin1');
      const eol = line.indexOf('\n');
      if (eol < 0) {
        if (line.length > maxLine) {
          session.end('ERR request line too long\n');
          return;
        }
        state = { kind: 'request', line };
        session.checkpoint(state);
        return;
      }
      const m = /^PLAY (\d{1,10}) (\d{1,10})\r?$/.exec(line.slice(0, eol));
      if (!m) {
        session.end('ERR expected: PLAY <station> <frames>\n');
        return;
      }
      state = { kind: 'playing', station: Number(m[1]) >>> 0, total: Number(m[2]), next: 0 };
      session.checkpoint(state);
      play();
    });
    // A listener that never stops sending must not stall the stream: its input is already dropped.
    session.on('checkpointNeeded', () => session.checkpoint(state));
    session.on('end', () => {
      // The listener hung up before the end of its program.
      if (state.kind !== 'playing' || state.next < state.total) {
        stop();
        session.end();
      }
    });
    session.on('close', stop);
    session.on('error', stop);
    play();
  };
}

export interface Listening {
  readonly frames: number;
  readonly bytes: number;
  readonly hash: string;
}

/**
 * Checks a received radio stream as it arrives: frames in order from 0, each exactly the source's
 * (so a gap, a duplicate or a corrupted byte is reported at the frame where it happens), and hashes it.
 */
export class StreamChecker {
  readonly #station: number;
  readonly #frameBytes: number;
  readonly #hash = createHash('sha256');
  #pending: Buffer = Buffer.alloc(0);
  #frames = 0;
  #bytes = 0;

  constructor(station: number, frameBytes: number) {
    this.#station = station;
    this.#frameBytes = frameBytes;
  }

  get frames(): number {
    return this.#frames;
  }

  push(chunk: Buffer): void {
    this.#hash.update(chunk);
    this.#bytes += chunk.length;
    this.#pending = this.#pending.length === 0 ? chunk : Buffer.concat([this.#pending, chunk]);
    const size = HEADER_BYTES + this.#frameBytes;
    let at = 0;
    while (this.#pending.length - at >= size) {
      const got = this.#pending.subarray(at, at + size);
      const index = got.readUInt32BE(8);
      if (index !== this.#frames) {
        throw new Error(`frame ${index} arrived where frame ${this.#frames} was due`);
      }
      if (!got.equals(frame(this.#station, index, this.#frameBytes))) {
        throw new Error(`frame ${index} differs from the source`);
      }
      this.#frames++;
      at += size;
    }
    this.#pending = this.#pending.subarray(at);
  }

  finish(): Listening {
    if (this.#pending.length > 0) throw new Error(`stream ends inside frame ${this.#frames}`);
    return { frames: this.#frames, bytes: this.#bytes, hash: this.#hash.digest('hex') };
  }
}
