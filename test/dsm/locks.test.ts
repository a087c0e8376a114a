import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { LocalLocks, LockManager } from '../../src/dsm/locks.ts';
import { ErrorCodes, LazarusError } from '../../src/wire/errors.ts';

const T = new Uint32Array(2);
const code = (c: string) => (err: unknown) => err instanceof LazarusError && err.code === c;

describe('locks', () => {
  test('the manager grants a fresh lock and forwards later requests to the previous requester', () => {
    const m = new LockManager();
    assert.equal(m.request(3, 1), undefined);
    assert.equal(m.request(3, 0), 1);
    assert.equal(m.request(3, 1), 0);
    assert.equal(m.request(4, 0), undefined);
  });

  test('a waiter forwarded while the lock is held gets the token at release', () => {
    const l = new LocalLocks();
    l.requested(1);
    l.granted(1);
    assert.equal(l.forwarded(1, { node: 2, time: T }), false);
    assert.equal(l.released(1)?.node, 2);
    // The token left: a new forward would be a protocol error.
    assert.throws(() => l.forwarded(1, { node: 3, time: T }), code(ErrorCodes.PROTOCOL));
  });

  test('an idle token is granted at once, also to this node itself (re-acquire)', () => {
    const l = new LocalLocks();
    l.requested(1);
    l.granted(1);
    assert.equal(l.released(1), undefined);
    l.requested(1);
    assert.equal(l.forwarded(1, { node: 0, time: T }), true);
    l.granted(1);
    assert.ok(l.holds(1));
  });

  test('misuse is refused with typed errors', () => {
    const l = new LocalLocks();
    assert.throws(() => l.released(1), code(ErrorCodes.INVALID_ARGUMENT));
    assert.throws(() => l.granted(1), code(ErrorCodes.PROTOCOL));
    l.requested(1);
    assert.throws(() => l.requested(1), code(ErrorCodes.INVALID_ARGUMENT));
    assert.equal(l.forwarded(1, { node: 1, time: T }), false);
    assert.throws(() => l.forwarded(1, { node: 2, time: T }), code(ErrorCodes.PROTOCOL));
  });
});
