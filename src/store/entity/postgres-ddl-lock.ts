// The schema's DDL advisory lock, taken by the entity helpers (addVersionColumn, installEntityTriggers,
// dropEntityTriggers) inside their transaction. Its wait is bounded: another session that holds it
// (a migration whose ALTER TABLE waits for the table, a stuck process) would otherwise hold every
// entity store's open forever. The error names the holder, so an operator can find it.
import { setTimeout as sleep } from 'node:timers/promises';
import { InvalidOptionError, StoreWriteError } from '../../errors.js';
import type { PostgresClient } from '../postgres.js';
import { advisoryKey } from '../postgres-schema.js';

/** How long the helpers wait for the lock unless told otherwise (the key/value store's DDL waits 60 s). */
export const DDL_LOCK_WAIT_MS = 30_000;
const POLL_MS = 50;

/** Takes the lock in the client's open transaction, polling at most `waitMs`; throws StoreWriteError naming the holder. */
export async function takeDdlLock(client: PostgresClient, schema: string, waitMs: number = DDL_LOCK_WAIT_MS): Promise<void> {
  // NaN or Infinity would poll forever: the wait is bounded or refused.
  if (!Number.isSafeInteger(waitMs) || waitMs < 0) throw new InvalidOptionError(`ddlLockWaitMs must be a whole number of ms >= 0 (got ${String(waitMs)})`);
  const key = advisoryKey(`lockstep:ddl:${schema}`);
  const deadline = Date.now() + waitMs;
  for (;;) {
    const { rows } = await client.query({ text: 'SELECT pg_catalog.pg_try_advisory_xact_lock($1::bigint) AS got', values: [key] });
    if (rows[0]?.got === true) return;
    if (Date.now() >= deadline) break;
    await sleep(Math.min(POLL_MS, Math.max(1, deadline - Date.now())));
  }
  // A bigint advisory key is held as classid = its high 32 bits, objid = its low 32 bits, objsubid = 1.
  const { rows } = await client.query({
    text: `SELECT a.pid, a.application_name, a.usename, a.state, a.xact_start, pg_catalog.left(a.query, 200) AS query
      FROM pg_catalog.pg_locks l JOIN pg_catalog.pg_stat_activity a ON a.pid = l.pid
      WHERE l.locktype = 'advisory' AND l.granted AND l.objsubid = 1
        AND l.classid::bigint = (($1::bigint >> 32) & 4294967295) AND l.objid::bigint = ($1::bigint & 4294967295)`,
    values: [key],
  });
  const holder = rows[0];
  const who =
    holder === undefined
      ? 'a session that released it meanwhile or that this role cannot see'
      : `pid ${String(holder.pid)} (user ${JSON.stringify(holder.usename)}, application_name ${JSON.stringify(holder.application_name)}, ${String(holder.state)}, transaction since ${holder.xact_start instanceof Date ? holder.xact_start.toISOString() : String(holder.xact_start)}, last query ${JSON.stringify(holder.query)})`;
  throw new StoreWriteError(
    `waited ${waitMs} ms for Lockstep's DDL lock of schema ${JSON.stringify(schema)} (advisory lock ${key}), held by ${who}: nothing was changed; end that session's transaction (or pg_terminate_backend it) and try again`,
  );
}
