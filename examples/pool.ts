/**
 * Shared by the examples: starts pool members in this process. A real deployment runs one member
 * per process or host; each example's server.ts can start one member (`--member b`) or all three.
 */
import { parseArgs } from 'node:util';
import { createPool, type Member } from '../src/pool/index.ts';
import {
  createServer,
  type ServerOptions,
  type SessionHandler,
  type SessionServer,
} from '../src/session/index.ts';

/** The example pools' shared secret; a real pool reads it from its configuration. */
export const EXAMPLE_SECRET = 'lazarus-examples-pool-secret';

/** Three members a, b, c on loopback: client ports base..base+2, peer ports base+100... */
export function localMembers(basePort: number): Member[] {
  return ['a', 'b', 'c'].map((id, i) => ({
    id,
    host: '127.0.0.1',
    port: basePort + i,
    peerPort: basePort + 100 + i,
  }));
}

/** Members a, b, c on the given client ports and peer ports (tests pick free ones). */
export function membersOn(ports: readonly number[]): Member[] {
  if (ports.length < 6) throw new RangeError('three members need six ports');
  return ['a', 'b', 'c'].map((id, i) => ({
    id,
    host: '127.0.0.1',
    port: ports[i]!,
    peerPort: ports[i + 3]!,
  }));
}

export interface RunningPool {
  readonly servers: readonly SessionServer[];
  close(): Promise<void>;
}

export interface StartOptions {
  /** Start only these members (default: all). */
  readonly only?: readonly string[];
  /** Server options beyond the pool (logBudget, allowHalfOpen...). */
  readonly server?: Omit<ServerOptions, 'pool'>;
}

export async function startPool(
  members: readonly Member[],
  handler: SessionHandler,
  options: StartOptions = {},
): Promise<RunningPool> {
  const servers: SessionServer[] = [];
  for (const m of members) {
    if (options.only && !options.only.includes(m.id)) continue;
    const pool = createPool({ self: m.id, members, secret: EXAMPLE_SECRET });
    const server = createServer({ ...options.server, pool }, handler);
    await server.listen();
    servers.push(server);
  }
  return {
    servers,
    async close() {
      await Promise.all(servers.map((s) => s.close(200)));
    },
  };
}

/**
 * The command line shared by the examples' servers: `[--member id]... [--base-port n]`. Runs until
 * SIGINT/SIGTERM, logging sessions arriving, leaving and failing.
 */
export async function serveFromCommandLine(
  name: string,
  defaultBase: number,
  handler: SessionHandler,
  server: Omit<ServerOptions, 'pool'> = {},
): Promise<void> {
  const { values } = parseArgs({
    options: { member: { type: 'string', multiple: true }, 'base-port': { type: 'string' } },
  });
  const members = localMembers(Number(values['base-port'] ?? defaultBase));
  const running = await startPool(
    members,
    handler,
    values.member ? { only: values.member, server } : { server },
  );
  for (const server of running.servers) {
    const id = server.serverId;
    server.on('session', (s: { sessionId: string }) =>
      console.log(`[${id}] session ${s.sessionId.slice(0, 8)}`),
    );
    server.on('migrated', (sid: string, to: string) =>
      console.log(`[${id}] ${sid.slice(0, 8)} moved to ${to}`),
    );
    server.on('sessionError', (err: Error) => console.log(`[${id}] session error: ${err.message}`));
    const m = members.find((x) => x.id === id)!;
    console.log(`${name}: member ${id} on ${m.host}:${m.port} (peers ${m.peerPort})`);
  }
  const stop = () => {
    running.close().then(() => process.exit(0));
  };
  process.once('SIGINT', stop);
  process.once('SIGTERM', stop);
}
