#!/usr/bin/env node
import { Command, type CommanderError, InvalidArgumentError, Option } from 'commander';
import pino from 'pino';
import { type BreakMode, FaultProxy } from '../faults/fault-proxy.ts';
import { createPool, type Member, requestDrain, StaticMembership } from '../pool/index.ts';
import { createServer, type ServerOptions } from '../session/index.ts';
import { runDemo } from './demo.ts';
import { registerDsmCommand } from './dsm.ts';
import { type ServeMode, serveHandler } from './serve-handler.ts';

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

/** A duration such as 30s, 500ms or 2m (plain numbers are seconds), in ms. */
function duration(value: string): number {
  const m = /^(\d+(?:\.\d+)?)(ms|s|m)?$/.exec(value.trim());
  if (!m) throw new InvalidArgumentError('expected a duration such as 30s, 500ms or 2m');
  const ms = Math.round(Number(m[1]) * { ms: 1, s: 1000, m: 60_000 }[m[2] ?? 's']!);
  if (ms < 1 || ms > 2 ** 31) throw new InvalidArgumentError('expected a duration from 1 ms to 24 days');
  return ms;
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

/** Fails with a usage error (exit 2), as commander does for a bad option. */
function usage(command: Command, message: string): never {
  command.error(`error: ${message}`, { exitCode: USAGE_ERROR });
}

/** The pool file and this server's entry in it; a usage error when either is wrong. */
function loadPool(
  command: Command,
  file: string,
  id: string,
): { membership: StaticMembership; member: Member } {
  let membership: StaticMembership;
  try {
    membership = StaticMembership.fromFile(file);
  } catch (err) {
    const cause = (err as { cause?: unknown }).cause;
    const why = cause instanceof Error ? `: ${cause.message}` : '';
    usage(command, `${(err as Error).message}${why}`);
  }
  const member = membership.get(id);
  if (!member) {
    const ids = membership.members().map((m) => m.id);
    usage(command, `${file} has no member ${JSON.stringify(id)} (members: ${ids.join(', ') || 'none'})`);
  }
  return { membership, member };
}

/** The pool secret, required: members and the drain command authenticate with it. */
function poolSecret(command: Command, secret: string | undefined): string {
  if (secret === undefined || secret.length === 0) {
    usage(command, 'a pool needs its secret: --secret <secret> or LAZARUS_SECRET');
  }
  return secret;
}

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
    .description(
      'a pool of three servers and a dozen streaming clients through overload, a deploy and a slow path; ' +
        'then verify every byte',
    )
    .option('--clients <n>', 'clients, one session each', integer(1, 64), 12)
    .option(
      '--duration <seconds>',
      'how long the clients stream, at least until the scripted events are done (at most 90)',
      integer(1, 90),
      40,
    )
    .option('--rate <size>', 'bytes per second each client sends (e.g. 256k)', size, 256 * 1024)
    .option('--seed <n>', 'seed of the data and of the fault schedule', integer(0, 2 ** 31), 1)
    .option('--forever', 'repeat the scripted events until Ctrl-C, then verify')
    // Flips a byte on the servers so the verification must fail: how the tests check the verdict.
    .addOption(new Option('--corrupt').hideHelp())
    .action(
      async (o: {
        clients: number;
        duration: number;
        rate: number;
        seed: number;
        forever?: true;
        corrupt?: true;
      }) => {
        process.exitCode = await runDemo({
          clients: o.clients,
          durationMs: o.forever ? null : o.duration * 1000,
          rate: o.rate,
          seed: o.seed,
          corrupt: o.corrupt === true,
        });
      },
    );

  program
    .command('serve')
    .description(
      'run a session server that echoes (or swallows) what each session sends; with --pool, as one ' +
        'member of a pool whose sessions migrate',
    )
    .option('--port <port>', 'port to listen on (0: any); in a pool, from the pool file', port, 7000)
    .option('--host <host>', 'address to listen on; in a pool, from the pool file', '127.0.0.1')
    .option('--pool <file>', 'pool file: JSON list of { id, host, port, peerPort }, this server among them')
    .option('--id <member>', 'this server in the pool file')
    .option(
      '--max-sessions <n>',
      'in a pool: advise clients to move beyond this many sessions',
      integer(1, 2 ** 31),
    )
    .addOption(
      new Option('--secret <secret>', 'pool secret (default without --pool: random)').env('LAZARUS_SECRET'),
    )
    .addOption(
      new Option('--mode <mode>', 'what to do with the data').choices(['echo', 'sink']).default('echo'),
    )
    .action(
      async (
        o: {
          port: number;
          host: string;
          pool?: string;
          id?: string;
          maxSessions?: number;
          secret?: string;
          mode: ServeMode;
        },
        command: Command,
      ) => {
        const options: ServerOptions = {};
        let listenOn: { port?: number; host?: string } = { port: o.port, host: o.host };
        if (o.pool !== undefined) {
          if (o.id === undefined) usage(command, '--pool needs --id <member>');
          for (const name of ['port', 'host']) {
            if (command.getOptionValueSource(name) === 'cli') {
              usage(command, `--${name} comes from the pool file with --pool`);
            }
          }
          const { membership } = loadPool(command, o.pool, o.id);
          options.pool = createPool({
            self: o.id,
            members: membership,
            secret: poolSecret(command, o.secret),
          });
          if (o.maxSessions !== undefined) options.maxSessions = o.maxSessions;
          // The member's own address.
          listenOn = {};
        } else {
          if (o.id !== undefined) usage(command, '--id needs --pool');
          if (o.maxSessions !== undefined) usage(command, '--max-sessions needs --pool');
          if (o.secret !== undefined) options.secret = o.secret;
        }
        const log = logger();
        const server = createServer(options, serveHandler(o.mode, options.pool !== undefined, log));
        server.on('sessionError', (err: Error, session: { sessionId: string }) =>
          log.warn({ session: session.sessionId, err }, 'session failed'),
        );
        server.on('connectionError', (err: Error, remote: string | undefined) =>
          log.warn({ remote, err }, 'connection refused'),
        );
        server.on('peerError', (err: Error) => log.warn({ err }, 'peer refused'));
        server.on('migrated', (session: string, to: string) => log.info({ session, to }, 'session migrated'));
        server.on('adopted', (session: string) => log.info({ session }, 'session adopted'));
        const address = await server.listen(listenOn.port, listenOn.host);
        log.info(
          { id: server.serverId, address: address.address, port: address.port, mode: o.mode, pool: o.pool },
          'listening',
        );
        closeOnSignal(() => server.close());
      },
    );

  program
    .command('drain')
    .description(
      'move every session off a pool member (e.g. before a deploy) and report; exit 0 once none is left',
    )
    .argument('<member>', 'the member to drain, by id')
    .requiredOption('--pool <file>', 'pool file: JSON list of { id, host, port, peerPort }')
    .option('--deadline <duration>', 'give up waiting after this long (e.g. 30s, 2m)', duration, 30_000)
    .addOption(new Option('--secret <secret>', 'pool secret').env('LAZARUS_SECRET'))
    .action(
      async (memberId: string, o: { pool: string; deadline: number; secret?: string }, command: Command) => {
        const { member } = loadPool(command, o.pool, memberId);
        const secret = poolSecret(command, o.secret);
        const report = await requestDrain(member, secret, o.deadline);
        const left = report.remaining === 0 ? 'none left' : `${report.remaining} still there at the deadline`;
        console.log(`drained ${member.id}: ${report.moved} sessions moved, ${left}, in ${report.ms} ms`);
        process.exitCode = report.remaining === 0 ? 0 : 1;
      },
    );

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

  registerDsmCommand(program);
  return program;
}

try {
  await buildProgram().parseAsync();
} catch (err) {
  // Usage errors never get here (exitOverride exits 2): this is a command that failed.
  console.error(`lazarus: ${err instanceof Error ? err.message : String(err)}`);
  process.exitCode = 1;
}
