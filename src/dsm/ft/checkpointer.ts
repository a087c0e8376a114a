import { crc32 } from 'node:zlib';
import { createError, ErrorCodes } from '../../wire/errors.ts';
import type { PageTable } from '../pages.ts';
import type { DsmProtocol } from '../protocol.ts';
import { publish } from '../stats.ts';
import {
  type Checkpoint,
  ckptInfoOf,
  crcTrailer,
  decodeCheckpoint,
  encodeCheckpointParts,
} from './checkpoint-codec.ts';
import { CheckpointStore, type SegmentKey } from './checkpoint-store.ts';
import type { FtCore } from './core.ts';
import type { CrashPlan } from './crash-plan.ts';
import type { LogEntry } from './logs.ts';
import type { CheckpointClock } from './policy.ts';
import { CkptTable, neededBy } from './trimming.ts';

/**
 * Takes this node's checkpoints at the app's safe points (when its own clock says so) and collects
 * old ones (CGC). A checkpoint is the app's private state, every VALID page (home pages and cached
 * copies: re-execution must find the same pages valid), the protocol state, and the log entries
 * added since the previous checkpoint.
 */
export class Checkpointer {
  readonly #protocol: DsmProtocol;
  readonly #pages: PageTable;
  readonly #core: FtCore;
  readonly #store: CheckpointStore;
  readonly #clock: CheckpointClock;
  readonly #crash: CrashPlan | undefined;
  #seq = 1;
  /** Log entries from this id on are not in any checkpoint file yet. */
  #mark = 1;
  #collecting: Promise<void> = Promise.resolve();
  #writing: Promise<void> | undefined;
  /**
   * The buffer the next snapshot copies the pages into: the previous checkpoint's copy, kept once
   * its file is written (copying into fresh memory costs a page fault per 4 KiB, several times the
   * copy itself). Taken while a checkpoint is being written (safePoint never starts another then);
   * the first checkpoint finds none and copies into fresh memory.
   */
  #spare: Uint8Array | undefined;
  /** Log entries of checkpoints whose file could not be written: in no file yet, so the next takes them. */
  #carried: LogEntry[] = [];

  constructor(
    protocol: DsmProtocol,
    pages: PageTable,
    core: FtCore,
    store: CheckpointStore,
    clock: CheckpointClock,
    crash?: CrashPlan,
  ) {
    this.#protocol = protocol;
    this.#pages = pages;
    this.#core = core;
    this.#store = store;
    this.#clock = clock;
    this.#crash = crash;
    core.onTableChanged = () => this.collect();
  }

  get retained(): number {
    return this.#store.retained;
  }

  get retainedBytes(): number {
    return this.#store.retainedBytes;
  }

  /** A peer restarted: checkpoint at the next safe point (see docs/ft-dsm.md, lost replies). */
  force(): void {
    this.#clock.force();
  }

  /**
   * At a safe point: takes the snapshot there and then (the app waits only for that), and writes it
   * in the background; the position is piggybacked only once the file is durable. If the previous
   * checkpoint is still being written, the next safe point takes this one instead. `due` is the app
   * thread's clock's decision, when it runs one (runtime.ts); otherwise this node's clock decides.
   */
  async safePoint(app: number[], due?: boolean): Promise<void> {
    if (!(due ?? this.#clock.due())) return;
    // Not while re-executing (logged forwards are still being taken out of order then), nor while
    // the previous checkpoint is being written: the next safe point takes this one.
    if (this.#core.replaying || this.#writing) {
      this.#clock.force();
      return;
    }
    const writing = this.checkpoint(app).then(() => {});
    if (this.#clock.wait) return writing;
    this.#writing = writing;
    const clear = () => {
      this.#writing = undefined;
    };
    writing.then(clear, clear);
  }

  /**
   * Takes a checkpoint; resolves true once its file is durable. A failed write (disk full, say) is
   * counted and published, not thrown: the node goes on from its last durable checkpoint, which is
   * all its peers were told of, and tries again at the next safe point, whose file then also
   * carries this one's log entries.
   */
  async checkpoint(app: number[]): Promise<boolean> {
    const started = performance.now();
    const core = this.#core;
    // Everything below is read synchronously: one consistent instant of this node's main thread.
    const protocol = this.#protocol.snapshot();
    const time = this.#protocol.log.time();
    const segment = [...this.#carried, ...core.log.since(this.#mark)];
    this.#carried = [];
    this.#mark = core.log.nextId;
    const { state, pageSize, numPages } = this.#pages;
    // The one copy of the pages, taken in the same instant as the rest.
    const pages = this.#snapshotPages();
    const ckpt: Checkpoint = {
      node: core.me,
      nodes: core.nodes,
      seq: this.#seq++,
      pageSize,
      numPages,
      app,
      protocol,
      state: state.slice(),
      pages,
      segment: segment.map((e) => ({ to: e.to, msg: e.msg })),
    };
    const keys: SegmentKey[] = segment.map((e) => ({ to: e.to, kind: e.kind, key: e.key }));
    core.counters.checkpointBlockMs += performance.now() - started;
    core.counters.checkpointsStarted++;
    let bytes = 0;
    try {
      // The app goes on now (unless the policy says wait): its reply leaves before the encoding
      // and the checksum, which work on the copies and on log entries nothing writes to.
      await new Promise<void>((resolve) => setImmediate(resolve));
      const parts = encodeCheckpointParts(ckpt);
      const all = [...parts, await checksumInTurns(parts)];
      bytes = all.reduce((n, p) => n + p.length, 0);
      await this.#store.write(ckpt.seq, all, keys, () => this.#crash?.hit('checkpoint'));
    } catch (err) {
      this.#carried = [...segment, ...this.#carried].sort((a, b) => a.id - b.id);
      core.counters.checkpointFailures++;
      publish({ node: core.me, event: 'checkpoint-failed', seq: ckpt.seq, error: String(err) });
      this.#clock.force();
      return false;
    } finally {
      // Written (or failed): the buffer may take the next snapshot.
      this.#spare ??= pages;
    }
    // Durable: from now on this is the position a restart goes back to, and what peers trim by.
    core.own = ckptInfoOf(protocol, time);
    core.learnOne(core.me, core.own);
    core.dropReceived(protocol.nextReq);
    const c = core.counters;
    c.checkpoints++;
    c.checkpointBytes += bytes;
    c.lastCheckpointBytes = bytes;
    c.checkpointMs += performance.now() - started;
    this.collect();
    return true;
  }

  /** A copy of every page, in the spare buffer when there is one (it is then taken until written). */
  #snapshotPages(): Uint8Array {
    const data = this.#pages.data;
    const spare = this.#spare;
    if (!spare || spare.length !== data.length) return data.slice();
    this.#spare = undefined;
    spare.set(data);
    return spare;
  }

  /** CGC: old checkpoint files whose log segments hold nothing a recovery may need. */
  collect(): void {
    const core = this.#core;
    if (core.gc !== 'llt+cgc') return;
    const needed = (k: SegmentKey) => neededBy(core.table.get(k.to), k.kind, k.key, core.me);
    this.#collecting = this.#collecting
      .then(() => this.#store.collect(needed))
      .then((n) => {
        core.counters.checkpointsCollected += n;
      })
      .catch(() => {});
  }

  /**
   * Loads this node's checkpoint files after a restart and puts the latest one's state back:
   * pages, protocol, the checkpoint table, and the log entries of every retained segment that a
   * recovery may still need. Returns the app state (undefined: no checkpoint, start from scratch).
   */
  restore(): number[] | undefined {
    const files = CheckpointStore.list(this.#store.dir, this.#core.me);
    if (files.length === 0) return undefined;
    const decoded = files.map((f) => {
      const bytes = CheckpointStore.read(f.path);
      return { ...f, bytes: bytes.length, ckpt: decodeCheckpoint(bytes) };
    });
    const latest = decoded[decoded.length - 1]!.ckpt;
    const core = this.#core;
    if (latest.node !== core.me || latest.nodes !== core.nodes || latest.numPages !== this.#pages.numPages) {
      throw createError(ErrorCodes.DSM_BAD_CHECKPOINT, 'checkpoint of another node or layout');
    }
    if (latest.pageSize !== this.#pages.pageSize)
      throw createError(ErrorCodes.DSM_BAD_CHECKPOINT, 'page size changed');
    this.#pages.state.set(latest.state);
    this.#pages.data.set(latest.pages);
    this.#protocol.restore(latest.protocol);
    core.table = new CkptTable(core.nodes, latest.protocol.table);
    core.own = ckptInfoOf(latest.protocol, this.#protocol.log.time());
    core.table.update(core.me, core.own);
    for (const d of decoded) {
      const keys: SegmentKey[] = [];
      const keep = d.ckpt.segment.filter((e) => {
        const entry = core.log.restoreKey(e.msg);
        if (!entry) return false;
        keys.push({ to: e.to, ...entry });
        return neededBy(core.table.get(e.to), entry.kind, entry.key, core.me);
      });
      core.log.restore(keep.map((e) => ({ to: e.to, msg: e.msg, ...core.log.restoreKey(e.msg)! })));
      this.#store.adopt(d.ckpt.seq, d.path, d.bytes, keys);
    }
    this.#seq = latest.seq + 1;
    this.#mark = core.log.nextId;
    return [...latest.app];
  }
}

/** Bytes checksummed per turn of the event loop: the node serves its peers between two. */
const CRC_CHUNK = 4 << 20;

/** The CRC-32 trailer of the parts (as `encodeCheckpoint` ends), a few MiB per turn of the event loop. */
async function checksumInTurns(parts: readonly Uint8Array[]): Promise<Buffer> {
  let crc = 0;
  let done = 0;
  for (const p of parts) {
    for (let at = 0; at < p.length; at += CRC_CHUNK) {
      const chunk = p.subarray(at, at + CRC_CHUNK);
      crc = crc32(chunk, crc);
      done += chunk.length;
      if (done >= CRC_CHUNK) {
        done = 0;
        await new Promise<void>((resolve) => setImmediate(resolve));
      }
    }
  }
  return crcTrailer(crc);
}

export { decodeCheckpoint };
