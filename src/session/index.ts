export {
  ClientSession,
  type ClientStatus,
  type ConnectOptions,
  connect,
  type ReconnectingEvent,
  type ResumedEvent,
} from './client.ts';
export { channels } from './diagnostics.ts';
export type { CommonOptions } from './options.ts';
export {
  createServer,
  type ServerOptions,
  ServerSession,
  type SessionHandler,
  SessionServer,
} from './server.ts';
