// The dev suites of `lockstep bench` (`npm run bench [-- --json] [-- --quick] [-- --suite NAME]`;
// the command parses the flags and prints the rows, see docs/benchmarks.md). Runs each suite's
// subjects in one process with tinybench, one subject at a time (warmup, then the timed run) in
// rotating rounds, and returns per-operation figures with each subject's ratio to the case's baseline.
// Run directly (node --import tsx bench/main.ts …), this file runs that same command.
import { statfsSync } from 'node:fs';
import { availableParallelism, tmpdir } from 'node:os';
import { pathToFileURL } from 'node:url';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { Bench } from 'tinybench';
import type { BenchSubject, PreparedCase, RunOptions, SuiteDefinition } from './fixtures.js';
import { buildRows, perOperation, summarize, type Measurement, type Row } from './report.js';
import { memoryHit } from './suites/memory-hit.js';
import { missFill } from './suites/miss-fill.js';
import { nearHit } from './suites/near-hit.js';
import { processes } from './suites/processes.js';
import { redisHit, redisHitConcurrent } from './suites/redis-hit.js';
import { redisWrite, redisWriteConcurrent, redisWriteLoops } from './suites/redis-write.js';
import { write } from './suites/write.js';
import { respFront, type ExternalSuite } from './suites/resp-front.js';
import { pgProxy } from './suites/pg-proxy.js';
import { DATABASE_URL, needService, REDIS_URL } from '../test/helpers/services.js';

// A suite may have several definitions under one name (a case each): `--suite NAME` runs them all.
const SUITES: readonly SuiteDefinition[] = [memoryHit, write, missFill, redisHit, redisHitConcurrent, nearHit, redisWrite, redisWriteConcurrent, redisWriteLoops, processes];
/** Suites that drive servers in child processes with external load generators and report throughput rows themselves. */
const EXTERNAL_SUITES: readonly ExternalSuite[] = [respFront, pgProxy];
/** Suites on the shared Redis and PostgreSQL: skipped, with a note, when either is unreachable. */
const SERVICE_SUITES: ReadonlySet<SuiteDefinition> = new Set([redisHit, redisHitConcurrent, nearHit, redisWrite, redisWriteConcurrent, redisWriteLoops, processes]);

// Each subject's budget is split into rounds run in rotation with the other subjects of its case,
// so load that drifts during the run (other processes, disk flushes) falls on all of them alike.
// Short rounds follow drift closely: on a 2-core VM the latency of a round trip or an fsync swings
// by half within seconds, and three 1 s rounds moved a ratio by 0.3x between runs of the same code.
// A subject warms up fully in its first round only (JIT, connections); later rounds warm up
// briefly, for the caches the other subjects cooled.
const TIMING = {
  full: { rounds: 8, time: 375, warmupTime: 250, laterWarmupTime: 50, iterations: 16, warmupIterations: 8 },
  quick: { rounds: 1, time: 200, warmupTime: 50, laterWarmupTime: 50, iterations: 16, warmupIterations: 4 },
} as const;

/** The suite names this file adds to `lockstep bench --suite` (the command has its own `mix`). */
export const names: readonly string[] = [...new Set([...SUITES, ...EXTERNAL_SUITES].map((s) => s.name))];

/** A full collection between subjects, so one subject's garbage is not collected on another's clock. */
const collectGarbage: () => void = (() => {
  const exposed = (globalThis as { gc?: () => void }).gc;
  if (exposed !== undefined) return exposed;
  try {
    setFlagsFromString('--expose-gc');
    return runInNewContext('gc') as () => void;
  } catch {
    return () => {};
  }
})();

/** One round of one subject: tinybench warmup, then the timed run; returns the iteration latencies (ms). */
async function sampleRound(subject: BenchSubject, options: RunOptions, round: number): Promise<number[]> {
  const { rounds: _, laterWarmupTime, warmupTime, ...timing } = options.quick ? TIMING.quick : TIMING.full;
  collectGarbage();
  const bench = new Bench({ ...timing, warmupTime: round === 0 ? warmupTime : laterWarmupTime, warmup: true, throws: true, retainSamples: true });
  bench.add(subject.name, subject.fn, {
    async: subject.async,
    ...(subject.beforeEach === undefined ? {} : { beforeEach: subject.beforeEach }),
  });
  const [task] = await bench.run();
  const result = task?.result;
  if (result === undefined || (result.state !== 'completed' && result.state !== 'aborted-with-statistics')) {
    const error = result?.state === 'errored' ? result.error : undefined;
    throw new Error(`${subject.name}: the benchmark did not complete (${result?.state ?? 'no task'})`, { cause: error });
  }
  if (result.latency.samples === undefined) throw new Error(`${subject.name}: tinybench kept no samples`);
  return Array.from(result.latency.samples);
}

async function runSuite(suite: SuiteDefinition, options: RunOptions, log: (line: string) => void): Promise<Row[]> {
  const { rounds } = options.quick ? TIMING.quick : TIMING.full;
  const prepared: PreparedCase = await suite.prepare(options);
  try {
    const { subjects } = prepared;
    const samples = new Map<BenchSubject, number[][]>(subjects.map((s) => [s, []]));
    for (let round = 0; round < rounds; round++) {
      log(`  ${suite.name}: round ${round + 1}/${rounds}`);
      // Rotate the order each round, so no subject always runs right after the same one.
      for (let i = 0; i < subjects.length; i++) {
        const subject = subjects[(i + round) % subjects.length]!;
        samples.get(subject)!.push(await sampleRound(subject, options, round));
      }
    }
    const measurements: Measurement[] = [];
    for (const subject of subjects) {
      const warning = await subject.verify?.();
      if (warning !== undefined) throw new Error(`the subject did not measure what it claims: ${warning}`);
      measurements.push(perOperation(subject.name, summarize(samples.get(subject)!.flat()), subject.batch));
    }
    return buildRows(prepared.suite, prepared.case, prepared.baseline, measurements);
  } finally {
    await prepared.close();
  }
}

function describeMachine(): string {
  const dir = process.env.LOCKSTEP_BENCH_DIR ?? tmpdir();
  let fs = '';
  try {
    fs = `, temp dir ${dir} (statfs type 0x${statfsSync(dir).type.toString(16)})`;
  } catch {
    fs = `, temp dir ${dir}`;
  }
  return `node ${process.version}, ${availableParallelism()} CPUs${fs}`;
}

/**
 * Runs the named suites (all when `wanted` is empty; the command has refused unknown names) and
 * returns their rows and notes; `lockstep bench` prints them.
 */
export async function run(wanted: readonly string[], options: RunOptions, log: (line: string) => void): Promise<{ rows: Row[]; notes: string[] }> {
  // A suite asked for by name that cannot run here fails the run before anything runs (exit 3);
  // in a run of every suite it is skipped with a note.
  for (const suite of EXTERNAL_SUITES.filter((s) => wanted.includes(s.name))) {
    const why = suite.unavailable();
    if (why !== undefined) throw new Error(`suite ${suite.name} cannot run here: ${why}`);
  }
  let suites = wanted.length === 0 ? SUITES : SUITES.filter((s) => wanted.includes(s.name));
  if (suites.some((s) => SERVICE_SUITES.has(s))) {
    const down = [await needService('Redis', REDIS_URL), await needService('PostgreSQL', DATABASE_URL)].flatMap((r) => (r.skip === false ? [] : [r.skip]));
    if (down.length > 0) {
      log(`skipping ${[...new Set(suites.filter((s) => SERVICE_SUITES.has(s)).map((s) => s.name))].join(', ')}: ${down.join('; ')}`);
      suites = suites.filter((s) => !SERVICE_SUITES.has(s));
    }
  }

  log(`lockstep bench${options.quick ? ' (quick)' : ''}: ${describeMachine()}`);
  const rows: Row[] = [];
  for (const suite of suites) rows.push(...(await runSuite(suite, options, log)));
  for (const suite of EXTERNAL_SUITES.filter((s) => wanted.length === 0 || wanted.includes(s.name))) {
    const why = suite.unavailable();
    if (why === undefined) rows.push(...(await suite.run(options, log)));
    else log(`skipping ${suite.name}: ${why}`);
  }
  const notes = [
    'resp-get/resp-set and pg-proxy-* measure throughput: their ratio = baseline ops/s / subject ops/s (above 1 is slower).',
    'Batched cases time a whole batch per sample: p50/p99 are of per-operation batch means.',
  ];
  return { rows, notes };
}

// No top-level await: the command imports this very module, which must have finished evaluating.
if (process.argv[1] !== undefined && import.meta.url === pathToFileURL(process.argv[1]).href) {
  import('../src/cli/commands/bench.js').then(
    async (command) => {
      process.exitCode = await command.run(process.argv.slice(2));
    },
    (error: unknown) => {
      process.stderr.write(`bench failed: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}\n`);
      process.exitCode = 1;
    },
  );
}
