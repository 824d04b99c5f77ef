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
 * A connection of `pool` within `ms`, whose queries each answer within `ms`, or within their own
 * `query_timeout` when they give one (a DDL statement that may wait for a lock); release() is idempotent.
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
    return settleWithin(answer, own ?? ms, readTimeout);
  };
  const wrapped = { query, release, on: (event: never, listener: never) => client.on(event, listener) } as PostgresClient;
  // The connection's own type parsers (setTypeParser on it), for a statement that parses some types itself (kysely.ts).
  const { getTypeParser } = client as { getTypeParser?: (oid: number, format?: string) => unknown };
  if (typeof getTypeParser === 'function') Object.assign(wrapped, { getTypeParser: getTypeParser.bind(client) });
  return wrapped;
}
