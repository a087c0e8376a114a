/**
 * Planned crashes for fault tests: `LAZARUS_DSM_CRASH=<event>:<n>` makes this node process SIGKILL
 * itself at the n-th occurrence of `event` (checkpoint: between writing a checkpoint and renaming it
 * into place; arrive: right after sending a barrier arrival; lock: right after a lock is granted;
 * serve: right after serving pages to a peer; start: on receiving the peer table, before connecting
 * to any peer; ready: once connected to every peer of the table, just before telling the coordinator
 * it is ready, so before the start). The launcher passes it to a node's first run only.
 */
export const CRASH_ENV = 'LAZARUS_DSM_CRASH';
export const CRASH_EVENTS = ['checkpoint', 'arrive', 'lock', 'serve', 'start', 'ready'] as const;
export type CrashEvent = (typeof CRASH_EVENTS)[number];

export class CrashPlan {
  readonly #event: string | undefined;
  readonly #at: number;
  #count = 0;

  constructor(spec: string | undefined) {
    const m = spec ? /^(\w+):(\d+)$/.exec(spec) : null;
    this.#event = m?.[1];
    this.#at = m ? Number(m[2]) : 0;
  }

  /** Counts an occurrence of `event`; kills this process at the planned one. */
  hit(event: CrashEvent): void {
    if (event !== this.#event || ++this.#count !== this.#at) return;
    process.kill(process.pid, 'SIGKILL');
  }

  get armed(): boolean {
    return this.#event !== undefined;
  }
}
