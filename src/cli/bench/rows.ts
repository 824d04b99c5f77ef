// Turning measurements into rows: per-operation figures and the ratio of each subject to the
// case's baseline, then a plain-text table. Pure functions, unit-tested on synthetic numbers. Every
// suite of `lockstep bench` (the mix, and bench/'s suites) reports in this one row shape.

/** Latency figures of one timed iteration, in milliseconds (tinybench's `latency` statistics). */
export interface IterationLatency {
  readonly mean: number;
  readonly p50: number;
  readonly p99: number;
}

/** Per-operation figures of one subject, in microseconds. */
export interface Measurement {
  readonly subject: string;
  readonly meanUs: number;
  readonly p50Us: number;
  readonly p99Us: number;
}

export interface Row {
  readonly suite: string;
  readonly case: string;
  readonly subject: string;
  readonly opsPerSec: number;
  readonly p50Us: number;
  readonly p99Us: number;
  readonly baseline: string;
  /** Subject mean latency / baseline mean latency: 1 for the baseline, above 1 when slower. */
  readonly ratio: number;
}

/**
 * Per-operation figures from iteration latencies when each iteration ran `batch` operations.
 * With a batch above 1, p50 and p99 are percentiles of per-iteration means, not of single operations.
 */
export function perOperation(subject: string, latency: IterationLatency, batch: number): Measurement {
  if (!Number.isInteger(batch) || batch < 1) throw new RangeError(`batch must be a positive integer (got ${batch})`);
  const usPerOp = 1000 / batch;
  return { subject, meanUs: latency.mean * usPerOp, p50Us: latency.p50 * usPerOp, p99Us: latency.p99 * usPerOp };
}

/** Mean and linearly interpolated p50/p99 of samples (as tinybench computes them), e.g. several rounds pooled. */
export function summarize(samples: readonly number[]): IterationLatency {
  if (samples.length === 0) throw new RangeError('no samples to summarize');
  const sorted = Float64Array.from(samples).sort();
  let sum = 0;
  for (const value of sorted) sum += value;
  const quantile = (q: number): number => {
    const at = (sorted.length - 1) * q;
    const low = Math.floor(at);
    const high = Math.ceil(at);
    return sorted[low]! + (sorted[high]! - sorted[low]!) * (at - low);
  };
  return { mean: sum / sorted.length, p50: quantile(0.5), p99: quantile(0.99) };
}

export function round(value: number, digits: number): number {
  const scale = 10 ** digits;
  return Math.round(value * scale) / scale;
}

/** Rows for one case, in the order given; ratios are against the baseline's mean latency. */
export function buildRows(suite: string, caseName: string, baseline: string, measurements: readonly Measurement[]): Row[] {
  const base = measurements.find((m) => m.subject === baseline);
  if (base === undefined) throw new Error(`case ${suite}: no measurement for the baseline "${baseline}"`);
  if (!(base.meanUs > 0)) throw new Error(`case ${suite}: the baseline's mean latency must be positive (got ${base.meanUs})`);
  return measurements.map((m) => {
    if (!(m.meanUs > 0)) throw new Error(`case ${suite}: ${m.subject}'s mean latency must be positive (got ${m.meanUs})`);
    return {
      suite,
      case: caseName,
      subject: m.subject,
      opsPerSec: Math.round(1e6 / m.meanUs),
      p50Us: round(m.p50Us, 3),
      p99Us: round(m.p99Us, 3),
      baseline,
      ratio: m.subject === baseline ? 1 : round(m.meanUs / base.meanUs, 3),
    };
  });
}

function formatNumber(value: number, digits: number): string {
  return value.toLocaleString('en-US', { minimumFractionDigits: digits, maximumFractionDigits: digits });
}

/** A fixed-width table, one block per suite, ratio as "1.00x". */
export function formatTable(rows: readonly Row[]): string {
  const header = ['suite', 'subject', 'ops/s', 'p50 µs', 'p99 µs', 'ratio'];
  const cells = rows.map((r) => [
    r.suite,
    r.subject === r.baseline ? `${r.subject} (baseline)` : r.subject,
    formatNumber(r.opsPerSec, 0),
    formatNumber(r.p50Us, r.p50Us < 10 ? 3 : 1),
    formatNumber(r.p99Us, r.p99Us < 10 ? 3 : 1),
    `${formatNumber(r.ratio, 2)}x`,
  ]);
  const widths = header.map((h, i) => Math.max(h.length, ...cells.map((c) => c[i]!.length)));
  const numeric = new Set([2, 3, 4, 5]);
  const line = (c: readonly string[]): string =>
    c.map((cell, i) => (numeric.has(i) ? cell.padStart(widths[i]!) : cell.padEnd(widths[i]!))).join('  ').trimEnd();
  const out = [line(header), widths.map((w) => '-'.repeat(w)).join('  ')];
  let previous: string | undefined;
  for (const [i, row] of rows.entries()) {
    if (previous !== undefined && row.suite !== previous) out.push('');
    previous = row.suite;
    out.push(line(cells[i]!));
  }
  return out.join('\n');
}
