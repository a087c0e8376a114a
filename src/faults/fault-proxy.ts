import { EventEmitter } from 'node:events';
import net, { type AddressInfo } from 'node:net';
import { createError, ErrorCodes } from '../wire/errors.ts';
import { SeededRandom } from './random.ts';

/**
 * How a connection is broken: 'reset' destroys both sockets (RST), 'close' ends them (FIN),
 * 'stall' silently stops forwarding and leaves both open (a cut link: only keepalive notices).
 */
export type BreakMode = 'reset' | 'close' | 'stall';

export interface FaultSettings {
  /** Break each connection after a random number of forwarded bytes in [min, max] (both directions). */
  breakAfterBytes?: readonly [number, number] | undefined;
  /** Break each connection after a random time in [min, max] ms. */
  breakAfterMs?: readonly [number, number] | undefined;
  /** Modes to pick from at random when breaking. Default ['reset']. */
  breakModes?: readonly BreakMode[];
  /** Delay every forwarded chunk by this many ms (order kept). */
  latencyMs?: number;
}

export interface FaultProxyOptions extends FaultSettings {
  readonly targetPort: number;
  readonly targetHost?: string;
  readonly seed?: number;
}

export interface FaultProxyStats {
  connections: number;
  breaks: number;
  bytesForwarded: number;
}

/** A forwarding action waiting for its latency to pass. */
interface Delayed {
  readonly due: number;
  readonly action: () => void;
}

interface Pair {
  readonly client: net.Socket;
  readonly server: net.Socket;
  /** Bytes left before this pair breaks (Infinity: no byte budget). */
  budget: number;
  timer: NodeJS.Timeout | undefined;
  stalled: boolean;
}

/**
 * A TCP proxy that injects faults between a client and a server on loopback: breaks connections after
 * random byte counts (cutting a chunk at the exact break offset, so frames arrive truncated), after
 * random times, or on demand; stalls paths; adds latency. Deterministic for a given seed.
 * This machine's tc has no netem, hence a proxy of our own.
 */
export class FaultProxy extends EventEmitter {
  readonly #targetPort: number;
  readonly #targetHost: string;
  readonly #random: SeededRandom;
  #settings: FaultSettings;
  readonly #pairs = new Set<Pair>();
  /** Per destination socket, the actions still delayed, in stream order. */
  readonly #lanes = new Map<net.Socket, Delayed[]>();
  readonly #server: net.Server;
  readonly stats: FaultProxyStats = { connections: 0, breaks: 0, bytesForwarded: 0 };

  constructor(options: FaultProxyOptions) {
    super();
    this.#targetPort = options.targetPort;
    this.#targetHost = options.targetHost ?? '127.0.0.1';
    this.#random = new SeededRandom(options.seed ?? 1);
    this.#settings = {};
    this.configure(options);
    // Half-open on both legs: a FIN is forwarded as a FIN and the other direction keeps flowing.
    this.#server = net.createServer({ allowHalfOpen: true }, (client) => this.#onClient(client));
  }

  /** Changes fault settings; applies to connections accepted from now on (and latency at once). */
  configure(settings: FaultSettings): void {
    for (const range of [settings.breakAfterBytes, settings.breakAfterMs]) {
      if (range && !(range[0] >= 0 && range[1] >= range[0])) {
        throw createError(ErrorCodes.INVALID_ARGUMENT, `bad range [${range[0]}, ${range[1]}]`);
      }
    }
    if (settings.breakModes?.length === 0)
      throw createError(ErrorCodes.INVALID_ARGUMENT, 'breakModes is empty');
    if (settings.latencyMs !== undefined && !(settings.latencyMs >= 0)) {
      throw createError(ErrorCodes.INVALID_ARGUMENT, `bad latency ${settings.latencyMs}`);
    }
    this.#settings = { ...this.#settings, ...settings };
  }

  listen(port = 0, host = '127.0.0.1'): Promise<AddressInfo> {
    return new Promise((resolve, reject) => {
      this.#server.once('error', reject);
      this.#server.listen(port, host, () => {
        this.#server.off('error', reject);
        resolve(this.#server.address() as AddressInfo);
      });
    });
  }

  get port(): number {
    return (this.#server.address() as AddressInfo).port;
  }

  /** Open proxied connections. */
  get size(): number {
    return this.#pairs.size;
  }

  /** Breaks every open connection now; returns how many. */
  breakAll(mode?: BreakMode): number {
    const pairs = [...this.#pairs];
    for (const pair of pairs) this.#break(pair, mode);
    return pairs.length;
  }

  async close(): Promise<void> {
    const closed = new Promise<void>((resolve) => this.#server.close(() => resolve()));
    for (const pair of [...this.#pairs]) this.#drop(pair, 'reset');
    await closed;
  }

  #onClient(client: net.Socket): void {
    this.stats.connections++;
    const server = net.connect({ host: this.#targetHost, port: this.#targetPort, allowHalfOpen: true });
    client.setNoDelay(true);
    server.setNoDelay(true);
    const s = this.#settings;
    const pair: Pair = {
      client,
      server,
      budget: s.breakAfterBytes ? this.#random.int(s.breakAfterBytes[0], s.breakAfterBytes[1]) : Infinity,
      timer: undefined,
      stalled: false,
    };
    if (s.breakAfterMs) {
      pair.timer = setTimeout(
        () => this.#break(pair),
        this.#random.int(s.breakAfterMs[0], s.breakAfterMs[1]),
      );
    }
    this.#pairs.add(pair);
    this.#pipe(pair, client, server);
    this.#pipe(pair, server, client);
    for (const socket of [client, server]) {
      socket.on('error', () => this.#drop(pair, 'reset'));
      // A leg that closed cleanly (both directions ended) lets the other finish the same way;
      // a stalled pair has no clean way out, as on a cut link.
      socket.on('close', () => this.#drop(pair, pair.stalled ? 'reset' : 'close'));
    }
  }

  #pipe(pair: Pair, from: net.Socket, to: net.Socket): void {
    from.on('data', (chunk: Buffer) => {
      if (pair.stalled) return;
      let piece = chunk;
      let breakNow = false;
      if (piece.length >= pair.budget) {
        piece = chunk.subarray(0, pair.budget);
        breakNow = true;
      }
      pair.budget -= piece.length;
      this.stats.bytesForwarded += piece.length;
      this.#forward(to, piece, from);
      if (breakNow) this.#break(pair);
    });
    from.on('end', () => {
      // An endpoint giving up on a stalled path: nothing reaches the other one, but the pair is done.
      if (pair.stalled) this.#drop(pair, 'reset');
      // Behind the latency too, or the FIN would overtake the data still delayed.
      else this.#delayed(to, () => to.end());
    });
  }

  #forward(to: net.Socket, piece: Buffer, from: net.Socket): void {
    const write = () => {
      if (!to.destroyed && !to.writableEnded && !to.write(piece) && !from.isPaused()) {
        // Once per pause: delayed writes would otherwise stack a 'drain' listener each.
        from.pause();
        to.once('drain', () => from.resume());
      }
    };
    if (piece.length > 0) this.#delayed(to, write);
  }

  /**
   * Runs `action` (a write to `to`, or its end) after the latency, never before an action queued
   * earlier for `to`: when the latency drops, what is still delayed must not be overtaken, or the
   * byte stream would be reordered (and a FIN could overtake data).
   */
  #delayed(to: net.Socket, action: () => void): void {
    const latency = this.#settings.latencyMs ?? 0;
    let lane = this.#lanes.get(to);
    if (latency === 0 && !lane) {
      action();
      return;
    }
    if (!lane) {
      lane = [];
      this.#lanes.set(to, lane);
    }
    lane.push({ due: Date.now() + latency, action });
    if (lane.length === 1) this.#release(to, lane);
  }

  /** Runs the lane's due actions in order, then waits for the next one. */
  #release(to: net.Socket, lane: Delayed[]): void {
    const now = Date.now();
    while (lane.length > 0 && lane[0]!.due <= now) lane.shift()!.action();
    if (lane.length === 0) this.#lanes.delete(to);
    else setTimeout(() => this.#release(to, lane), lane[0]!.due - now);
  }

  #break(pair: Pair, mode?: BreakMode): void {
    if (!this.#pairs.has(pair)) return;
    const chosen = mode ?? this.#random.pick(this.#settings.breakModes ?? ['reset']);
    // A stalled pair can still be reset or closed (breakAll), but not stalled twice.
    if (pair.stalled && chosen === 'stall') return;
    this.stats.breaks++;
    this.emit('break', chosen);
    if (chosen === 'stall') {
      pair.stalled = true;
      clearTimeout(pair.timer);
      return;
    }
    this.#drop(pair, chosen);
  }

  #drop(pair: Pair, mode: 'reset' | 'close'): void {
    if (!this.#pairs.delete(pair)) return;
    clearTimeout(pair.timer);
    for (const socket of [pair.client, pair.server]) {
      if (mode === 'close') {
        socket.end();
        setTimeout(() => socket.destroy(), 1000).unref();
      } else if (socket.writableEnded) {
        // Node cannot reset a socket that already sent its FIN (EINVAL, and the handle then
        // never closes, hanging process exit): a plain destroy is all that is left.
        socket.destroy();
      } else {
        socket.resetAndDestroy();
      }
    }
  }
}
