// A chaos run's report: what ran, which faults hit it, what the oracle found, whether the keys
// converged; as a table for people or JSON for machines, and the exit code of `lockstep chaos`.
import type { HistoryEntry, Outcome, Violation } from '../history.js';
import type { LinearizabilityVerdict } from './check.js';
import type { KeyStateReport } from './converge.js';
import type { ChaosImpl } from './plan.js';
import { mergeBounds, type WindowBound, type WindowBounds } from './bounds.js';

export interface ViolationExample {
  readonly key: string;
  readonly reason: string;
  /** The violating read and the operations on its key around it; times in ms from the run's start. */
  readonly excerpt: readonly string[];
}

export interface ChaosReport {
  readonly impl: ChaosImpl;
  readonly seed: number;
  readonly store: string;
  readonly cache: string;
  readonly processes: number;
  readonly clients: number;
  readonly keys: number;
  /** Operations the clients invoked (plain-SQL writes not included). */
  readonly ops: number;
  readonly durationMs: number;
  readonly opsPerSecond: number;
  /** Operations by kind and outcome; `sql-write` are the plain-SQL writes. */
  readonly byKind: Readonly<Record<string, Readonly<Partial<Record<Outcome, number>>>>>;
  /** Where reads were answered from (hit, miss, bypass, store-fallback). */
  readonly readSources: Readonly<Record<string, number>>;
  readonly faults: Readonly<Record<string, number>>;
  /** Reads set aside because they overlapped the documented window of a journaled write (plain SQL, or acknowledged without a lease). */
  readonly excludedReads: number;
  /** Writes and deletes acknowledged without a cache lease whose fencing failed too (journaled for replay, policy pragmatic). */
  readonly journaledWrites: number;
  /** Stale reads among those left out, and the longest a read still returned older after the newer write's acknowledgement. */
  readonly staleInWindows: { readonly violations: number; readonly maxLagMs: number; readonly worst?: ViolationExample | undefined };
  readonly violations: {
    readonly fast: number;
    readonly linearizability: LinearizabilityVerdict['result'];
    readonly linearizabilityDetail: Omit<LinearizabilityVerdict, 'result' | 'counterexample'>;
    readonly examples: readonly ViolationExample[];
  };
  readonly converged: boolean;
  readonly convergeMs: number;
  readonly nonConvergedKeys: readonly KeyStateReport[];
  readonly finalStates: Readonly<Record<string, number>>;
  /** The engine's counters, summed over processes (hits, misses, bypasses, fills rejected, …). */
  readonly counters: Readonly<Record<string, number>>;
  /** The seed's named scenario (scenarios.ts): at which operation count it began, what it did, what it asserted. */
  readonly scenario?: {
    readonly name: string;
    readonly at: number;
    readonly notes: readonly string[];
    readonly checks: ReadonlyArray<{ readonly name: string; readonly ok: boolean; readonly detail: string }>;
  } | undefined;
  /** The measured window of the pragmatic policy: acknowledgement of a journaled write → its row replayed. */
  readonly windowBounds: WindowBounds;
  /** Workers that died unbidden (an unhandled error) during the seed's scenario: each fails the seed. */
  readonly crashes: readonly string[];
  /** Operations invoked (all processes) up to the first read the fast check flagged. */
  readonly firstViolationOp: number | undefined;
  /** Found something: a violation of either check, a key that did not converge, or a failed scenario check. */
  readonly caught: boolean;
  readonly checkMs: number;
}

/** Lockstep passes with nothing caught; the naive implementation "passes" (the harness has teeth) when it is caught. */
export function passed(report: ChaosReport): boolean {
  return report.impl === 'lockstep' ? !report.caught : report.caught;
}

export function exitCode(reports: readonly ChaosReport[]): number {
  return reports.length > 0 && reports.every(passed) ? 0 : 1;
}

const boundLine = (label: string, b: WindowBound) =>
  `${label.padEnd(24)} ${pad(b.writes, 7)} ${pad(b.replayed, 9)} ${pad(b.p50Ms, 9)} ${pad(b.p99Ms, 9)} ${pad(b.maxMs, 9)}`;

/** The pragmatic window's bound (ack of a journaled write → its row replayed), per scenario and in all. */
export function formatBounds(reports: readonly ChaosReport[]): string[] {
  const withBounds = reports.filter((r) => r.windowBounds !== undefined);
  if (withBounds.length === 0) return [];
  const lines = ['', `window bound: ack of a journaled write -> its journal row replayed (ms)`, `${'scenario / kind'.padEnd(24)} ${'writes'.padStart(7)} ${'replayed'.padStart(9)} ${'p50'.padStart(9)} ${'p99'.padStart(9)} ${'max'.padStart(9)}`];
  const byScenario = new Map<string, WindowBounds[]>();
  for (const r of withBounds) {
    const name = r.scenario?.name ?? '-';
    byScenario.set(name, [...(byScenario.get(name) ?? []), r.windowBounds]);
  }
  for (const [name, list] of [...byScenario].sort()) lines.push(boundLine(name, mergeBounds(list.map((b) => b.journaled))));
  lines.push(boundLine('all: unleased writes', mergeBounds(withBounds.map((r) => r.windowBounds.journaled))));
  lines.push(boundLine('all: plain-SQL writes', mergeBounds(withBounds.map((r) => r.windowBounds.sql))));
  return lines;
}

/** One line per operation, for a violation's excerpt. */
export function describeEntry(e: HistoryEntry, startNs: number): string {
  const ms = (ns: number) => ((ns - startNs) / 1e6).toFixed(3);
  const what =
    e.kind === 'read'
      ? `read → ${e.value === undefined ? 'not found' : JSON.stringify(e.value)} v${e.version ?? '?'}`
      : e.kind === 'write'
        ? `write ${JSON.stringify(e.value)} → v${e.version ?? '?'}`
        : `delete → v${e.version ?? '?'}`;
  const returned = e.outcome === 'unknown' && e.version === undefined ? 'open' : ms(e.returnedAt);
  const note = (e as { note?: string }).note;
  return `[${ms(e.invokedAt)} .. ${returned}] ${e.process.padEnd(6)} ${e.key} ${what} (${e.outcome}${note === undefined ? '' : `, ${note}`})`;
}

/** The violating read and what happened on its key around it: the write of the value it returned, the newer acknowledged write, the concurrent mutations. */
export function violationExample(violation: Violation, history: readonly HistoryEntry[], startNs: number): ViolationExample {
  const { read, key } = violation;
  const onKey = history.filter((e) => e.key === key);
  const writer = read.value === undefined ? undefined : onKey.find((e) => e.kind === 'write' && e.value === read.value);
  let floor: HistoryEntry | undefined;
  for (const m of onKey) {
    if (m.kind !== 'read' && m.outcome === 'ok' && m.version !== undefined && m.returnedAt < read.invokedAt && (floor === undefined || m.version > floor.version!)) floor = m;
  }
  // mutations overlapping the read or just before it; open ones (killed mid-write) only if recent
  const near = onKey.filter(
    (e) =>
      e.kind !== 'read' &&
      e.outcome !== 'fail' &&
      e.returnedAt >= read.invokedAt - 2e6 &&
      e.invokedAt <= read.returnedAt &&
      (e.outcome !== 'unknown' || e.invokedAt >= read.invokedAt - 50e6),
  );
  const shown = [...new Set([writer, floor, ...near.slice(-8), read].filter((e): e is HistoryEntry => e !== undefined))].sort((a, b) => a.invokedAt - b.invokedAt);
  return { key, reason: violation.reason, excerpt: shown.map((e) => (e === read ? `→ ${describeEntry(e, startNs)}` : `  ${describeEntry(e, startNs)}`)) };
}

const pad = (text: string | number, width: number) => String(text).padStart(width);

export function formatTable(reports: readonly ChaosReport[]): string {
  if (reports.length === 0) return 'no runs\n';
  const first = reports[0]!;
  const lines: string[] = [];
  lines.push(
    `lockstep chaos: impl ${first.impl}, store ${first.store}, cache ${first.cache}, ${first.processes} processes × ${first.clients} clients, ${first.keys} keys`,
  );
  lines.push('');
  lines.push(`${'seed'.padStart(6)} ${'scenario'.padStart(22)} ${'ops'.padStart(9)} ${'ops/s'.padStart(7)} ${'faults'.padStart(7)} ${'excl'.padStart(6)} ${'fast'.padStart(6)} ${'linearizable'.padStart(13)} ${'converged'.padStart(10)} ${'ms'.padStart(6)}  verdict`);
  for (const r of reports) {
    const faults = Object.values(r.faults).reduce((a, b) => a + b, 0);
    const verdict = r.impl === 'lockstep' ? (r.caught ? 'FAIL' : 'pass') : r.caught ? 'caught (teeth)' : 'NOT CAUGHT';
    lines.push(
      `${pad(r.seed, 6)} ${pad(r.scenario?.name ?? '-', 22)} ${pad(r.ops, 9)} ${pad(r.opsPerSecond, 7)} ${pad(faults, 7)} ${pad(r.excludedReads, 6)} ${pad(r.violations.fast, 6)} ${pad(r.violations.linearizability, 13)} ${pad(r.converged ? 'yes' : 'NO', 10)} ${pad(r.convergeMs, 6)}  ${verdict}`,
    );
  }
  lines.push('(excl: reads left out, within a journal window; fast: fast-check violations; ms: time to converge)');
  const sum = (f: (r: ChaosReport) => number) => reports.reduce((n, r) => n + f(r), 0);
  lines.push(
    `journal windows: ${sum((r) => r.faults['sql-write'] ?? 0)} plain-SQL writes, ${sum((r) => r.journaledWrites)} writes acknowledged unleased and unfenced; ` +
      `${sum((r) => r.excludedReads)} reads left out, ${sum((r) => r.staleInWindows.violations)} of them stale, ` +
      `at most ${Math.max(...reports.map((r) => r.staleInWindows.maxLagMs))} ms after the newer write was acknowledged`,
  );
  lines.push(...formatBounds(reports));
  for (const r of reports) {
    for (const crash of r.crashes ?? []) lines.push(`seed ${r.seed}: CRASH: ${crash}`);
    for (const c of r.scenario?.checks ?? []) lines.push(`seed ${r.seed} ${r.scenario!.name}: ${c.ok ? 'ok' : 'FAILED'}: ${c.name}: ${c.detail}`);
    if (r.caught && r.firstViolationOp !== undefined) lines.push(`seed ${r.seed} (${r.scenario?.name ?? 'no scenario'}): first stale read after ${r.firstViolationOp} operations`);
  }
  const totals = new Map<string, number>();
  for (const r of reports) for (const [kind, n] of Object.entries(r.faults)) totals.set(kind, (totals.get(kind) ?? 0) + n);
  lines.push('');
  lines.push(`faults: ${[...totals].sort().map(([k, n]) => `${k} ${n}`).join(', ') || 'none'}`);
  const ops = new Map<string, number>();
  for (const r of reports) for (const [kind, outcomes] of Object.entries(r.byKind)) for (const [o, n] of Object.entries(outcomes)) ops.set(`${kind} ${o}`, (ops.get(`${kind} ${o}`) ?? 0) + (n ?? 0));
  lines.push(`operations: ${[...ops].sort().map(([k, n]) => `${k} ${n}`).join(', ')}`);
  const sources = new Map<string, number>();
  for (const r of reports) for (const [s, n] of Object.entries(r.readSources)) sources.set(s, (sources.get(s) ?? 0) + n);
  if (sources.size > 0) lines.push(`reads answered by: ${[...sources].sort().map(([k, n]) => `${k} ${n}`).join(', ')}`);
  for (const r of reports) {
    for (const k of r.nonConvergedKeys) lines.push(`seed ${r.seed}: key ${k.key} in state ${k.state}: ${k.description}`);
    if (r.violations.linearizabilityDetail.unknownKeys.length > 0) {
      lines.push(`seed ${r.seed}: linearizability search ran out of time on ${r.violations.linearizabilityDetail.unknownKeys.join(', ')}`);
    }
    if (r.violations.linearizabilityDetail.checkedOps < r.violations.linearizabilityDetail.totalOps) {
      lines.push(
        `seed ${r.seed}: linearizability searched a prefix of ${r.violations.linearizabilityDetail.checkedOps} of ${r.violations.linearizabilityDetail.totalOps} operations`,
      );
    }
  }
  const worst = [...reports].sort((a, b) => b.staleInWindows.maxLagMs - a.staleInWindows.maxLagMs)[0];
  if (worst?.staleInWindows.worst !== undefined) {
    lines.push('');
    lines.push(`the stalest read in a journal window (seed ${worst.seed}, left out of the checks): ${worst.staleInWindows.worst.reason}`);
    for (const line of worst.staleInWindows.worst.excerpt) lines.push(`  ${line}`);
  }
  const withExamples = reports.filter((r) => r.violations.examples.length > 0);
  for (const r of withExamples.slice(0, 3)) {
    for (const example of r.violations.examples.slice(0, 2)) {
      lines.push('');
      lines.push(`seed ${r.seed}, key ${example.key}: ${example.reason}`);
      for (const line of example.excerpt) lines.push(`  ${line}`);
    }
  }
  const caught = reports.filter((r) => r.caught).length;
  lines.push('');
  lines.push(
    first.impl === 'lockstep'
      ? `${reports.length - caught} of ${reports.length} seeds passed (no violation, every key in A, B or C)`
      : `naive write-through caught on ${caught} of ${reports.length} seeds`,
  );
  return `${lines.join('\n')}\n`;
}
