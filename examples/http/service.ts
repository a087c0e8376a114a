/**
 * HTTP: an HTTP/1.1 keep-alive server (plain `node:http`) whose connections are migratory sessions.
 *
 * The handler hands each session to an `http.Server` as its connection (`emit('connection',
 * session)`); the client gives `http.request` an agent whose `createConnection` opens a session. The
 * responses are deterministic (no Date header; bodies are functions of the request and of its index
 * on the connection):
 *   GET /item/<n>?size=S   -> S pseudo-random bytes seeded by n, streamed
 *   POST /echo             -> JSON { bytes, sha256, index } of the request body
 * Every response carries `x-request-index`: the request's index on this connection, the state
 * that travels with the session.
 *
 * Where to checkpoint: the HTTP parser (llhttp, native) keeps its state out of reach, so it cannot
 * be saved mid-request. Between two requests there is nothing to save: a fresh parser on the new
 * owner is the same as the old one. So the handler checkpoints `{ served }` when a response has
 * finished, the request it answers has been read to its end and no other request is in progress:
 * the input consumed then ends exactly at a request boundary, provided the client does not pipeline
 * (an http.Agent never does: it sends the next request on a connection once the previous response
 * is complete). A migration anywhere else (during an upload, during a response) replays the
 * input since the last boundary through a new parser and the response is regenerated and compared
 * byte for byte. A pipelining client could have part of the next request consumed at a checkpoint;
 * the new owner would then reply differently from the log, which the transport reports as
 * ERR_LZ_DIVERGENCE instead of corrupting the stream.
 *
 * Run: `npx tsx examples/http/server.ts`, then `npx tsx examples/http/client.ts`.
 */
import { createHash } from 'node:crypto';
import http from 'node:http';
import { SeededRandom } from '../../src/faults/random.ts';
import {
  type ClientSession,
  type ConnectOptions,
  connect,
  type ServerSession,
  type SessionHandler,
} from '../../src/session/index.ts';

/** What one connection (one migratory session) carries from server to server. */
interface ConnectionState {
  /** Requests started on this connection. */
  served: number;
  /** Requests whose response has not finished. */
  inFlight: number;
}

const CHUNK = 16 * 1024;

/** The body of GET /item/<n>?size=S. */
export function itemBody(n: number, size: number): Buffer {
  return new SeededRandom(n).bytes(size);
}

export interface HttpService {
  readonly handler: SessionHandler;
  readonly httpServer: http.Server;
}

export function createHttpService(): HttpService {
  const connections = new WeakMap<object, ConnectionState>();

  const httpServer = http.createServer((req, res) => {
    const conn = connections.get(req.socket);
    if (!conn) {
      res.writeHead(500).end();
      return;
    }
    const index = conn.served++;
    conn.inFlight++;
    // A Date header would make the replayed response differ from the logged one.
    res.sendDate = false;
    res.setHeader('x-request-index', index);
    res.on('finish', () => {
      conn.inFlight--;
      if (conn.inFlight === 0 && req.complete) {
        (req.socket as unknown as ServerSession).checkpoint({ served: conn.served });
      }
    });
    const url = new URL(req.url ?? '/', 'http://lazarus');
    const item = /^\/item\/(\d+)$/.exec(url.pathname);
    if (req.method === 'GET' && item) {
      const size = Math.min(Number(url.searchParams.get('size') ?? 1024), 16 * 1024 * 1024);
      const body = itemBody(Number(item[1]), size);
      res.writeHead(200, { 'content-type': 'application/octet-stream', 'content-length': size });
      let at = 0;
      const pump = (): void => {
        while (at < body.length) {
          const ok = res.write(body.subarray(at, at + CHUNK));
          at += CHUNK;
          if (!ok) {
            res.once('drain', pump);
            return;
          }
        }
        res.end();
      };
      // A session that moves away mid-response closes this response; its new owner regenerates it.
      res.once('close', () => res.off('drain', pump));
      pump();
      return;
    }
    if (req.method === 'POST' && url.pathname === '/echo') {
      const hash = createHash('sha256');
      let bytes = 0;
      req.on('data', (chunk: Buffer) => {
        bytes += chunk.length;
        hash.update(chunk);
      });
      req.on('end', () => {
        res.setHeader('content-type', 'application/json');
        res.end(JSON.stringify({ bytes, sha256: hash.digest('hex'), index }));
      });
      return;
    }
    res.writeHead(404, { 'content-type': 'text/plain' }).end('not found\n');
  });
  // Idle keep-alive connections are closed after a minute, on whichever server holds them then.
  httpServer.keepAliveTimeout = 60_000;

  const handler: SessionHandler = (session) => {
    const restored = session.restoredState as { served: number } | undefined;
    connections.set(session, { served: restored?.served ?? 0, inFlight: 0 });
    session.on('error', () => {
      // Reported by the session server ('sessionError'); node:http sees the close.
    });
    httpServer.emit('connection', session);
  };
  return { handler, httpServer };
}

/**
 * A keep-alive agent whose connections are migratory sessions to a pool member. `sessions` lists
 * the sessions it opened (a test checks that one session carried every request).
 */
export class SessionAgent extends http.Agent {
  readonly sessions: ClientSession[] = [];
  readonly #connect: ConnectOptions;

  constructor(connectOptions: ConnectOptions, agentOptions: http.AgentOptions = {}) {
    super({ keepAlive: true, maxSockets: 1, ...agentOptions });
    this.#connect = connectOptions;
  }

  override createConnection(): ClientSession {
    const session = connect(this.#connect);
    this.sessions.push(session);
    return session;
  }
}
