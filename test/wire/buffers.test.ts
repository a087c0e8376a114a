import assert from 'node:assert/strict';
import { test } from 'node:test';
import fc from 'fast-check';
import { bytesAfter } from '../../src/wire/buffers.ts';

test('bytesAfter gives, as views, exactly the bytes after the first n of parts[from..]', () => {
  fc.assert(
    fc.property(
      fc.array(fc.uint8Array({ maxLength: 16 }), { maxLength: 6 }),
      fc.nat(100),
      fc.nat(7),
      (arrays, n, from) => {
        // Each part in memory of its own (Buffer.from would put small ones in Node's shared pool,
        // where a copy would land too and pass for a view).
        const parts = arrays.map((a) => {
          const own = Buffer.alloc(a.length);
          own.set(a);
          return own;
        });
        const rest = Buffer.concat(parts.slice(from));
        const out = bytesAfter(parts, n, from);
        assert.deepEqual(Buffer.concat(out), rest.subarray(Math.min(n, rest.length)));
        for (const o of out) {
          assert.ok(o.length > 0, 'no empty views');
          assert.ok(
            parts.some((p) => p.buffer === o.buffer),
            'a view of an input buffer, not a copy',
          );
        }
      },
    ),
  );
});
