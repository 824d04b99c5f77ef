// The client-side deadline of one engine operation. Every store wait of a request (the read, the
// commit, the journal's readiness, a repair row) ends by `leaseTtl` after the operation began,
// whatever the store does; cache calls carry their adapter's own deadline (Redis: commandTimeout).
// So a request answers within leaseTtl + 2 × the cache's command timeout (docs/operations.md).
// A call given up on is abandoned, not cancelled: the adapter's own timeouts end it (and destroy
// its connection) later. The waits share one timer per budget length (deadline-queue.ts): a timer
// each cost about a third of an in-process store read.

import { settleWithin } from '../timeout.js';
import { raceUntil } from './deadline-queue.js';

export interface Deadline {
  /** Milliseconds left, never below 0. */
  remaining(): number;
  /**
   * Settles like `work`, or rejects with `onTimeout()` once `ms` (default: what is left) have passed.
   * `onError`, when given, maps what `work` rejects with.
   */
  race<T>(work: Promise<T>, onTimeout: () => Error, ms?: number, onError?: (error: unknown) => unknown): Promise<T>;
}

const performanceNow = (): number => performance.now();

class RequestDeadline implements Deadline {
  constructor(
    private readonly budgetMs: number,
    private readonly due: number,
  ) {}

  remaining(): number {
    return Math.max(0, this.due - performance.now());
  }

  race<T>(work: Promise<T>, onTimeout: () => Error, ms?: number, onError?: (error: unknown) => unknown): Promise<T> {
    return raceUntil(work, this.budgetMs, ms === undefined ? this.due : performance.now() + ms, onTimeout, onError);
  }
}

/** A deadline `budgetMs` from now. A clock of the caller's own (tests) gets a timer per wait instead. */
export function startDeadline(budgetMs: number, now: () => number = performanceNow): Deadline {
  if (now === performanceNow) return new RequestDeadline(budgetMs, performance.now() + budgetMs);
  const due = now() + budgetMs;
  const remaining = (): number => Math.max(0, due - now());
  return {
    remaining,
    race<T>(work: Promise<T>, onTimeout: () => Error, ms = remaining(), onError?: (error: unknown) => unknown): Promise<T> {
      return settleWithin(onError === undefined ? work : work.catch((error: unknown) => Promise.reject(onError(error))), ms, onTimeout);
    },
  };
}

/** Calls `work` (a store call that may throw synchronously) and races it against the deadline. */
export function within<T>(deadline: Deadline, work: () => Promise<T>, onTimeout: () => Error, ms?: number, onError?: (error: unknown) => unknown): Promise<T> {
  let started: Promise<T>;
  try {
    started = work();
  } catch (error) {
    started = Promise.reject(error);
  }
  return deadline.race(started, onTimeout, ms, onError);
}
