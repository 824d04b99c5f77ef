// The write protocol: beginWrite (lease) → store commit → completeWrite, with the failure
// policies of consistency-protocol.md. A delete is a write whose payload is a tombstone.
import {
  CacheUnavailableError,
  CacheWriteError,
  PreconditionFailedError,
  StoreOutcomeUnknownError,
  StoreWriteError,
} from '../errors.js';
import type { CacheEntry, Version } from '../types.js';
import type { EngineContext } from './context.js';
import type { AlertEvent, WriteEvent, WriteOperation, WriteOutcome } from './events.js';
import type { AlertTransition } from './failure-rate.js';

export interface WriteStep<R extends { version: Version }> {
  readonly operation: WriteOperation;
  readonly key: string;
  readonly cacheKey: string;
  readonly ttlMs: number;
  /** Commits in one store transaction; `journal` also records the key for repair in it. */
  commit(journal: boolean, deadlineMs: number): Promise<R>;
  /** What the cache publishes once `version` is committed. */
  entryFor(version: Version): CacheEntry;
}

export function emitAlert(ctx: EngineContext, transition: AlertTransition): void {
  const event: AlertEvent = {
    namespace: ctx.namespace,
    ...transition,
    threshold: ctx.monitor.threshold,
    windowMs: ctx.monitor.windowMs,
  };
  ctx.events.emit('alert', event);
}

export async function writeThrough<R extends { version: Version }>(ctx: EngineContext, step: WriteStep<R>): Promise<R> {
  const { cache, options } = ctx;
  const { clock } = options;
  const started = performance.now();
  let cacheMs = 0;
  const report = (outcome: WriteOutcome, dbMs: number | undefined): void => {
    if (outcome === 'precondition-failed') ctx.counters.preconditionFailures++;
    else if (outcome !== 'ok') ctx.counters.failures++;
    const event: WriteEvent = {
      namespace: ctx.namespace,
      key: step.key,
      operation: step.operation,
      outcome,
      dbMs,
      cacheMs: cacheMs > 0 ? cacheMs : undefined,
      totalMs: performance.now() - started,
    };
    ctx.events.emit('write', event);
  };
  const recordCacheStep = (failed: boolean): void => {
    if (failed) ctx.counters.cacheFailures++;
    const transition = ctx.monitor.record(failed);
    if (transition !== undefined) emitAlert(ctx, transition);
  };
  if (step.operation === 'write') ctx.counters.writes++;
  else ctx.counters.deletes++;

  // 1. Lease the key: readers bypass the cache and fills are voided until the write completes.
  const token = ctx.nextWriterToken();
  const leaseStart = clock.now();
  let leased = false;
  let cacheStart = performance.now();
  try {
    await cache.beginWrite(step.cacheKey, token, options.leaseTtlMs);
    leased = true;
  } catch {
    // counted below, once the policy has decided
  }
  cacheMs += performance.now() - cacheStart;
  // Start the store write only with enough lease left; a cache this slow counts as failing.
  if (leased && clock.now() - leaseStart > options.leaseTtlMs / 2) {
    leased = false;
    await Promise.resolve()
      .then(() => cache.abortWrite(step.cacheKey, token))
      .catch(() => undefined); // if this fails too, the lease expires and marks the record dirty
  }
  if (!leased) {
    recordCacheStep(true);
    if (options.failurePolicy === 'strict') {
      report('refused', undefined);
      throw new CacheUnavailableError(`the cache could not be leased for ${step.operation}; policy strict: nothing was written`, {
        key: step.key,
        namespace: ctx.namespace,
      });
    }
    // pragmatic: write anyway, journaling the key in the same transaction for replay.
    await ctx.journalReady;
  }

  // 2. Commit to the store, within what is left of the lease.
  const deadlineMs = leased ? Math.max(1, options.leaseTtlMs - (clock.now() - leaseStart)) : options.leaseTtlMs;
  const dbStart = performance.now();
  let result: R;
  try {
    result = await step.commit(!leased, deadlineMs);
  } catch (error) {
    const dbMs = performance.now() - dbStart;
    const release = async (): Promise<void> => {
      if (!leased) return;
      await Promise.resolve()
        .then(() => cache.abortWrite(step.cacheKey, token))
        .catch(() => undefined); // the lease expires instead; nothing was committed either way
    };
    if (error instanceof PreconditionFailedError) {
      // The caller's condition, not an outage: a clean refusal, counted apart from db failures.
      await release();
      report('precondition-failed', dbMs);
      throw error;
    }
    ctx.counters.dbFailures++;
    if (error instanceof StoreOutcomeUnknownError) {
      // It may have committed: keep readers off the cache until the lease expires (dirty).
      report('unknown', dbMs);
      throw error;
    }
    await release();
    report('db-failure', dbMs);
    throw new StoreWriteError(`the store failed the ${step.operation}: ${(error as Error)?.message ?? String(error)}`, {
      key: step.key,
      namespace: ctx.namespace,
      cause: error,
    });
  }
  const dbMs = performance.now() - dbStart;

  // 3. Publish (or, without a lease, only fence out older values).
  cacheStart = performance.now();
  if (!leased) {
    try {
      await cache.invalidateOlder(step.cacheKey, result.version);
    } catch {
      // the journal row written with the commit replays this when the cache answers again
    }
    cacheMs += performance.now() - cacheStart;
    report('cache-failure', dbMs);
    return result;
  }
  try {
    await cache.completeWrite(step.cacheKey, token, step.entryFor(result.version), step.ttlMs);
    cacheMs += performance.now() - cacheStart;
    recordCacheStep(false);
    report('ok', dbMs);
    return result;
  } catch (error) {
    cacheMs += performance.now() - cacheStart;
    recordCacheStep(true);
    // The lease keeps readers on the store until it expires. If the commit landed after the lease
    // expired, a reader may have filled the older value meanwhile: journal the key so it is fenced.
    await ctx.store.appendJournal(ctx.namespace, step.key, result.version, 'repair').catch(() => undefined);
    report('cache-failure', dbMs);
    if (options.failurePolicy === 'strict') {
      throw new CacheWriteError(
        `the store committed version ${result.version} but the cache step failed; readers use the store until the lease expires`,
        result.version,
        { key: step.key, namespace: ctx.namespace, cause: error },
      );
    }
    return result;
  }
}
