/**
 * Runs every bench/*.ts (except this file) as its own child process, one after another so they do
 * not compete for the CPU (each once the load has settled, the FT benchmark last), reads each one's
 * final JSON line and writes bench/RESULTS.md. A benchmark that fails or prints no JSON line is
 * recorded as failed; the others still run.
 *
 *   npm run bench [-- --quick]     (--quick is passed on, for a fast smoke run with smaller sizes)
 */
import { readdirSync, writeFileSync } from 'node:fs';
import { loadavg } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { lastJsonLine, runScript, type ScriptResult } from './lib/child.ts';
import { coreSpeedLine, describeMachine, machineLine } from './lib/machine.ts';
import { type Cell, markdownTable } from './lib/report.ts';

interface Target {
  readonly field: string;
  readonly op: '>=' | '<=';
  readonly value: number;
}

/** The targets of issues 2, 3 and 4, by benchmark and JSON field (dotted for nested ones); figures without one are shown as measured. */
const TARGETS: Readonly<Record<string, readonly Target[]>> = {
  throughput: [{ field: 'ratio', op: '>=', value: 0.95 }],
  latency: [{ field: 'p50_ratio', op: '<=', value: 1.2 }],
  sessions: [{ field: 'bytes_per_session_over_raw', op: '<=', value: 8192 }],
  migration: [
    { field: 'p50_ratio_64k', op: '<=', value: 3 },
    { field: 'p50_ratio_max_upto_64k', op: '<=', value: 3 },
  ],
  drain: [
    { field: 'sessions_per_s', op: '>=', value: 5000 },
    { field: 'lost', op: '<=', value: 0 },
  ],
  checkpoint: [{ field: 'ratio', op: '>=', value: 0.85 }],
  dsm: [
    ...['sor', 'matmul', 'lu', 'water', 'radix'].map(
      (app): Target => ({ field: `apps.${app}.dsm1_over_seq`, op: '<=', value: 1.15 }),
    ),
    { field: 'apps.sor.speedup_2_vs_1', op: '>=', value: 1.7 },
    { field: 'apps.matmul.speedup_2_vs_1', op: '>=', value: 1.7 },
  ],
  'dsm-ft': [
    ...['sor', 'matmul', 'lu', 'water', 'radix'].map(
      (app): Target => ({ field: `overhead.${app}.ratio`, op: '<=', value: 1.1 }),
    ),
    // LLT + CGC: the latest checkpoint file of each of the 3 nodes, plus at most one older one.
    { field: 'retention.llt+cgc.retained_checkpoints', op: '<=', value: 4 },
  ],
};

/** Nested figures (e.g. per application) as dotted keys, so each gets a row and can carry a target. */
function flatten(o: Record<string, unknown>, prefix = ''): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(o)) {
    if (v !== null && typeof v === 'object' && !Array.isArray(v))
      Object.assign(out, flatten(v as Record<string, unknown>, `${prefix}${k}.`));
    else out[`${prefix}${k}`] = v;
  }
  return out;
}

/** Generous: a full throughput run takes well under a minute on a laptop; a hang must not stall CI. */
const TIMEOUT_MS = 20 * 60 * 1000;

const { values: flags } = parseArgs({ options: { quick: { type: 'boolean', default: false } } });
const benchDir = fileURLToPath(new URL('.', import.meta.url));
const self = fileURLToPath(import.meta.url);

/** Runs last: it writes and re-reads gigabytes of checkpoints, and what follows it ran slower. */
const HEAVIEST = 'dsm-ft.ts';
const scripts = readdirSync(benchDir)
  .filter((f) => f.endsWith('.ts') && !f.startsWith('.') && join(benchDir, f) !== self)
  .sort((a, b) => Number(a === HEAVIEST) - Number(b === HEAVIEST) || a.localeCompare(b));

/** Each benchmark starts on a quiet machine: wait (at most a minute) for the 1-minute load to drop below 1. */
async function settle(): Promise<number> {
  const started = performance.now();
  while (loadavg()[0]! >= 1 && performance.now() - started < 60_000) await sleep(2000);
  return (performance.now() - started) / 1000;
}

interface Outcome {
  readonly name: string;
  readonly run: ScriptResult;
  readonly json: Record<string, unknown> | undefined;
  readonly raw: Record<string, unknown> | undefined;
  /** The reference loop's time on each CPU just before the benchmark started. */
  readonly speeds: string;
}

const started = new Date();
const outcomes: Outcome[] = [];
for (const file of scripts) {
  const name = file.replace(/\.ts$/, '');
  const waited = await settle();
  const speeds = coreSpeedLine();
  console.log(
    `\n=== ${name} === (after ${waited.toFixed(0)} s waiting for a quiet machine; load ${loadavg()[0]!.toFixed(2)}; ${speeds})`,
  );
  const run = await runScript(join(benchDir, file), flags.quick ? ['--quick'] : [], TIMEOUT_MS);
  const line = run.code === 0 ? lastJsonLine(run.stdout) : undefined;
  outcomes.push({ name, run, json: line && flatten(line), raw: line, speeds });
}

function verdict(target: Target, value: unknown): string {
  if (typeof value !== 'number') return 'missing';
  const met = target.op === '>=' ? value >= target.value : value <= target.value;
  return met ? 'met' : 'missed';
}

function section(o: Outcome): string {
  const seconds = (o.run.ms / 1000).toFixed(1);
  const heading = `## ${o.name}\n\n\`npx tsx bench/${o.name}.ts${flags.quick ? ' --quick' : ''}\` (${seconds} s; before it, ${o.speeds})\n`;
  if (!o.json) {
    const why =
      o.run.code === 0
        ? 'exited 0 but its last stdout line is not a JSON object'
        : `exited with code ${o.run.code}${o.run.signal ? ` (signal ${o.run.signal})` : ''}`;
    const tail = o.run.stderrTail.trim() || o.run.stdout.trim().split('\n').slice(-10).join('\n');
    return `${heading}\n**FAILED**: ${why}.\n\n\`\`\`\n${tail.slice(-2000)}\n\`\`\`\n`;
  }
  const targets = TARGETS[o.name] ?? [];
  const rows: Cell[][] = Object.entries(o.json)
    .filter(([k]) => k !== 'bench')
    .map(([k, v]) => {
      const t = targets.find((x) => x.field === k);
      return [
        k,
        typeof v === 'string' ? v : JSON.stringify(v),
        t ? `${t.op} ${t.value}` : '',
        t ? verdict(t, v) : '',
      ];
    });
  for (const t of targets) {
    if (!(t.field in o.json)) rows.push([t.field, '(absent)', `${t.op} ${t.value}`, 'missing']);
  }
  return `${heading}\n${markdownTable(['figure', 'value', 'target', 'status'], rows)}\n`;
}

const machine = describeMachine();
const summaryRows: Cell[][] = outcomes.flatMap((o) => {
  const targets = TARGETS[o.name] ?? [];
  if (!o.json) return [[o.name, '', '', '', 'FAILED']];
  if (targets.length === 0) return [[o.name, '', '', '', 'no target']];
  return targets.map((t) => [
    o.name,
    t.field,
    String(o.json?.[t.field]),
    `${t.op} ${t.value}`,
    verdict(t, o.json?.[t.field]),
  ]);
});

const markdown = `# Benchmark results

Written by \`npm run bench${flags.quick ? ' -- --quick' : ''}\` (bench/run-all.ts) on ${started.toISOString()}${flags.quick ? ' — **quick smoke run: smaller sizes, not the reference figures**' : ''}.

Machine: ${machineLine(machine)}. Before each benchmark, a fixed loop is timed on each CPU (about
415 ms when this VM is quiet; it has run up to 65% slower for minutes at a time): figures
taken after a slow reading are slow for reasons outside the code.

Scripts run: ${outcomes.map((o) => `bench/${o.name}.ts`).join(', ')}. Each benchmark runs its baseline (a raw \`net.Socket\` on loopback) in the same run as the session path.

${markdownTable(['benchmark', 'figure', 'value', 'target', 'status'], summaryRows)}

${outcomes.map(section).join('\n')}
## Raw JSON lines

\`\`\`
${outcomes.map((o) => (o.raw ? JSON.stringify(o.raw) : `${o.name}: no JSON line (failed)`)).join('\n')}
\`\`\`
`;

const out = join(benchDir, 'RESULTS.md');
writeFileSync(out, markdown);
console.log(`\nwrote ${out}`);
for (const row of summaryRows) console.log(`  ${row.join('  ')}`);
