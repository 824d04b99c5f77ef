// The cache-failure-rate alert: a sliding window of write outcomes in time buckets, driven by the
// injected clock (no timers), that reports only when the alert state changes.
import type { Clock } from '../types.js';

/** The window is cut into this many buckets; samples leave it one bucket at a time. */
const BUCKETS = 10;

export interface FailureRateMonitorOptions {
  /** Fraction of writes whose cache step failed that fires the alert, in (0, 1]. */
  readonly threshold: number;
  /** Length of the sliding window, in ms. */
  readonly windowMs: number;
  /** Writes the window must hold before the alert can fire (or stay firing). */
  readonly minSamples: number;
  readonly clock: Clock;
}

/** A change of the alert state, with the window as it stood when it changed. */
export interface AlertTransition {
  readonly firing: boolean;
  /** Failed / total writes in the window, 0 when the window is empty. */
  readonly rate: number;
  readonly samples: number;
}

/**
 * Watches the share of writes whose cache step failed.
 *
 * The alert is firing exactly while the window holds at least `minSamples` writes and
 * `failed / samples >= threshold`; so it clears when the rate falls below the threshold, or when
 * old samples leave the window and too few remain to judge. The window is `BUCKETS` buckets of
 * `windowMs / BUCKETS`: the newest bucket is partly filled, so the window effectively spans between
 * 90% and 100% of `windowMs`. Every call is O(1) (at most `BUCKETS` slots are swept).
 *
 * Time only moves when the monitor is called: with no writes at all the state stays as it was, so
 * an owner that wants a firing alert to clear during silence calls `poll()` now and then.
 */
export class FailureRateMonitor {
  readonly threshold: number;
  readonly windowMs: number;
  readonly minSamples: number;
  readonly #clock: Clock;
  readonly #bucketMs: number;
  readonly #totals: number[] = new Array<number>(BUCKETS).fill(0);
  readonly #failures: number[] = new Array<number>(BUCKETS).fill(0);
  /** Absolute index (time / bucketMs) of the newest bucket. */
  #head: number;
  #samples = 0;
  #failed = 0;
  #firing = false;

  constructor(options: FailureRateMonitorOptions) {
    const { threshold, windowMs, minSamples, clock } = options;
    if (typeof threshold !== 'number' || !(threshold > 0 && threshold <= 1)) {
      throw new RangeError(`threshold must be a number in (0, 1] (got ${String(threshold)})`);
    }
    if (typeof windowMs !== 'number' || !Number.isFinite(windowMs) || windowMs <= 0) {
      throw new RangeError(`windowMs must be a positive number (got ${String(windowMs)})`);
    }
    if (!Number.isSafeInteger(minSamples) || minSamples <= 0) {
      throw new RangeError(`minSamples must be a positive integer (got ${String(minSamples)})`);
    }
    if (typeof clock?.now !== 'function') throw new TypeError('clock must have now()');
    this.threshold = threshold;
    this.windowMs = windowMs;
    this.minSamples = minSamples;
    this.#clock = clock;
    this.#bucketMs = windowMs / BUCKETS;
    this.#head = this.#indexNow();
  }

  /** Records one write's outcome (`failed`: its cache step failed); returns the transition, if any. */
  record(failed: boolean): AlertTransition | undefined {
    this.#advance();
    const slot = this.#slot(this.#head);
    this.#totals[slot]! += 1;
    this.#samples += 1;
    if (failed) {
      this.#failures[slot]! += 1;
      this.#failed += 1;
    }
    return this.#evaluate();
  }

  /** Re-evaluates the window at the clock's time without recording: lets an alert clear when writes stop. */
  poll(): AlertTransition | undefined {
    this.#advance();
    return this.#evaluate();
  }

  /** The state last reported (by `record` or `poll`). */
  get firing(): boolean {
    return this.#firing;
  }

  /** Failed / total writes in the window at the clock's time (0 when empty). */
  get rate(): number {
    this.#advance();
    return this.#rate();
  }

  /** Writes in the window at the clock's time. */
  get samples(): number {
    this.#advance();
    return this.#samples;
  }

  #evaluate(): AlertTransition | undefined {
    const rate = this.#rate();
    const firing = this.#samples >= this.minSamples && rate >= this.threshold;
    if (firing === this.#firing) return undefined;
    this.#firing = firing;
    return { firing, rate, samples: this.#samples };
  }

  #rate(): number {
    return this.#samples === 0 ? 0 : this.#failed / this.#samples;
  }

  /** Empties the buckets that fell out of the window since the last call. */
  #advance(): void {
    const index = this.#indexNow();
    // A clock that stepped back (it should not) keeps filling the newest bucket.
    if (index <= this.#head) return;
    const steps = index - this.#head;
    if (steps >= BUCKETS) {
      this.#totals.fill(0);
      this.#failures.fill(0);
      this.#samples = 0;
      this.#failed = 0;
    } else {
      for (let i = 1; i <= steps; i++) {
        const slot = this.#slot(this.#head + i);
        this.#samples -= this.#totals[slot]!;
        this.#failed -= this.#failures[slot]!;
        this.#totals[slot] = 0;
        this.#failures[slot] = 0;
      }
    }
    this.#head = index;
  }

  #indexNow(): number {
    return Math.floor(this.#clock.now() / this.#bucketMs);
  }

  #slot(index: number): number {
    return ((index % BUCKETS) + BUCKETS) % BUCKETS;
  }
}
