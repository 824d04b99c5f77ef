// `lockstep get NS KEY`: one read through Lockstep (the cache, else the store) or a running service.
import { EXIT, formatHelp } from '../args.js';
import { defaultIo, type CommandIo } from '../io.js';
import { TARGET_HELP } from '../kv/client.js';
import { KEY_EXIT_STATUS, runKeyCommand } from '../kv/run.js';
import { jsonDocument, keyLabel } from '../render.js';

export const usage = formatHelp({
  usage: 'get NS KEY [options]',
  description: `Reads KEY of namespace NS through Lockstep: the cache, else the store (filling the cache), as
a service read does. Prints the value as JSON; --json prints { namespace, key, found, value,
version, source } instead (source: hit, miss, bypass or store-fallback).`,
  options: [...TARGET_HELP, ['--json', 'print one JSON document with the version and where the answer came from'], ['-h, --help', 'show this help']],
  examples: [
    'lockstep get orders 42',
    'lockstep get orders 42 --json',
    'lockstep get orders 42 --url http://127.0.0.1:8080 | jq .total',
  ],
  exit: KEY_EXIT_STATUS,
});

export function run(argv: readonly string[], io: CommandIo = defaultIo): Promise<number> {
  return runKeyCommand('get', usage, argv, io, async (client, args) => {
    const entry = await client.get(args.key);
    const { namespace, key } = args;
    if (args.json) {
      io.stdout.write(jsonDocument({ namespace, key, found: entry.found, value: entry.value ?? null, version: entry.version, source: entry.source ?? null }));
    } else if (entry.found) {
      io.stdout.write(`${JSON.stringify(entry.value, null, 2)}\n`);
    } else {
      io.stderr.write(`lockstep get: ${keyLabel(namespace, key)} not found\n`);
    }
    return entry.found ? EXIT.ok : EXIT.notFound;
  });
}
