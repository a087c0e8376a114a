/** Messages between the demo's processes (over the Node IPC channel). */

/** Session transport settings every demo process uses: short keepalive so stalls are seen in ~1 s. */
export const DEMO_SESSION_OPTIONS = {
  keepaliveInterval: 200,
  keepaliveTimeout: 1000,
  resumeTimeout: 20_000,
} as const;

export interface ServerConfig {
  /** Flip one byte of every session's output: proves the verification can fail. */
  readonly corrupt: boolean;
}

export interface ClientConfig {
  readonly index: number;
  readonly port: number;
  readonly seed: number;
  /** Stop writing after this long (ms); null: until told to stop. */
  readonly durationMs: number | null;
  /** Stop writing after this many bytes; null: no limit. */
  readonly bytes: number | null;
}

export type ClientState = 'opening' | 'open' | 'reconnecting' | 'ending' | 'closed';

export interface ClientStatus {
  readonly kind: 'status';
  readonly index: number;
  readonly sessionId: string | undefined;
  readonly state: ClientState;
  readonly sent: number;
  readonly received: number;
  /** Resumes after a broken connection. */
  readonly reconnects: number;
}

export interface ClientDone extends Omit<ClientStatus, 'kind'> {
  readonly kind: 'done';
  readonly sentHash: string;
  readonly receivedHash: string;
  /** Hash of the transform of what was sent: what must have come back. */
  readonly expectedHash: string;
  readonly error: string | undefined;
}

export interface ServerListening {
  readonly kind: 'listening';
  readonly port: number;
}

export interface ServerSessionReport {
  readonly kind: 'session';
  readonly sessionId: string;
  readonly received: number;
  readonly receivedHash: string;
  readonly error: string | undefined;
}

export type ClientMessage = ClientStatus | ClientDone;
export type ServerMessage = ServerListening | ServerSessionReport;
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
export function toParent(message: ClientMessage | ServerMessage, then?: () => void): void {
  if (!process.send || !process.connected) process.exit(1);
  process.send(message, undefined, {}, () => then?.());
}

/** Workers are driven by the parent: Ctrl-C reaches the whole process group, the parent decides. */
export function obeyParent(): void {
  process.on('SIGINT', () => {});
  process.on('disconnect', () => process.exit(1));
}
