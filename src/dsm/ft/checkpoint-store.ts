import { mkdirSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { open, rename, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { bytesAfter } from '../../wire/buffers.ts';
import type { LogKind } from './logs.ts';

/** What a checkpoint file's log segment holds, kept in memory so CGC needs no re-reading. */
export interface SegmentKey {
  readonly to: number;
  readonly kind: LogKind;
  readonly key: number;
}

interface Retained {
  readonly seq: number;
  readonly path: string;
  readonly bytes: number;
  readonly keys: readonly SegmentKey[];
}

const NAME = /^ckpt-(\d+)-(\d+)\.bin$/;

/**
 * A node's checkpoint files in one directory: `ckpt-<node>-<seq>.bin`, written to a temporary name,
 * fsynced, renamed into place and the directory fsynced, so a file with the final name is always
 * whole (a crash mid-write leaves only a `.tmp` the next start ignores and removes).
 *
 * Checkpoint garbage collection (CGC): the latest file is always kept (a restart needs its state);
 * an older one is kept only while some entry of its log segment may still be needed by a recovery.
 */
export class CheckpointStore {
  readonly dir: string;
  readonly node: number;
  readonly #retained: Retained[] = [];

  constructor(dir: string, node: number) {
    this.dir = dir;
    this.node = node;
    mkdirSync(dir, { recursive: true });
    // A crash between writing and renaming leaves a temporary file: never a checkpoint, drop it.
    for (const name of readdirSync(dir)) {
      if (name.startsWith(`ckpt-${node}-`) && name.endsWith('.bin.tmp'))
        rmSync(join(dir, name), { force: true });
    }
  }

  /** Paths of this node's checkpoint files, oldest first (a restarted node reads them all). */
  static list(dir: string, node: number): { seq: number; path: string }[] {
    let names: string[];
    try {
      names = readdirSync(dir);
    } catch {
      return [];
    }
    return names
      .map((name) => NAME.exec(name))
      .filter((m): m is RegExpExecArray => m !== null && Number(m[1]) === node)
      .map((m) => ({ seq: Number(m[2]), path: join(dir, m[0]) }))
      .sort((a, b) => a.seq - b.seq);
  }

  static read(path: string): Buffer {
    return readFileSync(path);
  }

  get retained(): number {
    return this.#retained.length;
  }

  get retainedBytes(): number {
    return this.#retained.reduce((n, r) => n + r.bytes, 0);
  }

  /** Registers files found at restart (their segments' keys come from decoding them). */
  adopt(seq: number, path: string, bytes: number, keys: readonly SegmentKey[]): void {
    this.#retained.push({ seq, path, bytes, keys });
    this.#retained.sort((a, b) => a.seq - b.seq);
  }

  /**
   * Writes checkpoint `seq` (the concatenation of `parts`) durably; `crashHook` runs between the
   * data write and the rename.
   */
  async write(
    seq: number,
    parts: Buffer | readonly Uint8Array[],
    keys: readonly SegmentKey[],
    crashHook?: () => void,
  ): Promise<void> {
    const path = join(this.dir, `ckpt-${this.node}-${seq}.bin`);
    const tmp = `${path}.tmp`;
    const list = Buffer.isBuffer(parts) ? [parts] : parts;
    const bytes = list.reduce((n, p) => n + p.length, 0);
    try {
      const fh = await open(tmp, 'w');
      try {
        let left = list;
        while (left.length > 0) {
          const { bytesWritten } = await fh.writev(left as Uint8Array[]);
          left = bytesAfter(left, bytesWritten);
        }
        await fh.sync();
      } finally {
        await fh.close();
      }
      crashHook?.();
      await rename(tmp, path);
    } catch (err) {
      // A failed write (disk full, say) leaves no partial file to fill the disk further.
      await rm(tmp, { force: true }).catch(() => {});
      throw err;
    }
    const dh = await open(this.dir, 'r');
    try {
      await dh.sync();
    } finally {
      await dh.close();
    }
    this.#retained.push({ seq, path, bytes, keys });
  }

  /** CGC: deletes every non-latest file whose segment holds nothing `needed`; returns how many. */
  async collect(needed: (k: SegmentKey) => boolean): Promise<number> {
    const latest = this.#retained[this.#retained.length - 1];
    const gone = this.#retained.filter((r) => r !== latest && !r.keys.some(needed));
    for (const r of gone) {
      this.#retained.splice(this.#retained.indexOf(r), 1);
      await rm(r.path, { force: true });
    }
    return gone.length;
  }
}
