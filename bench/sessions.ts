/**
 * Memory per idle session beyond a raw socket, for 10,000 of them.
 *
 * For each transport, a server process and a client process (each started with --expose-gc) hold
 * the N connections, so each side is measured on its own, as it would live in production: a server
 * holds many sessions, a client usually one. Each process measures heapUsed + external after forced
 * GC before opening and once all N are open and idle (external already includes arrayBuffers, so
 * adding arrayBuffers again would count them twice). Kernel socket buffers are not in these figures;
 * they are the same for both transports. The headline figure is the server side: per session, what a
 * session costs beyond the raw TCP socket it runs on.
 *
 *   npx tsx bench/sessions.ts [--count 10000] [--quick]
 */
import net from 'node:net';
import type { Duplex } from 'node:stream';
import { setTimeout as sleep } from 'node:timers/promises';
import { parseArgs } from 'node:util';
import { createServer } from '../src/session/index.ts';
import {
  type FdLimits,
  fdLimits,
  nextMessage,
  request,
  serveCommands,
  spawnTsx,
  stopChild,
} from './lib/child.ts';
import { machineLine } from './lib/machine.ts';
import { emitResult, textTable } from './lib/report.ts';
import { dial, type Transport } from './lib/transport.ts';

const { values: flags } = parseArgs({
  options: {
    count: { type: 'string' },
    quick: { type: 'boolean', default: false },
    role: { type: 'string' },
    transport: { type: 'string' },
    port: { type: 'string' },
  },
});
const count = Number(flags.count ?? (flags.quick ? 1000 : 10_000));
/** Connections opened at once: enough to be quick, few enough not to overflow the listen backlog. */
const BATCH = 200;
/** Sockets plus stdio, the IPC channel and the listener, with room to spare. */
const FD_NEEDED = count + 256;
/** Quiet time before measuring, so handshakes, delayed acks and their timers are all done. */
const SETTLE_MS = 1000;

interface Memory {
  readonly heapUsed: number;
  readonly external: number;
  readonly arrayBuffers: number;
  readonly rss: number;
}

interface Measured {
  readonly before: Memory;
  readonly after: Memory;
  readonly open: number;
}

/** Collects until the heap stops shrinking (weak callbacks can free more on a later pass), then reads. */
async function measure(): Promise<Memory> {
  const gc = globalThis.gc;
  if (!gc) throw new Error('run with --expose-gc');
  let last = Number.POSITIVE_INFINITY;
  for (let i = 0; i < 10; i++) {
    gc();
    await sleep(20);
    const used = process.memoryUsage().heapUsed;
    if (used >= last) break;
    last = used;
  }
  const m = process.memoryUsage();
  return { heapUsed: m.heapUsed, external: m.external, arrayBuffers: m.arrayBuffers, rss: m.rss };
}

const counted = (m: Memory) => m.heapUsed + m.external;

/** Child: a server of one transport that keeps every connection; measures on command. */
async function server(transport: Transport): Promise<void> {
  const held: Duplex[] = [];
  const keep = (stream: Duplex) => {
    // Idle, but read as any real server would: a 'data' listener puts the stream in flowing mode.
    stream.on('data', () => {});
    stream.on('error', () => {});
    held.push(stream);
  };
  let port: number;
  if (transport === 'raw') {
    const listener = net.createServer((socket) => {
      socket.setNoDelay(true);
      keep(socket);
    });
    await new Promise<void>((resolve) => listener.listen(0, '127.0.0.1', resolve));
    port = (listener.address() as net.AddressInfo).port;
  } else {
    port = (await createServer({}, keep).listen(0, '127.0.0.1')).port;
  }
  const before = await measure();
  serveCommands(async () => {
    // Sessions are handed over once the client confirms, which can trail the client's 'connect'.
    while (held.length < count) await sleep(10);
    await sleep(SETTLE_MS);
    const result: Measured = { before, after: await measure(), open: held.length };
    return result;
  });
  process.send?.({ port });
}

/** Child: opens `count` connections of one transport in batches, keeps them idle, measures. */
async function clients(transport: Transport, port: number): Promise<void> {
  const before = await measure();
  const held: Duplex[] = [];
  while (held.length < count) {
    const n = Math.min(BATCH, count - held.length);
    const batch = await Promise.all(Array.from({ length: n }, () => dial(transport, port)));
    for (const stream of batch) {
      stream.on('data', () => {});
      stream.on('error', () => {});
      held.push(stream);
    }
  }
  await sleep(SETTLE_MS);
  const result: Measured = { before, after: await measure(), open: held.length };
  process.send?.(result);
  process.on('disconnect', () => process.exit(0));
}

/** Opens `count` connections of `transport` between two fresh processes; returns both sides' figures. */
async function measureTransport(transport: Transport): Promise<{ server: Measured; client: Measured }> {
  const options = { exposeGc: true, fdLimit: FD_NEEDED, ipc: true, stdout: 'inherit' } as const;
  const common = ['--count', String(count), '--transport', transport];
  const srv = spawnTsx(import.meta.filename, ['--role', 'server', ...common], options);
  try {
    const { port } = await nextMessage<{ port: number }>(srv);
    const cli = spawnTsx(
      import.meta.filename,
      ['--role', 'clients', '--port', String(port), ...common],
      options,
    );
    try {
      const client = await nextMessage<Measured>(cli);
      const server = await request<Measured>(srv, 'measure');
      return { server, client };
    } finally {
      await stopChild(cli);
    }
  } finally {
    await stopChild(srv);
  }
}

async function main(): Promise<void> {
  const limits: FdLimits = fdLimits();
  console.log(`sessions: ${count} idle connections per transport, server and client in separate processes`);
  console.log(`machine: ${machineLine()}`);
  console.log(
    `open files: soft ${limits.soft}, hard ${limits.hard}; each child needs ~${FD_NEEDED}` +
      (limits.soft < FD_NEEDED ? `, raised to ${Math.min(FD_NEEDED, limits.hard)} via ulimit -n` : ''),
  );
  const raw = await measureTransport('raw');
  const session = await measureTransport('session');
  for (const m of [raw.server, raw.client, session.server, session.client]) {
    if (m.open !== count) throw new Error(`only ${m.open} of ${count} connections open`);
  }
  const per = (m: Measured, key: (x: Memory) => number) => (key(m.after) - key(m.before)) / count;
  const rows = (
    [
      ['raw', 'server', raw.server],
      ['raw', 'client', raw.client],
      ['session', 'server', session.server],
      ['session', 'client', session.client],
    ] as const
  ).map(([t, side, m]) => [
    t,
    side,
    Math.round(per(m, counted)),
    Math.round(per(m, (x) => x.heapUsed)),
    Math.round(per(m, (x) => x.external)),
    Math.round(per(m, (x) => x.arrayBuffers)),
    Math.round(per(m, (x) => x.rss)),
  ]);
  console.log();
  console.log(
    textTable(
      ['transport', 'side', 'bytes/conn', 'heapUsed', 'external', '(arrayBuffers)', 'rss (info)'],
      rows,
    ),
  );
  const serverOver = per(session.server, counted) - per(raw.server, counted);
  const clientOver = per(session.client, counted) - per(raw.client, counted);
  console.log(
    `\nper session beyond a raw socket: server ${Math.round(serverOver)} B, client ${Math.round(clientOver)} B` +
      ` (target <= 8192 B, judged on the server side)`,
  );
  emitResult({
    bench: 'sessions',
    bytes_per_session_over_raw: Math.round(serverOver),
    client_bytes_per_session_over_raw: Math.round(clientOver),
    server_bytes_per_session: Math.round(per(session.server, counted)),
    server_bytes_per_raw_socket: Math.round(per(raw.server, counted)),
    client_bytes_per_session: Math.round(per(session.client, counted)),
    client_bytes_per_raw_socket: Math.round(per(raw.client, counted)),
    connections: count,
    measured: 'heapUsed+external after gc, per side, server side is the headline',
  });
}

if (flags.role === 'server') await server(flags.transport as Transport);
else if (flags.role === 'clients') await clients(flags.transport as Transport, Number(flags.port));
else await main();
