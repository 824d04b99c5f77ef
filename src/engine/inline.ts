// The inline helpers' steps: the caller's own database write, delete or read, adapted to the one
// write protocol (write-path.ts) and read protocol (read-path.ts) that engine.write / read use.
// For these keys the caller's table is the source of truth; Lockstep's store only keeps their
// repair journal. Its rows cannot share the caller's transaction, so they are appended right after
// the caller's commit (journalAfterCommit): see docs/library.md "Inline helper" for that window.
import type { StoredValue, Version } from '../types.js';
import type { InlineDeleteStep, InlineLoader, InlineWriteStep, Versioned } from './api.js';
import type { EngineContext } from './context.js';
import type { LoadCommitted } from './read-path.js';
import { checkVersion, type WriteStep } from './write-path.js';

export function inlineWriteStep<R extends Versioned<unknown>>(
  ctx: EngineContext,
  key: string,
  cacheKey: string,
  ttlMs: number,
  step: InlineWriteStep<R>,
): WriteStep<R> {
  return {
    operation: 'write',
    key,
    cacheKey,
    ttlMs,
    journalAfterCommit: true,
    callerStep: true,
    commit: (_journal, deadlineMs) => step({ key, deadlineMs }),
    // Encoded only after the commit (the value comes from it); a value the codec refuses is
    // handled like an unknown outcome: nothing is published and the lease runs out.
    entryFor: (result) => ctx.entries.entry(ctx.entries.encode(result.value, key, ctx.namespace), result.version),
  };
}

export function inlineDeleteStep<R extends { readonly version: Version }>(
  ctx: EngineContext,
  key: string,
  cacheKey: string,
  step: InlineDeleteStep<R>,
): WriteStep<R> {
  return {
    operation: 'delete',
    key,
    cacheKey,
    ttlMs: ctx.options.tombstoneTtlMs,
    journalAfterCommit: true,
    callerStep: true,
    commit: (_journal, deadlineMs) => step({ key, deadlineMs }),
    entryFor: (result) => ctx.entries.tombstone(result.version),
  };
}

/** The caller's loader as the read path's source: its value encoded as the store would hold it. */
export function inlineLoad<V>(load: InlineLoader<V>): LoadCommitted {
  return async (ctx, key): Promise<StoredValue | undefined> => {
    const loaded = await load(); // the caller's errors reach the caller unchanged
    if (loaded === undefined) return undefined;
    const version = checkVersion(loaded.version, key, ctx.namespace);
    return { version, payload: ctx.entries.encode(loaded.value, key, ctx.namespace).payload };
  };
}
