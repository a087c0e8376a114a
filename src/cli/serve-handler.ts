import type { Logger } from 'pino';
import type { ServerSession } from '../session/index.ts';

/** Input between two checkpoints: keeps a session's logs, and a migration's replay, short. */
const CHECKPOINT_EVERY = 64 * 1024;

/** What a `lazarus serve` session saves at a checkpoint. */
interface ServeState {
  /** Bytes received over the session's whole life, on every server it went through. */
  readonly received: number;
}

export type ServeMode = 'echo' | 'sink';

/**
 * The handler of `lazarus serve`: echoes (or swallows) what each session sends. In a pool it
 * checkpoints every 64 KiB so the session can move to another member; it is deterministic in
 * (restored state, input), which the new owner checks by replaying the logged input.
 */
export function serveHandler(mode: ServeMode, checkpoints: boolean, log: Logger) {
  return (session: ServerSession): void => {
    const id = session.sessionId;
    const restored = session.restoredState as ServeState | undefined;
    let received = restored?.received ?? 0;
    let sinceCheckpoint = 0;
    const checkpoint = () => {
      sinceCheckpoint = 0;
      session.checkpoint({ received } satisfies ServeState);
    };
    log.info(
      { session: id, restored: restored !== undefined },
      restored ? 'session arrived' : 'session opened',
    );
    if (checkpoints) session.on('checkpointNeeded', checkpoint);
    session.on('data', (chunk: Buffer) => {
      received += chunk.length;
      sinceCheckpoint += chunk.length;
      if (mode === 'echo' && !session.write(chunk)) {
        session.pause();
        session.once('drain', () => session.resume());
      }
      if (checkpoints && sinceCheckpoint >= CHECKPOINT_EVERY) checkpoint();
    });
    session.on('end', () => session.end());
    session.on('resumed', (e: { retransmitted: number }) =>
      log.info({ session: id, retransmitted: e.retransmitted }, 'session resumed'),
    );
    session.on('migrated', (e: { to: string }) => log.info({ session: id, to: e.to }, 'session moved away'));
    session.on('close', () => log.info({ session: id, received }, 'session closed'));
  };
}
