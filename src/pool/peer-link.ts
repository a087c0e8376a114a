import diagnostics_channel from 'node:diagnostics_channel';
import { EventEmitter } from 'node:events';
import net, { type AddressInfo } from 'node:net';
import { newNonce } from '../session/credentials.ts';
import type { Surrender } from '../session/server.ts';
import { createError, ErrorCodes, isLazarusError, type LazarusError } from '../wire/errors.ts';
import { FrameDecoder } from '../wire/frame-decoder.ts';
import {
  checkPeerProof,
  type DrainReport,
  decodePeer,
  encodePeer,
  PeerFrame,
  type PullRefusal,
  peerDecoderOptions,
  peerProof,
} from './peer-protocol.ts';

/** A continuation is at most this large on the wire (snapshot + logs). */
const MAX_PEER_FRAME = 256 * 1024 * 1024;
/** Before authentication only hellos and proofs are exchanged: nobody unauthenticated gets a big buffer. */
const MAX_HANDSHAKE_FRAME = 1024;

export const peerChannels = {
  /** { error, remoteAddress } a peer was refused (bad secret, bad frame). */
  refused: diagnostics_channel.channel('lazarus:pool:refused'),
};

export type PullResult =
  | { readonly kind: 'continuation'; readonly body: Buffer }
  | ({ readonly kind: 'refused' } & PullRefusal);

/**
 * How a push ended: `accepted` and `refused` are the receiver's answers; `unsent` means it never left
 * this member; `unknown`, it left but no answer came (the receiver may have adopted the session).
 */
export type PushOutcome = 'accepted' | 'refused' | 'unsent' | 'unknown';

/** What a member serves to its peers. */
export interface PeerService {
  /**
   * Freezes the session and returns its encoded continuation, or a refusal (with a redirect when it
   * moved); later, when the session is being pushed elsewhere just now.
   */
  pull(sessionId: Buffer, newOwner: string, epoch: number): Surrender | Promise<Surrender>;
  /** Adopts a session `from` hands over unasked (its client said it is moving here); throws to refuse. */
  accept(continuation: Buffer, from: string): void;
  drain(deadlineMs: number): Promise<DrainReport>;
}

export interface PeerCredentials {
  readonly selfId: string;
  readonly secret: Buffer;
}

interface Pending {
  readonly resolve: (frame: { type: number; body: Buffer }) => void;
  readonly reject: (err: Error) => void;
  readonly timer: NodeJS.Timeout;
}

/**
 * One authenticated server-to-server connection. Frames are decoded by the shared FrameDecoder;
 * requests carry ids so several pulls can be in flight at once.
 */
export class PeerLink extends EventEmitter {
  readonly #socket: net.Socket;
  readonly #decoder: FrameDecoder;
  #onFrame: (type: number, body: Buffer) => void = () => {};
  readonly #pending = new Map<number, Pending>();
  #nextId = 1;
  #closed = false;
  #batching = false;
  /** Id of the member at the other end, once authenticated. */
  peerId = '';

  private constructor(socket: net.Socket) {
    super();
    this.#socket = socket;
    socket.setNoDelay(true);
    this.#decoder = new FrameDecoder(
      { onFrame: (t, b) => this.#onFrame(t, b), onStreamStart: () => {}, onStreamChunk: () => {} },
      peerDecoderOptions(MAX_HANDSHAKE_FRAME),
    );
    socket.on('data', (chunk: Buffer) => {
      try {
        this.#decoder.push(chunk);
      } catch (err) {
        if (!isLazarusError(err)) throw err;
        this.fail(err);
      }
    });
    socket.on('error', (err) => this.close(err));
    socket.on('close', () =>
      this.close(createError(ErrorCodes.ORIGIN_UNREACHABLE, 'peer connection closed')),
    );
  }

  get closed(): boolean {
    return this.#closed;
  }

  /** Connects to a member's peer port and authenticates both ways. */
  static dial(host: string, port: number, creds: PeerCredentials, timeoutMs: number): Promise<PeerLink> {
    const link = new PeerLink(net.connect({ host, port }));
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        link.close();
        reject(
          createError(
            ErrorCodes.ORIGIN_UNREACHABLE,
            `peer ${host}:${port} did not answer within ${timeoutMs} ms`,
          ),
        );
      }, timeoutMs);
      const myNonce = newNonce();
      link.once('close', (err: Error | undefined) => {
        clearTimeout(timer);
        reject(createError(ErrorCodes.ORIGIN_UNREACHABLE, `cannot reach peer ${host}:${port}`, err));
      });
      link.#onFrame = (type, body) => {
        if (type === PeerFrame.HELLO) {
          const hello = decodePeer.hello(body);
          link.peerId = hello.id;
          link.#send(
            encodePeer.auth(
              creds.selfId,
              peerProof(creds.secret, 'lz-peer-auth', hello.nonce, creds.selfId),
              myNonce,
            ),
          );
        } else if (type === PeerFrame.WELCOME) {
          checkPeerProof(creds.secret, 'lz-peer-welcome', myNonce, link.peerId, decodePeer.welcome(body));
          clearTimeout(timer);
          link.removeAllListeners('close');
          link.#decoder.limit(MAX_PEER_FRAME);
          link.#onFrame = (t, b) => link.#onResponse(t, b);
          resolve(link);
        } else if (type === PeerFrame.REFUSED) {
          const r = decodePeer.refused(body);
          throw createError(ErrorCodes.PEER_AUTH_FAILED, `peer refused us: ${r.code}: ${r.message}`);
        } else {
          throw createError(ErrorCodes.PROTOCOL, `unexpected peer frame 0x${type.toString(16)} in handshake`);
        }
      };
    });
  }

  /** Serves an accepted connection: authenticates the dialer, then answers its requests. */
  static accept(
    socket: net.Socket,
    creds: PeerCredentials,
    service: PeerService,
    handshakeMs: number,
  ): PeerLink {
    const link = new PeerLink(socket);
    const nonce = newNonce();
    const timer = setTimeout(
      () => link.fail(createError(ErrorCodes.HANDSHAKE_TIMEOUT, 'peer did not authenticate in time')),
      handshakeMs,
    ).unref();
    link.once('close', () => clearTimeout(timer));
    link.#onFrame = (type, body) => {
      if (type !== PeerFrame.AUTH)
        throw createError(ErrorCodes.PEER_AUTH_FAILED, 'peer must authenticate first');
      const auth = decodePeer.auth(body);
      checkPeerProof(creds.secret, 'lz-peer-auth', nonce, auth.id, auth.proof);
      clearTimeout(timer);
      link.peerId = auth.id;
      link.#send(encodePeer.welcome(peerProof(creds.secret, 'lz-peer-welcome', auth.nonce, creds.selfId)));
      link.#decoder.limit(MAX_PEER_FRAME);
      link.#onFrame = (t, b) => link.#onRequest(t, b, service);
    };
    link.#send(encodePeer.hello(nonce, creds.selfId));
    return link;
  }

  async pull(sessionId: Buffer, newOwner: string, epoch: number, timeoutMs: number): Promise<PullResult> {
    const id = this.#nextId++;
    const reply = await this.#request(id, encodePeer.pull(id, sessionId, newOwner, epoch), timeoutMs);
    if (reply.type === PeerFrame.CONTINUATION)
      return { kind: 'continuation', body: decodePeer.continuation(reply.body).body };
    return { kind: 'refused', ...decodePeer.pullRefused(reply.body) };
  }

  /** Hands a session's continuation (in pieces) to the peer, unasked. Never throws. */
  async push(parts: readonly Buffer[], timeoutMs: number): Promise<PushOutcome> {
    if (this.#closed) return 'unsent';
    const id = this.#nextId++;
    try {
      const reply = await this.#request(id, encodePeer.pushParts(id, parts), timeoutMs);
      if (reply.type === PeerFrame.PUSH_ACK) {
        decodePeer.pushAck(reply.body);
        return 'accepted';
      }
      decodePeer.pushRefused(reply.body);
      return 'refused';
    } catch {
      return 'unknown';
    }
  }

  async drain(deadlineMs: number, timeoutMs: number): Promise<DrainReport> {
    const id = this.#nextId++;
    const reply = await this.#request(id, encodePeer.drain(id, deadlineMs), timeoutMs);
    const { moved, remaining, ms } = decodePeer.drainReport(reply.body);
    return { moved, remaining, ms };
  }

  #request(
    id: number,
    frame: Buffer | readonly Buffer[],
    timeoutMs: number,
  ): Promise<{ type: number; body: Buffer }> {
    if (this.#closed)
      return Promise.reject(createError(ErrorCodes.ORIGIN_UNREACHABLE, 'peer connection is closed'));
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.#pending.delete(id);
        reject(
          createError(
            ErrorCodes.ORIGIN_UNREACHABLE,
            `peer ${this.peerId} did not answer within ${timeoutMs} ms`,
          ),
        );
      }, timeoutMs);
      this.#pending.set(id, { resolve, reject, timer });
      if (Buffer.isBuffer(frame)) this.#send(frame);
      else this.#sendAll(frame);
    });
  }

  #onResponse(type: number, body: Buffer): void {
    if (
      type !== PeerFrame.CONTINUATION &&
      type !== PeerFrame.PULL_REFUSED &&
      type !== PeerFrame.PUSH_ACK &&
      type !== PeerFrame.PUSH_REFUSED &&
      type !== PeerFrame.DRAIN_REPORT
    ) {
      throw createError(ErrorCodes.PROTOCOL, `unexpected peer frame 0x${type.toString(16)}`);
    }
    if (body.length < 4) throw createError(ErrorCodes.MALFORMED_FRAME, 'peer response without a request id');
    const id = body.readUInt32BE(0);
    const pending = this.#pending.get(id);
    if (!pending) return; // answered after its timeout
    this.#pending.delete(id);
    clearTimeout(pending.timer);
    pending.resolve({ type, body });
  }

  #onRequest(type: number, body: Buffer, service: PeerService): void {
    if (type === PeerFrame.PULL) {
      const req = decodePeer.pull(body);
      // A member pulls for itself only: nobody can send another member's sessions elsewhere.
      const result: Surrender | Promise<Surrender> =
        req.newOwner === this.peerId
          ? service.pull(req.sessionId, req.newOwner, req.epoch)
          : {
              kind: 'refused',
              code: ErrorCodes.PEER_AUTH_FAILED,
              message: `peer ${this.peerId} cannot pull a session for ${req.newOwner}`,
              redirect: '',
            };
      const answer = (r: Surrender) => {
        if (r.kind === 'continuation') this.#sendAll(encodePeer.continuationParts(req.id, r.parts));
        else this.#send(encodePeer.pullRefused(req.id, r));
      };
      if (result instanceof Promise) result.then(answer);
      else answer(result);
    } else if (type === PeerFrame.PUSH) {
      const req = decodePeer.push(body);
      try {
        service.accept(req.body, this.peerId);
        this.#send(encodePeer.pushAck(req.id));
      } catch (err) {
        const code = isLazarusError(err) ? err.code : ErrorCodes.MIGRATION_FAILED;
        this.#send(encodePeer.pushRefused(req.id, code, (err as Error).message));
      }
    } else if (type === PeerFrame.DRAIN) {
      const req = decodePeer.drain(body);
      service.drain(req.deadlineMs).then(
        (report) => this.#send(encodePeer.drainReport(req.id, report)),
        (err: Error) => this.fail(createError(ErrorCodes.PROTOCOL, 'drain failed', err)),
      );
    } else {
      throw createError(ErrorCodes.PROTOCOL, `peer frame 0x${type.toString(16)} is not a request`);
    }
  }

  /** Pieces of one frame, written with the rest of this turn's frames. */
  #sendAll(pieces: readonly Buffer[]): void {
    if (this.#closed) return;
    this.#batch();
    for (const p of pieces) this.#socket.write(p);
  }

  #send(frame: Buffer): void {
    if (this.#closed) return;
    this.#batch();
    this.#socket.write(frame);
  }

  /**
   * Holds this turn of the event loop's frames for one writev at its end: a drain moves hundreds of
   * sessions a turn, and their pushes, answers and acks need not cost a system call each.
   */
  #batch(): void {
    if (this.#batching) return;
    this.#batching = true;
    this.#socket.cork();
    setImmediate(() => {
      this.#batching = false;
      this.#socket.uncork();
    });
  }

  /** Closes because of a protocol or authentication error, telling the peer why. */
  fail(err: LazarusError): void {
    if (this.#closed) return;
    peerChannels.refused.publish({ error: err, remoteAddress: this.#socket.remoteAddress });
    this.emit('peerError', err);
    this.#socket.end(encodePeer.refused(err.code, err.message));
    setTimeout(() => this.#socket.destroy(), 1000).unref();
    this.close(err);
  }

  close(err?: Error): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#decoder.stop();
    this.#socket.destroy();
    for (const [id, p] of this.#pending) {
      clearTimeout(p.timer);
      p.reject(createError(ErrorCodes.ORIGIN_UNREACHABLE, `peer ${this.peerId} went away`, err));
      this.#pending.delete(id);
    }
    this.emit('close', err);
  }
}

/** Accepts peer connections on a member's peer port. Emits 'peerError' (err) for refused peers. */
export class PeerServer extends EventEmitter {
  readonly #server: net.Server;
  readonly #links = new Set<PeerLink>();

  constructor(creds: PeerCredentials, service: PeerService, handshakeMs = 5000) {
    super();
    this.#server = net.createServer((socket) => {
      const link = PeerLink.accept(socket, creds, service, handshakeMs);
      this.#links.add(link);
      link.on('peerError', (err: Error) => this.emit('peerError', err));
      link.once('close', () => this.#links.delete(link));
    });
  }

  listen(port: number, host: string): Promise<AddressInfo> {
    return new Promise((resolve, reject) => {
      this.#server.once('error', reject);
      this.#server.listen(port, host, () => {
        this.#server.off('error', reject);
        resolve(this.#server.address() as AddressInfo);
      });
    });
  }

  async close(): Promise<void> {
    const closed = new Promise<void>((resolve) => this.#server.close(() => resolve()));
    for (const link of this.#links) link.close();
    await closed;
  }
}

/** Outbound links to other members, opened on first use and kept for the next. */
export class PeerLinks {
  readonly #creds: PeerCredentials;
  readonly #links = new Map<string, Promise<PeerLink>>();

  constructor(creds: PeerCredentials) {
    this.#creds = creds;
  }

  get(key: string, host: string, port: number, timeoutMs: number): Promise<PeerLink> {
    const existing = this.#links.get(key);
    if (existing) return existing;
    const link = PeerLink.dial(host, port, this.#creds, timeoutMs);
    this.#links.set(key, link);
    link.then(
      (l) => l.once('close', () => this.#links.delete(key)),
      () => this.#links.delete(key),
    );
    return link;
  }

  closeAll(): void {
    for (const link of this.#links.values())
      link.then(
        (l) => l.close(),
        () => {},
      );
    this.#links.clear();
  }
}
