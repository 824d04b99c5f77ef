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

export function checkVersions(history: readonly HistoryEntry[]): Violation[] {
  const violations: Violation[] = [];
  const byKey = new Map<string, HistoryEntry[]>();
  for (const entry of history) {
    const list = byKey.get(entry.key) ?? [];
    list.push(entry);
    byKey.set(entry.key, list);
  }
  for (const [key, entries] of byKey) {
    const mutations = entries.filter((e) => e.kind !== 'read' && e.outcome !== 'fail');
    const acked = mutations.filter((e) => e.outcome === 'ok' && e.version !== undefined);
    const writtenBy = new Map(mutations.filter((e) => e.kind === 'write' && e.value !== undefined).map((e) => [e.value!, e]));
    for (const read of entries) {
      if (read.kind !== 'read' || read.outcome !== 'ok') continue;
      // The newest mutation acknowledged before this read began.
      let floor: HistoryEntry | undefined;
      for (const m of acked) if (m.returnedAt < read.invokedAt && (floor === undefined || m.version! > floor.version!)) floor = m;
      if (read.value !== undefined) {
        const writer = writtenBy.get(read.value);
        if (writer === undefined || writer.invokedAt > read.returnedAt) {
          violations.push({ key, read, reason: `returned ${JSON.stringify(read.value)}, which no write had begun to write` });
        } else if (floor !== undefined && read.version !== undefined && read.version < floor.version!) {
          violations.push({ key, read, reason: `returned version ${read.version} after version ${floor.version} was acknowledged` });
        }
      } else if (floor?.kind === 'write') {
        // Not found after an acknowledged write: only a delete that began before the read returned can explain it.
        const explained = mutations.some((m) => m.kind === 'delete' && m.invokedAt < read.returnedAt && (m.version === undefined || m.version > floor.version!));
        if (!explained) violations.push({ key, read, reason: `returned not found after version ${floor.version} was acknowledged` });
      }
    }
  }
  return violations;
}
