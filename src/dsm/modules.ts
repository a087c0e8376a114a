import { Worker, type WorkerOptions } from 'node:worker_threads';

/**
 * Files of this package run as separate threads and processes. From the sources they are .ts and
 * need tsx loaded first; once built they are .js and run as they are.
 */
const FROM_SOURCE = import.meta.url.endsWith('.ts');

/** URL of a module next to this one, with the right extension. */
export function sibling(name: string): URL {
  return new URL(`./${name}${FROM_SOURCE ? '.ts' : '.js'}`, import.meta.url);
}

/** Node flags a child process needs to run `sibling()` modules. */
export function childExecArgv(): string[] {
  return FROM_SOURCE ? ['--import', 'tsx'] : [];
}

/**
 * Starts a worker on a sibling module. On Node 20, `--import tsx` in a worker's execArgv does not
 * reach its entry module, so from source the worker first registers tsx itself.
 */
export function startWorker(name: string, options: WorkerOptions): Worker {
  const url = sibling(name);
  if (!FROM_SOURCE) return new Worker(url, options);
  const tsx = import.meta.resolve('tsx/esm/api');
  const boot = `import(${JSON.stringify(tsx)}).then((m) => { m.register(); return import(${JSON.stringify(url.href)}); });`;
  return new Worker(boot, { ...options, eval: true });
}
