/**
 * Bulk-transfer pieces shared by the throughput-style benchmarks: sizes from the command line, one
 * timed transfer on a stream, and the alternating (ABBA) schedule of runs.
 */
import { once } from 'node:events';
import type { Duplex } from 'node:stream';

/** Size of each write the sender makes. */
export const WRITE_SIZE = 64 * 1024;
/** The byte a sink sends back once it has every byte of a transfer. */
export const DONE = 0x01;

/** "1G", "256M", "64k" or plain bytes; binary multiples. */
export function parseSize(text: string): number {
  const m = /^(\d+(?:\.\d+)?)([kmg]?)i?b?$/i.exec(text.trim());
  if (!m) throw new Error(`cannot read size "${text}" (use e.g. 1G, 256M, 1048576)`);
  const unit = { '': 1, k: 2 ** 10, m: 2 ** 20, g: 2 ** 30 }[m[2]!.toLowerCase() as '' | 'k' | 'm' | 'g'];
  return Math.round(Number(m[1]) * unit);
}

/**
 * Receiving end of a transfer: counts what `stream` delivers and replies DONE once `total` bytes have
 * arrived. `onBytes` sees the running count after each chunk (e.g. to checkpoint).
 */
export function sinkStream(stream: Duplex, total: number, onBytes?: (received: number) => void): void {
  let received = 0;
  stream.on('data', (chunk: Buffer) => {
    received += chunk.length;
    onBytes?.(received);
    if (received === total) stream.write(Buffer.of(DONE));
  });
  stream.on('error', () => {});
}

/**
 * Writes `bytes` in WRITE_SIZE writes honouring write()/'drain', timed from the first write until the
 * receiver's DONE byte arrives, so buffered-but-undelivered data never counts. Returns MB/s (10^6 B/s).
 * `payload` must be WRITE_SIZE bytes; it is reused, so the allocator is not measured.
 */
export async function timedTransfer(stream: Duplex, bytes: number, payload: Buffer): Promise<number> {
  const confirmed = once(stream, 'data');
  const started = process.hrtime.bigint();
  let sent = 0;
  while (sent < bytes) {
    const n = Math.min(WRITE_SIZE, bytes - sent);
    sent += n;
    if (!stream.write(n === WRITE_SIZE ? payload : payload.subarray(0, n))) await once(stream, 'drain');
  }
  await confirmed;
  const seconds = Number(process.hrtime.bigint() - started) / 1e9;
  return bytes / 1e6 / seconds;
}

/**
 * Runs `measure` once per variant as warm-up, then `runs` rounds in which the variants take turns in
 * alternating order (A B C, C B A, ...), so drift (turbo, other load) hits all alike.
 */
export async function alternatingRuns<V extends string>(
  variants: readonly V[],
  runs: number,
  measure: (variant: V) => Promise<number>,
  onRun?: (round: number, variant: V, value: number) => void,
): Promise<Record<V, number[]>> {
  for (const v of variants) await measure(v);
  const results = Object.fromEntries(variants.map((v) => [v, [] as number[]])) as Record<V, number[]>;
  for (let i = 0; i < runs; i++) {
    const order = i % 2 === 0 ? variants : [...variants].reverse();
    for (const v of order) {
      const value = await measure(v);
      results[v].push(value);
      onRun?.(i + 1, v, value);
    }
  }
  return results;
}
