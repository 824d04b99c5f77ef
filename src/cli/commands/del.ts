// `lockstep del NS KEY`: a delete through Lockstep (store first, then a versioned tombstone in the cache).
import { EXIT, formatHelp } from '../args.js';
import { defaultIo, type CommandIo } from '../io.js';
import { TARGET_HELP } from '../kv/client.js';
import { KEY_EXIT_STATUS, runKeyCommand } from '../kv/run.js';
import { jsonDocument, keyLabel } from '../render.js';

export const usage = formatHelp({
  usage: 'del NS KEY [options]',
  description: `Deletes KEY of namespace NS through Lockstep: the store commits the delete (with a new version,
even when the key did not exist), then the cache keeps a tombstone of that version, so no slow
reader can bring the old value back. Prints the version; --json prints { namespace, key, version,
existed }. Deleting a missing key is not an error.`,
  options: [...TARGET_HELP, ['--json', 'print one JSON document'], ['-h, --help', 'show this help']],
  examples: ['lockstep del orders 42', 'lockstep del orders 42 --url http://127.0.0.1:8080 --json'],
  exit: KEY_EXIT_STATUS,
});

export function run(argv: readonly string[], io: CommandIo = defaultIo): Promise<number> {
  return runKeyCommand('del', usage, argv, io, async (client, args) => {
    const { version, existed } = await client.del(args.key);
    const { namespace, key } = args;
    const label = keyLabel(namespace, key);
    io.stdout.write(
      args.json
        ? jsonDocument({ namespace, key, version, existed })
        : existed
          ? `deleted ${label}: version ${version}\n`
          : `${label} did not exist: tombstone at version ${version}\n`,
    );
    return EXIT.ok;
  });
}
