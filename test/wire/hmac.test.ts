import assert from 'node:assert/strict';
import { createHmac } from 'node:crypto';
import { test } from 'node:test';
import fc from 'fast-check';
import { hmacSha256, type MacPart } from '../../src/wire/hmac.ts';

function reference(key: Uint8Array, parts: readonly MacPart[]): Buffer {
  const h = createHmac('sha256', key);
  for (const p of parts) h.update(p);
  return h.digest();
}

test('hmacSha256 gives the RFC 4231 results', () => {
  // Test cases 1, 2 and 6 (6: a key longer than the block, hashed first).
  assert.equal(
    hmacSha256(Buffer.alloc(20, 0x0b), 'Hi There').toString('hex'),
    'b0344c61d8db38535ca8afceaf0bf12b881dc200c9833da726e9376c2e32cff7',
  );
  assert.equal(
    hmacSha256(Buffer.from('Jefe'), 'what do ya want ', 'for nothing?').toString('hex'),
    '5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843',
  );
  assert.equal(
    hmacSha256(Buffer.alloc(131, 0xaa), 'Test Using Larger Than Block-Size Key - Hash Key First').toString(
      'hex',
    ),
    '60e431591ee0b67f0d8a26aacbf5b77f8e0bc6213728c5140546040f0ee37f54',
  );
});

test('hmacSha256 equals createHmac for any key and any parts, however long', () => {
  const part = fc.oneof(fc.uint8Array({ maxLength: 300 }), fc.string({ unit: 'binary', maxLength: 100 }));
  fc.assert(
    fc.property(fc.uint8Array({ maxLength: 200 }), fc.array(part, { maxLength: 6 }), (key, parts) => {
      assert.deepEqual(hmacSha256(key, ...parts), reference(key, parts));
    }),
    { numRuns: 500 },
  );
});

test('hmacSha256 is right after a message that grew its buffer, and its results are its own', () => {
  const key = Buffer.from('a pool secret of some length');
  const long = Buffer.alloc(5000, 7);
  assert.deepEqual(hmacSha256(key, long), reference(key, [long]));
  assert.deepEqual(hmacSha256(key, 'short'), reference(key, ['short']));
  // The result does not share memory with the scratch buffer: a later call cannot change it.
  const first = hmacSha256(key, 'one');
  const copy = Buffer.from(first);
  hmacSha256(key, 'two');
  assert.deepEqual(first, copy);
});
