// The measured bound of the pragmatic policy's window: for every write acknowledged through the
// journal (without a lease, fencing failed too; or a plain-SQL write), the time from its
// acknowledgement to the first replay of a journal row of its key at its version or newer, by any
// drainer (the workers' or the fresh instance that checks convergence). A write whose row was
// never replayed by the end of the seed is counted apart: the journal invariant says there is none.
import { ChaosCache } from '../../chaos/chaos-cache.js';
import { cacheKeyOf } from '../../keys.js';
import type { CacheAdapter, Version } from '../../types.js';
import { historyNow } from '../history.js';
import type { HistoryEntry } from '../history.js';
import { BYPASS_PROCESS } from './bypass.js';
import { JOURNALED, type NotedEntry } from './lines.js';

export interface Replay {
  /** The cache key of the row's key. */
  readonly cacheKey: string;
  readonly version: number;
  /** historyNow() when it applied. */
  readonly at: number;
}

/** A cache for an instance of the parent's (convergence check, witness): records every invalidateOlder, i.e. its drainer's replays. */
export class ReplayRecordingCache extends ChaosCache {
  constructor(inner: CacheAdapter, private readonly replays: Replay[]) {
    super(inner);
  }
  override async invalidateOlder(key: string, version: Version): Promise<void> {
    await super.invalidateOlder(key, version);
    this.replays.push({ cacheKey: key, version, at: historyNow() });
  }
}

export interface WindowBound {
  /** Writes of this kind acknowledged in the run. */
  readonly writes: number;
  /** Of those, replayed by the end of the seed (the rest: never replayed). */
  readonly replayed: number;
  readonly p50Ms: number;
  readonly p99Ms: number;
  readonly maxMs: number;
  /** Every measured lag (ms), so that seeds merge exactly. */
  readonly samplesMs: readonly number[];
}

export interface WindowBounds {
  /** Writes acknowledged without a lease whose fencing failed (policy pragmatic). */
  readonly journaled: WindowBound;
  /** Plain-SQL writes (the triggers journal them). */
  readonly sql: WindowBound;
}

const quantile = (sorted: readonly number[], q: number) => (sorted.length === 0 ? 0 : sorted[Math.min(sorted.length - 1, Math.ceil(q * sorted.length) - 1)]!);
const ms = (ns: number) => Math.round(ns / 1e4) / 100;

export function windowBounds(history: readonly HistoryEntry[], replays: readonly Replay[], namespace: string): WindowBounds {
  const byKey = new Map<string, Replay[]>();
  for (const r of replays) {
    const list = byKey.get(r.cacheKey);
    if (list === undefined) byKey.set(r.cacheKey, [r]);
    else list.push(r);
  }
  for (const list of byKey.values()) list.sort((a, b) => a.at - b.at);
  const bound = (writes: readonly HistoryEntry[]): WindowBound => {
    const lags: number[] = [];
    for (const w of writes) {
      const list = byKey.get(cacheKeyOf(namespace, w.key)) ?? [];
      const first = list.find((r) => r.version >= w.version! && r.at >= w.invokedAt);
      if (first !== undefined) lags.push(Math.max(0, first.at - w.returnedAt));
    }
    return summarize(writes.length, lags.map(ms));
  };
  const acknowledged = history.filter((e) => e.kind !== 'read' && e.outcome === 'ok' && e.version !== undefined);
  return {
    journaled: bound(acknowledged.filter((e) => e.process !== BYPASS_PROCESS && (e as NotedEntry).note === JOURNALED)),
    sql: bound(acknowledged.filter((e) => e.process === BYPASS_PROCESS)),
  };
}

function summarize(writes: number, samplesMs: number[]): WindowBound {
  const sorted = [...samplesMs].sort((a, b) => a - b);
  return { writes, replayed: sorted.length, p50Ms: quantile(sorted, 0.5), p99Ms: quantile(sorted, 0.99), maxMs: sorted.at(-1) ?? 0, samplesMs: sorted };
}

/** The bound over several seeds (or scenarios). */
export function mergeBounds(bounds: readonly WindowBound[]): WindowBound {
  return summarize(
    bounds.reduce((n, b) => n + b.writes, 0),
    bounds.flatMap((b) => b.samplesMs),
  );
}
