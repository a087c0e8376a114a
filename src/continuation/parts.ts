import { MessageChannel, type MessagePort, Worker, workerData } from 'node:worker_threads';
import { createError, ErrorCodes } from '../wire/errors.ts';

/**
 * Multi-part sessions: a session served by the main thread together with a worker thread, the two
 * joined by a MessagePort. The continuation must hold both parts' states and the messages in flight
 * between them, taken at one consistent point, so that a new owner can rebuild the pair and replay
 * the input logged since.
 *
 * The cut is Chandy–Lamport's over the port (FIFO in each direction), with the main part as the
 * initiator: it records its state and sends a marker; the worker, on the marker, records its state
 * and answers with its own marker (one message carrying its state). The main→worker channel's state
 * is empty (the marker is the first marker on it, and every message before it is in the worker's
 * state); the worker→main channel's state is what reaches the main part between its marker and the
 * worker's.
 *
 * A session checkpoint binds a state to the input consumed and the output produced *when
 * checkpoint() is called*, so the main part must not move between recording its state and
 * committing: during a cut the main part stops reading its session (the caller pauses it) and the
 * worker's messages are recorded and held, not handled; post() is refused. When the worker's marker
 * arrives, the state { main, worker, inFlight } is committed (session.checkpoint), then the held
 * messages are handled, in order, as they would have been. On restore the same messages are
 * handed to the main part again before anything else, so the pair continues from the cut.
 *
 * Both parts must be deterministic functions of their state and of the messages and input they
 * receive, and the worker must handle each message synchronously (its state when it answers the
 * marker must include the effect of every earlier message).
 */

/** One consistent snapshot of a two-part session. */
export interface PartsState {
  readonly main: unknown;
  readonly worker: unknown;
  /** Messages the worker had sent and the main part had not handled at the cut, in order. */
  readonly inFlight: readonly unknown[];
}

type Envelope =
  | { readonly k: 'msg'; readonly m: unknown }
  | { readonly k: 'marker'; readonly id: number; readonly state?: unknown };

interface PartInit {
  readonly port: MessagePort;
  readonly restored: { readonly state: unknown } | undefined;
  readonly data: unknown;
}

export interface SessionPartsOptions {
  /** The worker's module; it calls servePart(). A .ts module is loaded through tsx. */
  readonly worker: URL;
  /** The state committed at the last cut, when restoring a session on a new owner. */
  readonly restored?: PartsState | undefined;
  /** The main part's handler for the worker's messages. */
  readonly onMessage: (message: unknown) => void;
  /** The worker failed or exited unexpectedly. */
  readonly onError?: (err: Error) => void;
  /** Passed to the worker's start() (configuration, not state). */
  readonly data?: unknown;
}

interface Cut {
  readonly id: number;
  readonly mainState: () => unknown;
  readonly commit: (state: PartsState) => void;
  readonly resolve: () => void;
  readonly reject: (err: Error) => void;
  readonly recorded: unknown[];
}

/** The main thread's end of a two-part session: starts the worker, relays messages, takes cuts. */
export class SessionParts {
  /** The main part's state at the cut being restored; undefined for a new session. */
  readonly restoredMain: unknown;
  readonly #worker: Worker;
  readonly #port: MessagePort;
  readonly #onMessage: (message: unknown) => void;
  /** Messages waiting for open(): the restored in-flight ones, then any that arrive before it. */
  #held: unknown[] | undefined;
  #cut: Cut | undefined;
  #nextCut = 1;
  #closed = false;

  constructor(options: SessionPartsOptions) {
    this.#onMessage = options.onMessage;
    this.restoredMain = options.restored?.main;
    this.#held = [...(options.restored?.inFlight ?? [])];
    const { port1, port2 } = new MessageChannel();
    this.#port = port1;
    const init: PartInit = {
      port: port2,
      restored: options.restored ? { state: options.restored.worker } : undefined,
      data: options.data,
    };
    this.#worker = startWorker(options.worker, init, port2);
    this.#worker.on('error', (err) => this.#fail(err, options.onError));
    this.#worker.on('exit', (code) => {
      if (!this.#closed) this.#fail(new Error(`part worker exited with code ${code}`), options.onError);
    });
    port1.on('message', (env: Envelope) => this.#receive(env));
  }

  /**
   * Starts handing the worker's messages to the main part: first those in flight at the restored
   * cut, in order. Call it once the main part is ready (its state restored, its listeners set).
   */
  open(): void {
    const held = this.#held;
    this.#held = undefined;
    for (const m of held ?? []) this.#onMessage(m);
  }

  /** Sends a message to the worker. Refused during a cut: it would fall after the marker yet before the commit. */
  post(message: unknown): void {
    if (this.#closed) throw createError(ErrorCodes.INVALID_ARGUMENT, 'parts are closed');
    if (this.#cut) throw createError(ErrorCodes.INVALID_ARGUMENT, 'post() during a snapshot');
    this.#port.postMessage({ k: 'msg', m: message } satisfies Envelope);
  }

  /** True from snapshot() until its commit. */
  get cutting(): boolean {
    return this.#cut !== undefined;
  }

  /**
   * Takes a consistent snapshot of both parts and the channel. The main part must stay still until
   * the commit (pause its session input; it receives no worker message meanwhile). `commit` runs
   * with the state at the cut (typically `(s) => session.checkpoint(s)`); then the messages held
   * during the cut are handled and the promise resolves.
   */
  snapshot(mainState: () => unknown, commit: (state: PartsState) => void): Promise<void> {
    if (this.#closed) return Promise.reject(createError(ErrorCodes.INVALID_ARGUMENT, 'parts are closed'));
    if (this.#cut)
      return Promise.reject(createError(ErrorCodes.INVALID_ARGUMENT, 'a snapshot is already running'));
    return new Promise<void>((resolve, reject) => {
      const id = this.#nextCut++;
      this.#cut = { id, mainState, commit, resolve, reject, recorded: [] };
      this.#port.postMessage({ k: 'marker', id } satisfies Envelope);
    });
  }

  /** Stops the worker. A snapshot in progress is rejected. */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    this.#cut?.reject(createError(ErrorCodes.SESSION_CLOSED, 'parts closed during a snapshot'));
    this.#cut = undefined;
    this.#port.close();
    await this.#worker.terminate();
  }

  #receive(env: Envelope): void {
    if (this.#closed) return;
    if (env.k === 'msg') {
      if (this.#cut) this.#cut.recorded.push(env.m);
      else if (this.#held) this.#held.push(env.m);
      else this.#onMessage(env.m);
      return;
    }
    const cut = this.#cut;
    if (!cut || env.id !== cut.id) return;
    this.#cut = undefined;
    try {
      cut.commit({ main: cut.mainState(), worker: env.state, inFlight: cut.recorded });
    } catch (err) {
      cut.reject(err as Error);
      return;
    }
    // Held during the cut; the main part handles them now, after the commit, as they are in the state.
    for (const m of cut.recorded) {
      if (this.#closed) break;
      if (this.#held) this.#held.push(m);
      else this.#onMessage(m);
    }
    cut.resolve();
  }

  #fail(err: Error, onError: ((err: Error) => void) | undefined): void {
    if (this.#closed) return;
    void this.close();
    onError?.(err);
  }
}

/** The worker's part of a session. */
export interface Part<S> {
  /** Called once: with the state recorded at the restored cut, or undefined for a new session. */
  start(restored: S | undefined, post: (message: unknown) => void, data: unknown): void;
  /** Handles a message from the main part; must finish its effect on the state before returning. */
  onMessage(message: unknown): void;
  /** The part's state, structured-cloneable. */
  snapshot(): S;
}

/** Runs in the worker: serves one part of a session (see SessionParts). */
export function servePart<S>(part: Part<S>): void {
  const init = workerData as PartInit;
  const port = init.port;
  part.start(
    init.restored?.state as S | undefined,
    (m) => port.postMessage({ k: 'msg', m } satisfies Envelope),
    init.data,
  );
  port.on('message', (env: Envelope) => {
    if (env.k === 'msg') part.onMessage(env.m);
    // Chandy–Lamport: record the state on the first (only) marker and send ours behind every
    // message already sent, in one message.
    else port.postMessage({ k: 'marker', id: env.id, state: part.snapshot() } satisfies Envelope);
  });
}

/**
 * Starts the worker. From the sources the worker module is .ts: on Node 20 `--import tsx` in a
 * worker's execArgv does not reach its entry module, so the worker first registers tsx itself.
 */
function startWorker(url: URL, init: PartInit, port: MessagePort): Worker {
  const options = { workerData: init, transferList: [port] };
  if (!url.pathname.endsWith('.ts')) return new Worker(url, options);
  const tsx = import.meta.resolve('tsx/esm/api');
  const boot = `import(${JSON.stringify(tsx)}).then((m) => { m.register(); return import(${JSON.stringify(url.href)}); });`;
  return new Worker(boot, { ...options, eval: true });
}
