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
