// A pg connection that dies emits 'error' on its client, and an 'error' event without a listener
// ends the process. pg.Pool listens only while a connection is idle; once it hands one out, the
// caller must listen. But the driver parses every message of a socket read in one go: when a backend
// is terminated right after start-up (pg_terminate_backend, a failover), its ReadyForQuery and its
// FATAL error can arrive in one read, and the error is emitted before any code of the caller that
// asked for the connection has run. So each new connection of a pool gets a listener at birth (the
// pool's 'connect' event comes before it is handed out). Nothing is hidden by it: a query in flight
// still fails with the error, and a connection that errored is no longer queryable, so the pool drops
// it when it is released.
import type { PostgresClient, PostgresPool } from './postgres-client.js';

const listened = new WeakSet<object>();
/** Connections given a listener, at birth or at their first checkout. */
const quiet = new WeakSet<object>();

/** Gives every connection the pool opens from now on an 'error' listener (once per pool). */
export function listenToNewConnections(pool: PostgresPool): void {
  if (typeof pool.on !== 'function' || listened.has(pool)) return; // a pool-like object without events: its connections are its own
  listened.add(pool);
  pool.on('connect', (client) => {
    quiet.add(client);
    client.on('error', () => undefined);
  });
}

/**
 * A connection of the pool that has an 'error' listener while checked out. A connection the pool
 * opened before listenToNewConnections (your pool, used by your code first) has none: the pool's
 * own listener is removed while a connection is out, and a backend terminated then (during a long
 * DDL lock wait, say) emits 'error' when its socket closes, after the query in flight has failed.
 */
export async function connectListened(pool: PostgresPool): Promise<PostgresClient> {
  listenToNewConnections(pool);
  return quietConnection(await pool.connect());
}

/**
 * Gives a checked-out connection its 'error' listener, once per connection: every store made on the
 * same pool calls this, and each adding its own listener grew the connection's listeners with each
 * store opened (never removed: a pooled connection outlives the stores).
 */
export function quietConnection(client: PostgresClient): PostgresClient {
  if (!quiet.has(client)) {
    quiet.add(client);
    client.on('error', () => undefined); // the query in flight fails with the error; the pool drops the connection
  }
  return client;
}
