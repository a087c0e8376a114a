import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import fc from 'fast-check';
import {
  checkResumeProof,
  deriveSessionSecret,
  mintTicket,
  poolSecretBytes,
  resumeProof,
  TICKET_SIZE,
  verifyTicket,
} from '../../src/session/credentials.ts';
import { NONCE_SIZE, PROOF_SIZE, SESSION_ID_SIZE } from '../../src/session/protocol.ts';
import { createServer } from '../../src/session/server.ts';
import { type ErrorCode, ErrorCodes, LazarusError } from '../../src/wire/errors.ts';

const bytes = (n: number) => fc.uint8Array({ minLength: n, maxLength: n }).map((u) => Buffer.from(u));
const poolSecret = fc.uint8Array({ minLength: 16, maxLength: 64 }).map((u) => Buffer.from(u));
const sessionId = bytes(SESSION_ID_SIZE);
const nonce = bytes(NONCE_SIZE);
const issuedAt = fc.oneof(fc.integer({ min: 0, max: Number.MAX_SAFE_INTEGER }), fc.constant(Date.now()));

function throwsCode(fn: () => unknown, code: ErrorCode, what: string): void {
  assert.throws(
    fn,
    (err: unknown) => {
      assert.ok(err instanceof LazarusError, `${what}: threw a non-LazarusError: ${String(err)}`);
      assert.equal(err.code, code, `${what}: wrong code (${err.message})`);
      return true;
    },
    what,
  );
}

describe('tickets', () => {
  test('a minted ticket verifies and yields its session id and issue time', () => {
    fc.assert(
      fc.property(poolSecret, sessionId, issuedAt, (secret, id, at) => {
        const ticket = mintTicket(secret, id, at);
        assert.equal(ticket.length, TICKET_SIZE, 'ticket size');
        const got = verifyTicket(secret, ticket);
        assert.deepEqual(got.sessionId, id, 'session id');
        assert.equal(got.issuedAt, at, 'issued at');
        // The returned id is a copy, not a view into the ticket.
        ticket.fill(0);
        assert.deepEqual(got.sessionId, id, 'session id must not alias the ticket');
      }),
      { numRuns: 300 },
    );
  });

  test('a ticket inside a larger buffer (a frame body view) verifies', () => {
    fc.assert(
      fc.property(poolSecret, sessionId, fc.nat(50), fc.nat(50), (secret, id, before, after) => {
        const ticket = mintTicket(secret, id);
        const frame = Buffer.concat([Buffer.alloc(before, 0xaa), ticket, Buffer.alloc(after, 0x55)]);
        const view = frame.subarray(before, before + TICKET_SIZE);
        assert.deepEqual(verifyTicket(secret, view).sessionId, id, 'verified through a view');
        assert.deepEqual(verifyTicket(secret, new Uint8Array(view)).sessionId, id, 'as a Uint8Array');
      }),
      { numRuns: 100 },
    );
  });

  test('every single-bit flip of a ticket is ERR_LZ_BAD_TICKET', () => {
    fc.assert(
      fc.property(poolSecret, sessionId, issuedAt, (secret, id, at) => {
        const ticket = mintTicket(secret, id, at);
        for (let bit = 0; bit < ticket.length * 8; bit++) {
          const forged = Buffer.from(ticket);
          forged[bit >> 3]! ^= 1 << (bit & 7);
          throwsCode(() => verifyTicket(secret, forged), ErrorCodes.BAD_TICKET, `bit ${bit} flipped`);
        }
      }),
      { numRuns: 25 },
    );
  });

  test('truncated or extended tickets are ERR_LZ_BAD_TICKET', () => {
    fc.assert(
      fc.property(
        poolSecret,
        sessionId,
        fc.uint8Array({ minLength: 1, maxLength: 64 }),
        (secret, id, extra) => {
          const ticket = mintTicket(secret, id);
          for (let n = 0; n < ticket.length; n++) {
            throwsCode(
              () => verifyTicket(secret, Buffer.from(ticket.subarray(0, n))),
              ErrorCodes.BAD_TICKET,
              `truncated to ${n}`,
            );
          }
          throwsCode(
            () => verifyTicket(secret, Buffer.concat([ticket, extra])),
            ErrorCodes.BAD_TICKET,
            `extended by ${extra.length}`,
          );
          // Extended by bytes that recompute nothing: the same ticket with its own MAC repeated.
          throwsCode(
            () => verifyTicket(secret, Buffer.concat([ticket, ticket.subarray(-16)])),
            ErrorCodes.BAD_TICKET,
            'MAC repeated',
          );
        },
      ),
      { numRuns: 50 },
    );
  });

  test('a ticket from another pool secret is ERR_LZ_BAD_TICKET', () => {
    fc.assert(
      fc.property(poolSecret, poolSecret, sessionId, (a, b, id) => {
        fc.pre(!a.equals(b));
        throwsCode(() => verifyTicket(b, mintTicket(a, id)), ErrorCodes.BAD_TICKET, 'other pool');
      }),
      { numRuns: 200 },
    );
  });

  test('random bytes of ticket size are ERR_LZ_BAD_TICKET', () => {
    fc.assert(
      fc.property(poolSecret, bytes(TICKET_SIZE), (secret, junk) => {
        throwsCode(() => verifyTicket(secret, junk), ErrorCodes.BAD_TICKET, 'random ticket');
      }),
      { numRuns: 300 },
    );
  });
});

describe('resume proofs', () => {
  test('the right proof passes; another nonce (a replay), session id or secret is ERR_LZ_AUTH_FAILED', () => {
    fc.assert(
      fc.property(poolSecret, sessionId, sessionId, nonce, nonce, (pool, id, otherId, n1, n2) => {
        const secret = deriveSessionSecret(pool, id);
        const proof = resumeProof(secret, n1, id);
        assert.equal(proof.length, PROOF_SIZE, 'proof size');
        checkResumeProof(secret, n1, id, proof);
        if (!n1.equals(n2)) {
          // A proof captured on one connection, offered on another (whose server nonce differs).
          throwsCode(() => checkResumeProof(secret, n2, id, proof), ErrorCodes.AUTH_FAILED, 'replayed');
        }
        if (!id.equals(otherId)) {
          throwsCode(
            () => checkResumeProof(deriveSessionSecret(pool, otherId), n1, otherId, proof),
            ErrorCodes.AUTH_FAILED,
            'proof for another session',
          );
          throwsCode(
            () => checkResumeProof(secret, n1, otherId, proof),
            ErrorCodes.AUTH_FAILED,
            'proof naming another session id',
          );
          // The session secret is bound to the id: knowing one session's secret proves nothing for another.
          throwsCode(
            () =>
              checkResumeProof(
                deriveSessionSecret(pool, otherId),
                n1,
                otherId,
                resumeProof(secret, n1, otherId),
              ),
            ErrorCodes.AUTH_FAILED,
            "another session's secret",
          );
        }
      }),
      { numRuns: 300 },
    );
  });

  test('a flipped bit, truncated, extended or empty proof is ERR_LZ_AUTH_FAILED', () => {
    fc.assert(
      fc.property(poolSecret, sessionId, nonce, fc.nat(PROOF_SIZE * 8 - 1), (pool, id, n, bit) => {
        const secret = deriveSessionSecret(pool, id);
        const proof = resumeProof(secret, n, id);
        const flipped = Buffer.from(proof);
        flipped[bit >> 3]! ^= 1 << (bit & 7);
        throwsCode(() => checkResumeProof(secret, n, id, flipped), ErrorCodes.AUTH_FAILED, `bit ${bit}`);
        for (const bad of [
          proof.subarray(0, PROOF_SIZE - 1),
          proof.subarray(0, 16),
          Buffer.alloc(0),
          Buffer.concat([proof, Buffer.from([0])]),
        ]) {
          throwsCode(
            () => checkResumeProof(secret, n, id, bad),
            ErrorCodes.AUTH_FAILED,
            `${bad.length} bytes`,
          );
        }
      }),
      { numRuns: 200 },
    );
  });

  test('session secrets are deterministic per (pool secret, id) and differ otherwise', () => {
    fc.assert(
      fc.property(poolSecret, poolSecret, sessionId, sessionId, (a, b, id1, id2) => {
        assert.deepEqual(deriveSessionSecret(a, id1), deriveSessionSecret(a, id1), 'deterministic');
        assert.equal(deriveSessionSecret(a, id1).length, 32, 'secret size');
        if (!id1.equals(id2)) {
          assert.notDeepEqual(deriveSessionSecret(a, id1), deriveSessionSecret(a, id2), 'per session');
        }
        if (!a.equals(b)) {
          assert.notDeepEqual(deriveSessionSecret(a, id1), deriveSessionSecret(b, id1), 'per pool');
        }
      }),
      { numRuns: 200 },
    );
  });
});

describe('pool secrets', () => {
  test('secrets shorter than 16 bytes are refused with ERR_LZ_INVALID_ARGUMENT', () => {
    fc.assert(
      fc.property(
        fc.uint8Array({ maxLength: 15 }),
        fc.string({ maxLength: 15, unit: 'binary-ascii' }),
        (u, s) => {
          throwsCode(() => poolSecretBytes(u), ErrorCodes.INVALID_ARGUMENT, `${u.length}-byte secret`);
          throwsCode(() => poolSecretBytes(s), ErrorCodes.INVALID_ARGUMENT, `${s.length}-char secret`);
        },
      ),
      { numRuns: 100 },
    );
    // The limit counts bytes: 5 three-byte characters (15 bytes) are too short, 6 (18 bytes) enough.
    throwsCode(() => poolSecretBytes('€'.repeat(5)), ErrorCodes.INVALID_ARGUMENT, '15 UTF-8 bytes');
    assert.equal(poolSecretBytes('€'.repeat(6)).length, 18, '18 UTF-8 bytes accepted');
    // And a server refuses to start with one.
    throwsCode(() => createServer({ secret: 'too short' }), ErrorCodes.INVALID_ARGUMENT, 'createServer');
  });

  test('secrets of 16 bytes or more are used as given; none gives 32 random bytes', () => {
    fc.assert(
      fc.property(fc.uint8Array({ minLength: 16, maxLength: 100 }), (u) => {
        const original = Buffer.from(u);
        const got = poolSecretBytes(u);
        assert.deepEqual(got, original, 'bytes as given');
        u.fill(0xee);
        assert.deepEqual(got, original, "a copy: changing the caller's array must not change the key");
      }),
      { numRuns: 100 },
    );
    assert.deepEqual(poolSecretBytes('0123456789abcdef'), Buffer.from('0123456789abcdef'), 'string secret');
    const r1 = poolSecretBytes(undefined);
    const r2 = poolSecretBytes(undefined);
    assert.equal(r1.length, 32, 'random secret size');
    assert.notDeepEqual(r1, r2, 'random secrets differ');
  });
});
