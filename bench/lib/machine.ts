import { spawnSync } from 'node:child_process';
import os from 'node:os';
import { allowedCpus, boundCommand, findTaskset } from '../../src/dsm/cpu-binding.ts';

export interface Machine {
  readonly cpu: string;
  readonly cores: number;
  readonly memoryGiB: number;
  readonly node: string;
  readonly os: string;
}

/** What the figures were measured on: they mean little without it. */
export function describeMachine(): Machine {
  const cpus = os.cpus();
  return {
    cpu: cpus[0]?.model.trim() ?? 'unknown',
    cores: cpus.length,
    memoryGiB: Math.round((os.totalmem() / 2 ** 30) * 10) / 10,
    node: process.version,
    os: `${os.type()} ${os.release()} ${os.arch()}`,
  };
}

export function machineLine(m: Machine = describeMachine()): string {
  return `${m.cpu}, ${m.cores} cores, ${m.memoryGiB} GiB RAM, Node ${m.node}, ${m.os}`;
}

/**
 * The 1, 5 and 15 minute load averages, rounded: on a shared machine, figures taken while other
 * work runs (load above the core count) are slower and noisier than the code deserves.
 */
export function loadAverage(): readonly [number, number, number] {
  const [one = 0, five = 0, fifteen = 0] = os.loadavg().map((l) => Math.round(l * 100) / 100);
  return [one, five, fifteen];
}

export function loadLine(): string {
  const [one, five, fifteen] = loadAverage();
  return `load average ${one} ${five} ${fifteen} on ${os.cpus().length} cores`;
}

/** A fixed integer loop: its time says how fast a core is at this moment (about 415 ms when quiet). */
const SPIN =
  'let x=0;const t=process.hrtime.bigint();for(let i=0;i<3e8;i++)x+=i%7;globalThis.sink=x;' +
  'process.stdout.write(String(Number(process.hrtime.bigint()-t)/1e6))';

/**
 * How long the same loop takes on each CPU this process may use, one after the other (pinned with
 * taskset, as the DSM launcher binds nodes; once, unpinned, without it). The load average missed it:
 * on this VM a whole core can run up to 65% slower for minutes, and every figure taken then with it.
 */
export function coreSpeeds(): { readonly cpu: string; readonly ms: number }[] {
  const loop = { command: process.execPath, args: ['-e', SPIN] };
  const taskset = findTaskset();
  const cpus = taskset ? (allowedCpus() ?? []) : [];
  const runs =
    taskset && cpus.length > 0
      ? cpus.map((cpu) => ({ cpu: String(cpu), ...boundCommand(taskset, [cpu], loop) }))
      : [{ cpu: 'any', ...loop }];
  return runs.map(({ cpu, command, args }) => {
    const r = spawnSync(command, args);
    return { cpu, ms: Math.round(Number(r.stdout.toString()) || Number.NaN) };
  });
}

export function coreSpeedLine(speeds = coreSpeeds()): string {
  return `reference loop: ${speeds.map((s) => `${s.ms} ms on CPU ${s.cpu}`).join(', ')}`;
}
