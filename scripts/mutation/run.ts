// `npm run mutation`: proves the suite and the chaos harness have teeth. For each mutant of
// mutants.ts it makes a temporary copy of the repository at HEAD (`git worktree add --detach`, with
// node_modules linked), applies the mutant's patches there (the working tree is never touched),
// runs the chosen tests in order until one fails (the mutant is then killed by it), and,
// independently, chaos seeds on PostgreSQL + a redis-server the harness owns until one catches it
// (after how many operations). Prints a table and writes the results as JSON.
//
//   npm run mutation -- [--only ID,ID] [--tests none|FILE,FILE] [--chaos-seeds 0..2] [--chaos-ops 4000]
//                       [--no-baseline] [--out FILE]
//
// Needs PostgreSQL at $DATABASE_URL (default postgres://postgres@127.0.0.1:5432/test) and
// redis-server installed. Commit first: the copy is made from HEAD.
import { spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { MUTANTS, type Mutant } from './mutants.js';

// Fast, in-process tests first; the first that fails names the killer. Files missing at HEAD are skipped.
const DEFAULT_TESTS = [
  'test/unit/engine-basics.test.ts',
  'test/unit/engine-failures.test.ts',
  'test/unit/engine-deadlines.test.ts',
  'test/consistency/races.test.ts',
  'test/consistency/fill-wait-races.test.ts',
  'test/consistency/lease-expiry-and-drain-races.test.ts',
  'test/consistency/early-ack.test.ts',
  'test/integration/memory-cache.test.ts',
  'test/consistency/crash-recovery.test.ts',
  'test/consistency/restart-after-cache-outage.test.ts',
  'test/consistency/random-interleavings.test.ts',
  'test/integration/redis-cache.test.ts',
  'test/consistency/redis-restart-from-snapshot.test.ts',
  'test/consistency/redis-restart-quarantine.test.ts',
];
const TEST_TIMEOUT_MS = 240_000;

const { values } = parseArgs({
  options: {
    only: { type: 'string' },
    tests: { type: 'string' },
    'chaos-seeds': { type: 'string', default: '0..2' },
    'chaos-ops': { type: 'string', default: '4000' },
    'no-baseline': { type: 'boolean', default: false },
    out: { type: 'string', default: join(tmpdir(), 'lockstep-mutation-results.json') },
  },
});

const repo = resolve(spawnSync('git', ['rev-parse', '--show-toplevel'], { encoding: 'utf8' }).stdout.trim());
const databaseUrl = process.env.DATABASE_URL ?? 'postgres://postgres@127.0.0.1:5432/test';
const [seedFrom, seedTo] = (values['chaos-seeds'] ?? '0..2').split('..').map(Number) as [number, number];
const chaosSeeds = Array.from({ length: seedTo - seedFrom + 1 }, (_, i) => seedFrom + i);
const chaosOps = Number(values['chaos-ops']);
const exists = (file: string) => spawnSync('test', ['-f', join(repo, file)]).status === 0;
const tests = values.tests === 'none' ? [] : values.tests !== undefined ? values.tests.split(',') : DEFAULT_TESTS.filter(exists);
const mutants = values.only === undefined ? MUTANTS : MUTANTS.filter((m) => values.only!.split(',').includes(m.id));

interface Result {
  readonly id: string;
  readonly rule: string;
  /** The first test (in order) that failed, or undefined: the tests let it survive. */
  readonly killedByTest: string | undefined;
  readonly testMs: number;
  /** The first chaos seed that caught it: its scenario and the operations until the first stale read (or the seed's, when only convergence or a check failed). */
  readonly chaos: { readonly seed: number; readonly scenario: string; readonly ops: number; readonly why: string } | undefined;
  readonly chaosMs: number;
}

function run(cmd: string, args: readonly string[], cwd: string, timeoutMs: number): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((done) => {
    const child = spawn(cmd, args, { cwd, env: { ...process.env, LOCKSTEP_REQUIRE_SERVICES: '1' }, stdio: ['ignore', 'pipe', 'pipe'], detached: true });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => (stderr = (stderr + d.toString()).slice(-20_000)));
    const timer = setTimeout(() => {
      try {
        process.kill(-child.pid!, 'SIGKILL'); // the test runner and what it started
      } catch {
        // gone already
      }
    }, timeoutMs);
    child.on('close', (code) => {
      clearTimeout(timer);
      done({ code: code ?? 1, stdout, stderr });
    });
  });
}

/** A temporary copy of HEAD with the mutant applied; undefined for the baseline. */
function prepare(mutant: Mutant | undefined): string {
  const dir = mkdtempSync(join(tmpdir(), `lockstep-mutant-${mutant?.id ?? 'baseline'}-`));
  const made = spawnSync('git', ['-C', repo, 'worktree', 'add', '--detach', dir, 'HEAD'], { encoding: 'utf8' });
  if (made.status !== 0) throw new Error(`git worktree add failed: ${made.stderr}`);
  symlinkSync(join(repo, 'node_modules'), join(dir, 'node_modules'));
  for (const patch of mutant?.patches ?? []) {
    const file = join(dir, patch.file);
    const text = readFileSync(file, 'utf8');
    const count = text.split(patch.find).length - 1;
    if (count !== 1) throw new Error(`mutant ${mutant!.id}: its patch of ${patch.file} matches ${count} times (expected once); update mutants.ts`);
    writeFileSync(file, text.replace(patch.find, () => patch.replace));
  }
  return dir;
}

function cleanup(dir: string): void {
  spawnSync('git', ['-C', repo, 'worktree', 'remove', '--force', dir]);
  rmSync(dir, { recursive: true, force: true });
}

async function runTests(dir: string): Promise<{ killedBy: string | undefined; ms: number; log: string }> {
  const started = performance.now();
  for (const test of tests) {
    const { code, stdout } = await run(process.execPath, ['--import', 'tsx', '--test', '--test-concurrency=1', test], dir, TEST_TIMEOUT_MS);
    if (code !== 0) {
      const failed = [...stdout.matchAll(/^\s*not ok \d+ - (.+)$/gm)].map((m) => m[1]!).filter((name) => !/^chaos|^\w+\.test\.ts$|# TODO\b/.test(name)); // a failing todo test fails no run
      return { killedBy: `${test}${failed.length > 0 ? `: ${failed[0]}` : ''}`, ms: performance.now() - started, log: stdout.slice(-4000) };
    }
  }
  return { killedBy: undefined, ms: performance.now() - started, log: '' };
}

async function runChaos(dir: string, id: string): Promise<{ caught: Result['chaos']; ms: number; error?: string }> {
  const started = performance.now();
  const schema = `mut_${id.replace(/[^a-z0-9]/g, '_')}_${process.pid}`.slice(0, 50);
  let before = 0;
  try {
    lastNotes = [];
    for (const seed of chaosSeeds) {
      const args = ['--import', 'tsx', 'src/cli/main.ts', 'chaos', '--store', `${databaseUrl}?schema=${schema}`, '--cache', 'redis-owned'];
      args.push('--processes', '2', '--clients', '6', '--keys', '8', '--ops', String(chaosOps), '--seed', String(seed), '--lin-deadline', '5000', '--json');
      const { code, stdout, stderr } = await run(process.execPath, args, dir, 300_000);
      if (code === 3 || stdout.trim() === '') return { caught: undefined, ms: performance.now() - started, error: `chaos seed ${seed} could not run: ${stderr.slice(-500)}` };
      const [report] = JSON.parse(stdout) as Array<{
        caught: boolean;
        ops: number;
        scenario?: { name: string; notes: string[]; checks: Array<{ ok: boolean; name: string; detail: string }> };
        crashes: string[];
        firstViolationOp?: number;
        violations: { fast: number; linearizability: string };
        converged: boolean;
      }>;
      if (report!.caught) {
        const failedCheck = report!.scenario?.checks.find((c) => !c.ok);
        const why =
          report!.violations.fast > 0
            ? `${report!.violations.fast} stale reads`
            : report!.violations.linearizability === 'violation'
              ? 'not linearizable'
              : !report!.converged
                ? 'a key did not converge'
                : report!.crashes.length > 0
                  ? `a worker crashed: ${report!.crashes[0]!.slice(0, 200)}`
                  : `scenario check failed: ${failedCheck?.name}: ${failedCheck?.detail.slice(0, 200)}`;
        return { caught: { seed, scenario: report!.scenario?.name ?? '-', ops: before + (report!.firstViolationOp ?? report!.ops), why }, ms: performance.now() - started };
      }
      before += report!.ops;
      lastNotes = report!.scenario === undefined ? [] : [`seed ${seed} ${report!.scenario.name}: ${report!.scenario.notes.join('; ')}`];
    }
    return { caught: undefined, ms: performance.now() - started };
  } finally {
    spawnSync('psql', [databaseUrl, '-qc', `DROP SCHEMA IF EXISTS "${schema}" CASCADE`], { stdio: 'ignore' });
  }
}

/** The scenario notes of the last seed that did not catch a mutant (why it passed: e.g. the witness could not start). */
let lastNotes: string[] = [];
const secs = (ms: number) => `${(ms / 1000).toFixed(0)} s`;
const results: Result[] = [];
const started = performance.now();

if (!values['no-baseline']) {
  const dir = prepare(undefined);
  try {
    const t = await runTests(dir);
    if (t.killedBy !== undefined) throw new Error(`baseline: the unmutated code fails ${t.killedBy}; fix that first\n${t.log}`);
    const c = await runChaos(dir, 'baseline');
    if (c.error !== undefined || c.caught !== undefined) throw new Error(`baseline: chaos fails on the unmutated code: ${c.error ?? JSON.stringify(c.caught)}`);
    console.log(`baseline passes: tests ${secs(t.ms)}, chaos ${secs(c.ms)}`);
  } finally {
    cleanup(dir);
  }
}

for (const mutant of mutants) {
  const dir = prepare(mutant);
  try {
    const t = await runTests(dir);
    const c = await runChaos(dir, mutant.id);
    const result: Result = { id: mutant.id, rule: mutant.rule, killedByTest: t.killedBy, testMs: Math.round(t.ms), chaos: c.caught, chaosMs: Math.round(c.ms) };
    results.push(result);
    console.log(
      `${mutant.id}: tests ${t.killedBy === undefined ? 'SURVIVED' : `killed by ${t.killedBy}`} (${secs(t.ms)}); chaos ${
        c.error ?? (c.caught === undefined ? 'not caught' : `caught by seed ${c.caught.seed} (${c.caught.scenario}) after ${c.caught.ops} ops: ${c.caught.why}`)
      } (${secs(c.ms)})`,
    );
    if (c.caught === undefined) for (const note of lastNotes) console.log(`  ${note}`);
    writeFileSync(values.out!, `${JSON.stringify({ tests, chaosSeeds, chaosOps, results }, null, 2)}\n`);
  } finally {
    cleanup(dir);
  }
}

console.log('');
console.log('| mutant | rule broken | first test that fails | chaos (seed, scenario, ops until caught) |');
console.log('|---|---|---|---|');
for (const r of results) {
  const chaos = r.chaos === undefined ? 'not caught' : `seed ${r.chaos.seed} (${r.chaos.scenario}), ${r.chaos.ops} ops: ${r.chaos.why}`;
  console.log(`| ${r.id} | ${r.rule} | ${r.killedByTest ?? '**survived**'} | ${chaos} |`);
}
const killed = results.filter((r) => r.killedByTest !== undefined || r.chaos !== undefined).length;
console.log(`\n${killed} of ${results.length} mutants killed (tests or chaos) in ${secs(performance.now() - started)}; results in ${values.out}`);
process.exit(killed === results.length ? 0 : 1);
