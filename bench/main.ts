// The dev suites of `lockstep bench` (`npm run bench [-- --json] [-- --quick] [-- --suite NAME]`;
// the command parses the flags and prints the rows, see docs/benchmarks.md). Runs each suite's
// case in a child process of its own (suite-process.ts; the subjects of a case share it, timed with
// tinybench in rotating rounds: run-suite.ts) and returns per-operation figures with each subject's
// ratio to the case's baseline.
// Run directly (node --import tsx bench/main.ts …), this file runs that same command.
import { statfsSync } from 'node:fs';
import { availableParallelism, tmpdir } from 'node:os';
import { pathToFileURL } from 'node:url';
import type { RunOptions } from './fixtures.js';
import type { Row } from './report.js';
import { runSuite, SERVICE_SUITES, SUITES } from './run-suite.js';
import { runSuiteInChild } from './suite-process.js';
import { respFront, type ExternalSuite } from './suites/resp-front.js';
import { pgProxy } from './suites/pg-proxy.js';
import { DATABASE_URL, needService, REDIS_URL } from '../test/helpers/services.js';

/** Suites that drive servers in child processes with external load generators and report throughput rows themselves. */
const EXTERNAL_SUITES: readonly ExternalSuite[] = [respFront, pgProxy];

/** The suite names this file adds to `lockstep bench --suite` (the command has its own `mix`). */
export const names: readonly string[] = [...new Set([...SUITES, ...EXTERNAL_SUITES].map((s) => s.name))];

/**
 * LOCKSTEP_BENCH_ONE_PROCESS=1 runs every case in this process, one after the other, as before
 * 2026-12-07 (to see what the cases do to each other); by default each has a process of its own.
 */
const ONE_PROCESS = process.env.LOCKSTEP_BENCH_ONE_PROCESS === '1';

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
  for (const suite of suites) {
    rows.push(...(await (ONE_PROCESS ? runSuite(suite, options, log) : runSuiteInChild(SUITES.indexOf(suite), options, log))));
  }
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
