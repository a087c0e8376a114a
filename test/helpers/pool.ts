import { createPool, type Member, type Pool } from '../../src/pool/index.ts';
import {
  createServer,
  type ServerOptions,
  type ServerSession,
  type SessionHandler,
  type SessionServer,
} from '../../src/session/index.ts';
import { freePorts } from './ports.ts';

export { freePorts };

/** A handler that echoes and checkpoints after every chunk (so every move has a fresh continuation). */
export function checkpointingEcho(session: ServerSession): void {
  session.on('error', () => {});
  session.on('data', (d: Buffer) => {
    session.write(d);
    session.checkpoint(null);
  });
  session.on('end', () => session.end());
}

/** The pool secret of every test pool (members share it; a test of a wrong secret uses another). */
export const TEST_SECRET = 'lazarus-test-pool-secret';

export interface PoolOptions {
  /** Member ids; default 'a', 'b', 'c', ... */
  readonly ids?: readonly string[];
  /** Start only these members (the others are listed but not running, e.g. one in a child process). */
  readonly only?: readonly string[];
  /** Members to use as they are (e.g. with a proxy's port as the client port); default fresh free ports. */
  readonly members?: readonly Member[];
  /** Where each member's server really listens, when it differs from its advertised port. */
  readonly listenPorts?: Readonly<Record<string, number>>;
  readonly pullTimeout?: number;
  /** Options for every server (logBudget, maxSessions, resumeTimeout, ...). */
  readonly server?: Omit<ServerOptions, 'pool'>;
}

export interface TestPool {
  readonly members: readonly Member[];
  readonly servers: readonly SessionServer[];
  readonly pools: readonly Pool[];
  /** The running server of member `id`. */
  server(id: string): SessionServer;
  member(id: string): Member;
  /** How many running servers hold session `hex` now (exactly-one-owner checks). */
  owners(hex: string): string[];
  close(): Promise<void>;
}

/** `n` members on loopback with fresh ports: client ports first, then peer ports. */
export async function poolMembers(n: number, ids?: readonly string[]): Promise<Member[]> {
  const ports = await freePorts(2 * n);
  return Array.from({ length: n }, (_, i) => ({
    id: ids?.[i] ?? String.fromCharCode(97 + i),
    host: '127.0.0.1',
    port: ports[i]!,
    peerPort: ports[n + i]!,
  }));
}

/**
 * Starts a pool of `n` members in this process, each a server running `handler`. Every member needs
 * every other's address before it starts, hence ports reserved up front.
 */
export async function startPool(
  n: number,
  handler: SessionHandler,
  options: PoolOptions = {},
): Promise<TestPool> {
  const members = options.members ?? (await poolMembers(n, options.ids));
  const servers: SessionServer[] = [];
  const pools: Pool[] = [];
  try {
    for (const m of members) {
      if (options.only && !options.only.includes(m.id)) continue;
      const pool = createPool({
        self: m.id,
        members,
        secret: TEST_SECRET,
        ...(options.pullTimeout === undefined ? {} : { pullTimeout: options.pullTimeout }),
      });
      const server = createServer({ ...options.server, pool }, handler);
      await server.listen(options.listenPorts?.[m.id]);
      servers.push(server);
      pools.push(pool);
    }
  } catch (err) {
    await Promise.all(servers.map((s) => s.close(0)));
    throw err;
  }
  const byId = new Map(servers.map((s) => [s.serverId, s]));
  return {
    members,
    servers,
    pools,
    server(id) {
      const s = byId.get(id);
      if (!s) throw new Error(`member ${id} is not running in this process`);
      return s;
    },
    member(id) {
      const m = members.find((x) => x.id === id);
      if (!m) throw new Error(`no member ${id}`);
      return m;
    },
    owners(hex) {
      return servers.filter((s) => s.sessions.has(hex)).map((s) => s.serverId);
    },
    async close() {
      await Promise.all(servers.map((s) => s.close(200)));
    },
  };
}
