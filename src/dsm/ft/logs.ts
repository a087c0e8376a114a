import { framePages, type PageData, type ProtocolMessage } from '../messages.ts';

/**
 * Volatile sender-side log: every message a re-executing peer may ask for again and could not get
 * from the current state, kept in memory at the node that sent it (never written at send time; a
 * checkpoint saves what was added since the previous one). Entries are found by destination and a
 * key the destination's checkpoint position can be compared with (see trimming.ts).
 */

export type LogKind = 'diffs' | 'reply' | 'push' | 'grant' | 'release' | 'fwd';

export interface LogEntry {
  /** Monotonic per log; checkpoints save the entries added since the previous checkpoint. */
  readonly id: number;
  readonly to: number;
  readonly kind: LogKind;
  /** diffs: interval seq; reply: request id; push/release: barrier episode; grant: acq; fwd: seq. */
  readonly key: number;
  readonly msg: ProtocolMessage;
  readonly bytes: number;
}

/** The log kind and key of a message, or undefined for messages that are never logged. */
export function logKey(msg: ProtocolMessage): { kind: LogKind; key: number } | undefined {
  switch (msg.type) {
    case 'diffs':
      return msg.ft ? { kind: 'diffs', key: msg.ft.seq } : undefined;
    case 'page-reply':
      return { kind: 'reply', key: msg.req };
    case 'page-push':
      return { kind: 'push', key: msg.episode };
    case 'lock-grant':
      return msg.ft ? { kind: 'grant', key: msg.ft.acq } : undefined;
    case 'barrier-release':
      return { kind: 'release', key: msg.episode };
    case 'lock-fwd':
      return msg.ft ? { kind: 'fwd', key: msg.ft.seq } : undefined;
    default:
      return undefined;
  }
}

/** Approximate retained bytes of a message: its page data, diffs and write notices. */
export function messageBytes(msg: ProtocolMessage): number {
  const pages = (list: readonly PageData[]) => list.reduce((n, p) => n + 8 + p.data.length, 0);
  const notices = (list: readonly { runs: Uint32Array }[]) =>
    list.reduce((n, iv) => n + 10 + iv.runs.byteLength, 0);
  switch (msg.type) {
    case 'diffs':
      return 16 + pages(msg.diffs) + (msg.ft ? msg.ft.time.byteLength : 0);
    case 'page-reply':
    case 'page-push':
      return 8 + pages(msg.pages);
    case 'lock-grant':
    case 'barrier-release':
      return 16 + notices(msg.intervals);
    default:
      return 32;
  }
}

/**
 * Page replies and pushes carry views of live pages: the log keeps bytes of its own. When the
 * message's encoded frame is given (what the transport wrote; nothing writes to it afterwards), the
 * logged pages are views of that frame: exactly the bytes sent, and no copy beyond the one encoding
 * made. Otherwise each page is copied.
 */
function owned(msg: ProtocolMessage, frame: Uint8Array | undefined): ProtocolMessage {
  if (msg.type !== 'page-reply' && msg.type !== 'page-push') return msg;
  const pages =
    (frame && framePages(frame, msg.pages)) ??
    msg.pages.map((p) => ({ page: p.page, data: Uint8Array.from(p.data) }));
  return { ...msg, pages };
}

export class SenderLog {
  readonly #byNode: LogEntry[][];
  #nextId = 1;
  #bytes = 0;
  #entries = 0;

  constructor(nodes: number) {
    this.#byNode = Array.from({ length: nodes }, () => []);
  }

  get bytes(): number {
    return this.#bytes;
  }

  get entries(): number {
    return this.#entries;
  }

  /** The id the next entry will get (checkpoints remember it to cut the next segment). */
  get nextId(): number {
    return this.#nextId;
  }

  /**
   * Logs `msg` when it is a loggable message; returns the entry. Page data is kept as views of
   * `frame`, the message as encoded and sent, when given; copied otherwise.
   */
  append(to: number, msg: ProtocolMessage, frame?: Uint8Array): LogEntry | undefined {
    const k = logKey(msg);
    if (!k) return undefined;
    const kept = owned(msg, frame);
    const entry: LogEntry = {
      id: this.#nextId++,
      to,
      kind: k.kind,
      key: k.key,
      msg: kept,
      bytes: messageBytes(kept),
    };
    this.#add(entry);
    return entry;
  }

  /** Puts back entries restored from checkpoint segments (ids kept; ordering by id per node). */
  restore(entries: readonly Omit<LogEntry, 'id' | 'bytes'>[]): void {
    for (const e of entries) this.#add({ ...e, id: this.#nextId++, bytes: messageBytes(e.msg) });
  }

  /** Kind and key of a message read back from a checkpoint segment. */
  restoreKey(msg: ProtocolMessage): { kind: LogKind; key: number } | undefined {
    return logKey(msg);
  }

  /** Entries for `to`, oldest first. */
  for(to: number): readonly LogEntry[] {
    return this.#byNode[to] ?? [];
  }

  /** Entries added since `id` (inclusive), oldest first: a checkpoint's log segment. */
  since(id: number): LogEntry[] {
    return this.#byNode
      .flat()
      .filter((e) => e.id >= id)
      .sort((a, b) => a.id - b.id);
  }

  /** Drops every entry `needed` says no recovery can ask for; returns how many went. */
  trim(needed: (e: LogEntry) => boolean): number {
    let dropped = 0;
    for (let n = 0; n < this.#byNode.length; n++) {
      const list = this.#byNode[n]!;
      const kept: LogEntry[] = [];
      for (const e of list) {
        if (needed(e)) kept.push(e);
        else this.#bytes -= e.bytes;
      }
      if (kept.length === list.length) continue;
      dropped += list.length - kept.length;
      this.#byNode[n] = kept;
    }
    this.#entries -= dropped;
    return dropped;
  }

  #add(entry: LogEntry): void {
    const list = this.#byNode[entry.to];
    if (!list) return;
    list.push(entry);
    this.#bytes += entry.bytes;
    this.#entries++;
  }
}
