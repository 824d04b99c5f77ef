// Which incarnation of a PostgreSQL cluster answers: its system identifier (a restore into another
// cluster, a dump loaded into a new one) and its timeline (every promotion of a replica, every
// point-in-time recovery starts a new one). A store gone back to an older state answers another one.
// One definition for the store adapter (StoreAdapter.incarnation) and the pg-proxy's bypass drainer.
import { isDatabaseError } from './postgres-errors.js';

/**
 * The two columns, `system` and `timeline` (the first 8 hex digits of the current WAL file's name),
 * as select-list items: a query may carry them beside its own columns. On a server in recovery (a
 * standby) pg_walfile_name fails (55000): no incarnation until it is promoted.
 */
export const INCARNATION_COLUMNS = `(SELECT system_identifier FROM pg_catalog.pg_control_system())::text AS system,
  pg_catalog.substr(pg_catalog.pg_walfile_name(pg_catalog.pg_current_wal_lsn()), 1, 8) AS timeline`;

export const INCARNATION_SQL = `SELECT ${INCARNATION_COLUMNS}`;

/** The incarnation's text from a row of INCARNATION_COLUMNS. */
export function incarnationText(row: { readonly system: unknown; readonly timeline: unknown }): string {
  return `postgres:${String(row.system)}/${String(row.timeline)}`;
}

/**
 * The server refused the incarnation's functions (42501 privilege, 0A000 not supported, 42883
 * missing): it cannot tell, and nothing is checked (not a constant: an instance whose role may ask
 * would then see another incarnation than this one's, and flush at every start).
 */
export function incarnationRefused(error: unknown): boolean {
  return isDatabaseError(error) && (error.code === '42501' || error.code === '0A000' || error.code === '42883');
}
