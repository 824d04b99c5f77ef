// Settling a write the PostgreSQL stores gave up on. A write whose answer did not come in time may
// still reach the server later (a partition that heals: TCP delivers what it held back) or still
// be committing, and then commit with no confirmation left to reach the engine, after the key's
// lease expired and a reader filled the older value. Destroying the connection does not stop it: pg
// ends a connection gracefully, after what it already sent. So the store ends the server session
// that may still run it, from another connection, and says so once it is gone: from then on nothing
// of the write can land, and the engine fences the key (StoreOutcomeUnknownError.settled).
//
// The session is found by an advisory lock on a random key that it took when it was set up (or, for
// a write in a transaction, that the transaction took): only that session can hold it, it is gone
// once the session ends (or the transaction: committed or rolled back), and a pooler in front of the
// server that hands the server connection to another client resets it first (DISCARD ALL), so no
// other client's session is ever ended. A pid alone could be reused, or be a pooler's connection.
import { randomBytes } from 'node:crypto';
import type { PostgresQueryConfig, PostgresQueryResult } from './postgres-client.js';

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
 * How long a mark is asked about before the store gives up (the engine then fences anyway). Linux
 * gives up retransmitting what a network held back after about 15.4 minutes (tcp_retries2 = 15),
 * counted from the first transmission; a proxy on the way resends with timers of its own, hence
 * the margin. A write that lands later still is not fenced.
 */
export const SETTLE_LIMIT_MS = 30 * 60_000;
/** Marks waiting to be settled, at most: past it a new one is reported unsettled at once. */
export const MAX_UNSETTLED = 1_000;
const FIRST_WAIT_MS = 100;
const LONGEST_WAIT_MS = 1_000;

export interface SessionSettler {
  /** Resolves true once no session holds `mark`, false when the store stopped asking. Never rejects. */
  settle(mark: SessionMark): Promise<boolean>;
  /** Stops asking: every pending mark is reported unsettled. */
  stop(): void;
}

/**
 * One loop for every pending mark: each poll asks the server to end the sessions that hold one
 * (pg_terminate_backend; a role may end its own sessions) and reports the marks no longer held. A
 * backend releases its locks only once its transaction has ended, committed or rolled back.
 */
export function createSessionSettler(
  /** Runs a query on a connection of the pool, within the store's deadline. */
  run: (config: PostgresQueryConfig) => Promise<PostgresQueryResult>,
  /** A prepared statement's name for the poll, unique to its text on the pool (none: unnamed). */
  statementName?: string,
  limitMs = SETTLE_LIMIT_MS,
): SessionSettler {
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
  const pending = new Map<SessionMark, { giveUpAt: number; done: Array<(settled: boolean) => void> }>();
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

  function finish(mark: SessionMark, settled: boolean): void {
    const entry = pending.get(mark);
    if (entry === undefined) return;
    pending.delete(mark);
    for (const done of entry.done) done(settled);
  }

  async function poll(): Promise<void> {
    polling = true;
    const asked = [...pending.keys()];
    try {
      const { rows } = await run(ask(asked));
      const held = new Set(rows.map((row) => String(row.mark)));
      for (const mark of asked) if (!held.has(mark)) finish(mark, true);
    } catch {
      // the server is not reachable yet: ask again
    }
    polling = false;
    const now = performance.now();
    for (const [mark, entry] of [...pending]) if (now >= entry.giveUpAt) finish(mark, false);
    schedule(wait);
    wait = Math.min(wait * 2, LONGEST_WAIT_MS);
  }

  return {
    settle(mark) {
      if (stopped || (pending.size >= MAX_UNSETTLED && !pending.has(mark))) return Promise.resolve(false);
      return new Promise<boolean>((resolve) => {
        const entry = pending.get(mark) ?? { giveUpAt: performance.now() + limitMs, done: [] };
        entry.done.push(resolve);
        pending.set(mark, entry);
        wait = FIRST_WAIT_MS;
        schedule(0);
      });
    },
    stop() {
      stopped = true;
      if (timer !== undefined) clearTimeout(timer);
      timer = undefined;
      for (const mark of [...pending.keys()]) finish(mark, false);
    },
  };
}

/** `error`, told when its write is settled (StoreOutcomeUnknownError.settled), if a mark names the session that may run it. */
export function settling<E extends { settled?: Promise<boolean> }>(settler: SessionSettler, error: E, mark: SessionMark | undefined): E {
  if (mark !== undefined) error.settled = settler.settle(mark);
  return error;
}
