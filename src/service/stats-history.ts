// The dashboard's time windows: the service samples its counters on a timer and keeps the samples
// in fixed rings, one for all namespaces and one per metric series group (each labelled namespace
// and `_other`), so the page can chart the last 1 m / 5 m / 15 m / 1 h of one namespace or all.
// Bounded: at most `capacity` samples per ring, and at most maxLabelled + 2 rings (the groups are
// capped in series-groups.ts); a sample is a handful of numbers read from the groups' counters
// (no prom-client call), so sampling costs microseconds.
import type { EngineCounters } from '../engine/events.js';

/** One point: cumulative counters at `t` (the page derives rates and ratios from two points). */
export interface HistorySample {
  /** Server time, ms since the epoch. */
  readonly t: number;
  readonly cache_hits: number;
  readonly cache_misses: number;
  /** Reads settled: hits, misses, bypasses and store fallbacks. */
  readonly reads: number;
  /** Writes and deletes. */
  readonly writes: number;
  readonly write_through_db_failures: number;
  readonly write_through_cache_failures: number;
  readonly write_through_failures: number;
  /** Recent p99 in ms of reads and of writes (all namespaces, in every view; null before any). */
  readonly read_p99: number | null;
  readonly write_p99: number | null;
}

/** The windows the page offers, by name. */
export const STATS_WINDOWS: Readonly<Record<string, number>> = Object.freeze({ '1m': 60_000, '5m': 300_000, '15m': 900_000, '1h': 3_600_000 });
export type StatsWindow = '1m' | '5m' | '15m' | '1h';
export const DEFAULT_STATS_WINDOW: StatsWindow = '5m';
/**
 * Samples one answer carries at most: a longer window is thinned to every k-th sample, newest
 * kept. Lossless for the rates (the counters are cumulative), and it keeps a 1 h poll small.
 */
export const MAX_ANSWER_SAMPLES = 360;

const FIELDS = ['t', 'cache_hits', 'cache_misses', 'reads', 'writes', 'write_through_db_failures', 'write_through_cache_failures', 'write_through_failures', 'read_p99', 'write_p99'] as const;

export interface HistorySource {
  /** Every group's label and counters (labelled namespaces and `_other`). */
  groups(): Iterable<{ readonly namespace: string; readonly counters: EngineCounters }>;
  /** Recent p99s, all namespaces. */
  p99(): { readonly read: number | null; readonly write: number | null };
}

export interface StatsHistory {
  /** The samples of one group (a namespace with its own series) or of all (undefined), newest last, within `windowMs` of now. */
  window(namespace: string | undefined, windowMs: number): HistorySample[];
  /** The time the rings span when full, in ms. */
  readonly keptMs: number;
  readonly intervalMs: number;
  /** Takes a sample now (the timer calls it; tests may too). */
  sample(): void;
  stop(): void;
}

const ALL = Symbol('all');

/** A ring of samples stored flat in one Float64Array (NaN stands for null). */
class Ring {
  readonly #values: Float64Array;
  #written = 0;
  constructor(readonly capacity: number) {
    this.#values = new Float64Array(capacity * FIELDS.length);
  }
  push(sample: HistorySample): void {
    const at = (this.#written % this.capacity) * FIELDS.length;
    FIELDS.forEach((field, i) => {
      this.#values[at + i] = sample[field] ?? Number.NaN;
    });
    this.#written++;
  }
  since(t: number): HistorySample[] {
    const out: HistorySample[] = [];
    const count = Math.min(this.#written, this.capacity);
    for (let n = this.#written - count; n < this.#written; n++) {
      const at = (n % this.capacity) * FIELDS.length;
      if (this.#values[at]! < t) continue;
      const row: Record<string, number | null> = {};
      FIELDS.forEach((field, i) => {
        const v = this.#values[at + i]!;
        row[field] = Number.isNaN(v) ? null : v;
      });
      out.push(row as unknown as HistorySample);
    }
    return out;
  }
}

export function createStatsHistory(source: HistorySource, options: { intervalMs: number; capacity: number; now?: () => number }): StatsHistory {
  const { intervalMs, capacity } = options;
  const now = options.now ?? Date.now;
  const rings = new Map<string | typeof ALL, Ring>();
  const ring = (id: string | typeof ALL): Ring => {
    let r = rings.get(id);
    if (r === undefined) rings.set(id, (r = new Ring(capacity)));
    return r;
  };

  function sample(): void {
    const t = now();
    const { read, write } = source.p99();
    const total = { t, cache_hits: 0, cache_misses: 0, reads: 0, writes: 0, write_through_db_failures: 0, write_through_cache_failures: 0, write_through_failures: 0, read_p99: read, write_p99: write };
    for (const { namespace, counters: c } of source.groups()) {
      const own: HistorySample = {
        t,
        cache_hits: c.cacheHits,
        cache_misses: c.cacheMisses,
        reads: c.cacheHits + c.cacheMisses + c.cacheBypasses + c.cacheReadFailures,
        writes: c.writes + c.deletes,
        write_through_db_failures: c.dbFailures,
        write_through_cache_failures: c.cacheFailures,
        write_through_failures: c.failures,
        // The recent latencies are the service's: every view charts the same p99s.
        read_p99: read,
        write_p99: write,
      };
      ring(namespace).push(own);
      for (const key of FIELDS) if (key !== 't' && key !== 'read_p99' && key !== 'write_p99') total[key] += own[key];
    }
    ring(ALL).push(total);
  }

  const timer = setInterval(sample, intervalMs);
  timer.unref();
  return {
    window: (namespace, windowMs) => thin(rings.get(namespace ?? ALL)?.since(now() - windowMs) ?? []),
    keptMs: intervalMs * capacity,
    intervalMs,
    sample,
    stop: () => clearInterval(timer),
  };
}

/** Every k-th sample counted back from the newest, at most MAX_ANSWER_SAMPLES, oldest first. */
function thin(samples: HistorySample[]): HistorySample[] {
  if (samples.length <= MAX_ANSWER_SAMPLES) return samples;
  const stride = Math.ceil(samples.length / MAX_ANSWER_SAMPLES);
  const kept: HistorySample[] = [];
  for (let i = samples.length - 1; i >= 0; i -= stride) kept.push(samples[i]!);
  return kept.reverse();
}
