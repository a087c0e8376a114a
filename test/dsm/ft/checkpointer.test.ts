import assert from 'node:assert/strict';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import { decodeCheckpoint } from '../../../src/dsm/ft/checkpoint-codec.ts';
import { CheckpointStore } from '../../../src/dsm/ft/checkpoint-store.ts';
import { Checkpointer } from '../../../src/dsm/ft/checkpointer.ts';
import { FtCore } from '../../../src/dsm/ft/core.ts';
import { CheckpointClock } from '../../../src/dsm/ft/policy.ts';
import { PageTable, planLayout } from '../../../src/dsm/pages.ts';
import { DsmProtocol } from '../../../src/dsm/protocol.ts';

function setup(dir: string, bytes = 8 * 1024) {
  const layout = planLayout([{ name: 'x', bytes, placement: { kind: 'block' } }], 1024, 2);
  const pages = new PageTable(layout, 0);
  const core = new FtCore(0, 2, 'none');
  const protocol = new DsmProtocol({
    me: 0,
    nodes: 2,
    pages,
    transport: { send: () => undefined },
    ft: core,
  });
  const store = new CheckpointStore(dir, 0);
  const cp = new Checkpointer(protocol, pages, core, store, new CheckpointClock(0, { everySafePoints: 1 }));
  return { pages, cp, core };
}

/** The first byte of every page of each checkpoint file, oldest first. */
function filePages(dir: string): number[][] {
  return CheckpointStore.list(dir, 0).map((f) => {
    const c = decodeCheckpoint(CheckpointStore.read(f.path));
    return Array.from({ length: c.numPages }, (_, p) => c.pages[p * c.pageSize]!);
  });
}

describe('FT checkpointer snapshot buffer', () => {
  test('a reused snapshot buffer: each file holds the pages as of its own snapshot', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'lz-ckpt-'));
    try {
      const { pages, cp } = setup(dir);
      const n = pages.numPages;
      for (let round = 1; round <= 3; round++) {
        pages.data.fill(round);
        const writing = cp.checkpoint([round]);
        // Written after the snapshot: in no file until the next checkpoint.
        pages.data.fill(100 + round);
        await writing;
      }
      // Two at once: the second finds the buffer taken and copies into its own.
      pages.data.fill(7);
      const a = cp.checkpoint([4]);
      pages.data.fill(8);
      const b = cp.checkpoint([5]);
      pages.data.fill(9);
      await Promise.all([a, b]);
      assert.deepEqual(
        filePages(dir),
        [1, 2, 3, 7, 8].map((v) => new Array(n).fill(v)),
        'each checkpoint has its own snapshot',
      );
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  test('a checkpoint bigger than what is checksummed per turn: the file is whole', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'lz-ckpt-'));
    try {
      const { pages, cp } = setup(dir, 9 << 20);
      for (let p = 0; p < pages.numPages; p++) pages.data[p * pages.pageSize] = p % 251;
      await cp.checkpoint([1]);
      const expected = Array.from({ length: pages.numPages }, (_, p) => p % 251);
      assert.deepEqual(filePages(dir), [expected], 'decoded (CRC checked), pages as snapshotted');
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('FT checkpointer write failures', () => {
  test('a checkpoint whose file cannot be written is counted, leaves no partial file, and the next file carries its log entries', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'lz-ckpt-'));
    try {
      const { cp, core } = setup(dir);
      const reply = (req: number) => ({ type: 'page-reply' as const, req, pages: [] });
      core.log.append(1, reply(1));
      assert.equal(await cp.checkpoint([1]), true);
      core.log.append(1, reply(2));
      // Checkpoint 2's temporary name is taken by a directory: its write fails (as a full disk would).
      mkdirSync(join(dir, 'ckpt-0-2.bin.tmp'));
      const before = core.own;
      assert.equal(await cp.checkpoint([2]), false);
      assert.equal(core.counters.checkpointFailures, 1);
      assert.equal(core.own, before, 'peers are still told of checkpoint 1 only');
      assert.ok(!existsSync(join(dir, 'ckpt-0-2.bin')), 'no file under the final name');
      rmSync(join(dir, 'ckpt-0-2.bin.tmp'), { recursive: true });
      core.log.append(1, reply(3));
      assert.equal(await cp.checkpoint([3]), true);
      const segments = CheckpointStore.list(dir, 0).map((f) =>
        decodeCheckpoint(CheckpointStore.read(f.path)).segment.map((e) => (e.msg as { req: number }).req),
      );
      assert.deepEqual(
        segments,
        [[1], [2, 3]],
        'reply 2, logged before the failed checkpoint, is in the next file',
      );
      assert.deepEqual(readdirSync(dir).sort(), ['ckpt-0-1.bin', 'ckpt-0-3.bin']);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
