import { checkExact, type DsmApp, type DsmParams } from '../app.ts';
import { blockOwner, blockRange, type RegionSpec } from '../pages.ts';

/**
 * C = A x B on n x n matrices. Rows of A, B and C are split in blocks (each node is home of its
 * rows and fills them); every node then reads all of B (read sharing) and computes rows of C.
 * The dot products run in the same order as the sequential program: bitwise equal.
 *
 * Rows of C are handed out in chunks rather than split once: each block's remaining rows are a
 * [front, back) pair in shared memory under a lock of its own. A node takes chunks from the front
 * of its own block, then from the back of the others'. Equal halves finish together only if both
 * cores run at the same speed, and a VM's cores often do not (one runs 1.5x slower than the other
 * for up to a second at a time here); a node that finishes early now takes over the other's rows.
 * Each chunk is half of what is left (at least MIN_CHUNK rows), so a block costs a few lock
 * round trips, and a node only computes rows homed elsewhere when it would otherwise wait.
 */

const MIN_CHUNK = 4;
/** Each block's [front, back) pair sits on a 4 KiB slot of its own, homed at the block's node. */
const SLOT_BYTES = 4096;

const a = (i: number, j: number) => ((i * 7 + j * 3) % 17) / 17 - 0.5;
const b = (i: number, j: number) => ((i * 5 + j * 11) % 13) / 13 - 0.25;

function fill(m: Float64Array, n: number, lo: number, hi: number, f: (i: number, j: number) => number): void {
  for (let i = lo; i < hi; i++) for (let j = 0; j < n; j++) m[i * n + j] = f(i, j);
}

/** Rows [lo, hi) of C = A x B (i-k-j order: streams rows of B). */
function multiply(
  A: Float64Array,
  B: Float64Array,
  C: Float64Array,
  n: number,
  lo: number,
  hi: number,
): void {
  for (let i = lo; i < hi; i++) {
    const ci = i * n;
    for (let j = 0; j < n; j++) C[ci + j] = 0;
    for (let k = 0; k < n; k++) {
      const aik = A[i * n + k]!;
      const bk = k * n;
      for (let j = 0; j < n; j++) C[ci + j] = C[ci + j]! + aik * B[bk + j]!;
    }
  }
}

function rowsRegion(name: string, n: number): RegionSpec {
  return {
    name,
    bytes: n * n * 8,
    placement: {
      kind: 'explicit',
      home: (offset, nodes) => blockOwner(Math.floor(offset / (n * 8)), n, nodes),
    },
  };
}

export const matmul: DsmApp = {
  name: 'matmul',
  description: 'dense matrix multiply (read sharing of B, rows handed out in chunks under locks)',
  params: (size) => ({ n: size ?? 256 }),
  layout: ({ n }: DsmParams, nodes: number) => [
    rowsRegion('a', n!),
    rowsRegion('b', n!),
    rowsRegion('c', n!),
    {
      name: 'queue',
      bytes: nodes * SLOT_BYTES,
      placement: { kind: 'explicit', home: (offset) => Math.min(nodes - 1, Math.floor(offset / SLOT_BYTES)) },
    },
  ],
  run(ctx, params) {
    const size = params.n!;
    const { start, end } = blockRange(ctx.node, size, ctx.nodes);
    const [A, B, C] = [ctx.f64('a'), ctx.f64('b'), ctx.f64('c')];
    const rows = (name: string, lo: number, hi: number) => ctx.f64(name, lo * size, (hi - lo) * size);
    const slot = (block: number) => ctx.i32('queue', (block * SLOT_BYTES) / 4, 2);
    // Safe point (FT): after the barrier, a restart skips the fill.
    if (!ctx.restored) {
      ctx.write(rows('a', start, end));
      ctx.write(rows('b', start, end));
      fill(A, size, start, end, a);
      fill(B, size, start, end, b);
      const own = slot(ctx.node);
      ctx.write(own);
      own.set([start, end]);
      ctx.barrier(B);
      ctx.safePoint([1]);
    }
    /** The next chunk of a block's rows, from its front (the owner) or its back (anyone else). */
    const take = (block: number): { lo: number; hi: number } | undefined => {
      const queue = slot(block);
      ctx.acquire(block, queue);
      const [front, back] = [queue[0]!, queue[1]!];
      let chunk: { lo: number; hi: number } | undefined;
      if (front < back) {
        const count = Math.min(back - front, Math.max(MIN_CHUNK, Math.ceil((back - front) / 2)));
        chunk = block === ctx.node ? { lo: front, hi: front + count } : { lo: back - count, hi: back };
        ctx.write(queue);
        queue.set(block === ctx.node ? [chunk.hi, back] : [front, chunk.lo]);
      }
      ctx.release(block);
      return chunk;
    };
    // params.lagMs (tests): node params.lagNode waits that long before each chunk, as on a slow core.
    const lag = ctx.node === params.lagNode && params.lagMs ? params.lagMs : 0;
    const asleep = lag > 0 ? new Int32Array(new SharedArrayBuffer(4)) : undefined;
    for (let t = 0; t < ctx.nodes; t++) {
      const block = (ctx.node + t) % ctx.nodes;
      for (let chunk = take(block); chunk; chunk = take(block)) {
        if (asleep) Atomics.wait(asleep, 0, 0, lag);
        // One fetch for both when the rows are homed elsewhere (a chunk taken from another block).
        const c = rows('c', chunk.lo, chunk.hi);
        ctx.read(rows('a', chunk.lo, chunk.hi), c);
        ctx.write(c);
        multiply(A, B, C, size, chunk.lo, chunk.hi);
      }
    }
  },
  result: (ctx) => ctx.gather(ctx.f64('c')),
  sequential({ n }) {
    const size = n!;
    const [A, B, C] = [
      new Float64Array(size * size),
      new Float64Array(size * size),
      new Float64Array(size * size),
    ];
    fill(A, size, 0, size, a);
    fill(B, size, 0, size, b);
    multiply(A, B, C, size, 0, size);
    return C;
  },
  check: checkExact,
};
