import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, statSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import type { DsmParams } from '../src/dsm/app.ts';
import { BUILTIN_APPS } from '../src/dsm/apps/index.ts';
import { CheckpointStore } from '../src/dsm/ft/checkpoint-store.ts';
import type { GcMode } from '../src/dsm/ft/core.ts';
import { type FtOptions, runCluster, runSequential } from '../src/dsm/launcher.ts';
import type { ProgressEvent } from '../src/dsm/runtime.ts';
import type { FtStats } from '../src/dsm/stats.ts';
import { lastJsonLine } from './lib/child.ts';
import { describeMachine, loadAverage, machineLine } from './lib/machine.ts';
import { emitResult, textTable } from './lib/report.ts';
import { median, round } from './lib/stats.ts';

/**
 * DSM fault tolerance, each figure against its baseline in the same run:
 *
 * 1. Failure-free overhead: every app on 2 nodes with FT off and on (checkpoints at the app's safe
 *    points every second, the default, and every 250 ms; LLT + CGC), compute time on node 0. Runs
 *    are interleaved in pairs whose order alternates (off-on, on-off, ...), and the ratio is the
 *    median of the pairs' ratios: a pair runs within a second or two, so load that drifts over the
 *    benchmark (other work on a shared machine) cancels out instead of landing on one variant.
 * 2. Recovery state over time (water, 3 nodes, a checkpoint every 2nd safe point): retained log per
 *    node sampled at every barrier with no GC, LLT, LLT + CGC; retained checkpoints, checkpoint sizes
 *    and times. Plot: bench/dsm-ft-log.svg.
 * 3. Recovery: lu on 3 nodes, node 2 SIGKILLed mid-run: time to detect, to restart and restore, to
 *    re-execute to the point of failure, against the failure-free run of the same job.
 *
 *   tsx bench/dsm-ft.ts [--runs 5] [--apps sor,lu] [--scale 1] [--quick] [--only overhead]
 *     [--in-process]
 *   (--quick: 5 pairs at scale 0.5, no 250 ms variant, shorter recovery-state run;
 *   --only: a comma list of overhead, retention, recovery, the parts to run)
 *
 * Each overhead run is a fresh launcher process (this file with --one), as a `lazarus dsm run` is:
 * without FT node 0 is the launcher's process, and in one long-lived benchmark process it would be
 * warm (its protocol code JIT-compiled by the earlier runs) while FT's node 0, a child process, is
 * always started afresh, which favours FT off. --in-process runs them all in this process instead.
 */

const { values } = parseArgs({
  options: {
    runs: { type: 'string', default: '5' },
    apps: { type: 'string', default: 'sor,matmul,lu,water,radix' },
    scale: { type: 'string', default: '1' },
    quick: { type: 'boolean', default: false },
    only: { type: 'string', default: 'overhead,retention,recovery' },
    'in-process': { type: 'boolean', default: false },
    /** Internal: run one cluster (JSON {app, params, ft?}), print its measure as JSON, exit. */
    one: { type: 'string' },
  },
});
const parts = new Set(values.only.split(','));
// Quick still takes several pairs: one pair of runs of 50-100 ms is +-30% noise on a shared machine.
const runs = values.quick ? 5 : Number(values.runs);
const scale = values.quick ? 0.5 : Number(values.scale);
/** The checkpoint-every-250 ms variant (a stress figure), in full runs only. */
const stress = !values.quick;

// bench/dsm.ts sizes (scaled), but radix keeps the 1 Mi keys it had when FT's overhead target was
// measured: at bench/dsm.ts's 8 Mi, FT costs radix 1.15-1.21 (docs/ft-dsm.md, "Measured").
const SIZES: Record<string, (s: number) => DsmParams> = {
  sor: (s) => ({ n: 128 * Math.max(1, Math.round(24 * s)), iters: 20 }),
  matmul: (s) => ({ n: Math.round(768 * s) }),
  lu: (s) => ({ n: 32 * Math.max(1, Math.round(32 * s)), bs: 32, seed: 7 }),
  water: (s) => ({ m: Math.round(7680 * s), steps: 2, seed: 3 }),
  radix: (s) => ({ n: Math.round((1 << 20) * s), seed: 11 }),
};

async function timed(
  app: string,
  params: DsmParams,
  nodes: number,
  ft?: FtOptions,
  onEvent?: (e: ProgressEvent) => void,
) {
  const events: { at: number; e: ProgressEvent }[] = [];
  let t0 = 0;
  const started = performance.now();
  const run = await runCluster({
    app,
    params,
    nodes,
    timeoutMs: 300_000,
    ...(ft ? { ft } : {}),
    onProgress: (e) => {
      if (e.kind === 'started') t0 = performance.now();
      events.push({ at: performance.now() - t0, e });
      onEvent?.(e);
    },
  });
  return { run, wallMs: performance.now() - started, events };
}

console.log(`DSM fault-tolerance benchmark, ${runs} interleaved runs per variant, medians. ${machineLine()}`);

const method = values['in-process'] ? 'every run in this process' : 'a fresh launcher process per run';

/** One overhead run: node 0's compute time, whether the result checked, node 1's FT stats. */
interface Measure {
  readonly ms: number;
  readonly ok: boolean;
  readonly n1: FtStats | undefined;
}

async function measureHere(app: string, params: DsmParams, ft?: FtOptions): Promise<Measure> {
  const { result: expected } = await runSequential(app, params);
  const { run } = await timed(app, params, 2, ft);
  const ok = run.result !== undefined && BUILTIN_APPS[app]!.check(run.result, expected).ok;
  return { ms: run.computeMs, ok, n1: run.stats[1]?.ft };
}

/** One overhead run in a fresh launcher process (see the header), or here with --in-process. */
async function measure(app: string, params: DsmParams, ft?: FtOptions): Promise<Measure> {
  if (values['in-process']) return measureHere(app, params, ft);
  const spec = JSON.stringify({ app, params, ...(ft ? { ft } : {}) });
  const child = spawnSync(
    process.execPath,
    [...process.execArgv, fileURLToPath(import.meta.url), '--one', spec],
    {
      encoding: 'utf8',
      stdio: ['ignore', 'pipe', 'inherit'],
      maxBuffer: 64 << 20,
    },
  );
  const measured = lastJsonLine(child.stdout);
  if (child.status !== 0 || !measured) throw new Error(`run of ${app} failed (${child.status})`);
  return measured as unknown as Measure;
}

if (values.one !== undefined) {
  const { app, params, ft } = JSON.parse(values.one) as { app: string; params: DsmParams; ft?: FtOptions };
  console.log(JSON.stringify(await measureHere(app, params, ft)));
  process.exit(0);
}

// 1. Failure-free overhead: FT off; FT on with the default policy (a checkpoint at the first safe
// point after each second); FT on with a checkpoint every 250 ms (a stress figure).
const FT_DEFAULT: FtOptions = { gc: 'llt+cgc' };
const FT_250: FtOptions = { policy: { intervalMs: 250 }, gc: 'llt+cgc' };
const overhead: Record<string, Record<string, unknown>> = {};
const rows: (string | number)[][] = [];
for (const app of values.apps.split(',').filter((a) => a in SIZES && parts.has('overhead'))) {
  const params = SIZES[app]!(scale);
  const off: number[] = [];
  const on: number[] = [];
  const on250: number[] = [];
  let ok = true;
  let ckpt = { n: 0, bytes: 0, ms: 0, blockMs: 0 };
  const pairs: number[] = [];
  const pairs250: number[] = [];
  for (let r = 0; r < runs; r++) {
    // Alternate which variant goes first, so neither always runs right after the other.
    const [a, b] =
      r % 2 === 0
        ? [await measure(app, params), await measure(app, params, FT_DEFAULT)]
        : await measure(app, params, FT_DEFAULT).then(async (b) => [await measure(app, params), b] as const);
    off.push(a.ms);
    on.push(b.ms);
    pairs.push(b.ms / a.ms);
    const c = stress ? await measure(app, params, FT_250) : undefined;
    if (c) {
      on250.push(c.ms);
      pairs250.push(c.ms / a.ms);
    }
    ok &&= [a, b, ...(c ? [c] : [])].every((x) => x.ok);
    // Snapshots taken in the run (the last write may finish after the app), what one costs the app
    // (the snapshot), and, for durable ones, size and time until durable.
    const n1 = (c ?? b).n1;
    if (n1 && n1.checkpointsStarted > 0) {
      ckpt = {
        n: n1.checkpointsStarted,
        bytes: n1.lastCheckpointBytes,
        ms: n1.checkpoints > 0 ? n1.checkpointMs / n1.checkpoints : 0,
        blockMs: n1.checkpointBlockMs / n1.checkpointsStarted,
      };
    }
  }
  const ratio = median(pairs);
  const ratio250 = stress ? median(pairs250) : Number.NaN;
  overhead[app] = {
    params,
    ok,
    off_ms: round(median(off), 1),
    on_ms: round(median(on), 1),
    ratio: round(ratio, 3),
    on250_ms: stress ? round(median(on250), 1) : null,
    ratio_ckpt250: stress ? round(ratio250, 3) : null,
    checkpoints_node1_250: ckpt.n,
    checkpoint_bytes: ckpt.bytes,
    checkpoint_ms: round(ckpt.ms, 1),
    checkpoint_block_ms: round(ckpt.blockMs, 1),
  };
  rows.push([
    app,
    JSON.stringify(params),
    round(median(off), 1),
    round(median(on), 1),
    round(ratio, 3),
    stress ? round(median(on250), 1) : '-',
    stress ? round(ratio250, 3) : '-',
    ckpt.n,
    ckpt.bytes,
    round(ckpt.ms, 1),
    round(ckpt.blockMs, 1),
    ok ? 'yes' : 'NO',
  ]);
  console.error(`[bench dsm-ft] overhead ${app} done`);
}
if (parts.has('overhead')) {
  console.log(
    `\nFailure-free overhead, 2 nodes, compute ms on node 0, medians (FT: LLT + CGC; checkpoint policy: 1 s, or 250 ms; ratio: median of the interleaved pairs' ratios; ${method}):`,
  );
  console.log(
    textTable(
      [
        'app',
        'params',
        'off',
        'on 1s',
        'ratio',
        'on 250ms',
        'ratio',
        'ckpts n1',
        'ckpt B',
        'ckpt ms',
        'app waits ms',
        'checked',
      ],
      rows,
    ),
  );
  console.log('target: ratio (checkpoint every 1 s) <= 1.10');
}

// 2. Recovery state over time.
const gcModes: GcMode[] = ['none', 'llt', 'llt+cgc'];
const waterParams = { m: values.quick ? 64 : 256, steps: values.quick ? 20 : 60, seed: 3 };
const retention: Record<string, Record<string, unknown>> = {};
const series: Record<string, FtStats['series'][]> = {};
const retRows: (string | number)[][] = [];
for (const gc of parts.has('retention') ? gcModes : []) {
  const r = await timed('water', waterParams, 3, { gc, policy: { everySafePoints: 2 } });
  const ft = r.run.stats.map((s) => s.ft!);
  series[gc] = ft.map((f) => f.series);
  const perNode = ft.map((f) => ({
    final_entries: f.retainedLogEntries,
    final_bytes: f.retainedLogBytes,
    max_bytes: Math.max(0, ...f.series.map((x) => x[1])),
    checkpoints: f.checkpoints,
    retained_checkpoints: f.retainedCheckpoints,
    retained_checkpoint_bytes: f.retainedCheckpointBytes,
  }));
  // Means over every node's checkpoints (node 0 is a child that checkpoints like the others).
  const sum = (get: (f: FtStats) => number) => ft.reduce((s, f) => s + get(f), 0);
  const taken = Math.max(
    1,
    sum((f) => f.checkpoints),
  );
  retention[gc] = {
    max_log_bytes: Math.max(...perNode.map((n) => n.max_bytes)),
    final_log_bytes: sum((f) => f.retainedLogBytes),
    retained_checkpoints: sum((f) => f.retainedCheckpoints),
    checkpoints: sum((f) => f.checkpoints),
    checkpoint_bytes_mean: round(sum((f) => f.checkpointBytes) / taken, 0),
    checkpoint_ms_mean: round(sum((f) => f.checkpointMs) / taken, 2),
  };
  for (const [i, n] of perNode.entries()) {
    retRows.push([
      gc,
      i,
      n.final_entries,
      n.final_bytes,
      n.max_bytes,
      n.checkpoints,
      n.retained_checkpoints,
      n.retained_checkpoint_bytes,
    ]);
  }
  console.error(`[bench dsm-ft] retention ${gc} done`);
}
if (parts.has('retention')) {
  console.log(
    `\nRecovery state, water ${JSON.stringify(waterParams)} on 3 nodes, checkpoint every 2nd safe point:`,
  );
  console.log(
    textTable(
      ['gc', 'node', 'log entries', 'log B', 'max log B', 'ckpts', 'ckpts kept', 'ckpt files B'],
      retRows,
    ),
  );
  writeFileSync(new URL('./dsm-ft-log.svg', import.meta.url), plot(series));
  console.log('plot: bench/dsm-ft-log.svg');
}

// 3. Recovery.
const recovery = parts.has('recovery') ? await recoveryPart() : null;

emitResult({
  bench: 'dsm-ft',
  machine: describeMachine(),
  loadavg: loadAverage(),
  runs,
  method,
  overhead,
  retention,
  recovery,
});

async function recoveryPart() {
  const luParams = { n: values.quick ? 256 : 512, bs: 16, seed: 7 };
  const base = await timed('lu', luParams, 3, { policy: { everySafePoints: 4 } });
  const killAt = Math.max(20, Math.round(base.run.computeMs * 0.6));
  // The work lost is what node 2 had done since its last durable checkpoint: read off the files
  // (their mtimes) the moment it is reported lost, before its restart writes new ones.
  const dir = mkdtempSync(join(os.tmpdir(), 'lazarus-bench-ft-'));
  let startedWall = 0;
  let lastCheckpointWall: number | undefined;
  const failed = await timed(
    'lu',
    luParams,
    3,
    { dir, policy: { everySafePoints: 4 }, kills: [{ node: 2, atMs: killAt }] },
    (e) => {
      if (e.kind === 'started') startedWall = Date.now();
      if (e.kind === 'node-lost' && e.node === 2 && lastCheckpointWall === undefined) {
        const files = CheckpointStore.list(dir, 2);
        lastCheckpointWall = files.length > 0 ? statSync(files.at(-1)!.path).mtimeMs : startedWall;
      }
    },
  );
  rmSync(dir, { recursive: true, force: true });
  const at = (kind: ProgressEvent['kind']) => failed.events.find((x) => x.e.kind === kind)?.at;
  const lostAt = at('node-lost');
  const restartedAt = at('restarted');
  const rejoinedAt = at('rejoined');
  const recoveredAt = at('recovered');
  const n2 = failed.run.stats[2]!.ft!;
  const recovery = {
    params: luParams,
    kill_at_ms: killAt,
    // A run that ended before the kill measured no recovery: it does not count as checked.
    ok:
      lostAt !== undefined &&
      failed.run.result !== undefined &&
      BUILTIN_APPS.lu!.check(failed.run.result, (await runSequential('lu', luParams)).result).ok,
    detect_ms: lostAt !== undefined ? round(lostAt - killAt, 1) : -1,
    restart_ms:
      restartedAt !== undefined && rejoinedAt !== undefined ? round(rejoinedAt - restartedAt, 1) : -1,
    reexecute_ms:
      rejoinedAt !== undefined && recoveredAt !== undefined ? round(recoveredAt - rejoinedAt, 1) : -1,
    work_lost_ms: lastCheckpointWall !== undefined ? round(startedWall + killAt - lastCheckpointWall, 1) : -1,
    replayed_answers: n2.replayedAnswers,
    total_ms_failure_free: round(base.run.computeMs, 1),
    total_ms_one_failure: round(failed.run.computeMs, 1),
    one_failure_over_free: round(failed.run.computeMs / base.run.computeMs, 2),
  };
  console.log(
    `\nRecovery, lu ${JSON.stringify(luParams)} on 3 nodes, node 2 SIGKILLed ${killAt} ms into the run:`,
  );
  console.log(
    textTable(
      [
        'detect ms',
        'restart+rejoin ms',
        'work lost ms',
        're-execute ms',
        'replayed',
        'free ms',
        'one failure ms',
        'ratio',
        'checked',
      ],
      [
        [
          recovery.detect_ms,
          recovery.restart_ms,
          recovery.work_lost_ms,
          recovery.reexecute_ms,
          recovery.replayed_answers,
          recovery.total_ms_failure_free,
          recovery.total_ms_one_failure,
          recovery.one_failure_over_free,
          recovery.ok ? 'yes' : 'NO',
        ],
      ],
    ),
  );
  console.log(
    '(work lost = what node 2 had done since its last durable checkpoint, redone in "re-execute"; restart includes process and worker start-up)',
  );
  return recovery;
}

/** Retained log bytes over time per node and GC mode, as a hand-written SVG line chart. */
function plot(data: Record<string, FtStats['series'][]>): string {
  const W = 900;
  const H = 420;
  const pad = { l: 70, r: 180, t: 30, b: 40 };
  // x: barrier number (logical time: the same for every node and every run); y: retained bytes.
  const maxT = Math.max(1, ...Object.values(data).flatMap((nodes) => nodes.map((s) => s.length - 1)));
  const maxB = Math.max(
    1,
    ...Object.values(data).flatMap((nodes) => nodes.flatMap((s) => s.map((p) => p[1]))),
  );
  const x = (t: number) => pad.l + (t / maxT) * (W - pad.l - pad.r);
  const y = (b: number) => H - pad.b - (b / maxB) * (H - pad.t - pad.b);
  const colors: Record<string, string> = { none: '#d62728', llt: '#1f77b4', 'llt+cgc': '#2ca02c' };
  const dashes = ['', '6 3', '2 2', '8 2 2 2'];
  const lines: string[] = [];
  const legend: string[] = [];
  let li = 0;
  for (const [gc, nodes] of Object.entries(data)) {
    nodes.forEach((s, node) => {
      if (s.length === 0) return;
      const pts = s.map((p, i) => `${x(i).toFixed(1)},${y(p[1]).toFixed(1)}`).join(' ');
      lines.push(
        `<polyline fill="none" stroke="${colors[gc]}" stroke-width="1.5" stroke-dasharray="${dashes[node % dashes.length]}" points="${pts}"/>`,
      );
      const ly = pad.t + 16 * li++;
      legend.push(
        `<line x1="${W - pad.r + 10}" y1="${ly}" x2="${W - pad.r + 40}" y2="${ly}" stroke="${colors[gc]}" stroke-dasharray="${dashes[node % dashes.length]}"/><text x="${W - pad.r + 45}" y="${ly + 4}" font-size="11">${gc}, node ${node}</text>`,
      );
    });
  }
  const ticks = [0, 0.25, 0.5, 0.75, 1]
    .map(
      (f) =>
        `<text x="${pad.l - 6}" y="${y(f * maxB) + 4}" font-size="10" text-anchor="end">${Math.round((f * maxB) / 1024)} KiB</text>` +
        `<text x="${x(f * maxT)}" y="${H - pad.b + 14}" font-size="10" text-anchor="middle">barrier ${Math.round(f * maxT)}</text>`,
    )
    .join('');
  return `<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${H}" font-family="sans-serif">
<title>Retained recovery log per node over time: no GC, LLT, LLT + CGC</title>
<rect width="100%" height="100%" fill="white"/>
<text x="${pad.l}" y="18" font-size="13">Retained log per node (water, 3 nodes): no GC, LLT, LLT + CGC</text>
<line x1="${pad.l}" y1="${H - pad.b}" x2="${W - pad.r}" y2="${H - pad.b}" stroke="black"/>
<line x1="${pad.l}" y1="${pad.t}" x2="${pad.l}" y2="${H - pad.b}" stroke="black"/>
${ticks}
${lines.join('\n')}
${legend.join('\n')}
</svg>
`;
}
