// Settling a write the PostgreSQL store gave up on (settle-loop.ts says why): pg ends a connection
// gracefully, after what it already sent, so the store ends the server session behind it from
// another connection (pg_terminate_backend) and reports it settled once it is gone.
import type { PostgresQueryConfig, PostgresQueryResult } from './postgres-client.js';
import { createSettleLoop, SETTLE_LIMIT_MS, type SessionSettler } from './settle-loop.js';

/** The server session behind a connection: its pid, and its start (µs since the epoch), so that a reused pid is not taken for it. */
export interface ServerSession {
  readonly pid: number;
  readonly startedUs: string;
}

/** Columns a connection's setup query selects to learn its server session (sessionFrom reads them). */
export const SESSION_COLUMNS =
  'pg_backend_pid() AS session_pid, ' +
  '(SELECT (extract(epoch FROM backend_start) * 1000000)::bigint FROM pg_stat_get_activity(pg_backend_pid())) AS session_started';

export function sessionFrom(row: Record<string, unknown> | undefined): ServerSession | undefined {
  const pid = Number(row?.session_pid);
  const started = row?.session_started;
  if (!Number.isSafeInteger(pid) || pid <= 0 || (typeof started !== 'string' && typeof started !== 'number')) return undefined;
  return { pid, startedUs: String(started) };
}

/**
 * One loop for every pending session: each poll asks the server to end the sessions still there
 * (pg_terminate_backend; the store's own role may end its own sessions) and reports those no
 * longer there. A backend leaves pg_stat_activity only after its transaction ended (committed or
 * rolled back), so "gone" means settled.
 */
export function createSessionSettler(
  /** Runs a query on a connection of the pool, within the store's deadline. */
  run: (config: PostgresQueryConfig) => Promise<PostgresQueryResult>,
  /** A prepared statement's name for the poll, unique to its text on the pool (none: unnamed). */
  statementName?: string,
  limitMs = SETTLE_LIMIT_MS,
): SessionSettler<ServerSession> {
  const terminate = (sessions: ServerSession[]): PostgresQueryConfig => ({
    ...(statementName === undefined ? {} : { name: statementName }),
    // In the select list, so that it runs for every row found (the planner folds `f() OR true` away).
    text: `SELECT a.pid, pg_terminate_backend(a.pid) AS asked FROM unnest($1::int[], $2::bigint[]) AS s(pid, started)
             JOIN pg_stat_get_activity(NULL) AS a ON a.pid = s.pid AND (extract(epoch FROM a.backend_start) * 1000000)::bigint = s.started`,
    values: [sessions.map((s) => s.pid), sessions.map((s) => s.startedUs)],
  });
  const keyOf = (session: ServerSession) => `${session.pid}:${session.startedUs}`;
  return createSettleLoop(
    keyOf,
    async (sessions) => {
      const { rows } = await run(terminate(sessions));
      const alive = new Set(rows.map((row) => Number(row.pid)));
      return new Set(sessions.filter((session) => alive.has(session.pid)).map(keyOf));
    },
    limitMs,
  );
}

export { settling, type SessionSettler } from './settle-loop.js';
