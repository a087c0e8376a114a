import type { Member } from '../../pool/index.ts';

/** Messages between the demo's processes (over the Node IPC channel). */

/** Session transport settings every demo process uses: short keepalive so stalls are seen in ~1 s. */
export const DEMO_SESSION_OPTIONS = {
  keepaliveInterval: 200,
  keepaliveTimeout: 1000,
  resumeTimeout: 20_000,
} as const;

export interface ServerConfig {
  /** This server's member id. */
  readonly self: string;
  /** The pool as clients see it: each member's port is its fault proxy's. */
  readonly members: readonly Member[];
  /** Where this server really listens for clients (its proxy forwards there). */
  readonly listenPort: number;
  readonly secret: string;
  /** Flip one byte of every session's output: proves the verification can fail. */
  readonly corrupt: boolean;
}

export interface FleetConfig {
  readonly clients: number;
  /** Client i opens its session at ports[i % ports.length]. */
  readonly ports: readonly number[];
  readonly seed: number;
  /** Bytes per second each client sends. */
  readonly rate: number;
}

export type ClientState = 'opening' | 'open' | 'reconnecting' | 'migrating' | 'ending' | 'closed';

export interface ClientStatus {
  readonly index: number;
  readonly sessionId: string | undefined;
  /** The member holding the session, as the client last learned it. */
  readonly serverId: string | undefined;
  readonly state: ClientState;
  readonly sent: number;
  /** Payload received back (the transformed stream, without the server's digest trailer). */
  readonly received: number;
  readonly migrations: number;
  /** Resumes on the same server after a broken connection. */
  readonly reconnects: number;
}

export interface FleetStatus {
  readonly kind: 'status';
  readonly sessions: readonly ClientStatus[];
}

export interface ClientMigration {
  readonly kind: 'migration';
  readonly index: number;
  readonly from: string | undefined;
  readonly to: string;
  readonly reason: string;
  readonly ms: number;
}

export interface ClientDone extends ClientStatus {
  readonly kind: 'done';
  /** Chained digest of what the client sent (see ChainDigest). */
  readonly sentDigest: string;
  /** The same digest as computed by the server(s) over what they received, sent back at the end. */
  readonly serverDigest: string | undefined;
  readonly receivedHash: string;
  /** Hash of the transform of what was sent: what must have come back. */
  readonly expectedHash: string;
  readonly error: string | undefined;
}

export type FleetMessage = FleetStatus | ClientMigration | ClientDone;

export interface ServerListening {
  readonly kind: 'listening';
}

export interface ServerSessionError {
  readonly kind: 'sessionError';
  readonly sessionId: string;
  readonly message: string;
}

export type ServerMessage = ServerListening | ServerSessionError;

/** Parent → server: hold at most `keep` sessions and advise the rest to move (null: no limit). */
export interface OverloadMessage {
  readonly kind: 'overload';
  readonly keep: number | null;
  /** Where to send the surplus ('' lets each client pick). */
  readonly target: string;
}

/** Parent → client fleet: finish every stream. */
export interface StopMessage {
  readonly kind: 'stop';
}

/** Reads this worker's JSON config from argv, as spawnWorker passes it. */
export function workerConfig<T>(): T {
  const raw = process.argv[2];
  if (raw === undefined) throw new Error('demo worker started without its config');
  return JSON.parse(raw) as T;
}

/** Sends to the parent; a worker whose parent is gone has nothing left to do. */
export function toParent(message: FleetMessage | ServerMessage, then?: () => void): void {
  if (!process.send || !process.connected) process.exit(1);
  process.send(message, undefined, {}, () => then?.());
}

/** Workers are driven by the parent: Ctrl-C reaches the whole process group, the parent decides. */
export function obeyParent(): void {
  process.on('SIGINT', () => {});
  process.on('disconnect', () => process.exit(1));
}
