import { createError, ErrorCodes } from './errors.ts';
import { FRAME_HEADER_SIZE, writeFrameHeader } from './frame.ts';

/**
 * Bounds-checked field codec for frame bodies. Every read checks the remaining length, so a hostile
 * body can only produce ERR_LZ_MALFORMED_FRAME, never an out-of-range read or a huge allocation.
 */

const TWO_32 = 2 ** 32;

export class FieldWriter {
  #buf: Buffer;
  #pos: number;
  readonly #headroom: number;

  /** `headroom`: bytes kept free before the body for a frame header (see frame()). */
  constructor(initialSize = 64, headroom = 0) {
    this.#buf = Buffer.allocUnsafe(headroom + initialSize);
    this.#pos = headroom;
    this.#headroom = headroom;
  }

  #ensure(n: number): void {
    if (this.#pos + n <= this.#buf.length) return;
    const next = Buffer.allocUnsafe(Math.max(this.#buf.length * 2, this.#pos + n));
    this.#buf.copy(next, 0, 0, this.#pos);
    this.#buf = next;
  }

  u8(v: number): this {
    this.#ensure(1);
    this.#buf[this.#pos++] = v;
    return this;
  }

  u16(v: number): this {
    this.#ensure(2);
    this.#buf.writeUInt16BE(v, this.#pos);
    this.#pos += 2;
    return this;
  }

  u32(v: number): this {
    this.#ensure(4);
    this.#buf.writeUInt32BE(v, this.#pos);
    this.#pos += 4;
    return this;
  }

  /** Unsigned 64-bit, from a safe integer (offsets up to 2^53 - 1). */
  u64(v: number): this {
    this.#ensure(8);
    writeU64(this.#buf, v, this.#pos);
    this.#pos += 8;
    return this;
  }

  /** Raw bytes of a length both sides know. */
  fixed(bytes: Uint8Array): this {
    this.#ensure(bytes.length);
    this.#buf.set(bytes, this.#pos);
    this.#pos += bytes.length;
    return this;
  }

  /** Bytes with a u16 length. */
  bytes16(bytes: Uint8Array): this {
    if (bytes.length > 0xffff)
      throw createError(ErrorCodes.INVALID_ARGUMENT, 'field longer than 65535 bytes');
    return this.u16(bytes.length).fixed(bytes);
  }

  /** Bytes with a u32 length. */
  bytes32(bytes: Uint8Array): this {
    return this.u32(bytes.length).fixed(bytes);
  }

  /** UTF-8 string with a u16 length. */
  string(s: string): this {
    return this.bytes16(Buffer.from(s, 'utf8'));
  }

  finish(): Buffer {
    return this.#buf.subarray(this.#headroom, this.#pos);
  }

  /** The body as a whole frame of `type`, its header written in the headroom: no copy of the body. */
  frame(type: number): Buffer {
    if (this.#headroom !== FRAME_HEADER_SIZE)
      throw new RangeError('frame() needs a frame header of headroom');
    writeFrameHeader(this.#buf, type, this.#pos - FRAME_HEADER_SIZE);
    return this.#buf.subarray(0, this.#pos);
  }
}

export class FieldReader {
  readonly #buf: Buffer;
  #pos = 0;
  readonly #what: string;

  /** `what` names the frame in error messages. */
  constructor(buf: Buffer, what: string) {
    this.#buf = buf;
    this.#what = what;
  }

  #need(n: number): number {
    const at = this.#pos;
    if (at + n > this.#buf.length) {
      throw createError(ErrorCodes.MALFORMED_FRAME, `${this.#what}: truncated (needs ${n} bytes at ${at})`);
    }
    this.#pos += n;
    return at;
  }

  u8(): number {
    return this.#buf[this.#need(1)]!;
  }

  u16(): number {
    return this.#buf.readUInt16BE(this.#need(2));
  }

  u32(): number {
    return this.#buf.readUInt32BE(this.#need(4));
  }

  u64(): number {
    const at = this.#need(8);
    const v = readU64(this.#buf, at);
    if (v === undefined)
      throw createError(ErrorCodes.MALFORMED_FRAME, `${this.#what}: 64-bit value out of range`);
    return v;
  }

  /** A view (no copy) of `n` bytes. */
  fixed(n: number): Buffer {
    const at = this.#need(n);
    return this.#buf.subarray(at, at + n);
  }

  bytes16(): Buffer {
    return this.fixed(this.u16());
  }

  bytes32(): Buffer {
    return this.fixed(this.u32());
  }

  string(): string {
    return this.bytes16().toString('utf8');
  }

  /** Bytes not read yet (optional trailers are present only when bytes remain). */
  get remaining(): number {
    return this.#buf.length - this.#pos;
  }

  /** Rejects trailing bytes, so one body has exactly one reading. */
  end(): void {
    if (this.#pos !== this.#buf.length) {
      throw createError(
        ErrorCodes.MALFORMED_FRAME,
        `${this.#what}: ${this.#buf.length - this.#pos} trailing bytes`,
      );
    }
  }
}

export function writeU64(buf: Buffer, v: number, at: number): void {
  buf.writeUInt32BE(Math.floor(v / TWO_32), at);
  buf.writeUInt32BE(v >>> 0, at + 4);
}

/** Reads an unsigned 64-bit value; undefined when it is not a safe integer. */
export function readU64(buf: Buffer, at: number): number | undefined {
  const hi = buf.readUInt32BE(at);
  if (hi > 0x1fffff) return undefined;
  return hi * TWO_32 + buf.readUInt32BE(at + 4);
}
