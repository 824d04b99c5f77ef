// The near cache's oracle (docs/near-cache.md): bounded staleness and read-your-writes, beside the
// default mode's linearizability check (linearizability.ts) and fast check (history.ts).
//
// Bounded staleness: every read's version ≥ the newest version acknowledged before
// `invoke − maxStalenessMs`, and no "not found" after such a write unless a delete explains it.
// That is the fast check with every read's invoke moved back by the bound, which is how it is
// computed here; "a value no write had begun" still uses the read's real return.
//
// Read-your-writes: a read by process p returns a version ≥ every version p's own acknowledged
// mutations of the key committed before the read began, and not "not found" after p's own write
// unless a delete (of any process) begun before the read returned explains it.
import { checkVersions, type HistoryEntry, type Violation } from './history.js';

export interface StalenessOptions {
  /** The bound the mode promises, in milliseconds. */
  readonly maxStalenessMs: number;
}

/** History times are monotonic nanoseconds (historyNow). */
const NS_PER_MS = 1_000_000;

export function checkBoundedStaleness(history: readonly HistoryEntry[], options: StalenessOptions): Violation[] {
  const lagNs = options.maxStalenessMs * NS_PER_MS;
  if (!Number.isFinite(lagNs) || lagNs < 0) throw new RangeError(`maxStalenessMs must be a non-negative number (got ${options.maxStalenessMs})`);
  const shifted = new Map<HistoryEntry, HistoryEntry>();
  const moved = history.map((entry) => {
    if (entry.kind !== 'read') return entry;
    const early = { ...entry, invokedAt: entry.invokedAt - lagNs };
    shifted.set(early, entry);
    return early;
  });
  return checkVersions(moved).map((v) => ({
    key: v.key,
    read: shifted.get(v.read) ?? v.read,
    reason: `${v.reason} more than ${options.maxStalenessMs} ms before the read began`,
  }));
}

export function checkReadYourWrites(history: readonly HistoryEntry[]): Violation[] {
  const violations: Violation[] = [];
  const groups = new Map<string, HistoryEntry[]>();
  for (const entry of history) {
    const id = JSON.stringify([entry.key, entry.process]);
    const list = groups.get(id);
    if (list === undefined) groups.set(id, [entry]);
    else list.push(entry);
  }
  const deletesByKey = new Map<string, HistoryEntry[]>();
  for (const entry of history) {
    if (entry.kind !== 'delete' || entry.outcome === 'fail') continue;
    const list = deletesByKey.get(entry.key);
    if (list === undefined) deletesByKey.set(entry.key, [entry]);
    else list.push(entry);
  }
  for (const entries of groups.values()) {
    const own = entries
      .filter((e) => e.kind !== 'read' && e.outcome === 'ok' && e.version !== undefined)
      .sort((a, b) => a.returnedAt - b.returnedAt);
    if (own.length === 0) continue;
    for (const read of entries) {
      if (read.kind !== 'read' || read.outcome !== 'ok') continue;
      let floor: HistoryEntry | undefined;
      for (const m of own) {
        if (m.returnedAt >= read.invokedAt) break;
        if (floor === undefined || m.version! > floor.version!) floor = m;
      }
      if (floor === undefined) continue;
      if (read.value !== undefined) {
        if (read.version !== undefined && read.version < floor.version!) {
          violations.push({ key: read.key, read, reason: `returned version ${read.version} after its own process's version ${floor.version} was acknowledged` });
        }
      } else if (floor.kind === 'write') {
        const explained = (deletesByKey.get(read.key) ?? []).some((d) => d.invokedAt < read.returnedAt && (d.version ?? Infinity) > floor.version!);
        if (!explained) violations.push({ key: read.key, read, reason: `returned not found after its own process's version ${floor.version} was acknowledged` });
      }
    }
  }
  return violations;
}
