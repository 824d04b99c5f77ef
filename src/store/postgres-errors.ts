// PostgreSQL errors: which came from the server (by shape, so another copy of pg works too) and
// after which the outcome of a statement is unknown (the connection was lost).
interface DatabaseErrorLike {
  readonly code: string;
  readonly severity?: string;
}

/** An error the server sent (pg's DatabaseError), recognised by shape so another copy of pg works too. */
export function isDatabaseError(error: unknown): error is DatabaseErrorLike {
  const e = error as Partial<DatabaseErrorLike> | null;
  return typeof e === 'object' && e !== null && typeof e.code === 'string' && /^[0-9A-Z]{5}$/.test(e.code) && 'severity' in e;
}

/**
 * Whether a statement's outcome is unknown after this error: the connection was lost (no answer, or
 * a FATAL answer such as 57P01 after which the server may still have committed). Any other error the
 * server sent (a constraint, a deadlock, 57014 statement timeout …) rolled the transaction back.
 */
export function outcomeUnknown(error: unknown): boolean {
  if (!isDatabaseError(error)) return true;
  if (error.severity === 'FATAL' || error.severity === 'PANIC') return true;
  return error.code.startsWith('08') || (error.code.startsWith('57P') && error.code !== '57014');
}
