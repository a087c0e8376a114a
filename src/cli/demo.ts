import type { ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { type BreakMode, FaultProxy } from '../faults/fault-proxy.ts';
import { formatBytes, formatSeconds, table } from './demo/format.ts';
import type {
  ClientConfig,
  ClientDone,
  ClientMessage,
  ServerConfig,
  ServerMessage,
  ServerSessionReport,
  StopMessage,
} from './demo/messages.ts';
import { spawnWorker } from './demo/spawn-worker.ts';
import { StatusBoard } from './demo/status-line.ts';

export interface DemoOptions {
  readonly clients: number;
  /** Seconds of streaming; null with `forever`. */
  readonly durationMs: number | null;
  /** Per-client byte cap; null: none. */
  readonly bytes: number | null;
  readonly seed: number;
  /** Flip a byte on the server side, so verification must fail (tests the verdict). */
  readonly corrupt: boolean;
}

/** After streaming stops, how long the sessions get to drain and close before the demo gives up. */
const DRAIN_GRACE_MS = 30_000;

/**
 * `lazarus demo`: one session server and N clients in separate processes, every session streaming
 * through a fault proxy (here, in the parent) that keeps breaking connections; at the end both
 * directions of every session are checked by sha-256. Resolves to the process exit code.
 */
export async function runDemo(options: DemoOptions): Promise<number> {
  const out = process.stdout;
  const children = new Set<ChildProcess>();
  const killAll = () => {
    for (const child of children) if (child.exitCode === null) child.kill('SIGKILL');
  };
  process.on('exit', killAll);

  const server = spawnWorker('worker-server', { corrupt: options.corrupt } satisfies ServerConfig);
  children.add(server);
  const reports = new Map<string, ServerSessionReport>();
  const serverPort = new Promise<number>((resolve, reject) => {
    server.on('message', (m: ServerMessage) => {
      if (m.kind === 'listening') resolve(m.port);
      else reports.set(m.sessionId, m);
    });
    server.once('exit', (code) => reject(new Error(`the demo server exited early (code ${code})`)));
  });
  const port = await serverPort;

  const modes: BreakMode[] = ['reset', 'close', 'stall'];
  const proxy = new FaultProxy({
    targetPort: port,
    seed: options.seed,
    breakAfterBytes: [32 * 1024, 4 * 1024 * 1024],
    breakAfterMs: [200, 2500],
    breakModes: modes,
  });
  const breaks = { reset: 0, close: 0, stall: 0 };
  proxy.on('break', (mode: BreakMode) => breaks[mode]++);
  const proxyPort = (await proxy.listen()).port;

  out.write(
    `lazarus demo: ${options.clients} sessions through a fault proxy (reset / close / stall at random), ` +
      `${options.durationMs === null ? 'until Ctrl-C' : formatSeconds(options.durationMs)}` +
      `${options.bytes === null ? '' : `, up to ${formatBytes(options.bytes)} each`}, seed ${options.seed}\n\n`,
  );
  const board = new StatusBoard(out, options.clients);
  const done = new Map<number, ClientDone>();
  const clients: ChildProcess[] = [];
  const finished = new Promise<void>((resolve) => {
    for (let index = 0; index < options.clients; index++) {
      const config: ClientConfig = {
        index,
        port: proxyPort,
        seed: options.seed * 1000 + index,
        durationMs: options.durationMs,
        bytes: options.bytes,
      };
      const child = spawnWorker('worker-client', config);
      children.add(child);
      clients.push(child);
      child.on('message', (m: ClientMessage) => {
        if (m.kind === 'status') board.update(m);
        else {
          board.update({ ...m, kind: 'status' });
          done.set(index, m);
        }
      });
      child.once('exit', () => {
        if (clients.every((c) => c.exitCode !== null || c.signalCode !== null)) resolve();
      });
    }
  });

  const proxyCounts = () => ({ connections: proxy.stats.connections, breaks });
  const redraw = setInterval(() => board.draw(proxyCounts()), board.interval);
  const stopAll = () => {
    for (const child of clients) if (child.connected) child.send({ kind: 'stop' } satisfies StopMessage);
  };
  let timedOut = false;
  let deadline: NodeJS.Timeout | undefined;
  const armDeadline = (ms: number) => {
    clearTimeout(deadline);
    deadline = setTimeout(() => {
      timedOut = true;
      killAll();
    }, ms);
  };
  // --forever has no deadline until Ctrl-C arms one.
  if (options.durationMs !== null) armDeadline(options.durationMs + DRAIN_GRACE_MS);
  // First Ctrl-C: stop streaming and verify what was sent; second: give up at once.
  let interrupted = false;
  const onSigint = () => {
    if (interrupted) {
      killAll();
      process.exit(130);
    }
    interrupted = true;
    out.write('\nstopping: finishing every stream and verifying (Ctrl-C again to abort)\n');
    stopAll();
    armDeadline(DRAIN_GRACE_MS);
  };
  process.on('SIGINT', onSigint);
  await finished;
  clearTimeout(deadline);
  clearInterval(redraw);
  board.draw(proxyCounts());

  // The server reports a session when its client's stream ends, before that client closes.
  const until = Date.now() + 2000;
  while ([...done.values()].some((d) => d.sessionId && !reports.has(d.sessionId)) && Date.now() < until) {
    await new Promise((r) => setTimeout(r, 20));
  }
  server.kill('SIGTERM');
  await Promise.all([proxy.close(), server.exitCode === null ? once(server, 'exit') : undefined]);
  process.off('SIGINT', onSigint);
  process.off('exit', killAll);

  const ok = printVerdict(out, options.clients, done, reports, breaks, timedOut);
  return ok ? 0 : 1;
}

function printVerdict(
  out: NodeJS.WriteStream,
  clients: number,
  done: ReadonlyMap<number, ClientDone>,
  reports: ReadonlyMap<string, ServerSessionReport>,
  breaks: Readonly<Record<BreakMode, number>>,
  timedOut: boolean,
): boolean {
  const rows: string[][] = [['session', 'id', 'client → server', 'server → client', 'resumes', 'verdict']];
  let passed = 0;
  for (let i = 0; i < clients; i++) {
    const d = done.get(i);
    const r = d?.sessionId ? reports.get(d.sessionId) : undefined;
    const problems: string[] = [];
    if (!d) problems.push(timedOut ? 'client did not finish in time' : 'client died');
    else if (d.error) problems.push(`client: ${d.error}`);
    if (d && !r) problems.push('no server report');
    else if (r?.error) problems.push(`server: ${r.error}`);
    const upOk = d !== undefined && r !== undefined && r.received === d.sent && r.receivedHash === d.sentHash;
    const downOk = d !== undefined && d.receivedHash === d.expectedHash;
    const ok = upOk && downOk && problems.length === 0;
    if (ok) passed++;
    rows.push([
      `#${i + 1}`,
      d?.sessionId?.slice(0, 12) ?? '-',
      d ? `${formatBytes(d.sent)} ${upOk ? 'sha-256 match' : 'MISMATCH'}` : '-',
      d ? `${formatBytes(d.received)} ${downOk ? 'sha-256 match' : 'MISMATCH'}` : '-',
      d ? String(d.reconnects) : '-',
      ok ? 'ok' : `FAIL ${problems.join('; ')}`.trimEnd(),
    ]);
  }
  const total = breaks.reset + breaks.close + breaks.stall;
  const lines = [
    '',
    ...table(rows),
    '',
    passed === clients
      ? `PASS: ${clients}/${clients} sessions byte-exact in both directions across ${total} injected connection breaks`
      : `FAIL: ${clients - passed} of ${clients} sessions did not verify (${total} injected connection breaks)`,
  ];
  out.write(`${lines.join('\n')}\n`);
  return passed === clients;
}
