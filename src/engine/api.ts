// The engine's face: one namespace over one store and one cache, speaking the protocol. It knows no
// observer: metrics, sampling, stats subscribe to its events (see src/compose/ for the public instance).
import type { Duration } from '../duration.js';
import type { ResolvedOptions } from '../options.js';
import type { CacheRecordView, CacheStats, StoreStats, Version } from '../types.js';
import type { EngineCounters, EngineEventMap, ReadSource } from './events.js';

export type { ReadSource } from './events.js';

export interface ReadEntry<T> {
  readonly found: boolean;
  /** The value, or undefined when not found. Values served from an in-process cache are deep-frozen. */
  readonly value: T | undefined;
  /** The store version the answer reflects (0 when the key was never written). */
  readonly version: Version;
  readonly source: ReadSource;
}

/**
 * Conditions on the key's live version, checked atomically in the store's write transaction. At
 * most one may be given. When it does not hold, nothing is written and the call rejects with
 * PreconditionFailedError (`currentVersion`: the live version, 0 when the key is not live).
 */
export interface ConditionOptions {
  /** Write only if the key's live version is exactly this (compare-and-set; a positive integer). */
  ifVersion?: Version;
  /** Write only if the key exists (HTTP `If-Match: *`). */
  ifExists?: true;
}

export interface WriteOptions extends ConditionOptions {
  /** Cache TTL for this value. @default the instance's `ttl` */
  ttl?: Duration;
  /** Write only if the key does not exist (create-only; HTTP `If-None-Match: *`). */
  ifAbsent?: true;
}

/** A delete's conditions: `ifVersion` or `ifExists`. */
export type DeleteOptions = ConditionOptions;

export interface WriteResult {
  readonly version: Version;
  /** The value as the store holds it, when the store can change what it is given (an entity table); the cache holds this one. */
  readonly stored?: unknown;
}

export interface DeleteResult {
  readonly version: Version;
  readonly existed: boolean;
}

/** A value with the version its commit got: what an inline write step or loader returns. */
export interface Versioned<V> {
  readonly value: V;
  /**
   * The version the same commit gave this row: a positive safe integer that, per key, increases in
   * commit order, across delete and re-create and for writes made outside Lockstep (a version column
   * bumped in the same UPDATE, or a sequence). The cache is fenced by it; a version that can go
   * backwards lets an older value win.
   */
  readonly version: Version;
}

/** What an inline write or delete step receives. */
export interface InlineStepContext {
  readonly key: string;
  /**
   * Milliseconds left on the write lease. Readers keep off the key only while it lives: make the
   * step's statement / lock timeout shorter than this, so that a late commit cannot land after it.
   */
  readonly deadlineMs: number;
}

/**
 * The caller's own database write, run inside the protocol. Resolve only once the transaction has
 * committed; throw only when nothing was committed (it was rolled back); throw
 * StoreOutcomeUnknownError when the outcome is not known (a timeout, a lost connection), so the
 * lease is left to expire instead of being released.
 */
export type InlineWriteStep<R extends Versioned<unknown>> = (step: InlineStepContext) => Promise<R>;

/** The caller's own delete, with the same promises; `version` is the delete's own, newer than the row's. */
export type InlineDeleteStep<R extends { readonly version: Version }> = (step: InlineStepContext) => Promise<R>;

/** The caller's own read: the committed value with its version, or undefined when not found. */
export type InlineLoader<V> = () => Promise<Versioned<V> | undefined>;

/**
 * The seed's key states, judged on what the cache would serve: A empty (neither side), B store
 * only, C synchronized (same version), D inconsistent (both, different versions, or a tombstone
 * over a live row), E cache only. A lease serves nothing, so a key under a lease is A or B.
 */
export type KeyState = 'A' | 'B' | 'C' | 'D' | 'E';

export interface KeyInspection {
  readonly namespace: string;
  readonly key: string;
  readonly state: KeyState;
  readonly description: string;
  readonly store: { readonly version: Version; readonly value: unknown } | null;
  readonly cache: CacheRecordView | null;
}

export interface Engine<T = unknown> {
  readonly namespace: string;
  /** Store first, then cache; resolves once the write is safe. */
  write(key: string, value: T, options?: WriteOptions): Promise<WriteResult>;
  /** The value, or undefined when the key does not exist. */
  read(key: string): Promise<T | undefined>;
  readEntry(key: string): Promise<ReadEntry<T>>;
  /** Deletes from the store, then leaves a tombstone in the cache. */
  delete(key: string, options?: DeleteOptions): Promise<DeleteResult>;
  /**
   * Inline helper: runs the caller's own database write inside the protocol: write lease, `step`,
   * the version from its result, then publish fenced by that version. Resolves with the step's
   * result. The same failure policies as write(); see docs/library.md "Inline helper" for the one repair
   * window it has that write() does not.
   */
  writeThrough<R extends Versioned<unknown>>(key: string, step: InlineWriteStep<R>, options?: WriteOptions): Promise<R>;
  /** Inline helper: cache-aside over the caller's loader, filled under a read lease (fenced by version), single-flight per key. */
  readThrough<V>(key: string, load: InlineLoader<V>): Promise<V | undefined>;
  /** Inline helper: the caller's own delete inside the protocol; leaves a tombstone at the delete's version. */
  deleteThrough<R extends { readonly version: Version }>(key: string, step: InlineDeleteStep<R>): Promise<R>;
  /** Both sides of a key and its A–E state, without changing anything. */
  inspect(key: string): Promise<KeyInspection>;
  /** Replays pending journal rows into the cache now; returns how many were applied. */
  drainJournal(): Promise<number>;
  /** Live counters (read-only view). */
  readonly counters: Readonly<EngineCounters>;
  /** The cache adapter's own counters (leases expired). */
  cacheStats(): CacheStats;
  /** The store adapter's own counters (settlement poll errors), when it keeps any. */
  storeStats(): StoreStats | undefined;
  /** Share of recent writes whose cache step failed (the alert's window). */
  failureRate(): number;
  /** Reads that have not settled (a memory-cache hit settles within read() and is never counted). */
  readonly readsInFlight: number;
  /** Writes and deletes (inline ones too) that have not settled. */
  readonly writesInFlight: number;
  on<E extends keyof EngineEventMap>(event: E, listener: (...args: EngineEventMap[E]) => void): this;
  off<E extends keyof EngineEventMap>(event: E, listener: (...args: EngineEventMap[E]) => void): this;
  /** Stops the journal poller. Adapters belong to the caller and stay open. */
  close(): Promise<void>;
}

/** A background checker of sampled cache hits (consistencySampling), plugged in by the composition. */
export interface HitSampler {
  sample(key: string, cacheKey: string, version: Version, live: boolean): void;
  close(): Promise<void>;
}

/** What the composition (src/compose/, src/service/) hands an engine besides its options. */
export interface EngineWiring {
  /** Counters to bump in place, e.g. shared by several engines that report as one series. @default fresh ones */
  readonly counters?: EngineCounters;
  /** Built once the options are resolved and the counters exist (it bumps consistencyChecks); used when consistencySampling.rate > 0. */
  readonly sampler?: (counters: EngineCounters, options: ResolvedOptions) => HitSampler;
  /**
   * Called once, before the first write or delete is counted. Counters it returns are bumped from
   * then on, that write included (the service gives a namespace its own series once it is written).
   */
  readonly onFirstWrite?: () => EngineCounters | undefined;
}
