/**
 * KV: a line-protocol key-value service with per-session state and transactions, on migratory
 * sessions.
 *
 * Each session has its own store. Requests are lines, replies are lines, one per request, in order:
 *   SET k v   -> OK (QUEUED inside a transaction)      GET k  -> VALUE v | NIL
 *   DEL k     -> DELETED | NIL (QUEUED in a transaction)
 *   BEGIN     -> OK   COMMIT -> OK <writes applied>   ABORT -> OK   (ERR ... when out of place)
 * Inside a transaction, writes are queued and reads see them; COMMIT applies them at once.
 *
 * The handler checkpoints `{ store, tx, partial }` each time it has consumed a chunk of input: the
 * transport binds a checkpoint to the input read so far, which ends wherever the chunk ends, maybe
 * in the middle of a line, so the unfinished line travels in the state. Every request whose reply has
 * been written is in the snapshot; a per-request checkpoint inside one chunk would bind to the same
 * input offset and add nothing. A client moved between servers (even mid-transaction, even
 * mid-line) gets exactly the replies one server would have given.
 *
 * Run: `npx tsx examples/kv/server.ts`, then `npx tsx examples/kv/client.ts` (an interactive prompt:
 * type requests; `:move` moves the session to another server).
 */
import type { ServerSession, SessionHandler } from '../../src/session/index.ts';

interface KvState {
  readonly store: Map<string, string>;
  /** Writes queued by the open transaction (undefined value: delete); null outside one. */
  readonly tx: Map<string, string | undefined> | null;
  /** The bytes of a request line whose end has not arrived yet (latin1: one char per byte). */
  readonly partial: string;
  /** A line too long is being skipped up to its end. */
  readonly skipping: boolean;
}

export interface KvOptions {
  /** Longest request line; a longer one is answered ERR and skipped. Default 64 KiB. */
  readonly maxLine?: number;
}

/** Applies one request to the state; returns the reply line (without newline). */
export function execute(
  state: { store: Map<string, string>; tx: Map<string, string | undefined> | null },
  line: string,
): string {
  const space = line.indexOf(' ');
  const verb = space < 0 ? line : line.slice(0, space);
  const rest = space < 0 ? '' : line.slice(space + 1);
  const key = rest.split(' ', 1)[0] ?? '';
  switch (verb) {
    case 'SET': {
      const value = rest.slice(key.length + 1);
      if (!key || rest.length === key.length) return 'ERR usage: SET <key> <value>';
      if (state.tx) {
        state.tx.set(key, value);
        return 'QUEUED';
      }
      state.store.set(key, value);
      return 'OK';
    }
    case 'GET': {
      if (!key || key !== rest) return 'ERR usage: GET <key>';
      const value = state.tx?.has(key) ? state.tx.get(key) : state.store.get(key);
      return value === undefined ? 'NIL' : `VALUE ${value}`;
    }
    case 'DEL': {
      if (!key || key !== rest) return 'ERR usage: DEL <key>';
      if (state.tx) {
        state.tx.set(key, undefined);
        return 'QUEUED';
      }
      return state.store.delete(key) ? 'DELETED' : 'NIL';
    }
    case 'BEGIN':
      if (rest) return 'ERR usage: BEGIN';
      if (state.tx) return 'ERR already in a transaction';
      state.tx = new Map();
      return 'OK';
    case 'COMMIT': {
      if (rest) return 'ERR usage: COMMIT';
      if (!state.tx) return 'ERR no transaction';
      for (const [k, v] of state.tx) {
        if (v === undefined) state.store.delete(k);
        else state.store.set(k, v);
      }
      const n = state.tx.size;
      state.tx = null;
      return `OK ${n}`;
    }
    case 'ABORT':
      if (rest) return 'ERR usage: ABORT';
      if (!state.tx) return 'ERR no transaction';
      state.tx = null;
      return 'OK';
    default:
      return 'ERR unknown command';
  }
}

export function kvHandler(options: KvOptions = {}): SessionHandler {
  const maxLine = options.maxLine ?? 64 * 1024;
  return (session: ServerSession) => {
    const restored = session.restoredState as KvState | undefined;
    const state = { store: restored?.store ?? new Map<string, string>(), tx: restored?.tx ?? null };
    let partial = Buffer.from(restored?.partial ?? '', 'latin1');
    let skipping = restored?.skipping ?? false;

    // Lines are cut on bytes and decoded whole: a UTF-8 character split between two chunks must
    // not sit in a string decoder, outside the state the checkpoint saves.
    session.on('data', (chunk: Buffer) => {
      const input = partial.length > 0 ? Buffer.concat([partial, chunk]) : chunk;
      const replies: string[] = [];
      let start = 0;
      for (let eol = input.indexOf(10); eol >= 0; eol = input.indexOf(10, start)) {
        const end = eol > start && input[eol - 1] === 13 ? eol - 1 : eol;
        if (skipping) skipping = false;
        else if (end - start > maxLine) replies.push('ERR line too long');
        else replies.push(execute(state, input.toString('utf8', start, end)));
        start = eol + 1;
      }
      partial = Buffer.from(input.subarray(start));
      if (partial.length > maxLine) {
        if (!skipping) replies.push('ERR line too long');
        skipping = true;
        partial = Buffer.alloc(0);
      }
      if (replies.length > 0) session.write(`${replies.join('\n')}\n`);
      const snapshot: KvState = {
        store: state.store,
        tx: state.tx,
        partial: partial.toString('latin1'),
        skipping,
      };
      session.checkpoint(snapshot);
    });
    session.on('end', () => session.end());
    session.on('error', () => {
      // The server reports it ('sessionError'); the state dies with the session.
    });
  };
}
