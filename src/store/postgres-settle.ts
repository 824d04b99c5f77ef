// Settling a write the PostgreSQL store gave up on. A write whose answer did not come in time may
// still reach the server later (a partition that heals: TCP delivers what it held back) or still
// be committing, and then commit with no confirmation left to reach the engine, after the key's
// lease expired and a reader filled the older value. Destroying the connection does not stop it: pg
// ends a connection gracefully, after what it already sent. So the store ends that server session
// itself, from another connection, and says so once the session is gone: from then on nothing of
// the write can land, and the engine fences the key (StoreOutcomeUnknownError.settled).
import type { PostgresQueryConfig, PostgresQueryResult } from './postgres-client.js';

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
 * How long a session is tried for: past it, bytes a network held back can no longer arrive (Linux
 * gives up retransmitting after about 15 minutes, tcp_retries2), and the store stops asking.
 */
export const SETTLE_LIMIT_MS = 15 * 60_000;
/** Sessions waiting to be settled, at most: past it a new one is reported unsettled at once. */
export const MAX_UNSETTLED_SESSIONS = 1_000;
const FIRST_WAIT_MS = 50;
const LONGEST_WAIT_MS = 1_000;

export interface SessionSettler {
  /** Resolves true once `session` has ended, false when the store stopped trying. Never rejects. */
  settle(session: ServerSession): Promise<boolean>;
  /** Stops trying: every pending session is reported unsettled. */
  stop(): void;
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
): SessionSettler {
  const terminate = (sessions: ServerSession[]): PostgresQueryConfig => ({
    ...(statementName === undefined ? {} : { name: statementName }),
    // In the select list, so that it runs for every row found (the planner folds `f() OR true` away).
    text: `SELECT a.pid, pg_terminate_backend(a.pid) AS asked FROM unnest($1::int[], $2::bigint[]) AS s(pid, started)
             JOIN pg_stat_get_activity(NULL) AS a ON a.pid = s.pid AND (extract(epoch FROM a.backend_start) * 1000000)::bigint = s.started`,
    values: [sessions.map((s) => s.pid), sessions.map((s) => s.startedUs)],
  });
  const pending = new Map<string, { session: ServerSession; giveUpAt: number; done: Array<(settled: boolean) => void> }>();
  let timer: NodeJS.Timeout | undefined;
  let polling = false;
  let wait = FIRST_WAIT_MS;
  let stopped = false;

  function schedule(ms: number): void {
    if (timer !== undefined || polling || stopped || pending.size === 0) return;
    timer = setTimeout(() => {
      timer = undefined;
      void poll();
    }, ms);
    timer.unref(); // a settlement in progress does not keep the process alive
  }

  function finish(id: string, settled: boolean): void {
    const entry = pending.get(id);
    if (entry === undefined) return;
    pending.delete(id);
    for (const done of entry.done) done(settled);
  }

  async function poll(): Promise<void> {
    polling = true;
    const asked = [...pending.entries()];
    try {
      const { rows } = await run(terminate(asked.map(([, entry]) => entry.session)));
      const alive = new Set(rows.map((row) => Number(row.pid)));
      for (const [id, entry] of asked) if (!alive.has(entry.session.pid)) finish(id, true);
    } catch {
      // the server is not reachable yet: ask again
    }
    polling = false;
    const now = performance.now();
    for (const [id, entry] of [...pending]) if (now >= entry.giveUpAt) finish(id, false);
    wait = Math.min(wait * 2, LONGEST_WAIT_MS);
    schedule(wait);
  }

  return {
    settle(session) {
      if (stopped || pending.size >= MAX_UNSETTLED_SESSIONS) return Promise.resolve(false);
      const id = `${session.pid}:${session.startedUs}`;
      return new Promise<boolean>((resolve) => {
        const entry = pending.get(id) ?? { session, giveUpAt: performance.now() + limitMs, done: [] };
        entry.done.push(resolve);
        pending.set(id, entry);
        wait = FIRST_WAIT_MS;
        schedule(0);
      });
    },
    stop() {
      stopped = true;
      if (timer !== undefined) clearTimeout(timer);
      timer = undefined;
      for (const id of [...pending.keys()]) finish(id, false);
    },
  };
}

/** `error`, told when its write is settled (StoreOutcomeUnknownError.settled) if the session behind it is known. */
export function settling<E extends { settled?: Promise<boolean> }>(settler: SessionSettler, error: E, session: ServerSession | undefined): E {
  if (session !== undefined) error.settled = settler.settle(session);
  return error;
}
