// Recent latencies for the dashboard: a ring buffer of the last `capacity` samples, with exact
// quantiles over them. The Prometheus histograms answer "since start, within a bucket"; a live page
// wants "the last few hundred operations, to the microsecond", which a small ring gives for the
// price of one array store per sample (the sort happens when someone asks, about once a second).

export interface RecentQuantiles {
  /** Nearest-rank quantiles over the samples held, in ms; null when none was recorded yet. */
  readonly p50: number | null;
  readonly p99: number | null;
  /** Samples the quantiles were computed over (at most the capacity). */
  readonly samples: number;
}

/** @default capacity 1024 */
export class LatencyReservoir {
  readonly #ring: Float64Array;
  /** Samples ever recorded; the next one goes to `#recorded % capacity`. */
  #recorded = 0;

  constructor(readonly capacity = 1024) {
    if (!Number.isSafeInteger(capacity) || capacity <= 0) throw new RangeError(`capacity must be a positive integer (got ${capacity})`);
    this.#ring = new Float64Array(capacity);
  }

  /** Keeps one sample in ms; a negative or non-finite one is dropped (it comes from inside a hot path, never throw there). */
  record(ms: number | undefined): void {
    if (typeof ms !== 'number' || !(ms >= 0) || !Number.isFinite(ms)) return;
    this.#ring[this.#recorded % this.capacity] = ms;
    this.#recorded++;
  }

  /** Samples recorded since creation (not only those still held). */
  get recorded(): number {
    return this.#recorded;
  }

  quantiles(): RecentQuantiles {
    const held = Math.min(this.#recorded, this.capacity);
    if (held === 0) return { p50: null, p99: null, samples: 0 };
    const sorted = this.#ring.slice(0, held).sort();
    return { p50: nearestRank(sorted, 0.5), p99: nearestRank(sorted, 0.99), samples: held };
  }
}

function nearestRank(sorted: Float64Array, q: number): number {
  return sorted[Math.max(0, Math.ceil(q * sorted.length) - 1)]!;
}
