import { timingSafeEqual } from 'node:crypto';
import { createError, ErrorCodes } from '../wire/errors.ts';
import { FieldReader, FieldWriter } from '../wire/fields.ts';
import { encodeFrame, encodeFrameHeader } from '../wire/frame.ts';
import type { FrameDecoderOptions } from '../wire/frame-decoder.ts';
import { hmacSha256 } from '../wire/hmac.ts';

/**
 * The server-to-server protocol of a pool. Both sides prove they hold the pool secret (HMAC over
 * the other side's fresh nonce) before anything else is accepted.
 *
 *   acceptor: PEER_HELLO   magic, version, nonce, id
 *   dialer:   PEER_AUTH    id, proof(acceptor nonce), nonce
 *   acceptor: PEER_WELCOME proof(dialer nonce)                | PEER_REFUSED code, message
 *   dialer -> acceptor requests, answered by request id:
 *     PULL  id, session, new owner, epoch -> CONTINUATION id, bytes | PULL_REFUSED id, code, message, redirect
 *   (the epoch is the highest the client has seen: an owner below it is stale and hands nothing over)
 *     PUSH  id, continuation         -> PUSH_ACK id | PUSH_REFUSED id, code, message
 *   (an owner whose client announced its move hands the session over before being asked)
 *     DRAIN id, deadline ms          -> DRAIN_REPORT id, moved, remaining, ms
 */

export const PEER_MAGIC = 0x4c5a5350; // 'LZSP'
export const PEER_VERSION = 1;

export const PeerFrame = {
  HELLO: 0x41,
  AUTH: 0x42,
  WELCOME: 0x43,
  REFUSED: 0x44,
  PULL: 0x45,
  CONTINUATION: 0x46,
  PULL_REFUSED: 0x47,
  DRAIN: 0x48,
  DRAIN_REPORT: 0x49,
  PUSH: 0x4a,
  PUSH_ACK: 0x4b,
  PUSH_REFUSED: 0x4c,
} as const;

export function peerDecoderOptions(maxFrameSize: number): FrameDecoderOptions {
  return { types: new Set<number>(Object.values(PeerFrame)), maxFrameSize };
}

export function peerProof(secret: Uint8Array, label: string, nonce: Uint8Array, id: string): Buffer {
  return hmacSha256(secret, label, nonce, id);
}

export function checkPeerProof(
  secret: Uint8Array,
  label: string,
  nonce: Uint8Array,
  id: string,
  proof: Buffer,
): void {
  const expected = peerProof(secret, label, nonce, id);
  if (proof.length !== expected.length || !timingSafeEqual(expected, proof)) {
    throw createError(
      ErrorCodes.PEER_AUTH_FAILED,
      `peer ${JSON.stringify(id)} does not hold the pool secret`,
    );
  }
}

export interface PullRefusal {
  readonly code: string;
  readonly message: string;
  /** Member id now owning the session, when it moved. */
  readonly redirect: string;
}

export interface DrainReport {
  readonly moved: number;
  readonly remaining: number;
  readonly ms: number;
}

function continuationFrame(type: number, id: number, parts: readonly Buffer[]): Buffer[] {
  let length = 0;
  for (const p of parts) length += p.length;
  const prefix = new FieldWriter(8).u32(id).u32(length).finish();
  return [encodeFrameHeader(type, prefix.length + length, prefix), ...parts];
}

export const encodePeer = {
  hello(nonce: Buffer, id: string): Buffer {
    return encodeFrame(
      PeerFrame.HELLO,
      new FieldWriter(64).u32(PEER_MAGIC).u8(PEER_VERSION).fixed(nonce).string(id).finish(),
    );
  },
  auth(id: string, proof: Buffer, nonce: Buffer): Buffer {
    return encodeFrame(PeerFrame.AUTH, new FieldWriter(96).string(id).fixed(proof).fixed(nonce).finish());
  },
  welcome(proof: Buffer): Buffer {
    return encodeFrame(PeerFrame.WELCOME, new FieldWriter(32).fixed(proof).finish());
  },
  refused(code: string, message: string): Buffer {
    return encodeFrame(PeerFrame.REFUSED, new FieldWriter(64).string(code).string(message).finish());
  },
  pull(id: number, sessionId: Buffer, newOwner: string, epoch: number): Buffer {
    return encodeFrame(
      PeerFrame.PULL,
      new FieldWriter(48).u32(id).fixed(sessionId).string(newOwner).u32(epoch).finish(),
    );
  },
  continuation(id: number, body: Buffer): Buffer {
    return Buffer.concat(encodePeer.continuationParts(id, [body]));
  },
  /** CONTINUATION as a header and the continuation's own pieces, none of them copied. */
  continuationParts(id: number, parts: readonly Buffer[]): Buffer[] {
    return continuationFrame(PeerFrame.CONTINUATION, id, parts);
  },
  /** PUSH, like CONTINUATION: a header and the continuation's pieces. */
  pushParts(id: number, parts: readonly Buffer[]): Buffer[] {
    return continuationFrame(PeerFrame.PUSH, id, parts);
  },
  pushAck(id: number): Buffer {
    return encodeFrame(PeerFrame.PUSH_ACK, new FieldWriter(4).u32(id).finish());
  },
  pushRefused(id: number, code: string, message: string): Buffer {
    const w = new FieldWriter(64).u32(id).string(code).string(message);
    return encodeFrame(PeerFrame.PUSH_REFUSED, w.finish());
  },
  pullRefused(id: number, r: PullRefusal): Buffer {
    const w = new FieldWriter(64).u32(id).string(r.code).string(r.message).string(r.redirect);
    return encodeFrame(PeerFrame.PULL_REFUSED, w.finish());
  },
  drain(id: number, deadlineMs: number): Buffer {
    return encodeFrame(PeerFrame.DRAIN, new FieldWriter(8).u32(id).u32(deadlineMs).finish());
  },
  drainReport(id: number, r: DrainReport): Buffer {
    return encodeFrame(
      PeerFrame.DRAIN_REPORT,
      new FieldWriter(16).u32(id).u32(r.moved).u32(r.remaining).u32(r.ms).finish(),
    );
  },
};

export const decodePeer = {
  hello(body: Buffer): { nonce: Buffer; id: string } {
    const r = new FieldReader(body, 'PEER_HELLO');
    const magic = r.u32();
    if (magic !== PEER_MAGIC)
      throw createError(ErrorCodes.BAD_MAGIC, `bad peer magic 0x${magic.toString(16)}`);
    const version = r.u8();
    if (version !== PEER_VERSION)
      throw createError(ErrorCodes.UNSUPPORTED_VERSION, `peer version ${version}`);
    const nonce = Buffer.from(r.fixed(32));
    const id = r.string();
    r.end();
    return { nonce, id };
  },
  auth(body: Buffer): { id: string; proof: Buffer; nonce: Buffer } {
    const r = new FieldReader(body, 'PEER_AUTH');
    const id = r.string();
    const proof = Buffer.from(r.fixed(32));
    const nonce = Buffer.from(r.fixed(32));
    r.end();
    return { id, proof, nonce };
  },
  welcome(body: Buffer): Buffer {
    const r = new FieldReader(body, 'PEER_WELCOME');
    const proof = Buffer.from(r.fixed(32));
    r.end();
    return proof;
  },
  refused(body: Buffer): { code: string; message: string } {
    const r = new FieldReader(body, 'PEER_REFUSED');
    const code = r.string();
    const message = r.string();
    r.end();
    return { code, message };
  },
  pull(body: Buffer): { id: number; sessionId: Buffer; newOwner: string; epoch: number } {
    const r = new FieldReader(body, 'PULL');
    const id = r.u32();
    const sessionId = Buffer.from(r.fixed(16));
    const newOwner = r.string();
    const epoch = r.u32();
    r.end();
    return { id, sessionId, newOwner, epoch };
  },
  continuation(body: Buffer, what = 'CONTINUATION'): { id: number; body: Buffer } {
    const r = new FieldReader(body, what);
    const id = r.u32();
    const continuation = r.bytes32();
    r.end();
    return { id, body: continuation };
  },
  push(body: Buffer): { id: number; body: Buffer } {
    return decodePeer.continuation(body, 'PUSH');
  },
  pushAck(body: Buffer): { id: number } {
    const r = new FieldReader(body, 'PUSH_ACK');
    const id = r.u32();
    r.end();
    return { id };
  },
  pushRefused(body: Buffer): { id: number; code: string; message: string } {
    const r = new FieldReader(body, 'PUSH_REFUSED');
    const id = r.u32();
    const code = r.string();
    const message = r.string();
    r.end();
    return { id, code, message };
  },
  pullRefused(body: Buffer): { id: number } & PullRefusal {
    const r = new FieldReader(body, 'PULL_REFUSED');
    const id = r.u32();
    const code = r.string();
    const message = r.string();
    const redirect = r.string();
    r.end();
    return { id, code, message, redirect };
  },
  drain(body: Buffer): { id: number; deadlineMs: number } {
    const r = new FieldReader(body, 'DRAIN');
    const id = r.u32();
    const deadlineMs = r.u32();
    r.end();
    return { id, deadlineMs };
  },
  drainReport(body: Buffer): { id: number } & DrainReport {
    const r = new FieldReader(body, 'DRAIN_REPORT');
    const id = r.u32();
    const moved = r.u32();
    const remaining = r.u32();
    const ms = r.u32();
    r.end();
    return { id, moved, remaining, ms };
  },
};
