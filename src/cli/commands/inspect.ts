// `lockstep inspect NS KEY`: both sides of one key and its A–E state, changing nothing.
import type { KeyInspection } from '../../engine/api.js';
import { EXIT, formatHelp } from '../args.js';
import { defaultIo, type CommandIo } from '../io.js';
import { TARGET_HELP } from '../kv/client.js';
import { KEY_EXIT_STATUS, runKeyCommand } from '../kv/run.js';
import { jsonDocument, keyLabel, renderCached, renderStored } from '../render.js';

export const usage = formatHelp({
  usage: 'inspect NS KEY [options]',
  description: `Reads KEY of namespace NS from the store and peeks at the cache's record (no lease is taken,
nothing changes), and prints the key's state: A empty, B store only, C synchronized, D
inconsistent, E cache only, with both sides. --json prints the document GET …/state answers.`,
  options: [...TARGET_HELP, ['--json', 'print one JSON document'], ['-h, --help', 'show this help']],
  notes: `Inspect the cache your instances share (--cache redis://… or --url): --cache memory is a new,
empty cache of this process, so its side is always empty.`,
  examples: [
    'lockstep inspect orders 42 --cache redis://127.0.0.1:6379',
    'lockstep inspect orders 42 --url http://127.0.0.1:8080 --json',
  ],
  exit: `${KEY_EXIT_STATUS.replace(' (get)', ' (get only: inspect reports A)')}`,
});

export function run(argv: readonly string[], io: CommandIo = defaultIo): Promise<number> {
  return runKeyCommand('inspect', usage, argv, io, async (client, args) => {
    if (!args.json && args.target.kind === 'local' && args.target.cache.kind === 'memory') {
      io.stderr.write("lockstep inspect: note: --cache memory is this process's own empty cache: inspect a shared cache (redis://…, or --url)\n");
    }
    const inspection = await client.inspect(args.key);
    io.stdout.write(args.json ? jsonDocument(inspection) : renderInspection(inspection));
    return EXIT.ok;
  });
}

export function renderInspection(inspection: KeyInspection): string {
  return [
    `${keyLabel(inspection.namespace, inspection.key)}: ${inspection.state}, ${inspection.description}`,
    `  store: ${renderStored(inspection.store, 200)}`,
    `  cache: ${renderCached(inspection.cache, 200)}`,
    '',
  ].join('\n');
}
