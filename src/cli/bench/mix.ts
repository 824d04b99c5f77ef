// The `mix` suite of `lockstep bench`: the engine in this process against the given backends, on a
// seeded read/write mix, then the raw store alone on the same mix, for the ratio. Node's own
// histograms time each operation: nothing here loads a dev dependency, so it runs in any install.
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { ReadSource } from '../../engine/api.js';
import type { CacheAdapter, StoreAdapter } from '../../types.js';
import { openCache, openStore, parseStoreSpec, type CacheSpec, type StoreSpec } from '../../backend-specs.js';
import { createWriteThrough } from '../../compose/write-through.js';
import type { Progress } from '../progress.js';
import type { BenchReport } from './report.js';
import { buildRows, type Row } from './rows.js';
import { keyName, planMix, runMix, type BenchSubject, type MixResult } from './workload.js';

export const MIX_SUITE = 'mix';
export const MIX_SUBJECT = 'lockstep engine';
export const MIX_BASELINE = 'raw store';

export interface MixConfig {
  /** Undefined: a temporary SQLite file, removed afterwards. */
  readonly store: StoreSpec | undefined;
  readonly cache: CacheSpec;
  readonly ops: number;
  readonly concurrency: number;
  readonly readRatio: number;
  readonly keys: number;
  readonly valueBytes: number;
  readonly seed: number;
}

export interface MixOutcome {
  readonly report: BenchReport;
  /** Two rows in the one row shape of every suite: the engine, and the raw store (the baseline). */
  readonly rows: Row[];
  /** The first failed operation's message, if any failed. */
  readonly failed: string | undefined;
}

export async function runMixSuite(config: MixConfig, progress: Progress): Promise<MixOutcome> {
  const cleanups: Array<() => unknown> = [];
  try {
    let storeSpec = config.store;
    if (storeSpec === undefined) {
      const dir = mkdtempSync(join(tmpdir(), 'lockstep-bench-'));
      cleanups.push(() => rmSync(dir, { recursive: true, force: true }));
      storeSpec = parseStoreSpec(`sqlite:${join(dir, 'bench.db')}`);
    }
    const store = await openStore(storeSpec);
    cleanups.push(() => store.close());
    const cache = await openCache(config.cache, { maxEntries: Math.max(100_000, config.keys * 2) });
    cleanups.push(() => cache.close());
    const report = await benchmark(config, config.store?.spec ?? 'sqlite (a temporary file)', store, cache, progress, config.store !== undefined);
    return { report, rows: mixRows(report), failed: report.engine.firstError ?? report.rawStore.firstError };
  } finally {
    for (const cleanup of cleanups.reverse()) await Promise.resolve().then(cleanup).catch(() => undefined);
  }
}

/** The report as rows: ops/s of the whole mix, p50/p99 over all its operations, ratio of mean latencies. */
export function mixRows(report: BenchReport): Row[] {
  const caseName = `${report.ops} ops, ${Math.round(report.readRatio * 100)}% reads, ${report.keys} keys, concurrency ${report.concurrency}, ~${report.valueBytes} B values, seed ${report.seed}; store ${report.store}, cache ${report.cache}`;
  const measure = (subject: string, result: MixResult) => ({
    subject,
    meanUs: Math.max(result.all.meanMs * 1000, 0.001),
    p50Us: result.all.p50Ms * 1000,
    p99Us: result.all.p99Ms * 1000,
  });
  const rows = buildRows(MIX_SUITE, caseName, MIX_BASELINE, [measure(MIX_SUBJECT, report.engine), measure(MIX_BASELINE, report.rawStore)]);
  // Closed-loop callers: the whole run's throughput, not 1 / mean latency, is what was measured.
  return rows.map((row) => ({ ...row, opsPerSec: row.subject === MIX_BASELINE ? report.rawStore.opsPerSec : report.engine.opsPerSec }));
}

async function benchmark(config: MixConfig, storeName: string, store: StoreAdapter, cache: CacheAdapter, progress: Progress, cleanUp: boolean): Promise<BenchReport> {
  const namespace = `bench-${randomBytes(4).toString('hex')}`;
  const rawNamespace = `${namespace}-raw`;
  const engine = createWriteThrough({ store, cache, namespace, journal: false, metrics: false });
  const pad = 'x'.repeat(config.valueBytes);
  const valueOf = (key: string, sequence: number) => ({ key, sequence, pad });
  const storeWrite = { journal: false, deadlineMs: 10_000 } as const;
  const readSources: Record<ReadSource, number> = { hit: 0, miss: 0, bypass: 0, 'store-fallback': 0 };

  const subjects: ReadonlyArray<readonly [label: string, subject: BenchSubject]> = [
    [
      'engine',
      {
        read: async (key) => readSources[(await engine.readEntry(key)).source]++,
        write: (key, sequence) => engine.write(key, valueOf(key, sequence)),
      },
    ],
    [
      'raw store',
      {
        read: async (key) => {
          const row = await store.read(rawNamespace, key);
          return row === undefined ? undefined : JSON.parse(row.payload);
        },
        write: async (key, sequence) => store.write(rawNamespace, key, JSON.stringify(valueOf(key, sequence)), storeWrite),
      },
    ],
  ];
  const plan = planMix(config);
  const results: MixResult[] = [];
  try {
    for (const [label, subject] of subjects) {
      // Every key exists before the timed run: reads measure reads, not "not found".
      await forEachKey(config.keys, config.concurrency, (key, i) => subject.write(key, -1 - i), (done) => progress.show(`${label}: writing keys`, done, config.keys));
      results.push(await runMix(subject, plan, config.concurrency, (done) => progress.show(`${label}: ${config.ops} ops`, done, config.ops)));
    }
  } finally {
    if (cleanUp) {
      await forEachKey(config.keys, config.concurrency, async (key) => {
        await engine.delete(key).catch(() => undefined);
        await store.delete(rawNamespace, key, storeWrite).catch(() => undefined);
      }, (done) => progress.show('removing the keys', done, config.keys));
    }
    await engine.close();
  }
  const [engineResult, rawResult] = results as [MixResult, MixResult];
  return {
    store: storeName,
    cache: config.cache.spec,
    ops: config.ops,
    concurrency: config.concurrency,
    readRatio: config.readRatio,
    keys: config.keys,
    valueBytes: config.valueBytes,
    seed: config.seed,
    engine: { ...engineResult, readSources },
    rawStore: rawResult,
    ratio: rawResult.opsPerSec > 0 ? Math.round((engineResult.opsPerSec / rawResult.opsPerSec) * 100) / 100 : 0,
  };
}

/** Runs `action` on every key name with `concurrency` callers; a failure stops the run. */
async function forEachKey(keys: number, concurrency: number, action: (key: string, index: number) => Promise<unknown>, onProgress: (done: number) => void): Promise<void> {
  let next = 0;
  let done = 0;
  const caller = async (): Promise<void> => {
    for (let i = next++; i < keys; i = next++) {
      await action(keyName(i), i);
      if ((++done & 127) === 0) onProgress(done);
    }
  };
  await Promise.all(Array.from({ length: Math.min(concurrency, keys) }, caller));
  onProgress(keys);
}
