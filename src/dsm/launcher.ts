import { type ChildProcess, spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { createError, ErrorCodes } from '../wire/errors.ts';
import type { CheckResult, DsmParams, DsmResult } from './app.ts';
import { loadApp, resolveAppRef } from './apps/index.ts';
import { newSecret } from './auth.ts';
import { allowedCpus, boundCommand, findTaskset, planBinding } from './cpu-binding.ts';
import { firstChildId, type GcMode } from './ft/core.ts';
import { CRASH_ENV } from './ft/crash-plan.ts';
import type { CheckpointPolicy } from './ft/policy.ts';
import { childExecArgv, sibling, startWorker } from './modules.ts';
import { type ClusterRun, type CoordinatorOptions, type ProgressEvent, startCoordinator } from './runtime.ts';

/** Environment variable that carries the cluster secret to node processes (never argv: ps shows it). */
export const SECRET_ENV = 'LAZARUS_DSM_SECRET';

/**
 * Fault tolerance for a run: this process is the supervisor (coordinator, barrier and lock manager,
 * no app; assumed not to fail) and every compute node, node 0 included, is a child process that is
 * restarted when it fails.
 */
export interface FtOptions {
  /** Checkpoint directory; a fresh temporary one (removed afterwards) by default. */
  readonly dir?: string;
  readonly policy?: CheckpointPolicy;
  readonly gc?: GcMode;
  readonly failTimeoutMs?: number;
  /** SIGKILL these nodes this long after the start (tests, benchmarks, the CLI's --kill-at). */
  readonly kills?: readonly { readonly node: number; readonly atMs: number }[];
  /** Make a node kill itself at the n-th occurrence of an event (see ft/crash-plan.ts). */
  readonly crash?: { readonly node: number; readonly at: string };
  /** Give up after this many restarts in one run (default 20). */
  readonly maxRestarts?: number;
  /** Receives a function that SIGKILLs a node now (tests and tools that react to progress events). */
  readonly killer?: (kill: (node: number) => void) => void;
}

export const DEFAULT_POLICY: CheckpointPolicy = { intervalMs: 1000 };

export interface ClusterOptions extends Omit<CoordinatorOptions, 'secret' | 'ft' | 'onNodeLost'> {
  /** Generated when absent; remote nodes must be given the same one. */
  readonly secret?: string;
  /**
   * Node processes to start on this host (default: every node this process does not run, i.e.
   * nodes - 1, or nodes with FT); the rest join by address.
   */
  readonly localNodes?: number;
  /** The whole run fails with DSM_PEER_LOST after this long (default 10 minutes). */
  readonly timeoutMs?: number;
  /**
   * Bind each local node process to its own share of this host's CPUs when there are at least as
   * many CPUs as nodes here (Linux, with taskset). Default true.
   */
  readonly bind?: boolean;
  /** Wraps each local node's command, e.g. to run it in a network namespace. */
  readonly wrap?: (node: number, argv: string[]) => { command: string; args: string[] };
  /** Address local nodes use to join (default: the coordinator's advertised address). */
  readonly joinAddress?: { host: string; port: number };
  /** Fault tolerance on: failed local nodes are restarted and recover (see docs/ft-dsm.md). */
  readonly ft?: FtOptions;
}

/** A node process's exit code when it could not join the coordinator at all (keeper.ts stops then). */
export const JOIN_FAILED_EXIT = 2;

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
 * Runs an app on a cluster: this process is the coordinator, node 0 without FT, the supervisor with
 * FT (then node 0 is a child like the others); `localNodes` nodes are started here as child
 * processes, any others join by address (`lazarus dsm node --join`). Child processes are always
 * reaped: SIGKILL if they outlive the run by a few seconds.
 */
export async function runCluster(options: ClusterOptions): Promise<ClusterRun> {
  const secret = options.secret ?? newSecret();
  const ft = options.ft;
  const ownDir = ft && !ft.dir ? mkdtempSync(join(tmpdir(), 'lazarus-dsm-ft-')) : undefined;
  /** First id of a child node: node 0 is this process without FT. */
  const first = firstChildId(ft !== undefined);
  const local = options.localNodes ?? options.nodes - first;
  const current = new Map<number, ChildProcess>();
  const children: ChildProcess[] = [];
  const timers: NodeJS.Timeout[] = [];
  const binding = options.bind === false ? undefined : bindingFor(local + first);
  let restarts = 0;
  let over = false;
  /** Whether the peer table went out: a node lost before joins again afresh, not to recover. */
  let tableSent = false;
  let coordinator: Awaited<ReturnType<typeof startCoordinator>> | undefined;
  const userProgress = options.onProgress;
  const progress = (e: ProgressEvent) => userProgress?.(e);
  const lost = (err: ReturnType<typeof createError>) => coordinator?.abort(err);
  const killNode = (node: number) => {
    const child = current.get(node);
    if (child && child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
  };
  ft?.killer?.(killNode);

  const spawnNode = (node: number, rejoin: boolean) => {
    const join = options.joinAddress ?? coordinator!.address;
    // Local children trust this process: they may load the app from a module path.
    const extra = ['--allow-modules', ...(ft ? ['--id', String(node)] : []), ...(rejoin ? ['--rejoin'] : [])];
    const argv = nodeArgv(join.host, join.port, extra);
    const wrapped = options.wrap ? options.wrap(node, argv) : { command: argv[0]!, args: argv.slice(1) };
    const cmd = binding ? boundCommand(binding.taskset, binding.cpus[node]!, wrapped) : wrapped;
    const env: NodeJS.ProcessEnv = { ...process.env, [SECRET_ENV]: secret };
    delete env[CRASH_ENV];
    // A planned crash happens in the node's first run only, not again in its replacement.
    if (ft?.crash && ft.crash.node === node && !rejoin) env[CRASH_ENV] = ft.crash.at;
    const child = spawn(cmd.command, cmd.args, { env, stdio: ['ignore', 'ignore', 'inherit'] });
    children.push(child);
    current.set(node, child);
    if (rejoin) progress({ kind: 'restarted', node, pid: child.pid ?? 0 });
    child.on('exit', (code, signal) => {
      if (code === 0 || over) return;
      if (!ft) {
        lost(createError(ErrorCodes.DSM_PEER_LOST, `node process exited (${code ?? signal})`));
        return;
      }
      if (current.get(node) !== child) return;
      if (++restarts > (ft.maxRestarts ?? 20)) {
        lost(
          createError(ErrorCodes.DSM_PEER_LOST, `node ${node} failed again after ${restarts - 1} restarts`),
        );
        return;
      }
      spawnNode(node, tableSent);
    });
    child.on('error', (err) => lost(createError(ErrorCodes.DSM_PEER_LOST, err.message, err)));
  };

  const { ft: _ft, ...rest } = options;
  coordinator = await startCoordinator({
    ...rest,
    secret,
    // FT children are started with their ids (spawnNode): joiners from elsewhere get the others.
    claimedIds: ft ? local : 0,
    ...(ft
      ? {
          ft: {
            dir: ft.dir ?? ownDir!,
            policy: ft.policy ?? DEFAULT_POLICY,
            gc: ft.gc ?? 'llt+cgc',
            ...(ft.failTimeoutMs !== undefined ? { failTimeoutMs: ft.failTimeoutMs } : {}),
          },
          // Fencing: a node declared lost is killed for sure (a cut link leaves it running), then
          // restarted when its process has exited.
          onNodeLost: killNode,
        }
      : {}),
    onProgress: (e) => {
      if (e.kind === 'table-sent') tableSent = true;
      if (e.kind === 'started') {
        for (const k of ft?.kills ?? []) {
          timers.push(setTimeout(() => killNode(k.node), k.atMs));
        }
      }
      progress(e);
    },
  });
  const timer = setTimeout(
    () =>
      coordinator!.abort(
        createError(ErrorCodes.DSM_PEER_LOST, `run did not finish in ${options.timeoutMs ?? 600_000} ms`),
      ),
    options.timeoutMs ?? 600_000,
  );
  try {
    for (let i = 0; i < local; i++) spawnNode(i + first, false);
    const run = await coordinator.run;
    if (!binding) return run;
    const bound = Array.from({ length: local }, (_, i) => ({
      node: i + first,
      cpus: binding.cpus[i + first]!,
    }));
    return { ...run, binding: bound };
  } finally {
    over = true;
    clearTimeout(timer);
    for (const t of timers) clearTimeout(t);
    await reap(children);
    if (ownDir) rmSync(ownDir, { recursive: true, force: true });
  }
}

/**
 * CPU sets for the node processes on this host, by node id (node 0 runs in this process without FT
 * and is left alone), or undefined when they are not to be bound.
 */
function bindingFor(hostNodes: number): { taskset: string; cpus: number[][] } | undefined {
  const cpus = allowedCpus();
  const plan = cpus && planBinding(hostNodes, cpus);
  const taskset = plan && findTaskset();
  return taskset && plan ? { taskset, cpus: plan } : undefined;
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
