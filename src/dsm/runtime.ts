import { codeFromWire, createError, ErrorCodes, isLazarusError, type LazarusError } from '../wire/errors.ts';
import type { DsmApp, DsmParams, DsmResult } from './app.ts';
import { BUILTIN_APPS, loadApp, resolveAppRef } from './apps/index.ts';
import { checkSecret } from './auth.ts';
import { WorkerHost, type WorkerOutcome } from './bridge.ts';
import { CheckpointStore } from './ft/checkpoint-store.ts';
import { Checkpointer } from './ft/checkpointer.ts';
import { FtCore, type FtSettings, firstChildId, isGcMode, supervisorOf } from './ft/core.ts';
import { CRASH_ENV, CrashPlan } from './ft/crash-plan.ts';
import { CheckpointClock } from './ft/policy.ts';
import { answerRecovery, RecoveryCollector } from './ft/recovery.ts';
import { SupervisorRole } from './ft/supervisor.ts';
import { Mesh } from './mesh.ts';
import {
  type ControlMessage,
  type DsmMessage,
  JOINING,
  type PeerAddress,
  type ProtocolMessage,
} from './messages.ts';
import { DEFAULT_PAGE_SIZE, PageTable, planLayout } from './pages.ts';
import { type DsmHooks, DsmProtocol } from './protocol.ts';
import { ResultAssembler, resultChunks } from './result-transfer.ts';
import { type DsmStats, dsmChannel, type FtStats, publish } from './stats.ts';

const PROTOCOL_TYPES: ReadonlySet<string> = new Set([
  'page-req',
  'page-reply',
  'diffs',
  'diff-ack',
  'lock-req',
  'lock-fwd',
  'lock-grant',
  'barrier-arrive',
  'barrier-release',
  'page-push',
]);

export function isProtocolMessage(msg: DsmMessage): msg is ProtocolMessage {
  return PROTOCOL_TYPES.has(msg.type);
}

export interface NodeConfig {
  readonly me: number;
  readonly nodes: number;
  readonly pageSize: number;
  readonly app: string;
  readonly params: DsmParams;
  readonly ft?: FtSettings;
}

/** How often nodes tell the coordinator they are alive (FT), and how long silence means failure. */
export const PING_MS = 500;
export const DEFAULT_FAIL_TIMEOUT_MS = 3000;

/** One node's protocol and app worker, wired to the mesh once the cluster's shape is known. */
class NodeRuntime {
  readonly protocol: DsmProtocol;
  readonly worker: WorkerHost;
  readonly ft: FtCore | undefined;
  readonly checkpointer: Checkpointer | undefined;
  readonly #mesh: Mesh;
  readonly #series: FtStats['series'] = [];
  readonly #started = performance.now();
  readonly #unsubscribe: (() => void) | undefined;

  /**
   * `recovering`: this process replaces a failed node: it restores its checkpoint and re-executes.
   * `crash`: the process's planned crash (FT tests), if any.
   */
  constructor(
    config: NodeConfig,
    app: DsmApp,
    mesh: Mesh,
    hooks: DsmHooks | undefined,
    {
      recovering = false,
      crash = new CrashPlan(undefined),
    }: { recovering?: boolean; crash?: CrashPlan } = {},
  ) {
    this.#mesh = mesh;
    const layout = planLayout(app.layout(config.params, config.nodes), config.pageSize, config.nodes);
    const pages = new PageTable(layout, config.me);
    const ft = config.ft ? new FtCore(config.me, config.nodes, config.ft.gc) : undefined;
    this.ft = ft;
    // Log size over time, sampled at each barrier (for the benchmark's plot): a hook, not a channel
    // subscriber, so protocol events stay unpublished when nobody else listens.
    const sampled: DsmHooks | undefined = ft
      ? {
          ...hooks,
          onBarrierPassed: (episode, time) => {
            hooks?.onBarrierPassed?.(episode, time);
            this.#series.push([Math.round(performance.now() - this.#started), ft.log.bytes, ft.log.entries]);
          },
        }
      : hooks;
    this.protocol = new DsmProtocol({
      me: config.me,
      nodes: config.nodes,
      pages,
      // With FT a peer may be down for a while: what it misses is logged or re-sent when it is back.
      transport: {
        send: (to, msg) => {
          if (ft && !mesh.isConnected(to)) return undefined;
          return mesh.send(to, msg);
        },
      },
      ...(sampled ? { hooks: sampled } : {}),
      ...(ft ? { ft } : {}),
    });
    let restored: number[] | undefined;
    let forced: SharedArrayBuffer | undefined;
    if (ft && config.ft) {
      const store = new CheckpointStore(config.ft.dir, config.me);
      // The clock runs in the app's worker (a safe point that is not due costs no call); this one
      // shares its forced flag, to force the next safe point from here.
      forced = new SharedArrayBuffer(4);
      const clock = new CheckpointClock(config.me, config.ft.policy, forced);
      this.checkpointer = new Checkpointer(this.protocol, pages, ft, store, clock, crash);
      if (recovering) {
        restored = this.checkpointer.restore();
        ft.startReplay();
        publish({ node: config.me, event: 'restored', checkpoint: restored !== undefined });
      }
      if (crash.armed) {
        const onEvent = (m: unknown) => {
          const e = m as { node?: number; event?: string };
          if (e.node !== config.me) return;
          if (e.event === 'arrive') crash.hit('arrive');
          else if (e.event === 'acquire') crash.hit('lock');
          else if (e.event === 'served') crash.hit('serve');
        };
        dsmChannel.subscribe(onEvent);
        this.#unsubscribe = () => dsmChannel.unsubscribe(onEvent);
      }
    } else {
      this.checkpointer = undefined;
    }
    const cp = this.checkpointer;
    this.worker = new WorkerHost(
      this.protocol,
      {
        me: config.me,
        nodes: config.nodes,
        pageSize: layout.pageSize,
        numPages: layout.numPages,
        homes: layout.homes,
        regions: layout.regions,
        buffers: pages.buffers,
        app: config.app,
        params: config.params,
        ft: ft !== undefined,
        ...(restored ? { restored } : {}),
        ...(config.ft && forced ? { clock: { policy: config.ft.policy, forced } } : {}),
      },
      cp ? (state, due) => cp.safePoint(state, due) : undefined,
    );
  }

  receive(from: number, msg: ProtocolMessage): void {
    try {
      this.protocol.receive(from, msg);
    } catch (err) {
      this.#mesh.reject(from, asLazarus(err));
    }
  }

  receiveLogged(from: number, msg: ProtocolMessage): void {
    try {
      this.protocol.receiveLogged(from, msg);
    } catch (err) {
      this.#mesh.reject(from, asLazarus(err));
    }
  }

  /** A reply this (restarted) node had served `to` before failing, for its log again. */
  relog(to: number, msg: ProtocolMessage): void {
    const ft = this.ft;
    if (!ft || msg.type !== 'page-reply') {
      this.#mesh.reject(to, createError(ErrorCodes.PROTOCOL, `cannot re-log a ${msg.type}`));
      return;
    }
    if (!ft.shouldLog(to) || ft.log.for(to).some((e) => e.kind === 'reply' && e.key === msg.req)) return;
    ft.log.append(to, msg);
  }

  /** What this restarted node tells its peers: where its checkpoint stands. */
  recoveryRequest(): ControlMessage {
    const ft = this.ft;
    if (!ft) throw createError(ErrorCodes.PROTOCOL, 'recovery without fault tolerance');
    return { type: 'recover-req', ckpt: ft.own, applied: ft.applied.slice() };
  }

  /** A peer restarted and asks for what was logged for it. */
  answerRecovery(from: number, msg: Extract<ControlMessage, { type: 'recover-req' }>): void {
    if (!this.ft) throw createError(ErrorCodes.PROTOCOL, 'recovery request without fault tolerance');
    answerRecovery((to, m) => trySend(this.#mesh, to, m), this.protocol, this.ft, from, msg);
    // Replies this node got from the restarted peer after its checkpoint are gone from its log.
    this.checkpointer?.force();
  }

  stats(): DsmStats {
    const base: DsmStats = { ...this.protocol.stats, bytesSent: this.#mesh.bytesSent };
    const ft = this.ft;
    if (!ft) return base;
    return {
      ...base,
      ft: {
        ...ft.counters,
        retainedLogEntries: ft.log.entries,
        retainedLogBytes: ft.log.bytes,
        retainedCheckpoints: this.checkpointer?.retained ?? 0,
        retainedCheckpointBytes: this.checkpointer?.retainedBytes ?? 0,
        series: this.#series,
      },
    };
  }

  async stop(err?: LazarusError): Promise<void> {
    this.#unsubscribe?.();
    if (err) this.protocol.fail(err);
    await this.worker.terminate(err);
  }
}

export interface CoordinatorOptions {
  /** A built-in app name or a module path/URL exporting `app`. */
  readonly app: string;
  readonly params?: DsmParams;
  readonly nodes: number;
  readonly pageSize?: number;
  readonly secret: string;
  readonly host?: string;
  readonly port?: number;
  readonly advertiseHost?: string;
  /** Protocol hooks of node 0 when it runs in this process (FT off; with FT node 0 is a child). */
  readonly hooks?: DsmHooks;
  readonly onProgress?: (event: ProgressEvent) => void;
  /**
   * Fault tolerance: this process is the supervisor (coordinator, barrier and lock manager; no app)
   * and every compute node 0..nodes-1 joins it. A lost node (connection closed, or silent for
   * `failTimeoutMs`) no longer fails the run; `onNodeLost` is told (the launcher restarts it) and
   * the node rejoins with its id.
   */
  readonly ft?: FtSettings & { readonly failTimeoutMs?: number };
  readonly onNodeLost?: (node: number) => void;
  /**
   * How many of the first compute ids are claimed by nodes that name their own (the launcher's
   * children in an FT run, so that it can restart each as the same node): nodes that join without
   * an id (`lazarus dsm node`) are given the ids after them.
   */
  readonly claimedIds?: number;
}

export type ProgressEvent =
  | { kind: 'listening'; host: string; port: number }
  | { kind: 'joined'; node: number; host: string; port: number }
  /** Every node has the peer table: with FT, a node lost from now on is restarted to rejoin. */
  | { kind: 'table-sent' }
  | { kind: 'started' }
  | { kind: 'node-done'; node: number }
  | { kind: 'node-lost'; node: number; reason: string }
  | { kind: 'restarted'; node: number; pid: number }
  | { kind: 'rejoined'; node: number }
  | { kind: 'recovered'; node: number };

export interface ClusterRun {
  readonly result: DsmResult | undefined;
  /** Compute time on node 0: start barrier to the barrier after run() (result gathering excluded). */
  readonly computeMs: number;
  /**
   * The coordinator's view, from its 'go' to the last node's DONE (result gathering included): with
   * FT, the job's real duration when a node was restarted, whose computeMs counts only its last life.
   */
  readonly runMs: number;
  /** Per-node protocol statistics, index = node id. */
  readonly stats: readonly DsmStats[];
  /** FT runs: the supervisor's (barrier and lock manager) statistics and log. */
  readonly supervisor?: DsmStats;
  /** The CPUs each local node process was bound to, when they were (launcher.ts). */
  readonly binding?: readonly { readonly node: number; readonly cpus: readonly number[] }[];
}

export interface Coordinator {
  readonly address: { host: string; port: number };
  readonly run: Promise<ClusterRun>;
  /** Aborts the run (closes every connection). */
  abort(err: LazarusError): void;
}

/**
 * The coordinator: takes joiners, hands out ids and the peer table, starts everyone together,
 * gathers the outcome, and shuts the cluster down. Without FT it is node 0, a full DSM node (barrier
 * manager, homes, locks) whose app runs in this process; with FT it is the supervisor, mesh id
 * `nodes`, which runs no app and manages barriers and locks (ft/supervisor.ts), and nodes 0..nodes-1
 * all join it, so that any of them can fail.
 */
export async function startCoordinator(options: CoordinatorOptions): Promise<Coordinator> {
  const secret = checkSecret(options.secret);
  const { nodes } = options;
  if (!Number.isInteger(nodes) || nodes < 1 || nodes > 256) {
    throw createError(ErrorCodes.INVALID_ARGUMENT, `node count ${nodes} outside 1..256`);
  }
  const appRef = resolveAppRef(options.app);
  const app = await loadApp(appRef);
  const params = options.params ?? app.params();
  const pageSize = options.pageSize ?? DEFAULT_PAGE_SIZE;
  const progress = options.onProgress ?? (() => {});
  const ftSettings = options.ft
    ? { dir: options.ft.dir, policy: options.ft.policy, gc: options.ft.gc }
    : undefined;
  const supervised = ftSettings !== undefined;
  /** Lowest id of a joining compute node; they are `nodes - first` processes. */
  const first = firstChildId(supervised);
  const joiners = nodes - first;
  const config: NodeConfig = {
    me: 0,
    nodes,
    pageSize,
    app: appRef,
    params,
    ...(ftSettings ? { ft: ftSettings } : {}),
  };
  const failTimeoutMs = options.ft?.failTimeoutMs ?? DEFAULT_FAIL_TIMEOUT_MS;
  const lastHeard = new Map<number, number>();
  let running = false;
  let watchdog: NodeJS.Timeout | undefined;
  const peers: PeerAddress[] = [];
  const ready = new Set<number>();
  const done = new Map<number, DsmStats>();
  let runtime: NodeRuntime | undefined;
  let supervisor: SupervisorRole | undefined;
  /** Node 0's outcome: from its worker here (FT off), or sent by node 0 in RESULT chunks (FT). */
  let own: WorkerOutcome | undefined;
  let goAt = 0;
  let lastDoneAt = 0;
  const result0 = new ResultAssembler();
  const claimed = first + (options.claimedIds ?? 0);
  let nextId = claimed;
  /** Ids given to joiners that failed before the peer table went out, for the next joiners. */
  const freeIds: number[] = [];
  /**
   * Ids of joiners lost after the table went out and before the start, not back yet: a joiner
   * without an id takes one and recovers as that node (its keeper on another host may not have
   * learnt the id before the node died). Not after the start: a node's checkpoints and the logs
   * kept for it then tie it to its host.
   */
  const awaited: number[] = [];
  let tableSent = false;
  /**
   * A node lost before the peer table went out is forgotten: its replacement joins as a first-time
   * node (one that claims its id, or any joiner, given the freed id). False once the table is out:
   * every node then holds its address.
   */
  const forgetBeforeStart = (node: number): boolean => {
    if (tableSent) return false;
    const at = peers.findIndex((p) => p.node === node);
    if (at >= 0) peers.splice(at, 1);
    if (node >= claimed) freeIds.push(node);
    return true;
  };
  let finishing = false;
  let settle!: { resolve: (r: ClusterRun) => void; reject: (e: LazarusError) => void };
  const run = new Promise<ClusterRun>((resolve, reject) => {
    settle = { resolve, reject };
  });
  run.catch(() => {});

  const finish = async (err?: LazarusError): Promise<void> => {
    // Peers drop their connections as they shut down: once finishing, that is expected.
    if (finishing) return;
    finishing = true;
    if (watchdog) clearInterval(watchdog);
    for (const p of mesh.peers()) trySend(mesh, p, { type: 'shutdown' });
    const stats = runtime?.stats();
    await runtime?.stop(err);
    runtime = undefined;
    await mesh.close();
    if (err || !own || (!supervised && !stats)) {
      settle.reject(err ?? createError(ErrorCodes.DSM_APP_FAILED, 'run ended without a result'));
      return;
    }
    const joined = Array.from({ length: joiners }, (_, i) => done.get(i + first)!);
    const all = stats ? [stats, ...joined] : joined;
    settle.resolve({
      result: own.result,
      computeMs: own.ms,
      runMs: lastDoneAt - goAt,
      stats: all,
      ...(supervisor ? { supervisor: supervisor.stats() } : {}),
    });
  };
  const fail = (err: LazarusError) => void finish(err);
  const maybeGo = () => {
    if ((!runtime && !supervisor) || ready.size < joiners || running) return;
    running = true;
    goAt = performance.now();
    progress({ kind: 'started' });
    for (let p = first; p < nodes; p++) trySend(mesh, p, { type: 'go' });
    runtime?.worker.go();
  };
  const maybeFinish = () => {
    if (own && done.size === joiners) void finish();
  };

  const mesh: Mesh = new Mesh({
    secret,
    me: supervised ? supervisorOf(nodes) : 0,
    ...(options.host ? { host: options.host } : {}),
    ...(options.port !== undefined ? { port: options.port } : {}),
    ...(options.advertiseHost ? { advertiseHost: options.advertiseHost } : {}),
    onJoin: () => {
      const free = freeIds.shift() ?? awaited.shift();
      if (free !== undefined) return free;
      if (nextId >= nodes) throw createError(ErrorCodes.PROTOCOL, 'the cluster is full');
      return nextId++;
    },
    replace: ftSettings !== undefined,
    onPeer: (node, hello) => {
      if (node < first || node >= nodes) {
        mesh.reject(node, createError(ErrorCodes.PROTOCOL, `node id ${node} outside ${first}..${nodes - 1}`));
        return;
      }
      lastHeard.set(node, performance.now());
      const known = peers.findIndex((p) => p.node === node);
      const address = { node, host: hello.host, port: hello.port };
      const startFor = (p: PeerAddress, table: PeerAddress[], recover = false): ControlMessage => ({
        type: 'start',
        node: p.node,
        nodes,
        pageSize,
        app: appRef,
        params: JSON.stringify(params),
        peers: table,
        ...(ftSettings ? { ft: JSON.stringify(ftSettings) } : {}),
        ...(recover ? { recover: true as const } : {}),
      });
      if (known >= 0) {
        // A restarted node (FT): same id, new address; it gets the table and is told to recover.
        if (!ftSettings) throw createError(ErrorCodes.PROTOCOL, `node ${node} joined twice`);
        peers[known] = address;
        const at = awaited.indexOf(node);
        if (at >= 0) awaited.splice(at, 1);
        progress({ kind: 'rejoined', node });
        trySend(
          mesh,
          node,
          startFor(
            address,
            [...peers].sort((a, b) => a.node - b.node),
            true,
          ),
        );
        return;
      }
      peers.push(address);
      progress({ kind: 'joined', node, host: hello.host, port: hello.port });
      if (peers.length < joiners) return;
      const table = [...peers].sort((a, b) => a.node - b.node);
      tableSent = true;
      progress({ kind: 'table-sent' });
      for (const p of table) trySend(mesh, p.node, startFor(p, table));
    },
    onMessage: (from, msg) => {
      lastHeard.set(from, performance.now());
      if (isProtocolMessage(msg)) {
        (runtime ?? supervisor)?.receive(from, msg);
        return;
      }
      switch (msg.type) {
        case 'ping':
          return;
        case 'recover-req':
          (runtime ?? supervisor)?.answerRecovery(from, msg);
          return;
        case 'result':
          if (!supervised || from !== 0) throw createError(ErrorCodes.PROTOCOL, `result from node ${from}`);
          result0.add(msg);
          return;
        case 'ready':
          // After the start, READY from a node means a restarted node has caught up.
          if (running) {
            progress({ kind: 'recovered', node: from });
            return;
          }
          ready.add(from);
          maybeGo();
          return;
        case 'done': {
          if (!msg.ok) {
            fail(createError(codeFromWire(msg.code), `node ${from} failed: ${msg.message}`));
            return;
          }
          if (supervised && from === 0) {
            own = result0.outcome();
            if (!own) throw createError(ErrorCodes.PROTOCOL, 'node 0 done before its whole result');
          }
          done.set(from, parseStats(msg.stats));
          lastDoneAt = performance.now();
          progress({ kind: 'node-done', node: from });
          maybeFinish();
          return;
        }
        default:
          throw createError(ErrorCodes.PROTOCOL, `coordinator got ${msg.type}`);
      }
    },
    onPeerLost: (node, err) => {
      if (!ftSettings) {
        fail(createError(ErrorCodes.DSM_PEER_LOST, `node ${node} lost: ${err.message}`, err));
        return;
      }
      if (finishing) return;
      progress({ kind: 'node-lost', node, reason: err.message });
      // Lost after the peer table went out and before the start: its replacement rejoins with its
      // id and re-executes from the beginning like any restarted node; the start waits for it.
      if (!running && !forgetBeforeStart(node)) {
        ready.delete(node);
        if (node >= claimed && !awaited.includes(node)) awaited.push(node);
      }
      options.onNodeLost?.(node);
    },
  });
  if (ftSettings) {
    // Failure detection for what a closed connection does not show (a cut link, a hung host).
    watchdog = setInterval(() => {
      const now = performance.now();
      for (const p of mesh.peers()) {
        if (now - (lastHeard.get(p) ?? now) > failTimeoutMs) {
          mesh.reject(p, createError(ErrorCodes.DSM_PEER_LOST, `node ${p} silent for ${failTimeoutMs} ms`));
        }
      }
    }, PING_MS);
    watchdog.unref();
  }
  const address = await mesh.listen();
  progress({ kind: 'listening', ...address });
  if (ftSettings) {
    const layout = planLayout(app.layout(params, nodes), pageSize, nodes);
    supervisor = new SupervisorRole(
      layout,
      nodes,
      ftSettings.gc,
      (to, m) => trySend(mesh, to, m),
      (node, err) => mesh.reject(node, err),
    );
    return { address, run, abort: fail };
  }
  runtime = new NodeRuntime(config, app, mesh, options.hooks);
  const rt = runtime;
  rt.worker.loaded.then(maybeGo, () => {});
  rt.worker.finished.then(
    (outcome) => {
      own = outcome;
      lastDoneAt = Math.max(lastDoneAt, performance.now());
      rt.protocol.appDone();
      progress({ kind: 'node-done', node: 0 });
      maybeFinish();
    },
    (err: unknown) => fail(asLazarus(err)),
  );
  return { address, run, abort: fail };
}

export interface JoinOptions {
  readonly join: { host: string; port: number };
  readonly secret: string;
  readonly host?: string;
  readonly port?: number;
  readonly advertiseHost?: string;
  /**
   * Accept an app given as a module path (code this node will import and run). Off by default: a
   * joined node then only runs built-in apps, whatever the coordinator asks.
   */
  readonly allowModules?: boolean;
  readonly hooks?: DsmHooks;
  /** Claim this node id instead of being given one (FT runs: a restarted node keeps its id). */
  readonly id?: number;
  /** This process replaces failed node `id`: restore its checkpoint and re-execute. */
  readonly rejoin?: boolean;
  /** Told the node's id once the coordinator has started it, and whether the run is fault-tolerant. */
  readonly onStart?: (info: { readonly node: number; readonly faultTolerant: boolean }) => void;
  /** Told once this node's app has finished and its DONE has gone to the coordinator. */
  readonly onAppDone?: () => void;
}

/**
 * A compute node that joins the coordinator (node 0 without FT, the supervisor with FT), learns its
 * id and the peers, connects to the peers with lower ids (higher ones connect to it), runs the app
 * when told, and serves until shutdown. Resolves with this node's id at a clean shutdown; rejects
 * with a typed error otherwise.
 */
export async function joinCluster(options: JoinOptions): Promise<number> {
  const secret = checkSecret(options.secret);
  // The process's planned crash (FT tests): start-up points here, the rest in its runtime.
  const crash = new CrashPlan(process.env[CRASH_ENV]);
  let runtime: NodeRuntime | undefined;
  let config: NodeConfig | undefined;
  let started = false;
  let stopping = false;
  /**
   * The coordinator's id, learnt from its START (the only connection before START is the one to
   * it): 0 without FT, the supervisor (`nodes`) with FT. Control messages come only from it.
   */
  let coordinator: number | undefined;
  /** Connections this node needs before it is ready: every other node of the table, and the coordinator. */
  let needed = Number.POSITIVE_INFINITY;
  /** Once this node's app is done, only the coordinator still matters: other peers may shut down first. */
  let appDone = false;
  let collector: RecoveryCollector | undefined;
  let pinger: NodeJS.Timeout | undefined;
  let settle!: { resolve: (n: number) => void; reject: (e: LazarusError) => void };
  const outcome = new Promise<number>((resolve, reject) => {
    settle = { resolve, reject };
  });

  const stop = async (err?: LazarusError): Promise<void> => {
    if (stopping) return;
    stopping = true;
    if (pinger) clearInterval(pinger);
    const rt = runtime;
    runtime = undefined;
    if (err && coordinator !== undefined)
      trySend(mesh, coordinator, {
        type: 'done',
        ok: false,
        stats: '{}',
        code: err.code,
        message: err.message,
      });
    await rt?.stop(err);
    await mesh.close();
    if (err) settle.reject(err);
    else settle.resolve(mesh.me);
  };
  const maybeReady = () => {
    if (!config || !runtime || started || mesh.peers().length < needed) return;
    started = true;
    const ft = config.ft !== undefined;
    runtime.worker.loaded.then(
      () => {
        if (ft) crash.hit('ready');
        trySend(mesh, coordinator!, { type: 'ready' });
      },
      () => {},
    );
  };
  const onStart = async (msg: Extract<ControlMessage, { type: 'start' }>) => {
    if (config) throw createError(ErrorCodes.PROTOCOL, 'second start');
    if (msg.node !== mesh.me || msg.node >= msg.nodes) {
      throw createError(ErrorCodes.PROTOCOL, `start for node ${msg.node} of ${msg.nodes}`);
    }
    const params = parseParams(msg.params);
    const ft = msg.ft === undefined ? undefined : parseFt(msg.ft);
    if (coordinator !== (ft ? supervisorOf(msg.nodes) : 0)) {
      throw createError(ErrorCodes.PROTOCOL, `start from node ${coordinator}, not the coordinator`);
    }
    // Restarted with --rejoin (the launcher, a keeper that knew the id) or told so by the coordinator.
    const recovering = options.rejoin === true || msg.recover === true;
    if (ft && !recovering) crash.hit('start');
    if (msg.nodes < (ft ? 1 : 2)) throw createError(ErrorCodes.PROTOCOL, `start for ${msg.nodes} node(s)`);
    needed = msg.peers.length;
    config = {
      me: msg.node,
      nodes: msg.nodes,
      pageSize: msg.pageSize,
      app: msg.app,
      params,
      ...(ft ? { ft } : {}),
    };
    if (!BUILTIN_APPS[msg.app] && !options.allowModules) {
      throw createError(ErrorCodes.PROTOCOL, `refusing to load app module ${msg.app} (not a built-in app)`);
    }
    if (recovering && !ft) throw createError(ErrorCodes.PROTOCOL, 'rejoining a run without fault tolerance');
    options.onStart?.({ node: msg.node, faultTolerant: ft !== undefined });
    const app = await loadApp(msg.app);
    runtime = new NodeRuntime(config, app, mesh, options.hooks, { recovering, crash });
    const rt = runtime;
    const coord = coordinator;
    if (ft) {
      pinger = setInterval(() => trySend(mesh, coord, { type: 'ping' }), PING_MS);
      pinger.unref();
    }
    rt.worker.finished.then(
      (outcome) => {
        appDone = true;
        rt.protocol.appDone();
        // Node 0 in another process than the coordinator (FT) sends it the result first.
        if (mesh.me === 0 && coord !== 0) for (const m of resultChunks(outcome)) trySend(mesh, coord, m);
        trySend(mesh, coord, {
          type: 'done',
          ok: true,
          stats: JSON.stringify(rt.stats()),
          code: '',
          message: '',
        });
        options.onAppDone?.();
      },
      (err: unknown) => void stop(asLazarus(err)),
    );
    if (recovering) {
      started = true;
      // Every peer lost its connection to the failed node: this one dials them all, then asks each
      // for what it logged for this node, and re-executes once all have answered.
      const others = msg.peers.filter((p) => p.node !== msg.node);
      for (const peer of others) if (!mesh.isConnected(peer.node)) await mesh.connect(peer.host, peer.port);
      const all = [coord, ...others.map((p) => p.node)];
      collector = new RecoveryCollector(all);
      const req = rt.recoveryRequest();
      for (const p of all) trySend(mesh, p, req);
      await collector.done;
      collector = undefined;
      started = true;
      rt.protocol.startReplay();
      rt.protocol.onCaughtUp = () => trySend(mesh, coord, { type: 'ready' });
      rt.worker.loaded.then(
        () => rt.worker.go(),
        () => {},
      );
      return;
    }
    // The table lists the joined nodes only (never the coordinator, already connected).
    for (const peer of msg.peers) {
      if (peer.node >= msg.node) continue;
      try {
        await mesh.connect(peer.host, peer.port);
      } catch (err) {
        // With FT a peer that died since the table went out is restarted and dials everyone.
        if (!ft) throw err;
      }
    }
    maybeReady();
  };

  const mesh: Mesh = new Mesh({
    secret,
    me: options.id ?? JOINING,
    replace: options.id !== undefined,
    ...(options.host ? { host: options.host } : {}),
    ...(options.port !== undefined ? { port: options.port } : {}),
    ...(options.advertiseHost ? { advertiseHost: options.advertiseHost } : {}),
    onPeer: () => maybeReady(),
    onMessage: (from, msg) => {
      if (isProtocolMessage(msg)) {
        if (collector?.takeRelog(from)) runtime?.relog(from, msg);
        else if (collector?.logging(from)) runtime?.receiveLogged(from, msg);
        else runtime?.receive(from, msg);
        return;
      }
      switch (msg.type) {
        case 'recover-req':
          runtime?.answerRecovery(from, msg);
          return;
        case 'recover-begin':
          if (!collector) throw createError(ErrorCodes.PROTOCOL, 'recovery data for a node not recovering');
          collector.begin(from, msg.relog);
          runtime?.ft?.sawCrashPoint(msg.seen);
          return;
        case 'recover-end':
          if (!collector) throw createError(ErrorCodes.PROTOCOL, 'recovery data for a node not recovering');
          collector.end(from);
          return;
        case 'ping':
          return;
        default:
          break;
      }
      // The first START names the coordinator (checked against the run's shape in onStart).
      if (msg.type === 'start' && coordinator === undefined) coordinator = from;
      if (from !== coordinator)
        throw createError(ErrorCodes.PROTOCOL, `control message ${msg.type} from node ${from}`);
      switch (msg.type) {
        case 'start':
          onStart(msg).catch((err: unknown) => void stop(asLazarus(err)));
          return;
        case 'go':
          runtime?.worker.go();
          return;
        case 'shutdown':
          void stop();
          return;
        default:
          throw createError(ErrorCodes.PROTOCOL, `node got ${msg.type}`);
      }
    },
    onPeerLost: (node, err) => {
      // With FT a lost peer is restarted and comes back; only the coordinator is indispensable.
      if (coordinator === undefined || node === coordinator || (!appDone && !config?.ft))
        void stop(createError(ErrorCodes.DSM_PEER_LOST, `node ${node} lost: ${err.message}`, err));
    },
  });
  await mesh.listen();
  try {
    await mesh.connect(options.join.host, options.join.port);
  } catch (err) {
    await mesh.close();
    throw createError(
      ErrorCodes.CONNECT_FAILED,
      `cannot join ${options.join.host}:${options.join.port}: ${asLazarus(err).message}`,
      err,
    );
  }
  publish({ node: mesh.me, event: 'joined' });
  return outcome;
}

function trySend(mesh: Mesh, to: number, msg: DsmMessage): void {
  try {
    mesh.send(to, msg);
  } catch {
    // The peer is gone; its loss is reported through onPeerLost.
  }
}

/** JSON from a START message; `what` names the field in the error. */
function parseJson(json: string, what: string): unknown {
  try {
    return JSON.parse(json);
  } catch (err) {
    throw createError(ErrorCodes.MALFORMED_FRAME, `start: ${what} are not JSON`, err);
  }
}

function parseParams(json: string): DsmParams {
  const v = parseJson(json, 'params');
  if (typeof v !== 'object' || v === null || Object.values(v).some((x) => typeof x !== 'number')) {
    throw createError(ErrorCodes.MALFORMED_FRAME, 'start: params must map names to numbers');
  }
  return v as DsmParams;
}

function parseFt(json: string): FtSettings {
  const v = parseJson(json, 'ft settings');
  const o = v as Partial<FtSettings>;
  if (
    typeof o !== 'object' ||
    o === null ||
    typeof o.dir !== 'string' ||
    typeof o.policy !== 'object' ||
    o.policy === null ||
    !isGcMode(o.gc)
  ) {
    throw createError(ErrorCodes.MALFORMED_FRAME, 'start: bad ft settings');
  }
  return o as FtSettings;
}

function parseStats(json: string): DsmStats {
  try {
    return JSON.parse(json) as DsmStats;
  } catch (err) {
    throw createError(ErrorCodes.MALFORMED_FRAME, 'done: stats are not JSON', err);
  }
}

function asLazarus(err: unknown): LazarusError {
  return isLazarusError(err) ? err : createError(ErrorCodes.DSM_APP_FAILED, String(err), err);
}
