import assert from 'node:assert/strict';
import type { DsmParams } from '../../../src/dsm/app.ts';
import { type AppRun, type FtOptions, runApp } from '../../../src/dsm/launcher.ts';
import type { ProgressEvent } from '../../../src/dsm/runtime.ts';

/** Small problems: each FT run takes a second or a few, even on 8 node processes on 2 cores. */
export const SMALL: Record<string, DsmParams> = {
  // Rows of 1 KiB: every node's block of rows starts on a page boundary on 2, 4 and 8 nodes.
  sor: { n: 128, iters: 40 },
  lu: { n: 96, bs: 8, seed: 7 },
  water: { m: 64, steps: 10, seed: 3 },
  matmul: { n: 96 },
  radix: { n: 1 << 14, seed: 11 },
};

/** Barrier arrivals each node makes with SMALL params (start and final barriers included). */
export const ARRIVALS: Record<string, number> = { sor: 11, lu: 14, water: 22, matmul: 3, radix: 10 };

export interface FtRun {
  readonly run: AppRun;
  readonly events: ProgressEvent[];
}

/**
 * A run's progress events, kept and timed: `fail` rethrows a run's error with the events before it,
 * so a failed or hung run says where it stopped.
 */
export function eventTrail(onEvent?: (e: ProgressEvent) => void) {
  const events: ProgressEvent[] = [];
  const seen: string[] = [];
  const started = performance.now();
  return {
    events,
    onProgress: (e: ProgressEvent) => {
      events.push(e);
      seen.push(`+${(performance.now() - started).toFixed(0)} ms ${JSON.stringify(e)}`);
      onEvent?.(e);
    },
    fail: (what: string) => (err: Error) => {
      throw new Error(`${what}${err.message}; events:\n${seen.join('\n')}`, { cause: err });
    },
  };
}

export async function runFt(
  app: string,
  nodes: number,
  ft: FtOptions,
  params: DsmParams = SMALL[app]!,
  onEvent?: (e: ProgressEvent) => void,
): Promise<FtRun> {
  const trail = eventTrail(onEvent);
  const run = await runApp({
    app,
    nodes,
    params,
    timeoutMs: 90_000,
    ft: { policy: { everySafePoints: 2 }, ...ft },
    onProgress: trail.onProgress,
  }).catch(trail.fail(`${app} on ${nodes} nodes: `));
  return { run, events: trail.events };
}

/** The run's result equals the sequential program's, and node `node` failed and recovered `times`. */
export function assertRecovered(r: FtRun, node: number, times = 1): void {
  assert.ok(r.run.check.ok, `result differs after recovery: ${r.run.check.detail}`);
  const count = (kind: ProgressEvent['kind']) =>
    r.events.filter((e) => e.kind === kind && 'node' in e && e.node === node).length;
  assert.equal(count('node-lost'), times, `node ${node} should have been lost ${times} time(s)`);
  assert.equal(count('restarted'), times, `node ${node} should have been restarted ${times} time(s)`);
  assert.equal(count('recovered'), times, `node ${node} should have caught up ${times} time(s)`);
  const ft = r.run.run.stats[node]?.ft;
  assert.ok(ft, 'FT stats missing');
  assert.equal(ft.recoveries, 1, 'the last incarnation of the node should be a recovery');
}
