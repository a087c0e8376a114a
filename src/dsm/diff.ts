import { createError, ErrorCodes } from '../wire/errors.ts';

/**
 * A diff is the list of 32-bit word runs where a page differs from its twin:
 *
 *   repeated: u32 BE first word, u32 BE word count, count*4 bytes of the page's new words
 *
 * Words, not bytes, because apps write whole 32/64-bit values and a run header costs two words.
 */

const RUN_HEADER = 8;

/** Encodes the runs where `page` differs from `twin`; empty when they are equal. */
export function createDiff(page: Uint8Array, twin: Uint8Array): Uint8Array {
  if (page.length !== twin.length || page.length % 4 !== 0) {
    throw createError(ErrorCodes.INVALID_ARGUMENT, 'page and twin must be equal multiples of 4 bytes');
  }
  const a = words(page);
  const b = words(twin);
  const runs: number[] = [];
  let size = 0;
  const n = a.length;
  let i = 0;
  while (i < n) {
    if (a[i] === b[i]) {
      i++;
      continue;
    }
    const start = i;
    while (i < n && a[i] !== b[i]) i++;
    runs.push(start, i - start);
    size += RUN_HEADER + (i - start) * 4;
  }
  const out = Buffer.allocUnsafe(size);
  let at = 0;
  for (let r = 0; r < runs.length; r += 2) {
    const start = runs[r]!;
    const count = runs[r + 1]!;
    out.writeUInt32BE(start, at);
    out.writeUInt32BE(count, at + 4);
    out.set(page.subarray(start * 4, (start + count) * 4), at + RUN_HEADER);
    at += RUN_HEADER + count * 4;
  }
  return out;
}

/**
 * Applies a diff to a page. The whole diff is validated before any byte is written, so a bad diff
 * (DSM_BAD_DIFF) leaves the page untouched.
 */
export function applyDiff(page: Uint8Array, diff: Uint8Array): void {
  validateDiff(diff, page.length);
  const view = Buffer.from(diff.buffer, diff.byteOffset, diff.byteLength);
  let at = 0;
  while (at < view.length) {
    const start = view.readUInt32BE(at);
    const count = view.readUInt32BE(at + 4);
    page.set(view.subarray(at + RUN_HEADER, at + RUN_HEADER + count * 4), start * 4);
    at += RUN_HEADER + count * 4;
  }
}

/** Throws DSM_BAD_DIFF unless every run lies inside a page of `pageSize` bytes. */
export function validateDiff(diff: Uint8Array, pageSize: number): void {
  const view = Buffer.from(diff.buffer, diff.byteOffset, diff.byteLength);
  const pageWords = pageSize / 4;
  let at = 0;
  while (at < view.length) {
    if (at + RUN_HEADER > view.length)
      throw createError(ErrorCodes.DSM_BAD_DIFF, 'diff ends inside a run header');
    const start = view.readUInt32BE(at);
    const count = view.readUInt32BE(at + 4);
    if (count === 0 || start >= pageWords || count > pageWords - start) {
      throw createError(
        ErrorCodes.DSM_BAD_DIFF,
        `diff run ${start}+${count} outside a ${pageWords}-word page`,
      );
    }
    if (at + RUN_HEADER + count * 4 > view.length) {
      throw createError(ErrorCodes.DSM_BAD_DIFF, 'diff ends inside a run');
    }
    at += RUN_HEADER + count * 4;
  }
}

function words(bytes: Uint8Array): Int32Array {
  if (bytes.byteOffset % 4 === 0) return new Int32Array(bytes.buffer, bytes.byteOffset, bytes.length / 4);
  return new Int32Array(bytes.slice().buffer);
}
