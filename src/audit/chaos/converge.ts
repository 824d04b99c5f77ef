// After the operations: faults are off, workers are gone. Every key must reach state A, B or C
// (docs/protocol.md "States") once leases have expired and the journal is drained, and stay
// there. We poll every key until then and report how long it took, or which keys never got there.
import { setTimeout as sleep } from 'node:timers/promises';
import type { KeyState } from '../../engine/api.js';
import type { StoreAdapter } from '../../types.js';
import { naiveCachedVersion, type NaiveCache } from '../naive.js';

export interface KeyStateReport {
  readonly key: string;
  readonly state: KeyState;
  readonly description: string;
}

export interface ConvergenceResult {
  readonly converged: boolean;
  /** From the end of the operations until every key was in A, B or C for good. */
  readonly convergeMs: number;
  readonly nonConvergedKeys: readonly KeyStateReport[];
  /** Final state of every key. */
  readonly states: Readonly<Partial<Record<KeyState, number>>>;
}

export type Inspect = (key: string) => Promise<{ state: KeyState; description: string }>;

export interface ConvergenceOptions {
  readonly keys: readonly string[];
  readonly inspect: Inspect;
  /** Called before every poll (replays the journal). */
  readonly drain?: () => Promise<unknown>;
  /** `performance.now()` when the operations ended. */
  readonly endedAt: number;
  /** Keep polling at least this long after the end (lease TTL and a margin): a key must stay in A–C past lease expiry. */
  readonly settleMs: number;
  /** Give up this long after the end. */
  readonly timeoutMs: number;
  readonly pollMs?: number;
}

const GOOD: ReadonlySet<KeyState> = new Set(['A', 'B', 'C']);

export async function awaitConvergence(options: ConvergenceOptions): Promise<ConvergenceResult> {
  const { keys, inspect, drain, endedAt, settleMs, timeoutMs, pollMs = 25 } = options;
  let stableSince: number | undefined;
  for (;;) {
    const polledAt = performance.now();
    await drain?.().catch(() => undefined);
    let reports: Array<{ key: string } & Awaited<ReturnType<Inspect>>>;
    try {
      reports = await Promise.all(keys.map(async (key) => ({ key, ...(await inspect(key)) })));
    } catch (error) {
      // The cache may still be out (a Redis restart's quarantine at the end of a run): not converged
      // yet, so poll again; an inspection that keeps failing fails the run at the timeout.
      if (performance.now() - endedAt >= timeoutMs) throw error;
      stableSince = undefined;
      await sleep(pollMs);
      continue;
    }
    const bad = reports.filter((r) => !GOOD.has(r.state));
    if (bad.length === 0) stableSince ??= polledAt;
    else stableSince = undefined;
    const elapsed = performance.now() - endedAt;
    if ((bad.length === 0 && elapsed >= settleMs) || elapsed >= timeoutMs) {
      const states: Partial<Record<KeyState, number>> = {};
      for (const r of reports) states[r.state] = (states[r.state] ?? 0) + 1;
      return {
        converged: bad.length === 0,
        convergeMs: bad.length === 0 ? Math.max(0, Math.round(stableSince! - endedAt)) : Math.round(elapsed),
        nonConvergedKeys: bad,
        states,
      };
    }
    await sleep(pollMs);
  }
}

/** The naive implementation's A–E state of a key: its raw cache against the store, by version. */
export function naiveInspector(store: StoreAdapter, cache: NaiveCache, namespace: string): Inspect {
  return async (key) => {
    const [stored, cached] = await Promise.all([store.read(namespace, key), naiveCachedVersion(cache, namespace, key)]);
    if (stored === undefined) {
      return cached === undefined
        ? { state: 'A', description: 'empty: neither the store nor the cache holds the key' }
        : { state: 'E', description: `cache only: the cache serves version ${cached}, the store has no row` };
    }
    if (cached === undefined) return { state: 'B', description: `store only: version ${stored.version} is in the store, not cached` };
    if (cached === stored.version) return { state: 'C', description: `synchronized at version ${stored.version}` };
    return { state: 'D', description: `inconsistent: the cache serves version ${cached}, the store holds ${stored.version}` };
  };
}
