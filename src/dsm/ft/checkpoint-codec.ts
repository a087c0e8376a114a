import { crc32 } from 'node:zlib';
import { createError, ErrorCodes, isLazarusError } from '../../wire/errors.ts';
import { FieldReader, FieldWriter } from '../../wire/fields.ts';
import { FRAME_HEADER_SIZE } from '../../wire/frame.ts';
import type { Interval } from '../intervals.ts';
import {
  type CkptInfo,
  type DsmMessage,
  decodeMessage,
  encodeMessage,
  type ProtocolMessage,
  readCkpt,
  readCount,
  readIntervals,
  readTime,
  writeCkpt,
  writeIntervals,
  writeTime,
} from '../messages.ts';
import { PageState } from '../pages.ts';
import type { VectorTime } from '../vector-time.ts';

/**
 * A node's checkpoint on disk:
 *
 *   u32 magic 'LZCK', u8 version, u16 node, u16 nodes, u32 checkpoint number, u32 page size,
 *   u32 pages, app state (u32 count, f64 each), protocol state, page states (1 byte per page),
 *   the bytes of every page (invalid ones too: apps may read their own stale copy of a page they
 *   know nobody changed where they read, and re-execution must find it), the log segment (entries logged since the previous
 *   checkpoint: u16 destination + one encoded DSM frame each), u32 CRC-32 of everything before it.
 *
 * Decoding reads untrusted bytes (a torn or foreign file): every failure is DSM_BAD_CHECKPOINT.
 */

export const CKPT_MAGIC = 0x4c5a434b; // 'LZCK'
export const CKPT_VERSION = 1;

/** Holder-side lock state at a safe point (no request can be in flight there). */
export interface LockSnapshot {
  readonly lock: number;
  readonly held: boolean;
  readonly token: boolean;
  readonly next?: { readonly node: number; readonly acq: number; readonly time: VectorTime };
}

export interface ProtocolSnapshot {
  readonly nextReq: number;
  readonly episode: number;
  readonly barrierTime: VectorTime;
  readonly acq: number;
  readonly fwds: number;
  /** Per writer, the last interval whose diffs this home applied. */
  readonly applied: VectorTime;
  readonly intervals: readonly Interval[];
  readonly locks: readonly LockSnapshot[];
  readonly table: readonly CkptInfo[];
}

export interface Checkpoint {
  readonly node: number;
  readonly nodes: number;
  readonly seq: number;
  readonly pageSize: number;
  readonly numPages: number;
  readonly app: readonly number[];
  readonly protocol: ProtocolSnapshot;
  readonly state: Uint8Array;
  /** Every page's bytes, in page order. */
  readonly pages: Uint8Array;
  readonly segment: readonly { readonly to: number; readonly msg: ProtocolMessage }[];
}

/** Where a checkpoint stands, as piggybacked to the other nodes. */
export function ckptInfoOf(p: ProtocolSnapshot, time: VectorTime): CkptInfo {
  return { req: p.nextReq, episode: p.episode, acq: p.acq, fwds: p.fwds, time };
}

export function encodeCheckpoint(c: Checkpoint): Buffer {
  const parts = encodeCheckpointParts(c);
  return Buffer.concat([...parts, checksumOf(parts)]);
}

/** The CRC-32 trailer of a checkpoint encoded in parts. */
function checksumOf(parts: readonly Uint8Array[]): Buffer {
  let crc = 0;
  for (const p of parts) crc = crc32(p, crc);
  return crcTrailer(crc);
}

/** The trailer that ends an encoded checkpoint: the CRC-32 of everything before it. */
export function crcTrailer(crc: number): Buffer {
  const out = Buffer.allocUnsafe(4);
  out.writeUInt32BE(crc);
  return out;
}

/**
 * The checkpoint without its checksum, as [everything before the page bytes, the page bytes (the
 * very array given, not a copy), everything after]: a writer takes its own copy of the pages and
 * leaves the big buffer out of any concatenation.
 */
export function encodeCheckpointParts(c: Checkpoint): [Buffer, Uint8Array, Buffer] {
  const w = new FieldWriter(256 + c.state.length);
  w.u32(CKPT_MAGIC).u8(CKPT_VERSION).u16(c.node).u16(c.nodes).u32(c.seq).u32(c.pageSize).u32(c.numPages);
  w.u32(c.app.length);
  const f = Buffer.allocUnsafe(8);
  for (const v of c.app) {
    f.writeDoubleBE(v);
    w.fixed(f);
  }
  const p = c.protocol;
  writeTime(w.u32(p.nextReq).u32(p.episode), p.barrierTime);
  writeTime(w.u32(p.acq).u32(p.fwds), p.applied);
  writeIntervals(w, p.intervals);
  w.u32(p.locks.length);
  for (const l of p.locks) {
    w.u32(l.lock).u8((l.held ? 1 : 0) | (l.token ? 2 : 0) | (l.next ? 4 : 0));
    if (l.next) writeTime(w.u16(l.next.node).u32(l.next.acq), l.next.time);
  }
  w.u16(p.table.length);
  for (const t of p.table) writeCkpt(w, t);
  w.fixed(c.state).u32(c.pages.length);
  const head = w.finish();
  const t = new FieldWriter(64);
  t.u32(c.segment.length);
  for (const e of c.segment) t.u16(e.to).bytes32(encodeMessage(e.msg));
  return [head, c.pages, t.finish()];
}

export function decodeCheckpoint(bytes: Buffer): Checkpoint {
  try {
    return decode(bytes);
  } catch (err) {
    if (isLazarusError(err) && err.code === ErrorCodes.DSM_BAD_CHECKPOINT) throw err;
    throw createError(ErrorCodes.DSM_BAD_CHECKPOINT, `bad checkpoint: ${(err as Error).message}`, err);
  }
}

function bad(message: string): Error {
  return createError(ErrorCodes.DSM_BAD_CHECKPOINT, message);
}

function decode(bytes: Buffer): Checkpoint {
  if (bytes.length < 4) throw bad('checkpoint shorter than its checksum');
  const body = bytes.subarray(0, bytes.length - 4);
  if (crc32(body) !== bytes.readUInt32BE(bytes.length - 4)) throw bad('checkpoint checksum mismatch');
  const r = new FieldReader(body, 'checkpoint');
  if (r.u32() !== CKPT_MAGIC) throw bad('not a lazarus checkpoint');
  const version = r.u8();
  if (version !== CKPT_VERSION) throw bad(`checkpoint version ${version}`);
  const node = r.u16();
  const nodes = r.u16();
  const seq = r.u32();
  const pageSize = r.u32();
  const numPages = r.u32();
  if (nodes < 1 || node >= nodes) throw bad(`node ${node} of ${nodes}`);
  const app = readCount(r.u32(), 8, () => r.fixed(8).readDoubleBE(0));
  const nextReq = r.u32();
  const episode = r.u32();
  const barrierTime = readTime(r);
  const acq = r.u32();
  const fwds = r.u32();
  const applied = readTime(r);
  const intervals = readIntervals(r);
  const locks = readCount(r.u32(), 5, (): LockSnapshot => {
    const lock = r.u32();
    const flags = r.u8();
    const base = { lock, held: (flags & 1) !== 0, token: (flags & 2) !== 0 };
    if ((flags & 4) === 0) return base;
    const n = r.u16();
    const a = r.u32();
    return { ...base, next: { node: n, acq: a, time: readTime(r) } };
  });
  const table = readCount(r.u16(), 18, () => readCkpt(r));
  for (const t of [barrierTime, applied, ...table.map((c) => c.time)]) {
    if (t.length !== nodes) throw bad('vector time of the wrong width');
  }
  if (table.length !== nodes) throw bad('checkpoint table of the wrong width');
  const state = Uint8Array.from(r.fixed(numPages));
  for (const s of state) {
    if (s !== PageState.VALID && s !== PageState.INVALID) throw bad('bad page state');
  }
  const pages = Uint8Array.from(r.bytes32());
  if (pages.length !== numPages * pageSize) throw bad('page bytes do not match the page count');
  const segment = readCount(r.u32(), 6, () => {
    const to = r.u16();
    const frame = r.bytes32();
    return { to, msg: decodeFrame(frame) };
  });
  r.end();
  return {
    node,
    nodes,
    seq,
    pageSize,
    numPages,
    app,
    protocol: { nextReq, episode, barrierTime, acq, fwds, applied, intervals, locks, table },
    state,
    pages,
    segment,
  };
}

const LOGGED = new Set(['diffs', 'page-reply', 'page-push', 'lock-grant', 'barrier-release', 'lock-fwd']);

function decodeFrame(frame: Buffer): ProtocolMessage {
  if (frame.length < FRAME_HEADER_SIZE) throw bad('log entry shorter than a frame header');
  const len = frame.readUInt32BE(0);
  if (len !== frame.length - FRAME_HEADER_SIZE) throw bad('log entry length mismatch');
  const msg: DsmMessage = decodeMessage(frame[4]!, Buffer.from(frame.subarray(FRAME_HEADER_SIZE)));
  if (!LOGGED.has(msg.type)) throw bad(`log entry of type ${msg.type}`);
  return msg as ProtocolMessage;
}
