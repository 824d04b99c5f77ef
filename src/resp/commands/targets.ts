// A key command's first step: the Redis key mapped to its namespace, the caller's scopes checked,
// the namespace's engine fetched; and a read with the data expiry applied.
import type { Engine, ReadEntry } from '../../engine/api.js';
import { validateKey } from '../../keys.js';
import { authorize } from '../access.js';
import { mapKey, type MappedKey } from '../key-mapping.js';
import type { Action } from '../service-port.js';
import { liveString, type LiveString } from '../values.js';
import { CommandError } from '../errors.js';
import type { CommandContext } from './context.js';

export interface Target extends MappedKey {
  readonly engine: Engine<unknown>;
}

export function target(ctx: CommandContext, raw: Buffer, ...actions: Action[]): Target {
  return withEngine(ctx, authorizedKey(ctx, raw, ...actions));
}

/** The key mapped to its namespace and the caller's scopes checked, without making the namespace's engine. */
export function authorizedKey(ctx: CommandContext, raw: Buffer, ...actions: Action[]): MappedKey {
  const mapped = mapKey(raw, ctx.options.defaultNamespace);
  for (const action of actions) authorize(ctx.options, ctx.session, mapped.namespace, action);
  return mapped;
}

/**
 * Every key of a multi-key write (DEL), mapped, authorized and checked against the key rule before
 * any of them runs: a key refused halfway (too long, not valid) would otherwise answer an error after
 * the keys before it were deleted. (Reads need no such check: the engine checks each key, and a read
 * refused halfway leaves nothing behind.)
 */
export function checkedKeys(ctx: CommandContext, raws: readonly Buffer[], action: Action): MappedKey[] {
  return raws.map((raw) => {
    const mapped = authorizedKey(ctx, raw, action);
    validateKey(mapped.key, ctx.service.maxKeyBytes, mapped.namespace);
    return mapped;
  });
}

/**
 * The engine of an authorized key's namespace. A multi-key command fetches it when that key's
 * turn comes: made for every key up front, 4,000 keys of new namespaces put 4,000 engines in the
 * pool at once, each held until the command answered.
 */
export function withEngine(ctx: CommandContext, mapped: MappedKey): Target {
  return { ...mapped, engine: ctx.service.engine(mapped.namespace) };
}

export interface LiveRead {
  readonly entry: ReadEntry<unknown>;
  readonly live: LiveString | undefined;
}

/**
 * A Lockstep read, with the data expiry applied; an expired row is purged (only that version, so a
 * newer SET wins), unless `purge` is false (DEL, which deletes the row itself).
 */
export async function readLive(ctx: CommandContext, t: Target, purge = true): Promise<LiveRead> {
  const entry = await t.engine.readEntry(t.key);
  if (!entry.found) return { entry, live: undefined };
  const live = liveString(entry.value, ctx.now());
  if (live === undefined && purge && mayWrite(ctx, t.namespace)) {
    // Best effort and off the reply path, bounded (purges.ts): the row reads as missing either way.
    // A namespace never holds ':', so the id names one key.
    ctx.front.purges.start(`${t.namespace}:${t.key}`, () => t.engine.delete(t.key, { ifVersion: entry.version }));
  }
  return { entry, live };
}

function mayWrite(ctx: CommandContext, namespace: string): boolean {
  const { principal } = ctx.session;
  return ctx.options.principals.length === 0 || principal?.can('write', namespace) === true;
}

/** Takes a value's bytes from the front's reply budget for the running command's reply, or refuses the command. */
export function holdReply(ctx: CommandContext, bytes: number): void {
  if (bytes === 0) return;
  const budget = ctx.front.replies;
  if (!budget.take(bytes)) {
    throw new CommandError(`LOCKSTEP_E_BUSY the front holds its limit of ${budget.limit} bytes of replies not yet sent; retry`);
  }
  ctx.hold.bytes += bytes;
}

/** Gives back what `holdReply` took for a reply that will not be sent (a SET … GET attempt that is retried). */
export function releaseReply(ctx: CommandContext, bytes: number): void {
  ctx.front.replies.give(bytes);
  ctx.hold.bytes -= bytes;
}
