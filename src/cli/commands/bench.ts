// `lockstep bench`: the engine in this process against the given backends, on a seeded read/write
// mix, then the raw store alone on the same mix, for the ratio. Node's own histograms time each
// operation: nothing here loads a dev dependency (the suites under bench/ use tinybench).
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { ReadSource } from '../../engine/api.js';
import type { CacheAdapter, StoreAdapter } from '../../types.js';
import { EXIT, formatHelp, fromEnv, HELP_OPTION, integerOption, parseCommandArgs, reportUsageError, UsageError } from '../args.js';
import { BACKEND_HELP, BACKEND_OPTIONS, DEFAULT_CACHE, type Backends } from '../backend-flags.js';
import { openCache, openStore, parseCacheSpec, parseStoreSpec, type CacheSpec, type StoreSpec } from '../../backend-specs.js';
import { formatBenchReport, type BenchReport } from '../bench/report.js';
import { keyName, planMix, runMix, type BenchSubject } from '../bench/workload.js';
import { defaultIo, type CommandIo, type Env } from '../io.js';
import { createProgress, progressWanted, type Progress } from '../progress.js';
import { jsonDocument } from '../render.js';
import { createWriteThrough } from '../../compose/write-through.js';

export const usage = formatHelp({
  usage: 'bench [options]',
  description: `Benchmarks the engine in this process: --keys keys are written, then --ops operations (a seeded
mix, --read-ratio of them reads, the rest writes, on uniformly chosen keys) run from --concurrency
callers at once, each timed. Then the raw store alone (store.read + JSON.parse, store.write) runs
the same mix on a namespace of its own, for the ratio. Prints ops/s and p50/p99 per operation for
both, and where the engine's reads were answered (hit, miss, bypass). A progress bar shows on a
terminal (never with --json). Metrics recording and the journal poller are off.`,
  options: [
    [BACKEND_HELP[0]![0], BACKEND_HELP[0]![1], 'LOCKSTEP_STORE, default an SQLite file in a temp dir, removed afterwards'],
    BACKEND_HELP[1]!,
    ['--ops N', 'timed operations per subject (default 20000)'],
    ['--concurrency N', 'callers at once (default 16)'],
    ['--read-ratio R', 'share of reads, 0 to 1 (default 0.9)'],
    ['--keys N', 'distinct keys (default 1000)'],
    ['--value-bytes N', 'padding in each value (default 100)'],
    ['--seed N', 'seed of the mix (default 1)'],
    ['--json', 'print one JSON document instead of the table'],
    ['-h, --help', 'show this help'],
  ],
  notes: `On a store of yours the run writes to namespaces bench-<random> and bench-<random>-raw and deletes
its keys at the end (their tombstones are pruned with the journal). Compare runs on one machine:
the ratio to the raw store, not the absolute figures, is what carries over.`,
  examples: [
    'lockstep bench',
    'lockstep bench --ops 100000 --concurrency 64 --read-ratio 0.95',
    'lockstep bench --store postgres://postgres@127.0.0.1/test --cache redis://127.0.0.1:6379 --json',
  ],
  exit: '0 done, no operation failed; 2 bad input; 3 the store or the cache failed (or some operation did).',
});

export interface BenchConfig {
  readonly help: boolean;
  readonly json: boolean;
  /** Undefined: a temporary SQLite file. */
  readonly store: StoreSpec | undefined;
  readonly cache: CacheSpec;
  readonly ops: number;
  readonly concurrency: number;
  readonly readRatio: number;
  readonly keys: number;
  readonly valueBytes: number;
  readonly seed: number;
}

export function parseBenchArgs(argv: readonly string[], env: Env): BenchConfig {
  const { values } = parseCommandArgs(argv, {
    ...BACKEND_OPTIONS,
    ops: { type: 'string' },
    concurrency: { type: 'string' },
    'read-ratio': { type: 'string' },
    keys: { type: 'string' },
    'value-bytes': { type: 'string' },
    seed: { type: 'string' },
    json: { type: 'boolean' },
    ...HELP_OPTION,
  });
  const ratioText = values['read-ratio'] ?? '0.9';
  const readRatio = /^(0(\.[0-9]+)?|1(\.0+)?|\.[0-9]+)$/.test(ratioText) ? Number(ratioText) : Number.NaN;
  if (Number.isNaN(readRatio)) throw new UsageError(`--read-ratio must be a number from 0 to 1 (got ${JSON.stringify(ratioText)})`);
  const store = values.store ?? fromEnv(env, 'LOCKSTEP_STORE');
  return {
    help: values.help ?? false,
    json: values.json ?? false,
    store: store === undefined ? undefined : parseStoreSpec(store),
    cache: parseCacheSpec(values.cache ?? fromEnv(env, 'LOCKSTEP_CACHE') ?? DEFAULT_CACHE),
    ops: integerOption(values.ops ?? '20000', '--ops', 1, 100_000_000),
    concurrency: integerOption(values.concurrency ?? '16', '--concurrency', 1, 10_000),
    readRatio,
    keys: integerOption(values.keys ?? '1000', '--keys', 1, 10_000_000),
    valueBytes: integerOption(values['value-bytes'] ?? '100', '--value-bytes', 0, 10_000_000),
    seed: integerOption(values.seed ?? '1', '--seed', 0, 2 ** 31),
  };
}

export async function run(argv: readonly string[], io: CommandIo = defaultIo): Promise<number> {
  let config: BenchConfig;
  try {
    config = parseBenchArgs(argv, io.env);
  } catch (error) {
    return reportUsageError(io.stderr, 'bench', error);
  }
  if (config.help) {
    io.stdout.write(usage);
    return EXIT.ok;
  }
  const cleanups: Array<() => unknown> = [];
  const progress = createProgress(io.stderr, { enabled: progressWanted(io.stderr, config.json), delayMs: 0 });
  try {
    let storeSpec = config.store;
    if (storeSpec === undefined) {
      const dir = mkdtempSync(join(tmpdir(), 'lockstep-bench-'));
      cleanups.push(() => rmSync(dir, { recursive: true, force: true }));
      storeSpec = parseStoreSpec(`sqlite:${join(dir, 'bench.db')}`);
    }
    const backends: Backends = { store: storeSpec, cache: config.cache };
    const store = await openStore(backends.store);
    cleanups.push(() => store.close());
    const cache = await openCache(backends.cache, { maxEntries: Math.max(100_000, config.keys * 2) });
    cleanups.push(() => cache.close());
    const report = await benchmark(config, backends, store, cache, progress, config.store !== undefined);
    progress.stop();
    io.stdout.write(config.json ? jsonDocument(report) : formatBenchReport(report));
    const failed = report.engine.firstError ?? report.rawStore.firstError;
    if (failed !== undefined) io.stderr.write(`lockstep bench: some operations failed, the first: ${failed}\n`);
    return failed === undefined ? EXIT.ok : EXIT.failed;
  } catch (error) {
    progress.stop();
    io.stderr.write(`lockstep bench: ${(error as Error)?.message ?? String(error)}\n`);
    return EXIT.failed;
  } finally {
    for (const cleanup of cleanups.reverse()) await Promise.resolve().then(cleanup).catch(() => undefined);
  }
}

async function benchmark(
  config: BenchConfig,
  backends: Backends,
  store: StoreAdapter,
  cache: CacheAdapter,
  progress: Progress,
  cleanUp: boolean,
): Promise<BenchReport> {
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
        write: (key, sequence) => store.write(rawNamespace, key, JSON.stringify(valueOf(key, sequence)), storeWrite),
      },
    ],
  ];
  const plan = planMix(config);
  const results = [];
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
  const [engineResult, rawResult] = results as [NonNullable<(typeof results)[0]>, NonNullable<(typeof results)[0]>];
  return {
    store: backends.store.spec,
    cache: backends.cache.spec,
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
