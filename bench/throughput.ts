/**
 * Bulk transfer over a lazarus session vs over a raw net.Socket on loopback.
 *
 * The sender (this process) writes `--bytes` in 64 KiB writes, honouring write()/'drain'; the
 * receiver is a child process, so each end has its own event loop as in a real deployment. A run is
 * timed from the first write until the receiver confirms it has every byte (one reply byte), so
 * buffered-but-undelivered data never counts. Transports alternate (ABBA) after one warm-up run each,
 * to spread drift (turbo, other load) evenly; the figure is the median MB/s (10^6 bytes/s).
 *
 *   npx tsx bench/throughput.ts [--bytes 1G] [--runs 5] [--quick]
 */
import { once } from 'node:events';
import type { Duplex } from 'node:stream';
import { parseArgs } from 'node:util';
import { nextMessage, spawnTsx, stopChild } from './lib/child.ts';
import { machineLine } from './lib/machine.ts';
import { emitResult, textTable } from './lib/report.ts';
import { median, round } from './lib/stats.ts';
import { closeStream, dial, listenBoth, type Ports, type Transport } from './lib/transport.ts';

const WRITE_SIZE = 64 * 1024;
const DONE = 0x01;

const { values: flags } = parseArgs({
  options: {
    bytes: { type: 'string' },
    runs: { type: 'string' },
    quick: { type: 'boolean', default: false },
    role: { type: 'string' },
  },
});

/** "1G", "256M", "64k" or plain bytes; binary multiples. */
function parseSize(text: string): number {
  const m = /^(\d+(?:\.\d+)?)([kmg]?)i?b?$/i.exec(text.trim());
  if (!m) throw new Error(`cannot read size "${text}" (use e.g. 1G, 256M, 1048576)`);
  const unit = { '': 1, k: 2 ** 10, m: 2 ** 20, g: 2 ** 30 }[m[2]!.toLowerCase() as '' | 'k' | 'm' | 'g'];
  return Math.round(Number(m[1]) * unit);
}

const totalBytes = parseSize(flags.bytes ?? (flags.quick ? '128M' : '1G'));
const runs = Number(flags.runs ?? (flags.quick ? 2 : 5));

/** Child: counts what each stream delivers and replies one byte once `totalBytes` have arrived. */
async function sink(): Promise<void> {
  const listeners = await listenBoth((stream) => {
    let received = 0;
    stream.on('data', (chunk: Buffer) => {
      received += chunk.length;
      if (received === totalBytes) stream.write(Buffer.of(DONE));
    });
    stream.on('error', () => {});
  });
  process.send?.(listeners.ports);
  process.on('disconnect', () => process.exit(0));
}

/** One timed transfer on a fresh stream; returns MB/s. */
async function transfer(transport: Transport, port: number, bytes: number, payload: Buffer): Promise<number> {
  const stream: Duplex = await dial(transport, port);
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
  await closeStream(stream);
  return bytes / 1e6 / seconds;
}

async function main(): Promise<void> {
  const receiver = spawnTsx(import.meta.filename, ['--role', 'sink', '--bytes', String(totalBytes)], {
    ipc: true,
    stdout: 'inherit',
  });
  try {
    const ports = await nextMessage<Ports>(receiver);
    // Bytes are never inspected; reusing one buffer measures the transport, not the allocator.
    const payload = Buffer.alloc(WRITE_SIZE, 0xab);
    console.log(`throughput: ${totalBytes} bytes per run, ${WRITE_SIZE} B writes, ${runs} runs each`);
    console.log(`machine: ${machineLine()}`);
    for (const t of ['session', 'raw'] as const) await transfer(t, ports[t], totalBytes, payload);

    const results: Record<Transport, number[]> = { session: [], raw: [] };
    for (let i = 0; i < runs; i++) {
      const order: readonly Transport[] = i % 2 === 0 ? ['session', 'raw'] : ['raw', 'session'];
      for (const t of order) {
        const mbps = await transfer(t, ports[t], totalBytes, payload);
        results[t].push(mbps);
        console.log(`  run ${i + 1} ${t.padEnd(7)} ${mbps.toFixed(1)} MB/s`);
      }
    }
    const session = median(results.session);
    const raw = median(results.raw);
    const row = (t: Transport) => [
      t,
      round(median(results[t]), 1),
      round(Math.min(...results[t]), 1),
      round(Math.max(...results[t]), 1),
      results[t].length,
    ];
    console.log();
    console.log(textTable(['transport', 'median MB/s', 'min', 'max', 'runs'], [row('session'), row('raw')]));
    console.log(`\nsession / raw = ${(session / raw).toFixed(3)} (target >= 0.95)`);
    emitResult({
      bench: 'throughput',
      session_mbps: round(session, 1),
      raw_mbps: round(raw, 1),
      ratio: round(session / raw),
      bytes_per_run: totalBytes,
      runs,
    });
  } finally {
    await stopChild(receiver);
  }
}

await (flags.role === 'sink' ? sink() : main());
