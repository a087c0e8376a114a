import { type ChildProcess, execFileSync, type StdioOptions, spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';

/** The repository root: children run from it so `--import tsx` resolves the project's tsx. */
export const REPO_ROOT = fileURLToPath(new URL('../../', import.meta.url));

export interface FdLimits {
  readonly soft: number;
  readonly hard: number;
}

/** This shell's open-file limits (`ulimit -Sn` / `-Hn`); children inherit them. */
export function fdLimits(): FdLimits {
  const read = (flag: string) => {
    const out = execFileSync('bash', ['-c', `ulimit ${flag}`], { encoding: 'utf8' }).trim();
    return out === 'unlimited' ? Number.POSITIVE_INFINITY : Number(out);
  };
  return { soft: read('-Sn'), hard: read('-Hn') };
}

export interface TsxChildOptions {
  /** Run with --expose-gc, for memory measurements. */
  readonly exposeGc?: boolean;
  /**
   * Open-file limit the child needs. Node cannot raise its own rlimit, so when the current soft limit
   * is lower the child is started through `bash -c 'ulimit -n N && exec node ...'`, N capped at the
   * hard limit (a non-root user cannot go beyond it).
   */
  readonly fdLimit?: number;
  /** Open an IPC channel (process.send / 'message'), for children that take commands. */
  readonly ipc?: boolean;
  /** 'pipe' to capture stdout, 'inherit' to show it. */
  readonly stdout: 'pipe' | 'inherit';
  /** 'pipe' to capture stderr, 'inherit' to show it. Default 'inherit'. */
  readonly stderr?: 'pipe' | 'inherit';
}

/** Starts `node [--expose-gc] --import tsx <script> ...args` from the repository root. */
export function spawnTsx(script: string, args: readonly string[], options: TsxChildOptions): ChildProcess {
  const nodeArgs = [...(options.exposeGc ? ['--expose-gc'] : []), '--import', 'tsx', script, ...args];
  const stdio: StdioOptions = ['ignore', options.stdout, options.stderr ?? 'inherit'];
  if (options.ipc) stdio.push('ipc');
  const wanted = options.fdLimit;
  if (wanted !== undefined) {
    const { soft, hard } = fdLimits();
    if (soft < wanted) {
      const limit = Math.min(wanted, hard);
      // "$0" "$@" keep every argument intact through the shell.
      return spawn('bash', ['-c', `ulimit -n ${limit} && exec "$0" "$@"`, process.execPath, ...nodeArgs], {
        cwd: REPO_ROOT,
        stdio,
      });
    }
  }
  return spawn(process.execPath, nodeArgs, { cwd: REPO_ROOT, stdio });
}

/** Resolves with the child's next IPC message; rejects if it exits first. */
export function nextMessage<T>(child: ChildProcess): Promise<T> {
  return new Promise((resolve, reject) => {
    const onMessage = (m: unknown) => {
      child.off('exit', onExit);
      resolve(m as T);
    };
    const onExit = (code: number | null, signal: NodeJS.Signals | null) => {
      child.off('message', onMessage);
      reject(new Error(`child exited (code ${code}, signal ${signal}) before answering`));
    };
    child.once('message', onMessage);
    child.once('exit', onExit);
  });
}

/** Sends a command to a child started with `ipc` and waits for its answer. */
export function request<T>(child: ChildProcess, command: unknown): Promise<T> {
  const answer = nextMessage<T>(child);
  child.send(command as object);
  return answer;
}

/**
 * In a child: answers each command from the parent with `handle`'s result, one at a time, and exits
 * when the parent goes away (so a crashed parent leaves no servers behind).
 */
export function serveCommands(handle: (command: unknown) => unknown): void {
  let queue = Promise.resolve();
  process.on('message', (command) => {
    queue = queue.then(async () => {
      process.send?.(await handle(command));
    });
  });
  process.on('disconnect', () => process.exit(0));
}

/** Ends a child we started and waits until it is gone. */
export async function stopChild(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  child.kill('SIGTERM');
  await exited;
}

export interface ScriptResult {
  readonly code: number | null;
  readonly signal: NodeJS.Signals | null;
  readonly stdout: string;
  /** The end of stderr, to say why a script failed. */
  readonly stderrTail: string;
  readonly ms: number;
}

/**
 * Runs a script to completion, echoing its output live while capturing stdout (for its final JSON
 * line) and the tail of stderr. Killed after `timeoutMs` so one hung benchmark cannot stall a run.
 */
export function runScript(script: string, args: readonly string[], timeoutMs: number): Promise<ScriptResult> {
  const started = performance.now();
  const child = spawnTsx(script, args, { stdout: 'pipe', stderr: 'pipe' });
  const out: Buffer[] = [];
  let err = '';
  child.stdout?.on('data', (d: Buffer) => {
    out.push(d);
    process.stdout.write(d);
  });
  child.stderr?.on('data', (d: Buffer) => {
    err = (err + d.toString('utf8')).slice(-4000);
    process.stderr.write(d);
  });
  const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
  return new Promise((resolve) => {
    child.once('close', (code, signal) => {
      clearTimeout(timer);
      resolve({
        code,
        signal,
        stdout: Buffer.concat(out).toString('utf8'),
        stderrTail: err,
        ms: performance.now() - started,
      });
    });
  });
}

/** The last non-empty stdout line parsed as a JSON object, or undefined if it is not one. */
export function lastJsonLine(stdout: string): Record<string, unknown> | undefined {
  const last = stdout.trimEnd().split('\n').at(-1);
  if (!last) return undefined;
  try {
    const value: unknown = JSON.parse(last);
    return typeof value === 'object' && value !== null && !Array.isArray(value)
      ? (value as Record<string, unknown>)
      : undefined;
  } catch {
    return undefined;
  }
}
