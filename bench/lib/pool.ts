/** Helpers for benchmarks that run a pool of lazarus servers, one child process per member. */
import { readFileSync } from 'node:fs';
import { freePorts } from '../../src/pool/free-ports.ts';
import type { Member } from '../../src/pool/index.ts';

/** Shared by every member of a benchmark pool (any string of 16+ bytes would do). */
export const BENCH_POOL_SECRET = 'lazarus-benchmark-pool-secret';

/** Members on loopback with fresh client and peer ports, one per id. */
export async function loopbackMembers(ids: readonly string[]): Promise<Member[]> {
  const ports = await freePorts(2 * ids.length);
  return ids.map((id, i) => ({ id, host: '127.0.0.1', port: ports[2 * i]!, peerPort: ports[2 * i + 1]! }));
}

/**
 * Microseconds on the system-wide monotonic clock (CLOCK_MONOTONIC, as process.hrtime uses), so
 * timestamps taken in different processes on one machine can be subtracted.
 */
export function monoUs(): number {
  return Number(process.hrtime.bigint()) / 1000;
}

/**
 * The kernel's count of connections dropped because a listener's accept queue was full
 * (TcpExt ListenOverflows in /proc/net/netstat, for this network namespace); undefined where the file
 * is missing. Read it before and after a burst of connects to see whether the backlog overflowed.
 */
export function listenOverflows(): number | undefined {
  let text: string;
  try {
    text = readFileSync('/proc/net/netstat', 'utf8');
  } catch {
    return undefined;
  }
  const lines = text.split('\n').filter((l) => l.startsWith('TcpExt:'));
  const names = lines[0]?.split(/\s+/) ?? [];
  const values = lines[1]?.split(/\s+/) ?? [];
  const at = names.indexOf('ListenOverflows');
  return at > 0 && values[at] !== undefined ? Number(values[at]) : undefined;
}
