// One suite definition (one case) measured in this process: its subjects run with tinybench, one
// subject at a time (warmup, then the timed run) in rotating rounds, and give per-operation figures
// with each subject's ratio to the case's baseline. `lockstep bench` runs each definition in a
// child process of its own (suite-process.ts), which calls this.
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

// A suite may have several definitions under one name (a case each): `--suite NAME` runs them all.
// A child process names its definition by its index here.
export const SUITES: readonly SuiteDefinition[] = [memoryHit, write, missFill, redisHit, redisHitConcurrent, nearHit, redisWrite, redisWriteConcurrent, redisWriteLoops, processes];
/** Suites on the shared Redis and PostgreSQL: skipped, with a note, when either is unreachable. */
export const SERVICE_SUITES: ReadonlySet<SuiteDefinition> = new Set([redisHit, redisHitConcurrent, nearHit, redisWrite, redisWriteConcurrent, redisWriteLoops, processes]);

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

export async function runSuite(suite: SuiteDefinition, options: RunOptions, log: (line: string) => void): Promise<Row[]> {
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
