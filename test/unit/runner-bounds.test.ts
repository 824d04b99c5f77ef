// Every test file ends in bounded time, whatever the code under test does: `npm test` runs node
// --test with --test-timeout (a test, and in Node 20 a whole file, fails once it runs longer) and
// --test-force-exit (the runner exits when the tests are done, even with handles left open).
// Shown on two fixtures kept out of the suite's glob: a test that hangs, and a test that passes
// but leaves a server listening. Teeth: without the flags, each of them is still running.
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { after, describe, it } from 'node:test';

const HANG = 'test/fixtures/hang.test.fixture.ts';
const OPEN_HANDLE = 'test/fixtures/open-handle.test.fixture.ts';
/** Generous: tsx compiles the fixture in a child of a child on a loaded machine. */
const BOUND_MS = 90_000;
const dir = mkdtempSync(join(tmpdir(), 'lockstep-runner-bounds-'));
const children: ChildProcess[] = [];
after(() => {
  for (const child of children) if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
  rmSync(dir, { recursive: true, force: true });
});

interface Run {
  readonly child: ChildProcess;
  readonly mark: string;
  /** Resolves with the exit code and the output once the runner exits. */
  readonly exited: Promise<{ code: number | null; output: string; ms: number }>;
}

function runFixture(file: string, flags: readonly string[]): Run {
  const mark = join(dir, `${Math.random().toString(36).slice(2)}.mark`);
  const started = performance.now();
  // detached: its own process group, so that a still-running one is killed with its test child.
  const child = spawn(process.execPath, ['--import', 'tsx', '--test', ...flags, file], {
    // Without NODE_TEST_CONTEXT, which tells node --test it runs inside a test file (and would skip the files).
    env: { ...Object.fromEntries(Object.entries(process.env).filter(([name]) => name !== 'NODE_TEST_CONTEXT')), LOCKSTEP_FIXTURE_MARK: mark },
    stdio: ['ignore', 'pipe', 'pipe'],
    detached: true,
  });
  children.push(child);
  let output = '';
  child.stdout!.on('data', (chunk) => (output += chunk));
  child.stderr!.on('data', (chunk) => (output += chunk));
  const exited = new Promise<{ code: number | null; output: string; ms: number }>((resolve) => {
    child.once('close', (code) => resolve({ code, output, ms: performance.now() - started }));
  });
  return { child, mark, exited };
}

async function waitForFile(path: string, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!existsSync(path)) {
    if (Date.now() > deadline) throw new Error(`${path} not written within ${timeoutMs} ms`);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

function within<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => (timer = setTimeout(() => reject(new Error(`${what}: no exit within ${ms} ms`)), ms)));
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}

function killGroup(child: ChildProcess): void {
  try {
    process.kill(-child.pid!, 'SIGKILL');
  } catch {
    // already gone
  }
}

/** The flags of the "test" script in package.json. */
function suiteFlags(): string[] {
  const script = (JSON.parse(readFileSync('package.json', 'utf8')) as { scripts: Record<string, string> }).scripts.test ?? '';
  return script.split(/\s+/).filter((word) => word.startsWith('--test-'));
}

describe('the test runner ends every file in bounded time', () => {
  it('npm test passes --test-timeout and --test-force-exit', () => {
    const flags = suiteFlags();
    assert.ok(flags.includes('--test-force-exit'), flags.join(' '));
    const timeout = flags.find((flag) => flag.startsWith('--test-timeout='));
    assert.ok(timeout !== undefined, flags.join(' '));
    assert.ok(Number(timeout.split('=')[1]) > 0, timeout);
  });

  it('a hanging test fails at the timeout instead of hanging (with the suite flags, a short timeout)', async () => {
    const flags = [...suiteFlags().filter((flag) => !flag.startsWith('--test-timeout=') && !flag.startsWith('--test-concurrency')), '--test-timeout=3000'];
    const { code, output, ms } = await within(runFixture(HANG, flags).exited, BOUND_MS, 'the hanging fixture');
    assert.notEqual(code, 0, output);
    assert.match(output, /timed out after 3000ms/, output);
    assert.ok(ms < BOUND_MS, `${Math.round(ms)} ms`);
  });

  it('a passing test that leaves a server open: --test-force-exit ends the file, as a pass', async () => {
    const { code, output } = await within(runFixture(OPEN_HANDLE, ['--test-force-exit']).exited, BOUND_MS, 'the open-handle fixture');
    assert.equal(code, 0, output);
    assert.match(output, /# pass 1/, output);
  });

  it('teeth: without the flags, both fixtures are still running after their test began (then killed)', async () => {
    for (const file of [HANG, OPEN_HANDLE]) {
      const run = runFixture(file, []);
      try {
        await waitForFile(run.mark, BOUND_MS);
        const early = await Promise.race([run.exited.then(() => 'exited'), new Promise((resolve) => setTimeout(() => resolve('running'), 3_000))]);
        assert.equal(early, 'running', `${file} ended on its own`);
      } finally {
        killGroup(run.child);
        await within(run.exited, BOUND_MS, file);
      }
    }
  });
});

describe('the test runner counts every verdict', () => {
  // test/helpers/report-pipe-blocking.mjs: with --test-force-exit and files in parallel, Node's
  // runner can exit a file's process before its last report frames left the pipe, and the summary
  // silently counts fewer tests. Generated fixture: 30 files × 60 passing tests (long names: more
  // bytes in flight); the preload must make every run report all 1,800. (Without it, 1,772–1,795
  // were reported in three runs here, all exiting 0.)
  it('npm test preloads the blocking report pipe, and with it every verdict of a parallel, force-exited run is counted', async () => {
    const script = (JSON.parse(readFileSync('package.json', 'utf8')) as { scripts: Record<string, string> }).scripts.test ?? '';
    assert.match(script, /--import \.\/test\/helpers\/report-pipe-blocking\.mjs/);
    const fixtures = mkdtempSync(join(tmpdir(), 'lockstep-verdicts-'));
    try {
      const files: string[] = [];
      for (let f = 0; f < 30; f++) {
        const tests = Array.from({ length: 60 }, (_, t) => `test(${JSON.stringify(`t${t} ${'x'.repeat(300)}`)}, () => {});`).join('\n');
        const file = join(fixtures, `f${f}.test.mjs`);
        writeFileSync(file, `import { test } from 'node:test';\n${tests}\n`);
        files.push(file);
      }
      for (let run = 0; run < 2; run++) {
        const child = spawn(process.execPath, ['--import', resolve('test/helpers/report-pipe-blocking.mjs'), '--test', '--test-concurrency=2', '--test-force-exit', ...files], {
          env: Object.fromEntries(Object.entries(process.env).filter(([name]) => name !== 'NODE_TEST_CONTEXT')),
          stdio: ['ignore', 'pipe', 'pipe'],
        });
        children.push(child);
        let output = '';
        child.stdout!.on('data', (chunk) => (output += chunk));
        child.stderr!.on('data', (chunk) => (output += chunk));
        const code = await within(new Promise<number | null>((done) => child.once('close', done)), BOUND_MS, 'the verdict fixture');
        assert.equal(code, 0, output.slice(-2000));
        assert.match(output, /^# tests 1800$/m, output.slice(-600));
      }
    } finally {
      rmSync(fixtures, { recursive: true, force: true });
    }
  });
});
