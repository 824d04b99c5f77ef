// The registry's numbers as plain data, for the dashboard, the CLI and tests: read back from the
// same prom-client series the exposition renders, so both always agree.
import { LATENCY_BUCKETS_SECONDS, type CounterName, type HistogramName } from './catalog.js';

export interface HistogramSnapshot {
  readonly count: number;
  /** Sum of the observations, in seconds. */
  readonly sum: number;
  /**
   * Cumulative counts keyed by upper bound in seconds, as Prometheus renders `le` (`'0.00005'` …
   * `'5'`, `'+Inf'`). Object key order is not bound order: walk `LATENCY_BUCKETS_SECONDS` for that.
   */
  readonly buckets: Readonly<Record<string, number>>;
  /**
   * Bucket estimates, in SECONDS, over everything observed since start: the upper bound of the
   * bucket holding the quantile (so never below the true value, and at most one bucket above it).
   * `Infinity` when the quantile lies above the last finite bucket (5 s); null when nothing was
   * observed. /v1/stats (ServiceStats.latencyMs) gives EXACT quantiles in MILLISECONDS over the last
   * 1024 operations. Both rank the same way (nearest rank, ceil(q·n)): while fewer than 1024 were
   * observed, this is the bucket that holds the exact figure /v1/stats shows (tested).
   */
  readonly p50: number | null;
  readonly p99: number | null;
}

export interface MetricsSnapshot {
  /** Keyed by the seed's names: `cache_hits`, `write_through_failures` … */
  readonly counters: Readonly<Record<CounterName, number>>;
  /** Keyed by the seed's names: `db_write_latency`, `cache_write_latency`, `write_through_total_latency`. */
  readonly histograms: Readonly<Record<HistogramName, HistogramSnapshot>>;
  /** Over all namespaces: firing when any is, and the highest rate. */
  readonly alert: { readonly firing: boolean; readonly rate: number };
}

/** One series value as prom-client's `metric.get()` returns it. */
export interface SeriesValue {
  readonly value: number;
  readonly labels: Readonly<Partial<Record<string, string | number>>>;
  readonly metricName?: string | undefined;
}

function inNamespace(value: SeriesValue, namespace: string | undefined): boolean {
  return namespace === undefined || value.labels['namespace'] === namespace;
}

/** The sum of the series of one namespace, or of all when `namespace` is undefined. */
export function sumSeries(values: readonly SeriesValue[], namespace: string | undefined): number {
  let total = 0;
  for (const v of values) if (inNamespace(v, namespace)) total += v.value;
  return total;
}

/** The highest series value (0 when there is none). */
export function maxSeries(values: readonly SeriesValue[], namespace: string | undefined): number {
  let max = 0;
  for (const v of values) if (inNamespace(v, namespace) && v.value > max) max = v.value;
  return max;
}

const BOUNDS: readonly number[] = [...LATENCY_BUCKETS_SECONDS, Number.POSITIVE_INFINITY];

function boundKey(bound: number): string {
  return bound === Number.POSITIVE_INFINITY ? '+Inf' : String(bound);
}

/** Merges a histogram's series (every operation, one namespace or all) into one snapshot. */
export function histogramSnapshot(values: readonly SeriesValue[], namespace: string | undefined): HistogramSnapshot {
  const buckets: Record<string, number> = {};
  for (const bound of BOUNDS) buckets[boundKey(bound)] = 0;
  let count = 0;
  let sum = 0;
  for (const v of values) {
    if (!inNamespace(v, namespace)) continue;
    const name = v.metricName ?? '';
    if (name.endsWith('_bucket')) {
      const key = String(v.labels['le']);
      buckets[key] = (buckets[key] ?? 0) + v.value;
    } else if (name.endsWith('_sum')) {
      sum += v.value;
    } else if (name.endsWith('_count')) {
      count += v.value;
    }
  }
  return {
    count,
    sum,
    buckets,
    p50: bucketQuantile(buckets, count, 0.5),
    p99: bucketQuantile(buckets, count, 0.99),
  };
}

/**
 * Estimates a quantile from cumulative bucket counts: the upper bound (seconds) of the first bucket
 * whose cumulative count reaches the quantile's rank. Null when the histogram is empty.
 */
export function bucketQuantile(buckets: Readonly<Record<string, number>>, count: number, q: number): number | null {
  if (!(count > 0)) return null;
  const rank = Math.max(1, Math.ceil(q * count));
  for (const bound of BOUNDS) {
    if ((buckets[boundKey(bound)] ?? 0) >= rank) return bound;
  }
  return Number.POSITIVE_INFINITY;
}
