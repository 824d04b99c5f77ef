// Errors → RESP error replies. Redis' own errors keep Redis' wording (clients and users know them);
// Lockstep's errors are `-LOCKSTEP_<code> <message>` (`-LOCKSTEP_E_STORE_WRITE …`), so that a
// store outage is an error reply a client sees, never a silently accepted write. Anything
// unexpected is `-ERR internal error` with no detail from inside the process.
import { CacheWriteError, LockstepError } from '../errors.js';
import { NotUtf8 } from './key-mapping.js';
import { error, type Reply } from './replies.js';

/** An error whose reply text is final: `-ERR syntax error`, `-NOAUTH …`, `-NOPERM …`. */
export class CommandError extends Error {
  constructor(readonly reply: string) {
    super(reply);
  }
}

export const syntaxError = (): CommandError => new CommandError('ERR syntax error');
export const notInteger = (): CommandError => new CommandError('ERR value is not an integer or out of range');
export const wrongArity = (name: string): CommandError => new CommandError(`ERR wrong number of arguments for '${name}' command`);

export function errorReply(caught: unknown, onUnexpected: (error: unknown) => void): Reply {
  if (caught instanceof CommandError) return error(caught.reply);
  if (caught instanceof NotUtf8) return error(`LOCKSTEP_${caught.what === 'key' ? 'E_INVALID_KEY' : 'E_INVALID_VALUE'} ${caught.message}`);
  if (caught instanceof CacheWriteError) {
    // Policy strict: the store committed; the client must not mistake it for a lost write.
    return error(`LOCKSTEP_${caught.code} committed version ${caught.committedVersion}, but the cache step failed: ${caught.message}`);
  }
  if (caught instanceof LockstepError) return error(`LOCKSTEP_${caught.code} ${caught.message}`);
  onUnexpected(caught);
  return error('ERR internal error');
}
