import { hash } from 'node:crypto';

/**
 * HMAC-SHA256 (RFC 2104) over Node's one-shot hash. createHmac() makes a native object per call,
 * registered for clean-up and freed by the GC; in a server holding thousands of sockets that
 * bookkeeping cost more than the hashing (a drain profile: 8% of a new owner's CPU in Hmac objects,
 * half of it in their constructor). Two one-shot hashes make no object.
 */

export type MacPart = Uint8Array | string;

const BLOCK = 64;
const DIGEST = 32;
/** Reused for every MAC (calls are synchronous), grown for long messages, wiped after each use. */
let scratch = Buffer.allocUnsafe(512);

/** HMAC-SHA256 of the concatenated `parts` (strings as UTF-8) under `key`. */
export function hmacSha256(key: Uint8Array, ...parts: MacPart[]): Buffer {
  const k = key.length > BLOCK ? hash('sha256', key, 'buffer') : key;
  let length = BLOCK;
  for (const p of parts) length += typeof p === 'string' ? Buffer.byteLength(p, 'utf8') : p.length;
  if (scratch.length < length) scratch = Buffer.allocUnsafe(Math.max(length, 2 * scratch.length));
  const buf = scratch;
  try {
    padKey(buf, k, 0x36);
    let at = BLOCK;
    for (const p of parts) {
      if (typeof p === 'string') at += buf.write(p, at, 'utf8');
      else {
        buf.set(p, at);
        at += p.length;
      }
    }
    const inner = hash('sha256', buf.subarray(0, length), 'buffer');
    padKey(buf, k, 0x5c);
    buf.set(inner, BLOCK);
    return hash('sha256', buf.subarray(0, BLOCK + DIGEST), 'buffer');
  } finally {
    buf.fill(0, 0, Math.max(length, BLOCK + DIGEST));
  }
}

function padKey(buf: Buffer, key: Uint8Array, pad: number): void {
  for (let i = 0; i < BLOCK; i++) buf[i] = (i < key.length ? key[i]! : 0) ^ pad;
}
