// GET, DEL/UNLINK, MGET, MSET, EXISTS, TTL/PTTL: each key is mapped to its namespace, authorized,
// and read or written through the service's engine of that namespace (a Lockstep read: hit or
// fenced fill; a Lockstep write: lease, store commit, versioned publish).
import { CommandError } from '../errors.js';
import { bulkOrNull, int, array, type Reply } from '../replies.js';
import type { CommandContext, CommandSpec } from './context.js';
import { runSet } from './set.js';
import { authorizedKey, checkedKeys, holdReply, readLive, target, withEngine, type Target } from './targets.js';

/** Reads of one MGET in flight at once: enough to overlap store round trips, few enough to share the pool. */
const MGET_CONCURRENCY = 16;

async function get(ctx: CommandContext, args: readonly Buffer[]): Promise<Reply> {
  const { live } = await readLive(ctx, target(ctx, args[1]!, 'read'));
  if (live !== undefined) holdReply(ctx, live.value.length);
  return bulkOrNull(live?.value);
}

async function del(ctx: CommandContext, args: readonly Buffer[]): Promise<Reply> {
  const keys = checkedKeys(ctx, args.slice(1), 'write');
  let removed = 0;
  // One key after the other, in order: `DEL k k` counts k once, as Redis does.
  for (const key of keys) if (await deleteOne(ctx, withEngine(ctx, key))) removed++;
  return int(removed);
}

/**
 * Deletes one key and tells whether it removed a value, from the delete itself: it removed a row
 * (`existed`) whose version is the tombstone's minus one. That row is the one read when the versions
 * match (live or expired as read); otherwise a write committed between the read and the delete, and
 * its value is what DEL removed. (Deleted after the read and counted by the read alone, a SET
 * acknowledged between the two was removed while DEL answered 0.) No condition on the version: DEL
 * is never refused for other writers, and a row written by plain SQL that the cache does not show yet
 * is deleted too.
 */
async function deleteOne(ctx: CommandContext, t: Target): Promise<boolean> {
  const { entry, live } = await readLive(ctx, t, false);
  const { existed, version } = await t.engine.delete(t.key);
  if (!existed) return false;
  return entry.found && version === entry.version + 1 ? live !== undefined : true;
}

async function mget(ctx: CommandContext, args: readonly Buffer[]): Promise<Reply> {
  const keys = args.slice(1).map((raw) => authorizedKey(ctx, raw, 'read'));
  const values: Reply[] = new Array<Reply>(keys.length);
  let next = 0;
  let bytes = 0;
  const limit = ctx.options.maxReplyBytes;
  // A failed read fails the MGET: the other workers stop after the read they are in, rather than
  // read every remaining key for a reply nobody will see (with a stalled store, each read waits its
  // full deadline, and a client repeating the MGET piled such work up).
  let failed = false;
  const worker = async (): Promise<void> => {
    while (!failed && next < keys.length && bytes <= limit) {
      const i = next++;
      let value: string | undefined;
      try {
        value = (await readLive(ctx, withEngine(ctx, keys[i]!))).live?.value;
        // Another read failed the MGET meanwhile: its error may be answered and what it held given
        // back already, so bytes taken now would be held for ever once the client left. Not sent: not taken.
        if (failed) return;
        if (value !== undefined) holdReply(ctx, value.length);
      } catch (error) {
        failed = true;
        throw error;
      }
      if (value !== undefined) bytes += value.length;
      values[i] = bulkOrNull(value);
    }
  };
  await Promise.all(Array.from({ length: Math.min(MGET_CONCURRENCY, keys.length) }, worker));
  // Refused whole rather than built: the reply would hold every value in memory at once.
  if (bytes > limit) throw new CommandError(`LOCKSTEP_E_REPLY_TOO_LARGE the MGET reply is over ${limit} bytes; ask for fewer keys per MGET`);
  return array(values);
}

/**
 * MSET of one key is a SET. Of several keys it is refused: the store port commits one key per
 * transaction, and a multi-key MSET made of several commits could be seen half applied (or be
 * left half applied by a crash). Refusing is the honest answer until the store offers a
 * multi-key transaction.
 */
async function mset(ctx: CommandContext, args: readonly Buffer[]): Promise<Reply> {
  if (args.length % 2 === 0) throw new CommandError("ERR wrong number of arguments for 'mset' command");
  if (args.length > 3) {
    throw new CommandError(
      'LOCKSTEP_E_MSET_NOT_ATOMIC MSET of more than one key is refused: the store commits one key per transaction, and Lockstep never applies half of an MSET. Send one SET per key (pipelined).',
    );
  }
  return runSet(ctx, [args[0]!, args[1]!, args[2]!]);
}

async function exists(ctx: CommandContext, args: readonly Buffer[]): Promise<Reply> {
  const keys = args.slice(1).map((raw) => authorizedKey(ctx, raw, 'read'));
  let count = 0;
  for (const key of keys) if ((await readLive(ctx, withEngine(ctx, key))).live !== undefined) count++;
  return int(count);
}

function ttlCommand(unitMs: 1 | 1000) {
  return async (ctx: CommandContext, args: readonly Buffer[]): Promise<Reply> => {
    const { live } = await readLive(ctx, target(ctx, args[1]!, 'read'));
    if (live === undefined) return int(-2);
    if (live.expiresAt === null) return int(-1);
    // A RESP integer, whatever the row holds: the Keyv adapter (and HTTP) may store a fractional
    // or huge expiresAt, and `:599938.5` or `:1e+300` is misread by clients, silently.
    const left = Math.min(Math.max(0, live.expiresAt - ctx.now()), Number.MAX_SAFE_INTEGER);
    return int(Math.round(unitMs === 1 ? left : left / 1000));
  };
}

const key = (name: string, arity: number, flags: string[], summary: string, run: CommandSpec['run'], lastKey = 1, step = 1, group = 'string'): CommandSpec => ({
  name,
  arity,
  flags,
  firstKey: 1,
  lastKey,
  step,
  group,
  summary,
  run,
});

export const keyspaceCommands: readonly CommandSpec[] = [
  key('get', 2, ['readonly', 'fast'], 'Returns the string value of a key (a Lockstep read).', get),
  key('set', -3, ['write', 'denyoom'], 'Sets the string value of a key: committed to the store, then the cache, before +OK.', (ctx, args) => runSet(ctx, args)),
  key('del', -2, ['write'], 'Deletes one or more keys.', del, -1, 1, 'generic'),
  key('unlink', -2, ['write', 'fast'], 'Deletes one or more keys (as DEL: the store delete is synchronous).', del, -1, 1, 'generic'),
  key('mget', -2, ['readonly', 'fast'], 'Returns the string values of one or more keys.', mget, -1),
  key('mset', -3, ['write', 'denyoom'], 'Sets one key (several keys are refused: not atomic in the store).', mset, -1, 2),
  key('exists', -2, ['readonly', 'fast'], 'Counts how many of the keys exist.', exists, -1, 1, 'generic'),
  key('ttl', 2, ['readonly', 'fast'], 'Seconds left before a key expires (-1 no expiry, -2 no key).', ttlCommand(1000), 1, 1, 'generic'),
  key('pttl', 2, ['readonly', 'fast'], 'Milliseconds left before a key expires (-1 no expiry, -2 no key).', ttlCommand(1), 1, 1, 'generic'),
];
