// One transaction on a checked-out connection, ended the way both PostgreSQL stores need: a clean
// failure before COMMIT rolls back and keeps the connection; a lost connection destroys it; and a
// connection lost during COMMIT leaves the outcome unknown (StoreOutcomeUnknownError).
import { StoreOutcomeUnknownError } from '../errors.js';
import type { PostgresClient, PostgresQueryConfig } from './postgres-client.js';
import { outcomeUnknown } from './postgres-errors.js';

export async function inTransaction<R>(
  client: PostgresClient,
  begin: readonly PostgresQueryConfig[],
  work: () => Promise<R>,
  /** Whether the connection was lost with this error. @default outcomeUnknown */
  lostWith: (error: unknown) => boolean = outcomeUnknown,
  /** The COMMIT as sent (a caller may lift its client-side deadline). */
  commit: PostgresQueryConfig = { text: 'COMMIT' },
): Promise<R> {
  let committing = false;
  try {
    for (const statement of begin) await client.query(statement);
    const result = await work();
    committing = true;
    await client.query(commit);
    client.release();
    return result;
  } catch (error) {
    const lost = lostWith(error);
    if (!committing && !lost) {
      try {
        await client.query({ text: 'ROLLBACK' });
        client.release();
      } catch {
        client.release(true);
      }
      throw error;
    }
    client.release(lost ? true : undefined);
    // Before COMMIT was sent, a lost connection means the server rolled back: a clean failure.
    if (committing && lost) {
      throw new StoreOutcomeUnknownError('the connection was lost during COMMIT: the write may or may not have committed', { cause: error });
    }
    throw error;
  }
}
