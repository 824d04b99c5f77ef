// The bench command's workload: a seeded read/write mix over a set of keys, run by N concurrent
// callers against a subject (the engine, or the raw store), each operation timed into a
// perf_hooks histogram (HDR, no dependency). The same seed gives every subject the same sequence.
import { createHistogram, type RecordableHistogram } from 'node:perf_hooks';

export interface MixOptions {
  readonly ops: number;
  readonly readRatio: number;
  readonly keys: number;
  readonly seed: number;
}

/** Operation i reads (kind 0) or writes (kind 1) key keyIndex[i]. */
export interface MixPlan {
  readonly kinds: Uint8Array;
  readonly keyIndex: Uint32Array;
}

export interface BenchSubject {
  read(key: string): Promise<unknown>;
  write(key: string, sequence: number): Promise<unknown>;
}

export interface OperationStats {
  readonly count: number;
  readonly p50Ms: number;
  readonly p99Ms: number;
  readonly meanMs: number;
  readonly maxMs: number;
}

export interface MixResult {
  readonly ops: number;
  readonly elapsedMs: number;
  readonly opsPerSec: number;
  readonly errors: number;
  /** The first error's message, when some operation failed. */
  readonly firstError: string | undefined;
  readonly read: OperationStats;
  readonly write: OperationStats;
  /** Reads and writes together: the mix suite's row. */
  readonly all: OperationStats;
}

/** mulberry32: small, seeded, good enough to pick keys. */
function random(seed: number): () => number {
  let state = seed >>> 0;
  return () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

export function planMix({ ops, readRatio, keys, seed }: MixOptions): MixPlan {
  const next = random(seed);
  const kinds = new Uint8Array(ops);
  const keyIndex = new Uint32Array(ops);
  for (let i = 0; i < ops; i++) {
    kinds[i] = next() < readRatio ? 0 : 1;
    keyIndex[i] = Math.floor(next() * keys);
  }
  return { kinds, keyIndex };
}

export const keyName = (index: number): string => `k${index}`;

function stats(histogram: RecordableHistogram): OperationStats {
  // The histogram holds nanoseconds; an empty one reports NaN/huge numbers: report zeros.
  const count = histogram.count;
  const ms = (ns: number) => (count === 0 ? 0 : Math.round(ns) / 1e6);
  return { count, p50Ms: ms(histogram.percentile(50)), p99Ms: ms(histogram.percentile(99)), meanMs: ms(histogram.mean), maxMs: ms(histogram.max) };
}

/**
 * Runs the plan with `concurrency` callers, each taking the next operation when its last one is
 * done (a closed loop). `onProgress(done)` is called every 256 operations.
 */
export async function runMix(subject: BenchSubject, plan: MixPlan, concurrency: number, onProgress?: (done: number) => void): Promise<MixResult> {
  const ops = plan.kinds.length;
  const histograms = [createHistogram(), createHistogram()] as const;
  const all = createHistogram();
  let next = 0;
  let errors = 0;
  let firstError: string | undefined;
  const caller = async (): Promise<void> => {
    for (let i = next++; i < ops; i = next++) {
      const kind = plan.kinds[i]!;
      const key = keyName(plan.keyIndex[i]!);
      const started = process.hrtime.bigint();
      try {
        await (kind === 0 ? subject.read(key) : subject.write(key, i));
      } catch (error) {
        errors++;
        firstError ??= (error as Error)?.message ?? String(error);
      }
      const ns = Math.max(1, Number(process.hrtime.bigint() - started));
      (kind === 0 ? histograms[0] : histograms[1]).record(ns);
      all.record(ns);
      if ((i & 255) === 255) onProgress?.(i + 1);
    }
  };
  const started = performance.now();
  await Promise.all(Array.from({ length: Math.min(concurrency, Math.max(ops, 1)) }, caller));
  const elapsedMs = performance.now() - started;
  onProgress?.(ops);
  return {
    ops,
    elapsedMs: Math.round(elapsedMs * 1000) / 1000,
    opsPerSec: elapsedMs > 0 ? Math.round(ops / (elapsedMs / 1000)) : 0,
    errors,
    firstError,
    read: stats(histograms[0]),
    write: stats(histograms[1]),
    all: stats(all),
  };
}
