/**
 * Bulk transfer into a session whose handler checkpoints every 64 KiB of input (a small state: the
 * byte count), vs a raw net.Socket on loopback; a plain session (no continuations) is shown too, to
 * separate the cost of checkpointing from the cost of the session itself.
 *
 * Same conventions as bench/throughput.ts (shared pieces in bench/lib/bulk.ts): the sender (this
 * process) writes `--bytes` in 64 KiB writes, honouring write()/'drain'; the receiver is a child
 * process; a run is timed from the first write until the receiver confirms every byte (one reply
 * byte); one warm-up run each, then the variants alternate (ABBA); the figure is the median MB/s.
 * The checkpointing server keeps continuations (input log, output since the last checkpoint) as a
 * pool member does, with the default 4 MiB log budget, which a checkpoint every 64 KiB never reaches.
 *
 *   npx tsx bench/checkpoint.ts [--bytes 1G] [--runs 5] [--quick]
 */
import type { Duplex } from 'node:stream';
import { parseArgs } from 'node:util';
import { connect, createServer } from '../src/session/index.ts';
import { alternatingRuns, parseSize, sinkStream, timedTransfer, WRITE_SIZE } from './lib/bulk.ts';
import { nextMessage, spawnTsx, stopChild } from './lib/child.ts';
import { loadAverage, loadLine, machineLine } from './lib/machine.ts';
import { emitResult, textTable } from './lib/report.ts';
import { median, round } from './lib/stats.ts';
import { closeStream, dial, listenBoth, type Ports } from './lib/transport.ts';

const CHECKPOINT_EVERY = 64 * 1024;

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

const VARIANTS = ['checkpointed', 'raw', 'session'] as const;
type Variant = (typeof VARIANTS)[number];

interface SinkPorts extends Ports {
  readonly checkpointed: number;
}

/** Child: sinks for the raw socket and the plain session, and a checkpointing session server. */
async function sink(): Promise<void> {
  const listeners = await listenBoth((stream) => sinkStream(stream, totalBytes));
  let checkpoints = 0;
  const server = createServer({ continuations: true }, (session) => {
    let next = CHECKPOINT_EVERY;
    sinkStream(session, totalBytes, (received) => {
      if (received < next) return;
      session.checkpoint({ received });
      checkpoints++;
      next = (Math.floor(received / CHECKPOINT_EVERY) + 1) * CHECKPOINT_EVERY;
    });
  });
  server.on('sessionError', () => {});
  const { port } = await server.listen(0, '127.0.0.1');
  const ports: SinkPorts = { ...listeners.ports, checkpointed: port };
  process.send?.(ports);
  process.on('message', () => process.send?.({ checkpoints }));
  process.on('disconnect', () => process.exit(0));
}

async function open(variant: Variant, ports: SinkPorts): Promise<Duplex> {
  if (variant !== 'checkpointed') return dial(variant, ports[variant]);
  const session = connect({ port: ports.checkpointed });
  await new Promise<void>((resolve, reject) => {
    session.once('connect', resolve);
    session.once('error', reject);
  });
  return session;
}

async function main(): Promise<void> {
  const loadAtStart = loadAverage()[0];
  const receiver = spawnTsx(import.meta.filename, ['--role', 'sink', '--bytes', String(totalBytes)], {
    ipc: true,
    stdout: 'inherit',
  });
  try {
    const ports = await nextMessage<SinkPorts>(receiver);
    const payload = Buffer.alloc(WRITE_SIZE, 0xab);
    console.log(
      `checkpoint: ${totalBytes} bytes per run, ${WRITE_SIZE} B writes, handler checkpoints every ` +
        `${CHECKPOINT_EVERY} B of input, ${runs} runs each`,
    );
    console.log(`machine: ${machineLine()}; ${loadLine()}`);
    const results = await alternatingRuns(
      VARIANTS,
      runs,
      async (variant) => {
        const stream = await open(variant, ports);
        const mbps = await timedTransfer(stream, totalBytes, payload);
        await closeStream(stream);
        return mbps;
      },
      (i, variant, mbps) => console.log(`  run ${i} ${variant.padEnd(12)} ${mbps.toFixed(1)} MB/s`),
    );
    const { checkpoints } = await new Promise<{ checkpoints: number }>((resolve) => {
      receiver.once('message', (m) => resolve(m as { checkpoints: number }));
      receiver.send({ op: 'checkpoints' });
    });
    const row = (v: Variant) => [
      v,
      round(median(results[v]), 1),
      round(Math.min(...results[v]), 1),
      round(Math.max(...results[v]), 1),
      results[v].length,
    ];
    console.log();
    console.log(textTable(['transport', 'median MB/s', 'min', 'max', 'runs'], VARIANTS.map(row)));
    const checkpointed = median(results.checkpointed);
    const raw = median(results.raw);
    const session = median(results.session);
    const perRun = checkpoints / (runs + 1);
    console.log(
      `\ncheckpointed / raw = ${(checkpointed / raw).toFixed(3)} (target >= 0.85); ` +
        `checkpointed / plain session = ${(checkpointed / session).toFixed(3)}; ${Math.round(perRun)} checkpoints per run`,
    );
    emitResult({
      bench: 'checkpoint',
      load_1m: [loadAtStart, loadAverage()[0]],
      ratio: round(checkpointed / raw),
      ratio_to_session: round(checkpointed / session),
      checkpointed_mbps: round(checkpointed, 1),
      session_mbps: round(session, 1),
      raw_mbps: round(raw, 1),
      checkpoints_per_run: Math.round(perRun),
      bytes_per_run: totalBytes,
      runs,
    });
  } finally {
    await stopChild(receiver);
  }
}

await (flags.role === 'sink' ? sink() : main());
