// The bench command's report: a table for people, the same figures as one JSON document.
import type { MixResult, OperationStats } from './workload.js';

export interface BenchReport {
  readonly store: string;
  readonly cache: string;
  readonly ops: number;
  readonly concurrency: number;
  readonly readRatio: number;
  readonly keys: number;
  readonly valueBytes: number;
  readonly seed: number;
  readonly engine: MixResult & { readonly readSources: Readonly<Record<string, number>> };
  readonly rawStore: MixResult;
  /** The engine's ops/s over the raw store's, on the same mix. */
  readonly ratio: number;
}

const count = (n: number) => n.toLocaleString('en-US');

/** 0.0031 ms → "3.10µs", 1.2 → "1.20ms", 1500 → "1.50s": three significant digits. */
export function duration(ms: number): string {
  const digits = (x: number) => (x >= 100 ? x.toFixed(0) : x.toPrecision(3));
  if (ms === 0) return '-';
  if (ms < 1) return `${digits(ms * 1000)}µs`;
  if (ms < 1000) return `${digits(ms)}ms`;
  return `${digits(ms / 1000)}s`;
}

function row(label: string, result: MixResult): string[] {
  const op = (stats: OperationStats) => [duration(stats.p50Ms), duration(stats.p99Ms)];
  return [label, count(result.opsPerSec), ...op(result.read), ...op(result.write), count(result.errors)];
}

export function formatBenchReport(report: BenchReport): string {
  const header = ['', 'ops/s', 'read p50', 'read p99', 'write p50', 'write p99', 'errors'];
  const rows = [header, row('engine', report.engine), row('raw store', report.rawStore)];
  const widths = header.map((_, column) => Math.max(...rows.map((cells) => cells[column]!.length)));
  const table = rows.map((cells) => cells.map((cell, column) => (column === 0 ? cell.padEnd(widths[column]!) : cell.padStart(widths[column]!))).join('  ')).join('\n');
  const sources = Object.entries(report.engine.readSources)
    .map(([source, n]) => `${count(n)} ${source}`)
    .join(', ');
  return `lockstep bench: ${count(report.ops)} ops, ${Math.round(report.readRatio * 100)}% reads, ${count(report.keys)} keys, concurrency ${report.concurrency}, values ~${report.valueBytes} B, seed ${report.seed}
store ${report.store}, cache ${report.cache}

${table}

engine / raw store: ${report.ratio.toFixed(2)}× the ops/s${sources === '' ? '' : `; engine reads: ${sources}`}
`;
}
