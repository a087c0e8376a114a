import { type ChildProcess, spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';

/**
 * Starts a demo worker in its own process, with an IPC channel and its config as one JSON argument.
 * From the sources (tsx) the child needs the tsx loader; from the build, plain node.
 */
export function spawnWorker(name: 'worker-server' | 'worker-clients', config: object): ChildProcess {
  const fromSource = import.meta.url.endsWith('.ts');
  const file = fileURLToPath(new URL(`./${name}${fromSource ? '.ts' : '.js'}`, import.meta.url));
  const loader = fromSource ? ['--import', import.meta.resolve('tsx')] : [];
  return spawn(process.execPath, [...loader, file, JSON.stringify(config)], {
    stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
  });
}
