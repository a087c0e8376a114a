/**
 * Frame layout, shared by every lazarus protocol:
 *
 *   u32 BE  body length (type byte excluded)
 *   u8      frame type
 *   body    `length` bytes
 *
 * The length comes first so a decoder can refuse an oversized frame before buffering any of it.
 */

export const FRAME_HEADER_SIZE = 5;

/** Default upper bound on one frame body; decoders refuse anything larger. */
export const DEFAULT_MAX_FRAME_SIZE = 1024 * 1024;

/**
 * Allocates a frame of `bodyLength` with its header written and `room` bytes after the header for the
 * caller to fill (the whole body, or just a prefix when the payload is written separately).
 */
export function allocFrame(type: number, bodyLength: number, room: number): Buffer {
  const out = Buffer.allocUnsafe(FRAME_HEADER_SIZE + room);
  writeFrameHeader(out, type, bodyLength);
  return out;
}

/** Writes a frame header at the start of `out`. */
export function writeFrameHeader(out: Buffer, type: number, bodyLength: number): void {
  out.writeUInt32BE(bodyLength, 0);
  out[4] = type;
}

/** Encodes a complete frame into one buffer (for small control frames). */
export function encodeFrame(type: number, body: Uint8Array = EMPTY): Buffer {
  const out = allocFrame(type, body.length, body.length);
  out.set(body, FRAME_HEADER_SIZE);
  return out;
}

/**
 * Encodes only the header plus a small fixed prefix of the body, for frames whose bulk payload is
 * written separately (writev) so it is never copied.
 */
export function encodeFrameHeader(type: number, bodyLength: number, prefix: Uint8Array = EMPTY): Buffer {
  const out = allocFrame(type, bodyLength, prefix.length);
  out.set(prefix, FRAME_HEADER_SIZE);
  return out;
}

const EMPTY = new Uint8Array(0);
