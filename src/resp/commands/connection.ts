// The handshake and connection commands clients send on their own: PING, ECHO, HELLO, AUTH,
// SELECT 0, CLIENT …, QUIT.
import { authenticate, authRequired } from '../access.js';
import { CommandError, notInteger, syntaxError, wrongArity } from '../errors.js';
import { array, bulk, bulkOrNull, int, map, OK, simple, type Reply } from '../replies.js';
import type { Session } from '../session.js';
import { text, upper, type CommandContext, type CommandSpec } from './context.js';

/** What HELLO and INFO say: the Redis version whose commands this front follows. */
export const REDIS_COMPAT_VERSION = '7.2.0';

function ping(_ctx: CommandContext, args: readonly Buffer[]): Reply {
  if (args.length > 2) throw wrongArity('ping');
  return args.length === 2 ? bulk(args[1]!) : simple('PONG');
}

function auth(ctx: CommandContext, args: readonly Buffer[]): Reply {
  if (args.length > 3) throw syntaxError();
  const [username, password] = args.length === 3 ? [text(args[1]!), text(args[2]!)] : [undefined, text(args[1]!)];
  authenticate(ctx.options, ctx.session, username, password);
  return OK;
}

function hello(ctx: CommandContext, args: readonly Buffer[]): Reply {
  const { session } = ctx;
  let protocol = session.protocol;
  let i = 1;
  if (args.length > 1) {
    const version = args[1]!.toString('latin1');
    if (!/^[0-9]{1,9}$/.test(version)) throw new CommandError('ERR Protocol version is not an integer or out of range');
    if (version !== '2' && version !== '3') throw new CommandError('NOPROTO sorry, this protocol version is not supported.');
    protocol = version === '3' ? 3 : 2;
    i = 2;
  }
  let name: string | undefined;
  for (; i < args.length; i++) {
    const option = upper(args[i]!);
    if (option === 'AUTH' && i + 2 < args.length) {
      authenticate(ctx.options, session, text(args[i + 1]!), text(args[i + 2]!));
      i += 2;
    } else if (option === 'SETNAME' && i + 1 < args.length) {
      name = clientName(args[++i]!);
    } else {
      throw new CommandError(`ERR Syntax error in HELLO option '${text(args[i]!)}'`);
    }
  }
  if (authRequired(ctx.options) && session.principal === undefined) {
    throw new CommandError(
      'NOAUTH HELLO must be called with the client already authenticated, otherwise the HELLO <proto> AUTH <user> <pass> option can be used to authenticate the client and select the RESP protocol version at the same time',
    );
  }
  session.protocol = protocol;
  if (name !== undefined) session.name = name || undefined;
  return map({
    server: bulk('redis'),
    version: bulk(REDIS_COMPAT_VERSION),
    proto: int(protocol),
    id: int(session.id),
    mode: bulk('standalone'),
    role: bulk('master'),
    modules: array([]),
  });
}

function select(ctx: CommandContext, args: readonly Buffer[]): Reply {
  const index = args[1]!.toString('latin1');
  if (!/^(0|-?[1-9][0-9]{0,17})$/.test(index)) throw notInteger(); // Redis' string2ll: no leading zeros, no '-0'
  // One keyspace: namespaces are chosen by key prefix, not by database number. The connection is
  // closed after the error: ioredis with `db: 1` reports a refused SELECT as an event and goes on,
  // so its writes meant for database 1 would land in the one keyspace every other client uses.
  if (Number(index) !== 0) {
    ctx.session.closing = true;
    throw new CommandError('ERR DB index is out of range: Lockstep has one keyspace (database 0); the connection is closed so that nothing meant for another database lands in it');
  }
  return OK;
}

function client(ctx: CommandContext, args: readonly Buffer[]): Reply {
  const { session } = ctx;
  const sub = upper(args[1]!);
  const arity = (n: number): void => {
    if (args.length !== n) throw new CommandError(`ERR wrong number of arguments for 'client|${sub.toLowerCase()}' command`);
  };
  switch (sub) {
    case 'SETNAME':
      arity(3);
      session.name = clientName(args[2]!) || undefined;
      return OK;
    case 'GETNAME':
      arity(2);
      return bulkOrNull(session.name);
    case 'ID':
      arity(2);
      return int(session.id);
    case 'INFO':
      arity(2);
      return bulk(`${clientInfoLine(session)}\n`);
    case 'LIST':
      // Only the caller's own connection: other clients' addresses and names are not its business.
      return bulk(`${clientInfoLine(session)}\n`);
    case 'SETINFO': {
      arity(4);
      const attribute = upper(args[2]!);
      checkNameLength(args[3]!, attribute);
      const value = text(args[3]!);
      if (/[\s]/.test(value)) throw new CommandError(`ERR ${attribute} cannot contain spaces, newlines or special characters.`);
      if (attribute === 'LIB-NAME') session.libName = value;
      else if (attribute === 'LIB-VER') session.libVersion = value;
      else throw new CommandError(`ERR Unrecognized option '${text(args[2]!)}'`);
      return OK;
    }
    default:
      throw new CommandError(`ERR unknown subcommand '${text(args[1]!).slice(0, 128)}'. Try CLIENT HELP.`);
  }
}

/**
 * Longest client name, LIB-NAME or LIB-VER. A session keeps them for its life, counted by no budget:
 * at the bulk limit, 1000 connections that named themselves held 3 GiB. Real names are short.
 */
export const MAX_CLIENT_NAME_BYTES = 1024;

function checkNameLength(raw: Buffer, what: string): void {
  if (raw.length > MAX_CLIENT_NAME_BYTES) throw new CommandError(`ERR ${what} longer than ${MAX_CLIENT_NAME_BYTES} bytes is refused (a connection keeps it for its life)`);
}

function clientName(raw: Buffer): string {
  checkNameLength(raw, 'a client name');
  const name = raw.toString('latin1');
  if (!/^[!-~]*$/.test(name)) throw new CommandError('ERR Client names cannot contain spaces, newlines or special characters.');
  return name;
}

function clientInfoLine(s: Session): string {
  const age = Math.floor((Date.now() - s.createdAt) / 1000);
  return `id=${s.id} addr=${s.remoteAddress} laddr=${s.localAddress} name=${s.name ?? ''} age=${age} db=0 cmd=${s.lastCommand.toLowerCase()} user=${s.principal?.name ?? 'default'} resp=${s.protocol} lib-name=${s.libName ?? ''} lib-ver=${s.libVersion ?? ''}`;
}

function quit(ctx: CommandContext): Reply {
  ctx.session.closing = true;
  return OK;
}

const conn = (name: string, arity: number, flags: string[], summary: string, run: CommandSpec['run'], extra: Partial<CommandSpec> = {}): CommandSpec => ({
  name,
  arity,
  flags,
  firstKey: 0,
  lastKey: 0,
  step: 0,
  group: 'connection',
  summary,
  run,
  ...extra,
});

export const connectionCommands: readonly CommandSpec[] = [
  conn('ping', -1, ['fast'], 'Returns PONG, or the message given.', ping),
  conn('echo', 2, ['fast'], 'Returns the message given.', (_ctx, args) => bulk(args[1]!)),
  conn('hello', -1, ['noauth', 'fast'], 'Handshake: chooses RESP2 or RESP3, optionally authenticates and names the connection.', hello, { noAuth: true }),
  conn('auth', -2, ['noauth', 'fast'], "Authenticates with one of the service's tokens: AUTH token, or AUTH name token.", auth, { noAuth: true }),
  conn('select', 2, ['fast'], 'Selects database 0 (the only one).', select),
  conn('client', -2, ['admin'], 'CLIENT SETNAME, GETNAME, ID, INFO, LIST (own connection), SETINFO.', client, {
    subcommands: ['setname', 'getname', 'id', 'info', 'list', 'setinfo'],
  }),
  conn('quit', -1, ['noauth', 'fast'], 'Closes the connection once the reply is written.', quit, { noAuth: true }),
];
