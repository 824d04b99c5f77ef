// A history of operations as clients saw them, and the protocol's fast check over it: no read
// returns a version lower than the highest version acknowledged before that read began, no read
// returns a value that was never written, and a read does not miss a value that was acknowledged
// before it began unless a delete may have removed it. Times are monotonic nanoseconds
// (process.hrtime.bigint(), comparable across processes on one machine), as numbers.

export type OperationKind = 'write' | 'delete' | 'read';

/** `ok`: it returned; `fail`: it failed cleanly (no effect); `unknown`: it may or may not have taken effect. */
export type Outcome = 'ok' | 'fail' | 'unknown';

export interface HistoryEntry {
  readonly process: string;
  readonly key: string;
  readonly kind: OperationKind;
  readonly invokedAt: number;
  readonly returnedAt: number;
  readonly outcome: Outcome;
  /** write: the value written (unique per write); read: the value returned (undefined = not found). */
  readonly value?: string | undefined;
  /** write/delete: the committed version; read: the version the answer reflects. */
  readonly version?: number | undefined;
}

export interface Violation {
  readonly key: string;
  readonly read: HistoryEntry;
  readonly reason: string;
}

/** Monotonic time for history entries: comparable across processes on the same machine. */
export function historyNow(): number {
  return Number(process.hrtime.bigint());
}

/**
 * The fast check: no read returns a value no write had begun, or a version older than a mutation
 * acknowledged before the read began, or "not found" after an acknowledged write that no delete
 * begun before the read returned can explain. O(n log n) per key: mutations sorted by return time
 * with the running maximum of their versions, deletes by invoke time likewise, binary-searched per
 * read. (test/unit/history-check.test.ts checks it against the plain quadratic reading.)
 */
export function checkVersions(history: readonly HistoryEntry[]): Violation[] {
  const violations: Violation[] = [];
  const byKey = new Map<string, HistoryEntry[]>();
  for (const entry of history) {
    const list = byKey.get(entry.key);
    if (list === undefined) byKey.set(entry.key, [entry]);
    else list.push(entry);
  }
  for (const [key, entries] of byKey) {
    const mutations = entries.filter((e) => e.kind !== 'read' && e.outcome !== 'fail');
    const writtenBy = new Map(mutations.filter((e) => e.kind === 'write' && e.value !== undefined).map((e) => [e.value!, e]));
    // Acknowledged mutations by return time, with the running maximum of their versions.
    const acked = mutations.filter((e) => e.outcome === 'ok' && e.version !== undefined).sort((a, b) => a.returnedAt - b.returnedAt);
    const floors: HistoryEntry[] = [];
    for (const m of acked) floors.push(floors.length > 0 && floors[floors.length - 1]!.version! >= m.version! ? floors[floors.length - 1]! : m);
    // Deletes by invoke time, with the running maximum of their versions (an unknown version counts as infinite).
    const deletes = mutations.filter((e) => e.kind === 'delete').sort((a, b) => a.invokedAt - b.invokedAt);
    const deleteMax: number[] = [];
    for (const d of deletes) deleteMax.push(Math.max(deleteMax[deleteMax.length - 1] ?? -Infinity, d.version ?? Infinity));
    /** Entries of `sorted` with time(e) < t: how many. */
    const countBefore = <T>(sorted: readonly T[], time: (e: T) => number, t: number): number => {
      let lo = 0;
      let hi = sorted.length;
      while (lo < hi) {
        const mid = (lo + hi) >>> 1;
        if (time(sorted[mid]!) < t) lo = mid + 1;
        else hi = mid;
      }
      return lo;
    };
    for (const read of entries) {
      if (read.kind !== 'read' || read.outcome !== 'ok') continue;
      const n = countBefore(acked, (m) => m.returnedAt, read.invokedAt);
      const floor = n > 0 ? floors[n - 1] : undefined;
      if (read.value !== undefined) {
        const writer = writtenBy.get(read.value);
        if (writer === undefined || writer.invokedAt > read.returnedAt) {
          violations.push({ key, read, reason: `returned ${JSON.stringify(read.value)}, which no write had begun to write` });
        } else if (floor !== undefined && read.version !== undefined && read.version < floor.version!) {
          violations.push({ key, read, reason: `returned version ${read.version} after version ${floor.version} was acknowledged` });
        }
      } else if (floor?.kind === 'write') {
        const d = countBefore(deletes, (m) => m.invokedAt, read.returnedAt);
        const explained = d > 0 && deleteMax[d - 1]! > floor.version!;
        if (!explained) violations.push({ key, read, reason: `returned not found after version ${floor.version} was acknowledged` });
      }
    }
  }
  return violations;
}
