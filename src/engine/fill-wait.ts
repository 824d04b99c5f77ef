// Waiting for another instance's fill (issue 13, item 5): a reader whose `get` finds a live fill
// lease held elsewhere asks the cache again, with a growing pause, until the record changes, instead
// of reading the store itself. What the waiter returns always comes from its own `get` (or its own
// store read): a wake-up never carries a value, so a write that voids the lease and is acknowledged
// while it waits wins (docs/protocol.md, "Fill waiters"; docs/model.mjs checks it). The wait is
// bounded by `fillWait`; one wait per key runs per process, and other readers of the key join it.
import { setTimeout as sleep } from 'node:timers/promises';
import type { CacheGetResult } from '../types.js';
import type { EngineContext } from './context.js';
import type { Deadline } from './deadline.js';

/** The wait ran out (the lease holder is slow or gone): read the store, do not fill. */
export const FILL_WAIT_TIMED_OUT = Symbol('fill wait timed out');
export type FillWaitOutcome = CacheGetResult | typeof FILL_WAIT_TIMED_OUT;

/** The first pause between two asks, and the longest: a store read is usually a few ms. */
const FIRST_PAUSE_MS = 1;
const LONGEST_PAUSE_MS = 16;
/** Whether a reader that found another's live fill lease should wait for it. */
export function shouldWaitForFill(ctx: EngineContext, cacheKey: string): boolean {
  return ctx.options.fillWaitMs > 0 && !ctx.fillWaitMemory.recentlyGaveUp(cacheKey);
}

/**
 * Asks the cache again until it answers anything but "another reader is filling": a value, a
 * bypass (a write voided the lease), or a miss with our own token (the lease is gone); or gives up
 * after `fillWait` (never past half of what is left of the read's budget, so the store read after
 * it keeps the other half). Cache errors reject: the caller falls back to the store.
 */
async function waitForFill(ctx: EngineContext, cacheKey: string, deadline: Deadline): Promise<FillWaitOutcome> {
  ctx.counters.fillWaits++;
  const waitMs = Math.min(ctx.options.fillWaitMs, deadline.remaining() / 2);
  const started = performance.now();
  let pause = FIRST_PAUSE_MS;
  for (;;) {
    const left = waitMs - (performance.now() - started);
    if (left <= 0) break;
    await sleep(Math.min(pause, left));
    pause = Math.min(pause * 2, LONGEST_PAUSE_MS);
    const answer = await ctx.cache.get(cacheKey, ctx.options.leaseTtlMs);
    if (answer.kind !== 'miss' || answer.token !== undefined) return answer;
  }
  ctx.counters.fillWaitTimeouts++;
  ctx.fillWaitMemory.gaveUp(cacheKey, ctx.options.leaseTtlMs);
  return FILL_WAIT_TIMED_OUT;
}

/** Starts the wait and registers it as the key's in-process flight, so other readers of the key join it. */
export function startFillWait(ctx: EngineContext, cacheKey: string, deadline: Deadline): Promise<FillWaitOutcome> {
  const wait = waitForFill(ctx, cacheKey, deadline);
  ctx.flights.set(cacheKey, wait);
  const forget = (): void => {
    if (ctx.flights.get(cacheKey) === wait) ctx.flights.delete(cacheKey);
  };
  wait.then(forget, forget);
  return wait;
}

