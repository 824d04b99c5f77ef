// Which cached answers proxies sharing one cache (Redis) may share: those of one database of one
// cluster, under one proxy schema. A database's name is not enough: two clusters (two services on
// one Redis) may each have `postgres.public.users`, and a proxy would serve the other cluster's rows;
// and each proxy schema (--schema) has its own version sequence, so an answer another schema's proxy
// filled carries versions this proxy's fence cannot compare with (its invalidateOlder left an answer
// of a higher version in place). So keys and the drainer's saved position carry the cluster's system
// identifier, the database's oid and the schema. (A physical copy of the cluster, a replica or a
// clone, has the same identifier: it is the same data.)
import type { PgClientBase } from './pg-driver.js';
import type { PgConnection } from './upstream-tls.js';
import { connectUpstream, drop } from './upstream-client.js';

/** `<database>:<system identifier>.<database oid>.<proxy schema>`: what every key of this proxy starts with, after `pgproxy:`. */
export async function readCacheScope(client: PgClientBase, database: string, schema: string): Promise<string> {
  const { rows } = await client.query<{ system: string; db: string }>(
    `SELECT (SELECT system_identifier FROM pg_catalog.pg_control_system())::text AS system,
            (SELECT oid FROM pg_catalog.pg_database WHERE datname OPERATOR(pg_catalog.=) pg_catalog.current_database())::text AS db`,
  );
  return `${database}:${rows[0]!.system}.${rows[0]!.db}.${schema}`;
}

/** readCacheScope on a connection of its own (the proxy's start). */
export async function cacheScopeAt(upstream: PgConnection, database: string, schema: string): Promise<string> {
  const client = await connectUpstream(upstream, SCOPE_QUERY_MS);
  try {
    return await readCacheScope(client, database, schema);
  } finally {
    drop(client);
  }
}

const SCOPE_QUERY_MS = 30_000;
