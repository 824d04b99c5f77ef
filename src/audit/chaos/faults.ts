// The seeded fault schedule of one worker: for every cache or store call it draws whether a fault
// hits it, and which. The faults are those of src/chaos (the ChaosCache / ChaosStore FaultPlan):
// a drawn fault is queued on the wrapper's plan right before the call, so it applies to exactly
// that call. Rates are per call; `standard` is the profile `lockstep chaos --faults standard` uses.
//
// Failures come in storms: a worker spends `stormOps` of every `periodOps` operations under the
// failure rates, the rest under delays only. A failure often leaves a lease to expire, and readers
// bypass the cache meanwhile; calm stretches let leases expire and readers fill again, so the runs
// cover both the failure paths and the races between fills and writes (and the aftermath: dirty
// records, journal replays).
import { AsyncLocalStorage } from 'node:async_hooks';
import { setTimeout as sleep } from 'node:timers/promises';
import { ChaosCache, type CacheOperation } from '../../chaos/chaos-cache.js';
import { ChaosStore } from '../../chaos/chaos-store.js';
import { FaultPlan, type Fault } from '../../chaos/faults.js';
import { StoreOutcomeUnknownError } from '../../errors.js';
import type { CacheAdapter, CacheAnswerHandler, CacheEntry, CacheGetResult, CompleteOutcome, CompleteWriteOptions, LeaseToken, StoreAdapter, Version } from '../../types.js';
import type { NaiveCache } from '../naive.js';
import { between, type Random } from './random.js';

export type FaultProfile = 'none' | 'standard';

/** Fault kinds a worker injects, as counted in the report. */
export type WorkerFaultKind =
  | 'cache-throw-before'
  | 'cache-throw-after'
  | 'cache-timeout'
  | 'cache-delay'
  | 'cache-stall'
  | 'store-throw-before'
  | 'store-unknown-after'
  | 'store-delay'
  | 'store-stall';

export interface FaultRates {
  /** The cache call fails before it applies. */
  readonly cacheThrowBefore: number;
  /** The cache call applies, then the caller gets an error (the reply was lost). */
  readonly cacheThrowAfter: number;
  /** The caller gives up after 5–30 ms; the call still applies, 0–2× that late (before or after the caller gave up). */
  readonly cacheTimeout: number;
  /** 0–5 ms before or after the call applies: between protocol steps. */
  readonly cacheDelay: number;
  /** The call waits 1–2 lease TTLs before it applies, as a process stalled by a GC pause or a frozen VM: leases expire under it. */
  readonly cacheStall: number;
  /** A store read, write or delete fails before it applies (nothing committed). */
  readonly storeThrowBefore: number;
  /** A store write or delete commits, then the caller gets StoreOutcomeUnknownError. */
  readonly storeUnknownAfter: number;
  /** 0–10 ms before or after a store call. */
  readonly storeDelay: number;
  /** The store call waits 1–2 lease TTLs before it starts (the statement timeout does not cover that wait). */
  readonly storeStall: number;
  /** Failures (not delays) hit only `stormOps` of every `periodOps` operations of a worker. */
  readonly periodOps: number;
  readonly stormOps: number;
}

export const FAULT_PROFILES: Readonly<Record<FaultProfile, FaultRates>> = Object.freeze({
  none: {
    cacheThrowBefore: 0,
    cacheThrowAfter: 0,
    cacheTimeout: 0,
    cacheDelay: 0,
    cacheStall: 0,
    storeThrowBefore: 0,
    storeUnknownAfter: 0,
    storeDelay: 0,
    storeStall: 0,
    periodOps: 1,
    stormOps: 0,
  },
  standard: {
    cacheThrowBefore: 0.02,
    cacheThrowAfter: 0.02,
    cacheTimeout: 0.01,
    cacheDelay: 0.05,
    cacheStall: 0.002,
    storeThrowBefore: 0.02,
    storeUnknownAfter: 0.02,
    storeDelay: 0.03,
    storeStall: 0.002,
    periodOps: 1500,
    stormOps: 300,
  },
});

type Drawn = { readonly kind: WorkerFaultKind; readonly fault: Fault } | { readonly kind: 'cache-timeout'; readonly timeoutMs: number; readonly applyAfterMs: number };

export class FaultSchedule {
  private active = true;
  private storm = false;
  private operations: number;

  constructor(
    private readonly rnd: Random,
    private readonly rates: FaultRates,
    /** Stalls last 1–2 of these. */
    private readonly leaseTtlMs: number,
    private readonly onFault: (kind: WorkerFaultKind) => void,
  ) {
    // a seeded phase, so that processes do not storm in step
    this.operations = Math.floor(rnd() * rates.periodOps);
  }

  /** Called once per operation: moves through the storm / calm phases. */
  tick(): void {
    this.operations++;
    this.storm = this.operations % this.rates.periodOps < this.rates.stormOps;
  }

  /** No more faults from now on (the run's operations are over). */
  stop(): void {
    this.active = false;
  }

  drawCache(): Drawn | undefined {
    if (!this.active) return undefined;
    const r = this.rates;
    let roll = this.rnd();
    const when = () => (this.rnd() < 0.5 ? 'before' : 'after');
    if (this.storm) {
      if ((roll -= r.cacheThrowBefore) < 0) return this.count({ kind: 'cache-throw-before', fault: { kind: 'throw', when: 'before' } });
      if ((roll -= r.cacheThrowAfter) < 0) return this.count({ kind: 'cache-throw-after', fault: { kind: 'throw', when: 'after' } });
    }
    if (this.storm && (roll -= r.cacheTimeout) < 0) {
      const timeoutMs = between(this.rnd, 5, 30);
      return this.count({ kind: 'cache-timeout', timeoutMs, applyAfterMs: between(this.rnd, 0, 2 * timeoutMs) });
    }
    if (this.storm && (roll -= r.cacheStall) < 0) return this.count({ kind: 'cache-stall', fault: { kind: 'delay', when: 'before', ms: this.stallMs() } });
    if ((roll -= r.cacheDelay) < 0) return this.count({ kind: 'cache-delay', fault: { kind: 'delay', when: when(), ms: between(this.rnd, 0, 5) } });
    return undefined;
  }

  drawStore(operation: 'read' | 'write' | 'delete'): Drawn | undefined {
    if (!this.active) return undefined;
    const r = this.rates;
    let roll = this.rnd();
    if (this.storm && (roll -= r.storeThrowBefore) < 0) return this.count({ kind: 'store-throw-before', fault: { kind: 'throw', when: 'before' } });
    if (this.storm && operation !== 'read' && (roll -= r.storeUnknownAfter) < 0) {
      const error = new StoreOutcomeUnknownError(`injected fault: the store applied the ${operation}, then the connection was lost`);
      return this.count({ kind: 'store-unknown-after', fault: { kind: 'throw', when: 'after', error } });
    }
    if (this.storm && (roll -= r.storeStall) < 0) return this.count({ kind: 'store-stall', fault: { kind: 'delay', when: 'before', ms: this.stallMs() } });
    if ((roll -= r.storeDelay) < 0) {
      return this.count({ kind: 'store-delay', fault: { kind: 'delay', when: this.rnd() < 0.5 ? 'before' : 'after', ms: between(this.rnd, 0, 10) } });
    }
    return undefined;
  }

  private stallMs(): number {
    return between(this.rnd, this.leaseTtlMs, 2 * this.leaseTtlMs);
  }

  private count(drawn: Drawn): Drawn {
    this.onFault(drawn.kind);
    return drawn;
  }
}

export class InjectedTimeout extends Error {
  constructor(operation: string, ms: number) {
    super(`injected fault: ${operation} timed out after ${ms} ms (it may still apply)`);
    this.name = 'InjectedTimeout';
  }
}

/** Runs `call` under a drawn fault queued on `plan` for exactly this call. */
function under<Op extends string, T>(plan: FaultPlan<Op>, operation: Op, drawn: Drawn | undefined, call: () => Promise<T>): Promise<T> {
  if (drawn === undefined) return call();
  if ('fault' in drawn) {
    plan.next(operation, drawn.fault);
    return call();
  }
  // A lost or late reply: the call applies after `applyAfterMs`, the caller gives up at `timeoutMs`.
  plan.next(operation, { kind: 'delay', when: 'before', ms: drawn.applyAfterMs });
  call().catch(() => undefined);
  return sleep(drawn.timeoutMs).then(() => {
    throw new InjectedTimeout(operation, drawn.timeoutMs);
  });
}

/** 0–jitterMs of delay, drawn per call: widens the windows the races need. */
function jitter(rnd: Random, jitterMs: number): Fault | undefined {
  return jitterMs > 0 ? { kind: 'delay', when: 'before', ms: () => between(rnd, 0, jitterMs) } : undefined;
}

/**
 * What the cache wrapper learns about the operation it serves (the worker runs each operation in
 * its own context). A write whose lease could not be taken is journaled by the engine (policy
 * pragmatic), which then fences the cache with invalidateOlder. If that fencing failed too, other
 * readers may see an older value until the journal row is replayed: the protocol's one documented
 * stale window, which the checks must know about.
 */
export interface OperationContext {
  /** The cache key of the operation. */
  readonly cacheKey: string;
  /** beginWrite failed, or took over half the lease TTL (the engine then gives the lease up). */
  unleased: boolean;
  /** invalidateOlder of this key succeeded during the operation. */
  fenced: boolean;
}

export const operationContext = new AsyncLocalStorage<OperationContext>();

/** The engine's cache, with scheduled faults on every protocol transition and a random delay before each fill. */
export class ScheduledChaosCache extends ChaosCache {
  constructor(
    inner: CacheAdapter,
    private readonly schedule: FaultSchedule,
    rnd: Random,
    jitterMs: number,
    /** Called for an invalidateOlder that applied outside any operation: the journal drainer's replay of a row. */
    private readonly onReplay?: (key: string, version: Version) => void,
  ) {
    super(inner);
    const delay = jitter(rnd, jitterMs);
    if (delay !== undefined) this.faults.always('fill', delay);
    // An engine reads a cache that has getThen (Redis) through it: the harness plays that path of the
    // engine too, with the faults drawn on the get inside.
    if (typeof inner.getThen === 'function') {
      this.getThen = <R>(key: string, fillLeaseMs: number, handler: CacheAnswerHandler<R>): Promise<R> =>
        this.get(key, fillLeaseMs).then(
          (answer) => handler.answer(answer),
          (error: unknown) => handler.failure(error),
        );
    }
  }
  readonly getThen?: <R>(key: string, fillLeaseMs: number, handler: CacheAnswerHandler<R>) => Promise<R>;
  private draw<T>(operation: CacheOperation, call: () => Promise<T>): Promise<T> {
    return under(this.faults, operation, this.schedule.drawCache(), call);
  }
  override get(key: string, fillLeaseMs: number): Promise<CacheGetResult> {
    return this.draw('get', () => super.get(key, fillLeaseMs));
  }
  override fill(key: string, token: LeaseToken, entry: CacheEntry, ttlMs: number): Promise<boolean> {
    return this.draw('fill', () => super.fill(key, token, entry, ttlMs));
  }
  override async beginWrite(key: string, token: LeaseToken, leaseMs: number): Promise<void> {
    const started = performance.now();
    const context = operationContext.getStore();
    try {
      await this.draw('beginWrite', () => super.beginWrite(key, token, leaseMs));
    } catch (error) {
      if (context !== undefined) context.unleased = true;
      throw error;
    }
    // The engine gives up a lease that took more than half its TTL to take, and journals instead.
    if (context !== undefined && performance.now() - started > leaseMs / 2) context.unleased = true;
  }
  override completeWrite(key: string, token: LeaseToken, entry: CacheEntry, ttlMs: number, options?: CompleteWriteOptions): Promise<CompleteOutcome> {
    return this.draw('completeWrite', () => super.completeWrite(key, token, entry, ttlMs, options));
  }
  override abortWrite(key: string, token: LeaseToken): Promise<void> {
    return this.draw('abortWrite', () => super.abortWrite(key, token));
  }
  override async invalidateOlder(key: string, version: Version): Promise<void> {
    await this.draw('invalidateOlder', () => super.invalidateOlder(key, version));
    const context = operationContext.getStore();
    if (context?.cacheKey === key) context.fenced = true;
    else if (context === undefined) this.onReplay?.(key, version);
  }
  /** Faults off, standing delays cleared: for the convergence check. */
  calm(): void {
    this.schedule.stop();
    this.faults.clear();
  }
}

/** The store, with scheduled faults on reads, writes and deletes and a random delay after each read. */
export class ScheduledChaosStore extends ChaosStore {
  constructor(inner: StoreAdapter, private readonly schedule: FaultSchedule, rnd: Random, jitterMs: number) {
    super(inner);
    if (jitterMs > 0) this.faults.always('read', { kind: 'delay', when: 'after', ms: () => between(rnd, 0, jitterMs) });
  }
  override read(namespace: string, key: string) {
    return under(this.faults, 'read', this.schedule.drawStore('read'), () => super.read(namespace, key));
  }
  override write(namespace: string, key: string, payload: string, options: { journal: boolean; deadlineMs: number }) {
    return under(this.faults, 'write', this.schedule.drawStore('write'), () => super.write(namespace, key, payload, options));
  }
  override delete(namespace: string, key: string, options: { journal: boolean; deadlineMs: number }) {
    return under(this.faults, 'delete', this.schedule.drawStore('delete'), () => super.delete(namespace, key, options));
  }
  calm(): void {
    this.schedule.stop();
    this.faults.clear();
  }
}

/** The naive implementation's raw cache, with the same scheduled faults, and a random delay before every SET. */
export class ScheduledChaosNaiveCache implements NaiveCache {
  readonly name: string;
  readonly faults = new FaultPlan<'get' | 'set' | 'del'>();

  constructor(readonly inner: NaiveCache, private readonly schedule: FaultSchedule, rnd: Random, jitterMs: number) {
    this.name = `chaos(${inner.name})`;
    const delay = jitter(rnd, jitterMs);
    if (delay !== undefined) this.faults.always('set', delay);
  }
  get(key: string): Promise<string | undefined> {
    return under(this.faults, 'get', this.schedule.drawCache(), () => this.faults.run('get', () => this.inner.get(key)));
  }
  set(key: string, value: string, ttlMs: number): Promise<void> {
    return under(this.faults, 'set', this.schedule.drawCache(), () => this.faults.run('set', () => this.inner.set(key, value, ttlMs)));
  }
  del(key: string): Promise<void> {
    return under(this.faults, 'del', this.schedule.drawCache(), () => this.faults.run('del', () => this.inner.del(key)));
  }
  calm(): void {
    this.schedule.stop();
    this.faults.clear();
  }
  close(): Promise<void> {
    return this.inner.close();
  }
}
