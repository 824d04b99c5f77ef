// createEngine: one namespace over one store and one cache, speaking the consistency protocol.
// The read hit path stays in this file and does as little as possible. Observers (metrics, the
// consistency sampler, the service's stats) are wired from outside (src/compose/, src/service/).
import { EventEmitter } from 'node:events';
import { toMs } from '../duration.js';
import { ClosedError } from '../errors.js';
import { validateKey } from '../keys.js';
import { isThenable } from '../maybe-promise.js';
import { resolveOptions, type EngineOptions, type JournalDrainerLike, type ResolvedOptions } from '../options.js';
import { createTokenSource } from '../tokens.js';
import type { CacheAnswerHandler, CacheGetResult, StoreWriteResult, ValueRecord } from '../types.js';
import type {
  DeleteOptions,
  DeleteResult,
  Engine,
  EngineWiring,
  HitSampler,
  InlineDeleteStep,
  InlineLoader,
  InlineWriteStep,
  KeyInspection,
  ReadEntry,
  Versioned,
  WriteOptions,
  WriteResult,
} from './api.js';
import { CacheKeys, type KnownKey } from './cache-keys.js';
import { classifyKey } from './classify.js';
import type { EngineContext } from './context.js';
import { EntryCodec } from './entries.js';
import { createCounters, type EngineCounters, type EngineEventMap, type ReadSource } from './events.js';
import { FailureRateMonitor, type AlertTransition } from './failure-rate.js';
import { FillWaitMemory } from './fill-wait-memory.js';
import { createJournalDrainer, isJournalDrainer, type JournalDrainer } from './journal-drainer.js';
import { preconditionOf } from './preconditions.js';
import type { CacheStats, StoreStats } from '../types.js';
import { inlineDeleteStep, inlineLoad, inlineWriteStep } from './inline.js';
import { inspectBoth } from './inspect.js';
import { readAfterCache } from './read-path.js';
import { emitAlert, writeThrough } from './write-path.js';

export function createEngine<T = unknown>(options: EngineOptions, wiring: EngineWiring = {}): Engine<T> {
  return new WriteThroughEngine<T>(options, wiring);
}

export class WriteThroughEngine<T> implements Engine<T> {
  readonly namespace: string;
  readonly options: ResolvedOptions;
  private readonly ctx: EngineContext;
  private readonly events = new EventEmitter();
  private readonly ownDrainer: JournalDrainer | undefined;
  /**
   * Writes and deletes in flight: a count (close() waits for it to reach 0), not a set of their
   * promises, which went from 0 entries to 1 and back on every sequential write, reallocating its
   * table each time.
   */
  private writesPending = 0;
  /** close()'s wait for writesPending to reach 0, while one waits. */
  private writesDrained: { readonly promise: Promise<void>; readonly resolve: () => void } | undefined;
  private readonly cacheKeys: CacheKeys;
  /** consistencySampling.rate: 0 keeps the hit path to one compare; otherwise one random draw per hit. */
  private readonly sampleRate: number;
  private readonly sampler: HitSampler | undefined;
  /** A shared drainer's count of this namespace's repairs, when it keeps one. */
  private readonly repairWatch: { readonly count: number; stop(): void } | undefined;
  /** The cache hands out value slots (CacheAdapter.slot): a repeated hit reads its key's slot. */
  private readonly slots: boolean;
  /** The cache runs the handling of its answer in its own callback (CacheAdapter.getThen). */
  private readonly getThen: boolean;
  /** `read` listeners: 0 keeps the hit path free of clock reads and event objects. */
  private readListeners = 0;
  /** Reads that have not settled (a memory-cache hit settles before read() returns, so is never counted). */
  private readsPending = 0;
  private onFirstWrite: (() => EngineCounters | undefined) | undefined;
  private closed = false;

  constructor(options: EngineOptions, wiring: EngineWiring = {}) {
    this.options = resolveOptions(options);
    const { store, cache, namespace } = this.options;
    this.namespace = namespace;
    this.cacheKeys = new CacheKeys(namespace);
    this.slots = typeof cache.slot === 'function';
    this.getThen = typeof cache.getThen === 'function';
    const counters = wiring.counters ?? createCounters();
    const sharedDrainer = isJournalDrainer(options.journal) ? options.journal : undefined;
    // Repairs are counted by the drainer that applies them: a shared one counts per namespace
    // (watchRepairs), this engine's own one bumps its counters. Injected counters are their
    // owner's to keep, repairs included.
    this.repairWatch = wiring.counters === undefined ? sharedDrainer?.watchRepairs?.(namespace) : undefined;
    const watch = this.repairWatch;
    if (watch !== undefined) Object.defineProperty(counters, 'journalRepairs', { enumerable: true, configurable: true, get: () => watch.count });
    this.ownDrainer =
      sharedDrainer === undefined && this.options.journal !== false
        ? createJournalDrainer({
            store,
            cache,
            journal: this.options.journal,
            onRepaired: () => counters.journalRepairs++,
          })
        : undefined;
    this.ownDrainer?.start();
    this.ctx = {
      options: this.options,
      namespace,
      store,
      cache,
      entries: new EntryCodec(this.options.codec, this.options.maxValueBytes, cache.capabilities.decodedValues),
      counters,
      events: this.events,
      monitor: new FailureRateMonitor({
        threshold: this.options.alert.cacheFailureRate,
        windowMs: this.options.alert.windowMs,
        minSamples: this.options.alert.minSamples,
        clock: this.options.clock,
      }),
      nextWriterToken: createTokenSource('write'),
      journalReady: (sharedDrainer ?? this.ownDrainer)?.ready ?? Promise.resolve(),
      journalReplaying: replayingOf(sharedDrainer ?? this.ownDrainer),
      flights: new Map(),
      fillWaitMemory: new FillWaitMemory(() => performance.now()),
      completionsAfterAck: new Set(),
      journalPositionKnown: false,
    };
    const ctx = this.ctx;
    ctx.journalReady.then(
      () => {
        ctx.journalPositionKnown = true;
      },
      () => undefined, // a fill keeps racing the rejected wait, and fails as before
    );
    this.onFirstWrite = wiring.onFirstWrite;
    this.sampler = this.options.consistencySampling.rate === 0 ? undefined : wiring.sampler?.(counters, this.options);
    this.sampleRate = this.sampler === undefined ? 0 : this.options.consistencySampling.rate;
  }

  get counters(): Readonly<EngineCounters> {
    return this.ctx.counters;
  }

  get readsInFlight(): number {
    return this.readsPending;
  }

  get writesInFlight(): number {
    return this.writesPending;
  }

  read(key: string): Promise<T | undefined> {
    // A key already joined was validated when it was joined (cache-keys.ts): only a new key, or a
    // closed engine, takes the full check (scanning the key for lone surrogates and NUL costs as
    // much as the cache lookup).
    let known = this.cacheKeys.known(key);
    if (known === undefined || this.closed) {
      try {
        this.checkKey(key);
      } catch (error) {
        return Promise.reject(error);
      }
      // Past the check the engine is open, so `known` is what the lookup found: join only a new key.
      if (known === undefined) {
        if (this.slots && !this.getThen) return this.readNewKey(key);
        known = this.cacheKeys.join(key);
      }
    }
    // With nobody listening for `read`, no clock is read (-1 says "not timed").
    const started = this.readListeners === 0 ? -1 : performance.now();
    // An in-process cache's slot of the key's value: the same step as a hit of get, without the
    // cache's key lookup (CacheAdapter.slot). Empty (the value changed, or expired): ask get.
    const slot = known.slot;
    if (slot !== undefined) {
      const value = slot.read();
      if (value !== undefined) return this.syncAnswer(key, known, value, started);
      known.slot = undefined;
    }
    // A cache that takes the handling of its answer into its own callback (CacheAdapter.getThen):
    // the same steps as below, one promise fewer.
    if (this.getThen) return this.readThen(key, known, started);
    const answer = this.askCacheFor(known.cacheKey);
    // The hit path: one cache lookup, no allocation beyond the promise (for a remote cache, no
    // ReadEntry either).
    if (answer instanceof Promise) return this.readAnswerLater(key, known.cacheKey, answer, started);
    if (answer.kind === 'value' && this.slots) known.slot = this.options.cache.slot!(known.cacheKey);
    return this.syncAnswer(key, known, answer, started);
  }

  /** read()'s steps once a cache that answers later (a promise) has answered. */
  private readAnswerLater(key: string, cacheKey: string, answer: Promise<CacheGetResult>, started: number): Promise<T | undefined> {
    this.readsPending++;
    return answer.then(
      (got) => {
        this.readsPending--;
        return this.valueOrSlowPath(key, cacheKey, got, started);
      },
      (error: unknown) => {
        this.readsPending--;
        return this.slowValue(key, cacheKey, Promise.reject(error), started);
      },
    );
  }

  /**
   * read() of a key not joined yet, on an in-process cache with slots (the memory cache): the key is
   * remembered (CacheKeys) once the cache answers its value, which a cold read's next read finds, not
   * on the cold read itself. A key read once (a scan, the cold reads of a fresh cache) then leaves no
   * remembered join to outlive a scavenge: most of a cold read's cost over a raw read is garbage
   * collection of what it keeps. The steps are read()'s.
   */
  private readNewKey(key: string): Promise<T | undefined> {
    const cacheKey = this.cacheKeys.cacheKeyOf(key);
    const started = this.readListeners === 0 ? -1 : performance.now();
    const answer = this.askCacheFor(cacheKey);
    if (answer instanceof Promise) return this.readAnswerLater(key, cacheKey, answer, started);
    if (answer.kind === 'value') this.cacheKeys.remember(key, cacheKey).slot = this.options.cache.slot!(cacheKey);
    return Promise.resolve(this.valueOrSlowPath(key, cacheKey, answer, started));
  }

  /** read() through CacheAdapter.getThen: what the promise branch of read() does, in the cache's callback. */
  private readThen(key: string, known: KnownKey, started: number): Promise<T | undefined> {
    this.readsPending++;
    const { cacheKey } = known;
    // An untimed read's handler is the same for every read of the key: kept with the key, not made per read.
    const handler = started === -1 ? ((known.answerHandler ??= new HitRead(this, key, cacheKey, -1)) as HitRead<T>) : new HitRead(this, key, cacheKey, started);
    try {
      return this.options.cache.getThen!(cacheKey, this.options.leaseTtlMs, handler);
    } catch (error) {
      // A cache that throws instead of rejecting: as a rejected answer.
      this.readsPending--;
      return Promise.resolve(this.slowValue(key, cacheKey, Promise.reject(error), started));
    }
  }

  /** @internal HitRead: a read's answer arrived (a hit settles here, anything else takes the slow path). */
  answered(key: string, cacheKey: string, answer: CacheGetResult, started: number): T | undefined | Promise<T | undefined> {
    this.readsPending--;
    return this.valueOrSlowPath(key, cacheKey, answer, started);
  }

  /** @internal HitRead: the cache failed the read: the store answers it. */
  failedRead(key: string, cacheKey: string, error: unknown, started: number): Promise<T | undefined> {
    this.readsPending--;
    return Promise.resolve(this.slowValue(key, cacheKey, Promise.reject(error), started));
  }

  /** A synchronous answer of the cache: a hit settles here; anything else takes the slow path. */
  private syncAnswer(key: string, known: KnownKey, answer: CacheGetResult, started: number): Promise<T | undefined> {
    return Promise.resolve(this.valueOrSlowPath(key, known.cacheKey, answer, started));
  }

  private valueOrSlowPath(key: string, cacheKey: string, answer: CacheGetResult, started: number): T | undefined | Promise<T | undefined> {
    if (answer.kind !== 'value' || this.ctx.journalReplaying()) return this.slowValue(key, cacheKey, answer, started);
    this.ctx.counters.cacheHits++;
    if (this.sampleRate !== 0) this.sampleHit(key, answer.version, !answer.tombstone);
    if (started !== -1) return this.timedHit(key, answer, started);
    return this.ctx.entries.valueOf(answer) as T | undefined;
  }

  /** A hit that `read` listeners wait for (out of valueOrSlowPath, which stays as small as it was). */
  private timedHit(key: string, answer: ValueRecord, started: number): T | undefined | Promise<never> {
    return this.emitSettled(key, 'hit', !answer.tombstone, started) ?? (this.ctx.entries.valueOf(answer) as T | undefined);
  }

  /**
   * What read() answers after anything but a plain hit. A read that settled synchronously (a cold
   * read on the memory cache and SQLite) is answered as a hit is: never counted in flight, reported
   * at once.
   */
  private slowValue(key: string, cacheKey: string, answer: CacheGetResult | Promise<CacheGetResult>, started: number): T | undefined | Promise<T | undefined> {
    const entry = readAfterCache<T>(this.ctx, key, cacheKey, answer);
    if (!(entry instanceof Promise)) {
      if (started !== -1) {
        const failed = this.emitSettled(key, entry.source, entry.found, started);
        if (failed !== undefined) return failed;
      }
      if (this.sampleRate !== 0 && entry.source === 'hit') this.sampleHit(key, entry.version, entry.found);
      return entry.value;
    }
    return this.slowValueLater(key, entry, started);
  }

  /** slowValue's wait (apart: its closure's context is not allocated by a read that settled at once). */
  private slowValueLater(key: string, entry: Promise<ReadEntry<T>>, started: number): Promise<T | undefined> {
    return this.settleRead(key, entry, started).then((settled) => {
      if (this.sampleRate !== 0 && settled.source === 'hit') this.sampleHit(key, settled.version, settled.found);
      return settled.value;
    });
  }

  /** Counts a read in flight until it settles, and reports it to `read` listeners when timed. */
  private settleRead<E extends ReadEntry<unknown>>(key: string, pending: Promise<E>, started: number): Promise<E> {
    this.readsPending++;
    return pending.then(
      (entry) => {
        this.readsPending--;
        if (started !== -1) this.emitRead(key, entry.source, entry.found, started);
        return entry;
      },
      (error: unknown) => {
        this.readsPending--;
        if (started !== -1) this.emitRead(key, undefined, false, started);
        throw error;
      },
    );
  }

  /**
   * emitRead for a read that settled inside read() (a hit, a synchronous cold read): a `read`
   * listener that throws fails the read with a rejection, as on the promise path (settleRead), and
   * never makes read() itself throw.
   */
  private emitSettled(key: string, source: ReadSource, found: boolean, started: number): Promise<never> | undefined {
    try {
      this.emitRead(key, source, found, started);
      return undefined;
    } catch (error) {
      return Promise.reject(error);
    }
  }

  private emitRead(key: string, source: ReadSource | undefined, found: boolean, started: number): void {
    this.events.emit('read', { namespace: this.namespace, key, source, found, ms: performance.now() - started });
  }

  /** Consistency sampling: one random draw; a sampled hit is checked in the background (src/audit/sampler.ts). */
  private sampleHit(key: string, version: number, live: boolean): void {
    if (Math.random() < this.sampleRate) this.sampler?.sample(key, this.cacheKeys.of(key), version, live);
  }

  readEntry(key: string): Promise<ReadEntry<T>> {
    try {
      this.checkKey(key);
    } catch (error) {
      return Promise.reject(error);
    }
    const started = this.readListeners === 0 ? -1 : performance.now();
    const entry = this.settleRead(key, Promise.resolve(readAfterCache<T>(this.ctx, key, this.cacheKeys.of(key), this.askCache(key))), started);
    if (this.sampleRate === 0) return entry;
    return entry.then((e) => {
      if (e.source === 'hit') this.sampleHit(key, e.version, e.found);
      return e;
    });
  }

  write(key: string, value: T, options?: WriteOptions): Promise<WriteResult> {
    return this.track(() => this.writeNow(key, value, options));
  }

  /**
   * write()'s steps. Not an async function: a synchronous throw becomes a rejection here, and the
   * result is mapped by one `then` (an async closure's frame was ~730 bytes of a write's garbage).
   */
  private writeNow(key: string, value: T, options: WriteOptions | undefined): Promise<WriteResult> {
    try {
      this.checkKey(key);
      const precondition = preconditionOf(options, 'write');
      const encoded = this.ctx.entries.encode(value, key, this.namespace);
      const entryOf = this.ctx.entries.prepare(encoded);
      const ttlMs = options?.ttl === undefined ? this.options.ttlMs : toMs(options.ttl, 'ttl');
      const known = this.cacheKeys.entry(key);
      // A key this engine wrote before most likely has its row still: the store may try an update first.
      const likelyExists = known.live === true;
      return writeThrough(this.ctx, {
        operation: 'write',
        key,
        cacheKey: known.cacheKey,
        ttlMs,
        commit: (journal, deadlineMs) => {
          const committing = this.options.store.write(this.namespace, key, encoded.payload, { journal, deadlineMs, precondition, likelyExists });
          if (!isThenable(committing)) {
            known.live = true; // committed synchronously (an in-process store)
            return committing;
          }
          return Promise.resolve(committing).then((committed) => {
            known.live = true;
            return committed;
          });
        },
        // A store that read the row back (an entity table) publishes it as stored, not as written.
        entryFor: (committed) => (committed.payload === undefined ? entryOf(committed.version) : this.ctx.entries.fromStore({ version: committed.version, payload: committed.payload })),
      }).then(this.writeResultOf);
    } catch (error) {
      return Promise.reject(error);
    }
  }

  /** What write() answers for a committed write (made once: not a closure per write). */
  private readonly writeResultOf = ({ version, payload }: StoreWriteResult): WriteResult =>
    payload === undefined ? { version } : { version, stored: this.options.codec.decode(payload) };

  delete(key: string, options?: DeleteOptions): Promise<DeleteResult> {
    return this.track(async () => {
      this.checkKey(key);
      const precondition = preconditionOf(options, 'delete');
      const known = this.cacheKeys.entry(key);
      const { version, existed } = await writeThrough(this.ctx, {
        operation: 'delete',
        key,
        cacheKey: known.cacheKey,
        ttlMs: this.options.tombstoneTtlMs,
        commit: (journal, deadlineMs) =>
          this.options.store.delete(this.namespace, key, { journal, deadlineMs, precondition }).then((committed) => {
            known.live = false;
            return committed;
          }),
        entryFor: (committed) => this.ctx.entries.tombstone(committed.version),
      });
      return { version, existed };
    });
  }

  writeThrough<R extends Versioned<unknown>>(key: string, step: InlineWriteStep<R>, options?: WriteOptions): Promise<R> {
    return this.track(async () => {
      this.checkKey(key);
      const ttlMs = options?.ttl === undefined ? this.options.ttlMs : toMs(options.ttl, 'ttl');
      return writeThrough(this.ctx, inlineWriteStep(this.ctx, key, this.cacheKeys.of(key), ttlMs, step));
    });
  }

  deleteThrough<R extends { readonly version: number }>(key: string, step: InlineDeleteStep<R>): Promise<R> {
    return this.track(async () => {
      this.checkKey(key);
      return writeThrough(this.ctx, inlineDeleteStep(this.ctx, key, this.cacheKeys.of(key), step));
    });
  }

  /** Not sampled by consistencySampling: the sampler compares hits with Lockstep's store, not the caller's table. */
  readThrough<V>(key: string, load: InlineLoader<V>): Promise<V | undefined> {
    try {
      this.checkKey(key);
    } catch (error) {
      return Promise.reject(error);
    }
    const started = this.readListeners === 0 ? -1 : performance.now();
    const entry = readAfterCache<V>(this.ctx, key, this.cacheKeys.of(key), this.askCache(key), inlineLoad(load));
    return this.settleRead(key, Promise.resolve(entry), started).then((e) => e.value);
  }

  async inspect(key: string): Promise<KeyInspection> {
    this.checkKey(key);
    // Both sides within the lease budget; a failure names its backend (inspect.ts).
    const [stored, cached] = await inspectBoth(this.ctx, key, this.cacheKeys.of(key));
    const { state, description } = classifyKey(stored, cached);
    return {
      namespace: this.namespace,
      key,
      state,
      description,
      store: stored === undefined ? null : { version: stored.version, value: this.options.codec.decode(stored.payload) },
      cache: cached ?? null,
    };
  }

  cacheStats(): CacheStats {
    return this.options.cache.stats();
  }

  /** For a shared metrics registry: engines over one cache report its totals once (MetricsSource). */
  get cacheIdentity(): object {
    return this.options.cache;
  }

  storeStats(): StoreStats | undefined {
    return this.options.store.stats?.();
  }

  /** As cacheIdentity, for the store's totals. */
  get storeIdentity(): object {
    return this.options.store;
  }
  failureRate(): number {
    // Time only moves for the window when asked: a scrape lets a firing alert clear during silence.
    const transition = this.ctx.monitor.poll();
    if (transition !== undefined) this.emitAlert(transition);
    return this.ctx.monitor.rate;
  }

  drainJournal(): Promise<number> {
    return this.ownDrainer?.drain() ?? Promise.resolve(0);
  }

  on<E extends keyof EngineEventMap>(event: E, listener: (...args: EngineEventMap[E]) => void): this {
    this.events.on(event, listener as (...args: unknown[]) => void);
    if (event === 'read') this.readListeners = this.events.listenerCount('read');
    return this;
  }

  off<E extends keyof EngineEventMap>(event: E, listener: (...args: EngineEventMap[E]) => void): this {
    this.events.off(event, listener as (...args: unknown[]) => void);
    if (event === 'read') this.readListeners = this.events.listenerCount('read');
    return this;
  }

  /** Stops accepting work, waits for writes in flight, stops the journal poller. */
  async close(): Promise<void> {
    this.closed = true;
    if (this.writesPending > 0) {
      if (this.writesDrained === undefined) {
        let resolve!: () => void;
        const promise = new Promise<void>((done) => (resolve = done));
        this.writesDrained = { promise, resolve };
      }
      await this.writesDrained.promise;
    }
    await Promise.allSettled([...this.ctx.completionsAfterAck]);
    await this.sampler?.close();
    await this.ownDrainer?.stop();
    this.repairWatch?.stop();
  }

  /** Runs the wiring's onFirstWrite once; counters it returns take over from here (this write included). */
  private firstWrite(): void {
    const next = this.onFirstWrite?.();
    this.onFirstWrite = undefined;
    if (next !== undefined) this.ctx.counters = next;
  }

  private emitAlert(transition: AlertTransition): void {
    emitAlert(this.ctx, transition);
  }

  private checkKey(key: string): void {
    if (this.closed) throw new ClosedError('this Lockstep instance is closed', { key, namespace: this.namespace });
    validateKey(key, this.options.maxKeyBytes, this.namespace);
  }

  /** The cache's first answer for a checked key; a cache that throws synchronously becomes a rejected answer. */
  private askCache(key: string): CacheGetResult | Promise<CacheGetResult> {
    return this.askCacheFor(this.cacheKeys.of(key));
  }

  private askCacheFor(cacheKey: string): CacheGetResult | Promise<CacheGetResult> {
    try {
      return this.options.cache.get(cacheKey, this.options.leaseTtlMs);
    } catch (error) {
      return Promise.reject(error);
    }
  }

  private track<R>(work: () => Promise<R>): Promise<R> {
    if (this.onFirstWrite !== undefined) this.firstWrite();
    const promise = work();
    this.writesPending++;
    promise.then(this.writeSettled, this.writeSettled);
    return promise;
  }

  /** A tracked write or delete settled (made once: not a closure per write). */
  private readonly writeSettled = (): void => {
    if (--this.writesPending > 0 || this.writesDrained === undefined) return;
    const { resolve } = this.writesDrained;
    this.writesDrained = undefined;
    resolve();
  };
}

/**
 * The handling of the cache's answer to a read of one key, handed to CacheAdapter.getThen (one object,
 * no closures). Immutable: an untimed one (started -1) serves every read of its key (KnownKey.answerHandler).
 */
class HitRead<T> implements CacheAnswerHandler<T | undefined> {
  constructor(
    private readonly engine: WriteThroughEngine<T>,
    private readonly key: string,
    private readonly cacheKey: string,
    private readonly started: number,
  ) {}

  answer(answer: CacheGetResult): T | undefined | Promise<T | undefined> {
    return this.engine.answered(this.key, this.cacheKey, answer, this.started);
  }

  failure(error: unknown): Promise<T | undefined> {
    return this.engine.failedRead(this.key, this.cacheKey, error, this.started);
  }
}

/**
 * A shared drainer from elsewhere may not tell whether it replays (JournalDrainerLike): then it does not.
 * Every hit calls this: a bound method is one call where a wrapper calling `.call` was two.
 */
function replayingOf(drainer: JournalDrainerLike | undefined): () => boolean {
  const replaying = drainer?.replaying;
  return replaying === undefined ? () => false : replaying.bind(drainer);
}
