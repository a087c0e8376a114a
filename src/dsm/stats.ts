import { channel } from 'node:diagnostics_channel';

/** Per-node protocol counters; summed over nodes for a run summary. */
export interface DsmStats {
  messagesSent: number;
  messagesReceived: number;
  bytesSent: number;
  pageFetches: number;
  pageFetchBytes: number;
  pagesServed: number;
  diffsSent: number;
  diffBytesSent: number;
  diffsApplied: number;
  intervals: number;
  lockAcquires: number;
  lockWaitMs: number;
  barriers: number;
  barrierWaitMs: number;
  /** Fault-tolerance figures, when FT is on. */
  ft?: FtStats;
}

/** What a node's checkpoints and recoveries cost and did. */
export interface FtCounters {
  /** Snapshots taken, and checkpoints durable (a write may still run when the app ends). */
  checkpointsStarted: number;
  checkpoints: number;
  /** Checkpoint files that could not be written (the next safe point tries again). */
  checkpointFailures: number;
  checkpointBytes: number;
  /** Until durable, and the part the app waited for (the snapshot: encoding comes after). */
  checkpointMs: number;
  checkpointBlockMs: number;
  lastCheckpointBytes: number;
  logTrimmed: number;
  checkpointsCollected: number;
  replayedAnswers: number;
  dupsDropped: number;
  recoveries: number;
}

/** Recovery state a node holds (retained*), and its FT counters. */
export interface FtStats extends FtCounters {
  retainedLogEntries: number;
  retainedLogBytes: number;
  retainedCheckpoints: number;
  retainedCheckpointBytes: number;
  /** [ms since the node started, retained log bytes, retained log entries] at each barrier. */
  series: [number, number, number][];
}

export function emptyStats(): DsmStats {
  return {
    messagesSent: 0,
    messagesReceived: 0,
    bytesSent: 0,
    pageFetches: 0,
    pageFetchBytes: 0,
    pagesServed: 0,
    diffsSent: 0,
    diffBytesSent: 0,
    diffsApplied: 0,
    intervals: 0,
    lockAcquires: 0,
    lockWaitMs: 0,
    barriers: 0,
    barrierWaitMs: 0,
  };
}

export function addStats(into: DsmStats, other: Partial<DsmStats>): DsmStats {
  for (const key of Object.keys(into) as (keyof DsmStats)[]) {
    if (key === 'ft') continue;
    const v = other[key];
    if (typeof v === 'number' && Number.isFinite(v)) into[key] += v;
  }
  return into;
}

/**
 * Protocol events for observers (dashboard, tests, FT instrumentation), published only when someone
 * subscribes: { node, event: 'fetch' | 'diffs' | 'acquire' | 'release' | 'barrier' | 'peer-error' |
 * 'checkpoint-failed', ... }.
 */
export const dsmChannel = channel('lazarus:dsm');

export function publish(event: Record<string, unknown>): void {
  if (dsmChannel.hasSubscribers) dsmChannel.publish(event);
}
