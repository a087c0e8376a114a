import { createError, ErrorCodes } from './errors.ts';
import { DEFAULT_MAX_FRAME_SIZE, FRAME_HEADER_SIZE } from './frame.ts';

/** Receives what a FrameDecoder finds. */
export interface FrameSink {
  /** A whole frame of a buffered type. */
  onFrame(type: number, body: Buffer): void;
  /**
   * The fixed prefix of a streamed frame. The remaining `bodyLength - prefix.length` bytes follow as
   * onStreamChunk calls, as they arrive, without being buffered or copied.
   */
  onStreamStart(type: number, prefix: Buffer, remaining: number): void;
  onStreamChunk(chunk: Buffer): void;
}

export interface FrameDecoderOptions {
  /** Frame types this protocol accepts; any other type is an error. */
  readonly types: ReadonlySet<number>;
  /** Streamed frame types, mapped to the size of their fixed prefix. */
  readonly streamed?: ReadonlyMap<number, number>;
  /** Largest body accepted; larger lengths are refused before any of the body is buffered. */
  readonly maxFrameSize?: number;
}

type State =
  | { readonly kind: 'header' }
  | { readonly kind: 'body'; readonly type: number; readonly length: number }
  | { readonly kind: 'prefix'; readonly type: number; readonly length: number; readonly prefix: number }
  | { readonly kind: 'stream'; remaining: number }
  | { readonly kind: 'failed' };

const HEADER: State = { kind: 'header' };

/**
 * A streaming frame decoder: an explicit state machine fed arbitrary chunks of a byte stream.
 * It is correct under any chunking, never trusts a length (maximum checked before buffering) and
 * throws only LazarusErrors; after the first error it is failed and ignores further input.
 */
export class FrameDecoder {
  readonly #sink: FrameSink;
  readonly #types: ReadonlySet<number>;
  readonly #streamed: ReadonlyMap<number, number>;
  #max: number;
  #state: State = HEADER;
  /** Bytes of a partial header, prefix or buffered body. */
  #parts: Buffer[] = [];
  #partsLength = 0;
  #stopped = false;

  constructor(sink: FrameSink, options: FrameDecoderOptions) {
    this.#sink = sink;
    this.#types = options.types;
    this.#streamed = options.streamed ?? new Map();
    this.#max = options.maxFrameSize ?? DEFAULT_MAX_FRAME_SIZE;
  }

  /** True when input stopped in the middle of a frame. */
  get midFrame(): boolean {
    return this.#state.kind !== 'header' || this.#partsLength > 0;
  }

  /** Changes the largest body accepted from the next frame on (e.g. raised once a peer is authenticated). */
  limit(maxFrameSize: number): void {
    this.#max = maxFrameSize;
  }

  /** Stops delivering frames, e.g. when the sink has closed the connection from a callback. */
  stop(): void {
    this.#stopped = true;
  }

  push(chunk: Buffer): void {
    let offset = 0;
    while (offset < chunk.length && !this.#stopped) {
      const state = this.#state;
      switch (state.kind) {
        case 'failed':
          return;
        case 'stream': {
          const take = Math.min(state.remaining, chunk.length - offset);
          const piece = chunk.subarray(offset, offset + take);
          offset += take;
          state.remaining -= take;
          if (state.remaining === 0) this.#state = HEADER;
          this.#sink.onStreamChunk(piece);
          break;
        }
        case 'header': {
          const header = this.#take(chunk, offset, FRAME_HEADER_SIZE);
          offset = header.offset;
          if (header.bytes) this.#onHeader(header.bytes);
          break;
        }
        case 'prefix': {
          const prefix = this.#take(chunk, offset, state.prefix);
          offset = prefix.offset;
          if (prefix.bytes) {
            const remaining = state.length - state.prefix;
            this.#state = remaining > 0 ? { kind: 'stream', remaining } : HEADER;
            this.#sink.onStreamStart(state.type, prefix.bytes, remaining);
          }
          break;
        }
        case 'body': {
          const body = this.#take(chunk, offset, state.length);
          offset = body.offset;
          if (body.bytes) {
            this.#state = HEADER;
            this.#sink.onFrame(state.type, body.bytes);
          }
          break;
        }
      }
    }
  }

  /** Call when the byte stream ends; ending in the middle of a frame is an error. */
  end(): void {
    if (this.#state.kind !== 'failed' && this.midFrame) {
      this.#state = { kind: 'failed' };
      throw createError(ErrorCodes.FRAME_TRUNCATED, 'connection ended in the middle of a frame');
    }
  }

  #onHeader(header: Buffer): void {
    const length = header.readUInt32BE(0);
    const type = header[4]!;
    if (!this.#types.has(type)) {
      this.#fail(createError(ErrorCodes.UNKNOWN_FRAME_TYPE, `unknown frame type 0x${type.toString(16)}`));
    }
    if (length > this.#max) {
      this.#fail(
        createError(
          ErrorCodes.FRAME_TOO_LARGE,
          `frame of ${length} bytes exceeds the maximum of ${this.#max}`,
        ),
      );
    }
    const prefix = this.#streamed.get(type);
    if (prefix === undefined) {
      if (length === 0) {
        this.#state = HEADER;
        this.#sink.onFrame(type, EMPTY);
      } else {
        this.#state = { kind: 'body', type, length };
      }
      return;
    }
    if (length < prefix) {
      this.#fail(
        createError(ErrorCodes.MALFORMED_FRAME, `frame type 0x${type.toString(16)} shorter than its prefix`),
      );
    }
    if (prefix === 0) {
      // Nothing to gather: start the stream now, or a frame ending with its header would wait for
      // more input (and end() would report it as truncated).
      this.#state = length > 0 ? { kind: 'stream', remaining: length } : HEADER;
      this.#sink.onStreamStart(type, EMPTY, length);
      return;
    }
    this.#state = { kind: 'prefix', type, length, prefix };
  }

  #fail(err: Error): never {
    this.#state = { kind: 'failed' };
    this.#parts = [];
    this.#partsLength = 0;
    throw err;
  }

  /**
   * Gathers `need` bytes across chunks. Returns them once complete (a zero-copy view when they lie in
   * one chunk) and the new read offset.
   */
  #take(chunk: Buffer, offset: number, need: number): { bytes: Buffer | undefined; offset: number } {
    if (need === 0) return { bytes: EMPTY, offset };
    if (this.#partsLength === 0 && chunk.length - offset >= need) {
      return { bytes: chunk.subarray(offset, offset + need), offset: offset + need };
    }
    const take = Math.min(need - this.#partsLength, chunk.length - offset);
    this.#parts.push(chunk.subarray(offset, offset + take));
    this.#partsLength += take;
    if (this.#partsLength < need) return { bytes: undefined, offset: offset + take };
    const bytes = Buffer.concat(this.#parts, need);
    this.#parts = [];
    this.#partsLength = 0;
    return { bytes, offset: offset + take };
  }
}

const EMPTY = Buffer.alloc(0);
