/**
 * Drain rate: sessions per second moved off one server to two others by server.drain(), with
 * 10,000 sessions, and a check that none is lost.
 *
 * Three pool members (a, b, c) run in three child processes; the clients run in two more child
 * processes (5,000 sessions each, with the serverAdvice() policy), so no process needs more than
 * ~10,000 file descriptors (the hard limit here is 20,000). Every session first exchanges a known
 * message with server a ("hello <n>", echoed; the handler checkpoints a small state per message).
 * Then a drains: it hands every session to b or c in turn and tells its client where (a pushed
 * advice), each client's policy migrates it there, and once a session has resumed there it sends
 * "after <n>" and checks the echo. A session is lost unless its whole received stream is exactly
 * the two echoes.
 *
 * The rate is sessions / (last session resumed on its new server - drain() called), both on the
 * system-wide monotonic clock. The drain report's own figure (which polls every 20 ms) is shown too.
 *
 * Baseline in the same run: the same 10,000 clients on raw TCP. Server a writes one "move" byte to
 * every socket (as drain writes one ADVICE frame); each client closes, connects to b or c, and
 * exchanges its message. Rate = sockets / (last exchange done - move sent).
 *
 * Warm-up: both runs are first done once with --warmup sessions (as many as measured by default; 0: none),
 * in the same processes, and reported apart as the cold figures. Without it, the measured run is the
 * first time these processes take the resume and adoption paths: a profile (perf record -a with
 * NODE_OPTIONS=--perf-basic-prof) showed V8's optimizing compiler on 18% of all CPU samples during
 * the drain (16% in the raw run), and after a warm-up of 2,000 still 11% (455 functions optimized
 * during the measured drain, under --trace-opt). That is start-up cost, not what a drain costs a
 * pool that has been serving for a while.
 *
 *   npx tsx bench/drain.ts [--count 10000] [--warmup 10000] [--quick]
 */
import type { ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import net from 'node:net';
import { monitorEventLoopDelay } from 'node:perf_hooks';
import { setTimeout as sleep } from 'node:timers/promises';
import { parseArgs } from 'node:util';
import { createPool, type Member, serverAdvice } from '../src/pool/index.ts';
import {
  AdviceKind,
  type ClientSession,
  connect,
  createServer,
  type DrainReport,
} from '../src/session/index.ts';
import { fdLimits, nextMessage, request, serveCommands, spawnTsx, stopChild } from './lib/child.ts';
import { loadAverage, loadLine, machineLine } from './lib/machine.ts';
import { BENCH_POOL_SECRET, listenOverflows, loopbackMembers, monoUs } from './lib/pool.ts';
import { emitResult, textTable } from './lib/report.ts';
import { percentile, round, sorted } from './lib/stats.ts';

const { values: flags } = parseArgs({
  options: {
    count: { type: 'string' },
    warmup: { type: 'string' },
    quick: { type: 'boolean', default: false },
    role: { type: 'string' },
    id: { type: 'string' },
    members: { type: 'string' },
    first: { type: 'string' },
    runs: { type: 'string' },
    ports: { type: 'string' },
    window: { type: 'string' },
  },
});
const count = Number(flags.count ?? (flags.quick ? 2000 : 10_000));
const CLIENT_PROCESSES = 2;
const warmupFlag = Math.min(count, Number(flags.warmup ?? count));
/** Every client process takes part in every run (one with no share would report out of turn). */
const warmup = warmupFlag > 0 ? Math.max(CLIENT_PROCESSES, warmupFlag) : 0;
if (!(count >= CLIENT_PROCESSES)) throw new Error(`--count must be at least ${CLIENT_PROCESSES}`);
/** Sessions opened at once: enough to be quick, few enough not to overflow the listen backlog. */
const BATCH = 200;
/** How long after drain() a session may take to move and exchange its message before it counts as lost. */
const DEADLINE_MS = 30_000;
const MOVE = 0x4d;
/**
 * --window N: instead of server.drain(), advise at most N sessions at a time (the next one as each
 * leaves), from the bench side through ServerSession.advise(). An experiment, not the headline: it
 * shows what pacing the advice would give. Default: off (server.drain() as shipped).
 */
const windowSize = flags.window === undefined ? 0 : Number(flags.window);

interface RawPorts {
  readonly raw: number;
}

/** A server's CPU time so far and its worst event-loop delay since the last reading. */
interface ServerStats {
  readonly cpuUs: number;
  readonly loopDelayMaxMs: number;
}

/** Server a's view of a drain, on the monotonic clock. */
interface DrainResult {
  readonly start: number;
  readonly lastSurrender: number;
  readonly report: DrainReport;
}

/** A client process's view of a move. */
interface MoveResult {
  opened: number;
  moved: number;
  verified: number;
  errors: number;
  firstError: string;
  /** Latest 'migrated' (session) or connect (raw) on the monotonic clock. */
  lastMoved: number;
  /** Latest verified message exchange after the move. */
  lastVerified: number;
  /** When each client moved, on the monotonic clock. */
  moveTimes: number[];
  /** CPU time (user + system, µs) this client process spent from ready to report. */
  cpuUs: number;
}

/** A client moved (raw: reconnected; session: 'migrated'). */
function recordMove(result: MoveResult): void {
  const now = monoUs();
  result.moved++;
  result.lastMoved = Math.max(result.lastMoved, now);
  result.moveTimes.push(now);
}

/** A client's message after the move came back intact. */
function recordVerified(result: MoveResult): void {
  result.verified++;
  result.lastVerified = Math.max(result.lastVerified, monoUs());
}

// ---------------------------------------------------------------------------------------------
// Child: one pool member; the session handler echoes and checkpoints; a raw listener for the baseline.

async function serve(id: string, members: readonly Member[]): Promise<void> {
  // How long the event loop was held up at worst: a blocked loop accepts nothing and answers no peer.
  const loopDelay = monitorEventLoopDelay({ resolution: 10 });
  loopDelay.enable();
  const pool = createPool({ self: id, members, secret: BENCH_POOL_SECRET });
  const server = createServer({ pool }, (session) => {
    let state = (session.restoredState as { messages: number } | undefined) ?? { messages: 0 };
    session.on('data', (chunk: Buffer) => {
      session.write(chunk);
      state = { messages: state.messages + 1 };
      session.checkpoint(state);
    });
    session.on('end', () => session.end());
    session.on('error', () => {});
  });
  server.on('sessionError', () => {});
  let lastSurrender = 0;
  server.on('migrated', () => {
    lastSurrender = monoUs();
  });

  const rawSockets = new Set<net.Socket>();
  const raw = net.createServer((socket) => {
    socket.setNoDelay(true);
    rawSockets.add(socket);
    socket.on('data', (chunk: Buffer) => socket.write(chunk));
    socket.on('error', () => {});
    socket.on('close', () => rawSockets.delete(socket));
  });
  raw.listen(0, '127.0.0.1');
  await once(raw, 'listening');
  await server.listen();
  serveCommands(async (command) => {
    const op = (command as { op: string }).op;
    if (op === 'counts') return { sessions: server.sessions.size, raw: rawSockets.size };
    if (op === 'cpu') {
      const used = process.cpuUsage();
      const stats: ServerStats = { cpuUs: used.user + used.system, loopDelayMaxMs: loopDelay.max / 1e6 };
      loopDelay.reset();
      return stats;
    }
    if (op === 'rawMove') {
      const start = monoUs();
      for (const socket of rawSockets) socket.write(Buffer.of(MOVE));
      return { start };
    }
    if (op === 'drain') {
      const start = monoUs();
      const report = windowSize > 0 ? await pacedDrain(windowSize) : await server.drain(DEADLINE_MS);
      server.undrain();
      const result: DrainResult = { start, lastSurrender, report };
      return result;
    }
    throw new Error(`unknown command ${op}`);
  });
  const ready: RawPorts = { raw: (raw.address() as net.AddressInfo).port };
  process.send?.(ready);

  /** Advises `window` sessions at a time, to the other members in turn; the next as each one leaves. */
  async function pacedDrain(window: number): Promise<DrainReport> {
    const started = Date.now();
    const targets = members.filter((m) => m.id !== id).map((m) => m.id);
    const queue = [...server.sessions.values()];
    let next = 0;
    let moved = 0;
    const adviseNext = () => {
      const session = queue[next];
      if (!session) return;
      session.advise(AdviceKind.DRAIN, targets[next % targets.length]!);
      next++;
    };
    const onMigrated = () => {
      moved++;
      adviseNext();
    };
    server.on('migrated', onMigrated);
    for (let i = 0; i < window; i++) adviseNext();
    while (server.sessions.size > 0 && Date.now() - started < DEADLINE_MS) await sleep(5);
    server.off('migrated', onMigrated);
    return { moved, remaining: server.sessions.size, ms: Date.now() - started };
  }
}

// ---------------------------------------------------------------------------------------------
// Child: a share of the clients.

/** Reads a stream until it holds `expected` bytes exactly; rejects on more or on a mismatch. */
class Expect {
  #got = '';
  #want = '';
  #resolve: (() => void) | undefined;
  #reject: ((err: Error) => void) | undefined;

  feed(chunk: Buffer): void {
    this.#got += chunk.toString('latin1');
    if (this.#got.length < this.#want.length) return;
    if (this.#got === this.#want) this.#resolve?.();
    else
      this.#reject?.(
        new Error(`stream holds ${JSON.stringify(this.#got)}, expected ${JSON.stringify(this.#want)}`),
      );
  }

  /** Waits until the whole stream so far equals `want`. */
  until(want: string): Promise<void> {
    this.#want = want;
    return new Promise((resolve, reject) => {
      this.#resolve = resolve;
      this.#reject = reject;
      this.feed(Buffer.alloc(0));
    });
  }
}

async function clients(
  first: number,
  runs: readonly number[],
  ports: { session: number; raw: readonly number[] },
): Promise<void> {
  const empty = (): MoveResult => ({
    opened: 0,
    moved: 0,
    verified: 0,
    errors: 0,
    firstError: '',
    lastMoved: 0,
    lastVerified: 0,
    moveTimes: [],
    cpuUs: 0,
  });

  /** A run's result, and a promise settled once each of the n has been verified or has failed. */
  const tracked = (n: number) => {
    const result = empty();
    let finish: () => void = () => {};
    const finished = new Promise<void>((resolve) => {
      finish = resolve;
    });
    const done = () => {
      if (result.verified + result.errors === n) finish();
    };
    return { result, finished, done };
  };

  /** Opens the n clients `open(index)` BATCH at a time, then tells the parent they are ready. */
  const inBatches = async (n: number, open: (index: number) => Promise<void>): Promise<void> => {
    for (let i = 0; i < n; i += BATCH) {
      await Promise.all(Array.from({ length: Math.min(BATCH, n - i) }, (_, j) => open(first + i + j)));
    }
    process.send?.({ ready: n });
  };

  /** Raw baseline: n sockets to a; on MOVE each reconnects to b or c and exchanges its message. */
  async function rawRun(n: number): Promise<void> {
    const { result, finished, done } = tracked(n);
    const fail = (err: Error) => {
      result.errors++;
      result.firstError ||= err.message;
      done();
    };
    const sockets: net.Socket[] = [];
    await inBatches(n, async (index) => {
      const socket = net.connect({ port: ports.raw[0]!, host: '127.0.0.1', noDelay: true });
      await once(socket, 'connect');
      result.opened++;
      socket.once('data', () => {
        socket.destroy();
        const next = net.connect({ port: ports.raw[1 + (index % 2)]!, host: '127.0.0.1', noDelay: true });
        next.on('error', fail);
        next.once('connect', () => {
          recordMove(result);
          const message = `after ${index}\n`;
          const expect = new Expect();
          next.on('data', (chunk: Buffer) => expect.feed(chunk));
          expect.until(message).then(() => {
            recordVerified(result);
            sockets.push(next);
            done();
          }, fail);
          next.write(message);
        });
      });
      sockets.push(socket);
    });
    await reportThenClose(finished, result, sockets);
  }

  /** Sessions: n sessions to a with the serverAdvice() policy; after the move each sends its message. */
  async function sessionRun(n: number): Promise<void> {
    const { result, finished, done } = tracked(n);
    const held: ClientSession[] = [];
    await inBatches(n, async (index) => {
      const session = connect({ port: ports.session, policies: [serverAdvice()] });
      const expect = new Expect();
      let failed = false;
      const fail = (err: Error) => {
        if (failed) return;
        failed = true;
        result.errors++;
        result.firstError ||= err.message;
        done();
      };
      session.on('error', fail);
      session.on('data', (chunk: Buffer) => expect.feed(chunk));
      await once(session, 'connect');
      const hello = `hello ${index}\n`;
      const greeted = expect.until(hello);
      session.write(hello);
      await greeted;
      result.opened++;
      session.once('migrated', () => {
        recordMove(result);
        const after = `after ${index}\n`;
        expect.until(hello + after).then(() => {
          recordVerified(result);
          done();
        }, fail);
        session.write(after);
      });
      held.push(session);
    });
    await reportThenClose(finished, result, held);
  }

  for (const n of runs) {
    await rawRun(n);
    await sessionRun(n);
  }
}

/** In a client child: the parent's commands, in order; nextCommand() resolves with the next one. */
const inbox: unknown[] = [];
const waiting: ((command: unknown) => void)[] = [];
if (flags.role === 'clients') {
  process.on('message', (command) => {
    const waiter = waiting.shift();
    if (waiter) waiter(command);
    else inbox.push(command);
  });
  process.on('disconnect', () => process.exit(0));
}
function nextCommand(): Promise<unknown> {
  if (inbox.length > 0) return Promise.resolve(inbox.shift());
  return new Promise((resolve) => waiting.push(resolve));
}

/**
 * Sends `result` once every client is done, or earlier if the parent asks (its deadline passed);
 * then waits for the parent's word, closes what the run holds and says so.
 */
async function reportThenClose(
  finished: Promise<void>,
  result: MoveResult,
  held: readonly { destroy(): void }[],
): Promise<void> {
  const cpu = process.cpuUsage();
  const command = nextCommand();
  const why = await Promise.race([
    finished.then(() => 'done' as const),
    command.then(() => 'asked' as const),
  ]);
  const used = process.cpuUsage(cpu);
  result.cpuUs = used.user + used.system;
  process.send?.(result);
  await (why === 'done' ? command : nextCommand());
  for (const h of held) h.destroy();
  process.send?.({ closed: true });
}

// ---------------------------------------------------------------------------------------------
// Parent.

interface Phase {
  readonly label: string;
  readonly rate: number;
  readonly moveMs: number;
  readonly verifyMs: number;
  readonly verified: number;
  readonly errors: number;
  readonly firstError: string;
  /** Per-client move completion after the trigger (ms): p50, p90, p99. */
  readonly moveP50: number;
  readonly moveP90: number;
  readonly moveP99: number;
  /** Connections the kernel dropped because an accept queue was full, during the move. */
  readonly overflows: number | undefined;
  /** CPU time per moved client (µs): origin server, the two target servers together, client processes. */
  readonly cpuOrigin: number;
  readonly cpuTargets: number;
  readonly cpuClients: number;
  /** Worst event-loop delay during the move (ms): origin, and the worse of the two targets. */
  readonly loopDelayOrigin: number;
  readonly loopDelayTargets: number;
}

async function runPhase(
  label: string,
  count: number,
  servers: readonly ChildProcess[],
  clientProcs: readonly ChildProcess[],
  trigger: () => Promise<number>,
  beforeClose: () => Promise<void> = async () => {},
): Promise<Phase> {
  const ready = await Promise.all(clientProcs.map((c) => nextMessage<{ ready: number }>(c)));
  const opened = ready.reduce((s, r) => s + r.ready, 0);
  if (opened !== count) throw new Error(`${label}: only ${opened} of ${count} clients opened`);
  // Let the opening's acks and timers settle so the move starts from a quiet machine.
  await sleep(500);
  const results = clientProcs.map((c) => nextMessage<MoveResult>(c));
  const cpu = () => Promise.all(servers.map((s) => request<ServerStats>(s, { op: 'cpu' })));
  const cpuBefore = await cpu();
  const overflowsBefore = listenOverflows();
  const start = await trigger();
  // Each client process reports when all its clients are verified or failed; give up at the deadline.
  const timeout = sleep(DEADLINE_MS).then(() => 'timeout' as const);
  const raced = await Promise.race([Promise.all(results), timeout]);
  if (raced === 'timeout') for (const c of clientProcs) c.send({ op: 'report' });
  const reports = await Promise.all(results);
  const overflowsAfter = listenOverflows();
  const cpuAfter = await cpu();
  await beforeClose();
  for (const c of clientProcs) c.send({ op: 'close' });
  await Promise.all(clientProcs.map((c) => nextMessage(c)));
  const verified = reports.reduce((s, r) => s + r.verified, 0);
  const lastMoved = Math.max(...reports.map((r) => r.lastMoved));
  const lastVerified = Math.max(...reports.map((r) => r.lastVerified));
  const moves = sorted(reports.flatMap((r) => r.moveTimes).map((t) => (t - start) / 1000));
  const at = (p: number) => (moves.length > 0 ? percentile(moves, p) : Number.NaN);
  const moveMs = (lastMoved - start) / 1000;
  const used = cpuAfter.map((after, i) => after.cpuUs - cpuBefore[i]!.cpuUs);
  const per = (us: number) => us / Math.max(1, verified);
  return {
    cpuOrigin: per(used[0]!),
    cpuTargets: per(used.slice(1).reduce((x, y) => x + y, 0)),
    cpuClients: per(reports.reduce((x, r) => x + r.cpuUs, 0)),
    loopDelayOrigin: cpuAfter[0]!.loopDelayMaxMs,
    loopDelayTargets: Math.max(...cpuAfter.slice(1).map((x) => x.loopDelayMaxMs)),
    label,
    rate: verified / (moveMs / 1000),
    moveMs,
    verifyMs: (lastVerified - start) / 1000,
    verified,
    errors: reports.reduce((s, r) => s + r.errors, 0),
    firstError: reports.find((r) => r.firstError)?.firstError ?? '',
    moveP50: at(50),
    moveP90: at(90),
    moveP99: at(99),
    overflows:
      overflowsBefore === undefined || overflowsAfter === undefined
        ? undefined
        : overflowsAfter - overflowsBefore,
  };
}

async function main(): Promise<void> {
  const loadAtStart = loadAverage()[0];
  const members = await loopbackMembers(['a', 'b', 'c']);
  const limits = fdLimits();
  const perClient = Math.ceil(count / CLIENT_PROCESSES);
  /** Client process i's part of `total`. */
  const share = (total: number, i: number) => {
    const per = Math.ceil(total / CLIENT_PROCESSES);
    return Math.max(0, Math.min(per, total - i * per));
  };
  console.log(
    `drain: ${count} sessions on server a, drained to b and c; clients in ${CLIENT_PROCESSES} processes ` +
      `of ${perClient}; open files soft ${limits.soft}, hard ${limits.hard}`,
  );
  console.log(`machine: ${machineLine()}; ${loadLine()}`);
  if (windowSize > 0)
    console.log(`EXPERIMENT: paced advice, ${windowSize} sessions at a time, not server.drain()`);
  const fdLimit = count + 512;
  const servers = members.map((m) =>
    spawnTsx(
      import.meta.filename,
      [
        '--role',
        'server',
        '--id',
        m.id,
        '--members',
        JSON.stringify(members),
        ...(windowSize > 0 ? ['--window', String(windowSize)] : []),
      ],
      {
        ipc: true,
        stdout: 'inherit',
        fdLimit,
      },
    ),
  );
  const clientProcs: ChildProcess[] = [];
  try {
    const rawPorts = (await Promise.all(servers.map((s) => nextMessage<RawPorts>(s)))).map((r) => r.raw);
    const portsArg = JSON.stringify({ session: members[0]!.port, raw: rawPorts });
    for (let i = 0; i < CLIENT_PROCESSES; i++) {
      const n = share(count, i);
      clientProcs.push(
        spawnTsx(
          import.meta.filename,
          [
            ...['--role', 'clients', '--first', String(i * perClient), '--ports', portsArg],
            ...['--runs', JSON.stringify(warmup > 0 ? [share(warmup, i), n] : [n])],
          ],
          { ipc: true, stdout: 'inherit', fdLimit: n + 512 },
        ),
      );
    }
    const [a, b, c] = servers as [ChildProcess, ChildProcess, ChildProcess];

    const rawPhase = (label: string, n: number) =>
      runPhase(label, n, servers, clientProcs, async () => {
        const { start } = await request<{ start: number }>(a, { op: 'rawMove' });
        return start;
      });
    let drained: DrainResult | undefined;
    let counts: { sessions: number }[] = [];
    const drainPhase = (label: string, n: number) =>
      runPhase(
        label,
        n,
        servers,
        clientProcs,
        async () => {
          drained = await request<DrainResult>(a, { op: 'drain' });
          return drained.start;
        },
        async () => {
          counts = await Promise.all(
            [a, b, c].map((s) => request<{ sessions: number }>(s, { op: 'counts' })),
          );
        },
      );

    const coldRaw = warmup > 0 ? await rawPhase('raw TCP, cold', warmup) : undefined;
    const cold = warmup > 0 ? await drainPhase('lazarus drain, cold', warmup) : undefined;
    if (coldRaw && cold)
      console.log(
        `  warm-up (${warmup}, fresh processes): raw ${Math.round(coldRaw.rate)}/s, drain ${Math.round(cold.rate)}/s, ` +
          `lost ${warmup - cold.verified}`,
      );
    const raw = await rawPhase('raw TCP', count);
    console.log(`  raw: ${raw.verified} moved in ${raw.moveMs.toFixed(0)} ms`);
    const session = await drainPhase('lazarus drain', count);
    const report = drained!.report;
    console.log(`  drain report: moved ${report.moved}, remaining ${report.remaining}, ${report.ms} ms`);
    console.log(
      `  sessions after the drain: a ${counts[0]!.sessions}, b ${counts[1]!.sessions}, c ${counts[2]!.sessions}`,
    );
    const lastSurrenderMs = (drained!.lastSurrender - drained!.start) / 1000;
    const rows = [raw, session].map((p) => [
      p.label,
      p.verified,
      p.errors,
      round(p.moveP50, 0),
      round(p.moveP90, 0),
      round(p.moveP99, 0),
      round(p.moveMs, 0),
      round(p.verifyMs, 0),
      Math.round(p.rate),
      p.overflows ?? 'n/a',
      Math.round(p.cpuOrigin),
      Math.round(p.cpuTargets),
      Math.round(p.cpuClients),
      Math.round(p.loopDelayOrigin),
      Math.round(p.loopDelayTargets),
    ]);
    console.log();
    console.log(
      textTable(
        [
          'transport',
          'moved+verified',
          'errors',
          'moved p50 ms',
          'p90 ms',
          'p99 ms',
          'last moved ms',
          'last verified ms',
          'per s',
          'listen overflows',
          'cpu µs/session: origin',
          'targets',
          'clients',
          'loop delay max ms: origin',
          'targets',
        ],
        rows,
      ),
    );
    if (session.firstError) console.log(`first session error: ${session.firstError}`);
    if (raw.firstError) console.log(`first raw error: ${raw.firstError}`);
    const lost = count - session.verified + (cold ? warmup - cold.verified : 0);
    console.log(
      `\nlazarus drain: ${Math.round(session.rate)} sessions/s (target >= 5000), lost ${lost}; ` +
        `raw reconnect baseline ${Math.round(raw.rate)}/s; last surrender on a after ${lastSurrenderMs.toFixed(0)} ms`,
    );
    emitResult({
      bench: 'drain',
      load_1m: [loadAtStart, loadAverage()[0]],
      mode: windowSize > 0 ? `paced advice, window ${windowSize} (experiment)` : 'server.drain()',
      sessions_per_s: Math.round(session.rate),
      sessions: count,
      lost,
      drain_ms: round(session.moveMs, 1),
      verified_ms: round(session.verifyMs, 1),
      last_surrender_ms: round(lastSurrenderMs, 1),
      drain_report_ms: report.ms,
      moved_p50_ms: round(session.moveP50, 1),
      moved_p99_ms: round(session.moveP99, 1),
      listen_overflows: session.overflows ?? null,
      cpu_us_per_session: {
        origin: Math.round(session.cpuOrigin),
        targets: Math.round(session.cpuTargets),
        clients: Math.round(session.cpuClients),
      },
      loop_delay_max_ms: {
        origin: Math.round(session.loopDelayOrigin),
        targets: Math.round(session.loopDelayTargets),
      },
      raw_cpu_us_per_socket: {
        origin: Math.round(raw.cpuOrigin),
        targets: Math.round(raw.cpuTargets),
        clients: Math.round(raw.cpuClients),
      },
      raw_reconnects_per_s: Math.round(raw.rate),
      raw_listen_overflows: raw.overflows ?? null,
      ratio_to_raw: round(session.rate / raw.rate),
      warmup,
      cold_sessions_per_s: cold ? Math.round(cold.rate) : null,
      cold_raw_reconnects_per_s: coldRaw ? Math.round(coldRaw.rate) : null,
    });
  } finally {
    await Promise.all([...clientProcs, ...servers].map((p) => stopChild(p)));
  }
}

if (flags.role === 'server') await serve(flags.id ?? '', JSON.parse(flags.members ?? '[]') as Member[]);
else if (flags.role === 'clients')
  await clients(
    Number(flags.first),
    JSON.parse(flags.runs ?? '[]') as number[],
    JSON.parse(flags.ports ?? '{}') as { session: number; raw: number[] },
  );
else await main();
