// Prometheus as a subscriber: engines attach, and their events and counters become prom-client series.
// The engine's hot path only bumps plain numbers; counters are read here at scrape time (collect()).
import { Counter, Gauge, Histogram, Registry, type RegistryContentType } from 'prom-client';
import type { AlertEvent, WriteEvent, WriteOperation } from '../engine/events.js';
import { InvalidOptionError, LockstepError } from '../errors.js';
import { ALERT_GAUGE, COUNTERS, HISTOGRAMS, LATENCY_BUCKETS_SECONDS, RATE_GAUGE, type CounterName, type HistogramName, type MetricsSource } from './catalog.js';
import { seriesObserver } from './series-observer.js';
import { histogramSnapshot, maxSeries, sumSeries, type HistogramSnapshot, type MetricsSnapshot } from './snapshot.js';

export type { MetricsSource } from './catalog.js';
export type { HistogramSnapshot, MetricsSnapshot } from './snapshot.js';

export interface MetricsOptions {
  /**
   * Where the series are registered; an OpenMetrics registry is honoured (its content type is read
   * once, here). @default a fresh Registry (never prom-client's global one)
   */
  registry?: Registry<RegistryContentType>;
  /** Prepended to every metric name. @default 'lockstep_' */
  prefix?: string;
}

export interface LockstepMetrics {
  readonly registry: Registry<RegistryContentType>;
  /** The Content-Type of `text()`. */
  readonly contentType: string;
  /**
   * Subscribes to one engine; every series it feeds carries `namespace="<source.namespace>"`.
   * Returns detach, which unsubscribes and removes that namespace's series. A namespace attaches once.
   */
  attach(source: MetricsSource): () => void;
  /** The registry (all of it, when one was passed in) in the Prometheus exposition format. */
  text(): Promise<string>;
  /** The same numbers as plain data, for one namespace or summed over all. */
  snapshot(namespace?: string): Promise<MetricsSnapshot>;
}

interface Attachment {
  readonly source: MetricsSource;
  /** The state carried by the last `alert` event. */
  firing: boolean;
  rate: number;
}

const OPERATIONS: readonly WriteOperation[] = ['write', 'delete'];
const PREFIX_PATTERN = /^(?:[a-zA-Z_:][a-zA-Z0-9_:]*)?$/;

type Label = 'namespace';
type HistogramLabel = 'namespace' | 'operation';

export function createMetrics(options: MetricsOptions = {}): LockstepMetrics {
  const registry: Registry<RegistryContentType> = options.registry ?? new Registry();
  const prefix = options.prefix ?? 'lockstep_';
  if (typeof prefix !== 'string' || !PREFIX_PATTERN.test(prefix)) {
    throw new InvalidOptionError(`prefix must match [a-zA-Z_:][a-zA-Z0-9_:]* (got ${JSON.stringify(prefix)})`);
  }
  const registers = [registry];
  const attached = new Map<string, Attachment>();
  // prom-client appends `_total` to counters itself when the registry speaks OpenMetrics.
  const counterSuffix = registry.contentType === Registry.OPENMETRICS_CONTENT_TYPE ? '' : '_total';

  const counters = new Map<CounterName, Counter<Label>>();
  for (const spec of COUNTERS) {
    const counter = new Counter<Label>({
      name: `${prefix}${spec.name}${counterSuffix}`,
      help: spec.help,
      labelNames: ['namespace'],
      registers,
      collect() {
        this.reset();
        const caches = new Set<object>();
        const stores = new Set<object>();
        for (const { source } of attached.values()) {
          if (spec.perCache) {
            const cache = source.cacheIdentity ?? source;
            if (caches.has(cache)) continue; // the same cache's total, already counted
            caches.add(cache);
          }
          if (spec.perStore) {
            const store = source.storeIdentity ?? source;
            if (stores.has(store)) continue; // the same store's total, already counted
            stores.add(store);
          }
          this.inc({ namespace: source.namespace }, spec.read(source));
        }
      },
    });
    counters.set(spec.name, counter);
  }

  const histograms = new Map<HistogramName, Histogram<HistogramLabel>>();
  for (const spec of HISTOGRAMS) {
    const histogram = new Histogram<HistogramLabel>({
      name: `${prefix}${spec.name}_seconds`,
      help: spec.help,
      labelNames: ['namespace', 'operation'],
      buckets: [...LATENCY_BUCKETS_SECONDS],
      registers,
    });
    histograms.set(spec.name, histogram);
  }

  const alertGauge = new Gauge<Label>({
    name: `${prefix}${ALERT_GAUGE}`,
    help: '1 while the cache-failure-rate alert is firing, else 0.',
    labelNames: ['namespace'],
    registers,
    collect() {
      this.reset();
      for (const a of attached.values()) this.set({ namespace: a.source.namespace }, a.firing ? 1 : 0);
    },
  });
  const rateGauge = new Gauge<Label>({
    name: `${prefix}${RATE_GAUGE}`,
    help: 'Share of writes whose cache step failed over the alert window (the rate of the last alert event when the engine exposes no live rate).',
    labelNames: ['namespace'],
    registers,
    collect() {
      this.reset();
      for (const a of attached.values()) this.set({ namespace: a.source.namespace }, a.source.failureRate?.() ?? a.rate);
    },
  });

  function attach(source: MetricsSource): () => void {
    const namespace = source.namespace;
    if (typeof namespace !== 'string' || namespace.length === 0) {
      throw new TypeError('a metrics source needs a non-empty namespace');
    }
    if (attached.has(namespace)) {
      throw new LockstepError(`namespace ${JSON.stringify(namespace)} is already attached to these metrics`, { namespace });
    }
    const attachment: Attachment = { source, firing: false, rate: 0 };
    // One label object per operation, reused by every observation.
    const labels: Record<WriteOperation, { namespace: string; operation: WriteOperation }> = {
      write: { namespace, operation: 'write' },
      delete: { namespace, operation: 'delete' },
    };
    const observed = HISTOGRAMS.map((spec) => ({ pick: spec.pick, histogram: histograms.get(spec.name)! }));
    attached.set(namespace, attachment);
    for (const { histogram } of observed) for (const op of OPERATIONS) histogram.zero(labels[op]);
    // Each series found once (series-observer.ts): an observation does not hash its labels again.
    const observers = observed.map(({ pick, histogram }) => ({
      pick,
      write: seriesObserver(histogram, labels.write),
      delete: seriesObserver(histogram, labels.delete),
    }));

    const onWrite = (event: WriteEvent): void => {
      const operation = event.operation;
      if (operation !== 'write' && operation !== 'delete') return;
      for (const observer of observers) {
        const ms = observer.pick(event);
        // A listener runs inside the engine's write: never let a bad sample throw there.
        if (typeof ms === 'number' && ms >= 0 && Number.isFinite(ms)) observer[operation](ms / 1000);
      }
    };
    const onAlert = (event: AlertEvent): void => {
      attachment.firing = event.firing;
      attachment.rate = event.rate;
    };

    source.on('write', onWrite);
    source.on('alert', onAlert);

    let detached = false;
    return function detach(): void {
      if (detached) return;
      detached = true;
      source.off('write', onWrite);
      source.off('alert', onAlert);
      attached.delete(namespace);
      for (const { histogram } of observed) for (const op of OPERATIONS) histogram.remove(labels[op]);
    };
  }

  async function snapshot(namespace?: string): Promise<MetricsSnapshot> {
    const counterValues = {} as Record<CounterName, number>;
    for (const [name, counter] of counters) counterValues[name] = sumSeries((await counter.get()).values, namespace);
    const histogramValues = {} as Record<HistogramName, HistogramSnapshot>;
    for (const [name, histogram] of histograms) {
      histogramValues[name] = histogramSnapshot((await histogram.get()).values, namespace);
    }
    return {
      counters: counterValues,
      histograms: histogramValues,
      alert: {
        firing: maxSeries((await alertGauge.get()).values, namespace) >= 1,
        rate: maxSeries((await rateGauge.get()).values, namespace),
      },
    };
  }

  return Object.freeze({
    registry,
    contentType: registry.contentType,
    attach,
    text: () => registry.metrics(),
    snapshot,
  });
}
