// The benchmark's arithmetic on synthetic numbers; smoke runs showing that `lockstep bench` and
// `npm run bench` are one program with one row shape; the dev suites reported unavailable in one line.
// No timing is ever asserted: only shapes, the ratio math and that figures are positive.
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { readFile } from 'node:fs/promises';
import { PassThrough } from 'node:stream';
import { describe, it } from 'node:test';
import { loadDevSuites } from '../../src/cli/bench/dev-suites.js';
import { run as runBench } from '../../src/cli/commands/bench.js';
import { buildRows, formatTable, perOperation, round, summarize, type Measurement, type Row } from '../../bench/report.js';

const measurement = (subject: string, meanUs: number, p50Us = meanUs, p99Us = meanUs * 2): Measurement => ({ subject, meanUs, p50Us, p99Us });

describe('bench report: per-operation figures', () => {
  it('converts iteration milliseconds to microseconds per operation of the batch', () => {
    assert.deepEqual(perOperation('s', { mean: 0.05, p50: 0.04, p99: 0.2 }, 100), { subject: 's', meanUs: 0.5, p50Us: 0.4, p99Us: 2 });
  });

  it('keeps a batch of one as is', () => {
    assert.deepEqual(perOperation('s', { mean: 2, p50: 1.5, p99: 9 }, 1), { subject: 's', meanUs: 2000, p50Us: 1500, p99Us: 9000 });
  });

  it('refuses a batch that is not a positive integer', () => {
    assert.throws(() => perOperation('s', { mean: 1, p50: 1, p99: 1 }, 0), RangeError);
    assert.throws(() => perOperation('s', { mean: 1, p50: 1, p99: 1 }, 1.5), RangeError);
  });
});

describe('bench report: summarize', () => {
  it('gives the mean and interpolated percentiles of pooled samples, in any order', () => {
    const samples = Array.from({ length: 101 }, (_, i) => 101 - i); // 1..101, reversed
    const { mean, p50, p99 } = summarize(samples);
    assert.equal(mean, 51);
    assert.equal(p50, 51);
    assert.equal(p99, 100);
  });

  it('interpolates between order statistics', () => {
    const { mean, p50, p99 } = summarize([1, 2, 3, 4]);
    assert.equal(mean, 2.5);
    assert.equal(p50, 2.5);
    assert.equal(round(p99, 6), 3.97);
  });

  it('handles one sample and refuses none', () => {
    assert.deepEqual(summarize([7]), { mean: 7, p50: 7, p99: 7 });
    assert.throws(() => summarize([]), RangeError);
  });
});

describe('bench report: rows and ratios', () => {
  const rows = buildRows('memory-hit', 'hit read', 'raw', [
    measurement('raw', 0.025),
    measurement('lockstep', 0.05, 0.04, 0.1),
    measurement('peer', 1.25),
  ]);

  it('keeps the given order and fills every field', () => {
    assert.deepEqual(
      rows.map((r) => r.subject),
      ['raw', 'lockstep', 'peer'],
    );
    assert.deepEqual(rows[1], {
      suite: 'memory-hit',
      case: 'hit read',
      subject: 'lockstep',
      opsPerSec: 20_000_000,
      p50Us: 0.04,
      p99Us: 0.1,
      baseline: 'raw',
      ratio: 2,
    });
  });

  it('gives the baseline a ratio of exactly 1 and others subject mean / baseline mean', () => {
    assert.equal(rows[0]!.ratio, 1);
    assert.equal(rows[1]!.ratio, 2);
    assert.equal(rows[2]!.ratio, 50);
    for (const row of rows) assert.equal(row.baseline, 'raw');
  });

  it('derives ops/s from the mean latency', () => {
    assert.equal(rows[0]!.opsPerSec, 40_000_000);
    assert.equal(rows[2]!.opsPerSec, 800_000);
  });

  it('reports a faster subject with a ratio below 1, rounded to 3 decimals', () => {
    const [, faster] = buildRows('write', 'w', 'raw', [measurement('raw', 300), measurement('lockstep', 200)]);
    assert.equal(faster!.ratio, 0.667);
    assert.equal(faster!.opsPerSec, 5000);
  });

  it('rounds latencies to 3 decimals', () => {
    const [row] = buildRows('s', 'c', 'raw', [measurement('raw', 1, 0.123456, 9.87654)]);
    assert.equal(row!.p50Us, 0.123);
    assert.equal(row!.p99Us, 9.877);
  });

  it('refuses a case without its baseline, or with a non-positive mean', () => {
    assert.throws(() => buildRows('s', 'c', 'raw', [measurement('other', 1)]), /baseline/);
    assert.throws(() => buildRows('s', 'c', 'raw', [measurement('raw', 0)]), /positive/);
    assert.throws(() => buildRows('s', 'c', 'raw', [measurement('raw', 1), measurement('x', Number.NaN)]), /positive/);
  });

  it('formats a table with one line per row and the baseline marked', () => {
    const table = formatTable(rows).split('\n');
    assert.equal(table.length, 2 + rows.length);
    assert.match(table[2]!, /raw \(baseline\).*1\.00x$/);
    assert.match(table[4]!, /peer.*50\.00x$/);
  });
});

describe('bench smoke run', () => {
  const root = fileURLToPath(new URL('../..', import.meta.url));
  const ARGS = ['--quick', '--suite', 'memory-hit', '--json'];
  const exec = (command: string, args: readonly string[]) =>
    promisify(execFile)(command, args, { cwd: root, timeout: 60_000, maxBuffer: 4 * 1024 * 1024, env: { ...process.env, NODE_TEST_CONTEXT: undefined } });

  function checkMemoryHitRows(stdout: string): Row[] {
    const rows = JSON.parse(stdout) as Row[];
    assert.ok(Array.isArray(rows));
    const subjects = rows.map((r) => r.subject);
    for (const expected of ['raw lru-cache get', 'lockstep read', 'bentocache get', 'cache-manager get']) {
      assert.ok(subjects.includes(expected), `missing subject ${expected} in ${subjects.join(', ')}`);
    }
    for (const row of rows) {
      assert.deepEqual(Object.keys(row).sort(), ['baseline', 'case', 'opsPerSec', 'p50Us', 'p99Us', 'ratio', 'subject', 'suite']);
      assert.equal(row.suite, 'memory-hit');
      assert.equal(row.baseline, 'raw lru-cache get');
      assert.ok(row.opsPerSec > 0, `${row.subject}: opsPerSec ${row.opsPerSec}`);
      assert.ok(row.ratio > 0, `${row.subject}: ratio ${row.ratio}`);
    }
    assert.equal(rows.find((r) => r.subject === 'raw lru-cache get')?.ratio, 1);
    return rows;
  }

  it('`lockstep bench --quick --suite memory-hit --json` and `npm run bench -- …` print the same rows shape', { timeout: 150_000 }, async () => {
    // npm run bench = a build, then the lockstep command: run what follows the build, as npm would.
    const script = (JSON.parse(await readFile(new URL('../../package.json', import.meta.url), 'utf8')) as { scripts: Record<string, string> }).scripts.bench!;
    const prefix = 'npm run build && ';
    assert.ok(script.startsWith(prefix), script);
    assert.equal(script.slice(prefix.length), 'node --import tsx src/cli/main.ts bench', 'npm run bench is the lockstep bench command');
    const viaNpm = await exec('/bin/sh', ['-c', `${script.slice(prefix.length)} "$@"`, 'sh', ...ARGS]);
    const viaCli = await exec(process.execPath, ['--import', 'tsx', 'src/cli/main.ts', 'bench', ...ARGS]);
    const shape = (rows: Row[]) => rows.map((r) => [r.suite, r.case, r.subject, r.baseline]);
    assert.deepEqual(shape(checkMemoryHitRows(viaNpm.stdout)), shape(checkMemoryHitRows(viaCli.stdout)));
  });

  it('without bench/ (a published install) the dev suites are unavailable in one line; the mix still runs', { timeout: 60_000 }, async () => {
    const missing = await loadDevSuites(new URL('file:///nonexistent/lockstep/bench/main.ts'));
    assert.ok('unavailable' in missing && /not published.*npm run bench/.test(missing.unavailable), JSON.stringify(missing));
    const playPublished = async (argv: string[]) => {
      const stdout = new PassThrough();
      const stderr = new PassThrough();
      const out: string[] = [];
      const err: string[] = [];
      stdout.on('data', (chunk) => out.push(String(chunk)));
      stderr.on('data', (chunk) => err.push(String(chunk)));
      const code = await runBench(argv, { env: {}, stdout, stderr }, async () => missing);
      return { code, stdout: out.join(''), stderr: err.join('') };
    };
    const all = await playPublished(['--quick', '--ops', '100', '--keys', '10', '--json', '--suite', 'mix', '--suite', 'memory-hit']);
    assert.equal(all.code, 3, 'a suite asked for by name and not run is a failure');
    assert.equal(all.stderr.split('\n').filter((line) => line.includes('unavailable')).length, 1, all.stderr);
    assert.match(all.stderr, /^lockstep bench: suite memory-hit unavailable: this install has no bench\//m);
    assert.deepEqual((JSON.parse(all.stdout) as Row[]).map((r) => r.suite), ['mix', 'mix']);

    const everything = await playPublished(['--quick', '--json']);
    assert.equal(everything.code, 0, everything.stderr);
    assert.match(everything.stderr, /^lockstep bench: the suites of bench\/ are unavailable, running the mix only: /m);
    assert.deepEqual((JSON.parse(everything.stdout) as Row[]).map((r) => r.subject), ['lockstep engine', 'raw store']);
  });
});
