// The benchmark's arithmetic on synthetic numbers, and a smoke run of `bench/main.ts --quick --json`.
// No timing is ever asserted: only shapes, the ratio math and that figures are positive.
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { describe, it } from 'node:test';
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

  it('prints only JSON rows for the memory-hit suite with --quick --json', { timeout: 90_000 }, async () => {
    const { stdout } = await promisify(execFile)(
      process.execPath,
      ['--import', 'tsx', 'bench/main.ts', '--quick', '--json', '--suite', 'memory-hit'],
      { cwd: root, timeout: 60_000, maxBuffer: 4 * 1024 * 1024 },
    );
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
  });
});
