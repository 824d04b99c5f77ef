// The stamp of a journal row: what tells a row from another that got the same id after the store
// went back to an older state (a failover to an asynchronous replica, a restore from a backup),
// when ids and versions are handed out again. Every field of the row goes in, its write time
// (ms) included: a row written after the failover matches a lost one only if the same key at the
// same version with the same reason was journaled in the same millisecond.
import { createHash } from 'node:crypto';
import type { JournalEntry, StoreAdapter } from '../types.js';

export function journalRowStamp(row: JournalEntry): string {
  return digest([row.id, row.createdAt, row.version, row.reason, row.namespace, row.key]);
}

/** The store's incarnation (StoreAdapter.incarnation) as the cursor keeps it; undefined for a store that cannot tell. */
export async function storeIncarnation(store: StoreAdapter): Promise<string | undefined> {
  const incarnation = await store.incarnation?.();
  return incarnation === undefined ? undefined : incarnationHash(incarnation);
}

/** The hash a cursor keeps of an incarnation's text (the pg-proxy's drainer reads the text itself). */
export function incarnationHash(incarnation: string): string {
  return digest([incarnation]);
}

function digest(fields: readonly unknown[]): string {
  return createHash('sha256').update(JSON.stringify(fields)).digest('hex').slice(0, 16);
}
