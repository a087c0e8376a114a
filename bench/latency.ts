/**
 * 64-byte echo round trips over a lazarus session vs over a raw net.Socket on loopback, one
 * outstanding at a time. The echo server is a child process, as in a real deployment. Each transport
 * gets a warm-up (JIT, socket buffers) on its own stream; then rounds alternate (ABBA) on those same
 * streams, and every round trip is kept, so percentiles are exact (sorted samples, nearest rank).
 *
 *   npx tsx bench/latency.ts [--count 20000] [--rounds 5] [--quick]
 */
import type { Duplex } from 'node:stream';
import { parseArgs } from 'node:util';
import { nextMessage, spawnTsx, stopChild } from './lib/child.ts';
import { machineLine } from './lib/machine.ts';
import { emitResult, textTable } from './lib/report.ts';
import { mean, percentile, round, sorted } from './lib/stats.ts';
import { closeStream, dial, listenBoth, type Ports, type Transport } from './lib/transport.ts';

const MESSAGE_SIZE = 64;

const { values: flags } = parseArgs({
  options: {
    count: { type: 'string' },
    rounds: { type: 'string' },
    quick: { type: 'boolean', default: false },
    role: { type: 'string' },
  },
});
const perRound = Number(flags.count ?? (flags.quick ? 2000 : 20_000));
const rounds = Number(flags.rounds ?? (flags.quick ? 2 : 5));
const warmup = flags.quick ? 1000 : 5000;

/** Child: echoes every stream. */
async function echo(): Promise<void> {
  const listeners = await listenBoth((stream) => {
    stream.on('data', (chunk: Buffer) => stream.write(chunk));
    stream.on('error', () => {});
  });
  process.send?.(listeners.ports);
  process.on('disconnect', () => process.exit(0));
}

/** Measures round trips on one stream; the echo may come back in pieces, so bytes are counted. */
class Pinger {
  readonly #stream: Duplex;
  readonly #message = Buffer.alloc(MESSAGE_SIZE, 0x5a);
  #pending = 0;
  #done: (() => void) | undefined;

  constructor(stream: Duplex) {
    this.#stream = stream;
    stream.on('data', (chunk: Buffer) => {
      this.#pending -= chunk.length;
      if (this.#pending === 0) this.#done?.();
    });
  }

  /** Round-trip times in microseconds. */
  async run(count: number, into: number[]): Promise<void> {
    for (let i = 0; i < count; i++) {
      const back = new Promise<void>((resolve) => {
        this.#done = resolve;
      });
      this.#pending = MESSAGE_SIZE;
      const started = process.hrtime.bigint();
      this.#stream.write(this.#message);
      await back;
      into.push(Number(process.hrtime.bigint() - started) / 1000);
    }
  }
}

async function main(): Promise<void> {
  const server = spawnTsx(import.meta.filename, ['--role', 'echo'], { ipc: true, stdout: 'inherit' });
  try {
    const ports = await nextMessage<Ports>(server);
    console.log(
      `latency: ${MESSAGE_SIZE} B echo, ${warmup} warm-up + ${rounds} x ${perRound} round trips each`,
    );
    console.log(`machine: ${machineLine()}`);
    const streams = { session: await dial('session', ports.session), raw: await dial('raw', ports.raw) };
    const pingers = { session: new Pinger(streams.session), raw: new Pinger(streams.raw) };
    for (const t of ['session', 'raw'] as const) await pingers[t].run(warmup, []);

    const samples: Record<Transport, number[]> = { session: [], raw: [] };
    for (let i = 0; i < rounds; i++) {
      const order: readonly Transport[] = i % 2 === 0 ? ['session', 'raw'] : ['raw', 'session'];
      for (const t of order) await pingers[t].run(perRound, samples[t]);
    }
    for (const s of Object.values(streams)) await closeStream(s);

    const summary = (t: Transport) => {
      const s = sorted(samples[t]);
      return {
        p50: percentile(s, 50),
        p90: percentile(s, 90),
        p99: percentile(s, 99),
        p999: percentile(s, 99.9),
        mean: mean(s),
        max: s.at(-1)!,
      };
    };
    const session = summary('session');
    const raw = summary('raw');
    const row = (t: Transport, x: typeof session) => [
      t,
      ...[x.p50, x.p90, x.p99, x.p999, x.mean, x.max].map((v) => round(v, 1)),
      samples[t].length,
    ];
    console.log();
    console.log(
      textTable(
        ['transport', 'p50 µs', 'p90 µs', 'p99 µs', 'p99.9 µs', 'mean µs', 'max µs', 'samples'],
        [row('session', session), row('raw', raw)],
      ),
    );
    const p50Ratio = session.p50 / raw.p50;
    const p99Ratio = session.p99 / raw.p99;
    console.log(`\np50 ratio ${p50Ratio.toFixed(3)} (target <= 1.2), p99 ratio ${p99Ratio.toFixed(3)}`);
    emitResult({
      bench: 'latency',
      p50_ratio: round(p50Ratio),
      p99_ratio: round(p99Ratio),
      session_p50_us: round(session.p50, 1),
      session_p99_us: round(session.p99, 1),
      raw_p50_us: round(raw.p50, 1),
      raw_p99_us: round(raw.p99, 1),
      samples_each: samples.session.length,
    });
  } finally {
    await stopChild(server);
  }
}

await (flags.role === 'echo' ? echo() : main());
