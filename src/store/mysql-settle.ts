// Settling a write the MariaDB store gave up on (settle-loop.ts says why): mysql2's destroy() ends
// the socket gracefully (stream.end(): what it already sent is still delivered), so the store ends
// the server connection behind it from another one (KILL CONNECTION) and reports it settled once it
// has left information_schema.PROCESSLIST.
//
// Why "gone" means settled: MariaDB's KILL documentation says "If a connection is terminated that
// has an active transaction, the transaction is rolled back", and that KILL only sets a flag that
// the connection's thread acts on; the thread leaves the process list in unlink_thd()
// (sql/mysqld.cc), which runs thd->cleanup(), where an open transaction is ended, before
// server_threads.erase(thd). A statement being committed finishes or rolls back first; bytes that
// arrive after the server closed the socket are refused.
import type { MysqlValue } from './mysql-client.js';
import { createSettleLoop, SETTLE_LIMIT_MS, type SessionSettler } from './settle-loop.js';

/**
 * The server connection behind a mysql2 connection: its id (CONNECTION_ID(), 64 bits, where the
 * handshake's thread id is cut to 32), and its peer as the server sees it (PROCESSLIST.HOST,
 * `address:port`), so that an id handed out again after a server restart is not taken for it.
 */
export interface MysqlSession {
  readonly id: number;
  readonly host: string;
}

/** Run once per connection, when the pool first hands it out: one row, read by sessionFrom. */
export const SESSION_SQL = 'SELECT ID, HOST FROM information_schema.PROCESSLIST WHERE ID = CONNECTION_ID()';

/** The ids of those of a JSON array of ids still in the process list, with their peers: one statement text for any number. */
const FIND_SQL =
  'SELECT ID, HOST FROM information_schema.PROCESSLIST ' +
  "WHERE ID IN (SELECT j.id FROM JSON_TABLE(?, '$[*]' COLUMNS (id BIGINT UNSIGNED PATH '$')) AS j)";

/** A parameter, as any value; still only ever given an id sessionId accepted. */
const KILL_SQL = 'KILL CONNECTION ?';

/**
 * A positive safe integer, or undefined. The id goes to KILL (as a parameter, but a wrong id ends
 * another connection of the same user): nothing that is not plainly a connection id is used.
 */
export function sessionId(value: unknown): number | undefined {
  const id = typeof value === 'number' ? value : typeof value === 'string' && /^[1-9][0-9]{0,15}$/.test(value) ? Number(value) : NaN;
  return Number.isSafeInteger(id) && id > 0 ? id : undefined;
}

export function sessionFrom(row: readonly unknown[] | undefined): MysqlSession | undefined {
  const id = sessionId(row?.[0]);
  const host = row?.[1];
  if (id === undefined || (typeof host !== 'string' && !Buffer.isBuffer(host))) return undefined;
  return { id, host: String(host) };
}

/**
 * One loop for every pending connection (settle-loop.ts): each poll finds those still in the
 * process list and asks the server to end each (a user may KILL its own connections without any
 * privilege); those no longer there are settled.
 */
export function createMysqlSettler(
  /** Runs one prepared statement on a connection of the pool, within the store's deadline: its rows. */
  run: (sql: string, values: MysqlValue[]) => Promise<unknown[][]>,
  limitMs = SETTLE_LIMIT_MS,
  /** Told when polls fail (rate-limited, settle-loop.ts). @default process.emitWarning */
  warn?: (message: string) => void,
): SessionSettler<MysqlSession> {
  const keyOf = (session: MysqlSession) => `${session.id}@${session.host}`;
  return createSettleLoop(
    keyOf,
    async (sessions) => {
      const rows = await run(FIND_SQL, [JSON.stringify(sessions.map((s) => s.id))]);
      const alive = new Set(rows.map((row) => sessionFrom(row)).flatMap((found) => (found === undefined ? [] : [keyOf(found)])));
      for (const session of sessions) {
        if (!alive.has(keyOf(session))) continue;
        // Refused (ER_NO_SUCH_THREAD: it ended since the SELECT) or not: found again if still there.
        await run(KILL_SQL, [session.id]).catch(() => undefined);
      }
      return alive;
    },
    limitMs,
    warn,
  );
}
