import { spawn } from 'node:child_process';
import { createError, ErrorCodes } from '../wire/errors.ts';
import { CRASH_ENV } from './ft/crash-plan.ts';
import { JOIN_FAILED_EXIT, nodeArgv, SECRET_ENV } from './launcher.ts';

export interface KeeperOptions {
  readonly join: { host: string; port: number };
  readonly secret: string;
  /** Flags passed on to the node process (--listen, --advertise, --allow-modules). */
  readonly nodeFlags?: readonly string[];
  /** Give up after this many restarts (default 20). */
  readonly maxRestarts?: number;
  /**
   * Told of each node process started: the first, and each restart (which node, unless it died
   * before the coordinator started it, and why).
   */
  readonly onProcess?: (
    pid: number,
    restart?: { readonly node: number | undefined; readonly why: string },
  ) => void;
}

/**
 * Runs a joined DSM node (`lazarus dsm node --keep`) as a child process and, in a fault-tolerant
 * run, starts it again as the same node when it dies (SIGKILL, crash, a cut link it gave up on):
 * the new process rejoins with its id, restores its checkpoints from this host's disk and
 * re-executes. One that dies before its run started just joins again (if the peer table had gone
 * out, the coordinator gives it its old id back and has it recover). The launcher does this for
 * the nodes it starts itself; a node on another host needs someone on that host to do it. Resolves
 * with the node's id when its run completes.
 */
export function keepNode(options: KeeperOptions): Promise<number> {
  const env: NodeJS.ProcessEnv = { ...process.env, [SECRET_ENV]: options.secret };
  // A planned crash (tests) is for the first run only, as the launcher does.
  const restartEnv = { ...env };
  delete restartEnv[CRASH_ENV];
  let node: number | undefined;
  let faultTolerant = false;
  let restarts = 0;
  let appDone = false;
  return new Promise((resolve, reject) => {
    const start = (rejoin: boolean) => {
      const extra = [...(options.nodeFlags ?? [])];
      if (rejoin) extra.push('--id', String(node), '--rejoin');
      const argv = nodeArgv(options.join.host, options.join.port, extra);
      const child = spawn(argv[0]!, argv.slice(1), {
        env: restarts === 0 ? env : restartEnv,
        stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
      });
      child.on('message', (m: { type?: string; node?: unknown; faultTolerant?: unknown }) => {
        if (m.type === 'app-done') appDone = true;
        if (m.type !== 'started' || typeof m.node !== 'number') return;
        node = m.node;
        faultTolerant = m.faultTolerant === true;
      });
      child.on('error', (err) => reject(createError(ErrorCodes.DSM_PEER_LOST, err.message, err)));
      child.on('exit', (code, signal) => {
        // Done; or killed after its DONE went out, restarted in case a peer's recovery needed its
        // logs, and the restart found the run over: its work was in.
        if (node !== undefined && (code === 0 || (code === JOIN_FAILED_EXIT && appDone))) {
          resolve(node);
          return;
        }
        const why = signal ?? `exit code ${code}`;
        // Not once the coordinator cannot be reached at all (its run is over), nor without FT once
        // started (a failed node fails the run: there is nothing to rejoin). A node that died before
        // its run started joins again afresh (the coordinator freed its id).
        if (code === JOIN_FAILED_EXIT || (node !== undefined && !faultTolerant)) {
          reject(createError(ErrorCodes.DSM_PEER_LOST, `node process ended (${why})`));
          return;
        }
        if (++restarts > (options.maxRestarts ?? 20)) {
          reject(createError(ErrorCodes.DSM_PEER_LOST, `node failed again after ${restarts - 1} restarts`));
          return;
        }
        const next = start(node !== undefined);
        options.onProcess?.(next.pid ?? 0, { node, why });
      });
      return child;
    };
    options.onProcess?.(start(false).pid ?? 0);
  });
}
