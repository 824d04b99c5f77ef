// `lockstep bench` — also `npm run bench`: one program, one set of flags. Suites: `mix` (the engine
// against the given backends on a seeded read/write mix, beside the raw store; runs in any install)
// and, from a clone, the suites of bench/ (peers and raw drivers, dev dependencies). Every suite
// reports rows of one shape: {suite, case, subject, opsPerSec, p50Us, p99Us, baseline, ratio}.
import { EXIT, formatHelp, fromEnv, HELP_OPTION, integerOption, parseCommandArgs, reportUsageError, UsageError } from '../args.js';
import { BACKEND_HELP, BACKEND_OPTIONS, DEFAULT_CACHE } from '../backend-flags.js';
import { parseCacheSpec, parseStoreSpec } from '../../backend-specs.js';
import { loadDevSuites, type DevSuites, type DevSuitesLoad } from '../bench/dev-suites.js';
import { MIX_SUITE, runMixSuite, type MixConfig } from '../bench/mix.js';
import { formatBenchReport } from '../bench/report.js';
import { formatTable, type Row } from '../bench/rows.js';
import { defaultIo, type CommandIo, type Env } from '../io.js';
import { createProgress, progressWanted } from '../progress.js';

export const usage = formatHelp({
  usage: 'bench [--suite NAME]... [--quick] [--json] [mix options]',
  description: `Benchmarks Lockstep against a baseline in the same run and prints, per suite, ops/s, p50/p99 µs
per operation and each subject's ratio to the baseline (mean latency over the baseline's; above 1 is
slower). Suites:
  mix       the engine in this process on a seeded read/write mix (--read-ratio reads, the rest
            writes, on --keys keys, --concurrency callers), then the raw store alone on the same mix
            (store.read + JSON.parse, store.write); the backends are yours (--store, --cache)
  bench/    memory-hit, write, miss-fill, redis-hit, redis-write, processes, … against lru-cache,
            the raw drivers, bentocache and cache-manager (tinybench); resp-front, and pg-proxy (the
            PostgreSQL proxy against raw pg and PgBouncer: needs pgbouncer, initdb, root): dev
            dependencies, run from a clone (npm run bench); elsewhere reported unavailable in one line
Without --suite every suite runs (the mix last); a mix option alone means --suite mix.`,
  options: [
    ['--suite NAME', 'run this suite (repeatable): mix, or a suite of bench/ (see --help from a clone)'],
    ['--quick', 'a short smoke run: fewer rounds; the mix defaults to 2000 ops on 200 keys'],
    ['--json', 'print the rows as one JSON array on stdout (the table and progress go to stderr)'],
    [BACKEND_HELP[0]![0], `mix: ${BACKEND_HELP[0]![1]}`, 'LOCKSTEP_STORE, default an SQLite file in a temp dir, removed afterwards'],
    [BACKEND_HELP[1]![0], `mix: ${BACKEND_HELP[1]![1]}`, BACKEND_HELP[1]![2]],
    ['--ops N', 'mix: timed operations per subject (default 20000)'],
    ['--concurrency N', 'mix: callers at once (default 16)'],
    ['--read-ratio R', 'mix: share of reads, 0 to 1 (default 0.9)'],
    ['--keys N', 'mix: distinct keys (default 1000)'],
    ['--value-bytes N', 'mix: padding in each value (default 100)'],
    ['--seed N', 'mix: seed of the operation sequence (default 1)'],
    ['-h, --help', 'show this help'],
  ],
  notes: `On a store of yours the mix writes to namespaces bench-<random> and bench-<random>-raw and deletes
its keys at the end (their tombstones are pruned with the journal). Compare runs on one machine:
the ratio to the baseline, not the absolute figures, is what carries over. Load against a running
service over HTTP is another job: npm run bench:load (docs/benchmarks.md).`,
  examples: [
    'lockstep bench --suite mix',
    'lockstep bench --quick --suite memory-hit --json        # from a clone; = npm run bench -- …',
    'lockstep bench --ops 100000 --concurrency 64 --read-ratio 0.95',
    'lockstep bench --store postgres://postgres@127.0.0.1/test --cache redis://127.0.0.1:6379 --json',
  ],
  exit: `0 done; 2 bad input (an unknown suite, a mix option beside --suite without mix); 3 a suite
failed, an operation failed, or a suite asked for by name is unavailable in this install.`,
});

const MIX_FLAGS = ['store', 'cache', 'ops', 'concurrency', 'read-ratio', 'keys', 'value-bytes', 'seed'] as const;

export interface BenchConfig {
  readonly help: boolean;
  readonly json: boolean;
  readonly quick: boolean;
  /** The suites named with --suite; empty: every suite (or the mix alone, when a mix flag is given). */
  readonly suites: readonly string[];
  readonly mix: MixConfig;
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
    suite: { type: 'string', multiple: true },
    quick: { type: 'boolean' },
    json: { type: 'boolean' },
    ...HELP_OPTION,
  });
  const quick = values.quick ?? false;
  const ratioText = values['read-ratio'] ?? '0.9';
  const readRatio = /^(0(\.[0-9]+)?|1(\.0+)?|\.[0-9]+)$/.test(ratioText) ? Number(ratioText) : Number.NaN;
  if (Number.isNaN(readRatio)) throw new UsageError(`--read-ratio must be a number from 0 to 1 (got ${JSON.stringify(ratioText)})`);
  const store = values.store ?? fromEnv(env, 'LOCKSTEP_STORE');
  const mixFlags = MIX_FLAGS.filter((flag) => values[flag] !== undefined);
  let suites = [...new Set(values.suite ?? [])];
  if (suites.length === 0 && mixFlags.length > 0) suites = [MIX_SUITE];
  else if (mixFlags.length > 0 && !suites.includes(MIX_SUITE)) {
    throw new UsageError(`--${mixFlags[0]} configures the mix suite, which --suite leaves out (add --suite mix)`);
  }
  return {
    help: values.help ?? false,
    json: values.json ?? false,
    quick,
    suites,
    mix: {
      store: store === undefined ? undefined : parseStoreSpec(store),
      cache: parseCacheSpec(values.cache ?? fromEnv(env, 'LOCKSTEP_CACHE') ?? DEFAULT_CACHE),
      ops: integerOption(values.ops ?? (quick ? '2000' : '20000'), '--ops', 1, 100_000_000),
      concurrency: integerOption(values.concurrency ?? '16', '--concurrency', 1, 10_000),
      readRatio,
      keys: integerOption(values.keys ?? (quick ? '200' : '1000'), '--keys', 1, 10_000_000),
      valueBytes: integerOption(values['value-bytes'] ?? '100', '--value-bytes', 0, 10_000_000),
      seed: integerOption(values.seed ?? '1', '--seed', 0, 2 ** 31),
    },
  };
}

/** `loadSuites` is bench/'s loader; a test passes another to play a published install. */
export async function run(argv: readonly string[], io: CommandIo = defaultIo, loadSuites: () => Promise<DevSuitesLoad> = () => loadDevSuites()): Promise<number> {
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
  const log = (line: string): void => void io.stderr.write(`${line}\n`);
  const all = config.suites.length === 0;
  const devWanted = config.suites.filter((name) => name !== MIX_SUITE);
  let code: number = EXIT.ok;

  // The suites of bench/: loaded only when some are wanted; unknown names are refused before any run.
  let dev: DevSuites | undefined;
  if (all || devWanted.length > 0) {
    const loaded = await loadSuites();
    if ('suites' in loaded) {
      const unknown = devWanted.filter((name) => !loaded.suites.names.includes(name));
      if (unknown.length > 0) {
        return reportUsageError(io.stderr, 'bench', new UsageError(`unknown suite ${unknown.join(', ')} (suites: ${[...loaded.suites.names, MIX_SUITE].join(', ')})`));
      }
      dev = loaded.suites;
    } else if (all) {
      log(`lockstep bench: the suites of bench/ are unavailable, running the mix only: ${loaded.unavailable}`);
    } else {
      log(`lockstep bench: suite ${devWanted.join(', ')} unavailable: ${loaded.unavailable}`);
      code = EXIT.failed;
    }
  }

  const rows: Row[] = [];
  const notes: string[] = ['ratio = subject mean latency / baseline mean latency (per operation; above 1 is slower).'];
  const progress = createProgress(io.stderr, { enabled: progressWanted(io.stderr, config.json), delayMs: 0 });
  try {
    if (dev !== undefined) {
      const result = await dev.run(devWanted, { quick: config.quick }, log);
      rows.push(...result.rows);
      notes.push(...result.notes);
    }
    if (all || config.suites.includes(MIX_SUITE)) {
      const mix = await runMixSuite(config.mix, progress);
      progress.stop();
      rows.push(...mix.rows);
      notes.push('', formatBenchReport(mix.report).trimEnd());
      if (mix.failed !== undefined) {
        log(`lockstep bench: some operations of the mix failed, the first: ${mix.failed}`);
        code = EXIT.failed;
      }
    }
  } catch (error) {
    progress.stop();
    log(`lockstep bench: ${(error as Error)?.message ?? String(error)}`);
    return EXIT.failed;
  }
  if (rows.length === 0) return code;
  const cases = [...new Map(rows.map((r) => [r.suite, r.case])).entries()].map(([suite, c]) => `  ${suite}: ${c}`);
  const text = `\n${formatTable(rows)}\n\n${[notes[0], ...cases, ...notes.slice(1)].join('\n')}\n`;
  if (config.json) {
    io.stderr.write(text);
    io.stdout.write(`${JSON.stringify(rows, null, 2)}\n`);
  } else {
    io.stdout.write(text);
  }
  return code;
}
