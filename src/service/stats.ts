// The numbers the dashboard shows (GET /v1/stats), computed on the server. Counters, failures and
// the alert come from the shared metrics registry (the same series /metrics renders); latencies
// are exact p50/p99 over the last 1024 operations of each kind, kept in ring buffers
// (LatencyReservoir), because the registry's histograms only say "since start, within a bucket".
// A view is all namespaces or one (?namespace=): counters, failures, the alert, histograms, the
// history and the audit follow it; the recent latencies are the service's (one set of rings).
import type { StateCounts } from '../audit/auditor.js';
import type { Engine } from '../engine/api.js';
import type { ReadEvent, WriteEvent } from '../engine/events.js';
import type { CounterName, HistogramName } from '../metrics/catalog.js';
import { LatencyReservoir, type RecentQuantiles } from '../metrics/reservoir.js';
import type { MetricsSnapshot } from '../metrics/snapshot.js';
import type { AuditDefectExample, AuditPoint, AuditSummary } from './audit-runner.js';
import type { HistorySample, StatsWindow } from './stats-history.js';

/** What a stats call looks at. */
export interface StatsView {
  /** One namespace, or null for all. */
  readonly namespace: string | null;
  /**
   * `all`; `own` when the namespace has its own metric series; `none` when it has none (never
   * written or found, or beyond metricsNamespaces: its traffic counts under `_other`): a zero view.
   */
  readonly series: 'all' | 'own' | 'none';
}

/** A seed histogram over the view, since start: bucket upper bounds in ms (see HistogramSnapshot). */
export interface HistogramStats {
  readonly count: number;
  readonly p50Ms: number | null;
  readonly p99Ms: number | null;
}

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
  /** The latest audit, or null before the first one (one namespace's counts and examples in a namespace view). */
  readonly audit: AuditSummary | null;
  readonly view: StatsView;
  /** The seed's latency histograms over the view, since start. */
  readonly histograms: Readonly<Record<HistogramName, HistogramStats>>;
  /** The chosen window and the samples in it (sampled every intervalMs, kept for keptMs). */
  readonly window: { readonly name: StatsWindow; readonly ms: number; readonly intervalMs: number; readonly keptMs: number };
  readonly history: readonly HistorySample[];
  /** The A–E counts of the last audits (the view's namespace only, in a namespace view), oldest first. */
  readonly auditHistory: ReadonlyArray<{ readonly finishedAt: string; readonly counts: StateCounts }>;
  /** The namespaces with a metric series of their own (the filter's choices; at most metricsNamespaces). */
  readonly namespaceList: readonly string[];
}

/** What the service adds for a view. */
export interface ViewContext {
  readonly view: StatsView;
  readonly window: ServiceStats['window'];
  readonly history: readonly HistorySample[];
  readonly auditHistory: readonly AuditPoint[];
  readonly namespaceList: readonly string[];
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
  assemble(snapshot: MetricsSnapshot, context: StatsContext, view: ViewContext): ServiceStats;
  /** Recent p99s in ms (for the history samples). */
  p99(): { readonly read: number | null; readonly write: number | null };
}

const ZERO_COUNTS: StateCounts = Object.freeze({ A: 0, B: 0, C: 0, D: 0, E: 0 });

/** The latest audit as one namespace saw it. */
function auditOf(audit: AuditSummary, namespace: string): AuditSummary {
  const counts = audit.byNamespace[namespace] ?? ZERO_COUNTS;
  const only = (list: readonly AuditDefectExample[]): AuditDefectExample[] => list.filter((e) => e.namespace === namespace);
  return {
    ...audit,
    namespaces: namespace in audit.byNamespace ? 1 : 0,
    keys: counts.A + counts.B + counts.C + counts.D + counts.E,
    counts,
    byNamespace: namespace in audit.byNamespace ? { [namespace]: counts } : {},
    errors: audit.errors.filter((e) => e.namespace === namespace),
    examples: { D: only(audit.examples.D), E: only(audit.examples.E) },
  };
}

const toMs = (seconds: number | null): number | null => (seconds === null ? null : seconds * 1000);

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
    p99: () => ({ read: read.quantiles().p99, write: write.total.quantiles().p99 }),
    assemble(snapshot, { namespaces, alert, audit, leasesExpired, writesInFlight }, { view, window, history, auditHistory, namespaceList }) {
      const c = snapshot.counters;
      const looked = c.cache_hits + c.cache_misses;
      const ns = view.namespace;
      const histograms = {} as Record<HistogramName, HistogramStats>;
      for (const [name, h] of Object.entries(snapshot.histograms) as Array<[HistogramName, MetricsSnapshot['histograms'][HistogramName]]>) {
        histograms[name] = { count: h.count, p50Ms: toMs(h.p50), p99Ms: toMs(h.p99) };
      }
      return {
        now: Date.now(),
        namespaces,
        // All namespaces: every read timed (errors too); one: the reads its counters settled.
        reads: ns === null ? read.recorded : c.cache_hits + c.cache_misses + c.cache_bypasses + c.cache_read_failures,
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
        audit: audit === undefined ? null : ns === null ? audit : auditOf(audit, ns),
        view,
        histograms,
        window,
        history,
        auditHistory: auditHistory.map((p) => ({ finishedAt: p.finishedAt, counts: ns === null ? p.counts : (p.byNamespace[ns] ?? ZERO_COUNTS) })),
        namespaceList,
      };
    },
  };
}
