export {
  ClientSession,
  type ClientStatus,
  type ConnectOptions,
  connect,
  type MigratedEvent,
  type ReconnectingEvent,
  type ResumedEvent,
} from './client.ts';
export { channels } from './diagnostics.ts';
export type { MigrationDecision, MigrationPolicy, PolicyView } from './migration.ts';
export type { CommonOptions } from './options.ts';
export { type Advice, AdviceKind, type MemberAddress } from './protocol.ts';
export {
  createServer,
  type DrainReport,
  type ServerOptions,
  ServerSession,
  type SessionHandler,
  type SessionPool,
  SessionServer,
} from './server.ts';
export type { CheckpointEvent } from './server-session.ts';
