// Client-side deadlines of the SQL stores. The server's statement timeout ends a statement the
// server is running; these end the waits it cannot see: a connection that is not handed out or not
// set up (pool exhausted, a server that accepts and then stalls) and an answer that never comes.
// A connection given up on is destroyed, never returned to the pool: it may still be mid-statement.
import { StoreTimeoutError } from '../errors.js';
import { settleWithin } from '../timeout.js';

/** How much longer than the server's own timeout the client waits for an answer. */
export const CLIENT_MARGIN_MS = 1000;

/** Raised when a connection was not handed out in time. */
export class ConnectTimeoutError extends Error {
  constructor(readonly store: string, readonly ms: number) {
    super(`${store}: no connection within ${ms} ms`);
    this.name = 'ConnectTimeoutError';
  }
}

/**
 * A connection from `acquire`, or ConnectTimeoutError after `ms`. A connection that arrives after
 * the deadline is handed to `discard` (destroyed: its setup may be half done).
 */
export function connectWithin<C>(store: string, acquire: () => Promise<C>, ms: number, discard: (connection: C) => void): Promise<C> {
  return settleWithin(acquire(), ms, () => new ConnectTimeoutError(store, ms), discard);
}

/**
 * Settles like `work`, or after `ms` calls `destroy` (the connection may be mid-statement) and
 * rejects with a PROTOCOL_SEQUENCE_TIMEOUT error, as mysql2's own statement timeout does.
 */
export function connectionDeadline<T>(work: Promise<T>, ms: number, destroy: () => void): Promise<T> {
  // mysql2's own timer, when it runs, fires first: ours is the backstop, 50 ms later.
  return settleWithin(work, ms + 50, () => {
    destroy();
    return Object.assign(new Error('Query inactivity timeout'), { code: 'PROTOCOL_SEQUENCE_TIMEOUT' });
  });
}

/** Whether an error is a client-side timeout: ours, pg's query_timeout, mysql2's query or connect timeout. */
export function isClientTimeout(error: unknown): boolean {
  if (error instanceof ConnectTimeoutError) return true;
  const e = error as { message?: unknown; code?: unknown } | null;
  if (typeof e !== 'object' || e === null) return false;
  return (
    e.message === 'Query read timeout' ||
    e.code === 'PROTOCOL_SEQUENCE_TIMEOUT' ||
    e.code === 'ETIMEDOUT' ||
    (typeof e.message === 'string' && e.message.startsWith('timeout exceeded when trying to connect'))
  );
}

/** A read's client-side timeout as the engine reports it (503 E_STORE_TIMEOUT). */
export function readTimedOut(store: string, error: unknown): StoreTimeoutError {
  return new StoreTimeoutError(`${store} did not answer in time: ${(error as Error)?.message ?? String(error)}`, { cause: error });
}
