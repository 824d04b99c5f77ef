// What the engine tells the world. Metrics, logs and the dashboard subscribe; the engine knows none of them.

export type WriteOperation = 'write' | 'delete';

/** Where a read's answer came from. */
export type ReadSource =
  /** served by the cache */
  | 'hit'
  /** the cache missed: read from the store (and filled, when this reader held the fill lease) */
  | 'miss'
  /** a write held the key: read from the store, not filled */
  | 'bypass'
  /** the cache failed: read from the store */
  | 'store-fallback';

/**
 * How a write ended: `ok`; `db-failure` (the store refused, nothing changed); `cache-failure`
 * (committed, but a cache step failed: still acknowledged under `pragmatic`); `refused` (`strict`
 * and the cache could not be leased: nothing written); `unknown` (the store did not say);
 * `precondition-failed` (the caller's ifVersion / ifAbsent / ifExists did not hold: nothing
 * written, and not a failure of anything).
 */
export type WriteOutcome = 'ok' | 'db-failure' | 'cache-failure' | 'refused' | 'unknown' | 'precondition-failed';

export interface WriteEvent {
  readonly namespace: string;
  readonly key: string;
  readonly operation: WriteOperation;
  readonly outcome: WriteOutcome;
  /** Store step latency in ms, when the store was called. */
  readonly dbMs: number | undefined;
  /** Cache steps (begin + complete) latency in ms, when the cache was called. */
  readonly cacheMs: number | undefined;
  readonly totalMs: number;
}

export interface AlertEvent {
  readonly namespace: string;
  /** true when the cache-failure rate crossed the threshold, false when it fell back below. */
  readonly firing: boolean;
  readonly rate: number;
  readonly threshold: number;
  readonly windowMs: number;
  readonly samples: number;
}

/**
 * A read that settled (read, readEntry, readThrough). Emitted only while someone listens: with no
 * `read` listener the engine does not even read the clock, so the hit path stays one cache lookup.
 */
export interface ReadEvent {
  readonly namespace: string;
  readonly key: string;
  /** Who answered; undefined when the read failed. */
  readonly source: ReadSource | undefined;
  /** Whether the key was found (false for a failed read). */
  readonly found: boolean;
  /** The whole read as the caller saw it, in ms. */
  readonly ms: number;
}

export interface EngineEventMap {
  write: [WriteEvent];
  alert: [AlertEvent];
  read: [ReadEvent];
}

/** Plain counters the engine bumps in place: cheap enough for the read hit path. */
export interface EngineCounters {
  cacheHits: number;
  cacheMisses: number;
  /** Reads sent to the store because a write held the key. */
  cacheBypasses: number;
  /** Reads served by the store because the cache failed. */
  cacheReadFailures: number;
  fillsRejected: number;
  /** Misses that found another instance's fill lease and waited for its value instead of reading the store. */
  fillWaits: number;
  /** Of those, the waits that ran out (`fillWait`) and read the store. */
  fillWaitTimeouts: number;
  writes: number;
  deletes: number;
  dbFailures: number;
  cacheFailures: number;
  /** Writes that did not end `ok` (db or cache failure, refused, unknown); a failed precondition is not one. */
  failures: number;
  /** Conditional writes and deletes refused because their condition did not hold (nothing written). */
  preconditionFailures: number;
  /** Keys invalidated from the journal (bypass writes and repairs). */
  journalRepairs: number;
  /**
   * Writes and deletes acknowledged without a lease (pragmatic policy, cache unreachable): their key
   * was journaled, and another instance may serve the old value until the row is replayed.
   */
  journaledAcks: number;
  /** Sampled cache hits re-checked against the store (consistencySampling) that reached a verdict. */
  consistencyChecks: number;
  /** Of those, the hits the check proved inconsistent with the store (see src/audit/sampler.ts). */
  consistencyViolations: number;
}

export function createCounters(): EngineCounters {
  return {
    cacheHits: 0,
    cacheMisses: 0,
    cacheBypasses: 0,
    cacheReadFailures: 0,
    fillsRejected: 0,
    fillWaits: 0,
    fillWaitTimeouts: 0,
    writes: 0,
    deletes: 0,
    dbFailures: 0,
    cacheFailures: 0,
    failures: 0,
    preconditionFailures: 0,
    journalRepairs: 0,
    journaledAcks: 0,
    consistencyChecks: 0,
    consistencyViolations: 0,
  };
}
