// What the metrics subscriber reads from an engine, and the catalog of series it publishes.
// Names here are the seed's (no prefix, no unit suffix); the recorder renders them as
// `<prefix><name>_total` (counters), `<prefix><name>_seconds` (histograms) and `<prefix><name>` (gauges).
import type { AlertEvent, EngineCounters, WriteEvent } from '../engine/events.js';
import type { CacheStats, StoreStats } from '../types.js';

/** The slice of one engine (one namespace) the metrics subscriber needs: its counters, cache stats and events. */
export interface MetricsSource {
  readonly namespace: string;
  /** Read at scrape time only: the engine's hot path just bumps these numbers. */
  readonly counters: Readonly<EngineCounters>;
  cacheStats(): CacheStats;
  /**
   * The cache adapter behind cacheStats(). Several namespaces over one cache see the same totals,
   * so per-cache series are reported once per cache (under the first namespace attached).
   * @default the source itself (its cache is its own)
   */
  readonly cacheIdentity?: object;
  /**
   * The live cache-failure rate over the alert window, read at scrape time. When absent, the
   * `cache_failure_rate` gauge shows the rate carried by the last `alert` event.
   */
  failureRate?(): number;
  /** The store adapter's own counters, when it keeps any (StoreAdapter.stats). */
  storeStats?(): StoreStats | undefined;
  /**
   * The store adapter behind storeStats(): per-store series are reported once per store, as per-cache
   * ones are per cache. @default the source itself
   */
  readonly storeIdentity?: object;
  on(event: 'write', listener: (event: WriteEvent) => void): unknown;
  on(event: 'alert', listener: (event: AlertEvent) => void): unknown;
  off(event: 'write', listener: (event: WriteEvent) => void): unknown;
  off(event: 'alert', listener: (event: AlertEvent) => void): unknown;
}

/** Histogram buckets in seconds, from 50 µs to 5 s (slower writes land in `+Inf`). */
export const LATENCY_BUCKETS_SECONDS: readonly number[] = Object.freeze([
  0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5,
]);

export type CounterName =
  | 'cache_hits'
  | 'cache_misses'
  | 'cache_bypasses'
  | 'cache_read_failures'
  | 'fills_rejected'
  | 'fill_waits'
  | 'fill_wait_timeouts'
  | 'write_through_db_failures'
  | 'write_through_cache_failures'
  | 'write_through_failures'
  | 'write_through_precondition_failures'
  | 'write_through_journaled_acks'
  | 'journal_repairs'
  | 'writes'
  | 'deletes'
  | 'leases_expired'
  | 'cache_dataset_flushes'
  | 'cache_dataset_quarantines'
  | 'consistency_checks'
  | 'consistency_violations'
  | 'settle_poll_errors';

export interface CounterSpec {
  readonly name: CounterName;
  readonly help: string;
  read(source: MetricsSource): number;
  /** A total of the cache adapter, not of the namespace: counted once per cache. */
  readonly perCache?: true;
  /** A total of the store adapter: counted once per store. */
  readonly perStore?: true;
}

export const COUNTERS: readonly CounterSpec[] = Object.freeze([
  { name: 'cache_hits', help: 'Reads served by the cache.', read: (s) => s.counters.cacheHits },
  { name: 'cache_misses', help: 'Reads the cache missed, served by the store.', read: (s) => s.counters.cacheMisses },
  {
    name: 'cache_bypasses',
    help: 'Reads sent to the store because a write held the key.',
    read: (s) => s.counters.cacheBypasses,
  },
  {
    name: 'cache_read_failures',
    help: 'Reads served by the store because the cache failed.',
    read: (s) => s.counters.cacheReadFailures,
  },
  {
    name: 'fills_rejected',
    help: 'Cache fills refused because the reader no longer held the fill lease.',
    read: (s) => s.counters.fillsRejected,
  },
  {
    name: 'fill_waits',
    help: 'Misses that found another instance\'s fill of the key in progress and waited for its value instead of reading the store.',
    read: (s) => s.counters.fillWaits,
  },
  {
    name: 'fill_wait_timeouts',
    help: 'Waits for another instance\'s fill that ran out (fillWait) and read the store.',
    read: (s) => s.counters.fillWaitTimeouts,
  },
  {
    name: 'write_through_db_failures',
    help: 'Writes and deletes the store refused or failed (nothing committed).',
    read: (s) => s.counters.dbFailures,
  },
  {
    name: 'write_through_cache_failures',
    help: 'Writes and deletes committed to the store whose cache step failed.',
    read: (s) => s.counters.cacheFailures,
  },
  {
    name: 'write_through_failures',
    help: 'Writes and deletes that did not end ok (store or cache failure, refused, unknown).',
    read: (s) => s.counters.failures,
  },
  {
    name: 'write_through_precondition_failures',
    help: 'Conditional writes and deletes refused because their condition (ifVersion, ifAbsent, ifExists) did not hold; not failures.',
    read: (s) => s.counters.preconditionFailures,
  },
  {
    name: 'write_through_journaled_acks',
    help: 'Writes and deletes acknowledged without a cache lease (pragmatic policy): journaled, possibly served stale elsewhere until replayed.',
    read: (s) => s.counters.journaledAcks,
  },
  {
    name: 'journal_repairs',
    help: 'Keys invalidated in the cache from the store journal (bypass writes and repairs).',
    read: (s) => s.counters.journalRepairs,
  },
  { name: 'writes', help: 'Write calls.', read: (s) => s.counters.writes },
  { name: 'deletes', help: 'Delete calls.', read: (s) => s.counters.deletes },
  {
    name: 'leases_expired',
    help: 'Cache leases dropped because their holder did not finish in time (the cache adapter total, under the first namespace attached to that cache).',
    read: (s) => s.cacheStats().leasesExpired,
    perCache: true,
  },
  {
    name: 'cache_dataset_flushes',
    help: 'Times the cache removed a dataset it could not prove it wrote (a Redis restarted from a snapshot, a promoted replica, a marker missing): the cache starts cold (the cache adapter total, under the first namespace attached to that cache).',
    read: (s) => s.cacheStats().datasetFlushes ?? 0,
    perCache: true,
  },
  {
    name: 'cache_dataset_quarantines',
    help: 'Times the cache started a quarantine after a lost dataset (a Redis restart, a promoted replica, a flush): it answered no call (E_CACHE_QUARANTINED, reads from the store) for restartQuarantine (the cache adapter total, under the first namespace attached to that cache).',
    read: (s) => s.cacheStats().datasetQuarantines ?? 0,
    perCache: true,
  },
  {
    name: 'consistency_checks',
    help: 'Sampled cache hits re-checked against the store (consistencySampling.rate).',
    read: (s) => s.counters.consistencyChecks,
  },
  {
    name: 'consistency_violations',
    help: 'Sampled cache hits proved inconsistent with the store; 1 - violations/checks is the consistency in nines.',
    read: (s) => s.counters.consistencyViolations,
  },
  {
    name: 'settle_poll_errors',
    help: 'Polls of the settlement of writes given up on that failed (the database could not be asked; each is retried, a write not settled in time is fenced anyway). The store adapter total, under the first namespace attached to that store.',
    read: (s) => s.storeStats?.()?.settlePollErrors ?? 0,
    perStore: true,
  },
] satisfies CounterSpec[]);

export type HistogramName = 'db_write_latency' | 'cache_write_latency' | 'write_through_total_latency';

export interface HistogramSpec {
  readonly name: HistogramName;
  readonly help: string;
  /** The latency this histogram observes, in ms, or undefined when that step did not run. */
  pick(event: WriteEvent): number | undefined;
}

export const HISTOGRAMS: readonly HistogramSpec[] = Object.freeze([
  { name: 'db_write_latency', help: 'Store step of a write or delete, in seconds.', pick: (e) => e.dbMs },
  {
    name: 'cache_write_latency',
    help: 'Cache steps (begin + complete) of a write or delete, in seconds.',
    pick: (e) => e.cacheMs,
  },
  {
    name: 'write_through_total_latency',
    help: 'Whole write or delete as the caller saw it, in seconds.',
    pick: (e) => e.totalMs,
  },
] satisfies HistogramSpec[]);

export const ALERT_GAUGE = 'cache_failure_alert';
export const RATE_GAUGE = 'cache_failure_rate';
