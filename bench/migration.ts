/**
 * Migration latency: from the trigger (client.migrate()) to the first byte the new server sends,
 * for handler snapshots of 0 B, 1 KiB, 64 KiB and 1 MiB, against the floor measured in the same run:
 * a fresh TCP connect plus one round trip (raw net.Socket, 1 byte echoed) to the same server process.
 *
 * Three pool members run in three child processes (each its own event loop); the client is this
 * process. One session per snapshot size moves round the pool (a -> b -> c -> a ...). Each cycle:
 *   1. the client sends 64 B and the handler echoes them (not checkpointed, so every continuation
 *      carries a 64 B input log and 64 B of output to replay and compare);
 *   2. migrate(next) is called (t0); the client tells the origin where it goes (HANDOFF) and the
 *      origin pushes the continuation there (or, if the client gets there first, the new server
 *      pulls it and the push answers the pull); the new server restores the snapshot, replays the
 *      64 B; once replay is done the handler writes one byte ("hello") and checkpoints on its next
 *      event-loop turn (a checkpoint is the application's business, not part of the move);
 *   3. the client receives the hello byte (t1): latency = t1 - t0;
 *   4. one floor sample to the same server process: connect, write 1 byte, read it back.
 * Migrations and floor samples alternate, so machine noise hits both alike; each size's p50/floor
 * ratio uses the floor samples taken between that size's migrations.
 *
 * Breakdown, from timestamps on the system-wide monotonic clock taken in the client and the servers
 * without touching src/: the client's TCP socket (diagnostics channel net.client.socket), the new
 * server's accepted socket (net.server.socket), a SessionPool wrapper around the real Pool (pull
 * start and end), the server's 'adopted' event, the handler, and a wrapper around the origin's
 * surrender (freeze and encode). Phases:
 *   connect   migrate() called -> TCP connected (client; the early RESUME is queued before this)
 *   accept    connected -> the new server has accepted the connection
 *   arrive    accepted -> the new server reads the RESUME
 *   auth      RESUME read -> pull started (ticket, proof and replay cache checked)
 *   pull      pull started -> continuation decoded (when the new server pulled; surrender is part of it)
 *   push      origin's handoff started -> session adopted by the new server (when it was pushed)
 *   restore   continuation decoded or pushed session adopted -> handler called (session rebuilt)
 *   replay    handler called -> first live byte handed to write() (64 B input replayed, output compared)
 *   deliver   write() called, and the client's RESUME read -> byte received by the client
 * Each phase column is that phase's own median, so the columns need not add up to the total's median.
 * The timeline table shows where the path waits: for each mark, the median time from migrate() to it
 * (the origin starts the handoff; the client's TCP connects; its RESUME leaves; the new server
 * accepts, reads the RESUME, adopts the pushed session, writes the hello, answers the RESUME; the
 * client receives the hello).
 *
 *   npx tsx bench/migration.ts [--count 400] [--warmup 3000] [--quick]
 */
import type { ChildProcess } from 'node:child_process';
import diagnostics_channel from 'node:diagnostics_channel';
import { once } from 'node:events';
import net from 'node:net';
import { parseArgs } from 'node:util';
import type { Continuation } from '../src/continuation/continuation.ts';
import { createPool, type Member } from '../src/pool/index.ts';
import {
  type ClientSession,
  connect,
  createServer,
  type ServerSession,
  type SessionPool,
  type SessionServer,
} from '../src/session/index.ts';
import { nextMessage, request, serveCommands, spawnTsx, stopChild } from './lib/child.ts';
import { loadAverage, loadLine, machineLine } from './lib/machine.ts';
import { BENCH_POOL_SECRET, loopbackMembers, monoUs } from './lib/pool.ts';
import { emitResult, textTable } from './lib/report.ts';
import { median, percentile, round, sorted } from './lib/stats.ts';

const SIZES = [
  { label: '0', bytes: 0 },
  { label: '1k', bytes: 1024 },
  { label: '64k', bytes: 64 * 1024 },
  { label: '1m', bytes: 1024 * 1024 },
] as const;
type SizeLabel = (typeof SIZES)[number]['label'];

const ECHO_BYTES = 64;
const HELLO = 0x48;
const IDS = ['a', 'b', 'c'] as const;

const { values: flags } = parseArgs({
  options: {
    count: { type: 'string' },
    warmup: { type: 'string' },
    quick: { type: 'boolean', default: false },
    role: { type: 'string' },
    id: { type: 'string' },
    members: { type: 'string' },
  },
});
const count = Number(flags.count ?? (flags.quick ? 60 : 400));
/**
 * Migrations before each size's measured ones (and twice as many at 1 KiB before the first size).
 * With 60, 20 per server, V8 was still optimizing the resume path while it was measured: p50/floor
 * at 64 KiB was 3.69 and 3.74 in two runs; with 1,000 it was 3.03-3.17 in three. With 1,000 the
 * four processes still completed 46-102 optimizations (--trace-opt) during each size's 400 measured
 * migrations, with 3,000 16-50; in two alternating pairs 1,000 gave 0 B 2.66/2.84, 1 KiB 2.43/2.62,
 * 64 KiB 3.31/3.22, and 3,000 gave 2.30/2.31, 2.07/2.19, 2.70/3.18.
 */
const warmup = Number(flags.warmup ?? (flags.quick ? 20 : 3000));

/** What a new owner saw of one incoming migration, by session epoch. */
interface ArrivalMarks {
  readonly epoch: number;
  readonly accepted: number | undefined;
  readonly resumeRx: number | undefined;
  readonly pullStart: number;
  readonly pullEnd: number;
  readonly adopted: number;
  readonly handler: number;
  readonly helloWritten: number;
  /** The answer to the RESUME (RESUMED and the retransmitted hello) was written: the 'resumed' event. */
  readonly answered: number | undefined;
}

/**
 * What the origin saw: the surrender (freeze + encode) of the session, with the epoch it handed over;
 * `pushed` when it handed it over unasked (the client announced its move), else it was pulled.
 */
interface SurrenderMarks {
  readonly epoch: number;
  readonly start: number;
  readonly end: number;
  readonly bytes?: number;
  readonly pushed?: boolean;
}

interface ServerMarks {
  readonly arrivals: ArrivalMarks[];
  readonly surrenders: SurrenderMarks[];
}

interface Ready {
  readonly rawPort: number;
}

// ---------------------------------------------------------------------------------------------
// Child: one pool member, plus a raw echo listener for the floor.

async function serve(id: string, members: readonly Member[]): Promise<void> {
  // Arrivals wait for their 'answered' mark until they are reported: 'resumed' may come before or
  // after the arrival is recorded.
  const marks = { arrivals: [] as Omit<ArrivalMarks, 'answered'>[], surrenders: [] as SurrenderMarks[] };
  /** When each epoch's RESUME was answered (the session emits 'resumed' after writing the answer). */
  const answered = new Map<number, number>();
  // When each connection was accepted and delivered its first bytes (the RESUME frame), by client port.
  const accepted = new Map<number, number>();
  const firstData = new Map<number, number>();
  diagnostics_channel.subscribe('net.server.socket', (message) => {
    const socket = (message as { socket: net.Socket }).socket;
    const port = socket.remotePort;
    if (port === undefined) return;
    accepted.set(port, monoUs());
    socket.once('data', () => firstData.set(port, monoUs()));
    socket.once('close', () =>
      setTimeout(() => {
        firstData.delete(port);
        accepted.delete(port);
      }, 5000).unref(),
    );
  });

  const real = createPool({ self: id, members, secret: BENCH_POOL_SECRET });
  const pulls = new Map<string, { start: number; end: number }>();
  /** Size of the continuation the last handoff pushed (set inside the handoff, synchronously). */
  let pushedBytes: number | undefined;
  const adopted = new Map<string, number>();
  // The seam SessionServer offers: a SessionPool that times the pull and the origin's surrender.
  const pool: SessionPool = {
    selfId: real.selfId,
    secret: real.secret,
    self: real.self,
    members: () => real.members(),
    onMembersChange: (listener) => real.onMembersChange(listener),
    // Arguments are passed through as they are, whatever the SessionPool signature of the day.
    pull: async (...args: Parameters<SessionPool['pull']>): Promise<Continuation> => {
      const start = monoUs();
      const continuation = await real.pull(...args);
      pulls.set(args[0].toString('hex'), { start, end: monoUs() });
      return continuation;
    },
    // The origin pushes the session when the client announces its move (then nobody pulls).
    push: (...args: Parameters<NonNullable<SessionPool['push']>>) => {
      pushedBytes = args[1].reduce((n, p) => n + p.length, 0);
      return real.push(...args);
    },
    start: (server: SessionServer) => real.start(timedSurrender(server, marks.surrenders)),
    close: () => real.close(),
  };

  const server = createServer({ pool }, (session: ServerSession) => handle(session));
  server.on('adopted', (hex: string) => adopted.set(hex, monoUs()));
  server.on('sessionError', () => {});
  // A push (the client announced its move): the origin's freeze + encode, timed like a surrender.
  const handoff = server.handoff.bind(server);
  server.handoff = (session, to) => {
    const epoch = session.epoch + 1;
    const start = monoUs();
    pushedBytes = undefined;
    handoff(session, to);
    const end = monoUs();
    if (pushedBytes !== undefined)
      marks.surrenders.push({ epoch, start, end, bytes: pushedBytes, pushed: true });
  };

  function handle(session: ServerSession): void {
    const handler = monoUs();
    let state = session.restoredState as Buffer | undefined;
    const restored = state !== undefined;
    let helloSent = !restored;
    let setup = Buffer.alloc(0);
    const sayHello = () => {
      helloSent = true;
      const helloWritten = monoUs();
      session.write(Buffer.of(HELLO));
      // Next turn, so the checkpoint is not in the measured path even when the session was pushed
      // here before its client arrived (the byte then waits for it); the next migration starts from
      // here with empty logs.
      setImmediate(() => session.checkpoint(state));
      const hex = session.sessionId;
      const pull = pulls.get(hex);
      pulls.delete(hex);
      marks.arrivals.push({
        epoch: session.epoch,
        accepted: session.remotePort === undefined ? undefined : accepted.get(session.remotePort),
        resumeRx: session.remotePort === undefined ? undefined : firstData.get(session.remotePort),
        pullStart: pull?.start ?? Number.NaN,
        pullEnd: pull?.end ?? Number.NaN,
        adopted: adopted.get(hex) ?? Number.NaN,
        handler,
        helloWritten,
      });
    };
    session.on('data', (chunk: Buffer) => {
      if (state === undefined) {
        // A new session: its first 4 bytes say how large a snapshot to keep.
        setup = Buffer.concat([setup, chunk]);
        if (setup.length < 4) return;
        state = Buffer.alloc(setup.readUInt32BE(0), 0x33);
        session.write(Buffer.of(HELLO));
        session.checkpoint(state);
        return;
      }
      session.write(chunk);
      if (!helloSent && !session.replaying) sayHello();
    });
    session.on('end', () => session.end());
    session.on('error', () => {});
    session.once('resumed', () => answered.set(session.epoch, monoUs()));
    if (!helloSent && !session.replaying) sayHello();
  }

  const raw = net.createServer((socket) => {
    socket.setNoDelay(true);
    socket.on('data', (chunk: Buffer) => socket.write(chunk));
    socket.on('error', () => {});
  });
  raw.listen(0, '127.0.0.1');
  await once(raw, 'listening');
  await server.listen();
  serveCommands((command) => {
    if ((command as { op?: string }).op !== 'marks') throw new Error('unknown command');
    const arrivals = marks.arrivals.splice(0).map((a) => ({ ...a, answered: answered.get(a.epoch) }));
    answered.clear();
    const out: ServerMarks = { arrivals, surrenders: marks.surrenders.splice(0) };
    return out;
  });
  const ready: Ready = { rawPort: (raw.address() as net.AddressInfo).port };
  process.send?.(ready);
}

/** The server as the pool sees it, with surrender() timed. Methods are bound to the real server. */
function timedSurrender(server: SessionServer, into: SurrenderMarks[]): SessionServer {
  return new Proxy(server, {
    get(target, prop) {
      if (prop === 'surrender') {
        return (...args: Parameters<SessionServer['surrender']>) => {
          const epoch = (target.sessions.get(args[0].toString('hex'))?.epoch ?? -2) + 1;
          const start = monoUs();
          const result = target.surrender(...args);
          const record = (r: Awaited<typeof result>) => {
            const bytes = r.kind === 'continuation' ? r.parts.reduce((n, p) => n + p.length, 0) : 0;
            into.push({ epoch, start, end: monoUs(), bytes });
          };
          if (result instanceof Promise) result.then(record);
          else record(result);
          return result;
        };
      }
      const value: unknown = Reflect.get(target, prop, target);
      return typeof value === 'function' ? value.bind(target) : value;
    },
  });
}

// ---------------------------------------------------------------------------------------------
// Parent: the client.

/** Client-side marks of the socket the session dials next (published by net.connect). */
interface DialMarks {
  connected: number;
  /** The early RESUME was handed to the socket (it is written in a later 'connect' listener). */
  written: number;
}
let nextDial: DialMarks | undefined;
diagnostics_channel.subscribe('net.client.socket', (message) => {
  const marks = nextDial;
  if (!marks) return;
  nextDial = undefined;
  const socket = (message as { socket: net.Socket }).socket;
  socket.once('connect', () => {
    marks.connected = monoUs();
    // This listener was added before the session queued its RESUME: the tick after it is after the write.
    process.nextTick(() => {
      marks.written = monoUs();
    });
  });
});

/** Reads a session's stream as the cycle expects it: one hello byte, or the 64 B echo. */
class Reader {
  #want = 0;
  #got: Buffer[] = [];
  #have = 0;
  #done: ((data: Buffer) => void) | undefined;

  constructor(session: ClientSession) {
    session.on('data', (chunk: Buffer) => {
      this.#got.push(chunk);
      this.#have += chunk.length;
      if (this.#have > this.#want) throw new Error(`unexpected ${this.#have - this.#want} extra bytes`);
      if (this.#have === this.#want) {
        const data = Buffer.concat(this.#got);
        this.#got = [];
        this.#have = 0;
        this.#want = 0;
        this.#done?.(data);
      }
    });
  }

  expect(n: number): Promise<Buffer> {
    this.#want = n;
    return new Promise((resolve) => {
      this.#done = resolve;
    });
  }
}

interface Sample {
  readonly epoch: number;
  readonly total: number;
  readonly connect: number;
  readonly written: number;
  readonly t0: number;
  readonly t1: number;
}

/** One floor sample: fresh TCP connect plus one 1-byte round trip; microseconds. */
async function floorSample(port: number): Promise<number> {
  const t0 = monoUs();
  const socket = net.connect({ port, host: '127.0.0.1', noDelay: true });
  await once(socket, 'connect');
  const back = once(socket, 'data');
  socket.write(Buffer.of(1));
  await back;
  const us = monoUs() - t0;
  socket.destroy();
  return us;
}

/** A mark from a child: NaN went through IPC (JSON) as null. */
function markAt(value: number | null | undefined): number {
  return value ?? Number.NaN;
}

/** A phase no migration went through (e.g. no pull when every session was pushed) shows as null. */
function medianOrNone(values: readonly number[], digits: number): number | null {
  return values.length === 0 ? null : round(median(values), digits);
}

const PHASES = [
  'connect',
  'accept',
  'arrive',
  'auth',
  'pull',
  'surrender',
  'push',
  'restore',
  'replay',
  'deliver',
] as const;
type Phase = (typeof PHASES)[number];

const TIMELINE = [
  'handoff',
  'connected',
  'written',
  'accepted',
  'resumeRx',
  'adopted',
  'hello',
  'answered',
  'received',
] as const;
type Mark = (typeof TIMELINE)[number];

interface SizeResult {
  readonly totals: number[];
  readonly floors: number[];
  readonly phases: Record<Phase, number[]>;
  /** Per mark, its time after migrate() in each migration (µs). */
  readonly timeline: Record<Mark, number[]>;
  readonly continuationBytes: number[];
  /** Migrations whose session the origin pushed (no pull). */
  readonly pushed: number;
}

async function runSize(
  bytes: number,
  servers: readonly ChildProcess[],
  ports: readonly number[],
  rawPorts: readonly number[],
  n: number,
  record: boolean,
): Promise<SizeResult> {
  const session = connect({ port: ports[0]! });
  session.on('error', (err) => {
    throw err;
  });
  const reader = new Reader(session);
  await once(session, 'connect');
  const setup = Buffer.alloc(4);
  setup.writeUInt32BE(bytes, 0);
  const first = reader.expect(1);
  session.write(setup);
  await first;
  while (session.members.length < IDS.length) await once(session, 'pool');

  const echo = Buffer.alloc(ECHO_BYTES, 0x5a);
  const samples: Sample[] = [];
  const floors: number[] = [];
  let at = 0;
  for (let i = 0; i < n; i++) {
    const back = reader.expect(ECHO_BYTES);
    session.write(echo);
    if (!(await back).equals(echo)) throw new Error('echo corrupted');
    const next = (at + 1) % IDS.length;
    const floorFirst = i % 2 === 1;
    if (floorFirst) floors.push(await floorSample(rawPorts[next]!));
    const dial: DialMarks = { connected: Number.NaN, written: Number.NaN };
    nextDial = dial;
    const hello = reader.expect(1);
    const t0 = monoUs();
    const moved = session.migrate(IDS[next]);
    const data = await hello;
    const t1 = monoUs();
    await moved;
    if (data[0] !== HELLO || session.serverId !== IDS[next]) throw new Error('migration went wrong');
    if (!floorFirst) floors.push(await floorSample(rawPorts[next]!));
    samples.push({
      epoch: session.epoch,
      total: t1 - t0,
      connect: dial.connected - t0,
      written: dial.written - t0,
      t0,
      t1,
    });
    at = next;
  }
  const closed = once(session, 'close');
  session.end();
  await closed;

  const marks = await Promise.all(servers.map((s) => request<ServerMarks>(s, { op: 'marks' })));
  const phases = Object.fromEntries(PHASES.map((p) => [p, [] as number[]])) as Record<Phase, number[]>;
  const timeline = Object.fromEntries(TIMELINE.map((m) => [m, [] as number[]])) as Record<Mark, number[]>;
  const continuationBytes: number[] = [];
  let pushed = 0;
  if (record) {
    const arrivals = new Map(marks.flatMap((m) => m.arrivals).map((a) => [a.epoch, a]));
    // A pushed session may also see a pull (its client arrived first), answered with a redirect:
    // the push is what moved it.
    const surrenders = new Map<number, SurrenderMarks>();
    for (const sur of marks.flatMap((m) => m.surrenders)) {
      if (!surrenders.get(sur.epoch)?.pushed) surrenders.set(sur.epoch, sur);
    }
    for (const s of samples) {
      const a = arrivals.get(s.epoch);
      const sur = surrenders.get(s.epoch);
      if (!a || !sur) throw new Error(`no server marks for epoch ${s.epoch}`);
      if (sur.pushed) pushed++;
      const add = (p: Phase, v: number) => {
        if (Number.isFinite(v)) phases[p].push(v);
      };
      add('connect', s.connect);
      add('accept', markAt(a.accepted) - (s.t0 + s.connect));
      add('arrive', markAt(a.resumeRx) - markAt(a.accepted));
      add('auth', markAt(a.pullStart) - markAt(a.resumeRx));
      add('pull', markAt(a.pullEnd) - markAt(a.pullStart));
      add('surrender', sur.end - sur.start);
      add('push', sur.pushed ? markAt(a.adopted) - sur.start : Number.NaN);
      add('restore', markAt(a.handler) - (sur.pushed ? markAt(a.adopted) : markAt(a.pullEnd)));
      add('replay', markAt(a.helloWritten) - markAt(a.handler));
      // A pushed session may be ready before its client arrives: delivery starts when both are there.
      add('deliver', s.t1 - Math.max(markAt(a.helloWritten), markAt(a.resumeRx)));
      if (sur.bytes !== undefined) continuationBytes.push(sur.bytes);
      // Client marks are already relative to migrate(); server marks are on the same clock.
      const after: Record<Mark, number> = {
        handoff: sur.pushed ? sur.start - s.t0 : Number.NaN,
        connected: s.connect,
        written: s.written,
        accepted: markAt(a.accepted) - s.t0,
        resumeRx: markAt(a.resumeRx) - s.t0,
        adopted: markAt(a.adopted) - s.t0,
        hello: markAt(a.helloWritten) - s.t0,
        answered: markAt(a.answered) - s.t0,
        received: s.total,
      };
      for (const m of TIMELINE) if (Number.isFinite(after[m])) timeline[m].push(after[m]);
    }
  }
  return { totals: samples.map((s) => s.total), floors, phases, timeline, continuationBytes, pushed };
}

async function main(): Promise<void> {
  const loadAtStart = loadAverage()[0];
  const members = await loopbackMembers(IDS);
  const children = IDS.map((id) =>
    spawnTsx(import.meta.filename, ['--role', 'server', '--id', id, '--members', JSON.stringify(members)], {
      ipc: true,
      stdout: 'inherit',
    }),
  );
  try {
    const ready = await Promise.all(children.map((c) => nextMessage<Ready>(c)));
    const ports = members.map((m) => m.port);
    const rawPorts = ready.map((r) => r.rawPort);
    console.log(
      `migration: 3 servers (child processes), ${warmup} warm-up + ${count} migrations per snapshot size, ` +
        `${ECHO_BYTES} B replayed per migration`,
    );
    console.log(`machine: ${machineLine()}; ${loadLine()}`);

    await runSize(1024, children, ports, rawPorts, warmup * 2, false);

    const results = {} as Record<SizeLabel, SizeResult>;
    for (const size of SIZES) {
      await runSize(size.bytes, children, ports, rawPorts, warmup, false);
      results[size.label] = await runSize(size.bytes, children, ports, rawPorts, count, true);
      const r = results[size.label];
      console.log(
        `  snapshot ${size.label.padEnd(3)} p50 ${median(r.totals).toFixed(0)} µs, floor p50 ${median(r.floors).toFixed(0)} µs`,
      );
    }

    const allFloors = sorted(SIZES.flatMap((s) => results[s.label].floors));
    const floorP50 = percentile(allFloors, 50);
    const floorP99 = percentile(allFloors, 99);
    const p50: Record<string, number> = {};
    const p99: Record<string, number> = {};
    const ratios: Record<string, number> = {};
    const rows = SIZES.map((s) => {
      const r = results[s.label];
      const t = sorted(r.totals);
      const floor = median(r.floors);
      p50[s.label] = round(percentile(t, 50), 1);
      p99[s.label] = round(percentile(t, 99), 1);
      // Against the floor samples interleaved with this size's migrations, so drift cancels out.
      ratios[s.label] = round(percentile(t, 50) / floor);
      return [
        s.label,
        medianOrNone(r.continuationBytes, 0) ?? '-',
        round(percentile(t, 50), 0),
        round(percentile(t, 99), 0),
        round(floor, 0),
        ratios[s.label]!,
        `${r.pushed}/${t.length}`,
        ...PHASES.map((p) => medianOrNone(r.phases[p], 0) ?? '-'),
      ];
    });
    console.log();
    console.log(
      textTable(
        [
          'snapshot',
          'cont. B',
          'p50 µs',
          'p99 µs',
          'floor p50 µs',
          'p50/floor',
          'pushed',
          ...PHASES.map((p) => `${p} µs`),
        ],
        rows,
      ),
    );
    console.log(
      `\nfloor (fresh TCP connect + 1 B round trip, same server processes), all sizes: p50 ${floorP50.toFixed(0)} µs, ` +
        `p99 ${floorP99.toFixed(0)} µs, ${allFloors.length} samples; each size's ratio uses its own interleaved floor`,
    );
    console.log('phase columns are medians of each phase (surrender is inside pull, on the origin)');
    console.log();
    console.log(
      textTable(
        ['timeline: µs after migrate()', ...TIMELINE],
        SIZES.map((s) => [
          s.label,
          ...TIMELINE.map((m) => medianOrNone(results[s.label].timeline[m], 0) ?? '-'),
        ]),
      ),
    );
    const worst = Math.max(ratios['0']!, ratios['1k']!, ratios['64k']!);
    console.log(`p50 / floor: 64 KiB ${ratios['64k']}, worst up to 64 KiB ${worst} (target <= 3)`);
    const phaseP50 = Object.fromEntries(
      PHASES.map((p) => [p, medianOrNone(results['64k'].phases[p], 1)]),
    ) as Record<Phase, number>;
    emitResult({
      bench: 'migration',
      load_1m: [loadAtStart, loadAverage()[0]],
      p50_ratio_64k: ratios['64k'],
      p50_ratio_max_upto_64k: worst,
      p50_us: p50,
      p99_us: p99,
      floor_p50_us: round(floorP50, 1),
      floor_p99_us: round(floorP99, 1),
      floor_p50_us_by_size: Object.fromEntries(
        SIZES.map((s) => [s.label, round(median(results[s.label].floors), 1)]),
      ),
      phases_p50_us_64k: phaseP50,
      timeline_p50_us_64k: Object.fromEntries(
        TIMELINE.map((m) => [m, medianOrNone(results['64k'].timeline[m], 1)]),
      ),
      migrations_per_size: count,
    });
  } finally {
    await Promise.all(children.map((c) => stopChild(c)));
  }
}

if (flags.role === 'server') await serve(flags.id ?? '', JSON.parse(flags.members ?? '[]') as Member[]);
else await main();
