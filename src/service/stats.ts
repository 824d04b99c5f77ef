// The numbers the dashboard shows (GET /v1/stats), computed on the server. Counters, failures and
// the alert come from the shared metrics registry (the same series /metrics renders); latencies
// are exact p50/p99 over the last 1024 operations of each kind, kept in ring buffers
// (LatencyReservoir), because the registry's histograms only say "since start, within a bucket".
import type { Engine } from '../engine/api.js';
import type { ReadEvent, WriteEvent } from '../engine/events.js';
import type { CounterName } from '../metrics/catalog.js';
import { LatencyReservoir, type RecentQuantiles } from '../metrics/reservoir.js';
import type { MetricsSnapshot } from '../metrics/snapshot.js';
import type { AuditSummary } from './audit-runner.js';

export interface ServiceStats {
  /** Server time, ms since the epoch: the page plots against it and derives rates from two polls. */
  readonly now: number;
  /** Namespace engines kept now (bounded by maxEngines; see engine-pool.ts). */
  readonly namespaces: number;
  /** Reads that settled (hits, misses, bypasses, store fallbacks, errors). */
  readonly reads: number;
  /** Writes and deletes called. */
  readonly writes: number;
  /** cache_hits / (cache_hits + cache_misses) since start; null before the first such read. */
  readonly hitRatio: number | null;
  /** Every counter of the registry, summed over namespaces, by the seed's names. */
  readonly counters: Readonly<Record<CounterName, number>>;
  /**
   * Recent latencies, EXACT, in MILLISECONDS, over the last 1024 operations of each kind. Reads are
   * timed whole (read events). metrics() and /metrics give bucket bounds in seconds since start,
   * ranked the same way (see HistogramSnapshot.p99).
   */
  readonly latencyMs: {
    /** Reads whole; `cache` those the cache answered (hits), `store` those the store answered (miss, bypass, fallback). */
    readonly read: { readonly total: RecentQuantiles; readonly cache: RecentQuantiles; readonly store: RecentQuantiles };
    readonly write: { readonly total: RecentQuantiles; readonly store: RecentQuantiles; readonly cache: RecentQuantiles };
  };
  /** The seed's failure counters. */
  readonly failures: {
    readonly write_through_db_failures: number;
    readonly write_through_cache_failures: number;
    readonly write_through_failures: number;
  };
  /** The cache-failure-rate alert: firing when any namespace's is; the highest rate. */
  readonly alert: { readonly firing: boolean; readonly rate: number; readonly threshold: number; readonly windowMs: number; readonly minSamples: number };
  /** Leases the cache dropped because their holder did not finish in time, and writes holding one now (this process). */
  readonly leases: { readonly expired: number; readonly writesInFlight: number };
  /** Keys invalidated from the store journal (bypass writes and repairs). */
  readonly journal: { readonly repairs: number };
  /** The latest audit, or null before the first one. */
  readonly audit: AuditSummary | null;
}

export interface AlertSettings {
  readonly cacheFailureRate: number;
  readonly windowMs: number;
  readonly minSamples: number;
}

export interface StatsContext {
  readonly namespaces: number;
  readonly alert: AlertSettings;
  readonly audit: AuditSummary | undefined;
  /**
   * The cache adapter's own total. Not the registry's sum: every namespace's series reports the
   * one shared adapter's total, so summing them would count each lease once per namespace.
   */
  readonly leasesExpired: number;
  /** Writes and deletes in flight over the engines served now. */
  readonly writesInFlight: number;
}

/** Recent latencies and writes in flight, fed by every engine the service hands out. */
export interface StatsTracker {
  /** Listens to an engine's read and write events; the returned function stops listening. */
  instrument(engine: Engine<unknown>): () => void;
  /** Builds the stats from a metrics snapshot taken now. */
  assemble(snapshot: MetricsSnapshot, context: StatsContext): ServiceStats;
}

export function createStatsTracker(): StatsTracker {
  const read = new LatencyReservoir();
  const readBy = { cache: new LatencyReservoir(), store: new LatencyReservoir() };
  const write = { total: new LatencyReservoir(), store: new LatencyReservoir(), cache: new LatencyReservoir() };
  const onRead = (event: ReadEvent): void => {
    read.record(event.ms);
    if (event.source !== undefined) (event.source === 'hit' ? readBy.cache : readBy.store).record(event.ms);
  };
  const onWrite = (event: WriteEvent): void => {
    write.total.record(event.totalMs);
    write.store.record(event.dbMs);
    write.cache.record(event.cacheMs);
  };

  return {
    instrument(engine) {
      engine.on('read', onRead).on('write', onWrite);
      return () => {
        engine.off('read', onRead).off('write', onWrite);
      };
    },
    assemble(snapshot, { namespaces, alert, audit, leasesExpired, writesInFlight }) {
      const c = snapshot.counters;
      const looked = c.cache_hits + c.cache_misses;
      return {
        now: Date.now(),
        namespaces,
        reads: read.recorded,
        writes: c.writes + c.deletes,
        hitRatio: looked === 0 ? null : c.cache_hits / looked,
        counters: { ...c, leases_expired: leasesExpired },
        latencyMs: {
          read: { total: read.quantiles(), cache: readBy.cache.quantiles(), store: readBy.store.quantiles() },
          write: { total: write.total.quantiles(), store: write.store.quantiles(), cache: write.cache.quantiles() },
        },
        failures: {
          write_through_db_failures: c.write_through_db_failures,
          write_through_cache_failures: c.write_through_cache_failures,
          write_through_failures: c.write_through_failures,
        },
        alert: {
          firing: snapshot.alert.firing,
          rate: snapshot.alert.rate,
          threshold: alert.cacheFailureRate,
          windowMs: alert.windowMs,
          minSamples: alert.minSamples,
        },
        leases: { expired: leasesExpired, writesInFlight },
        journal: { repairs: c.journal_repairs },
        audit: audit ?? null,
      };
    },
  };
}
