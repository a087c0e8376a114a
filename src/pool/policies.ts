import type { MigrationDecision, MigrationPolicy, PolicyView } from '../session/migration.ts';
import { positive } from '../session/options.ts';
import { AdviceKind } from '../session/protocol.ts';

/**
 * Client-side migration policies: each watches one symptom against the session's own recent past
 * and asks to move when it persists. The mechanism is the same for all (ClientSession.migrate).
 */

/** Moves when the server advises it (overload, drain), to the server's suggested target if any. */
export function serverAdvice(): MigrationPolicy {
  return {
    name: 'advice',
    periodic: false,
    check(view) {
      const advice = view.advice;
      if (!advice) return undefined;
      const reason = advice.kind === AdviceKind.DRAIN ? 'server is draining' : 'server is overloaded';
      return { reason, target: advice.target || undefined };
    },
  };
}

export interface StallOptions {
  /** No payload for this long while data is expected. Default 1000 ms. */
  readonly after?: number;
  /** Data is expected when the stream delivered at least this many bytes/s before the stall. Default 1. */
  readonly minRate?: number;
}

/**
 * Moves when data stops arriving while it is expected: either our own writes go unacknowledged, or
 * the stream had been flowing. A cut path shows up here long before TCP gives up.
 */
export function stall(options: StallOptions = {}): MigrationPolicy {
  const after = options.after ?? 1000;
  let flowing = false;
  let lastBytes = 0;
  let lastAt = 0;
  return {
    name: 'stall',
    check(view) {
      if (view.bytesRead > lastBytes) {
        const rate = ((view.bytesRead - lastBytes) * 1000) / Math.max(1, view.now - lastAt);
        flowing = rate >= (options.minRate ?? 1);
        lastBytes = view.bytesRead;
        lastAt = view.now;
      }
      const quiet = view.now - Math.max(view.lastReceivedAt, view.attachedAt);
      const expecting = flowing || view.unacknowledged > 0;
      return expecting && quiet >= after ? { reason: `no data for ${quiet} ms` } : undefined;
    },
    reset(view) {
      flowing = false;
      lastBytes = view.bytesRead;
      lastAt = view.now;
    },
  };
}

export interface DegradationOptions {
  /** Move when the current figure is this many times worse than the baseline. */
  readonly factor?: number;
  /** Samples needed before a baseline is trusted. Default 5. */
  readonly minSamples?: number;
  /** The degradation must last this long (hysteresis). Default 1000 ms. */
  readonly sustain?: number;
  /** EWMA weight of a new sample in the baseline. Default 0.1. */
  readonly alpha?: number;
}

export interface RttOptions extends DegradationOptions {
  /** Sample the RTT (a ping) this often, busy or not. Default 2000 ms. */
  readonly sampleEvery?: number;
}

/**
 * Tracks an EWMA baseline and a fast-moving current value; reports degradation when `worse(current,
 * baseline)` holds continuously for `sustain` ms. The baseline stops learning while degraded, so a
 * slow path never becomes the new normal.
 */
class Degradation {
  readonly #o: Required<DegradationOptions>;
  #baseline: number | undefined;
  #current: number | undefined;
  #samples = 0;
  #since: number | undefined;

  constructor(o: DegradationOptions, defaultFactor: number) {
    this.#o = {
      factor: o.factor ?? defaultFactor,
      minSamples: o.minSamples ?? 5,
      sustain: o.sustain ?? 1000,
      alpha: o.alpha ?? 0.1,
    };
  }

  /** Feeds a sample; returns the ratio current/baseline when degraded long enough. */
  sample(value: number, now: number, worse: (ratio: number, factor: number) => boolean): number | undefined {
    this.#current = this.#current === undefined ? value : 0.5 * this.#current + 0.5 * value;
    if (this.#baseline === undefined) this.#baseline = value;
    const ratio = this.#current / Math.max(this.#baseline, 1e-9);
    const degraded = this.#samples >= this.#o.minSamples && worse(ratio, this.#o.factor);
    if (!degraded) {
      this.#baseline = (1 - this.#o.alpha) * this.#baseline + this.#o.alpha * value;
      this.#samples++;
      this.#since = undefined;
      return undefined;
    }
    this.#since ??= now;
    return now - this.#since >= this.#o.sustain ? ratio : undefined;
  }

  reset(): void {
    this.#baseline = undefined;
    this.#current = undefined;
    this.#samples = 0;
    this.#since = undefined;
  }
}

/** Moves when the round-trip time rises well above the session's own baseline. Default factor 3. */
export function rttDegraded(options: RttOptions = {}): MigrationPolicy {
  const d = new Degradation(options, 3);
  let lastRtt: number | undefined;
  return {
    name: 'rtt',
    rttSampleEvery: positive('sampleEvery', options.sampleEvery, 2000),
    check(view: PolicyView): MigrationDecision | undefined {
      if (view.rtt === undefined || view.rtt === lastRtt) return undefined;
      lastRtt = view.rtt;
      const ratio = d.sample(Math.max(view.rtt, 0.5), view.now, (r, f) => r >= f);
      return ratio === undefined
        ? undefined
        : { reason: `rtt ${view.rtt} ms is ${ratio.toFixed(1)}x the baseline` };
    },
    reset() {
      d.reset();
      lastRtt = undefined;
    },
  };
}

export interface ThroughputOptions extends DegradationOptions {
  /** Measurement window (ms). Default 250. */
  readonly window?: number;
  /** Ignore windows that received less than this (an idle stream is not a slow one). Default 16 KiB/s. */
  readonly minRate?: number;
}

/** Moves when the receive rate falls well below the session's own baseline. Default factor 0.5. */
export function throughputDegraded(options: ThroughputOptions = {}): MigrationPolicy {
  const d = new Degradation(options, 0.5);
  const window = options.window ?? 250;
  let windowStart = 0;
  let windowBytes = 0;
  return {
    name: 'throughput',
    check(view) {
      if (windowStart === 0) {
        windowStart = view.now;
        windowBytes = view.bytesRead;
        return undefined;
      }
      if (view.now - windowStart < window) return undefined;
      const rate = ((view.bytesRead - windowBytes) * 1000) / (view.now - windowStart);
      windowStart = view.now;
      windowBytes = view.bytesRead;
      // A stream that has gone quiet is the stall policy's business, not a slow path.
      if (rate < (options.minRate ?? 16 * 1024) && view.unacknowledged === 0) return undefined;
      const ratio = d.sample(rate, view.now, (r, f) => r <= f);
      return ratio === undefined
        ? undefined
        : { reason: `throughput ${(rate / 1e6).toFixed(2)} MB/s is ${ratio.toFixed(2)}x the baseline` };
    },
    reset(view) {
      d.reset();
      windowStart = view.now;
      windowBytes = view.bytesRead;
    },
  };
}
