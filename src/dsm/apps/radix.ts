import { checkExact, type DsmApp, type DsmParams } from '../app.ts';
import { blockOwner, blockRange, type RegionSpec } from '../pages.ts';

/**
 * LSD radix sort of 32-bit keys, 8 bits per pass (the diff-heavy kernel): each pass every node
 * histograms its block of keys, publishes the histogram, and after a barrier scatters its keys to
 * positions all over the destination array, so pages are written by several nodes at once and
 * travel home as multi-writer diffs. Sorting is deterministic: equal to the sequential sort.
 */

const BITS = 8;
const RADIX = 1 << BITS;

function key(seed: number, i: number): number {
  let h = Math.imul(i ^ seed, 0x9e3779b1);
  h ^= h >>> 15;
  h = Math.imul(h, 0x85ebca77);
  return (h ^ (h >>> 13)) >>> 0;
}

function keysRegion(name: string, n: number): RegionSpec {
  return {
    name,
    bytes: n * 4,
    placement: { kind: 'explicit', home: (offset, nodes) => blockOwner(Math.floor(offset / 4), n, nodes) },
  };
}

function histogram(keys: Uint32Array, lo: number, hi: number, shift: number, out: Uint32Array): void {
  out.fill(0);
  for (let i = lo; i < hi; i++) out[(keys[i]! >>> shift) & (RADIX - 1)]!++;
}

export const radix: DsmApp = {
  name: 'radix',
  description: 'LSD radix sort (scattered writes: multi-writer diffs)',
  params: (size) => ({ n: size ?? 1 << 18, seed: 11 }),
  layout: ({ n }: DsmParams, nodes) => [
    keysRegion('a', n!),
    keysRegion('b', n!),
    { name: 'hist', bytes: nodes * RADIX * 4, placement: { kind: 'block' } },
  ],
  run(ctx, { n, seed }) {
    const count = n!;
    const { node, nodes } = ctx;
    const { start, end } = blockRange(node, count, nodes);
    const hist = ctx.u32('hist');
    const mine = ctx.u32('hist', node * RADIX, RADIX);
    const offsets = new Uint32Array(RADIX);
    // Safe point (FT): resume at bit shift restored[0]; passes alternate the arrays.
    const from = ctx.restored?.[0] ?? 0;
    let src = (from / BITS) % 2 === 0 ? 'a' : 'b';
    let dst = src === 'a' ? 'b' : 'a';
    if (!ctx.restored) {
      ctx.write(ctx.u32(src, start, end - start));
      const init = ctx.u32(src);
      for (let i = start; i < end; i++) init[i] = key(seed!, i);
    }
    for (let shift = from; shift < 32; shift += BITS) {
      const from = ctx.u32(src);
      const to = ctx.u32(dst);
      ctx.read(ctx.u32(src, start, end - start));
      ctx.write(mine);
      histogram(from, start, end, shift, mine);
      ctx.barrier(hist);
      // Start of digit d for this node: all keys with smaller digits, then this digit's keys of lower nodes.
      let base = 0;
      const targets: Uint32Array[] = [];
      for (let d = 0; d < RADIX; d++) {
        let before = 0;
        let total = 0;
        for (let k = 0; k < nodes; k++) {
          const c = hist[k * RADIX + d]!;
          if (k < node) before += c;
          total += c;
        }
        offsets[d] = base + before;
        if (mine[d]! > 0) targets.push(ctx.u32(dst, base + before, mine[d]!));
        base += total;
      }
      // Every range this node scatters into, made writable at once: one fetch of the stale pages.
      ctx.write(...targets);
      for (let i = start; i < end; i++) {
        const k = from[i]!;
        to[offsets[(k >>> shift) & (RADIX - 1)]!++] = k;
      }
      ctx.barrier();
      [src, dst] = [dst, src];
      ctx.safePoint([shift + BITS]);
    }
  },
  // Each pass swaps source and destination: after an even number of passes the keys are back in a.
  result: (ctx) => ctx.gather(ctx.u32((32 / BITS) % 2 === 0 ? 'a' : 'b')),
  sequential({ n, seed }) {
    const count = n!;
    let from = new Uint32Array(count);
    let to = new Uint32Array(count);
    for (let i = 0; i < count; i++) from[i] = key(seed!, i);
    const counts = new Uint32Array(RADIX);
    for (let shift = 0; shift < 32; shift += BITS) {
      histogram(from, 0, count, shift, counts);
      let base = 0;
      for (let d = 0; d < RADIX; d++) {
        const c = counts[d]!;
        counts[d] = base;
        base += c;
      }
      for (let i = 0; i < count; i++) {
        const k = from[i]!;
        to[counts[(k >>> shift) & (RADIX - 1)]!++] = k;
      }
      [from, to] = [to, from];
    }
    return from;
  },
  check: checkExact,
};
