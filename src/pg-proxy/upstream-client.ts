// The proxy's short-lived connections to PostgreSQL (the install at start, `lockstep audit
// --pg-proxy`): each waits a bounded time for its connection and for every query, so an upstream
// that accepts and never answers (a partition, an address a failover moved) fails them with an
// error instead of hanging them forever, and each is ended even when its socket hangs.
import type { PgConnection } from './upstream-tls.js';
import { pg, type PgClient } from './pg-driver.js';

/** How long such a connection waits to be set up (pg's connectionTimeoutMillis). */
export const UPSTREAM_CONNECT_MS = 10_000;

/** A connected client, within UPSTREAM_CONNECT_MS, whose every query gives up after `queryMs` ("Query read timeout"). */
export async function connectUpstream(config: PgConnection | { readonly connectionString: string }, queryMs: number): Promise<PgClient> {
  const client = new pg.Client({ ...config, connectionTimeoutMillis: UPSTREAM_CONNECT_MS, query_timeout: queryMs });
  client.on('error', () => undefined); // a lost connection fails the next query, which rejects
  try {
    await client.connect();
  } catch (error) {
    drop(client);
    // pg says only "timeout expired" (or "Connection terminated due to connection timeout").
    if (error instanceof Error && !('severity' in error) && /timeout/i.test(error.message)) {
      throw new Error(`PostgreSQL did not complete the connection within ${UPSTREAM_CONNECT_MS} ms (${error.message})`, { cause: error });
    }
    throw error;
  }
  return client;
}

/** Ends a client now, even one whose socket hangs (end() alone waits for the server's goodbye). */
export function drop(c: PgClient): void {
  void c.end().catch(() => undefined);
  (c as unknown as { connection?: { stream?: { destroy(): void } } }).connection?.stream?.destroy();
}
