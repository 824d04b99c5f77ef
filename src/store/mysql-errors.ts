// MariaDB errors: which came from the server, after which a statement's outcome is unknown (the
// connection was lost or is being ended), and which of Lockstep's statements are simply run again.
interface ServerErrorLike {
  readonly errno: number;
  readonly sqlState: string;
  readonly fatal?: boolean;
}

/** An error packet the server sent (mysql2 keeps code, errno, sqlState and sqlMessage on it). */
export function isServerError(error: unknown): error is ServerErrorLike {
  const e = error as Partial<ServerErrorLike> | null;
  return typeof e === 'object' && e !== null && typeof e.errno === 'number' && typeof e.sqlState === 'string';
}

/** ER_CONNECTION_KILLED, ER_SERVER_SHUTDOWN: the server ended the connection or is going away. */
const CONNECTION_ENDED = new Set([1927, 1053]);

/**
 * Whether a statement's outcome is unknown after this error: the connection was lost (no answer, a
 * fatal error) or the server is ending it. Any other error the server sent (a duplicate key, a
 * deadlock, a statement timeout …) rolled the statement, and so its autocommit transaction, back.
 */
export function outcomeUnknown(error: unknown): boolean {
  if (!isServerError(error)) return true;
  return error.fatal === true || CONNECTION_ENDED.has(error.errno);
}

/** Errors after which Lockstep's statement is simply run again: nothing of it was committed. */
const ER_DUP_ENTRY = 1062;
const ER_LOCK_DEADLOCK = 1213;
export const retryable = (error: unknown) => isServerError(error) && !error.fatal && (error.errno === ER_DUP_ENTRY || error.errno === ER_LOCK_DEADLOCK);
export const MAX_ATTEMPTS = 8;
