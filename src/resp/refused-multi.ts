// MULTI/EXEC are not supported: the store commits one key per transaction (as for a multi-key
// MSET). Answering MULTI with an error was not enough: client libraries pipeline MULTI, the
// commands and EXEC, then read the replies, so each command of the "transaction" ran on its own
// while the library reported the transaction failed (ioredis and node-redis both wrote every key
// and rejected exec()). And a MULTI answered with an error, then refusing what follows, leaves a
// client that sent MULTI alone (and saw it fail) refused for good. So this is what Redis does with
// a transaction that had an error while queuing: MULTI answers +OK, every command after it is
// refused unrun ("not queued"), EXEC answers EXECABORT, DISCARD +OK. Client and server then agree
// on the state, pipelined or not.
import { CommandError } from './errors.js';
import { OK, type Reply } from './replies.js';
import type { Session } from './session.js';

/** Commands that run inside a refused MULTI: QUIT (the connection may always be left). */
const RUNS_INSIDE: ReadonlySet<string> = new Set(['quit']);

/** The commands this file answers, which the command table does not hold. */
export const TRANSACTION_COMMANDS: ReadonlySet<string> = new Set(['multi', 'exec', 'discard']);

/**
 * Whether the command runs nothing: MULTI, and every command inside a refused MULTI but QUIT. They
 * are not rate limited: a throttled MULTI would not start the refusal (what follows it would run
 * whenever the bucket allowed), and a throttled EXEC would leave the connection inside it.
 */
export function runsNothing(session: Session, name: string): boolean {
  return session.inRefusedMulti ? !RUNS_INSIDE.has(name) : name === 'multi';
}

/**
 * The reply of MULTI, EXEC and DISCARD, and of any command inside a refused MULTI (a CommandError
 * thrown); undefined when the command runs as usual. Called once the command passed the AUTH rule.
 */
export function refusedMultiReply(session: Session, name: string): Reply | undefined {
  if (!session.inRefusedMulti) {
    if (name === 'multi') {
      session.inRefusedMulti = true;
      return OK;
    }
    if (name === 'exec' || name === 'discard') throw new CommandError(`ERR ${name.toUpperCase()} without MULTI`);
    return undefined;
  }
  if (name === 'exec') {
    session.inRefusedMulti = false;
    throw new CommandError('EXECABORT Transaction discarded because of previous errors: Lockstep does not support MULTI, and no command of it ran.');
  }
  if (name === 'discard') {
    session.inRefusedMulti = false;
    return OK;
  }
  if (name === 'multi') throw new CommandError('ERR MULTI calls can not be nested');
  if (RUNS_INSIDE.has(name)) return undefined;
  throw new CommandError('ERR MULTI is not supported by Lockstep (the store commits one key per transaction): command not queued, EXEC will abort');
}
