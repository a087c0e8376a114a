import { accessSync, constants, readFileSync } from 'node:fs';
import { delimiter, join } from 'node:path';

/**
 * Binding local node processes to CPUs, as MPI launchers do (`mpirun --bind-to core`): a node that
 * stays on its own core keeps its caches warm and never shares a core with another node's compute
 * thread for a while, which a run pays for at every barrier. bench/dsm.ts runs both ways each time
 * (bench/RESULTS.md): on the quiet 2-core bench VM binding gained a few percent; in an hour when one
 * core ran slow it lost, as a bound node cannot leave that core.
 */

/** A command line to start a process with. */
export interface Command {
  readonly command: string;
  readonly args: string[];
}

/**
 * Disjoint CPU sets for `nodes` nodes over `cpus`, node i taking the i-th equal share; undefined
 * when there are more nodes than CPUs (binding an oversubscribed host only gets in the scheduler's
 * way) or when each share would be every CPU anyway.
 */
export function planBinding(nodes: number, cpus: readonly number[]): number[][] | undefined {
  if (nodes < 1 || nodes > cpus.length) return undefined;
  const share = Math.floor(cpus.length / nodes);
  if (share === cpus.length) return undefined;
  return Array.from({ length: nodes }, (_, i) => cpus.slice(i * share, (i + 1) * share));
}

/** `command` started on `cpus` only (taskset sets the affinity, then execs it; threads inherit it). */
export function boundCommand(taskset: string, cpus: readonly number[], command: Command): Command {
  return { command: taskset, args: ['-c', cpus.join(','), command.command, ...command.args] };
}

/** Parses a kernel CPU list ("0-3,8,10-11"); undefined if it is not one. */
export function parseCpuList(text: string): number[] | undefined {
  const cpus: number[] = [];
  for (const part of text.trim().split(',')) {
    const m = /^(\d+)(?:-(\d+))?$/.exec(part);
    if (!m) return undefined;
    const from = Number(m[1]);
    const to = m[2] === undefined ? from : Number(m[2]);
    if (to < from || to - from > 4096) return undefined;
    for (let c = from; c <= to; c++) cpus.push(c);
  }
  return cpus;
}

/** The CPUs this process may run on (Linux), undefined elsewhere. */
export function allowedCpus(): number[] | undefined {
  try {
    const m = /^Cpus_allowed_list:\s*(\S+)$/m.exec(readFileSync('/proc/self/status', 'utf8'));
    return m ? parseCpuList(m[1]!) : undefined;
  } catch {
    return undefined;
  }
}

/** Path of the taskset program (util-linux) on PATH, if any. */
export function findTaskset(path = process.env.PATH ?? ''): string | undefined {
  for (const dir of path.split(delimiter)) {
    if (dir === '') continue;
    const file = join(dir, 'taskset');
    try {
      accessSync(file, constants.X_OK);
      return file;
    } catch {}
  }
  return undefined;
}
