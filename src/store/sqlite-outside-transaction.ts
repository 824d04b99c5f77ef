// Lockstep's statements never run inside a transaction someone else opened on a better-sqlite3
// connection it shares (an ORM's transaction, the application's BEGIN): a write would be a savepoint
// of it, published before it commits or rolls back; a read or a fill would see its uncommitted rows;
// a journal read would pass over ids that a rollback frees for the next commit. So a caller waits
// until the connection is outside any transaction (polled: the driver has no event for it), at most
// `waitMs`, then refuses. Between the wait's end and the caller's statement there is no await, so no
// transaction can open in between.
import type Database from 'better-sqlite3';

/** Resolves with the milliseconds waited once `db` is outside any transaction; rejects with `refuse()` after `waitMs`. */
export async function outsideTransaction(db: Database.Database, waitMs: number, refuse: () => Error): Promise<number> {
  const started = performance.now();
  while (db.inTransaction) {
    if (performance.now() - started >= waitMs) throw refuse();
    await new Promise((resolve) => setTimeout(resolve, 1));
  }
  return performance.now() - started;
}
