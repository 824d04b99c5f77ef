// COMMAND (COUNT, DOCS, INFO, LIST) and INFO: what redis-cli, node-redis and ioredis ask for when
// they start, answered from the command table itself.
import { CommandError } from '../errors.js';
import { array, bulk, int, map, set, verbatim, type Reply } from '../replies.js';
import { upper, type CommandContext, type CommandSpec } from './context.js';
import { REDIS_COMPAT_VERSION } from './connection.js';

export function serverCommands(table: ReadonlyMap<string, CommandSpec>): readonly CommandSpec[] {
  const all = (): CommandSpec[] => [...table.values()];
  const named = (args: readonly Buffer[]): Array<CommandSpec | undefined> => args.map((a) => table.get(a.toString('latin1').toLowerCase()));

  const command = (_ctx: CommandContext, args: readonly Buffer[]): Reply => {
    if (args.length === 1) return array(all().map(commandInfo));
    const sub = upper(args[1]!);
    switch (sub) {
      case 'COUNT':
        return int(table.size);
      case 'LIST':
        return array(all().map((c) => bulk(c.name)));
      case 'INFO':
        return array(named(args.slice(2)).map((c) => (c === undefined ? { t: 'null' } : commandInfo(c))));
      case 'DOCS': {
        const specs = args.length > 2 ? named(args.slice(2)).filter((c): c is CommandSpec => c !== undefined) : all();
        return { t: 'map', entries: specs.map((c) => [bulk(c.name), commandDocs(c)] as const) };
      }
      default:
        throw new CommandError(`ERR unknown subcommand '${args[1]!.toString('utf8').slice(0, 128)}'. Try COMMAND HELP.`);
    }
  };

  const info = (ctx: CommandContext): Reply => {
    const uptime = Math.floor((Date.now() - ctx.front.startedAt) / 1000);
    const lines = [
      '# Server',
      `redis_version:${REDIS_COMPAT_VERSION}`,
      'redis_mode:standalone',
      'lockstep_front:resp',
      `process_id:${process.pid}`,
      `tcp_port:${ctx.front.port}`,
      `uptime_in_seconds:${uptime}`,
      '',
      '# Clients',
      `connected_clients:${ctx.front.connectedClients()}`,
      `maxclients:${ctx.options.maxConnections}`,
      '',
      '# Persistence',
      'loading:0',
      '',
      '# Replication',
      'role:master',
      'connected_slaves:0',
      '',
    ];
    const body = lines.join('\r\n');
    return ctx.session.protocol === 3 ? verbatim(body) : bulk(body);
  };

  const spec = (name: string, arity: number, summary: string, run: CommandSpec['run']): CommandSpec => ({
    name,
    arity,
    flags: ['loading', 'stale'],
    firstKey: 0,
    lastKey: 0,
    step: 0,
    group: 'server',
    summary,
    run,
  });
  return [
    { ...spec('command', -1, 'COMMAND, COMMAND COUNT, COMMAND DOCS, COMMAND INFO, COMMAND LIST.', command), subcommands: ['count', 'docs', 'info', 'list'] },
    spec('info', -1, 'Server information (the sections clients check on connect).', info),
  ];
}

/** Redis 7's 10-field command entry. */
function commandInfo(c: CommandSpec): Reply {
  return array([
    bulk(c.name),
    int(c.arity),
    set(c.flags.map((f) => ({ t: 'simple', s: f }) as const)),
    int(c.firstKey),
    int(c.lastKey),
    int(c.step),
    set([]),
    set([]),
    array([]),
    array((c.subcommands ?? []).map((s) => array([bulk(`${c.name}|${s}`), int(-2), set([]), int(0), int(0), int(0), set([]), set([]), array([]), array([])]))),
  ]);
}

function commandDocs(c: CommandSpec): Reply {
  return map({ summary: bulk(c.summary), since: bulk('1.0.0'), group: bulk(c.group), complexity: bulk('O(1) per key') });
}
