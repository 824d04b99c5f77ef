// `lockstep put NS KEY VALUE`: a write-through of a JSON value (from the argument, or stdin with `-`).
import { text } from 'node:stream/consumers';
import { toMs } from '../../duration.js';
import { EXIT, formatHelp, reportUsageError, UsageError } from '../args.js';
import { defaultIo, type CommandIo } from '../io.js';
import { TARGET_HELP } from '../kv/client.js';
import { KEY_EXIT_STATUS, parseKeyCommand, withKvClient, type KeyCommandArgs } from '../kv/run.js';
import { jsonDocument, keyLabel } from '../render.js';

export const usage = formatHelp({
  usage: "put NS KEY VALUE|- [options]",
  description: `Writes KEY of namespace NS through Lockstep: the store commits first, then the cache publishes
the committed version under its write lease. VALUE is JSON (quote a string: '"text"'); with -
it is read from stdin. Prints the version the store committed; --json prints { namespace, key,
version }.`,
  options: [
    ...TARGET_HELP,
    ['--ttl DURATION', "how long the cache keeps the value: ms, or '30s', '5m', '1h' (default: the instance's ttl)"],
    ['--json', 'print one JSON document'],
    ['-h, --help', 'show this help'],
  ],
  notes: 'A negative number looks like a flag: put it last, after --, as in  lockstep put stats t --json -- -5',
  examples: [
    `lockstep put orders 42 '{"total":3}'`,
    `lockstep put sessions abc '"alice"' --ttl 30s`,
    'curl -s https://example.com/order.json | lockstep put orders 43 -',
    `lockstep put orders 42 '{"total":4}' --url http://127.0.0.1:8080 --json`,
  ],
  exit: KEY_EXIT_STATUS,
});

export async function run(argv: readonly string[], io: CommandIo = defaultIo, stdin: NodeJS.ReadableStream = process.stdin): Promise<number> {
  let args: KeyCommandArgs & { readonly values: { ttl: string | boolean | undefined } };
  let ttlMs: number | undefined;
  try {
    args = parseKeyCommand(argv, io.env, { ttl: { type: 'string' } }, ['NS', 'KEY', 'VALUE']);
    const ttl = args.values.ttl;
    ttlMs = typeof ttl === 'string' ? toMs(/^[0-9]+$/.test(ttl) ? Number(ttl) : ttl, '--ttl') : undefined;
  } catch (error) {
    return reportUsageError(io.stderr, 'put', error);
  }
  if (args.help) {
    io.stdout.write(usage);
    return EXIT.ok;
  }
  let value: unknown;
  try {
    const raw = args.rest[0] === '-' ? await text(stdin) : (args.rest[0] ?? '');
    value = parseValue(raw, args.rest[0] === '-' ? 'stdin' : 'VALUE');
  } catch (error) {
    return reportUsageError(io.stderr, 'put', error);
  }
  return withKvClient('put', args, io, async (client) => {
    const { version } = await client.put(args.key, value, ttlMs);
    const { namespace, key } = args;
    io.stdout.write(args.json ? jsonDocument({ namespace, key, version }) : `put ${keyLabel(namespace, key)}: version ${version}\n`);
    return EXIT.ok;
  });
}

function parseValue(raw: string, from: string): unknown {
  if (raw.trim() === '') throw new UsageError(`${from} is empty: give a JSON value (to remove a key, use lockstep del)`);
  try {
    return JSON.parse(raw);
  } catch (error) {
    throw new UsageError(`${from} is not JSON (${(error as Error).message}); quote a string, as in '"text"'`);
  }
}
