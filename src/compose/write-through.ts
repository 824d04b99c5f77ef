// createWriteThrough, the public instance: an engine plus the observers a caller expects of it, a
// metrics registry (subscribed to its events, counters read at scrape time) and, when
// consistencySampling.rate > 0, the background sampler of cache hits. The engine knows neither.
import { createConsistencySampler } from '../audit/sampler.js';
import type { Engine, EngineWiring } from '../engine/api.js';
import type { EngineCounters } from '../engine/events.js';
import { WriteThroughEngine } from '../engine/write-through.js';
import { InvalidOptionError } from '../errors.js';
import { createMetrics, type LockstepMetrics, type MetricsSnapshot } from '../metrics/recorder.js';
import type { EngineOptions } from '../options.js';

export interface WriteThroughOptions extends EngineOptions {
  /** Where metrics are recorded: a registry shared by several instances, or `false` for none. @default a new createMetrics() */
  metrics?: LockstepMetrics | false;
}

export interface WriteThrough<T = unknown> extends Engine<T> {
  /** The metrics of this namespace as plain data: the same numbers as the Prometheus text. */
  metrics(): Promise<MetricsSnapshot>;
  /** The Prometheus exposition of the registry this instance records into. */
  metricsText(): Promise<string>;
}

export function createWriteThrough<T = unknown>(options: WriteThroughOptions): WriteThrough<T> {
  return new WriteThroughInstance<T>(options);
}

/** The engine's wiring for consistency sampling (src/audit/sampler.ts); `counters` when the caller keeps them. */
export function samplingWiring(counters?: EngineCounters): EngineWiring {
  return {
    ...(counters === undefined ? {} : { counters }),
    sampler: (engineCounters, { store, cache, namespace, consistencySampling }) =>
      createConsistencySampler({
        store,
        cache,
        namespace,
        counters: engineCounters,
        recheckDelayMs: consistencySampling.recheckDelayMs,
        maxPending: consistencySampling.maxPending,
      }),
  };
}

class WriteThroughInstance<T> extends WriteThroughEngine<T> implements WriteThrough<T> {
  private readonly recorder: LockstepMetrics | undefined;
  private readonly detachMetrics: () => void;

  constructor(options: WriteThroughOptions) {
    super(options, samplingWiring());
    this.recorder = options.metrics === false ? undefined : (options.metrics ?? createMetrics());
    this.detachMetrics = this.recorder?.attach(this) ?? (() => undefined);
  }

  async metrics(): Promise<MetricsSnapshot> {
    if (this.recorder === undefined) throw new InvalidOptionError('metrics are off for this instance (metrics: false)');
    return this.recorder.snapshot(this.namespace);
  }

  async metricsText(): Promise<string> {
    if (this.recorder === undefined) throw new InvalidOptionError('metrics are off for this instance (metrics: false)');
    return this.recorder.text();
  }

  override async close(): Promise<void> {
    await super.close();
    this.detachMetrics();
  }
}
