// A prepared statement keeps the result columns it was parsed with: once its table's columns change,
// PostgreSQL answers its executions `ERROR 0A000 cached plan must not change result type`. A cached
// answer, filled by a statement parsed later, has the new columns; served to a statement parsed before,
// it gave rows that do not match what that statement describes (and where PostgreSQL sends the error).
// So every answer records the definition of its table's columns in the fill's snapshot, and a read that
// uses a statement parsed in an earlier batch (a named one, or the unnamed one without its Parse) is
// served from the cache only when an execution of that same statement, by a fill in this session,
// succeeded under that same definition (then its columns are the answer's). Otherwise the read runs on
// PostgreSQL (read-path.ts: a fill that fills nothing), which also notes the definition if it succeeds.
import type { PlannedRead } from './batch.js';
import type { SessionState } from './state.js';

/**
 * An SQL expression: a hash of the columns of the table whose oid is `tableOid` (names, types, typmods,
 * collations, dropped ones), in an unambiguous text: an array of rows, whose output quotes a name
 * holding a comma or a colon (joined with separators, a column named "price:701:-1:f,6:x" made two
 * different tables hash alike). A collation change alone makes PostgreSQL refuse a statement prepared
 * before it (0A000), so it is part of the definition.
 */
export function tableDefinitionSql(tableOid: string): string {
  return `(SELECT pg_catalog.md5(pg_catalog.array_agg(ROW(a.attnum, a.attname, a.atttypid, a.atttypmod, a.attcollation, a.attisdropped) ORDER BY a.attnum)::pg_catalog.text)
    FROM pg_catalog.pg_attribute a WHERE a.attrelid OPERATOR(pg_catalog.=) ${tableOid} AND a.attnum OPERATOR(pg_catalog.>) 0)`;
}

/** Whether the cached answer (filled under `definition`) has the columns of the statement the read uses. */
export function answerFitsStatement(state: SessionState, read: PlannedRead, definition: string | undefined): boolean {
  if (read.statement === undefined) return true; // parsed in this very batch: the table's columns now
  return definition !== undefined && state.verifiedStatements.get(read.statement) === definition;
}

/** A fill (or a read run on PostgreSQL to check) of the statement succeeded under `definition`. */
export function noteStatementRan(state: SessionState, read: PlannedRead, definition: string | null | undefined): void {
  if (read.statement === undefined || definition === null || definition === undefined) return;
  if (state.verifiedStatements.size >= MAX_VERIFIED && !state.verifiedStatements.has(read.statement)) state.verifiedStatements.clear();
  state.verifiedStatements.set(read.statement, definition);
}

/** The session's statement of that name was parsed again, closed or deallocated: nothing is known of it. */
export function forgetStatement(state: SessionState, name: string): void {
  if (state.verifiedStatements.size > 0) state.verifiedStatements.delete(name);
}

/** Bounds the map for a client that prepares statements without end (each costs only a check again). */
const MAX_VERIFIED = 10_000;
