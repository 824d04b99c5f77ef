// The write protocol: beginWrite (lease) → store commit → completeWrite, with the failure
// policies of docs/protocol.md. A delete is a write whose payload is a tombstone. The
// store step is a function, so engine.write / delete and the inline helpers (the caller's own
// database write, see inline.ts) run this one implementation.
import { isThenable } from '../maybe-promise.js';
import {
  CacheUnavailableError,
  CacheWriteError,
  InvalidVersionError,
  PreconditionFailedError,
  StoreOutcomeUnknownError,
  StoreWriteError,
} from '../errors.js';
import type { CacheEntry, CompleteWriteOptions, Version } from '../types.js';
import type { EngineContext } from './context.js';
import { startDeadline, within, type Deadline } from './deadline.js';
import type { AlertEvent, WriteEvent, WriteOperation, WriteOutcome } from './events.js';
import type { AlertTransition } from './failure-rate.js';

/** invalidateOlder(ANY_VERSION) removes whatever the key holds: the fence when a committed version is not known. */
const ANY_VERSION = Number.MAX_SAFE_INTEGER;

export interface WriteStep<R extends { version: Version }> {
  readonly operation: WriteOperation;
  readonly key: string;
  readonly cacheKey: string;
  readonly ttlMs: number;
  /**
   * Commits in one store transaction. With `journal`, also records the key for repair in it, unless
   * `journalAfterCommit` says the step cannot (the caller's own database step). An in-process store
   * may commit synchronously (StoreAdapter.write): a plain result is taken as is, with no deadline
   * race (a settled commit wins any race: a timer cannot fire before the next microtask).
   */
  commit(journal: boolean, deadlineMs: number): R | Promise<R>;
  /** What the cache publishes for a committed result; throws when the result cannot be published. */
  entryFor(result: R): CacheEntry;
  /** The step cannot journal in its own transaction: the path appends the repair row right after the commit. */
  readonly journalAfterCommit?: boolean;
  /** The step is the caller's code: its errors reach the caller unchanged, not wrapped in StoreWriteError. */
  readonly callerStep?: boolean;
}

/** Versions fence the cache, so every one must be a positive safe integer. */
export function checkVersion(version: unknown, key: string, namespace: string): Version {
  if (typeof version !== 'number' || !Number.isSafeInteger(version) || version < 1) {
    throw new InvalidVersionError(
      `a version must be a positive safe integer that increases per key in commit order (got ${typeof version === 'string' ? JSON.stringify(version) : String(version)})`,
      { key, namespace },
    );
  }
  return version;
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

  // Every store wait of this write ends within the lease budget, whatever the store does (deadline.ts).
  const deadline = startDeadline(options.leaseTtlMs);

  // 0. A drainer that starts at the journal's end must know where that is before we commit: a
  // bypass write committed after our publish but before that point would never be replayed.
  // Once it is known, there is nothing to wait for (no timer, no promise hop per write).
  if (!readyJournals.has(ctx.journalReady)) {
    await deadline.race(ctx.journalReady, () => {
      report('db-failure', undefined);
      return new StoreWriteError(`the store did not tell the journal's position within ${options.leaseTtlMs} ms; nothing was written`, {
        key: step.key,
        namespace: ctx.namespace,
      });
    });
    readyJournals.add(ctx.journalReady);
  }

  // 1. Lease the key: readers bypass the cache and fills are voided until the write completes.
  const token = ctx.nextWriterToken();
  const leaseStart = clock.now();
  let leased = false;
  let cacheStart = performance.now();
  try {
    const begun = cache.beginWrite(step.cacheKey, token, options.leaseTtlMs);
    if (isThenable(begun)) await begun; // an in-process cache answered already: no microtask hop
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
    // pragmatic: write anyway, journaling the key in the same transaction for replay (the drainer
    // is ready, step 0, so the row cannot fall behind its starting point).
  }

  // 2. Commit to the store, within what is left of the lease. Whole milliseconds, rounded down:
  // never later than the lease, and the deadline timers of successive writes then share one of
  // Node's timer lists (a fractional duration opens a list of its own per write).
  const leaseLeftMs = leased ? options.leaseTtlMs - (clock.now() - leaseStart) : options.leaseTtlMs;
  const deadlineMs = Math.max(1, Math.floor(Math.min(leaseLeftMs, deadline.remaining())));
  const dbStart = performance.now();
  let result: R;
  let committing: R | Promise<R>;
  try {
    committing = step.commit(!leased, deadlineMs);
  } catch (error) {
    committing = Promise.reject(error); // a step that throws synchronously fails like one that rejects
  }
  try {
    // The client-side deadline: a commit not confirmed by then may still land, so its outcome is
    // unknown. A commit answered synchronously is confirmed already: nothing to race.
    if (isThenable(committing)) {
      const pending = committing;
      result = await within(
        deadline,
        () => pending,
        () =>
          new StoreOutcomeUnknownError(
            `the store did not confirm the ${step.operation} within ${Math.round(deadlineMs)} ms: it may or may not have committed`,
            { key: step.key, namespace: ctx.namespace },
          ),
        deadlineMs,
      );
    } else {
      result = committing;
    }
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
      if (!leased && step.journalAfterCommit) await fenceUnknownVersion(ctx, step, deadline);
      // A commit confirmed after we gave up may land after the lease expired and a reader filled the
      // older value: fence it out then, as the protocol asks of any late confirmation.
      // (Only a pending commit can time out.) A store that cannot confirm it at all may still settle
      // it: once the write can no longer land, the key is fenced whatever it holds.
      (committing as Promise<R>).then((late) => fenceLateCommit(ctx, step, late?.version), (lost) => fenceOnceSettled(ctx, step, lost));
      report('unknown', dbMs);
      throw error;
    }
    await release();
    report('db-failure', dbMs);
    if (step.callerStep) throw error;
    throw new StoreWriteError(`the store failed the ${step.operation}: ${(error as Error)?.message ?? String(error)}`, {
      key: step.key,
      namespace: ctx.namespace,
      cause: error,
    });
  }
  const dbMs = performance.now() - dbStart;
  let entry: CacheEntry;
  try {
    checkVersion(result?.version, step.key, ctx.namespace);
    entry = step.entryFor(result);
  } catch (error) {
    // Committed, but nothing can be published (a caller's step gave a bad version or value): as
    // with an unknown outcome, the lease keeps readers on the store until it expires (dirty).
    if (!leased) await fenceUnknownVersion(ctx, step, deadline);
    report('unknown', dbMs);
    throw error;
  }

  // 3. Publish (or, without a lease, only fence out older values).
  cacheStart = performance.now();
  if (!leased) {
    // The engine's own steps journaled the key in the commit's transaction; a caller's step could
    // not, so its row is appended now (a crash between the two is the documented window).
    const journaled = !step.journalAfterCommit || (await appendRepair(ctx, step.key, result.version, deadline));
    let fenced = false;
    try {
      await cache.invalidateOlder(step.cacheKey, result.version);
      fenced = true;
    } catch {
      // the journal row replays this when the cache answers again
    }
    cacheMs += performance.now() - cacheStart;
    report('cache-failure', dbMs);
    if (journaled) ctx.counters.journaledAcks++; // the documented window is in use
    if (!journaled && !fenced) {
      throw new CacheWriteError(
        `the ${step.operation} committed version ${result.version}, but neither the cache nor the repair journal could be reached: the old value may be served until its TTL`,
        result.version,
        { key: step.key, namespace: ctx.namespace },
      );
    }
    return result;
  }
  const completed = (): R => {
    cacheMs += performance.now() - cacheStart;
    recordCacheStep(false);
    report('ok', dbMs);
    return result;
  };
  const failed = async (error: unknown): Promise<R> => {
    cacheMs += performance.now() - cacheStart;
    recordCacheStep(true);
    // The lease keeps readers on the store until it expires. If the commit landed after the lease
    // expired, a reader may have filled the older value meanwhile: journal the key so it is fenced.
    await appendRepair(ctx, step.key, result.version, deadline);
    report('cache-failure', dbMs);
    if (options.failurePolicy === 'strict') {
      throw new CacheWriteError(
        `the store committed version ${result.version} but the cache step failed; readers use the store until the lease expires`,
        result.version,
        { key: step.key, namespace: ctx.namespace, cause: error },
      );
    }
    return result;
  };
  // An in-process cache answers at once: the write then settles without another promise.
  const complete = (how: CompleteWriteOptions | undefined): R | Promise<R> => {
    try {
      const completing = cache.completeWrite(step.cacheKey, token, entry, step.ttlMs, how);
      if (isThenable(completing)) return Promise.resolve(completing).then(completed).catch(failed);
      return completed();
    } catch (error) {
      return failed(error);
    }
  };
  // acknowledge 'after-commit' (pragmatic only): the lease is live, so until the completion lands
  // every reader bypasses the key and reads the store, which has the commit; if the completion
  // fails or never runs, the lease expires dirty (docs/protocol.md, modelled by --early-ack). The
  // lease counts from before beginWrite was sent, so it is live on the cache's clock too; the
  // margin covers clocks that run at slightly different rates.
  if (options.acknowledge === 'after-commit' && clock.now() - leaseStart < options.leaseTtlMs * EARLY_ACK_LEASE_SHARE) {
    // Nobody waits for it: the cache may send it with the calls of the tick (the next write's lease).
    const completing = Promise.resolve(complete(ACKNOWLEDGED)).catch(() => undefined); // pragmatic: counted and journaled inside, never thrown
    ctx.completionsAfterAck.add(completing);
    void completing.finally(() => ctx.completionsAfterAck.delete(completing));
    return result;
  }
  return complete(undefined);
}


/** The journal positions (EngineContext.journalReady) known to be settled: writes stop waiting on them. */
const readyJournals = new WeakSet<Promise<void>>();

/** The completion of a write acknowledged already (acknowledge 'after-commit'). */
const ACKNOWLEDGED: CompleteWriteOptions = Object.freeze({ acknowledged: true });

/** acknowledge 'after-commit' acknowledges early only within this share of the lease. */
const EARLY_ACK_LEASE_SHARE = 0.9;

/** A repair row may still be appended this long after the write's deadline passed. */
const REPAIR_GRACE_MS = 250;

/** Appends a repair row for the key; false when the store could not take it (in time). */
function appendRepair(ctx: EngineContext, key: string, version: Version, deadline: Deadline): Promise<boolean> {
  const ms = Math.max(REPAIR_GRACE_MS, deadline.remaining());
  const timeout = () => new Error(`the repair row was not confirmed within ${ms} ms`);
  return within(deadline, () => ctx.store.appendJournal(ctx.namespace, key, version, 'repair'), timeout, ms).then(
    () => true,
    () => false,
  );
}

/** A commit abandoned at the deadline was confirmed after all: invalidate older values, journal the key. */
function fenceLateCommit<R extends { version: Version }>(ctx: EngineContext, step: WriteStep<R>, version: unknown): void {
  if (typeof version !== 'number' || !Number.isSafeInteger(version) || version < 1) return;
  // Called from a promise callback: a store that throws at once (a closed entity store does) must
  // not turn into an unhandled rejection, which ends the process.
  void Promise.resolve()
    .then(() => ctx.store.appendJournal(ctx.namespace, step.key, version, 'repair'))
    .catch(() => undefined);
  void Promise.resolve()
    .then(() => ctx.cache.invalidateOlder(step.cacheKey, version))
    .catch(() => undefined); // the repair row replays it
}

/** A write whose outcome the store settles later (StoreOutcomeUnknownError.settled): fenced once settled. */
function fenceOnceSettled<R extends { version: Version }>(ctx: EngineContext, step: WriteStep<R>, lost: unknown): void {
  const settled = lost instanceof StoreOutcomeUnknownError ? lost.settled : undefined;
  // Settled or not (the store gave up asking), the fence does no harm: a removed value is filled again.
  void settled?.then(() => fenceLateCommit(ctx, step, ANY_VERSION));
}

/**
 * A caller's step without a lease may have committed a version we cannot know: remove whatever the
 * key holds, now and again when the journal is replayed (best effort: the cache is failing already).
 */
async function fenceUnknownVersion<R extends { version: Version }>(ctx: EngineContext, step: WriteStep<R>, deadline: Deadline): Promise<void> {
  await appendRepair(ctx, step.key, ANY_VERSION, deadline);
  await Promise.resolve()
    .then(() => ctx.cache.invalidateOlder(step.cacheKey, ANY_VERSION))
    .catch(() => undefined);
}
