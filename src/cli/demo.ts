import type { ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { DemoCluster, MEMBER_IDS } from './demo/cluster.ts';
import { formatBytes, formatSeconds, table } from './demo/format.ts';
import type { ClientDone, ClientStatus, FleetConfig, FleetMessage, StopMessage } from './demo/messages.ts';
import { category, type EventOutcome, type Migration, Scenario } from './demo/scenario.ts';
import { spawnWorker } from './demo/spawn-worker.ts';
import { StatusBoard } from './demo/status-line.ts';

export interface DemoOptions {
  readonly clients: number;
  /** How long the clients stream, at least until the scripted events are done; null with `forever`. */
  readonly durationMs: number | null;
  /** Bytes per second each client sends. */
  readonly rate: number;
  readonly seed: number;
  /** Flip a byte on the servers, so verification must fail (tests the verdict). */
  readonly corrupt: boolean;
}

/** After streaming stops, how long the sessions get to finish and close before the demo gives up. */
const FINISH_GRACE_MS = 20_000;
/** Time the scripted events themselves take, roughly (drain, restart, overload, degraded path). */
const SCRIPT_MS = 12_000;
/** How long the clients get to open their sessions before the clock starts anyway. */
const OPEN_TIMEOUT_MS = 20_000;
/** Above the duration, the most a timed run may take before everything is killed. */
const OVERRUN_MS = 60_000;

/**
 * `lazarus demo`: a pool of three servers (child processes) and a dozen clients (one child process)
 * streaming both ways through a fault proxy per server. A script overloads one server, drains and
 * restarts one as in a deploy, and degrades the path to one; the clients' policies move their
 * sessions. At the end both directions of every session are checked by sha-256, and every scripted
 * event must have had its effect. Resolves to the process exit code.
 */
export async function runDemo(options: DemoOptions): Promise<number> {
  const out = process.stdout;
  const board = new StatusBoard(out);
  const serverErrors: string[] = [];
  let cluster: DemoCluster | undefined;
  let fleet: ChildProcess | undefined;
  const killAll = () => {
    cluster?.kill();
    if (fleet?.exitCode === null) fleet.kill('SIGKILL');
  };
  process.on('exit', killAll);

  out.write(
    `lazarus demo: ${options.clients} sessions streaming ${formatBytes(options.rate)}/s each way to a pool ` +
      `of ${MEMBER_IDS.length} servers, each behind a fault proxy that breaks a connection now and then; ` +
      `${options.durationMs === null ? 'until Ctrl-C' : formatSeconds(options.durationMs)}, seed ${options.seed}\n\n`,
  );
  board.log(`starting servers ${MEMBER_IDS.join(', ')} (one process each) and their fault proxies`);
  cluster = await DemoCluster.start({
    seed: options.seed,
    corrupt: options.corrupt,
    onServerError: (member, sessionId, message) => {
      const line = `server ${member}: ${sessionId ? `session ${sessionId.slice(0, 12)}: ` : ''}${message}`;
      serverErrors.push(line);
      board.log(line);
    },
  });
  const pool = cluster;

  const statuses: (ClientStatus | undefined)[] = Array.from({ length: options.clients }, () => undefined);
  const done = new Map<number, ClientDone>();
  const migrations: Migration[] = [];
  const config: FleetConfig = {
    clients: options.clients,
    ports: pool.members.map((m) => m.port),
    seed: options.seed,
    rate: options.rate,
  };
  board.log(`servers up; starting ${options.clients} clients (one process)`);
  const clients = spawnWorker('worker-clients', config);
  fleet = clients;
  let allOpen: () => void = () => {};
  const opened = new Promise<void>((resolve) => {
    allOpen = resolve;
  });
  clients.on('message', (m: FleetMessage) => {
    if (m.kind === 'status') {
      for (const s of m.sessions) if (!done.has(s.index)) statuses[s.index] = s;
      if (statuses.every((s) => s?.sessionId !== undefined)) allOpen();
    } else if (m.kind === 'migration') {
      migrations.push({ ...m, at: Date.now(), category: category(m.reason) });
      board.log(`  #${m.index + 1} ${m.from ?? '?'} → ${m.to} in ${m.ms} ms (${m.reason})`);
    } else {
      statuses[m.index] = m;
      done.set(m.index, m);
    }
  });

  // Sleeps end early once the demo is stopping, so the script winds down at once.
  let stopping = false;
  const wakers = new Set<() => void>();
  const sleep = (ms: number) =>
    new Promise<void>((resolve) => {
      if (stopping) return resolve();
      const wake = () => {
        clearTimeout(timer);
        wakers.delete(wake);
        resolve();
      };
      const timer = setTimeout(wake, ms);
      wakers.add(wake);
    });
  const stop = () => {
    stopping = true;
    for (const wake of [...wakers]) wake();
  };
  const fleetExited = once(clients, 'exit');
  // Clients that are all gone (failed sessions, a crash) leave nothing to script.
  void fleetExited.then(stop);

  const load = (member: string) =>
    statuses.filter((s) => s && s.state !== 'closed' && s.serverId === member).length;
  const scenario = new Scenario({
    members: MEMBER_IDS,
    load,
    migrations,
    drain: (m, deadline) => pool.drain(m, deadline),
    restart: (m) => pool.restart(m),
    overload: (m, keep, target) => pool.overload(m, keep, target),
    degrade: (m, latency) => pool.degrade(m, latency),
    log: (line) => board.log(line),
    sleep,
    get stopping() {
      return stopping;
    },
  });
  const view = () => liveView(statuses, migrations, scenario.notes, load, pool, board.elapsed);
  const redraw = setInterval(() => board.draw(view()), board.interval);

  let timedOut = false;
  let watchdog: NodeJS.Timeout | undefined;
  const armWatchdog = (ms: number) => {
    clearTimeout(watchdog);
    watchdog = setTimeout(() => {
      timedOut = true;
      killAll();
    }, ms);
  };
  // --forever has no watchdog until Ctrl-C arms one.
  if (options.durationMs !== null) armWatchdog(options.durationMs + OVERRUN_MS);
  // First Ctrl-C: stop the script and the streams, then verify; second: give up at once.
  const onSigint = () => {
    if (stopping) {
      killAll();
      process.exit(130);
    }
    board.log('stopping: finishing every stream and verifying (Ctrl-C again to abort)');
    stop();
  };
  process.on('SIGINT', onSigint);

  // The clock starts once every session is open: on a busy machine process start-up takes a while.
  await Promise.race([opened, fleetExited, sleep(OPEN_TIMEOUT_MS)]);
  board.log(`${statuses.filter((s) => s?.sessionId !== undefined).length} sessions open, streaming`);
  // The events are spread over the duration; a short run still gets them all, a little later.
  const gapMs = options.durationMs === null ? 5000 : Math.max(1500, (options.durationMs - SCRIPT_MS) / 4);
  const script = scenario.run(gapMs, options.durationMs === null);
  await Promise.all([script, options.durationMs === null ? script : sleep(options.durationMs)]);
  if (!timedOut) {
    board.log('streams end: every client finishes and checks what came back');
    if (clients.connected) clients.send({ kind: 'stop' } satisfies StopMessage);
    armWatchdog(FINISH_GRACE_MS);
  }
  stop();
  await fleetExited;
  clearTimeout(watchdog);
  clearInterval(redraw);
  board.draw(view(), true);
  await pool.close();
  process.off('SIGINT', onSigint);
  process.off('exit', killAll);

  const ok = printVerdict(out, options.clients, done, migrations, scenario.outcomes(), pool, timedOut);
  return ok ? 0 : 1;
}

function liveView(
  statuses: readonly (ClientStatus | undefined)[],
  migrations: readonly Migration[],
  notes: ReadonlyMap<string, string>,
  load: (member: string) => number,
  pool: DemoCluster,
  elapsed: string,
): string[] {
  const rows = statuses.map((s, i) => {
    if (!s) return [`#${i + 1}`, '', '', 'starting'];
    return [
      `#${i + 1}`,
      s.sessionId?.slice(0, 12) ?? '',
      `on ${s.serverId ?? '-'}`,
      s.state,
      `sent ${formatBytes(s.sent)}`,
      `recv ${formatBytes(s.received)}`,
      `moves ${s.migrations}`,
      `resumes ${s.reconnects}`,
    ];
  });
  const servers = MEMBER_IDS.map((m) => {
    const note = notes.get(m);
    return `${m}: ${load(m)} sessions${note ? ` (${note})` : ''}`;
  });
  const b = pool.breaks;
  return [
    '',
    ...table(rows).map((l) => `  ${l}`),
    `  servers     ${servers.join('   ')}`,
    `  migrations  ${migrations.length}${byCategory(migrations)}`,
    `  ${elapsed}  proxies: ${pool.connections} connections, ${b.reset + b.close + b.stall} breaks ` +
      `(reset ${b.reset}, close ${b.close}, stall ${b.stall})`,
  ];
}

function byCategory(migrations: readonly Migration[]): string {
  const counts = new Map<string, number>();
  for (const m of migrations) counts.set(m.category, (counts.get(m.category) ?? 0) + 1);
  if (counts.size === 0) return '';
  return ` (${[...counts].map(([c, n]) => `${c} ${n}`).join(', ')})`;
}

function printVerdict(
  out: NodeJS.WriteStream,
  clients: number,
  done: ReadonlyMap<number, ClientDone>,
  migrations: readonly Migration[],
  outcomes: readonly EventOutcome[],
  pool: DemoCluster,
  timedOut: boolean,
): boolean {
  const rows: string[][] = [
    ['session', 'id', 'client → server', 'server → client', 'moves', 'resumes', 'verdict'],
  ];
  let passed = 0;
  for (let i = 0; i < clients; i++) {
    const d = done.get(i);
    const problems: string[] = [];
    if (!d) problems.push(timedOut ? 'client did not finish in time' : 'client died');
    else if (d.error) problems.push(d.error);
    else if (d.serverDigest === undefined) problems.push('no digest from the server');
    const upOk = d !== undefined && d.serverDigest === d.sentDigest;
    const downOk = d !== undefined && d.receivedHash === d.expectedHash && d.received === d.sent;
    const ok = upOk && downOk && problems.length === 0;
    if (ok) passed++;
    rows.push([
      `#${i + 1}`,
      d?.sessionId?.slice(0, 12) ?? '-',
      d ? `${formatBytes(d.sent)} ${upOk ? 'sha-256 match' : 'MISMATCH'}` : '-',
      d ? `${formatBytes(d.received)} ${downOk ? 'sha-256 match' : 'MISMATCH'}` : '-',
      d ? String(d.migrations) : '-',
      d ? String(d.reconnects) : '-',
      ok ? 'ok' : `FAIL ${problems.join('; ')}`.trimEnd(),
    ]);
  }
  const events = table(outcomes.map((o) => [o.event, o.server, o.ok ? 'ok' : 'FAIL', o.detail]));
  const happened = outcomes.filter((o) => o.ok).length;
  const b = pool.breaks;
  const summary = `${migrations.length} migrations, ${b.reset + b.close + b.stall} injected connection breaks`;
  const allOk = passed === clients && happened === outcomes.length;
  const lines = [
    '',
    ...table(rows),
    '',
    'scripted events',
    ...events.map((l) => `  ${l}`),
    `migrations: ${migrations.length}${byCategory(migrations)}`,
    '',
    allOk
      ? `PASS: ${clients}/${clients} sessions byte-exact in both directions, ` +
        `${happened}/${outcomes.length} scripted events happened (${summary})`
      : `FAIL: ${clients - passed} of ${clients} sessions did not verify, ` +
        `${outcomes.length - happened} of ${outcomes.length} scripted events did not happen (${summary})`,
  ];
  out.write(`${lines.join('\n')}\n`);
  return allOk;
}
