// A checked-out pg connection with the key/value store's client-side deadlines (client-timeouts.ts),
// for the stores that run their own statements on a pool (the entity stores): the connection is
// handed out within `ms`, and each query answers within `ms`, or the connection is destroyed (it
// may be mid-statement) and the query fails as pg's query_timeout fails ("Query read timeout").
// Without them a call stuck on a silent connection keeps it checked out for as long as the silence
// lasts; once the old connections are lost for good (a host that died, an address a failover
// moved: no FIN or RST ever comes), a pool whose every connection is stuck never serves again.
import { settleWithin } from '../timeout.js';
import { connectWithin } from './client-timeouts.js';
import type { PostgresClient, PostgresPool } from './postgres-client.js';
import { connectListened } from './postgres-connection-errors.js';

/**
 * A COMMIT is waited for without a client-side deadline: a connection given up on is ended
 * gracefully, after the COMMIT already sent, so a COMMIT the network held back would still land,
 * with no confirmation left to reach the engine (which fences a commit confirmed after its lease).
 * The engine's own deadline still answers the caller in time (outcome unknown). Its query_timeout
 * is the longest a timer takes (~24.8 days), not 0: pg reads 0 as "not given" and falls back to the
 * pool's own query_timeout, which would give the COMMIT up after all.
 */
export const WAIT_FOR_COMMIT = { text: 'COMMIT', query_timeout: 2_147_483_647 } as const;

/**
 * A connection of `pool` within `ms`, whose queries each answer within `ms`, or within their own
 * `query_timeout` when they give one (a DDL statement that may wait for a lock; none for WAIT_FOR_COMMIT); release() is idempotent.
 */
export async function checkoutWithin(pool: PostgresPool, ms: number): Promise<PostgresClient> {
  return deadlined(await connectWithin('PostgreSQL', () => connectListened(pool), ms, (late) => late.release(true)), ms);
}

function deadlined(client: PostgresClient, ms: number): PostgresClient {
  let released = false;
  const release = (destroy?: boolean | Error): void => {
    if (released) return;
    released = true;
    client.release(destroy);
  };
  const readTimeout = (): Error => {
    release(true);
    return new Error('Query read timeout');
  };
  // Every argument is passed on: an ORM's driver calls query(config, values).
  const query = (...args: unknown[]) => {
    const answer = (client.query as (...a: unknown[]) => Promise<never>)(...args);
    const own = (args[0] as { query_timeout?: number } | null)?.query_timeout;
    // A COMMIT (WAIT_FOR_COMMIT) is waited for until the server or the kernel answers.
    return own === WAIT_FOR_COMMIT.query_timeout ? answer : settleWithin(answer, own ?? ms, readTimeout);
  };
  return { query, release, on: (event: never, listener: never) => client.on(event, listener) } as PostgresClient;
}
