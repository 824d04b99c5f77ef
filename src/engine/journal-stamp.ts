// The stamp of a journal row: what tells a row from another that got the same id after the store
// went back to an older state (a failover to an asynchronous replica, a restore from a backup),
// when ids and versions are handed out again. Every field of the row goes in, its write time
// (ms) included: a row written after the failover matches a lost one only if the same key at the
// same version with the same reason was journaled in the same millisecond.
import { createHash } from 'node:crypto';
import type { JournalEntry } from '../types.js';

export function journalRowStamp(row: JournalEntry): string {
  const fields = JSON.stringify([row.id, row.createdAt, row.version, row.reason, row.namespace, row.key]);
  return createHash('sha256').update(fields).digest('hex').slice(0, 16);
}
