import type { Continuation } from '../continuation/continuation.ts';
import { InputLog } from '../continuation/input-log.ts';
import { OutputComparator } from '../continuation/replay.ts';
import { deserializeState, serializeState } from '../continuation/snapshot.ts';
import { createError, ErrorCodes } from '../wire/errors.ts';
import { type Connection, discardingHandler } from './connection.ts';
import { channels } from './diagnostics.ts';
import { type Advice, AdviceKind, type AdviceKindValue, decode, encode, FrameType } from './protocol.ts';
import { SessionStream, type SessionTuning } from './session-stream.ts';

/** What a ServerSession needs from its server. */
export interface SessionHost {
  readonly resumeTimeout: number;
  /** Hands a confirmed session to the application. */
  handOver(session: ServerSession): void;
  retire(session: ServerSession, err: Error | null): void;
  /** The POOL frame that tells a client its alternates, if in a pool. */
  poolFrame(): Buffer | undefined;
  /** The client is moving the session to member `to`. */
  handoff(session: ServerSession, to: string): void;
  emit(event: 'sessionError', err: Error, session: ServerSession): boolean;
  emit(event: 'connectionError', err: Error, remoteAddress: string | undefined): boolean;
}

export interface ContinuationOptions {
  /** Keep the input log and output since the last checkpoint (needed to migrate the session). */
  readonly enabled: boolean;
  /** Log size past which the handler is asked to checkpoint and input is held back until it does. */
  readonly logBudget: number;
}

interface Checkpoint {
  readonly snapshot: Buffer | undefined;
  readonly inputOffset: number;
  readonly outputOffset: number;
}

export interface CheckpointEvent {
  readonly inputOffset: number;
  readonly outputOffset: number;
  readonly snapshotBytes: number;
}

/**
 * The server end of one session. The application gets it once the client has confirmed the open, and
 * uses it as a Duplex; it survives any number of the client's reconnects.
 *
 * With continuations on, the application calls checkpoint(state) at points it chooses; the session
 * logs input and keeps output after that point, so another server can rebuild the session (restore
 * the state, replay the input, compare the output) when the client migrates.
 *
 * Events beyond Duplex: 'resumed', 'checkpointNeeded' (log over budget: checkpoint now; input waits),
 * 'checkpoint' (CheckpointEvent), 'migrated' ({ to }).
 */
export class ServerSession extends SessionStream {
  readonly side = 'server';
  readonly sessionId: string;
  readonly #host: SessionHost;
  readonly #cont: ContinuationOptions;
  #confirmed = false;
  #resumeTimer: NodeJS.Timeout | undefined;
  /** The client connection a freeze left: closed at hand-over or thaw. */
  #frozenConnection: Connection | undefined;
  #log: InputLog | undefined;
  #checkpoint: Checkpoint = { snapshot: undefined, inputOffset: 0, outputOffset: 0 };
  #checkpointRequested = false;
  /** Compares replayed output with the old owner's log; undefined once caught up. */
  #replay: OutputComparator | undefined;
  /** Input logged by the old owner, pushed to the handler once it has been handed the session. */
  #pendingReplayInput: { input: Buffer; fin: boolean } | undefined;
  /** State the application saved at its last checkpoint on the previous owner; undefined for a new session. */
  readonly restoredState: unknown;

  constructor(
    host: SessionHost,
    sessionId: string,
    tuning: SessionTuning,
    cont: ContinuationOptions,
    restored?: Continuation,
  ) {
    super(tuning);
    this.sessionId = sessionId;
    this.#host = host;
    this.#cont = cont;
    // A session error must never crash the server, even if the application forgot a listener.
    this.on('error', (err) => host.emit('sessionError', err, this));
    if (cont.enabled) {
      this.#log = new InputLog(0);
      this.retainOutput(0);
    }
    if (restored) {
      this.restoredState = restored.snapshot ? deserializeState(restored.snapshot) : undefined;
      this.#restore(restored);
    }
  }

  /** True while the handler re-executes the logged input after a migration (its output is compared, not sent). */
  get replaying(): boolean {
    return this.#replay !== undefined;
  }

  /**
   * Saves the handler's state, bound to the input consumed and the output produced so far. The logs
   * before this point are dropped. `state` is structured-cloned (v8.serialize) unless it is a Buffer.
   */
  checkpoint(state: unknown): void {
    const log = this.#log;
    if (!log)
      throw createError(
        ErrorCodes.INVALID_ARGUMENT,
        'checkpoint() needs continuations enabled on the server',
      );
    const snapshot = serializeState(state);
    const inputOffset = this.receivedPayload - this.readableLength;
    const outputOffset = this.#producedOutput();
    this.#checkpoint = { snapshot, inputOffset, outputOffset };
    log.trimTo(inputOffset);
    this.retainOutput(outputOffset);
    if (this.#checkpointRequested && !this.#overBudget()) {
      this.#checkpointRequested = false;
      this.holdInput(false);
    }
    const event: CheckpointEvent = { inputOffset, outputOffset, snapshotBytes: snapshot.length };
    this.emit('checkpoint', event);
  }

  /** Tells the client to move (it decides when and where, through its policies). */
  advise(kind: AdviceKindValue, target = ''): void {
    const advice: Advice = { kind, target, pushed: false };
    this.connection?.send(encode.advice(advice));
  }

  /**
   * @internal A draining server is handing this session to `target` now: its client is told to
   * resume there (and to send no HANDOFF). Must precede freeze(), which detaches the connection.
   */
  advisePushed(target: string): void {
    this.connection?.send(encode.advice({ kind: AdviceKind.DRAIN, target, pushed: true }));
  }

  /**
   * Stops the session where it stands (the client's connection is closed, so no input arrives) and
   * returns its continuation. The session stays here until handedOver(); if the hand-over does not
   * happen, it waits for its client to resume as after any break.
   */
  freeze(): Continuation {
    this.#frozenConnection = this.detach();
    // Kept open until hand-over or thaw: closing it now would delay the continuation.
    this.#frozenConnection?.setHandler(discardingHandler);
    const state = this.streamState();
    const cp = this.#checkpoint;
    return {
      sessionId: Buffer.from(this.sessionId, 'hex'),
      epoch: this.epoch + 1,
      snapshot: cp.snapshot,
      inputOffset: cp.inputOffset,
      outputOffset: cp.outputOffset,
      inputLog: Buffer.concat(this.#log?.chunks() ?? []),
      finReceived: state.finReceived,
      outputStart: state.outputStart,
      acked: state.acked,
      output: Buffer.concat(state.output),
      finQueued: state.finQueued,
    };
  }

  /** The continuation went to `to`: the session is gone from here (the application sees 'migrated', then 'close'). */
  handedOver(to: string): void {
    this.#closeFrozenConnection();
    this.emit('migrated', { to });
    this.destroy();
  }

  /** A frozen session that was not handed over carries on here (its client resumes). */
  thaw(): void {
    this.#closeFrozenConnection();
    if (!this.connection && !this.destroyed) this.onDetached();
  }

  #closeFrozenConnection(): void {
    this.#frozenConnection?.close();
    this.#frozenConnection = undefined;
  }

  /** Attaches the connection that opened or resumed this session. */
  attachConnection(conn: Connection, peerReceived: number): number {
    const old = this.detach();
    old?.close();
    clearTimeout(this.#resumeTimer);
    this.#resumeTimer = undefined;
    const retransmitted = this.attach(conn, peerReceived);
    this.announcePool();
    return retransmitted;
  }

  /** Tells the client the pool's members (its alternates). */
  announcePool(): void {
    const frame = this.#host.poolFrame();
    if (frame) this.connection?.send(frame);
  }

  resumedBy(conn: Connection, peerReceived: number): void {
    this.checkPeerOffset(peerReceived);
    // RESUMED, the pool, the retransmission and the handler's first output leave in one write.
    conn.socket.cork();
    let retransmitted: number;
    try {
      // RESUMED must precede the retransmission that attaching starts.
      conn.send(encode.resumed({ received: this.receivedOffset, epoch: this.epoch }));
      retransmitted = this.attachConnection(conn, peerReceived);
      this.confirm();
    } finally {
      conn.socket.uncork();
    }
    channels.resume.publish({ side: this.side, sessionId: this.sessionId, retransmitted });
    this.emit('resumed', { attempt: 0, retransmitted });
  }

  /** Waits for the client to resume (a restored session whose client connection is already gone). */
  awaitResume(): void {
    this.confirm();
    this.onDetached();
  }

  /** The client proved it holds the session: hand it to the application. */
  confirm(): void {
    if (this.#confirmed) return;
    this.#confirmed = true;
    this.#host.handOver(this);
    // Logged input is replayed after the handler has had its chance to attach listeners.
    if (this.#pendingReplayInput) {
      const { input, fin } = this.#pendingReplayInput;
      this.#pendingReplayInput = undefined;
      if (input.length > 0) this.push(input);
      if (fin) this.push(null);
    }
  }

  override onFrame(type: number, body: Buffer): void {
    this.confirm();
    if (type === FrameType.HANDOFF) {
      const to = decode.handoff(body);
      if (this.#log) this.#host.handoff(this, to);
      return;
    }
    super.onFrame(type, body);
  }

  override onDataAck(ack: number): void {
    this.confirm();
    super.onDataAck(ack);
  }

  override onClose(err: Error | undefined): void {
    const conn = this.connection;
    super.onClose(err);
    // A bad frame on a session's connection is reported like one during a handshake.
    if (conn?.failure) this.#host.emit('connectionError', conn.failure, conn.socket.remoteAddress);
  }

  protected override onInput(chunk: Buffer): void {
    const log = this.#log;
    if (!log) return;
    log.append(chunk);
    if (this.#overBudget()) this.#requestCheckpoint();
  }

  protected override takeLiveOutput(chunks: Buffer[]): Buffer[] {
    const replay = this.#replay;
    if (!replay) return this.#checkOutputBudget(chunks);
    const live: Buffer[] = [];
    for (const chunk of chunks) {
      const rest = replay.take(chunk);
      if (rest) live.push(rest);
    }
    if (replay.done) this.#replay = undefined;
    return this.#checkOutputBudget(live);
  }

  protected onDetached(): void {
    const timeout = this.#host.resumeTimeout;
    this.#resumeTimer = setTimeout(() => {
      if (!this.#confirmed) {
        // The client never learned it had a session: drop it without involving the application.
        this.destroy();
        return;
      }
      this.destroy(
        createError(ErrorCodes.RESUME_TIMEOUT, `client did not resume the session within ${timeout} ms`),
      );
    }, timeout);
  }

  protected onComplete(): void {
    // Our FIN is acknowledged and the client's received: tell the client we are done, so it stops.
    const conn = this.detach();
    conn?.endWith(encode.refused({ code: ErrorCodes.SESSION_CLOSED, message: 'session closed' }));
    this.destroy();
  }

  protected override onDestroyed(err: Error | null): void {
    clearTimeout(this.#resumeTimer);
    this.#host.retire(this, err);
  }

  #restore(c: Continuation): void {
    this.epoch = c.epoch;
    this.restoreStream(
      {
        received: c.inputOffset + c.inputLog.length,
        finReceived: c.finReceived,
        outputStart: c.outputStart,
        acked: c.acked,
        output: [c.output],
        finQueued: c.finQueued,
      },
      c.outputOffset,
    );
    this.#checkpoint = { snapshot: c.snapshot, inputOffset: c.inputOffset, outputOffset: c.outputOffset };
    const log = new InputLog(c.inputOffset);
    if (c.inputLog.length > 0) log.append(c.inputLog);
    this.#log = log;
    const logged = c.output.subarray(c.outputOffset - c.outputStart);
    if (logged.length > 0) this.#replay = new OutputComparator(logged);
    this.#pendingReplayInput = { input: c.inputLog, fin: c.finReceived };
  }

  /** Output the handler has produced: while replaying, the log end less what it has yet to re-produce. */
  #producedOutput(): number {
    return this.producedOffset - (this.#replay?.remaining ?? 0);
  }

  protected override get replayingOutput(): boolean {
    return this.#replay !== undefined;
  }

  #overBudget(): boolean {
    const log = this.#log;
    if (!log) return false;
    return log.size + (this.#producedOutput() - this.#checkpoint.outputOffset) > this.#cont.logBudget;
  }

  #checkOutputBudget(live: Buffer[]): Buffer[] {
    if (this.#log && !this.#checkpointRequested && this.#overBudget()) this.#requestCheckpoint();
    return live;
  }

  #requestCheckpoint(): void {
    if (this.#checkpointRequested) return;
    this.#checkpointRequested = true;
    this.holdInput(true);
    // Emitted once the chunk that crossed the budget has reached the handler: a checkpoint taken in
    // the listener must include it.
    process.nextTick(() => {
      if (this.#checkpointRequested && !this.destroyed) this.emit('checkpointNeeded');
    });
  }
}
