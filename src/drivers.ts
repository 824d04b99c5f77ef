// Database and cache drivers are optional peer dependencies: a SQLite + memory app never
// downloads pg, mysql2 or redis. Each adapter module loads its driver here, at its own import, so a
// missing driver fails that import with one line naming the package and the command to install it.
import { MissingDriverError } from './errors.js';

/** The optional drivers (and the proxy's SQL parser), by the package name users install. */
export type OptionalDriver = 'pg' | 'mysql2' | 'redis' | 'libpg-query';

/** True when `error` says that `packageName` itself (not something inside it) could not be found. */
function isMissing(error: unknown, packageName: string): boolean {
  const { code, message } = (error ?? {}) as { code?: unknown; message?: unknown };
  if (code !== 'ERR_MODULE_NOT_FOUND' && code !== 'MODULE_NOT_FOUND') return false;
  return typeof message === 'string' && message.includes(`'${packageName}'`);
}

/**
 * Imports an optional driver for `entry` (the Lockstep module that needs it, for the message).
 * `load` is the literal `import('…')` so bundlers and type-checkers still see the dependency.
 */
export async function loadDriver<T>(packageName: OptionalDriver, entry: string, load: () => Promise<T>): Promise<T> {
  try {
    return await load();
  } catch (error) {
    if (isMissing(error, packageName)) throw new MissingDriverError(packageName, entry, error);
    throw error;
  }
}
