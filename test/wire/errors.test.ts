import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import fc from 'fast-check';
import {
  codeFromWire,
  createError,
  type ErrorCode,
  ErrorCodes,
  isLazarusError,
  LazarusError,
  peerEventError,
} from '../../src/wire/errors.ts';

const CODES = Object.values(ErrorCodes) as ErrorCode[];
const codeArb = fc.constantFrom(...CODES);

describe('errors', () => {
  test('codes are distinct ERR_LZ_* strings', () => {
    assert.ok(CODES.length > 0, 'no codes');
    assert.equal(new Set(CODES).size, CODES.length);
    for (const code of CODES) assert.match(code, /^ERR_LZ_[A-Z0-9_]+$/);
    for (const [key, code] of Object.entries(ErrorCodes)) assert.equal(code, `ERR_LZ_${key}`);
  });

  test('createError sets code and message, and no cause when none is given', () => {
    fc.assert(
      fc.property(codeArb, fc.string(), (code, message) => {
        const err = createError(code, message);
        assert.ok(err instanceof LazarusError, 'not a LazarusError');
        assert.ok(err instanceof Error, 'not an Error');
        assert.equal(err.name, 'LazarusError');
        assert.equal(err.code, code);
        assert.equal(err.message, message);
        assert.equal(Object.hasOwn(err, 'cause'), false);
        assert.equal(err.cause, undefined);
        assert.equal(typeof err.stack, 'string');
        assert.ok(err.stack!.startsWith('LazarusError'), `stack: ${err.stack}`);
        assert.ok(isLazarusError(err), 'isLazarusError');
      }),
    );
  });

  test('createError keeps any cause, including falsy ones', () => {
    fc.assert(
      fc.property(
        codeArb,
        fc.string(),
        fc.oneof(
          fc.anything().filter((c) => c !== undefined),
          fc.constantFrom(null, 0, '', false),
        ),
        (code, message, cause) => {
          const err = createError(code, message, cause);
          assert.equal(err.code, code);
          assert.equal(err.message, message);
          assert.ok(Object.hasOwn(err, 'cause'), 'cause missing');
          assert.equal(err.cause, cause);
        },
      ),
    );
    const inner = new Error('inner');
    assert.equal(createError(ErrorCodes.PROTOCOL, 'outer', inner).cause, inner);
  });

  test('peerEventError is a LazarusError without a stack frame, and leaves stack traces on', () => {
    const limit = Error.stackTraceLimit;
    const err = peerEventError(ErrorCodes.PROTOCOL, 'connection ended by peer');
    assert.ok(err instanceof LazarusError, 'a LazarusError');
    assert.equal(err.code, ErrorCodes.PROTOCOL);
    assert.equal(err.message, 'connection ended by peer');
    assert.doesNotMatch(err.stack ?? '', /\n\s+at /, 'no stack frames');
    assert.equal(Error.stackTraceLimit, limit, 'the stack trace limit is restored');
    assert.match(createError(ErrorCodes.PROTOCOL, 'x').stack ?? '', /\n\s+at /, 'others keep theirs');
    const why = { code: 'ERR_LZ_ABORTED', message: 'bye' };
    assert.equal(peerEventError(ErrorCodes.SESSION_ABORTED, 'peer aborted', why).cause, why, 'cause kept');
  });

  test('isLazarusError is true only for LazarusErrors', () => {
    assert.ok(isLazarusError(new LazarusError(ErrorCodes.ABORTED, 'x')), 'isLazarusError');
    const lookalike = Object.assign(new Error('x'), { code: ErrorCodes.ABORTED, name: 'LazarusError' });
    assert.equal(isLazarusError(lookalike), false);
    fc.assert(fc.property(fc.anything(), (v) => assert.equal(isLazarusError(v), false)));
  });

  test('codeFromWire maps every known code to itself', () => {
    for (const code of CODES) assert.equal(codeFromWire(code), code);
  });

  test('codeFromWire maps anything else to ERR_LZ_PROTOCOL', () => {
    const near = codeArb.chain((code) =>
      fc.constantFrom(
        code.toLowerCase(),
        ` ${code}`,
        `${code} `,
        `${code}_X`,
        code.slice(0, -1),
        code.replace('ERR_LZ_', 'ERR_'),
      ),
    );
    const proto = fc.constantFrom(
      '',
      'ERR_LZ_',
      '__proto__',
      'constructor',
      'toString',
      'hasOwnProperty',
      'PROTOCOL',
    );
    fc.assert(
      fc.property(fc.oneof(fc.string(), near, proto), (s) => {
        fc.pre(!(CODES as string[]).includes(s));
        assert.equal(codeFromWire(s), ErrorCodes.PROTOCOL);
      }),
    );
  });
});
