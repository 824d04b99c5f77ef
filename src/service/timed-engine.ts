// An engine as the service hands it out: the same engine, with its reads timed and its writes in
// flight counted for the dashboard. The engine emits no read events (its hit path stays one cache
// lookup), so reads are timed here, as the HTTP layer sees them.
import type {
  DeleteOptions,
  DeleteResult,
  InlineDeleteStep,
  InlineLoader,
  InlineWriteStep,
  KeyInspection,
  ReadEntry,
  ReadSource,
  Versioned,
  WriteOptions,
  WriteResult,
  WriteThrough,
} from '../engine/api.js';
import type { EngineCounters, EngineEventMap } from '../engine/events.js';
import type { MetricsSnapshot } from '../metrics/recorder.js';
import type { CacheStats, Version } from '../types.js';

export interface EngineProbe {
  /** A read settled after `ms`; `source` says who answered it, when known (readEntry), else undefined. */
  readSettled(ms: number, source: ReadSource | undefined): void;
  /** A write or delete started (+1) or settled (-1). */
  writesInFlight(delta: 1 | -1): void;
}

export class TimedEngine<T> implements WriteThrough<T> {
  constructor(
    private readonly inner: WriteThrough<T>,
    private readonly probe: EngineProbe,
  ) {}

  get namespace(): string {
    return this.inner.namespace;
  }
  get counters(): Readonly<EngineCounters> {
    return this.inner.counters;
  }

  read(key: string): Promise<T | undefined> {
    return this.timeRead(() => this.inner.read(key), () => undefined);
  }
  readEntry(key: string): Promise<ReadEntry<T>> {
    return this.timeRead(() => this.inner.readEntry(key), (entry) => entry.source);
  }
  write(key: string, value: T, options?: WriteOptions): Promise<WriteResult> {
    return this.countWrite(() => this.inner.write(key, value, options));
  }
  delete(key: string, options?: DeleteOptions): Promise<DeleteResult> {
    return this.countWrite(() => this.inner.delete(key, options));
  }

  writeThrough<R extends Versioned<unknown>>(key: string, step: InlineWriteStep<R>, options?: WriteOptions): Promise<R> {
    return this.countWrite(() => this.inner.writeThrough(key, step, options));
  }
  readThrough<V>(key: string, load: InlineLoader<V>): Promise<V | undefined> {
    return this.timeRead(() => this.inner.readThrough(key, load), () => undefined);
  }
  deleteThrough<R extends { readonly version: Version }>(key: string, step: InlineDeleteStep<R>): Promise<R> {
    return this.countWrite(() => this.inner.deleteThrough(key, step));
  }

  inspect(key: string): Promise<KeyInspection> {
    return this.inner.inspect(key);
  }
  drainJournal(): Promise<number> {
    return this.inner.drainJournal();
  }
  cacheStats(): CacheStats {
    return this.inner.cacheStats();
  }
  failureRate(): number {
    return this.inner.failureRate();
  }
  metrics(): Promise<MetricsSnapshot> {
    return this.inner.metrics();
  }
  metricsText(): Promise<string> {
    return this.inner.metricsText();
  }
  on<E extends keyof EngineEventMap>(event: E, listener: (...args: EngineEventMap[E]) => void): this {
    this.inner.on(event, listener);
    return this;
  }
  off<E extends keyof EngineEventMap>(event: E, listener: (...args: EngineEventMap[E]) => void): this {
    this.inner.off(event, listener);
    return this;
  }
  close(): Promise<void> {
    return this.inner.close();
  }

  /** Starts the clock before the call: a memory-cache hit does all its work synchronously. */
  private timeRead<R>(start: () => Promise<R>, sourceOf: (result: R) => ReadSource | undefined): Promise<R> {
    const started = performance.now();
    const pending = start();
    pending.then(
      (result) => this.probe.readSettled(performance.now() - started, sourceOf(result)),
      () => this.probe.readSettled(performance.now() - started, undefined),
    );
    return pending;
  }

  private countWrite<R>(start: () => Promise<R>): Promise<R> {
    this.probe.writesInFlight(1);
    let pending: Promise<R>;
    try {
      pending = start();
    } catch (error) {
      this.probe.writesInFlight(-1);
      throw error;
    }
    const settled = (): void => this.probe.writesInFlight(-1);
    pending.then(settled, settled);
    return pending;
  }
}
