import { codeFromWire, createError, ErrorCodes, isLazarusError, type LazarusError } from '../wire/errors.ts';
import type { DsmApp, DsmParams, DsmResult } from './app.ts';
import { BUILTIN_APPS, loadApp, resolveAppRef } from './apps/index.ts';
import { checkSecret } from './auth.ts';
import { WorkerHost, type WorkerOutcome } from './bridge.ts';
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
import { type DsmStats, publish } from './stats.ts';

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
}

/** One node's protocol and app worker, wired to the mesh once the cluster's shape is known. */
class NodeRuntime {
  readonly protocol: DsmProtocol;
  readonly worker: WorkerHost;
  readonly #mesh: Mesh;

  constructor(config: NodeConfig, app: DsmApp, mesh: Mesh, hooks: DsmHooks | undefined) {
    this.#mesh = mesh;
    const layout = planLayout(app.layout(config.params, config.nodes), config.pageSize, config.nodes);
    const pages = new PageTable(layout, config.me);
    this.protocol = new DsmProtocol({
      me: config.me,
      nodes: config.nodes,
      pages,
      transport: { send: (to, msg) => mesh.send(to, msg) },
      ...(hooks ? { hooks } : {}),
    });
    this.worker = new WorkerHost(this.protocol, {
      me: config.me,
      nodes: config.nodes,
      pageSize: layout.pageSize,
      numPages: layout.numPages,
      homes: layout.homes,
      regions: layout.regions,
      buffers: pages.buffers,
      app: config.app,
      params: config.params,
    });
  }

  receive(from: number, msg: ProtocolMessage): void {
    try {
      this.protocol.receive(from, msg);
    } catch (err) {
      this.#mesh.reject(from, asLazarus(err));
    }
  }

  stats(): DsmStats {
    return { ...this.protocol.stats, bytesSent: this.#mesh.bytesSent };
  }

  async stop(err?: LazarusError): Promise<void> {
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
  readonly hooks?: DsmHooks;
  readonly onProgress?: (event: ProgressEvent) => void;
}

export type ProgressEvent =
  | { kind: 'listening'; host: string; port: number }
  | { kind: 'joined'; node: number; host: string; port: number }
  | { kind: 'started' }
  | { kind: 'node-done'; node: number };

export interface ClusterRun {
  readonly result: DsmResult | undefined;
  /** Compute time on node 0: start barrier to the barrier after run() (result gathering excluded). */
  readonly computeMs: number;
  /** Per-node protocol statistics, index = node id. */
  readonly stats: readonly DsmStats[];
}

export interface Coordinator {
  readonly address: { host: string; port: number };
  readonly run: Promise<ClusterRun>;
  /** Aborts the run (closes every connection). */
  abort(err: LazarusError): void;
}

/**
 * Node 0: takes joiners, hands out ids and the peer table, starts everyone together, gathers the
 * outcome, and shuts the cluster down. It is also a full DSM node (barrier manager, homes, locks).
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
  const config: NodeConfig = { me: 0, nodes, pageSize, app: appRef, params };
  const peers: PeerAddress[] = [];
  const ready = new Set<number>();
  const done = new Map<number, DsmStats>();
  let runtime: NodeRuntime | undefined;
  let own: WorkerOutcome | undefined;
  let nextId = 1;
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
    for (const p of mesh.peers()) trySend(mesh, p, { type: 'shutdown' });
    const stats = runtime?.stats();
    await runtime?.stop(err);
    runtime = undefined;
    await mesh.close();
    if (err || !own || !stats) {
      settle.reject(err ?? createError(ErrorCodes.DSM_APP_FAILED, 'run ended without a result'));
      return;
    }
    const all = [stats, ...Array.from({ length: nodes - 1 }, (_, i) => done.get(i + 1)!)];
    settle.resolve({ result: own.result, computeMs: own.ms, stats: all });
  };
  const fail = (err: LazarusError) => void finish(err);
  const maybeGo = () => {
    if (!runtime || ready.size < nodes - 1) return;
    progress({ kind: 'started' });
    for (let p = 1; p < nodes; p++) trySend(mesh, p, { type: 'go' });
    runtime.worker.go();
  };
  const maybeFinish = () => {
    if (own && done.size === nodes - 1) void finish();
  };

  const mesh: Mesh = new Mesh({
    secret,
    me: 0,
    ...(options.host ? { host: options.host } : {}),
    ...(options.port !== undefined ? { port: options.port } : {}),
    ...(options.advertiseHost ? { advertiseHost: options.advertiseHost } : {}),
    onJoin: () => {
      if (nextId >= nodes) throw createError(ErrorCodes.PROTOCOL, 'the cluster is full');
      return nextId++;
    },
    onPeer: (node, hello) => {
      peers.push({ node, host: hello.host, port: hello.port });
      progress({ kind: 'joined', node, host: hello.host, port: hello.port });
      if (peers.length < nodes - 1) return;
      const table = [...peers].sort((a, b) => a.node - b.node);
      for (const p of table) {
        const start: ControlMessage = {
          type: 'start',
          node: p.node,
          nodes,
          pageSize,
          app: appRef,
          params: JSON.stringify(params),
          peers: table,
        };
        trySend(mesh, p.node, start);
      }
    },
    onMessage: (from, msg) => {
      if (isProtocolMessage(msg)) {
        runtime?.receive(from, msg);
        return;
      }
      switch (msg.type) {
        case 'ready':
          ready.add(from);
          maybeGo();
          return;
        case 'done': {
          if (!msg.ok) {
            fail(createError(codeFromWire(msg.code), `node ${from} failed: ${msg.message}`));
            return;
          }
          done.set(from, parseStats(msg.stats));
          progress({ kind: 'node-done', node: from });
          maybeFinish();
          return;
        }
        default:
          throw createError(ErrorCodes.PROTOCOL, `coordinator got ${msg.type}`);
      }
    },
    onPeerLost: (node, err) =>
      fail(createError(ErrorCodes.DSM_PEER_LOST, `node ${node} lost: ${err.message}`, err)),
  });
  const address = await mesh.listen();
  progress({ kind: 'listening', ...address });
  runtime = new NodeRuntime(config, app, mesh, options.hooks);
  const rt = runtime;
  rt.worker.loaded.then(maybeGo, () => {});
  rt.worker.finished.then(
    (outcome) => {
      own = outcome;
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
}

/**
 * A non-coordinator node: joins node 0, learns its id and the peers, connects to the peers with
 * lower ids (higher ones connect to it), runs the app when told, and serves until shutdown.
 * Resolves with this node's id at a clean shutdown; rejects with a typed error otherwise.
 */
export async function joinCluster(options: JoinOptions): Promise<number> {
  const secret = checkSecret(options.secret);
  let runtime: NodeRuntime | undefined;
  let config: NodeConfig | undefined;
  let started = false;
  let stopping = false;
  /** Once this node's app is done, only node 0 still matters: other peers may shut down first. */
  let appDone = false;
  let settle!: { resolve: (n: number) => void; reject: (e: LazarusError) => void };
  const outcome = new Promise<number>((resolve, reject) => {
    settle = { resolve, reject };
  });

  const stop = async (err?: LazarusError): Promise<void> => {
    if (stopping) return;
    stopping = true;
    const rt = runtime;
    runtime = undefined;
    if (err) trySend(mesh, 0, { type: 'done', ok: false, stats: '{}', code: err.code, message: err.message });
    await rt?.stop(err);
    await mesh.close();
    if (err) settle.reject(err);
    else settle.resolve(mesh.me);
  };
  const maybeReady = () => {
    if (!config || !runtime || started || mesh.peers().length < config.nodes - 1) return;
    started = true;
    runtime.worker.loaded.then(
      () => trySend(mesh, 0, { type: 'ready' }),
      () => {},
    );
  };
  const onStart = async (msg: Extract<ControlMessage, { type: 'start' }>) => {
    if (config) throw createError(ErrorCodes.PROTOCOL, 'second start');
    if (msg.node !== mesh.me || msg.nodes < 2 || msg.node >= msg.nodes) {
      throw createError(ErrorCodes.PROTOCOL, `start for node ${msg.node} of ${msg.nodes}`);
    }
    const params = parseParams(msg.params);
    config = { me: msg.node, nodes: msg.nodes, pageSize: msg.pageSize, app: msg.app, params };
    if (!BUILTIN_APPS[msg.app] && !options.allowModules) {
      throw createError(ErrorCodes.PROTOCOL, `refusing to load app module ${msg.app} (not a built-in app)`);
    }
    const app = await loadApp(msg.app);
    runtime = new NodeRuntime(config, app, mesh, options.hooks);
    const rt = runtime;
    rt.worker.finished.then(
      () => {
        appDone = true;
        trySend(mesh, 0, {
          type: 'done',
          ok: true,
          stats: JSON.stringify(rt.stats()),
          code: '',
          message: '',
        });
      },
      (err: unknown) => void stop(asLazarus(err)),
    );
    for (const peer of msg.peers) {
      if (peer.node > 0 && peer.node < msg.node) await mesh.connect(peer.host, peer.port);
    }
    maybeReady();
  };

  const mesh: Mesh = new Mesh({
    secret,
    me: JOINING,
    ...(options.host ? { host: options.host } : {}),
    ...(options.port !== undefined ? { port: options.port } : {}),
    ...(options.advertiseHost ? { advertiseHost: options.advertiseHost } : {}),
    onPeer: () => maybeReady(),
    onMessage: (from, msg) => {
      if (isProtocolMessage(msg)) {
        runtime?.receive(from, msg);
        return;
      }
      if (from !== 0) throw createError(ErrorCodes.PROTOCOL, `control message ${msg.type} from node ${from}`);
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
      if (node === 0 || !appDone)
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

function parseParams(json: string): DsmParams {
  let v: unknown;
  try {
    v = JSON.parse(json);
  } catch (err) {
    throw createError(ErrorCodes.MALFORMED_FRAME, 'start: params are not JSON', err);
  }
  if (typeof v !== 'object' || v === null || Object.values(v).some((x) => typeof x !== 'number')) {
    throw createError(ErrorCodes.MALFORMED_FRAME, 'start: params must map names to numbers');
  }
  return v as DsmParams;
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
