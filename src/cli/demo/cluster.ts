import type { ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { once } from 'node:events';
import { type BreakMode, FaultProxy } from '../../faults/fault-proxy.ts';
import { freePorts } from '../../pool/free-ports.ts';
import { type Member, requestDrain } from '../../pool/index.ts';
import type { DrainReport } from '../../session/index.ts';
import type { OverloadMessage, ServerConfig, ServerMessage } from './messages.ts';
import { spawnWorker } from './spawn-worker.ts';

/** The demo pool's member ids. */
export const MEMBER_IDS = ['a', 'b', 'c'] as const;

/** A light rate of injected breaks: each proxied connection lives 4-12 s. */
const BREAK_AFTER_MS = [4000, 12_000] as const;
const BREAK_MODES: readonly BreakMode[] = ['reset', 'close', 'stall'];
/** How long a server process may take to start (tsx compiles on the fly). */
const START_TIMEOUT_MS = 20_000;

export interface ClusterOptions {
  readonly seed: number;
  readonly corrupt: boolean;
  /** A server process reported a failed session, or died unexpectedly (sessionId ''). */
  readonly onServerError: (member: string, sessionId: string, message: string) => void;
}

/**
 * Three pool members, each its own child process, each reached by clients through its own fault
 * proxy in this process: the pool's member list advertises the proxy's port, so every connection a
 * client makes to a member (open, resume, migration) takes that member's path, which the demo can
 * then degrade. Peers and the admin channel (drain) talk to each other directly.
 */
export class DemoCluster {
  readonly members: readonly Member[];
  readonly breaks: Record<BreakMode, number> = { reset: 0, close: 0, stall: 0 };
  readonly #options: ClusterOptions;
  // A fresh secret per run: it never leaves this machine's demo processes.
  readonly #secret = randomBytes(24).toString('base64url');
  readonly #listenPorts: ReadonlyMap<string, number>;
  readonly #proxies: ReadonlyMap<string, FaultProxy>;
  readonly #servers = new Map<string, ChildProcess>();

  private constructor(
    options: ClusterOptions,
    members: readonly Member[],
    listenPorts: ReadonlyMap<string, number>,
    proxies: ReadonlyMap<string, FaultProxy>,
  ) {
    this.#options = options;
    this.members = members;
    this.#listenPorts = listenPorts;
    this.#proxies = proxies;
  }

  static async start(options: ClusterOptions): Promise<DemoCluster> {
    const ports = await freePorts(2 * MEMBER_IDS.length);
    const members: Member[] = [];
    const listenPorts = new Map<string, number>();
    const proxies = new Map<string, FaultProxy>();
    for (const [i, id] of MEMBER_IDS.entries()) {
      const listenPort = ports[2 * i]!;
      const proxy = new FaultProxy({
        targetPort: listenPort,
        seed: options.seed * 10 + i,
        breakAfterMs: BREAK_AFTER_MS,
        breakModes: BREAK_MODES,
      });
      const { port } = await proxy.listen();
      listenPorts.set(id, listenPort);
      proxies.set(id, proxy);
      members.push({ id, host: '127.0.0.1', port, peerPort: ports[2 * i + 1]! });
    }
    const cluster = new DemoCluster(options, members, listenPorts, proxies);
    for (const proxy of proxies.values()) proxy.on('break', (mode: BreakMode) => cluster.breaks[mode]++);
    await Promise.all(MEMBER_IDS.map((id) => cluster.#spawn(id)));
    return cluster;
  }

  /** Connections the proxies accepted. */
  get connections(): number {
    let n = 0;
    for (const proxy of this.#proxies.values()) n += proxy.stats.connections;
    return n;
  }

  /** Asks a member to move all its sessions away, over the authenticated admin channel. */
  drain(id: string, deadlineMs: number): Promise<DrainReport> {
    return requestDrain(this.#member(id), this.#secret, deadlineMs, 'lazarus-demo');
  }

  /** Stops a member's process and starts a new one in its place, as a deploy does. */
  async restart(id: string): Promise<void> {
    const old = this.#servers.get(id);
    this.#servers.delete(id);
    if (old && old.exitCode === null && old.signalCode === null) {
      old.kill('SIGTERM');
      await once(old, 'exit');
    }
    await this.#spawn(id);
  }

  /** Caps a member at `keep` sessions (null: lifts the cap); the surplus is advised to move to `target`. */
  overload(id: string, keep: number | null, target = ''): void {
    this.#servers.get(id)?.send({ kind: 'overload', keep, target } satisfies OverloadMessage);
  }

  /** Adds latency to every connection through a member's proxy (0: heals the path). */
  degrade(id: string, latencyMs: number): void {
    this.#proxies.get(id)?.configure({ latencyMs });
  }

  /** Stops every server and proxy. */
  async close(): Promise<void> {
    const servers = [...this.#servers.values()];
    this.#servers.clear();
    await Promise.all([
      ...servers.map((s) => {
        if (s.exitCode !== null || s.signalCode !== null) return undefined;
        s.kill('SIGTERM');
        return once(s, 'exit');
      }),
      ...[...this.#proxies.values()].map((p) => p.close()),
    ]);
  }

  /** Kills every server at once (on the way out, when there is no time to be clean). */
  kill(): void {
    for (const s of this.#servers.values()) if (s.exitCode === null) s.kill('SIGKILL');
  }

  #member(id: string): Member {
    const member = this.members.find((m) => m.id === id);
    if (!member) throw new Error(`no pool member ${id}`);
    return member;
  }

  #spawn(id: string): Promise<void> {
    const config: ServerConfig = {
      self: id,
      members: this.members,
      listenPort: this.#listenPorts.get(id)!,
      secret: this.#secret,
      corrupt: this.#options.corrupt,
    };
    const child = spawnWorker('worker-server', config);
    this.#servers.set(id, child);
    return new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => {
        child.kill('SIGKILL');
        reject(new Error(`server ${id} did not start within ${START_TIMEOUT_MS / 1000} s`));
      }, START_TIMEOUT_MS);
      child.on('message', (m: ServerMessage) => {
        if (m.kind === 'listening') {
          clearTimeout(timer);
          resolve();
        } else this.#options.onServerError(id, m.sessionId, m.message);
      });
      child.once('exit', (code, signal) => {
        clearTimeout(timer);
        reject(new Error(`server ${id} exited while starting (${signal ?? `code ${code}`})`));
        // Stopped on purpose (restart, close) it is no longer in the map.
        if (this.#servers.get(id) === child) {
          this.#options.onServerError(id, '', `server process exited (${signal ?? `code ${code}`})`);
        }
      });
    });
  }
}
