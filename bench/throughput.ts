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
import type { Duplex } from 'node:stream';
import { parseArgs } from 'node:util';
import { alternatingRuns, parseSize, sinkStream, timedTransfer, WRITE_SIZE } from './lib/bulk.ts';
import { nextMessage, spawnTsx, stopChild } from './lib/child.ts';
import { machineLine } from './lib/machine.ts';
import { emitResult, textTable } from './lib/report.ts';
import { median, round } from './lib/stats.ts';
import { closeStream, dial, listenBoth, type Ports, type Transport } from './lib/transport.ts';

const { values: flags } = parseArgs({
  options: {
    bytes: { type: 'string' },
    runs: { type: 'string' },
    quick: { type: 'boolean', default: false },
    role: { type: 'string' },
  },
});

const totalBytes = parseSize(flags.bytes ?? (flags.quick ? '128M' : '1G'));
const runs = Number(flags.runs ?? (flags.quick ? 2 : 5));

/** Child: counts what each stream delivers and replies one byte once `totalBytes` have arrived. */
async function sink(): Promise<void> {
  const listeners = await listenBoth((stream) => sinkStream(stream, totalBytes));
  process.send?.(listeners.ports);
  process.on('disconnect', () => process.exit(0));
}

/** One timed transfer on a fresh stream; returns MB/s. */
async function transfer(transport: Transport, port: number, bytes: number, payload: Buffer): Promise<number> {
  const stream: Duplex = await dial(transport, port);
  const mbps = await timedTransfer(stream, bytes, payload);
  await closeStream(stream);
  return mbps;
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
    const results = await alternatingRuns<Transport>(
      ['session', 'raw'],
      runs,
      (t) => transfer(t, ports[t], totalBytes, payload),
      (round, t, mbps) => console.log(`  run ${round} ${t.padEnd(7)} ${mbps.toFixed(1)} MB/s`),
    );
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
