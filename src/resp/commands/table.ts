// The command table and its dispatcher: the name is looked up, the arity and the AUTH rule checked
// (as Redis does, before the command runs), then the handler runs; anything else is Redis' own
// "unknown command" error.
import { authRequired, noAuth } from '../access.js';
import { CommandError, wrongArity } from '../errors.js';
import type { Reply } from '../replies.js';
import { connectionCommands } from './connection.js';
import type { CommandContext, CommandSpec } from './context.js';
import { keyspaceCommands } from './keyspace.js';
import { serverCommands } from './server.js';
import { refusedMultiReply, TRANSACTION_COMMANDS } from '../refused-multi.js';

function buildTable(): ReadonlyMap<string, CommandSpec> {
  const table = new Map<string, CommandSpec>();
  for (const spec of [...keyspaceCommands, ...connectionCommands]) table.set(spec.name, spec);
  for (const spec of serverCommands(table)) table.set(spec.name, spec);
  return table;
}

export const COMMANDS: ReadonlyMap<string, CommandSpec> = buildTable();

/** A command's name as the table keys it. */
export const commandName = (args: readonly Buffer[]): string => args[0]!.toString('latin1').toLowerCase();

/** Runs one command; throws CommandError or whatever the engine threw (the caller maps it to a reply). */
export function dispatch(ctx: CommandContext, args: readonly Buffer[]): Reply | Promise<Reply> {
  const name = commandName(args);
  const spec = COMMANDS.get(name);
  if (spec === undefined && !TRANSACTION_COMMANDS.has(name)) throw unknownCommand(args);
  if (spec !== undefined && (spec.arity > 0 ? args.length !== spec.arity : args.length < -spec.arity)) throw wrongArity(name);
  if (!spec?.noAuth && ctx.session.principal === undefined && authRequired(ctx.options)) throw noAuth();
  // MULTI, EXEC, DISCARD and what a refused MULTI holds, once the AUTH rule passed (as Redis checks it before queuing).
  const transaction = refusedMultiReply(ctx.session, name);
  if (transaction !== undefined) return transaction;
  ctx.session.lastCommand = name;
  return spec!.run(ctx, args);
}

/** Redis' wording: `unknown command 'x', with args beginning with: 'a' 'b' ` (at most ~128 characters of arguments). */
function unknownCommand(args: readonly Buffer[]): CommandError {
  let listed = '';
  for (let i = 1; i < args.length && listed.length < 128; i++) listed += `'${args[i]!.toString('utf8').slice(0, 128 - listed.length)}' `;
  return new CommandError(`ERR unknown command '${args[0]!.toString('utf8').slice(0, 128)}', with args beginning with: ${listed}`);
}
