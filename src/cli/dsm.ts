import { type Command, InvalidArgumentError } from 'commander';
import type { DsmParams } from '../dsm/app.ts';
import { BUILTIN_APPS, loadApp } from '../dsm/apps/index.ts';
import { newSecret } from '../dsm/auth.ts';
import { firstChildId, type GcMode, isGcMode } from '../dsm/ft/core.ts';
import { keepNode } from '../dsm/keeper.ts';
import { type AppRun, parseHostPort, runApp, SECRET_ENV } from '../dsm/launcher.ts';
import { DEFAULT_PAGE_SIZE } from '../dsm/pages.ts';
import { joinCluster, type ProgressEvent } from '../dsm/runtime.ts';
import { addStats, type DsmStats, emptyStats } from '../dsm/stats.ts';
import { isLazarusError } from '../wire/errors.ts';

/** `lazarus dsm ...`: run the DSM apps on a cluster of node processes, or be a node of one. */

function positive(max: number): (value: string) => number {
  return (value) => {
    const n = Number(value);
    if (!/^\d+$/.test(value) || n < 1 || n > max)
      throw new InvalidArgumentError(`expected an integer in 1..${max}`);
    return n;
  };
}

function address(anyPort: boolean): (value: string) => { host: string; port: number } {
  return (value) => {
    try {
      return parseHostPort(value, anyPort);
    } catch (err) {
      throw new InvalidArgumentError((err as Error).message);
    }
  };
}

function param(value: string, previous: Record<string, number> = {}): Record<string, number> {
  const m = /^(\w+)=(-?\d+(?:\.\d+)?)$/.exec(value);
  if (!m) throw new InvalidArgumentError('expected name=number');
  return { ...previous, [m[1]!]: Number(m[2]) };
}

function killAt(
  value: string,
  previous: { node: number; atMs: number }[] = [],
): { node: number; atMs: number }[] {
  const m = /^(\d+):(\d+(?:\.\d+)?)$/.exec(value);
  if (!m) throw new InvalidArgumentError('expected <node>:<seconds>');
  return [...previous, { node: Number(m[1]), atMs: Math.round(Number(m[2]) * 1000) }];
}

interface RunFlags {
  nodes: number;
  ft?: boolean;
  killAt?: { node: number; atMs: number }[];
  ckptDir?: string;
  /** Commander's defaults: always set. */
  ckptEvery: number;
  gc: GcMode;
  /** False with --no-bind. */
  bind: boolean;
  size?: number;
  param?: Record<string, number>;
  pageSize: number;
  listen?: { host: string; port: number };
  advertise?: string;
  local?: number;
  json?: boolean;
}

export function registerDsmCommand(program: Command): void {
  const dsm = program
    .command('dsm')
    .description('software distributed shared memory (home-based lazy release consistency)');

  dsm
    .command('apps')
    .description('list the built-in DSM applications')
    .action(() => {
      for (const app of Object.values(BUILTIN_APPS)) {
        process.stdout.write(
          `${app.name.padEnd(8)} ${app.description}; defaults ${JSON.stringify(app.params())}\n`,
        );
      }
    });

  dsm
    .command('run')
    .description(
      'run an app on N nodes (this process is node 0, or with --ft the supervisor) and check it against the sequential program',
    )
    .argument('<app>', `${Object.keys(BUILTIN_APPS).join(' | ')}, or a module path exporting \`app\``)
    .requiredOption('-n, --nodes <n>', 'number of nodes', positive(256))
    .option('-s, --size <n>', "problem size (the app's main dimension)", positive(1 << 30))
    .option('-p, --param <name=value>', 'set an app parameter (repeatable)', param)
    .option('--page-size <bytes>', 'DSM page size', positive(65536), DEFAULT_PAGE_SIZE)
    .option(
      '--listen <host:port>',
      'where this process (the coordinator) listens (default 127.0.0.1, any port)',
      address(true),
    )
    .option('--advertise <host>', 'address the other nodes use to reach this process')
    .option(
      '--local <n>',
      'node processes to start on this host (default nodes-1, or nodes with --ft; the rest join)',
      (v) => (v === '0' ? 0 : positive(256)(v)),
    )
    .option('--json', 'print the summary as JSON')
    .option(
      '--ft',
      'fault tolerance: this process supervises (no app), every node is a child that checkpoints, logs, and is restarted and recovers when it fails',
    )
    .option(
      '--kill-at <node:seconds>',
      'with --ft: SIGKILL that node this long after the start (repeatable)',
      killAt,
    )
    .option('--ckpt-dir <dir>', 'with --ft: checkpoint directory (default: a temporary one)')
    .option(
      '--ckpt-every <ms>',
      'with --ft: checkpoint at the first safe point after this long',
      positive(3_600_000),
      1000,
    )
    .option('--gc <mode>', 'with --ft: none | llt | llt+cgc (recovery state collection)', gcMode, 'llt+cgc')
    .option('--no-bind', 'do not bind local node processes to their own CPUs')
    .action(
      reportErrors(async (appRef: string, flags: RunFlags) => {
        const app = await loadApp(appRef);
        if (flags.killAt && !flags.ft) throw new InvalidArgumentError('--kill-at needs --ft');
        for (const k of flags.killAt ?? []) {
          if (k.node >= flags.nodes)
            throw new InvalidArgumentError(`--kill-at: no node ${k.node} of ${flags.nodes}`);
        }
        const params: DsmParams = { ...app.params(flags.size), ...flags.param };
        // With --ft this process is the supervisor: node 0 is a child process too.
        const children = flags.nodes - firstChildId(flags.ft === true);
        const local = flags.local ?? children;
        if (local > children)
          throw new InvalidArgumentError(
            `--local: at most ${children} node process(es) for ${flags.nodes} node(s)`,
          );
        const remote = children - local;
        const secret = process.env[SECRET_ENV] ?? newSecret();
        const started = performance.now();
        let startedAt: number | undefined;
        const say = (line: string) => process.stderr.write(`[dsm] ${line}\n`);
        say(
          `${app.name} ${JSON.stringify(params)} on ${flags.nodes} node(s): running the sequential program first`,
        );
        const result = await runApp({
          app: appRef,
          params,
          nodes: flags.nodes,
          pageSize: flags.pageSize,
          secret,
          localNodes: local,
          bind: flags.bind,
          ...(flags.listen ? { host: flags.listen.host, port: flags.listen.port } : {}),
          ...(flags.advertise ? { advertiseHost: flags.advertise } : {}),
          ...(flags.ft
            ? {
                ft: {
                  policy: { intervalMs: flags.ckptEvery },
                  gc: flags.gc,
                  ...(flags.ckptDir ? { dir: flags.ckptDir } : {}),
                  ...(flags.killAt ? { kills: flags.killAt } : {}),
                },
              }
            : {}),
          onProgress: (e: ProgressEvent) => {
            const t =
              startedAt === undefined
                ? 'before the start:'
                : `+${((performance.now() - startedAt) / 1000).toFixed(2)}s`;
            if (e.kind === 'listening' && remote > 0) {
              say(`waiting for ${remote} remote node(s); on each host run:`);
              say(
                `  ${SECRET_ENV}=${secret} lazarus dsm node --join ${e.host}:${e.port}${flags.ft ? ' --keep' : ''}`,
              );
            } else if (e.kind === 'joined') say(`node ${e.node} joined from ${e.host}:${e.port}`);
            else if (e.kind === 'started') {
              startedAt = performance.now();
              say('all nodes connected: computing');
              for (const k of flags.killAt ?? [])
                say(`node ${k.node} will be killed at +${(k.atMs / 1000).toFixed(2)}s`);
            } else if (e.kind === 'node-done') say(`${t} node ${e.node} finished`);
            else if (e.kind === 'node-lost') say(`${t} node ${e.node} LOST (${e.reason})`);
            else if (e.kind === 'restarted')
              say(`${t} node ${e.node} restarted (pid ${e.pid}): restoring its checkpoint`);
            else if (e.kind === 'rejoined')
              say(`${t} node ${e.node} rejoined: re-executing from its checkpoint`);
            else if (e.kind === 'recovered') say(`${t} node ${e.node} caught up: running normally again`);
          },
        });
        const wallMs = performance.now() - started;
        process.stdout.write(
          flags.json ? `${JSON.stringify(summaryJson(result, wallMs))}\n` : summaryText(result, wallMs),
        );
        if (!result.check.ok) process.exitCode = 1;
      }),
    );

  dsm
    .command('node')
    .description(`join a cluster as one node (the cluster secret comes from $${SECRET_ENV})`)
    .requiredOption('--join <host:port>', 'address of the coordinator (dsm run)', address(false))
    .option(
      '--listen <host:port>',
      'where this node listens for its peers (default 127.0.0.1, any port)',
      address(true),
    )
    .option('--advertise <host>', 'address the other nodes use to reach this one')
    .option('--allow-modules', 'let the coordinator name an app module path (runs its code here)')
    .option(
      '--keep',
      'run the node as a child process and, in a --ft run, restart it as the same node when it dies (it recovers from its checkpoints on this host)',
    )
    .action(
      reportErrors(
        async (flags: {
          join: { host: string; port: number };
          listen?: { host: string; port: number };
          advertise?: string;
          allowModules?: boolean;
          keep?: boolean;
        }) => {
          const secret = process.env[SECRET_ENV] ?? '';
          const node = flags.keep
            ? await keepNode({
                join: flags.join,
                secret,
                nodeFlags: [
                  ...(flags.listen ? ['--listen', `${flags.listen.host}:${flags.listen.port}`] : []),
                  ...(flags.advertise ? ['--advertise', flags.advertise] : []),
                  ...(flags.allowModules ? ['--allow-modules'] : []),
                ],
                onProcess: (pid, restart) =>
                  process.stderr.write(
                    restart
                      ? `[dsm] node ${restart.node ?? '(not started yet)'} died (${restart.why}); restarted as pid ${pid}\n`
                      : `[dsm] node process started (pid ${pid})\n`,
                  ),
              })
            : await joinCluster({
                join: flags.join,
                secret,
                ...(flags.listen ? { host: flags.listen.host, port: flags.listen.port } : {}),
                ...(flags.advertise ? { advertiseHost: flags.advertise } : {}),
                allowModules: flags.allowModules === true,
              });
          process.stderr.write(`[dsm] node ${node}: run complete\n`);
        },
      ),
    );
}

/** Failures print one line with their code and exit 1, instead of a stack trace. */
function reportErrors<A extends unknown[]>(
  action: (...args: A) => Promise<void>,
): (...args: A) => Promise<void> {
  return async (...args) => {
    try {
      await action(...args);
    } catch (err) {
      process.stderr.write(
        `[dsm] failed: ${isLazarusError(err) ? `${err.code}: ` : ''}${(err as Error).message}\n`,
      );
      process.exitCode = 1;
    }
  };
}

function totals(run: AppRun): DsmStats {
  return run.run.stats.reduce((sum, s) => addStats(sum, s), emptyStats());
}

function summaryJson(r: AppRun, wallMs: number) {
  return {
    app: r.app,
    params: r.params,
    nodes: r.nodes,
    sequentialMs: round(r.sequentialMs),
    computeMs: round(r.run.computeMs),
    runMs: round(r.run.runMs),
    wallMs: round(wallMs),
    speedup: round(r.sequentialMs / r.run.computeMs),
    check: r.check,
    totals: totals(r),
    perNode: r.run.stats,
    ...(r.run.supervisor ? { supervisor: r.run.supervisor } : {}),
    ...(r.run.binding ? { binding: r.run.binding } : {}),
  };
}

/** After a restart, node 0's compute time counts only its last life: the job's own duration then. */
function computeLine(r: AppRun, wallMs: number): string {
  const recoveries = r.run.stats.reduce((n, s) => n + (s.ft?.recoveries ?? 0), 0);
  const wall = `wall ${wallMs.toFixed(0)} ms with startup`;
  if (recoveries > 0) {
    return `  dsm run      ${r.run.runMs.toFixed(1)} ms  (with ${recoveries} recover${recoveries === 1 ? 'y' : 'ies'}, speedup ${(r.sequentialMs / r.run.runMs).toFixed(2)}x, ${wall})`;
  }
  return `  dsm compute  ${r.run.computeMs.toFixed(1)} ms  (speedup ${(r.sequentialMs / r.run.computeMs).toFixed(2)}x, ${wall})`;
}

function summaryText(r: AppRun, wallMs: number): string {
  const t = totals(r);
  const kb = (n: number) => `${(n / 1024).toFixed(1)} KiB`;
  const lines = [
    `${r.app} on ${r.nodes} node(s), ${JSON.stringify(r.params)}`,
    `  sequential   ${r.sequentialMs.toFixed(1)} ms`,
    computeLine(r, wallMs),
    `  check        ${r.check.ok ? 'OK' : 'FAILED'}: ${r.check.detail}`,
    `  messages ${t.messagesSent}, ${kb(t.bytesSent)} sent; page fetches ${t.pageFetches} (${kb(t.pageFetchBytes)}); diffs ${t.diffsSent} (${kb(t.diffBytesSent)})`,
    `  locks ${t.lockAcquires} (wait ${t.lockWaitMs.toFixed(1)} ms); barriers ${t.barriers} (wait ${t.barrierWaitMs.toFixed(1)} ms)`,
    ...(r.run.binding
      ? [`  bound to CPUs: ${r.run.binding.map((b) => `node ${b.node} on ${b.cpus.join(',')}`).join('; ')}`]
      : []),
    '  node  msgs  fetches  diffs  diffKiB  lockWait  barrierWait',
    ...r.run.stats.map(
      (s, i) =>
        `  ${String(i).padStart(4)}  ${String(s.messagesSent).padStart(4)}  ${String(s.pageFetches).padStart(7)}  ${String(s.diffsSent).padStart(5)}  ${(s.diffBytesSent / 1024).toFixed(1).padStart(7)}  ${s.lockWaitMs.toFixed(1).padStart(8)}  ${s.barrierWaitMs.toFixed(1).padStart(11)}`,
    ),
  ];
  if (r.run.stats.some((s) => s.ft)) {
    lines.push('  fault tolerance (last incarnation of each node):');
    lines.push('  node  ckpts  ckptKiB  kept  logEntries  logKiB  recoveries  replayed  dupsDropped');
    r.run.stats.forEach((s, i) => {
      const f = s.ft;
      if (!f) return;
      lines.push(
        `  ${String(i).padStart(4)}  ${String(f.checkpoints).padStart(5)}  ${(f.checkpointBytes / 1024).toFixed(1).padStart(7)}  ${String(f.retainedCheckpoints).padStart(4)}  ${String(f.retainedLogEntries).padStart(10)}  ${(f.retainedLogBytes / 1024).toFixed(1).padStart(6)}  ${String(f.recoveries).padStart(10)}  ${String(f.replayedAnswers).padStart(8)}  ${String(f.dupsDropped).padStart(11)}`,
      );
    });
    const failed = r.run.stats.reduce((n, s) => n + (s.ft?.checkpointFailures ?? 0), 0);
    if (failed > 0)
      lines.push(
        `  ${failed} checkpoint write(s) failed (each retried at the next safe point; LAZARUS_DSM_DEBUG=1 shows why)`,
      );
    const sup = r.run.supervisor?.ft;
    // The supervisor (barrier and lock manager) never checkpoints or recovers: only its log counts.
    if (sup)
      lines.push(
        `  sup.  ${'-'.padStart(5)}  ${'-'.padStart(7)}  ${'-'.padStart(4)}  ${String(sup.retainedLogEntries).padStart(10)}  ${(sup.retainedLogBytes / 1024).toFixed(1).padStart(6)}  ${'-'.padStart(10)}  ${'-'.padStart(8)}  ${String(sup.dupsDropped).padStart(11)}`,
      );
  }
  return `${lines.join('\n')}\n`;
}

function gcMode(value: string): GcMode {
  if (!isGcMode(value)) throw new InvalidArgumentError('expected none, llt or llt+cgc');
  return value;
}

function round(n: number): number {
  return Math.round(n * 100) / 100;
}
