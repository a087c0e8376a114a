/**
 * Views of what follows the first `n` bytes of `parts[from..]`: what is left to write after a short
 * writev, or what to resend from an offset. Nothing is copied.
 */
export function bytesAfter<T extends Uint8Array>(parts: readonly T[], n: number, from = 0): T[] {
  const out: T[] = [];
  let left = n;
  for (let i = from; i < parts.length; i++) {
    const p = parts[i]!;
    if (left >= p.length) {
      left -= p.length;
      continue;
    }
    out.push(left > 0 ? (p.subarray(left) as T) : p);
    left = 0;
  }
  return out;
}
