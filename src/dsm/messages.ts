import { createError, ErrorCodes } from '../wire/errors.ts';
import { FieldReader, FieldWriter } from '../wire/fields.ts';
import { FRAME_HEADER_SIZE } from '../wire/frame.ts';
import type { Interval } from './intervals.ts';
import type { VectorTime } from './vector-time.ts';

/** START flags: FT settings follow; the node replaces a failed one (FT only). */
const START_FT = 1;
const START_RECOVER = 2;

/**
 * DSM wire messages, one frame type each. Decoders check every count against the bytes present
 * before allocating, so a hostile frame yields ERR_LZ_MALFORMED_FRAME and nothing else; semantic
 * checks (page numbers, node ids) happen in the node, which knows the layout.
 */

export const MsgType = {
  HELLO: 0x41,
  CHALLENGE: 0x42,
  PROOF: 0x43,
  WELCOME: 0x44,
  START: 0x45,
  READY: 0x46,
  GO: 0x47,
  DONE: 0x48,
  SHUTDOWN: 0x49,
  ERROR: 0x4a,
  PAGE_REQ: 0x50,
  PAGE_REPLY: 0x51,
  DIFFS: 0x52,
  DIFF_ACK: 0x53,
  LOCK_REQ: 0x54,
  LOCK_FWD: 0x55,
  LOCK_GRANT: 0x56,
  BARRIER_ARRIVE: 0x57,
  BARRIER_RELEASE: 0x58,
  PAGE_PUSH: 0x59,
  /** Fault tolerance (issue 5): liveness, and a restarted node's request for what peers logged for it. */
  PING: 0x5a,
  RECOVER_REQ: 0x5b,
  RECOVER_BEGIN: 0x5c,
  RECOVER_END: 0x5d,
  /** Node 0's result, in chunks, to a coordinator in another process (FT: the supervisor). */
  RESULT: 0x5e,
} as const;

export const DSM_FRAME_TYPES: ReadonlySet<number> = new Set(Object.values(MsgType));

/** Frames may carry a batch of pages; the node keeps batches under this many bytes of page data. */
export const MAX_BATCH_BYTES = 1024 * 1024;
export const DSM_MAX_FRAME_SIZE = MAX_BATCH_BYTES + 64 * 1024;

export const DSM_MAGIC = 0x4c5a4453; // 'LZDS'
export const DSM_VERSION = 1;
export const NONCE_SIZE = 16;
export const MAC_SIZE = 32;
/** Node id a joining process claims before the coordinator assigns it one. */
export const JOINING = 0xffff;

export interface PeerAddress {
  readonly node: number;
  readonly host: string;
  readonly port: number;
}

export interface PageData {
  readonly page: number;
  readonly data: Uint8Array;
}

export type HandshakeMessage =
  | { type: 'hello'; node: number; nonce: Uint8Array; host: string; port: number }
  | { type: 'challenge'; nonce: Uint8Array; mac: Uint8Array }
  | { type: 'proof'; mac: Uint8Array }
  | { type: 'welcome'; node: number; assigned: number };

export type ControlMessage =
  | {
      type: 'start';
      node: number;
      nodes: number;
      pageSize: number;
      app: string;
      params: string;
      peers: readonly PeerAddress[];
      /** Fault-tolerance settings (JSON) when the run has FT on. */
      ft?: string;
      /**
       * FT: this node replaces one that failed after the peer table went out: it dials every peer,
       * restores its checkpoint if it has one, and re-executes (the coordinator decides).
       */
      recover?: true;
    }
  | { type: 'ready' }
  | { type: 'go' }
  | { type: 'done'; ok: boolean; stats: string; code: string; message: string }
  /**
   * One chunk of node 0's result (`kind`: RESULT_KINDS index; `total` bytes in all; its compute
   * time `ms`), sent before DONE when the coordinator does not run node 0 itself (FT runs).
   */
  | { type: 'result'; kind: number; ms: number; total: number; offset: number; data: Uint8Array }
  | { type: 'shutdown' }
  | { type: 'error'; code: string; message: string }
  | { type: 'ping' }
  /** A restarted node's checkpoint position; the peer answers with BEGIN, its logged messages, END. */
  | { type: 'recover-req'; ckpt: CkptInfo; applied: VectorTime }
  /**
   * `seen`: how far the failed node's first run got, as this peer saw it (see CrashPoint). The first
   * `relog` messages after it are page replies the failed node had served this peer: its log of
   * them died with it, and it logs them again.
   */
  | { type: 'recover-begin'; seen: CrashPoint; relog: number }
  | { type: 'recover-end' };

/**
 * Where a node's latest durable checkpoint stands: its next request id, barrier episode, lock
 * requests made, lock forwards received, and vector time. Piggybacked on barrier messages; it is all
 * the log trimming (LLT) and checkpoint collection (CGC) go by.
 */
/**
 * Progress of a node's run as its peers observed it: requests it made (highest request id seen),
 * lock requests, barrier arrivals, and intervals of its that are known. A re-executing node has
 * caught up with its first run once it is at least this far in every count.
 */
export interface CrashPoint {
  readonly reqs: number;
  readonly acq: number;
  readonly arrivals: number;
  readonly seq: number;
}

export interface CkptInfo {
  readonly req: number;
  readonly episode: number;
  readonly acq: number;
  readonly fwds: number;
  readonly time: VectorTime;
}

/** The HLRC protocol proper; these are what the fault-tolerance layer will log. */
export type ProtocolMessage =
  | { type: 'page-req'; req: number; pages: readonly number[] }
  | { type: 'page-reply'; req: number; pages: readonly PageData[] }
  /** ft: the writer's interval number and vector time, so homes dedupe and order re-sent diffs. */
  | { type: 'diffs'; req: number; diffs: readonly PageData[]; ft?: { seq: number; time: VectorTime } }
  | { type: 'diff-ack'; req: number }
  /** ft.acq: the requester's lock-request count (dedupes re-sent requests and grants). */
  | { type: 'lock-req'; lock: number; node: number; time: VectorTime; ft?: { acq: number } }
  /** ft.after: which request of the tail this follows; ft.seq: forwards sent to the tail so far. */
  | {
      type: 'lock-fwd';
      lock: number;
      node: number;
      time: VectorTime;
      ft?: { acq: number; after: number; seq: number };
    }
  | { type: 'lock-grant'; lock: number; intervals: readonly Interval[]; ft?: { acq: number } }
  /** `want`: (first, count) runs of pages the node will read right after the barrier. */
  | {
      type: 'barrier-arrive';
      episode: number;
      time: VectorTime;
      intervals: readonly Interval[];
      want: Uint32Array;
      ft?: { ckpt: CkptInfo };
    }
  /** `serve`: pages of this node's that others want after the barrier, to push to them. */
  | {
      type: 'barrier-release';
      episode: number;
      intervals: readonly Interval[];
      serve: readonly PushOrder[];
      /** ft: every node's latest checkpoint position, as the manager knows it. */
      ft?: { ckpts: readonly CkptInfo[] };
    }
  | { type: 'page-push'; episode: number; pages: readonly PageData[] };

export interface PushOrder {
  readonly node: number;
  readonly runs: Uint32Array;
}

export type DsmMessage = HandshakeMessage | ControlMessage | ProtocolMessage;

export function encodeMessage(msg: DsmMessage): Buffer {
  // The body is written after room for the frame header, so the frame is never copied.
  const w = new FieldWriter(sizeHint(msg), FRAME_HEADER_SIZE);
  switch (msg.type) {
    case 'hello':
      w.u32(DSM_MAGIC).u8(DSM_VERSION).u16(msg.node).fixed(msg.nonce).string(msg.host).u16(msg.port);
      return w.frame(MsgType.HELLO);
    case 'challenge':
      return w.fixed(msg.nonce).fixed(msg.mac).frame(MsgType.CHALLENGE);
    case 'proof':
      return w.fixed(msg.mac).frame(MsgType.PROOF);
    case 'welcome':
      return w.u16(msg.node).u16(msg.assigned).frame(MsgType.WELCOME);
    case 'start':
      w.u16(msg.node)
        .u16(msg.nodes)
        .u32(msg.pageSize)
        .string(msg.app)
        .bytes32(Buffer.from(msg.params, 'utf8'));
      w.u16(msg.peers.length);
      for (const p of msg.peers) w.u16(p.node).string(p.host).u16(p.port);
      // A flags byte says what follows, so a frame cut before or inside the FT part is malformed
      // rather than a valid START without it.
      if (msg.ft === undefined) w.u8(0);
      else w.u8(START_FT | (msg.recover ? START_RECOVER : 0)).bytes32(Buffer.from(msg.ft, 'utf8'));
      return w.frame(MsgType.START);
    case 'ready':
      return w.frame(MsgType.READY);
    case 'go':
      return w.frame(MsgType.GO);
    case 'done':
      w.u8(msg.ok ? 1 : 0)
        .bytes32(Buffer.from(msg.stats, 'utf8'))
        .string(msg.code)
        .string(msg.message.slice(0, 4000));
      return w.frame(MsgType.DONE);
    case 'result':
      w.u8(msg.kind)
        .u64(Math.round(msg.ms * 1000))
        .u32(msg.total)
        .u32(msg.offset)
        .bytes32(msg.data);
      return w.frame(MsgType.RESULT);
    case 'shutdown':
      return w.frame(MsgType.SHUTDOWN);
    case 'error':
      return w.string(msg.code).string(msg.message.slice(0, 4000)).frame(MsgType.ERROR);
    case 'ping':
      return w.frame(MsgType.PING);
    case 'recover-req':
      return writeTime(writeCkpt(w, msg.ckpt), msg.applied).frame(MsgType.RECOVER_REQ);
    case 'recover-begin':
      w.u32(msg.seen.reqs).u32(msg.seen.acq).u32(msg.seen.arrivals).u32(msg.seen.seq).u32(msg.relog);
      return w.frame(MsgType.RECOVER_BEGIN);
    case 'recover-end':
      return w.frame(MsgType.RECOVER_END);
    case 'page-req':
      w.u32(msg.req).u32(msg.pages.length);
      for (const p of msg.pages) w.u32(p);
      return w.frame(MsgType.PAGE_REQ);
    case 'page-reply':
      return writePages(w.u32(msg.req), msg.pages).frame(MsgType.PAGE_REPLY);
    case 'diffs':
      writePages(w.u32(msg.req), msg.diffs);
      if (msg.ft) writeTime(w.u32(msg.ft.seq), msg.ft.time);
      return w.frame(MsgType.DIFFS);
    case 'diff-ack':
      return w.u32(msg.req).frame(MsgType.DIFF_ACK);
    case 'lock-req':
    case 'lock-fwd':
      writeTime(w.u32(msg.lock).u16(msg.node), msg.time);
      if (msg.type === 'lock-req') {
        if (msg.ft) w.u32(msg.ft.acq);
        return w.frame(MsgType.LOCK_REQ);
      }
      if (msg.ft) w.u32(msg.ft.acq).u32(msg.ft.after).u32(msg.ft.seq);
      return w.frame(MsgType.LOCK_FWD);
    case 'lock-grant':
      writeIntervals(w.u32(msg.lock), msg.intervals);
      if (msg.ft) w.u32(msg.ft.acq);
      return w.frame(MsgType.LOCK_GRANT);
    case 'barrier-arrive':
      writeRuns(writeIntervals(writeTime(w.u32(msg.episode), msg.time), msg.intervals), msg.want);
      if (msg.ft) writeCkpt(w, msg.ft.ckpt);
      return w.frame(MsgType.BARRIER_ARRIVE);
    case 'barrier-release':
      writeIntervals(w.u32(msg.episode), msg.intervals).u32(msg.serve.length);
      for (const order of msg.serve) writeRuns(w.u16(order.node), order.runs);
      if (msg.ft) {
        w.u16(msg.ft.ckpts.length);
        for (const c of msg.ft.ckpts) writeCkpt(w, c);
      }
      return w.frame(MsgType.BARRIER_RELEASE);
    case 'page-push':
      return writePages(w.u32(msg.episode), msg.pages).frame(MsgType.PAGE_PUSH);
  }
}

/** Decodes one frame body; throws only LazarusErrors (MALFORMED_FRAME, BAD_MAGIC, ...). */
export function decodeMessage(type: number, body: Buffer): DsmMessage {
  const r = new FieldReader(body, `dsm frame 0x${type.toString(16)}`);
  const msg = decodeBody(type, r);
  r.end();
  return msg;
}

function decodeBody(type: number, r: FieldReader): DsmMessage {
  switch (type) {
    case MsgType.HELLO: {
      if (r.u32() !== DSM_MAGIC) throw createError(ErrorCodes.BAD_MAGIC, 'not a lazarus DSM hello');
      const version = r.u8();
      if (version !== DSM_VERSION) {
        throw createError(
          ErrorCodes.UNSUPPORTED_VERSION,
          `DSM protocol version ${version} (this side speaks ${DSM_VERSION})`,
        );
      }
      return { type: 'hello', node: r.u16(), nonce: r.fixed(NONCE_SIZE), host: r.string(), port: r.u16() };
    }
    case MsgType.CHALLENGE:
      return { type: 'challenge', nonce: r.fixed(NONCE_SIZE), mac: r.fixed(MAC_SIZE) };
    case MsgType.PROOF:
      return { type: 'proof', mac: r.fixed(MAC_SIZE) };
    case MsgType.WELCOME:
      return { type: 'welcome', node: r.u16(), assigned: r.u16() };
    case MsgType.START: {
      const node = r.u16();
      const nodes = r.u16();
      const pageSize = r.u32();
      const app = r.string();
      const params = r.bytes32().toString('utf8');
      const peers = readCount(r.u16(), 5, () => ({ node: r.u16(), host: r.string(), port: r.u16() }));
      const start = { type: 'start', node, nodes, pageSize, app, params, peers } as const;
      const flags = r.u8();
      if (flags === 0) return start;
      if (flags !== START_FT && flags !== (START_FT | START_RECOVER)) {
        throw createError(ErrorCodes.MALFORMED_FRAME, `start: bad flags ${flags}`);
      }
      const ft = r.bytes32().toString('utf8');
      return flags & START_RECOVER ? { ...start, ft, recover: true } : { ...start, ft };
    }
    case MsgType.READY:
      return { type: 'ready' };
    case MsgType.GO:
      return { type: 'go' };
    case MsgType.DONE:
      return {
        type: 'done',
        ok: r.u8() === 1,
        stats: r.bytes32().toString('utf8'),
        code: r.string(),
        message: r.string(),
      };
    case MsgType.RESULT:
      return {
        type: 'result',
        kind: r.u8(),
        ms: r.u64() / 1000,
        total: r.u32(),
        offset: r.u32(),
        data: r.bytes32(),
      };
    case MsgType.SHUTDOWN:
      return { type: 'shutdown' };
    case MsgType.ERROR:
      return { type: 'error', code: r.string(), message: r.string() };
    case MsgType.PING:
      return { type: 'ping' };
    case MsgType.RECOVER_REQ: {
      const ckpt = readCkpt(r);
      return { type: 'recover-req', ckpt, applied: readTime(r) };
    }
    case MsgType.RECOVER_BEGIN:
      return {
        type: 'recover-begin',
        seen: { reqs: r.u32(), acq: r.u32(), arrivals: r.u32(), seq: r.u32() },
        relog: r.u32(),
      };
    case MsgType.RECOVER_END:
      return { type: 'recover-end' };
    case MsgType.PAGE_REQ: {
      const req = r.u32();
      return { type: 'page-req', req, pages: readCount(r.u32(), 4, () => r.u32()) };
    }
    case MsgType.PAGE_REPLY: {
      const req = r.u32();
      return { type: 'page-reply', req, pages: readPages(r) };
    }
    case MsgType.DIFFS: {
      const req = r.u32();
      const diffs = readPages(r);
      if (r.remaining === 0) return { type: 'diffs', req, diffs };
      const seq = r.u32();
      return { type: 'diffs', req, diffs, ft: { seq, time: readTime(r) } };
    }
    case MsgType.DIFF_ACK:
      return { type: 'diff-ack', req: r.u32() };
    case MsgType.LOCK_REQ: {
      const base = { lock: r.u32(), node: r.u16(), time: readTime(r) };
      if (r.remaining === 0) return { type: 'lock-req', ...base };
      return { type: 'lock-req', ...base, ft: { acq: r.u32() } };
    }
    case MsgType.LOCK_FWD: {
      const base = { lock: r.u32(), node: r.u16(), time: readTime(r) };
      if (r.remaining === 0) return { type: 'lock-fwd', ...base };
      return { type: 'lock-fwd', ...base, ft: { acq: r.u32(), after: r.u32(), seq: r.u32() } };
    }
    case MsgType.LOCK_GRANT: {
      const lock = r.u32();
      const intervals = readIntervals(r);
      if (r.remaining === 0) return { type: 'lock-grant', lock, intervals };
      return { type: 'lock-grant', lock, intervals, ft: { acq: r.u32() } };
    }
    case MsgType.BARRIER_ARRIVE: {
      const episode = r.u32();
      const time = readTime(r);
      const intervals = readIntervals(r);
      const want = readRuns(r);
      if (r.remaining === 0) return { type: 'barrier-arrive', episode, time, intervals, want };
      return { type: 'barrier-arrive', episode, time, intervals, want, ft: { ckpt: readCkpt(r) } };
    }
    case MsgType.BARRIER_RELEASE: {
      const episode = r.u32();
      const intervals = readIntervals(r);
      const serve = readCount(r.u32(), 6, () => ({ node: r.u16(), runs: readRuns(r) }));
      if (r.remaining === 0) return { type: 'barrier-release', episode, intervals, serve };
      const ckpts = readCount(r.u16(), 18, () => readCkpt(r));
      return { type: 'barrier-release', episode, intervals, serve, ft: { ckpts } };
    }
    case MsgType.PAGE_PUSH: {
      const episode = r.u32();
      return { type: 'page-push', episode, pages: readPages(r) };
    }
    default:
      throw createError(ErrorCodes.UNKNOWN_FRAME_TYPE, `unknown DSM frame type 0x${type.toString(16)}`);
  }
}

/** Body size of the bulky messages, so their writer never grows (and copies) while encoding. */
function sizeHint(msg: DsmMessage): number {
  const intervals = (list: readonly Interval[]) => list.reduce((n, iv) => n + 10 + iv.runs.length * 4, 4);
  switch (msg.type) {
    case 'page-reply':
    case 'page-push':
      return msg.pages.reduce((n, p) => n + 8 + p.data.length, 8);
    case 'diffs':
      return msg.diffs.reduce((n, p) => n + 8 + p.data.length, 16 + (msg.ft ? msg.ft.time.length * 4 : 0));
    case 'page-req':
      return 8 + msg.pages.length * 4;
    case 'result':
      return 24 + msg.data.length;
    case 'lock-grant':
      return 4 + intervals(msg.intervals);
    case 'barrier-release':
      return (
        10 +
        intervals(msg.intervals) +
        msg.serve.reduce((n, o) => n + 6 + o.runs.length * 4, 0) +
        (msg.ft?.ckpts.reduce((n, c) => n + 18 + c.time.length * 4, 0) ?? 0)
      );
    case 'barrier-arrive':
      return 40 + msg.time.length * 8 + intervals(msg.intervals) + msg.want.length * 4;
    default:
      return 64;
  }
}

export function writeCkpt(w: FieldWriter, c: CkptInfo): FieldWriter {
  return writeTime(w.u32(c.req).u32(c.episode).u32(c.acq).u32(c.fwds), c.time);
}

export function readCkpt(r: FieldReader): CkptInfo {
  return { req: r.u32(), episode: r.u32(), acq: r.u32(), fwds: r.u32(), time: readTime(r) };
}

function writePages(w: FieldWriter, pages: readonly PageData[]): FieldWriter {
  w.u32(pages.length);
  for (const p of pages) w.u32(p.page).bytes32(p.data);
  return w;
}

/**
 * The pages of an encoded PAGE_REPLY or PAGE_PUSH frame (what `encodeMessage` made of a message with
 * `pages`), as views of the frame, or undefined when the frame does not hold exactly those pages.
 * Lets a sender keep what it sent without copying the page data again.
 */
export function framePages(frame: Uint8Array, pages: readonly PageData[]): PageData[] | undefined {
  const type = frame[FRAME_HEADER_SIZE - 1];
  if (type !== MsgType.PAGE_REPLY && type !== MsgType.PAGE_PUSH) return undefined;
  const view = new DataView(frame.buffer, frame.byteOffset, frame.length);
  // Header, request id or episode, page count; then per page its number, length, bytes.
  let at = FRAME_HEADER_SIZE + 4;
  if (frame.length < at + 4 || view.getUint32(at) !== pages.length) return undefined;
  at += 4;
  const out: PageData[] = [];
  for (const p of pages) {
    if (frame.length < at + 8) return undefined;
    const len = view.getUint32(at + 4);
    if (view.getUint32(at) !== p.page || len !== p.data.length || frame.length < at + 8 + len)
      return undefined;
    out.push({ page: p.page, data: frame.subarray(at + 8, at + 8 + len) });
    at += 8 + len;
  }
  return at === frame.length ? out : undefined;
}

function readPages(r: FieldReader): PageData[] {
  return readCount(r.u32(), 8, () => ({ page: r.u32(), data: r.bytes32() }));
}

export function writeTime(w: FieldWriter, time: VectorTime): FieldWriter {
  w.u16(time.length);
  for (const v of time) w.u32(v);
  return w;
}

export function readTime(r: FieldReader): VectorTime {
  const n = r.u16();
  const t = new Uint32Array(n);
  for (let i = 0; i < n; i++) t[i] = r.u32();
  return t;
}

export function writeIntervals(w: FieldWriter, intervals: readonly Interval[]): FieldWriter {
  w.u32(intervals.length);
  for (const iv of intervals) writeRuns(w.u16(iv.node).u32(iv.seq), iv.runs);
  return w;
}

export function readIntervals(r: FieldReader): Interval[] {
  return readCount(r.u32(), 10, () => {
    const node = r.u16();
    const seq = r.u32();
    return { node, seq, runs: readRuns(r) };
  });
}

/** Page runs: u32 number of runs, then (first, count) u32 pairs. */
export function writeRuns(w: FieldWriter, runs: Uint32Array): FieldWriter {
  w.u32(runs.length / 2);
  for (const v of runs) w.u32(v);
  return w;
}

export function readRuns(r: FieldReader): Uint32Array {
  return Uint32Array.from(readCount(r.u32(), 8, () => [r.u32(), r.u32()]).flat());
}

/**
 * Reads `count` items of at least `minSize` bytes each. A count no frame could hold is refused up
 * front; any other forged count runs out of bytes in a bounds-checked read.
 */
export function readCount<T>(count: number, minSize: number, item: () => T): T[] {
  const out: T[] = [];
  if (count > DSM_MAX_FRAME_SIZE / minSize)
    throw createError(ErrorCodes.MALFORMED_FRAME, `count ${count} cannot fit a frame`);
  for (let i = 0; i < count; i++) out.push(item());
  return out;
}
