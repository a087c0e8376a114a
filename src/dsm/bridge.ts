import { MessageChannel, type MessagePort, receiveMessageOnPort, type Worker } from 'node:worker_threads';
import { codeFromWire, createError, ErrorCodes, isLazarusError, type LazarusError } from '../wire/errors.ts';
import type { DsmParams, DsmResult } from './app.ts';
import type { Syncer, WorkerRequest } from './context.ts';
import type { CheckpointPolicy } from './ft/policy.ts';
import { startWorker } from './modules.ts';
import type { PageBuffers, Region } from './pages.ts';
import type { DsmProtocol } from './protocol.ts';

/**
 * The app worker and the protocol's main thread talk over a MessagePort plus one shared word: the
 * worker posts a request and sleeps on the word (Atomics.wait); the main thread does the protocol
 * work asynchronously, posts the reply, then flips the word; the worker wakes and reads the reply
 * synchronously (receiveMessageOnPort). The app thus sees plain blocking calls.
 */

export type BridgeRequest =
  | WorkerRequest
  /** The app is loaded; the reply comes when the whole cluster may start. */
  | { op: 'ready' }
  | { op: 'done'; result: DsmResult | undefined; ms: number }
  | { op: 'failed'; code: string; message: string };

type Reply = { ok: true } | { ok: false; code: string; message: string };

export interface WorkerInit {
  readonly me: number;
  readonly nodes: number;
  readonly pageSize: number;
  readonly numPages: number;
  readonly homes: Uint16Array;
  readonly regions: readonly Region[];
  readonly buffers: PageBuffers;
  readonly app: string;
  readonly params: DsmParams;
  readonly ctl: SharedArrayBuffer;
  readonly port: MessagePort;
  /** Fault tolerance on (safe points reach the main thread). */
  readonly ft: boolean;
  /**
   * FT: the checkpoint policy and the forced flag shared with the main thread's clock; the worker
   * runs the node's checkpoint clock and calls the main thread only at safe points that are due.
   */
  readonly clock?: { readonly policy: CheckpointPolicy; readonly forced: SharedArrayBuffer };
  /** App state of the checkpoint this node restarted from. */
  readonly restored?: readonly number[];
}

/** Worker side: blocking calls to the main thread. */
export class SyncCaller implements Syncer {
  readonly #port: MessagePort;
  readonly #ctl: Int32Array;

  constructor(port: MessagePort, ctl: SharedArrayBuffer) {
    this.#port = port;
    this.#ctl = new Int32Array(ctl);
  }

  call(req: BridgeRequest): void {
    Atomics.store(this.#ctl, 0, 0);
    this.#port.postMessage(req);
    // The word, not the wake-up, says the answer is there: the notify of the previous answer may
    // come late (its thread paused between the store and the notify, after this one saw the store)
    // and wake this wait early.
    while (Atomics.load(this.#ctl, 0) === 0) Atomics.wait(this.#ctl, 0, 0);
    const got = receiveMessageOnPort(this.#port);
    const reply = got?.message as Reply | undefined;
    if (!reply) throw createError(ErrorCodes.PROTOCOL, 'worker woke without a reply');
    if (!reply.ok) throw createError(codeFromWire(reply.code), reply.message);
  }
}

export interface WorkerOutcome {
  readonly result: DsmResult | undefined;
  /** Compute time of the app on this node: from the start barrier to the barrier after run(). */
  readonly ms: number;
}

/** Main side: runs the app worker and serves its requests with the node's protocol. */
export class WorkerHost {
  readonly loaded: Promise<void>;
  readonly finished: Promise<WorkerOutcome>;
  readonly #worker: Worker;
  readonly #port: MessagePort;
  readonly #ctl: Int32Array;
  readonly #protocol: DsmProtocol;
  #go: (() => void) | undefined;
  #goPromise: Promise<void>;
  #fail: (err: LazarusError) => void = () => {};

  readonly #onSafePoint: ((state: number[], due?: boolean) => Promise<void>) | undefined;

  constructor(
    protocol: DsmProtocol,
    init: Omit<WorkerInit, 'ctl' | 'port'>,
    onSafePoint?: (state: number[], due?: boolean) => Promise<void>,
  ) {
    this.#protocol = protocol;
    this.#onSafePoint = onSafePoint;
    const { port1, port2 } = new MessageChannel();
    const ctl = new SharedArrayBuffer(4);
    this.#port = port1;
    this.#ctl = new Int32Array(ctl);
    this.#goPromise = new Promise((resolve) => {
      this.#go = resolve;
    });
    let loaded!: () => void;
    this.loaded = new Promise((resolve) => {
      loaded = resolve;
    });
    this.finished = new Promise<WorkerOutcome>((resolve, reject) => {
      this.#fail = reject;
      port1.on('message', (req: BridgeRequest) => {
        if (req.op === 'failed') {
          // Answered before the run is failed: whoever awaits `finished` may close the port at once.
          this.#reply({ ok: true });
          this.#fail(
            createError(ErrorCodes.DSM_APP_FAILED, `node ${protocol.me}: ${req.code}: ${req.message}`),
          );
          return;
        }
        this.#serve(req, loaded, resolve).then(
          () => this.#reply({ ok: true }),
          (err: unknown) => {
            const e = asLazarus(err);
            this.#reply({ ok: false, code: e.code, message: e.message });
          },
        );
      });
    });
    this.finished.catch(() => {});
    this.#worker = startWorker('worker', {
      workerData: { ...init, ctl, port: port2 },
      transferList: [port2],
    });
    this.#worker.on('error', (err) =>
      this.#fail(createError(ErrorCodes.DSM_APP_FAILED, `app worker: ${err.message}`, err)),
    );
    this.#worker.on('exit', (code) =>
      this.#fail(createError(ErrorCodes.DSM_APP_FAILED, `app worker exited (${code})`)),
    );
  }

  /** Lets the worker start computing (all nodes are connected and loaded). */
  go(): void {
    this.#go?.();
  }

  /** Ends the worker; a pending run rejects with `err`. */
  async terminate(err?: LazarusError): Promise<void> {
    this.#fail(err ?? createError(ErrorCodes.ABORTED, 'app worker terminated'));
    this.#port.close();
    await this.#worker.terminate();
  }

  async #serve(
    req: Exclude<BridgeRequest, { op: 'failed' }>,
    loaded: () => void,
    done: (o: WorkerOutcome) => void,
  ): Promise<void> {
    const p = this.#protocol;
    // Intervals the app ended at safe points since its last request: closed first, in order.
    if ('closed' in req && req.closed) for (const flush of req.closed) await p.closeInterval(flush);
    switch (req.op) {
      case 'ready':
        loaded();
        return this.#goPromise;
      case 'fetch':
        return p.fetch(req.pages);
      case 'acquire':
        await p.acquire(req.lock, req.flush);
        return p.fetch(pagesIn(req.prefetch));
      case 'release':
        return p.release(req.lock, req.flush);
      case 'barrier':
        return p.barrier(req.flush, pagesIn(req.prefetch));
      case 'safe-point':
        await p.closeInterval(req.flush);
        return this.#onSafePoint?.(req.state, req.due);
      case 'done':
        done({ result: req.result, ms: req.ms });
        return;
    }
  }

  #reply(reply: Reply): void {
    this.#port.postMessage(reply);
    Atomics.store(this.#ctl, 0, 1);
    Atomics.notify(this.#ctl, 0);
  }
}

/** Expands (first, last) page pairs. */
function pagesIn(ranges: readonly number[]): number[] {
  const pages: number[] = [];
  for (let i = 0; i + 1 < ranges.length; i += 2)
    for (let p = ranges[i]!; p <= ranges[i + 1]!; p++) pages.push(p);
  return pages;
}

function asLazarus(err: unknown): LazarusError {
  return isLazarusError(err) ? err : createError(ErrorCodes.DSM_APP_FAILED, String(err), err);
}
