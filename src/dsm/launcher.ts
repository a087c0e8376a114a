import { type ChildProcess, spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { createError, ErrorCodes } from '../wire/errors.ts';
import type { CheckResult, DsmParams, DsmResult } from './app.ts';
import { loadApp, resolveAppRef } from './apps/index.ts';
import { newSecret } from './auth.ts';
import { childExecArgv, sibling, startWorker } from './modules.ts';
import { type ClusterRun, type CoordinatorOptions, startCoordinator } from './runtime.ts';

/** Environment variable that carries the cluster secret to node processes (never argv: ps shows it). */
export const SECRET_ENV = 'LAZARUS_DSM_SECRET';

export interface ClusterOptions extends Omit<CoordinatorOptions, 'secret'> {
  /** Generated when absent; remote nodes must be given the same one. */
  readonly secret?: string;
  /** Node processes to start on this host (default nodes - 1); the rest join by address. */
  readonly localNodes?: number;
  /** The whole run fails with DSM_PEER_LOST after this long (default 10 minutes). */
  readonly timeoutMs?: number;
  /** Wraps each local node's command, e.g. to run it in a network namespace. */
  readonly wrap?: (node: number, argv: string[]) => { command: string; args: string[] };
  /** Address local nodes use to join (default: the coordinator's advertised address). */
  readonly joinAddress?: { host: string; port: number };
}

/** The command line of a node process joining `host:port`. */
export function nodeArgv(host: string, port: number, extra: readonly string[] = []): string[] {
  return [
    process.execPath,
    ...childExecArgv(),
    fileURLToPath(sibling('node-main')),
    '--join',
    `${host}:${port}`,
    ...extra,
  ];
}

/**
 * Runs an app on a cluster: this process is node 0 (coordinator), `localNodes` more are started here
 * as child processes, any others join by address (`lazarus dsm node --join`). Child processes are
 * always reaped: SIGKILL if they outlive the run by a few seconds.
 */
export async function runCluster(options: ClusterOptions): Promise<ClusterRun> {
  const secret = options.secret ?? newSecret();
  const coordinator = await startCoordinator({ ...options, secret });
  const local = options.localNodes ?? options.nodes - 1;
  const join = options.joinAddress ?? coordinator.address;
  const children: ChildProcess[] = [];
  const timer = setTimeout(
    () =>
      coordinator.abort(
        createError(ErrorCodes.DSM_PEER_LOST, `run did not finish in ${options.timeoutMs ?? 600_000} ms`),
      ),
    options.timeoutMs ?? 600_000,
  );
  try {
    for (let i = 0; i < local; i++) {
      // Local children trust this process: they may load the app from a module path.
      const argv = nodeArgv(join.host, join.port, ['--allow-modules']);
      const cmd = options.wrap ? options.wrap(i + 1, argv) : { command: argv[0]!, args: argv.slice(1) };
      const child = spawn(cmd.command, cmd.args, {
        env: { ...process.env, [SECRET_ENV]: secret },
        stdio: ['ignore', 'ignore', 'inherit'],
      });
      children.push(child);
      child.on('exit', (code, signal) => {
        if (code !== 0) {
          coordinator.abort(createError(ErrorCodes.DSM_PEER_LOST, `node process exited (${code ?? signal})`));
        }
      });
      child.on('error', (err) => coordinator.abort(createError(ErrorCodes.DSM_PEER_LOST, err.message, err)));
    }
    return await coordinator.run;
  } finally {
    clearTimeout(timer);
    await reap(children);
  }
}

async function reap(children: readonly ChildProcess[]): Promise<void> {
  await Promise.all(
    children.map(
      (child) =>
        new Promise<void>((resolve) => {
          if (child.exitCode !== null || child.signalCode !== null) return resolve();
          const kill = setTimeout(() => child.kill('SIGKILL'), 5000);
          child.once('exit', () => {
            clearTimeout(kill);
            resolve();
          });
        }),
    ),
  );
}

export interface AppRun {
  readonly app: string;
  readonly params: DsmParams;
  readonly nodes: number;
  /** Time of the plain sequential program. */
  readonly sequentialMs: number;
  readonly run: ClusterRun;
  readonly check: CheckResult;
}

/** Runs an app's sequential program in a fresh worker thread; resolves with its result and time. */
export function runSequential(app: string, params: DsmParams): Promise<{ result: DsmResult; ms: number }> {
  return new Promise((resolve, reject) => {
    const worker = startWorker('sequential', { workerData: { app, params } });
    worker.once('message', (m: { result: DsmResult; ms: number }) => {
      resolve(m);
      void worker.terminate();
    });
    worker.once('error', (err) =>
      reject(createError(ErrorCodes.DSM_APP_FAILED, `sequential ${app}: ${err.message}`, err)),
    );
    worker.once('exit', () =>
      reject(createError(ErrorCodes.DSM_APP_FAILED, `sequential ${app} ended without a result`)),
    );
  });
}

/** Runs the sequential program and the DSM run of an app, and checks one against the other. */
export async function runApp(options: ClusterOptions & { readonly size?: number }): Promise<AppRun> {
  const app = await loadApp(options.app);
  const params = options.params ?? app.params(options.size);
  const { result: expected, ms: sequentialMs } = await runSequential(resolveAppRef(options.app), params);
  const run = await runCluster({ ...options, params });
  const check: CheckResult = run.result
    ? app.check(run.result, expected)
    : { ok: false, detail: 'node 0 returned no result' };
  return { app: app.name, params, nodes: options.nodes, sequentialMs, run, check };
}

/** Parses `host:port` (IPv6 in brackets); port 0 (any free port) only where `anyPort` allows it. */
export function parseHostPort(text: string, anyPort = false): { host: string; port: number } {
  const m = /^(?:\[([^\]]+)\]|([^:]+)):(\d{1,5})$/.exec(text);
  const port = m ? Number(m[3]) : Number.NaN;
  if (!m || port < (anyPort ? 0 : 1) || port > 65535) {
    throw createError(ErrorCodes.INVALID_ARGUMENT, `expected host:port, got ${JSON.stringify(text)}`);
  }
  return { host: (m[1] ?? m[2])!, port };
}
