#!/usr/bin/env node
import { Command, type CommanderError, InvalidArgumentError, Option } from 'commander';
import pino from 'pino';
import { type BreakMode, FaultProxy } from '../faults/fault-proxy.ts';
import { createServer } from '../session/index.ts';
import { runDemo } from './demo.ts';

/** The `lazarus` command. Usage errors exit with code 2, failures with 1. */

const USAGE_ERROR = 2;

function integer(min: number, max: number): (value: string) => number {
  return (value) => {
    const n = Number(value);
    if (!/^\d+$/.test(value) || n < min || n > max) {
      throw new InvalidArgumentError(`expected an integer in ${min}..${max}`);
    }
    return n;
  };
}

/** A size such as 65536, 512k, 64M or 1G. */
function size(value: string): number {
  const m = /^(\d+(?:\.\d+)?)([kmg]?)i?b?$/i.exec(value.trim());
  if (!m) throw new InvalidArgumentError('expected a size such as 65536, 512k, 64M or 1G');
  const unit = { '': 1, k: 1024, m: 1024 ** 2, g: 1024 ** 3 }[(m[2] ?? '').toLowerCase()] ?? 1;
  const n = Math.floor(Number(m[1]) * unit);
  if (n < 1) throw new InvalidArgumentError('must be at least 1 byte');
  return n;
}

/** A range `min-max` (or a single value) of non-negative integers, `parse` giving each bound. */
function range(parse: (v: string) => number): (value: string) => readonly [number, number] {
  return (value) => {
    const [a = '', b = a, ...rest] = value.split('-');
    if (rest.length > 0) throw new InvalidArgumentError('expected min-max');
    const lo = parse(a);
    const hi = parse(b);
    if (hi < lo) throw new InvalidArgumentError('max is below min');
    return [lo, hi];
  };
}

function hostPort(value: string): { host: string; port: number } {
  const at = value.lastIndexOf(':');
  const host = at > 0 ? value.slice(0, at).replace(/^\[(.*)\]$/, '$1') : '127.0.0.1';
  const port = integer(1, 65535)(at >= 0 ? value.slice(at + 1) : value);
  return { host, port };
}

function modes(value: string): BreakMode[] {
  const list = value.split(',').map((m) => m.trim());
  const known: readonly string[] = ['reset', 'close', 'stall'];
  const bad = list.filter((m) => !known.includes(m));
  if (bad.length > 0 || list.length === 0) {
    throw new InvalidArgumentError(`modes are a comma list of ${known.join(', ')}`);
  }
  return list as BreakMode[];
}

const port = integer(0, 65535);
const logger = () => pino({ name: 'lazarus' }, pino.destination(2));

/** On SIGINT or SIGTERM: close, then exit. */
function closeOnSignal(close: () => Promise<void>): void {
  const stop = () => {
    void close().then(() => process.exit(0));
  };
  process.once('SIGINT', stop);
  process.once('SIGTERM', stop);
}

function buildProgram(): Command {
  const program = new Command('lazarus')
    .description('Keep long-lived network services alive through overload, failures and hangs')
    .showHelpAfterError('(run with --help for usage)')
    // Every usage error (unknown option, bad value) exits 2; help and version exit 0.
    .exitOverride((err: CommanderError) => process.exit(err.exitCode === 0 ? 0 : USAGE_ERROR));

  program
    .command('demo')
    .description('stream through a fault proxy that keeps breaking connections, then verify every byte')
    .option('--clients <n>', 'client processes, one session each', integer(1, 64), 6)
    .option('--duration <seconds>', 'how long the clients stream (at most 90)', integer(1, 90), 20)
    .option('--bytes <size>', 'stop each client after this many bytes (e.g. 64M)', size)
    .option('--seed <n>', 'seed of the data and of the fault schedule', integer(0, 2 ** 31), 1)
    .option('--forever', 'stream until Ctrl-C, then verify')
    // Flips a byte on the server so the verification must fail: how the tests check the verdict.
    .addOption(new Option('--corrupt').hideHelp())
    .action(
      async (o: {
        clients: number;
        duration: number;
        bytes?: number;
        seed: number;
        forever?: true;
        corrupt?: true;
      }) => {
        process.exitCode = await runDemo({
          clients: o.clients,
          durationMs: o.forever ? null : o.duration * 1000,
          bytes: o.bytes ?? null,
          seed: o.seed,
          corrupt: o.corrupt === true,
        });
      },
    );

  program
    .command('serve')
    .description('run a session server that echoes (or swallows) what each session sends')
    .option('--port <port>', 'port to listen on (0: any)', port, 7000)
    .option('--host <host>', 'address to listen on', '127.0.0.1')
    .addOption(
      new Option('--secret <secret>', 'pool secret for tickets (default: random)').env('LAZARUS_SECRET'),
    )
    .addOption(
      new Option('--mode <mode>', 'what to do with the data').choices(['echo', 'sink']).default('echo'),
    )
    .action(async (o: { port: number; host: string; secret?: string; mode: 'echo' | 'sink' }) => {
      const log = logger();
      const server = createServer(o.secret === undefined ? {} : { secret: o.secret }, (session) => {
        const id = session.sessionId;
        log.info({ session: id }, 'session opened');
        if (o.mode === 'echo') session.pipe(session);
        else session.resume().on('end', () => session.end());
        session.on('resumed', (e: { retransmitted: number }) =>
          log.info({ session: id, retransmitted: e.retransmitted }, 'session resumed'),
        );
        session.on('close', () =>
          log.info({ session: id, read: session.bytesRead, written: session.bytesWritten }, 'session closed'),
        );
      });
      server.on('sessionError', (err: Error, session: { sessionId: string }) =>
        log.warn({ session: session.sessionId, err }, 'session failed'),
      );
      server.on('connectionError', (err: Error, remote: string | undefined) =>
        log.warn({ remote, err }, 'connection refused'),
      );
      const address = await server.listen(o.port, o.host);
      log.info({ address: address.address, port: address.port, mode: o.mode }, 'listening');
      closeOnSignal(() => server.close());
    });

  program
    .command('proxy')
    .description('run a TCP proxy that injects faults: breaks after bytes or time, stalls, latency')
    .requiredOption('--target <host:port>', 'where to forward', hostPort)
    .option('--port <port>', 'port to listen on (0: any)', port, 0)
    .option('--host <host>', 'address to listen on', '127.0.0.1')
    .option('--break-bytes <min-max>', 'break each connection after this many bytes', range(size))
    .option('--break-ms <min-max>', 'break each connection after this many ms', range(integer(0, 2 ** 31)))
    .option('--modes <list>', 'how to break, comma list of reset, close, stall', modes, ['reset'])
    .option('--latency <ms>', 'delay every chunk by this many ms', integer(0, 60_000), 0)
    .option('--seed <n>', 'seed of the fault schedule', integer(0, 2 ** 31), 1)
    .action(
      async (o: {
        target: { host: string; port: number };
        port: number;
        host: string;
        breakBytes?: readonly [number, number];
        breakMs?: readonly [number, number];
        modes: BreakMode[];
        latency: number;
        seed: number;
      }) => {
        const log = logger();
        const proxy = new FaultProxy({
          targetHost: o.target.host,
          targetPort: o.target.port,
          seed: o.seed,
          breakAfterBytes: o.breakBytes,
          breakAfterMs: o.breakMs,
          breakModes: o.modes,
          latencyMs: o.latency,
        });
        proxy.on('break', (mode: BreakMode) => log.info({ mode, ...proxy.stats }, 'connection broken'));
        const address = await proxy.listen(o.port, o.host);
        log.info({ port: address.port, target: `${o.target.host}:${o.target.port}` }, 'proxying');
        closeOnSignal(() => proxy.close());
      },
    );

  return program;
}

try {
  await buildProgram().parseAsync();
} catch (err) {
  // Usage errors never get here (exitOverride exits 2): this is a command that failed.
  console.error(`lazarus: ${err instanceof Error ? err.message : String(err)}`);
  process.exitCode = 1;
}
