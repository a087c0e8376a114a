/**
 * Vector timestamps: entry j counts the intervals of node j this node has seen (a contiguous prefix,
 * because write notices always travel as "everything after your entry").
 */
export type VectorTime = Uint32Array;

export function zeroTime(nodes: number): VectorTime {
  return new Uint32Array(nodes);
}

/** a <= b in every entry: everything a has seen, b has seen. */
export function covers(b: VectorTime, a: VectorTime): boolean {
  for (let i = 0; i < a.length; i++) if (a[i]! > (b[i] ?? 0)) return false;
  return true;
}

/** Entrywise maximum, into `into`. */
export function mergeInto(into: VectorTime, other: VectorTime): void {
  for (let i = 0; i < into.length; i++) if (other[i]! > into[i]!) into[i] = other[i]!;
}

export function equalTimes(a: VectorTime, b: VectorTime): boolean {
  return a.length === b.length && a.every((v, i) => v === b[i]);
}
