// The client-side deadline of one engine operation. Every store wait of a request (the read, the
// commit, the journal's readiness, a repair row) ends by `leaseTtl` after the operation began,
// whatever the store does; cache calls carry their adapter's own deadline (Redis: commandTimeout).
// So a request answers within leaseTtl + 2 × the cache's command timeout (docs/operations.md).
// A call given up on is abandoned, not cancelled: the adapter's own timeouts end it (and destroy
// its connection) later. Store calls are the slow path: one timer each is fine here.

import { settleWithin } from '../timeout.js';

export interface Deadline {
  /** Milliseconds left, never below 0. */
  remaining(): number;
  /** Settles like `work`, or rejects with `onTimeout()` once `ms` (default: what is left) have passed. */
  race<T>(work: Promise<T>, onTimeout: () => Error, ms?: number): Promise<T>;
}

export function startDeadline(budgetMs: number, now: () => number = () => performance.now()): Deadline {
  const due = now() + budgetMs;
  const remaining = (): number => Math.max(0, due - now());
  return {
    remaining,
    race<T>(work: Promise<T>, onTimeout: () => Error, ms = remaining()): Promise<T> {
      return settleWithin(work, ms, onTimeout);
    },
  };
}

/** Calls `work` (a store call that may throw synchronously) and races it against the deadline. */
export function within<T>(deadline: Deadline, work: () => Promise<T>, onTimeout: () => Error, ms?: number): Promise<T> {
  let started: Promise<T>;
  try {
    started = work();
  } catch (error) {
    started = Promise.reject(error);
  }
  return deadline.race(started, onTimeout, ms);
}
