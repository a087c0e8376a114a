import { randomBytes, timingSafeEqual } from 'node:crypto';
import { createError, ErrorCodes } from '../wire/errors.ts';
import { hmacSha256 } from '../wire/hmac.ts';
import { NONCE_SIZE } from './messages.ts';

/**
 * Mutual challenge-response on a shared cluster secret. The acceptor proves first, over both nonces,
 * then the connector proves over both nonces and the node id it claims; the nonces are fresh per
 * connection, so neither proof can be replayed, and the secret itself never crosses the wire.
 */

export const MIN_SECRET_BYTES = 16;

export function newNonce(): Buffer {
  return randomBytes(NONCE_SIZE);
}

export function newSecret(): string {
  return randomBytes(32).toString('base64url');
}

export function checkSecret(secret: string | undefined): string {
  if (!secret || Buffer.byteLength(secret) < MIN_SECRET_BYTES) {
    throw createError(
      ErrorCodes.INVALID_ARGUMENT,
      `cluster secret must be at least ${MIN_SECRET_BYTES} bytes`,
    );
  }
  return secret;
}

function mac(
  secret: string,
  role: 'acceptor' | 'connector',
  a: Uint8Array,
  b: Uint8Array,
  node: number,
): Buffer {
  return hmacSha256(Buffer.from(secret, 'utf8'), `lazarus-dsm/${role}/${node}/`, a, b);
}

export function acceptorProof(
  secret: string,
  connectorNonce: Uint8Array,
  acceptorNonce: Uint8Array,
  claimed: number,
): Buffer {
  return mac(secret, 'acceptor', connectorNonce, acceptorNonce, claimed);
}

export function connectorProof(
  secret: string,
  connectorNonce: Uint8Array,
  acceptorNonce: Uint8Array,
  claimed: number,
): Buffer {
  return mac(secret, 'connector', acceptorNonce, connectorNonce, claimed);
}

/** Throws AUTH_FAILED unless `got` equals `expected` (constant time). */
export function verifyProof(expected: Buffer, got: Uint8Array, who: string): void {
  if (got.length !== expected.length || !timingSafeEqual(expected, got)) {
    throw createError(ErrorCodes.AUTH_FAILED, `${who} failed to prove the cluster secret`);
  }
}
