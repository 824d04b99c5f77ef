// The A–E states of one cached answer of the proxy, from both sides: the cache record under
// pgproxy:<scope>:<schema.table>:<key> (cache-scope.ts), and PostgreSQL's committed version of that key
// (<schema>.versions, 0 when no write was ever journaled) with the row itself, read in one snapshot.
// A cached answer is an answer to a point read: one row or none ("SELECT 0" is cached too), so an
// answer with no row over no row is synchronized, not "cache only".
//   A  nothing servable (no record, a lease, a tombstone, an answer the proxy would not serve) and no row
//   B  the row exists, nothing servable is cached for it
//   C  the answer's version is the committed version, and it shows a row exactly when the table has one
//   D  the answer is stale (another version) or shows no row over a live row
//   E  the answer shows a row the table no longer has (e.g. a TRUNCATE whose flush never reached the cache)
import type { KeyState } from '../engine/api.js';
import type { CacheRecordView } from '../types.js';

/** PostgreSQL's side of a key: its committed version and the row (to_jsonb text), or null when there is none. */
export interface CommittedRow {
  readonly version: number;
  readonly row: string | null;
}

/** How many rows (DataRow messages) a cached answer carries, or undefined when the proxy would not serve it. */
export function answerRows(payload: unknown): number | undefined {
  let parsed: unknown;
  try {
    parsed = typeof payload === 'string' ? JSON.parse(payload) : payload;
  } catch {
    return undefined;
  }
  const { v, b } = (parsed ?? {}) as { v?: unknown; b?: unknown };
  if (typeof v !== 'string' || typeof b !== 'string') return undefined;
  const bytes = Buffer.from(b, 'base64');
  let rows = 0;
  for (let offset = 0; offset < bytes.length; ) {
    if (bytes.length - offset < 5) return undefined;
    const length = bytes.readInt32BE(offset + 1);
    if (length < 4 || offset + 1 + length > bytes.length) return undefined;
    if (bytes[offset] === 0x44) rows++; // 'D'
    offset += 1 + length;
  }
  return rows;
}

export interface AnswerClassification {
  readonly state: KeyState;
  readonly description: string;
}

/** The servable answer of a record: its version and row count, or undefined. */
export function servableAnswer(cached: CacheRecordView | undefined): { version: number; rows: number } | undefined {
  if (cached?.kind !== 'value' || cached.tombstone) return undefined;
  const rows = answerRows(cached.payload);
  return rows === undefined ? undefined : { version: cached.version, rows };
}

export function classifyAnswer(committed: CommittedRow, cached: CacheRecordView | undefined): AnswerClassification {
  const answer = servableAnswer(cached);
  const row = committed.row !== null;
  if (answer === undefined) {
    const what = cached === undefined ? 'nothing is cached' : cached.kind === 'value' ? (cached.tombstone ? 'an invalidation marker' : 'an answer the proxy would not serve') : `a ${cached.kind} lease`;
    return row
      ? { state: 'B', description: `database only: version ${committed.version} has a row, ${what}` }
      : { state: 'A', description: `empty: no row, ${what}` };
  }
  const shows = answer.rows > 0 ? 'a row' : 'no row';
  if (answer.version === committed.version && (answer.rows > 0) === row) {
    return { state: 'C', description: `synchronized at version ${committed.version} (${shows})` };
  }
  if (answer.rows > 0 && !row) {
    return { state: 'E', description: `cache only: the answer (version ${answer.version}) shows a row, the table has none (version ${committed.version})` };
  }
  return {
    state: 'D',
    description: `stale: the answer has version ${answer.version} (${shows}), PostgreSQL committed version ${committed.version} (${row ? 'a row' : 'no row'})`,
  };
}

/**
 * The fence of a repair (cache.invalidateOlder(key, fence)): the committed version when the answer is
 * older (a fill at that version stays possible), else one above the answer's own version (the
 * answer is wrong at its version: a missed TRUNCATE flush, a version PostgreSQL never committed).
 */
export function answerRepairFence(committed: CommittedRow, cached: CacheRecordView | undefined): number | undefined {
  const answer = servableAnswer(cached);
  if (answer === undefined) return undefined;
  return answer.version < committed.version ? committed.version : answer.version + 1;
}
