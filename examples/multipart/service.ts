/**
 * Multipart: a session served by two cooperating parts, the main thread and a worker thread, joined
 * by a MessagePort, migrating as one.
 *
 * The client sends lines `<rounds> <text>`. The main thread parses them and posts a job per line to
 * the session's worker; the worker keeps a hash chain and, for each job, extends it with `text` and
 * hashes `rounds` times (the heavy part, off the main thread); the main thread writes each answer
 * back as `<seq> <link> <digest>` (or `<seq> ERR <why>` for a bad line, routed through the worker too,
 * so that the replies stay in request order whatever the timing).
 *
 * The session's state is spread over both threads (main: next sequence number, partial line, jobs
 * outstanding; worker: the chain) and over the port (jobs and answers in flight). Every few requests
 * the main part takes a consistent snapshot of all of it with SessionParts (Chandy–Lamport over the
 * port, src/continuation/parts.ts) and checkpoints it as one state; a new owner starts a worker from
 * the worker's state, hands the main part the answers that were in flight, and replays the input
 * logged since. The client sees the replies a single server would have sent.
 *
 * The server must allow half-open sessions (`allowHalfOpen: true`): a client that has sent its
 * last request ends its side while answers are still being computed; with the default, the
 * session would end the reply side at once, as a net.Socket does.
 *
 * Run: `npx tsx examples/multipart/server.ts`, then `npx tsx examples/multipart/client.ts`.
 */
import { type PartsState, SessionParts } from '../../src/continuation/parts.ts';
import type { ServerSession, SessionHandler } from '../../src/session/index.ts';

/** Main → worker. */
export type Job =
  | { readonly seq: number; readonly rounds: number; readonly text: string }
  | { readonly seq: number; readonly error: string };

/** Worker → main. */
export type Result =
  | { readonly seq: number; readonly digest: string; readonly link: number }
  | { readonly seq: number; readonly error: string };

interface MainState {
  readonly seq: number;
  /** Bytes of an unfinished line (latin1). */
  readonly partial: string;
  /** Jobs posted whose answer the main part has not written yet. */
  readonly outstanding: number;
}

export interface CutInfo {
  /** Answers in flight from the worker at the cut (the channel's recorded state). */
  readonly inFlight: number;
  /** Jobs posted and not yet answered at the cut. */
  readonly outstanding: number;
}

export interface MultipartOptions {
  /** Take a snapshot once this many requests arrived since the last. Default 16. */
  readonly cutEvery?: number;
  /** Most hash rounds a request may ask for. Default 100,000. */
  readonly maxRounds?: number;
  /** Observes each committed cut (for tests and statistics). */
  readonly onCut?: (info: CutInfo) => void;
}

const WORKER = new URL(`./worker${import.meta.url.endsWith('.ts') ? '.ts' : '.js'}`, import.meta.url);
const MAX_LINE = 4096;

/** Server options the service needs (see the note on half-open sessions above). */
export const MULTIPART_SERVER_OPTIONS = { allowHalfOpen: true } as const;

export function multipartHandler(options: MultipartOptions = {}): SessionHandler {
  const cutEvery = options.cutEvery ?? 16;
  const maxRounds = options.maxRounds ?? 100_000;

  return (session: ServerSession) => {
    const restored = session.restoredState as PartsState | undefined;
    const parts = new SessionParts({
      worker: WORKER,
      restored,
      onMessage: (m) => onResult(m as Result),
      onError: (err) => session.destroy(err),
    });
    const main = (parts.restoredMain as MainState | undefined) ?? { seq: 0, partial: '', outstanding: 0 };
    let seq = main.seq;
    let partial = Buffer.from(main.partial, 'latin1');
    let outstanding = main.outstanding;
    let sinceCut = 0;
    let ended = false;

    const onResult = (r: Result): void => {
      outstanding--;
      session.write('error' in r ? `${r.seq} ERR ${r.error}\n` : `${r.seq} ${r.link} ${r.digest}\n`);
      if (ended && outstanding === 0) session.end();
    };

    const job = (line: string): Job => {
      const m = /^(\d{1,9}) (.*)$/.exec(line);
      const rounds = Number(m?.[1]);
      if (!m || rounds < 1 || rounds > maxRounds)
        return { seq, error: `expected <rounds 1..${maxRounds}> <text>` };
      return { seq, rounds, text: m[2]! };
    };

    const cut = (): void => {
      sinceCut = 0;
      // Still until the commit: no input read, no answer handled (SessionParts holds them).
      session.pause();
      parts
        .snapshot(
          (): MainState => ({ seq, partial: partial.toString('latin1'), outstanding }),
          (state) => {
            session.checkpoint(state);
            options.onCut?.({ inFlight: state.inFlight.length, outstanding });
          },
        )
        .then(
          () => session.resume(),
          () => {
            // The session closed during the cut (it moved away, or failed): nothing to resume.
          },
        );
    };

    session.on('data', (chunk: Buffer) => {
      const input = partial.length > 0 ? Buffer.concat([partial, chunk]) : chunk;
      let start = 0;
      for (let eol = input.indexOf(10); eol >= 0; eol = input.indexOf(10, start)) {
        const line = input.toString('utf8', start, eol > start && input[eol - 1] === 13 ? eol - 1 : eol);
        parts.post(line.length > MAX_LINE ? { seq, error: 'line too long' } : job(line));
        seq++;
        outstanding++;
        sinceCut++;
        start = eol + 1;
      }
      partial = Buffer.from(input.subarray(start, start + MAX_LINE + 1));
      if (sinceCut >= cutEvery) cut();
    });
    session.on('checkpointNeeded', () => {
      if (!parts.cutting) cut();
    });
    session.on('end', () => {
      ended = true;
      if (outstanding === 0) session.end();
    });
    session.on('close', () => void parts.close());
    session.on('error', () => {
      // Reported by the session server ('sessionError').
    });
    parts.open();
  };
}
