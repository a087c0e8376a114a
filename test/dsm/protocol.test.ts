import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import fc from 'fast-check';
import { PageState, PageTable, planLayout } from '../../src/dsm/pages.ts';
import { DsmProtocol } from '../../src/dsm/protocol.ts';
import { ErrorCodes, LazarusError } from '../../src/wire/errors.ts';
import { MemoryNetwork } from './memory-network.ts';

const PAGE = 256;
const NONE = new Uint32Array();
const code = (c: string) => (err: unknown) => err instanceof LazarusError && err.code === c;

describe('HLRC protocol (in memory, random interleavings)', () => {
  test('lock-protected increments of shared counters are never lost', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.integer({ min: 2, max: 4 }),
        fc.nat(),
        fc.integer({ min: 1, max: 4 }),
        async (n, seed, rounds) => {
          // Two counters on pages homed at different nodes, plus a page of per-node slots (false sharing).
          const layout = planLayout(
            [
              { name: 'counters', bytes: 2 * PAGE, placement: { kind: 'cyclic' } },
              { name: 'slots', bytes: PAGE, placement: { kind: 'explicit', home: () => n - 1 } },
            ],
            PAGE,
            n,
          );
          const net = new MemoryNetwork(layout, n, seed);
          const program = async (me: number) => {
            const node = net.nodes[me]!;
            const counters = [node.f64(0, 1), node.f64(PAGE, 1)];
            const slot = node.f64(2 * PAGE + me * 8, 1);
            for (let r = 0; r < rounds; r++) {
              for (const [lock, c] of counters.entries()) {
                await node.acquire(lock);
                await node.write(c!);
                c![0] = c![0]! + 1;
                await node.release(lock);
              }
              await node.write(slot);
              slot[0] = slot[0]! + me + 1;
            }
            await node.barrier();
            const all = node.f64(2 * PAGE, n);
            await node.read(all);
            for (let k = 0; k < n; k++) assert.equal(all[k], rounds * (k + 1), `node ${me} sees slot ${k}`);
            for (const c of counters) {
              await node.read(c!);
              assert.equal(c![0], n * rounds, `node ${me} sees the counter`);
            }
          };
          await net.run(Promise.all(Array.from({ length: n }, (_, me) => program(me))));
          assert.deepEqual(net.errors, []);
        },
      ),
      { numRuns: 25 },
    );
  });

  test('water pattern: multi-writer pages under several locks, home writes, barriers (exact integer sums)', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.integer({ min: 2, max: 5 }),
        fc.nat(),
        fc.integer({ min: 1, max: 3 }),
        async (n, seed, steps) => {
          // 3 pages of 32 f64 "force" entries (96 particles) and 3 pages of "pos": groups straddle pages.
          const m = 96;
          const owner = (i: number) => Math.min(n - 1, Math.floor((i * n) / m));
          const layout = planLayout(
            [
              {
                name: 'force',
                bytes: m * 8,
                placement: {
                  kind: 'explicit',
                  home: (o, k) => Math.min(k - 1, Math.floor(((o / 8) * k) / m)),
                },
              },
              { name: 'pos', bytes: m * 8, placement: { kind: 'cyclic' } },
              { name: 'energy', bytes: 8, placement: { kind: 'explicit', home: (_o, k) => k - 1 } },
            ],
            PAGE,
            n,
          );
          const net = new MemoryNetwork(layout, n, seed);
          const range = (g: number) => {
            let lo = 0;
            while (lo < m && owner(lo) < g) lo++;
            let hi = lo;
            while (hi < m && owner(hi) === g) hi++;
            return { lo, hi };
          };
          const program = async (me: number) => {
            const node = net.nodes[me]!;
            const force = node.f64(0, m);
            const pos = node.f64(m * 8, m);
            const energy = node.f64(2 * m * 8, 1);
            for (let s = 0; s < steps; s++) {
              await node.barrier();
              for (let t = 0; t < n; t++) {
                const g = (me + t) % n;
                const { lo, hi } = range(g);
                await node.acquire(g);
                const slice = node.f64(lo * 8, hi - lo);
                await node.write(slice);
                for (let k = 0; k < slice.length; k++) slice[k] = slice[k]! + me + 1;
                await node.release(g);
              }
              await node.acquire(n);
              await node.write(energy);
              energy[0] = energy[0]! + 1;
              await node.release(n);
              await node.barrier();
              const { lo, hi } = range(me);
              const f = node.f64(lo * 8, hi - lo);
              const p = node.f64(m * 8 + lo * 8, hi - lo);
              await node.write(f);
              await node.write(p);
              for (let k = 0; k < f.length; k++) {
                p[k] = p[k]! + f[k]!;
                f[k] = 0;
              }
            }
            await node.barrier();
            await node.read(pos);
            await node.read(energy);
            const each = (n * (n + 1)) / 2;
            for (let i = 0; i < m; i++) assert.equal(pos[i], steps * each, `node ${me} pos[${i}]`);
            assert.equal(energy[0], steps * n);
            await node.read(force);
            assert.ok(force.every((v) => v === 0));
          };
          await net.run(Promise.all(Array.from({ length: n }, (_, me) => program(me))));
        },
      ),
      { numRuns: 40 },
    );
  });

  test('barriers carry write notices: readers refetch exactly the pages written elsewhere', async () => {
    const n = 3;
    const layout = planLayout([{ name: 'a', bytes: 6 * PAGE, placement: { kind: 'block' } }], PAGE, n);
    const net = new MemoryNetwork(layout, n, 42);
    const program = async (me: number) => {
      const node = net.nodes[me]!;
      const mine = node.f64(me * 2 * PAGE, (2 * PAGE) / 8);
      const all = node.f64(0, (6 * PAGE) / 8);
      for (let step = 1; step <= 3; step++) {
        await node.write(mine);
        mine.fill(step * 10 + me);
        await node.barrier();
        await node.read(all);
        for (let k = 0; k < n; k++) assert.equal(all[k * 64], step * 10 + k);
        await node.barrier();
      }
      return node.protocol.stats;
    };
    const stats = await net.run(Promise.all([0, 1, 2].map(program)));
    // Each node fetches the other two nodes' 4 pages after each of the 3 writes, never its own.
    for (const s of stats) assert.equal(s.pageFetches, 12);
  });

  test('pages wanted after a barrier are pushed by their homes, current, with no request', async () => {
    await fc.assert(
      fc.asyncProperty(fc.integer({ min: 2, max: 5 }), fc.nat(), async (n, seed) => {
        const layout = planLayout(
          [{ name: 'a', bytes: n * 2 * PAGE, placement: { kind: 'block' } }],
          PAGE,
          n,
        );
        const net = new MemoryNetwork(layout, n, seed);
        const program = async (me: number) => {
          const node = net.nodes[me]!;
          const mine = node.f64(me * 2 * PAGE, (2 * PAGE) / 8);
          const all = node.f64(0, (n * 2 * PAGE) / 8);
          for (let step = 1; step <= 3; step++) {
            await node.write(mine);
            mine.fill(step * 100 + me);
            await node.barrier(all);
            // Readable without asking: every page is valid and current.
            assert.ok(node.pages.state.every((s) => s === PageState.VALID));
            for (let k = 0; k < n; k++) assert.equal(all[k * 64 + 1], step * 100 + k);
            await node.barrier();
          }
        };
        await net.run(Promise.all(Array.from({ length: n }, (_, me) => program(me))));
        assert.equal(net.sent.get('page-req') ?? 0, 0);
        assert.ok((net.sent.get('page-push') ?? 0) > 0);
      }),
      { numRuns: 20 },
    );
  });
});

describe('HLRC protocol: bad input', () => {
  const layout = planLayout([{ name: 'a', bytes: 4 * PAGE, placement: { kind: 'block' } }], PAGE, 2);
  const make = () => {
    const sent: unknown[] = [];
    const p = new DsmProtocol({
      me: 0,
      nodes: 2,
      pages: new PageTable(layout, 0),
      transport: { send: (_to, m) => void sent.push(m) },
    });
    p.pages.data.fill(7);
    return { p, sent };
  };

  test('out-of-range or foreign pages, bad diffs and unexpected replies give typed errors and change nothing', () => {
    const { p, sent } = make();
    const before = p.pages.data.slice();
    assert.throws(
      () => p.receive(1, { type: 'page-req', req: 1, pages: [0, 99] }),
      code(ErrorCodes.DSM_OUT_OF_RANGE),
    );
    assert.throws(
      () => p.receive(1, { type: 'page-req', req: 1, pages: [3] }),
      code(ErrorCodes.DSM_OUT_OF_RANGE),
    );
    assert.throws(
      () => p.receive(7, { type: 'page-req', req: 1, pages: [0] }),
      code(ErrorCodes.DSM_OUT_OF_RANGE),
    );
    const good = Buffer.alloc(12);
    good.writeUInt32BE(1, 4);
    const bad = Buffer.alloc(12);
    bad.writeUInt32BE(PAGE, 0);
    bad.writeUInt32BE(1, 4);
    assert.throws(
      () =>
        p.receive(1, {
          type: 'diffs',
          req: 1,
          diffs: [
            { page: 0, data: good },
            { page: 1, data: bad },
          ],
        }),
      code(ErrorCodes.DSM_BAD_DIFF),
    );
    assert.throws(
      () => p.receive(1, { type: 'diffs', req: 1, diffs: [{ page: 2, data: good }] }),
      code(ErrorCodes.DSM_OUT_OF_RANGE),
    );
    assert.throws(
      () => p.receive(1, { type: 'page-reply', req: 5, pages: [{ page: 2, data: Buffer.alloc(PAGE) }] }),
      code(ErrorCodes.PROTOCOL),
    );
    assert.throws(() => p.receive(1, { type: 'diff-ack', req: 5 }), code(ErrorCodes.PROTOCOL));
    assert.throws(
      () => p.receive(1, { type: 'lock-grant', lock: 3, intervals: [] }),
      code(ErrorCodes.PROTOCOL),
    );
    assert.throws(
      () => p.receive(1, { type: 'lock-req', lock: 1, node: 1, time: new Uint32Array(2) }),
      code(ErrorCodes.PROTOCOL),
    );
    assert.throws(
      () => p.receive(1, { type: 'lock-req', lock: 2 ** 30, node: 1, time: new Uint32Array(2) }),
      code(ErrorCodes.DSM_OUT_OF_RANGE),
    );
    assert.throws(
      () => p.receive(1, { type: 'lock-req', lock: 2, node: 1, time: new Uint32Array(5) }),
      code(ErrorCodes.MALFORMED_FRAME),
    );
    assert.throws(
      () =>
        p.receive(1, {
          type: 'barrier-arrive',
          episode: 0,
          time: new Uint32Array(2),
          intervals: [{ node: 1, seq: 1, runs: Uint32Array.of(2, 3) }],
          want: new Uint32Array(),
        }),
      code(ErrorCodes.DSM_OUT_OF_RANGE),
    );
    assert.throws(
      () =>
        p.receive(1, {
          type: 'barrier-arrive',
          episode: 3,
          time: new Uint32Array(2),
          intervals: [],
          want: NONE,
        }),
      code(ErrorCodes.PROTOCOL),
    );
    for (const runs of [Uint32Array.of(0, 0), Uint32Array.of(0xffffffff, 2), Uint32Array.of(1)]) {
      const intervals = [{ node: 1, seq: 1, runs }];
      assert.throws(
        () =>
          p.receive(1, {
            type: 'barrier-arrive',
            episode: 0,
            time: new Uint32Array(2),
            intervals,
            want: NONE,
          }),
        (err) => err instanceof LazarusError && err.code.startsWith('ERR_LZ_'),
      );
    }
    // Wanting pages outside the space after a barrier.
    assert.throws(
      () =>
        p.receive(1, {
          type: 'barrier-arrive',
          episode: 0,
          time: new Uint32Array(2),
          intervals: [],
          want: Uint32Array.of(3, 9),
        }),
      code(ErrorCodes.DSM_OUT_OF_RANGE),
    );
    assert.throws(
      () => p.receive(1, { type: 'barrier-release', episode: 0, intervals: [], serve: [] }),
      code(ErrorCodes.PROTOCOL),
    );
    assert.throws(
      () => p.receive(1, { type: 'page-push', episode: 0, pages: [{ page: 2, data: Buffer.alloc(PAGE) }] }),
      code(ErrorCodes.PROTOCOL),
    );
    assert.deepEqual(p.pages.data, before);
    assert.deepEqual(sent, []);
    assert.deepEqual([...p.log.time()], [0, 0]);
  });

  test('pushes of pages not wanted, from a non-home or of the wrong size are refused', async () => {
    const { p } = make();
    const done = p.barrier({ pages: new Uint32Array(), diffs: [] }, [2]);
    await new Promise((r) => setImmediate(r));
    const push = (from: number, page: number, size: number) => () =>
      p.receive(from, { type: 'page-push', episode: 0, pages: [{ page, data: Buffer.alloc(size, 5) }] });
    assert.throws(push(1, 3, PAGE), code(ErrorCodes.DSM_OUT_OF_RANGE));
    assert.throws(push(1, 2, 12), code(ErrorCodes.DSM_OUT_OF_RANGE));
    assert.throws(push(0, 2, PAGE), code(ErrorCodes.DSM_OUT_OF_RANGE));
    assert.throws(
      () => p.receive(1, { type: 'page-push', episode: 7, pages: [] }),
      code(ErrorCodes.PROTOCOL),
    );
    assert.equal(p.pages.state[2], PageState.INVALID);
    push(1, 2, PAGE)();
    p.receive(1, { type: 'barrier-arrive', episode: 0, time: new Uint32Array(2), intervals: [], want: NONE });
    await done;
    assert.equal(p.pages.state[2], PageState.VALID);
    assert.equal(p.pages.page(2)[0], 5);
  });

  test('a page reply with a wrong page or size is refused and leaves the page invalid', async () => {
    const { p, sent } = make();
    const fetch = p.fetch([2]);
    assert.equal(sent.length, 1);
    const req = (sent[0] as { req: number }).req;
    assert.throws(
      () => p.receive(1, { type: 'page-reply', req, pages: [{ page: 3, data: Buffer.alloc(PAGE) }] }),
      code(ErrorCodes.DSM_OUT_OF_RANGE),
    );
    assert.throws(
      () => p.receive(1, { type: 'page-reply', req, pages: [{ page: 2, data: Buffer.alloc(3) }] }),
      code(ErrorCodes.DSM_OUT_OF_RANGE),
    );
    assert.equal(p.pages.state[2], PageState.INVALID);
    p.receive(1, { type: 'page-reply', req, pages: [{ page: 2, data: Buffer.alloc(PAGE, 1) }] });
    await fetch;
    assert.equal(p.pages.state[2], PageState.VALID);
    assert.equal(p.pages.page(2)[0], 1);
    p.fail(new LazarusError(ErrorCodes.DSM_PEER_LOST, 'gone'));
    await assert.rejects(p.fetch([3]), code(ErrorCodes.DSM_PEER_LOST));
  });
});
