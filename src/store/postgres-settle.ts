// Settling a write the PostgreSQL stores gave up on (settle-loop.ts says why): pg ends a connection
// gracefully, after what it already sent, so the store ends the server session that may still run
// the write, from another connection (pg_terminate_backend), and reports it settled once it is gone.
//
// The session is found by an advisory lock on a random key that it took when it was set up (or, for
// a write in a transaction, that the transaction took): only that session can hold it, it is gone
// once the session ends (or the transaction: committed or rolled back), and a session-mode pooler
// resets a server connection (DISCARD ALL releases advisory locks) before another client gets it. A
// pid alone could be reused, or be a pooler's connection serving another client.
import { randomBytes } from 'node:crypto';
import type { PostgresQueryConfig, PostgresQueryResult } from './postgres-client.js';
import { createSettleLoop, SETTLE_LIMIT_MS, type SessionSettler } from './settle-loop.js';

export { settling } from './settle-loop.js';

/** The advisory-lock key (a bigint, as text) held by the session or transaction that may still run a write. */
export type SessionMark = string;

/** A new random key: 62 bits, positive, so that its halves read back plainly from pg_locks. */
export function newSessionMark(): SessionMark {
  return (randomBytes(8).readBigUInt64BE() >> 2n).toString();
}

/**
 * Whether the server granted the mark (pg_try_advisory_lock's answer): a key another session holds
 * is no mark. A boolean, or its text ('t') from a pool whose type parsers were changed.
 */
export function markIf(mark: SessionMark, granted: unknown): SessionMark | undefined {
  return granted === true || granted === 't' ? mark : undefined;
}

/**
 * One loop for every pending mark (settle-loop.ts): each poll asks the server to end the sessions
 * that hold one (pg_terminate_backend; a role may end its own sessions) and reports the marks no
 * longer held. A backend releases its locks only once its transaction has ended, committed or
 * rolled back.
 */
export function createSessionSettler(
  /** Runs a query on a connection of the pool, within the store's deadline. */
  run: (config: PostgresQueryConfig) => Promise<PostgresQueryResult>,
  /** A prepared statement's name for the poll, unique to its text on the pool (none: unnamed). */
  statementName?: string,
  limitMs = SETTLE_LIMIT_MS,
  /** Told when polls fail (rate-limited, settle-loop.ts). @default process.emitWarning */
  warn?: (message: string) => void,
): SessionSettler<SessionMark> {
  const ask = (marks: SessionMark[]): PostgresQueryConfig => ({
    ...(statementName === undefined ? {} : { name: statementName }),
    // A bigint key is held as classid (high 32 bits) and objid (low 32 bits), objsubid 1.
    // pg_terminate_backend in the select list, so that it runs for every holder found.
    text: `SELECT ((l.classid::int8 << 32) | l.objid::int8)::text AS mark, pg_catalog.pg_terminate_backend(l.pid) AS asked
             FROM pg_catalog.pg_locks AS l
            WHERE l.locktype = 'advisory' AND l.objsubid = 1 AND l.granted
              AND l.database = (SELECT oid FROM pg_catalog.pg_database WHERE datname = pg_catalog.current_database())
              AND ((l.classid::int8 << 32) | l.objid::int8) = ANY ($1::int8[])`,
    values: [marks],
  });
  return createSettleLoop(
    (mark) => mark,
    async (marks) => new Set((await run(ask(marks))).rows.map((row) => String(row.mark))),
    limitMs,
    warn,
  );
}
