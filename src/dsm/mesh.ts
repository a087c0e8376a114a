import { createServer, type Server, type Socket, connect as tcpConnect } from 'node:net';
import { codeFromWire, createError, ErrorCodes, isLazarusError, type LazarusError } from '../wire/errors.ts';
import { FrameDecoder } from '../wire/frame-decoder.ts';
import { acceptorProof, connectorProof, newNonce, verifyProof } from './auth.ts';
import {
  DSM_FRAME_TYPES,
  DSM_MAX_FRAME_SIZE,
  type DsmMessage,
  decodeMessage,
  encodeMessage,
  JOINING,
} from './messages.ts';
import { publish } from './stats.ts';

export const HANDSHAKE_TIMEOUT_MS = 10_000;
/** Connections still in their handshake beyond this are refused, so strangers cannot pile them up. */
export const MAX_PENDING_HANDSHAKES = 64;

export interface Hello {
  readonly node: number;
  readonly host: string;
  readonly port: number;
}

export interface MeshOptions {
  readonly secret: string;
  /** This node's id, or JOINING until the coordinator assigns one. */
  readonly me: number;
  /** Address to listen on; loopback unless told otherwise. */
  readonly host?: string;
  readonly port?: number;
  /** Address peers should use to reach this node (defaults to the listen host). */
  readonly advertiseHost?: string;
  /** A message from an authenticated peer. Throwing closes that peer's connection with the error. */
  onMessage(from: number, msg: DsmMessage): void;
  /** An authenticated peer's connection ended or failed before the mesh was closed. */
  onPeerLost(node: number, err: LazarusError): void;
  /** A peer finished its handshake (after `onJoin` for a joiner). */
  onPeer?(node: number, hello: Hello): void;
  /** Assigns an id to a JOINING connector; throw to refuse it. Without it, joiners are refused. */
  onJoin?(hello: Hello): number;
  /**
   * A node that authenticates with the id of a connected peer replaces that connection (FT: a
   * restarted node comes back while the old connection may still look open, e.g. after a cut link).
   */
  readonly replace?: boolean;
}

type Phase =
  | { kind: 'await-hello' }
  | { kind: 'await-challenge'; nonce: Buffer }
  | { kind: 'await-proof'; hello: Hello; nonce: Uint8Array; myNonce: Buffer }
  | { kind: 'await-welcome' }
  | { kind: 'open'; node: number }
  | { kind: 'closed' };

/**
 * Authenticated TCP full mesh between DSM nodes. Every connection starts with a challenge-response
 * on the cluster secret (auth.ts); anything unexpected (bad frame, wrong proof, a protocol message
 * before authentication) closes just that connection with a typed error, sent to the peer as an
 * ERROR frame when possible.
 */
export class Mesh {
  #me: number;
  readonly #options: MeshOptions;
  readonly #peers = new Map<number, Conn>();
  readonly #conns = new Set<Conn>();
  #server: Server | undefined;
  #address: { host: string; port: number } | undefined;
  #closing = false;
  bytesSent = 0;

  constructor(options: MeshOptions) {
    this.#options = options;
    this.#me = options.me;
  }

  get me(): number {
    return this.#me;
  }

  get address(): { host: string; port: number } {
    if (!this.#address) throw createError(ErrorCodes.PROTOCOL, 'mesh is not listening');
    return this.#address;
  }

  peers(): number[] {
    return [...this.#peers.keys()];
  }

  isConnected(node: number): boolean {
    return this.#peers.has(node);
  }

  async listen(): Promise<{ host: string; port: number }> {
    const server = createServer((socket) => this.#accept(socket));
    this.#server = server;
    const host = this.#options.host ?? '127.0.0.1';
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(this.#options.port ?? 0, host, () => {
        server.off('error', reject);
        resolve();
      });
    });
    const addr = server.address();
    const port = typeof addr === 'object' && addr ? addr.port : 0;
    this.#address = { host: this.#options.advertiseHost ?? host, port };
    return this.#address;
  }

  /** Connects and authenticates to a node; resolves with its id (and this node's, when joining). */
  connect(host: string, port: number): Promise<number> {
    return new Promise((resolve, reject) => {
      const socket = tcpConnect({ host, port });
      const conn = this.#track(socket, { kind: 'await-challenge', nonce: newNonce() }, resolve, reject);
      socket.once('connect', () => {
        const phase = conn.phase;
        if (phase.kind !== 'await-challenge') return;
        const me = this.#address ?? { host: '', port: 0 };
        this.#write(conn, {
          type: 'hello',
          node: this.#me,
          nonce: phase.nonce,
          host: me.host,
          port: me.port,
        });
      });
    });
  }

  /** Sends `msg`; returns its encoded frame (a fresh buffer, never written to again). */
  send(to: number, msg: DsmMessage): Buffer {
    const conn = this.#peers.get(to);
    if (!conn) throw createError(ErrorCodes.DSM_PEER_LOST, `no connection to node ${to}`);
    return this.#write(conn, msg);
  }

  /** Closes a peer's connection with an error (sent to it first). */
  reject(node: number, err: LazarusError): void {
    const conn = this.#peers.get(node);
    if (conn) this.#fail(conn, err);
  }

  /** Closes everything; no peer-lost callbacks after this. Pending writes are flushed first. */
  async close(): Promise<void> {
    this.#closing = true;
    for (const conn of this.#conns) {
      conn.phase = { kind: 'closed' };
      conn.socket.end();
    }
    const server = this.#server;
    if (server) await new Promise<void>((resolve) => server.close(() => resolve()));
    // Peers close their side when they get SHUTDOWN; do not wait on them forever.
    for (const conn of this.#conns) conn.socket.destroySoon();
  }

  #accept(socket: Socket): void {
    if (this.#closing || this.#conns.size - this.#peers.size >= MAX_PENDING_HANDSHAKES) {
      socket.destroy();
      return;
    }
    this.#track(socket, { kind: 'await-hello' });
  }

  #track(
    socket: Socket,
    phase: Phase,
    onOpen?: (node: number) => void,
    onFail?: (err: LazarusError) => void,
  ): Conn {
    socket.setNoDelay(true);
    const sink = {
      onFrame: (type: number, body: Buffer) => this.#onFrame(conn, type, body),
      onStreamStart: () => {},
      onStreamChunk: () => {},
    };
    const decoder = new FrameDecoder(sink, { types: DSM_FRAME_TYPES, maxFrameSize: DSM_MAX_FRAME_SIZE });
    const timeout = () =>
      this.#fail(conn, createError(ErrorCodes.HANDSHAKE_TIMEOUT, 'DSM handshake did not complete in time'));
    const timer = setTimeout(timeout, HANDSHAKE_TIMEOUT_MS).unref();
    const conn: Conn = { socket, phase, onOpen, onFail, decoder, timer };
    this.#conns.add(conn);
    socket.on('data', (chunk: Buffer) => {
      try {
        conn.decoder.push(chunk);
      } catch (err) {
        this.#fail(conn, asLazarus(err));
      }
    });
    socket.on('end', () => {
      try {
        conn.decoder.end();
        this.#fail(conn, createError(ErrorCodes.DSM_PEER_LOST, 'peer closed the connection'));
      } catch (err) {
        this.#fail(conn, asLazarus(err));
      }
    });
    socket.on('error', (err) => this.#fail(conn, createError(ErrorCodes.DSM_PEER_LOST, err.message, err)));
    socket.on('close', () => this.#fail(conn, createError(ErrorCodes.DSM_PEER_LOST, 'connection closed')));
    return conn;
  }

  #onFrame(conn: Conn, type: number, body: Buffer): void {
    try {
      const msg = decodeMessage(type, body);
      if (msg.type === 'error') {
        throw createError(codeFromWire(msg.code), `peer reported: ${msg.message}`);
      }
      this.#step(conn, msg);
    } catch (err) {
      conn.decoder.stop();
      this.#fail(conn, asLazarus(err));
    }
  }

  #step(conn: Conn, msg: DsmMessage): void {
    const phase = conn.phase;
    const { secret } = this.#options;
    switch (phase.kind) {
      case 'await-hello': {
        if (msg.type !== 'hello') throw unexpected(msg.type, 'a hello');
        const myNonce = newNonce();
        conn.phase = { kind: 'await-proof', hello: msg, nonce: msg.nonce, myNonce };
        this.#write(conn, {
          type: 'challenge',
          nonce: myNonce,
          mac: acceptorProof(secret, msg.nonce, myNonce, msg.node),
        });
        return;
      }
      case 'await-challenge': {
        if (msg.type !== 'challenge') throw unexpected(msg.type, 'a challenge');
        verifyProof(
          acceptorProof(secret, phase.nonce, msg.nonce, this.#me),
          msg.mac,
          'the node we connected to',
        );
        conn.phase = { kind: 'await-welcome' };
        this.#write(conn, { type: 'proof', mac: connectorProof(secret, phase.nonce, msg.nonce, this.#me) });
        return;
      }
      case 'await-proof': {
        if (msg.type !== 'proof') throw unexpected(msg.type, 'a proof');
        verifyProof(
          connectorProof(secret, phase.nonce, phase.myNonce, phase.hello.node),
          msg.mac,
          'the connecting node',
        );
        const node = this.#admit(phase.hello);
        this.#write(conn, { type: 'welcome', node: this.#me, assigned: node });
        this.#open(conn, node);
        this.#options.onPeer?.(node, phase.hello);
        return;
      }
      case 'await-welcome': {
        if (msg.type !== 'welcome') throw unexpected(msg.type, 'a welcome');
        if (this.#me === JOINING) this.#me = msg.assigned;
        else if (msg.assigned !== this.#me)
          throw createError(ErrorCodes.PROTOCOL, 'welcome for another node id');
        if (msg.node === this.#me || (this.#peers.has(msg.node) && !this.#options.replace))
          throw createError(ErrorCodes.PROTOCOL, `node ${msg.node} already connected`);
        this.#dropOld(msg.node);
        this.#open(conn, msg.node);
        conn.onOpen?.(msg.node);
        return;
      }
      case 'open': {
        if (
          msg.type === 'hello' ||
          msg.type === 'challenge' ||
          msg.type === 'proof' ||
          msg.type === 'welcome'
        ) {
          throw unexpected(msg.type, 'a DSM message');
        }
        this.#options.onMessage(phase.node, msg);
        return;
      }
      case 'closed':
        return;
    }
  }

  #admit(hello: Hello): number {
    if (hello.node === JOINING) {
      if (!this.#options.onJoin) throw createError(ErrorCodes.PROTOCOL, 'this node does not take joiners');
      return this.#options.onJoin(hello);
    }
    if (hello.node === this.#me || (this.#peers.has(hello.node) && !this.#options.replace)) {
      throw createError(ErrorCodes.PROTOCOL, `node ${hello.node} is already connected`);
    }
    this.#dropOld(hello.node);
    return hello.node;
  }

  /** Closes the connection a re-authenticated node replaces (no peer-lost: the node is back). */
  #dropOld(node: number): void {
    const old = this.#peers.get(node);
    if (!old) return;
    this.#peers.delete(node);
    this.#fail(old, createError(ErrorCodes.DSM_PEER_LOST, `node ${node} reconnected`));
  }

  #open(conn: Conn, node: number): void {
    clearTimeout(conn.timer);
    conn.phase = { kind: 'open', node };
    this.#peers.set(node, conn);
  }

  #write(conn: Conn, msg: DsmMessage): Buffer {
    const frame = encodeMessage(msg);
    this.bytesSent += frame.length;
    conn.socket.write(frame);
    return frame;
  }

  #fail(conn: Conn, err: LazarusError): void {
    const phase = conn.phase;
    if (phase.kind === 'closed') return;
    conn.phase = { kind: 'closed' };
    clearTimeout(conn.timer);
    if (!conn.socket.destroyed && err.code !== ErrorCodes.DSM_PEER_LOST) {
      conn.socket.end(encodeMessage({ type: 'error', code: err.code, message: err.message }));
      conn.socket.destroySoon();
    } else {
      conn.socket.destroy();
    }
    this.#conns.delete(conn);
    conn.onFail?.(err);
    if (phase.kind === 'open' && this.#peers.get(phase.node) === conn) {
      this.#peers.delete(phase.node);
      if (!this.#closing) this.#options.onPeerLost(phase.node, err);
    } else if (!this.#closing) {
      publish({ node: this.#me, event: 'peer-error', code: err.code, message: err.message });
    }
  }
}

interface Conn {
  readonly socket: Socket;
  phase: Phase;
  readonly onOpen: ((node: number) => void) | undefined;
  readonly onFail: ((err: LazarusError) => void) | undefined;
  readonly decoder: FrameDecoder;
  readonly timer: NodeJS.Timeout;
}

function unexpected(type: string, wanted: string): LazarusError {
  return createError(ErrorCodes.PROTOCOL, `got ${type} where ${wanted} was expected`);
}

function asLazarus(err: unknown): LazarusError {
  return isLazarusError(err) ? err : createError(ErrorCodes.PROTOCOL, String(err), err);
}
