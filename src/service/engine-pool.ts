// Engines per namespace, bounded. An engine is made on first use and dropped again by a sweep when
// it is provisional (its namespace was neither written nor found: a read of an unknown namespace
// leaves nothing behind), idle for `idleMs`, or beyond `maxEngines` (least recently used first).
// Only an engine with nothing in flight, and not handed out since the previous sweep, is dropped.
// Dropping is not closing: whoever still holds the engine (a request between service.engine() and
// its call) can use it, and its counters live in its series group, so nothing is lost.
import type { Engine } from '../engine/api.js';

export interface PooledEngine {
  readonly engine: Engine<unknown>;
  /** Dropped by the next sweep that finds it idle, unless confirm()ed first. */
  readonly provisional: boolean;
  /** Called when the pool drops the engine (leave its series group). */
  dropped(): void;
}

export interface EnginePoolOptions {
  /** Makes the engine of a namespace (validated by the caller). */
  create(namespace: string): PooledEngine;
  /** Engines kept at most (more may live for one sweep interval under a burst of new namespaces). */
  maxEngines: number;
  /** An engine unused this long is dropped. */
  idleMs: number;
  /** How often the pool sweeps. @default 1000 */
  sweepMs?: number;
  /** @default Date.now */
  now?: () => number;
}

interface Entry {
  readonly pooled: PooledEngine;
  lastUsed: number;
  /** The sweep generation it was last handed out in: never dropped in the generation it was used. */
  generation: number;
  /** Neither written nor found yet: dropped by the next sweep that finds it idle. */
  provisional: boolean;
}

export interface EnginePool {
  get(namespace: string): Engine<unknown>;
  /** The namespace was written or a read found it: its engine is kept like any other. */
  confirm(namespace: string): void;
  readonly size: number;
  /** Engines dropped since start. */
  readonly dropped: number;
  namespaces(): IterableIterator<string>;
  engines(): IterableIterator<Engine<unknown>>;
  /** Runs a sweep now; returns how many engines it dropped. */
  sweep(): number;
  /** Stops the sweeps and hands back every engine (the pool is empty after). */
  drain(): Engine<unknown>[];
}

export function createEnginePool(options: EnginePoolOptions): EnginePool {
  const { create, maxEngines, idleMs } = options;
  const now = options.now ?? Date.now;
  // Insertion order is use order: get() moves an entry to the end.
  const entries = new Map<string, Entry>();
  let generation = 0;
  let dropped = 0;
  let sweepSoon: NodeJS.Immediate | undefined;
  const timer = setInterval(() => sweep(), options.sweepMs ?? 1000);
  timer.unref();

  function get(namespace: string): Engine<unknown> {
    let entry = entries.get(namespace);
    if (entry === undefined) {
      const pooled = create(namespace);
      entry = { pooled, lastUsed: 0, generation, provisional: pooled.provisional };
      if (entries.size >= maxEngines && sweepSoon === undefined) {
        sweepSoon = setImmediate(() => {
          sweepSoon = undefined;
          sweep();
        });
        sweepSoon.unref();
      }
    } else {
      entries.delete(namespace);
    }
    entry.lastUsed = now();
    entry.generation = generation;
    entries.set(namespace, entry);
    return entry.pooled.engine;
  }

  function sweep(): number {
    const current = generation++;
    const at = now();
    let over = entries.size - maxEngines;
    let count = 0;
    for (const [namespace, entry] of entries) {
      const { engine } = entry.pooled;
      if (entry.generation === current || engine.readsInFlight + engine.writesInFlight > 0) continue;
      if (entry.provisional || over > 0 || at - entry.lastUsed >= idleMs) {
        entries.delete(namespace);
        entry.pooled.dropped();
        over--;
        count++;
      }
    }
    dropped += count;
    return count;
  }

  return {
    get,
    confirm(namespace) {
      const entry = entries.get(namespace);
      if (entry !== undefined) entry.provisional = false;
    },
    get size() {
      return entries.size;
    },
    get dropped() {
      return dropped;
    },
    namespaces: () => entries.keys(),
    *engines() {
      for (const entry of entries.values()) yield entry.pooled.engine;
    },
    sweep,
    drain() {
      clearInterval(timer);
      if (sweepSoon !== undefined) clearImmediate(sweepSoon);
      const all = [...entries.values()].map((entry) => entry.pooled.engine);
      entries.clear();
      return all;
    },
  };
}
