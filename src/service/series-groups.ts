// Bounded metric labels. Every engine the service hosts reports into a group: its own namespace's
// (the first `maxLabelled` namespaces written or found get one, for the life of the process) or
// the aggregate `_other`. A group is one MetricsSource for the registry: counters the group's
// engines bump in place (so an evicted engine's counts stay in its group, exactly, and a late call
// on it still lands there), its engines' events forwarded, the highest live failure rate. Series
// therefore number at most maxLabelled + 1 per metric, however many namespaces are touched.
import { EventEmitter } from 'node:events';
import type { Engine } from '../engine/api.js';
import { createCounters, type EngineCounters } from '../engine/events.js';
import type { LockstepMetrics, MetricsSource } from '../metrics/recorder.js';
import type { CacheAdapter, StoreAdapter } from '../types.js';

/** The label of every namespace without a series of its own. */
export const OTHER_NAMESPACES = '_other';

export interface SeriesGroup extends MetricsSource {
  readonly counters: EngineCounters;
  /** The highest live cache-failure rate of its engines (reading it moves their alert windows). */
  failureRate(): number;
  /** Forwards an engine's write and alert events into this group, and counts it in the failure rate, until leave(). */
  join(engine: Engine<unknown>): void;
  leave(engine: Engine<unknown>): void;
}

export interface SeriesGroups {
  /** The group a namespace reports into now (its own once it has a slot); allocates nothing for an unknown one. */
  groupOf(namespace: string): SeriesGroup;
  /** Whether a namespace has its own series. */
  labelled(namespace: string): boolean;
  /** Gives a namespace its own series when a slot is free; true when it has one (now or already). */
  promote(namespace: string): boolean;
  /** Namespaces with their own series, in the order they got them. */
  labelledNamespaces(): IterableIterator<string>;
  /** Every group (for the failure-rate poll). */
  groups(): IterableIterator<SeriesGroup>;
}

export interface SeriesGroupsOptions {
  readonly maxLabelled: number;
  readonly cache: CacheAdapter;
  /** Its own totals (settlement poll errors) are reported once, as the cache's are. */
  readonly store: StoreAdapter;
  readonly metrics: LockstepMetrics | undefined;
  /**
   * A drainer the service does not own, which counts the repairs it applies (watchRepairs): each
   * labelled group reports its namespace's count from its creation on, `_other` the rest.
   */
  readonly repairs?: ((namespace?: string) => { readonly count: number; stop(): void }) | undefined;
}

export function createSeriesGroups(options: SeriesGroupsOptions): SeriesGroups & { close(): void } {
  const { maxLabelled, cache, store, metrics, repairs } = options;
  const byLabel = new Map<string, SeriesGroup>();
  const watches: Array<{ stop(): void }> = [];
  const other = createGroup(OTHER_NAMESPACES, cache, store);
  byLabel.set(OTHER_NAMESPACES, other);
  const labelledWatches: Array<{ readonly count: number }> = [];
  if (repairs !== undefined) {
    const every = repairs();
    watches.push(every);
    reportRepairs(other, () => every.count - labelledWatches.reduce((sum, w) => sum + w.count, 0));
  }
  metrics?.attach(other);

  return {
    groupOf: (namespace) => byLabel.get(namespace) ?? other,
    labelled: (namespace) => namespace !== OTHER_NAMESPACES && byLabel.has(namespace),
    promote(namespace) {
      if (byLabel.has(namespace)) return true;
      if (byLabel.size - 1 >= maxLabelled) return false;
      const group = createGroup(namespace, cache, store);
      if (repairs !== undefined) {
        const watch = repairs(namespace);
        watches.push(watch);
        labelledWatches.push(watch);
        reportRepairs(group, () => watch.count);
      }
      byLabel.set(namespace, group);
      metrics?.attach(group);
      return true;
    },
    *labelledNamespaces() {
      for (const label of byLabel.keys()) if (label !== OTHER_NAMESPACES) yield label;
    },
    groups: () => byLabel.values(),
    close() {
      for (const watch of watches.splice(0)) watch.stop();
    },
  };
}

/** The group's journalRepairs read from a drainer's count instead of bumped in place. */
function reportRepairs(group: SeriesGroup, count: () => number): void {
  Object.defineProperty(group.counters, 'journalRepairs', { enumerable: true, configurable: true, get: count });
}

function createGroup(label: string, cache: CacheAdapter, store: StoreAdapter): SeriesGroup {
  const events = new EventEmitter();
  const members = new Set<Engine<unknown>>();
  const forward = {
    write: (...args: unknown[]) => events.emit('write', ...args),
    alert: (...args: unknown[]) => events.emit('alert', ...args),
  };
  return {
    namespace: label,
    counters: createCounters(),
    cacheStats: () => cache.stats(),
    cacheIdentity: cache,
    storeStats: () => store.stats?.(),
    storeIdentity: store,
    failureRate() {
      let highest = 0;
      for (const engine of members) highest = Math.max(highest, engine.failureRate());
      return highest;
    },
    on(event: 'write' | 'alert', listener: (...args: never[]) => void) {
      events.on(event, listener as (...args: unknown[]) => void);
      return this;
    },
    off(event: 'write' | 'alert', listener: (...args: never[]) => void) {
      events.off(event, listener as (...args: unknown[]) => void);
      return this;
    },
    join(engine) {
      members.add(engine);
      engine.on('write', forward.write).on('alert', forward.alert);
    },
    leave(engine) {
      members.delete(engine);
      engine.off('write', forward.write).off('alert', forward.alert);
    },
  } as SeriesGroup;
}
