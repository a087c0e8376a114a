import v8 from 'node:v8';
import { createError, ErrorCodes } from '../wire/errors.ts';

/**
 * Handler state is serialized with the structured-clone algorithm (v8.serialize) unless the
 * application hands over bytes itself.
 */
export function serializeState(state: unknown): Buffer {
  if (Buffer.isBuffer(state)) return Buffer.concat([RAW, state]);
  try {
    return Buffer.concat([V8, v8.serialize(state)]);
  } catch (err) {
    throw createError(ErrorCodes.INVALID_ARGUMENT, 'checkpoint state cannot be serialized', err);
  }
}

export function deserializeState(snapshot: Buffer): unknown {
  const tag = snapshot[0];
  const body = snapshot.subarray(1);
  if (tag === RAW[0]) return Buffer.from(body);
  if (tag === V8[0]) {
    try {
      return v8.deserialize(body);
    } catch (err) {
      throw createError(ErrorCodes.MALFORMED_FRAME, 'snapshot does not deserialize', err);
    }
  }
  throw createError(ErrorCodes.MALFORMED_FRAME, `snapshot has an unknown tag ${tag}`);
}

const RAW = Buffer.from([0]);
const V8 = Buffer.from([1]);
