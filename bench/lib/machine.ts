import { spawnSync } from 'node:child_process';
import os from 'node:os';

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

/** A fixed integer loop: its time says how fast a core is at this moment (about 0.3 s when quiet). */
const SPIN =
  'let x=0;const t=process.hrtime.bigint();for(let i=0;i<3e8;i++)x+=i%7;globalThis.sink=x;' +
  'process.stdout.write(String(Number(process.hrtime.bigint()-t)/1e6))';

/**
 * How long the same loop takes on each CPU, one after the other (pinned with taskset where it is
 * available, else once, unpinned). The load average missed it: on this VM a whole core can run a
 * quarter slower for minutes, and every figure taken then with it.
 */
export function coreSpeeds(): { readonly cpu: string; readonly ms: number }[] {
  const count = os.cpus().length;
  const pinned = spawnSync('taskset', ['-c', '0', 'true']).status === 0;
  const targets = pinned ? Array.from({ length: count }, (_, i) => String(i)) : ['any'];
  return targets.map((cpu) => {
    const argv = [process.execPath, '-e', SPIN];
    const r = cpu === 'any' ? spawnSync(argv[0]!, argv.slice(1)) : spawnSync('taskset', ['-c', cpu, ...argv]);
    return { cpu, ms: Math.round(Number(r.stdout.toString()) || Number.NaN) };
  });
}

export function coreSpeedLine(speeds = coreSpeeds()): string {
  return `reference loop: ${speeds.map((s) => `${s.ms} ms on CPU ${s.cpu}`).join(', ')}`;
}
