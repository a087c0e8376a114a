import { formatSeconds } from './format.ts';

/** A migration as the demo saw it (reported by the client that moved). */
export interface Migration {
  /** When the parent heard of it (ms epoch). */
  readonly at: number;
  readonly index: number;
  readonly from: string | undefined;
  readonly to: string;
  readonly reason: string;
  /** What moved it: 'drain', 'overload', 'rtt', 'throughput', 'stall', 'failover', ... */
  readonly category: string;
}

/** Groups the client's migration reasons (policy name, then the policy's own reason). */
export function category(reason: string): string {
  if (reason.startsWith('advice:')) return reason.includes('draining') ? 'drain' : 'overload';
  return reason.split(':')[0] ?? reason;
}

export type EventName = 'drain' | 'overload' | 'degraded path';
export const EVENT_NAMES: readonly EventName[] = ['drain', 'overload', 'degraded path'];

export interface EventOutcome {
  readonly event: EventName;
  readonly server: string;
  readonly ok: boolean;
  readonly detail: string;
}

/** What the scenario drives and watches. */
export interface ScenarioContext {
  readonly members: readonly string[];
  /** Sessions each member holds now, as their clients report. */
  load(member: string): number;
  readonly migrations: readonly Migration[];
  drain(member: string, deadlineMs: number): Promise<{ moved: number; remaining: number; ms: number }>;
  restart(member: string): Promise<void>;
  overload(member: string, keep: number | null, target: string): void;
  degrade(member: string, latencyMs: number): void;
  log(line: string): void;
  /** Resolves after `ms`, or at once when the demo is stopping. */
  sleep(ms: number): Promise<void>;
  readonly stopping: boolean;
}

const DRAIN_DEADLINE_MS = 4000;
const DRAIN_ATTEMPTS = 3;
const OVERLOAD_MS = 6000;
const DEGRADED_LATENCY_MS = 200;
const DEGRADED_MS = 10_000;

/**
 * The scripted run: a deploy (drain, stop, restart, rejoin), an overload, a degraded path, each on the
 * member holding the most sessions at the time. Each step records how to judge it: the verdict is
 * taken at the end, when every migration it caused has been reported.
 */
export class Scenario {
  /** What each member is going through now, for the live view. */
  readonly notes = new Map<string, string>();
  readonly #ctx: ScenarioContext;
  readonly #checks: (() => EventOutcome)[] = [];

  constructor(ctx: ScenarioContext) {
    this.#ctx = ctx;
  }

  /** One round of events `gapMs` apart (repeated until the demo stops, with `forever`). */
  async run(gapMs: number, forever: boolean): Promise<void> {
    const steps = [() => this.#deploy(), () => this.#overload(), () => this.#degrade()];
    do {
      for (const step of steps) {
        await this.#ctx.sleep(gapMs);
        if (this.#ctx.stopping) return;
        await step();
      }
    } while (forever && !this.#ctx.stopping);
  }

  /** Every event that ran, judged; plus a failure for each kind of event that never ran. */
  outcomes(): EventOutcome[] {
    const outcomes = this.#checks.map((check) => check());
    for (const event of EVENT_NAMES) {
      if (!outcomes.some((o) => o.event === event)) {
        outcomes.push({ event, server: '-', ok: false, detail: 'did not happen (the demo stopped first)' });
      }
    }
    return outcomes;
  }

  #busiest(): string {
    const { members, load } = this.#ctx;
    return members.reduce((best, m) => (load(m) > load(best) ? m : best));
  }

  #idlest(except: string): string {
    const { members, load } = this.#ctx;
    const others = members.filter((m) => m !== except);
    return others.reduce((best, m) => (load(m) < load(best) ? m : best));
  }

  /** Polls until `done` holds, `ms` pass, or the demo stops. */
  async #until(done: () => boolean, ms: number): Promise<void> {
    const end = Date.now() + ms;
    while (!done() && Date.now() < end && !this.#ctx.stopping) await this.#ctx.sleep(100);
  }

  #movedFrom(member: string, categories: readonly string[], since: number, until: number): Migration[] {
    return this.#ctx.migrations.filter(
      (m) => m.from === member && categories.includes(m.category) && m.at >= since && m.at <= until,
    );
  }

  async #deploy(): Promise<void> {
    const ctx = this.#ctx;
    const x = this.#busiest();
    const fail = (detail: string) =>
      this.#checks.push(() => ({ event: 'drain', server: x, ok: false, detail }));
    this.notes.set(x, 'draining');
    ctx.log(`deploy on ${x}: drain its ${ctx.load(x)} sessions, stop it, start the new version`);
    const report = { moved: 0, remaining: 0, ms: 0, attempts: 0 };
    try {
      // Like an operator, ask again if a drain's deadline left anything behind.
      do {
        const r = await ctx.drain(x, DRAIN_DEADLINE_MS);
        report.moved += r.moved;
        report.remaining = r.remaining;
        report.ms += r.ms;
        report.attempts++;
        ctx.log(`drain ${x}: ${r.moved} sessions moved away, ${r.remaining} left, in ${r.ms} ms`);
      } while (report.remaining > 0 && report.attempts < DRAIN_ATTEMPTS && !ctx.stopping);
    } catch (err) {
      this.notes.delete(x);
      ctx.log(`drain ${x} failed: ${(err as Error).message}`);
      fail(`drain failed: ${(err as Error).message}`);
      return;
    }
    if (report.remaining > 0) {
      // A careful deploy never stops a server that still holds sessions.
      this.notes.delete(x);
      if (ctx.stopping) return;
      fail(`drain moved ${report.moved} sessions and left ${report.remaining}: not restarted`);
      return;
    }
    this.notes.set(x, 'restarting');
    const stoppedAt = Date.now();
    try {
      await ctx.restart(x);
    } catch (err) {
      this.notes.delete(x);
      ctx.log(`restart ${x} failed: ${(err as Error).message}`);
      fail(`restart failed: ${(err as Error).message}`);
      return;
    }
    const restartedAt = Date.now();
    this.notes.delete(x);
    ctx.log(
      `restart ${x}: the new process is back in the pool after ${formatSeconds(restartedAt - stoppedAt)}`,
    );
    this.#checks.push(() => {
      const back = ctx.migrations.filter((m) => m.to === x && m.at >= restartedAt).length;
      return {
        event: 'drain',
        server: x,
        ok: report.moved > 0 && back > 0,
        detail:
          `${report.moved} sessions moved away in ${report.ms} ms` +
          `${report.attempts > 1 ? ` (${report.attempts} drains)` : ''}, 0 left; restarted in ` +
          `${formatSeconds(restartedAt - stoppedAt)}; ${back > 0 ? `then took sessions again (${back} moves to it)` : 'took no session again'}`,
      };
    });
  }

  async #overload(): Promise<void> {
    const ctx = this.#ctx;
    const y = this.#busiest();
    const n = ctx.load(y);
    const keep = Math.floor(n / 2);
    const target = this.#idlest(y);
    const since = Date.now();
    this.notes.set(y, `overloaded, capacity ${keep}`);
    ctx.overload(y, keep, target);
    ctx.log(
      `overload on ${y}: ${n} sessions, capacity drops to ${keep}; it advises the rest to move to ${target}`,
    );
    await this.#until(() => ctx.load(y) <= keep, OVERLOAD_MS);
    ctx.overload(y, null, '');
    this.notes.delete(y);
    const until = Date.now();
    ctx.log(`overload on ${y} over: ${ctx.load(y)} sessions there`);
    // Cut short by Ctrl-C: nothing to judge.
    if (ctx.stopping) return;
    this.#checks.push(() => {
      // The last advised clients may report their move a moment after the overload is lifted.
      const moved = this.#movedFrom(y, ['overload'], since, until + 2000).length;
      return {
        event: 'overload',
        server: y,
        ok: moved > 0,
        detail: `capacity ${n} → ${keep}: ${moved} sessions advised away`,
      };
    });
  }

  async #degrade(): Promise<void> {
    const ctx = this.#ctx;
    const z = this.#busiest();
    const n = ctx.load(z);
    const since = Date.now();
    this.notes.set(z, `path +${DEGRADED_LATENCY_MS} ms`);
    ctx.degrade(z, DEGRADED_LATENCY_MS);
    ctx.log(`path to ${z} degraded: +${DEGRADED_LATENCY_MS} ms each way, ${n} sessions on it`);
    await this.#until(() => ctx.load(z) === 0, DEGRADED_MS);
    ctx.degrade(z, 0);
    this.notes.delete(z);
    const until = Date.now();
    ctx.log(`path to ${z} healed: ${ctx.load(z)} sessions still there`);
    if (ctx.stopping) return;
    this.#checks.push(() => {
      const moved = this.#movedFrom(z, ['rtt', 'throughput'], since, until + 2000);
      const by = (c: string) => moved.filter((m) => m.category === c).length;
      return {
        event: 'degraded path',
        server: z,
        ok: moved.length > 0,
        detail: `${moved.length} of ${n} sessions moved away (rtt ${by('rtt')}, throughput ${by('throughput')})`,
      };
    });
  }
}
