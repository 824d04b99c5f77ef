// Lockstep's statements never run inside a transaction someone else opened on a better-sqlite3
// connection it shares (an ORM's transaction, the application's BEGIN): a write would be a savepoint
// of it, published before it commits or rolls back; a read or a fill would see its uncommitted rows;
// a journal read would pass over ids that a rollback frees for the next commit. So the statement runs
// once the connection is outside any transaction (polled: the driver has no event for it), at most
// `waitMs` from the call, or is refused.
import type Database from 'better-sqlite3';

/** What a wait that ended past its bound does (the application held the event loop, then left its transaction). */
export type LateEnd =
  /** Runs anyway: a read, or a journal append whose loss would be worse than its lateness. */
  | 'run'
  /** Refuses: a lease-bound write run then would commit past its deadline, so past its lease. */
  | 'refuse';

/**
 * Runs `run` (synchronous statements, given the milliseconds waited) as soon as `db` is outside any
 * transaction, within `waitMs` of the call; rejects with `refuse()` otherwise. The check and `run` are one synchronous step:
 * with an await between them, a continuation queued meanwhile could open a transaction first.
 */
export async function whenOutsideTransaction<T>(db: Database.Database, waitMs: number, lateEnd: LateEnd, refuse: () => Error, run: (waitedMs: number) => T): Promise<T> {
  if (!db.inTransaction) return run(0);
  const started = performance.now();
  while (db.inTransaction) {
    if (performance.now() - started >= waitMs) throw refuse();
    await new Promise((resolve) => setTimeout(resolve, 1));
  }
  const waited = performance.now() - started;
  if (lateEnd === 'refuse' && waited >= waitMs) throw refuse();
  return run(waited);
}
