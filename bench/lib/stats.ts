/** Summary statistics over benchmark samples. */

/** Ascending copy, so callers can keep their samples in run order. */
export function sorted(values: readonly number[]): number[] {
  return [...values].sort((a, b) => a - b);
}

export function median(values: readonly number[]): number {
  if (values.length === 0) throw new Error('median of no values');
  const s = sorted(values);
  const mid = s.length >> 1;
  return s.length % 2 === 1 ? s[mid]! : (s[mid - 1]! + s[mid]!) / 2;
}

/**
 * Nearest-rank percentile (`p` in 0..100) of values already sorted ascending: the smallest sample
 * with at least p% of samples at or below it, so it is always an observed value.
 */
export function percentile(sortedValues: readonly number[], p: number): number {
  if (sortedValues.length === 0) throw new Error('percentile of no values');
  const rank = Math.max(1, Math.ceil((p / 100) * sortedValues.length));
  return sortedValues[Math.min(rank, sortedValues.length) - 1]!;
}

export function mean(values: readonly number[]): number {
  if (values.length === 0) throw new Error('mean of no values');
  let sum = 0;
  for (const v of values) sum += v;
  return sum / values.length;
}

/** Rounds for display and for the JSON lines: figures beyond 3 significant decimals are noise. */
export function round(value: number, decimals = 3): number {
  const f = 10 ** decimals;
  return Math.round(value * f) / f;
}
