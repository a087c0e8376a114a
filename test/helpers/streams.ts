import { createHash } from 'node:crypto';
import { once } from 'node:events';
import type { Duplex, Writable } from 'node:stream';
import { SeededRandom } from '../../src/faults/random.ts';

/** A deterministic byte stream: `total` bytes in writes of random sizes up to `maxWrite`. */
export function* pattern(seed: number, total: number, maxWrite: number): Generator<Buffer> {
  const random = new SeededRandom(seed);
  let left = total;
  while (left > 0) {
    const size = Math.min(left, random.int(1, maxWrite));
    yield random.bytes(size);
    left -= size;
  }
}

export function patternHash(seed: number, total: number, maxWrite: number): string {
  const hash = createHash('sha256');
  for (const chunk of pattern(seed, total, maxWrite)) hash.update(chunk);
  return hash.digest('hex');
}

/** Writes a pattern honouring backpressure, then ends the stream. */
export async function writePattern(
  stream: Writable,
  seed: number,
  total: number,
  maxWrite: number,
): Promise<void> {
  for (const chunk of pattern(seed, total, maxWrite)) {
    if (!stream.write(chunk)) await once(stream, 'drain');
  }
  stream.end();
}

export interface Received {
  bytes: number;
  hash: string;
}

/** Reads a stream to its end, hashing what arrives. Rejects on 'error'. */
export function readAll(stream: Duplex): Promise<Received> {
  return new Promise((resolve, reject) => {
    const hash = createHash('sha256');
    let bytes = 0;
    stream.on('data', (chunk: Buffer) => {
      bytes += chunk.length;
      hash.update(chunk);
    });
    stream.once('end', () => resolve({ bytes, hash: hash.digest('hex') }));
    stream.once('error', reject);
  });
}

/** Resolves when `emitter` emits `event`, rejects after `ms` with a message naming what was awaited. */
export async function within<T>(ms: number, what: string, promise: Promise<T>): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`timed out after ${ms} ms waiting for ${what}`)), ms);
  });
  try {
    return await Promise.race([promise, timeout]);
  } finally {
    clearTimeout(timer);
  }
}
