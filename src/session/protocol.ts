import { createError, ErrorCodes } from '../wire/errors.ts';
import { FieldReader, FieldWriter, writeU64 } from '../wire/fields.ts';
import { allocFrame, encodeFrame, FRAME_HEADER_SIZE } from '../wire/frame.ts';
import type { FrameDecoderOptions } from '../wire/frame-decoder.ts';

/**
 * The session protocol (client <-> server). The client speaks first, with the connect, so the server
 * answers in one write and nobody waits a round trip for a greeting: OPEN for a new session;
 * EARLY_RESUME when it knows which member it dials (its proof covers that member's id, a client nonce
 * and the time, and the member admits each such proof once within a window, a replay cache);
 * otherwise CLIENT_HELLO, to get the fresh nonce a RESUME proof is made over. The server's first
 * frame is always SERVER_HELLO, written together with its answer; an early resume it does not admit
 * gets CHALLENGE, and the client falls back to RESUME over the hello's nonce.
 *
 *   C: OPEN          magic, version                      -> S: SERVER_HELLO, OPENED  session id, secret, ticket
 *   C: EARLY_RESUME  magic, version, ticket, proof, recv, epoch, owner hint, server id, client nonce, sent at,
 *                    pushed (u8: the owner was told to push the session here)
 *                                                        -> S: SERVER_HELLO, RESUMED | REFUSED | CHALLENGE
 *   C: CLIENT_HELLO  magic, version                      -> S: SERVER_HELLO  magic, version, nonce, server id
 *   C: RESUME        magic, version, ticket, proof, recv, epoch, owner hint (after a SERVER_HELLO)
 *                                                        -> S: RESUMED recv, epoch | REFUSED code, message
 *   both: DATA (ack prefix + payload, streamed), ACK, FIN, PING, PONG, ABORT
 *   S: POOL members, ADVICE kind + target + pushed (u8: the server has handed the session to target)
 *   C: HANDOFF member id (the client is leaving for that member: its owner may push the session there)
 *
 * A session's epoch counts its changes of owner. A client never accepts a lower epoch than it has
 * seen, which fences a stale owner out.
 *
 * Offsets count payload bytes per direction; FIN takes one more offset, so acknowledging it is
 * acknowledging the offset after the last byte (as in TCP).
 */

export const MAGIC = 0x4c5a5253; // 'LZRS'
export const VERSION = 1;
export const NONCE_SIZE = 32;
export const SESSION_ID_SIZE = 16;
export const PROOF_SIZE = 32;
export const CLIENT_NONCE_SIZE = 16;

export const FrameType = {
  SERVER_HELLO: 0x01,
  OPEN: 0x02,
  RESUME: 0x03,
  OPENED: 0x04,
  RESUMED: 0x05,
  REFUSED: 0x06,
  EARLY_RESUME: 0x07,
  /** Server -> client: the early proof is not admitted (stale, replayed, other member); RESUME instead. */
  CHALLENGE: 0x08,
  /** Client -> server: send the hello (its nonce) before I RESUME. */
  CLIENT_HELLO: 0x09,
  DATA: 0x10,
  ACK: 0x11,
  FIN: 0x12,
  PING: 0x13,
  PONG: 0x14,
  ABORT: 0x15,
  /** Server -> client: the pool's members, the client's alternates. */
  POOL: 0x16,
  /** Server -> client: advice to migrate (overload, drain). */
  ADVICE: 0x17,
  /** Client -> server: the client is moving the session to this member now (push it there). */
  HANDOFF: 0x18,
} as const;

/** DATA carries a piggybacked cumulative ack (u64) before its payload. */
export const DATA_PREFIX_SIZE = 8;

const SESSION_TYPES: ReadonlySet<number> = new Set<number>(Object.values(FrameType));
const SESSION_STREAMED: ReadonlyMap<number, number> = new Map([[FrameType.DATA, DATA_PREFIX_SIZE]]);

export function sessionDecoderOptions(maxFrameSize: number): FrameDecoderOptions {
  return { types: SESSION_TYPES, streamed: SESSION_STREAMED, maxFrameSize };
}

export interface ServerHello {
  readonly nonce: Buffer;
  readonly serverId: string;
}

export interface ResumeRequest {
  readonly ticket: Buffer;
  readonly proof: Buffer;
  /** Bytes (plus FIN) the client has received from the server. */
  readonly received: number;
  /** Highest epoch the client has seen. */
  readonly epoch?: number;
  /** Server id of the session's last known owner, where a pool member pulls it from. */
  readonly ownerHint?: string;
}

/** A resume sent with the connect, before the server's nonce is known. */
export interface EarlyResumeRequest extends ResumeRequest {
  /** The member the client dials: a proof admitted by one member is worthless at another. */
  readonly serverId: string;
  readonly clientNonce: Buffer;
  /** Client clock, ms since the epoch: bounds how long the member must remember the proof. */
  readonly sentAt: number;
  /** The client told the session's owner to push it to this member (HANDOFF): wait, do not pull. */
  readonly pushed?: boolean;
}

export interface Resumed {
  readonly received: number;
  readonly epoch: number;
}

/** A pool member as clients see it: where to connect. */
export interface MemberAddress {
  readonly id: string;
  readonly host: string;
  readonly port: number;
}

export const AdviceKind = { OVERLOAD: 1, DRAIN: 2 } as const;
export type AdviceKindValue = (typeof AdviceKind)[keyof typeof AdviceKind];

export interface Advice {
  readonly kind: AdviceKindValue;
  /** Preferred member id to move to; empty: client's choice. */
  readonly target: string;
  /**
   * The server has already handed the session to `target` (a draining server does not wait to be
   * told where the client goes): resume there, without a HANDOFF.
   */
  readonly pushed: boolean;
}

export interface Opened {
  readonly sessionId: Buffer;
  readonly secret: Buffer;
  readonly ticket: Buffer;
}

export interface Refusal {
  readonly code: string;
  readonly message: string;
}

function checkMagic(r: FieldReader): void {
  const magic = r.u32();
  if (magic !== MAGIC) throw createError(ErrorCodes.BAD_MAGIC, `bad magic 0x${magic.toString(16)}`);
  const version = r.u8();
  if (version !== VERSION) {
    throw createError(
      ErrorCodes.UNSUPPORTED_VERSION,
      `protocol version ${version} is not supported (speaks ${VERSION})`,
    );
  }
}

function writeResume(r: ResumeRequest): FieldWriter {
  const w = new FieldWriter(160).u32(MAGIC).u8(VERSION).bytes16(r.ticket).fixed(r.proof).u64(r.received);
  return w.u32(r.epoch ?? 0).string(r.ownerHint ?? '');
}

function readResume(r: FieldReader): ResumeRequest {
  checkMagic(r);
  const ticket = r.bytes16();
  const proof = r.fixed(PROOF_SIZE);
  const received = r.u64();
  const epoch = r.u32();
  const ownerHint = r.string();
  return { ticket, proof, received, epoch, ownerHint };
}

export const encode = {
  serverHello(h: ServerHello): Buffer {
    const w = new FieldWriter(64).u32(MAGIC).u8(VERSION).fixed(h.nonce).string(h.serverId);
    return encodeFrame(FrameType.SERVER_HELLO, w.finish());
  },
  open(): Buffer {
    return encodeFrame(FrameType.OPEN, new FieldWriter(8).u32(MAGIC).u8(VERSION).finish());
  },
  clientHello(): Buffer {
    return encodeFrame(FrameType.CLIENT_HELLO, new FieldWriter(8).u32(MAGIC).u8(VERSION).finish());
  },
  resume(r: ResumeRequest): Buffer {
    return encodeFrame(FrameType.RESUME, writeResume(r).finish());
  },
  earlyResume(r: EarlyResumeRequest): Buffer {
    const w = writeResume(r)
      .string(r.serverId)
      .fixed(r.clientNonce)
      .u64(r.sentAt)
      .u8(r.pushed ? 1 : 0);
    return encodeFrame(FrameType.EARLY_RESUME, w.finish());
  },
  challenge(): Buffer {
    return encodeFrame(FrameType.CHALLENGE, Buffer.alloc(0));
  },
  opened(o: Opened): Buffer {
    const w = new FieldWriter(128).fixed(o.sessionId).fixed(o.secret).bytes16(o.ticket);
    return encodeFrame(FrameType.OPENED, w.finish());
  },
  resumed(r: Resumed): Buffer {
    return encodeFrame(FrameType.RESUMED, new FieldWriter(12).u64(r.received).u32(r.epoch).finish());
  },
  pool(members: readonly MemberAddress[]): Buffer {
    const w = new FieldWriter(128).u16(members.length);
    for (const m of members) w.string(m.id).string(m.host).u16(m.port);
    return encodeFrame(FrameType.POOL, w.finish());
  },
  advice(a: Advice): Buffer {
    const w = new FieldWriter(32)
      .u8(a.kind)
      .string(a.target)
      .u8(a.pushed ? 1 : 0);
    return encodeFrame(FrameType.ADVICE, w.finish());
  },
  handoff(memberId: string): Buffer {
    return encodeFrame(FrameType.HANDOFF, new FieldWriter(32).string(memberId).finish());
  },
  refused(r: Refusal): Buffer {
    return encodeFrame(FrameType.REFUSED, new FieldWriter(64).string(r.code).string(r.message).finish());
  },
  abort(r: Refusal): Buffer {
    return encodeFrame(FrameType.ABORT, new FieldWriter(64).string(r.code).string(r.message).finish());
  },
  /**
   * Header and ack prefix of a DATA frame, with `room` spare bytes after them for a payload the caller
   * copies in; with no room the payload is written separately, never copied.
   */
  dataHeader(ack: number, payloadLength: number, room = 0): Buffer {
    const out = allocFrame(FrameType.DATA, DATA_PREFIX_SIZE + payloadLength, DATA_PREFIX_SIZE + room);
    writeU64(out, ack, FRAME_HEADER_SIZE);
    return out;
  },
  ack(offset: number): Buffer {
    return encodeFrame(FrameType.ACK, new FieldWriter(8).u64(offset).finish());
  },
  fin(offset: number): Buffer {
    return encodeFrame(FrameType.FIN, new FieldWriter(8).u64(offset).finish());
  },
  ping(token: number): Buffer {
    return encodeFrame(FrameType.PING, new FieldWriter(8).u64(token).finish());
  },
  pong(token: number): Buffer {
    return encodeFrame(FrameType.PONG, new FieldWriter(8).u64(token).finish());
  },
};

export const decode = {
  serverHello(body: Buffer): ServerHello {
    const r = new FieldReader(body, 'SERVER_HELLO');
    checkMagic(r);
    const nonce = r.fixed(NONCE_SIZE);
    const serverId = r.string();
    r.end();
    return { nonce, serverId };
  },
  /** OPEN and CLIENT_HELLO carry only the magic and version. */
  greeting(body: Buffer, what: 'OPEN' | 'CLIENT_HELLO'): void {
    const r = new FieldReader(body, what);
    checkMagic(r);
    r.end();
  },
  resume(body: Buffer): ResumeRequest {
    const r = new FieldReader(body, 'RESUME');
    const request = readResume(r);
    r.end();
    return request;
  },
  earlyResume(body: Buffer): EarlyResumeRequest {
    const r = new FieldReader(body, 'EARLY_RESUME');
    const request = readResume(r);
    const serverId = r.string();
    const clientNonce = r.fixed(CLIENT_NONCE_SIZE);
    const sentAt = r.u64();
    const flags = r.u8();
    if (flags > 1) throw createError(ErrorCodes.MALFORMED_FRAME, `EARLY_RESUME: unknown flags ${flags}`);
    r.end();
    return { ...request, serverId, clientNonce, sentAt, pushed: flags === 1 };
  },
  challenge(body: Buffer): void {
    new FieldReader(body, 'CHALLENGE').end();
  },
  resumed(body: Buffer): Resumed {
    const r = new FieldReader(body, 'RESUMED');
    const received = r.u64();
    const epoch = r.u32();
    r.end();
    return { received, epoch };
  },
  pool(body: Buffer): MemberAddress[] {
    const r = new FieldReader(body, 'POOL');
    const count = r.u16();
    const members: MemberAddress[] = [];
    for (let i = 0; i < count; i++) members.push({ id: r.string(), host: r.string(), port: r.u16() });
    r.end();
    return members;
  },
  advice(body: Buffer): Advice {
    const r = new FieldReader(body, 'ADVICE');
    const kind = r.u8();
    if (kind !== AdviceKind.OVERLOAD && kind !== AdviceKind.DRAIN) {
      throw createError(ErrorCodes.MALFORMED_FRAME, `ADVICE: unknown kind ${kind}`);
    }
    const target = r.string();
    const flags = r.u8();
    if (flags > 1) throw createError(ErrorCodes.MALFORMED_FRAME, `ADVICE: unknown flags ${flags}`);
    if (flags === 1 && target === '')
      throw createError(ErrorCodes.MALFORMED_FRAME, 'ADVICE: pushed to no member');
    r.end();
    return { kind, target, pushed: flags === 1 };
  },
  handoff(body: Buffer): string {
    const r = new FieldReader(body, 'HANDOFF');
    const memberId = r.string();
    r.end();
    return memberId;
  },
  opened(body: Buffer): Opened {
    const r = new FieldReader(body, 'OPENED');
    const sessionId = r.fixed(SESSION_ID_SIZE);
    const secret = r.fixed(32);
    const ticket = r.bytes16();
    r.end();
    return { sessionId, secret, ticket };
  },
  /** REFUSED and ABORT share a body. */
  refusal(body: Buffer, what: string): Refusal {
    const r = new FieldReader(body, what);
    const code = r.string();
    const message = r.string();
    r.end();
    return { code, message };
  },
  /** ACK, FIN, PING, PONG and the DATA prefix are one u64. */
  offset(body: Buffer, what: string): number {
    const r = new FieldReader(body, what);
    const v = r.u64();
    r.end();
    return v;
  },
};
