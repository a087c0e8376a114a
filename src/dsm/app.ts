import type { DsmContext } from './context.ts';
import type { RegionSpec } from './pages.ts';

/** App parameters: plain numbers, so they cross processes as JSON. */
export type DsmParams = Readonly<Record<string, number>>;
export type DsmResult = Float64Array | Int32Array | Uint32Array;

export interface CheckResult {
  readonly ok: boolean;
  /** How the comparison was made and, on failure, where it differed. */
  readonly detail: string;
}

/**
 * A DSM application. `run` executes in a worker on every node with the same params; after a final
 * barrier, node 0 gathers the answer with `result`, which is checked against `sequential` (a plain
 * program, no DSM, same arithmetic). Timings cover `run` only, like the sequential program's.
 */
export interface DsmApp {
  readonly name: string;
  readonly description: string;
  /** Parameters for a problem of `size` (the app's main dimension), or its defaults. */
  params(size?: number): DsmParams;
  layout(params: DsmParams, nodes: number): readonly RegionSpec[];
  run(ctx: DsmContext, params: DsmParams): void;
  result(ctx: DsmContext, params: DsmParams): DsmResult;
  sequential(params: DsmParams): DsmResult;
  check(got: DsmResult, expected: DsmResult): CheckResult;
}

/** Bitwise equality, for apps whose arithmetic order matches the sequential program. */
export function checkExact(got: DsmResult, expected: DsmResult): CheckResult {
  if (got.length !== expected.length)
    return { ok: false, detail: `length ${got.length} != ${expected.length}` };
  const a = new Uint8Array(got.buffer, got.byteOffset, got.byteLength);
  const b = new Uint8Array(expected.buffer, expected.byteOffset, expected.byteLength);
  for (let i = 0; i < a.length; i++) {
    if (a[i] !== b[i]) {
      const el = Math.floor(i / got.BYTES_PER_ELEMENT);
      return { ok: false, detail: `element ${el}: ${got[el]} != ${expected[el]}` };
    }
  }
  return { ok: true, detail: `bitwise equal (${got.length} elements)` };
}

/** Equality within a relative tolerance, for apps whose sums run in a different order. */
export function checkClose(got: DsmResult, expected: DsmResult, tolerance: number): CheckResult {
  if (got.length !== expected.length)
    return { ok: false, detail: `length ${got.length} != ${expected.length}` };
  let worst = 0;
  for (let i = 0; i < got.length; i++) {
    const e = expected[i]!;
    const err = Math.abs(got[i]! - e) / Math.max(1, Math.abs(e));
    if (!(err <= tolerance))
      return { ok: false, detail: `element ${i}: ${got[i]} != ${e} (relative error ${err})` };
    worst = Math.max(worst, err);
  }
  return { ok: true, detail: `within ${tolerance} relative (worst ${worst.toExponential(2)})` };
}

/** Deterministic pseudo-random numbers in [0, 1) from a seed (mulberry32), for app inputs. */
export function seededRandom(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (s + 0x6d2b79f5) >>> 0;
    let t = s;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}
