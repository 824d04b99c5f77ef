// The oracle over a chaos run's history (docs/protocol.md, "The test oracle"):
// 1. reads that overlap the documented window of a write invalidated through the journal are set
//    aside: plain-SQL writes (the triggers journal them) and writes acknowledged without a lease
//    (policy pragmatic journals them). The journal invalidates those within a bound, not at once,
//    and the protocol allows stale reads of their key until then;
// 2. the fast check (`checkVersions`): no read older than a write acknowledged before it began,
//    no value never written, no "not found" after an acknowledged write without a delete;
// 3. per-key linearizability (`checkLinearizable`, Wing–Gong–Lowe) with a time budget.
import { checkVersions, type HistoryEntry, type Violation } from '../history.js';
import { checkLinearizable, type LinearizabilityResult } from '../linearizability.js';
import { BYPASS_PROCESS } from './bypass.js';
import { JOURNALED, type NotedEntry } from './lines.js';

export interface CheckOptions {
  /** How long after a journaled write returned its key may still read stale, in ns. */
  readonly journalWindowNs: number;
  readonly linearizabilityDeadlineMs: number;
  /** Per key, the linearizability search runs on at most this many operations (a prefix). */
  readonly linearizabilityMaxOps: number;
  /**
   * Cache outages a scenario caused, in history ns: a journaled write acknowledged during one may
   * read stale until the outage ended (no drainer can replay before), plus the journal window.
   */
  readonly outages?: ReadonlyArray<{ readonly from: number; readonly to: number }>;
}

export interface LinearizabilityVerdict {
  readonly result: LinearizabilityResult;
  /** Keys with a violation, and keys whose search ran out of time. */
  readonly violatingKeys: readonly string[];
  readonly unknownKeys: readonly string[];
  /** Operations searched, of all operations of the history (less when a prefix was checked). */
  readonly checkedOps: number;
  readonly totalOps: number;
  readonly ms: number;
  /** The search's own explanation of the first violation. */
  readonly counterexample?: { readonly key: string; readonly reason: string; readonly failed: HistoryEntry; readonly lastLinearized: readonly HistoryEntry[] };
}

export interface CheckResult {
  readonly checked: readonly HistoryEntry[];
  readonly excludedReads: number;
  readonly journaledWrites: number;
  /**
   * What the windows hid: fast-check violations among the excluded reads, and the longest time from
   * the acknowledgement of the newer write to the end of a read that still returned older (the
   * observed length of the documented stale window).
   */
  readonly inWindows: { readonly violations: number; readonly maxLagMs: number; readonly worst?: Violation | undefined };
  readonly fast: readonly Violation[];
  readonly fastMs: number;
  readonly linearizability: LinearizabilityVerdict;
}

/** Whether the journal, not the writer, invalidates this write in the cache. */
export function journaled(e: HistoryEntry): boolean {
  return e.kind !== 'read' && (e.process === BYPASS_PROCESS || (e as NotedEntry).note === JOURNALED);
}

/** Reads that overlap [invoke, return + window] of a journaled write of their key. */
export function excludeJournalWindows(
  history: readonly HistoryEntry[],
  windowNs: number,
  outages: ReadonlyArray<{ readonly from: number; readonly to: number }> = [],
): { kept: HistoryEntry[]; excluded: number } {
  const windows = new Map<string, Array<[number, number]>>();
  for (const e of history) {
    if (!journaled(e) || e.outcome === 'fail') continue;
    const list = windows.get(e.key) ?? [];
    let end = e.returnedAt;
    for (const o of outages) if (e.invokedAt <= o.to && e.returnedAt >= o.from) end = Math.max(end, o.to);
    list.push([e.invokedAt, end + windowNs]);
    windows.set(e.key, list);
  }
  if (windows.size === 0) return { kept: [...history], excluded: 0 };
  for (const list of windows.values()) list.sort((a, b) => a[0] - b[0]);
  const kept: HistoryEntry[] = [];
  let excluded = 0;
  for (const e of history) {
    const list = e.kind === 'read' ? windows.get(e.key) : undefined;
    if (list !== undefined && overlaps(list, e.invokedAt, e.returnedAt)) excluded++;
    else kept.push(e);
  }
  return { kept, excluded };
}

/** Whether [from, to] overlaps one of `windows` (sorted by start; windows may nest or overlap). */
function overlaps(windows: ReadonlyArray<readonly [number, number]>, from: number, to: number): boolean {
  // the windows starting at or before `to`: the last of them first, back while one could still reach `from`
  let lo = 0;
  let hi = windows.length;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if (windows[mid]![0] <= to) lo = mid + 1;
    else hi = mid;
  }
  for (let i = lo - 1; i >= 0 && lo - i <= 64; i--) if (windows[i]![1] >= from) return true;
  // past 64 windows back, only a very long one could still reach: check them all
  for (let i = lo - 65; i >= 0; i--) if (windows[i]![1] >= from) return true;
  return false;
}

/** The fast check over the whole history, windows included: how stale the excluded reads were. */
function windowLag(history: readonly HistoryEntry[], outside: number): CheckResult['inWindows'] {
  const all = checkVersions(history);
  let maxLagNs = 0;
  let worst: Violation | undefined;
  for (const { read, key } of all) {
    // The version the read reflects. "Not found" says only that some delete was the last mutation it saw
    // (a fill from a store without the row caches version 0): take the newest delete begun before it returned.
    let seen = read.version ?? 0;
    if (read.value === undefined) {
      for (const d of history) {
        if (d.key === key && d.kind === 'delete' && d.outcome === 'ok' && d.invokedAt < read.returnedAt) seen = Math.max(seen, d.version ?? 0);
      }
    }
    let floor: HistoryEntry | undefined;
    for (const m of history) {
      if (m.key !== key || m.kind === 'read' || m.outcome !== 'ok' || m.version === undefined || m.returnedAt >= read.invokedAt) continue;
      if (m.version <= seen) continue;
      // the earliest acknowledgement the read should have seen
      if (floor === undefined || m.returnedAt < floor.returnedAt) floor = m;
    }
    if (floor !== undefined && read.returnedAt - floor.returnedAt > maxLagNs) {
      maxLagNs = read.returnedAt - floor.returnedAt;
      worst = all.find((v) => v.read === read);
    }
  }
  return { violations: Math.max(0, all.length - outside), maxLagMs: Math.round(maxLagNs / 1e4) / 100, worst };
}

/**
 * The operations invoked before the cut time of at most `maxOps` per key, with operations that had
 * not returned by then turned open (unknown writes and deletes, dropped reads). Any linearization of
 * the whole history restricted to them is one of this prefix, so a violation here is a violation.
 */
export function linearizablePrefix(history: readonly HistoryEntry[], maxOps: number): HistoryEntry[] {
  const byKey = new Map<string, HistoryEntry[]>();
  for (const e of history) {
    const list = byKey.get(e.key);
    if (list === undefined) byKey.set(e.key, [e]);
    else list.push(e);
  }
  const out: HistoryEntry[] = [];
  for (const entries of byKey.values()) {
    if (entries.length <= maxOps) {
      out.push(...entries);
      continue;
    }
    entries.sort((a, b) => a.invokedAt - b.invokedAt);
    const cut = entries[maxOps]!.invokedAt;
    for (const e of entries) {
      if (e.invokedAt >= cut) break;
      if (e.outcome !== 'ok' || e.returnedAt < cut) out.push(e);
      else if (e.kind !== 'read') out.push({ ...e, outcome: 'unknown', version: undefined });
    }
  }
  return out;
}

export function checkHistory(history: readonly HistoryEntry[], options: CheckOptions): CheckResult {
  const { kept, excluded } = excludeJournalWindows(history, options.journalWindowNs, options.outages);
  let started = performance.now();
  const fast = checkVersions(kept);
  const fastMs = performance.now() - started;

  started = performance.now();
  const searched = linearizablePrefix(kept, options.linearizabilityMaxOps);
  const report = checkLinearizable(searched, { deadlineMs: options.linearizabilityDeadlineMs });
  const first = report.keys.find((k) => k.result === 'violation');
  const linearizability: LinearizabilityVerdict = {
    result: report.result,
    violatingKeys: report.keys.filter((k) => k.result === 'violation').map((k) => k.key),
    unknownKeys: report.keys.filter((k) => k.result === 'unknown').map((k) => k.key),
    checkedOps: searched.length,
    totalOps: kept.length,
    ms: Math.round(performance.now() - started),
    ...(first?.counterexample === undefined
      ? {}
      : {
          counterexample: {
            key: first.key,
            reason: first.counterexample.reason,
            failed: first.counterexample.failed,
            lastLinearized: first.counterexample.linearized.slice(-6),
          },
        }),
  };
  const journaledWrites = history.filter((e) => journaled(e) && e.process !== BYPASS_PROCESS && e.outcome !== 'fail').length;
  return { checked: kept, excludedReads: excluded, journaledWrites, inWindows: windowLag(history, fast.length), fast, fastMs: Math.round(fastMs), linearizability };
}
