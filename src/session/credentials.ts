import { randomBytes, timingSafeEqual } from 'node:crypto';
import { createError, ErrorCodes } from '../wire/errors.ts';
import { writeU64 } from '../wire/fields.ts';
import { hmacSha256 } from '../wire/hmac.ts';
import { CLIENT_NONCE_SIZE, PROOF_SIZE, SESSION_ID_SIZE } from './protocol.ts';
import { randomPool } from './random-pool.ts';

/**
 * Session credentials. A ticket names a session and is MACed with the pool secret, so any server
 * holding that secret can verify it without asking the server that issued it. The per-session secret
 * is derived from the pool secret and the session id, so servers need not store it; the client proves
 * it knows it by a MAC over the nonce the server just sent, which makes every proof single-use.
 *
 * ticket = version u8 | session id (16) | issued at ms (u64) | MAC (16)
 */

const TICKET_VERSION = 1;
const TICKET_MAC_SIZE = 16;
export const TICKET_SIZE = 1 + SESSION_ID_SIZE + 8 + TICKET_MAC_SIZE;

export interface TicketContents {
  readonly sessionId: Buffer;
  readonly issuedAt: number;
}

export function newSessionId(): Buffer {
  return randomPool.take(SESSION_ID_SIZE);
}

export function newNonce(): Buffer {
  return randomPool.take(32);
}

export function newClientNonce(): Buffer {
  return randomPool.take(CLIENT_NONCE_SIZE);
}

export function deriveSessionSecret(poolSecret: Uint8Array, sessionId: Uint8Array): Buffer {
  return hmacSha256(poolSecret, 'lz-session-secret', sessionId);
}

export function mintTicket(poolSecret: Uint8Array, sessionId: Uint8Array, issuedAt = Date.now()): Buffer {
  const ticket = Buffer.allocUnsafe(TICKET_SIZE);
  ticket[0] = TICKET_VERSION;
  ticket.set(sessionId, 1);
  ticket.writeUInt32BE(Math.floor(issuedAt / 2 ** 32), 1 + SESSION_ID_SIZE);
  ticket.writeUInt32BE(issuedAt >>> 0, 1 + SESSION_ID_SIZE + 4);
  const body = ticket.subarray(0, TICKET_SIZE - TICKET_MAC_SIZE);
  ticketMac(poolSecret, body).copy(ticket, body.length);
  return ticket;
}

export function verifyTicket(poolSecret: Uint8Array, ticket: Uint8Array): TicketContents {
  const t = Buffer.from(ticket.buffer, ticket.byteOffset, ticket.byteLength);
  if (t.length !== TICKET_SIZE || t[0] !== TICKET_VERSION) {
    throw createError(ErrorCodes.BAD_TICKET, 'ticket has the wrong size or version');
  }
  const body = t.subarray(0, TICKET_SIZE - TICKET_MAC_SIZE);
  if (!timingSafeEqual(ticketMac(poolSecret, body), t.subarray(body.length))) {
    throw createError(ErrorCodes.BAD_TICKET, 'ticket was not issued by this pool');
  }
  return {
    sessionId: Buffer.from(t.subarray(1, 1 + SESSION_ID_SIZE)),
    issuedAt: t.readUInt32BE(1 + SESSION_ID_SIZE) * 2 ** 32 + t.readUInt32BE(1 + SESSION_ID_SIZE + 4),
  };
}

function ticketMac(poolSecret: Uint8Array, body: Uint8Array): Buffer {
  return hmacSha256(poolSecret, 'lz-ticket', body).subarray(0, TICKET_MAC_SIZE);
}

export function resumeProof(sessionSecret: Uint8Array, nonce: Uint8Array, sessionId: Uint8Array): Buffer {
  return hmacSha256(sessionSecret, 'lz-resume', nonce, sessionId);
}

/** The proof of an early resume: bound to the member dialled, a client nonce and the client's clock. */
export function earlyResumeProof(
  sessionSecret: Uint8Array,
  serverId: string,
  clientNonce: Uint8Array,
  sentAt: number,
  sessionId: Uint8Array,
): Buffer {
  const at = Buffer.allocUnsafe(8);
  writeU64(at, sentAt, 0);
  return hmacSha256(sessionSecret, 'lz-early-resume', serverId, '\0', clientNonce, at, sessionId);
}

export function checkResumeProof(
  sessionSecret: Uint8Array,
  nonce: Uint8Array,
  sessionId: Uint8Array,
  proof: Uint8Array,
): void {
  checkProof(resumeProof(sessionSecret, nonce, sessionId), proof);
}

export function checkProof(expected: Buffer, proof: Uint8Array): void {
  if (proof.length !== PROOF_SIZE || !timingSafeEqual(expected, proof)) {
    throw createError(ErrorCodes.AUTH_FAILED, 'proof of the session secret is wrong or replayed');
  }
}

/** Turns a user-supplied pool secret into key bytes; refuses secrets too short to be one. */
export function poolSecretBytes(secret: string | Uint8Array | undefined): Buffer {
  if (secret === undefined) return randomBytes(32);
  const bytes = typeof secret === 'string' ? Buffer.from(secret, 'utf8') : Buffer.from(secret);
  if (bytes.length < 16)
    throw createError(ErrorCodes.INVALID_ARGUMENT, 'pool secret must be at least 16 bytes');
  return bytes;
}
