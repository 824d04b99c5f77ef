// Engine options: typed, documented with their defaults, resolved and validated once, then frozen.
import { jsonCodec } from './codec.js';
import { systemClock } from './clock.js';
import { toMs, type Duration } from './duration.js';
import { InvalidOptionError } from './errors.js';
import { KEY_MAX_BYTES, validateNamespace } from './keys.js';
import type { CacheAdapter, Clock, Codec, StoreAdapter } from './types.js';

export type FailurePolicy = 'pragmatic' | 'strict';
/** When a write is acknowledged: after its cache completion (the default), or at its confirmed commit (see EngineOptions.acknowledge). */
export type Acknowledge = 'after-cache' | 'after-commit';

export interface JournalOptions {
  /** How often the journal is polled for keys to invalidate. @default '100ms' */
  pollInterval?: Duration;
  /** Rows read per poll. @default 500 */
  batchSize?: number;
  /** Journal rows older than this are pruned. @default '1h' */
  retention?: Duration;
}

export interface AlertOptions {
  /** Fraction of writes whose cache step failed, over the window, that fires the alert. @default 0.05 */
  cacheFailureRate?: number;
  /** Sliding window the rate is measured over. @default '1m' */
  window?: Duration;
  /** Writes the window must hold before the alert can fire. @default 20 */
  minSamples?: number;
}

export interface ConsistencySamplingOptions {
  /**
   * Fraction of cache hits re-checked against the store in the background (never delaying the
   * read), counted as `consistencyChecks` / `consistencyViolations`. @default 0 (off)
   */
  rate: number;
  /**
   * How long a hit that a later write may explain is given before it is looked at again: an
   * inconsistency repaired within this delay (a plain-SQL write until the journal replays it) is
   * not counted. @default '1s'
   */
  recheckDelay?: Duration;
  /** Checks in flight at most; hits sampled beyond it are not checked. @default 64 */
  maxPending?: number;
}

/** The engine's options; the public WriteThroughOptions (src/compose/) adds where metrics go. */
export interface EngineOptions {
  /** The source of truth. */
  store: StoreAdapter;
  /** The cache in front of it. */
  cache: CacheAdapter;
  /** Keys live in a namespace: [A-Za-z0-9_.-], up to 64 characters. @default 'default' */
  namespace?: string;
  /** How long a value stays in the cache. @default '1h' */
  ttl?: Duration;
  /** How long a tombstone ("not found") stays in the cache; at least `leaseTtl`. @default '1m' */
  tombstoneTtl?: Duration;
  /** Lifetime of a write or fill lease: how long readers keep off a key whose writer went silent. @default '5s' */
  leaseTtl?: Duration;
  /**
   * How long a read that finds another instance's fill of the key in progress waits for its value
   * (asking the cache again) before reading the store itself; `0` reads the store at once. At most
   * `leaseTtl`. @default '100ms' (or `leaseTtl`, if shorter)
   */
  fillWait?: Duration;
  /** What a write does when the cache fails: `pragmatic` acknowledges and repairs, `strict` refuses or reports. @default 'pragmatic' */
  failurePolicy?: FailurePolicy;
  /**
   * When a write is acknowledged. `after-cache`: once the cache step completed. `after-commit`
   * (policy `pragmatic` only): as soon as the commit is confirmed while the write's lease is live,
   * with the cache completion sent right after, off the acknowledgement path — one Redis round trip
   * less per write; readers keep off the leased key until then, so no read sees an older value
   * (docs/protocol.md, "Acknowledging before the cache completion"). A commit confirmed late in the
   * lease completes before acknowledging, as with `after-cache`. It trusts the cache's clock not to
   * step forward during a write (Redis: the server's wall clock; docs/protocol.md). @default 'after-cache'
   */
  acknowledge?: Acknowledge;
  /** Longest key, in UTF-8 bytes, at most 512 (the longest every backend stores). @default 512 */
  maxKeyBytes?: number;
  /** Largest encoded value, in bytes. @default 1048576 (1 MiB) */
  maxValueBytes?: number;
  /** Serialization of values. @default strict JSON */
  codec?: Codec;
  /** Time source for lease budgets and the alert window. @default monotonic performance.now() */
  clock?: Clock;
  /**
   * Replay of the store's journal into the cache (bypass writes, repairs): options for this
   * instance's own poller, a drainer shared by several instances over the same store and cache
   * (see createJournalDrainer), or `false` when something else drains it. @default {}
   */
  journal?: JournalOptions | JournalDrainerLike | false;
  /** The cache-failure-rate alert. @default {} */
  alert?: AlertOptions;
  /** Online consistency sampling of cache hits (see src/audit/sampler.ts). @default { rate: 0 } (off) */
  consistencySampling?: ConsistencySamplingOptions;
}

/** A journal drainer created elsewhere and shared (structural, to keep options free of the engine). */
export interface JournalDrainerLike {
  readonly ready: Promise<void>;
  drain(): Promise<number>;
  /** True while the journal retained at its start is not yet applied: reads then bypass cached values. */
  replaying?(): boolean;
  /** Counts the rows applied to one namespace (createJournalDrainer has it); the engine reports it as journalRepairs. */
  watchRepairs?(namespace?: string): { readonly count: number; stop(): void };
}

export interface ResolvedJournalOptions {
  readonly pollIntervalMs: number;
  readonly batchSize: number;
  readonly retentionMs: number;
}

export interface ResolvedOptions {
  readonly store: StoreAdapter;
  readonly cache: CacheAdapter;
  readonly namespace: string;
  readonly ttlMs: number;
  readonly tombstoneTtlMs: number;
  readonly leaseTtlMs: number;
  readonly fillWaitMs: number;
  readonly failurePolicy: FailurePolicy;
  readonly acknowledge: Acknowledge;
  readonly maxKeyBytes: number;
  readonly maxValueBytes: number;
  readonly codec: Codec;
  readonly clock: Clock;
  readonly journal: ResolvedJournalOptions | false;
  readonly alert: { readonly cacheFailureRate: number; readonly windowMs: number; readonly minSamples: number };
  readonly consistencySampling: { readonly rate: number; readonly recheckDelayMs: number; readonly maxPending: number };
}

function positiveInteger(value: unknown, option: string): number {
  if (typeof value !== 'number' || !Number.isSafeInteger(value) || value <= 0) {
    throw new InvalidOptionError(`${option} must be a positive integer (got ${JSON.stringify(value)})`);
  }
  return value;
}

function maxKeyBytesOf(value: unknown): number {
  const bytes = positiveInteger(value ?? KEY_MAX_BYTES, 'maxKeyBytes');
  if (bytes > KEY_MAX_BYTES) {
    throw new InvalidOptionError(`maxKeyBytes must be at most ${KEY_MAX_BYTES}, the longest key every store can hold (got ${bytes})`);
  }
  return bytes;
}

function requirePort(value: unknown, option: string, methods: readonly string[]): void {
  const missing = methods.filter((m) => typeof (value as Record<string, unknown> | undefined)?.[m] !== 'function');
  if (missing.length > 0) throw new InvalidOptionError(`${option} must be an adapter with ${missing.join(', ')}()`);
}

export function resolveJournalOptions(journal: JournalOptions): ResolvedJournalOptions {
  return Object.freeze({
    pollIntervalMs: toMs(journal.pollInterval ?? '100ms', 'journal.pollInterval'),
    batchSize: positiveInteger(journal.batchSize ?? 500, 'journal.batchSize'),
    retentionMs: toMs(journal.retention ?? '1h', 'journal.retention'),
  });
}

export function resolveOptions(options: EngineOptions): ResolvedOptions {
  if (typeof options !== 'object' || options === null) throw new InvalidOptionError('options must be an object');
  requirePort(options.store, 'store', ['read', 'write', 'delete', 'readJournal']);
  requirePort(options.cache, 'cache', ['get', 'fill', 'beginWrite', 'completeWrite', 'abortWrite', 'invalidateOlder']);

  const leaseTtlMs = toMs(options.leaseTtl ?? '5s', 'leaseTtl');
  const tombstoneTtlMs = toMs(options.tombstoneTtl ?? '1m', 'tombstoneTtl');
  // A tombstone must outlive any lease, or a slow fill of the pre-delete value could land after it.
  if (tombstoneTtlMs < leaseTtlMs) {
    throw new InvalidOptionError(`tombstoneTtl (${tombstoneTtlMs} ms) must be at least leaseTtl (${leaseTtlMs} ms)`);
  }
  // The default never exceeds a short lease (the chaos harness runs with 50 ms leases); an explicit one must not.
  const fillWaitMs = options.fillWait === undefined ? Math.min(100, leaseTtlMs) : toMs(options.fillWait, 'fillWait', { allowZero: true });
  if (fillWaitMs > leaseTtlMs) throw new InvalidOptionError(`fillWait (${fillWaitMs} ms) must be at most leaseTtl (${leaseTtlMs} ms)`);
  // A cache's quarantine after a lost dataset must outlast any lease lost with it (docs/protocol.md, "The quarantine").
  const quarantineMs = options.cache.restartQuarantineMs;
  if (quarantineMs !== undefined && quarantineMs < leaseTtlMs) {
    throw new InvalidOptionError(`the cache's restartQuarantine (${quarantineMs} ms) must be at least leaseTtl (${leaseTtlMs} ms): set it on the Redis cache`);
  }
  const failurePolicy = options.failurePolicy ?? 'pragmatic';
  if (failurePolicy !== 'pragmatic' && failurePolicy !== 'strict') {
    throw new InvalidOptionError(`failurePolicy must be 'pragmatic' or 'strict' (got ${JSON.stringify(failurePolicy)})`);
  }
  const acknowledge = options.acknowledge ?? 'after-cache';
  if (acknowledge !== 'after-cache' && acknowledge !== 'after-commit') {
    throw new InvalidOptionError(`acknowledge must be 'after-cache' or 'after-commit' (got ${JSON.stringify(acknowledge)})`);
  }
  if (acknowledge === 'after-commit' && failurePolicy === 'strict') {
    throw new InvalidOptionError("acknowledge 'after-commit' needs failurePolicy 'pragmatic': strict reports a failed cache step to the writer, so it keeps the completion on the acknowledgement path");
  }
  const rate = options.alert?.cacheFailureRate ?? 0.05;
  if (typeof rate !== 'number' || !(rate > 0 && rate <= 1)) {
    throw new InvalidOptionError(`alert.cacheFailureRate must be a number in (0, 1] (got ${JSON.stringify(rate)})`);
  }
  const codec = options.codec ?? jsonCodec;
  requirePort(codec, 'codec', ['encode', 'decode']);
  const clock = options.clock ?? systemClock;
  requirePort(clock, 'clock', ['now']);

  const journal =
    options.journal === false || typeof (options.journal as JournalDrainerLike | undefined)?.drain === 'function'
      ? false
      : resolveJournalOptions((options.journal ?? {}) as JournalOptions);
  // Pruning a key's tombstone restarts its versions at 1: only safe once no cache can still hold a
  // tombstone or lease of that key with a higher version.
  if (journal !== false && journal.retentionMs <= tombstoneTtlMs) {
    throw new InvalidOptionError(`journal.retention (${journal.retentionMs} ms) must be longer than tombstoneTtl (${tombstoneTtlMs} ms)`);
  }

  const sampling = options.consistencySampling ?? { rate: 0 };
  if (typeof sampling !== 'object' || sampling === null || typeof sampling.rate !== 'number' || !(sampling.rate >= 0 && sampling.rate <= 1)) {
    throw new InvalidOptionError(`consistencySampling.rate must be a number in [0, 1] (got ${JSON.stringify((sampling as { rate?: unknown } | null)?.rate)})`);
  }

  return Object.freeze({
    store: options.store,
    cache: options.cache,
    namespace: validateNamespace(options.namespace ?? 'default'),
    ttlMs: toMs(options.ttl ?? '1h', 'ttl'),
    tombstoneTtlMs,
    leaseTtlMs,
    fillWaitMs,
    failurePolicy,
    acknowledge,
    maxKeyBytes: maxKeyBytesOf(options.maxKeyBytes),
    maxValueBytes: positiveInteger(options.maxValueBytes ?? 1024 * 1024, 'maxValueBytes'),
    codec,
    clock,
    journal,
    alert: Object.freeze({
      cacheFailureRate: rate,
      windowMs: toMs(options.alert?.window ?? '1m', 'alert.window'),
      minSamples: positiveInteger(options.alert?.minSamples ?? 20, 'alert.minSamples'),
    }),
    consistencySampling: Object.freeze({
      rate: sampling.rate,
      recheckDelayMs: toMs(sampling.recheckDelay ?? '1s', 'consistencySampling.recheckDelay', { allowZero: true }),
      maxPending: positiveInteger(sampling.maxPending ?? 64, 'consistencySampling.maxPending'),
    }),
  });
}
