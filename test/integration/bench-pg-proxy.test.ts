// `lockstep bench --suite pg-proxy` as a real process, in a quick run: a cluster of its own, the
// proxy and PgBouncer as child processes, rows of the bench's one shape for every case and subject
// (each proxy row is only produced if the proxy's /metrics shows it served what the row claims).
// No figure is asserted: timings belong to the benchmark, not to tests. And a suite that cannot
// run here (no pgbouncer) says so and exits 3 instead of crashing.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { describe, it } from 'node:test';
import { findPgBouncer } from '../../bench/suites/pgbouncer.js';
import { PG_BIN } from '../helpers/pg-cluster.js';
import { needProgram } from '../helpers/services.js';

const MAIN = fileURLToPath(new URL('../../src/cli/main.ts', import.meta.url));
const TSX = import.meta.resolve('tsx');

interface Result {
  readonly code: number | null;
  readonly stdout: string;
  readonly stderr: string;
}

function lockstep(args: readonly string[], env: Record<string, string> = {}): Promise<Result> {
  const base = Object.fromEntries(Object.entries(process.env).filter(([name]) => !name.startsWith('LOCKSTEP_') && name !== 'NODE_TEST_CONTEXT'));
  const child = spawn(process.execPath, ['--import', TSX, MAIN, ...args], { env: { ...base, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  child.stdout.setEncoding('utf8').on('data', (chunk: string) => (stdout += chunk));
  child.stderr.setEncoding('utf8').on('data', (chunk: string) => (stderr += chunk));
  const timer = setTimeout(() => child.kill('SIGKILL'), 300_000);
  return new Promise((resolve) => {
    child.once('close', (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr });
    });
  });
}

const show = (r: Result) => `exit ${r.code}\nstdout:\n${r.stdout.slice(0, 4000)}\nstderr:\n${r.stderr.slice(-4000)}`;

const skip = needProgram('pgbouncer', findPgBouncer() ?? '/usr/sbin/pgbouncer').skip || needProgram('initdb', `${PG_BIN}/initdb`).skip || (process.getuid?.() === 0 ? false : 'needs root (initdb and pgbouncer run as the postgres user)');

interface Row {
  suite: string;
  case: string;
  subject: string;
  opsPerSec: number;
  p50Us: number;
  p99Us: number;
  baseline: string;
  ratio: number;
}

describe('lockstep bench --suite pg-proxy', { timeout: 360_000 }, () => {
  it('a quick run gives a row per case and subject, in the bench rows shape', { skip }, async () => {
    const r = await lockstep(['bench', '--suite', 'pg-proxy', '--quick', '--json']);
    assert.equal(r.code, 0, show(r));
    const rows = JSON.parse(r.stdout) as Row[];
    const expected: Record<string, { baseline: RegExp; subjects: RegExp[] }> = {
      'pg-proxy-read-1': { baseline: /^raw pg /, subjects: [/^raw pg /, /^pgbouncer 1\.\d+/, /^lockstep pg-proxy/] },
      'pg-proxy-read-64': { baseline: /^raw pg /, subjects: [/^raw pg /, /^pgbouncer 1\.\d+/, /^lockstep pg-proxy/] },
      'pg-proxy-pass-1': { baseline: /^pgbouncer /, subjects: [/^pgbouncer /, /^lockstep pg-proxy/] },
      'pg-proxy-pass-64': { baseline: /^pgbouncer /, subjects: [/^pgbouncer /, /^lockstep pg-proxy/] },
      'pg-proxy-write-1': { baseline: /^raw pg /, subjects: [/^raw pg /, /^lockstep pg-proxy/] },
    };
    assert.deepEqual([...new Set(rows.map((row) => row.suite))], Object.keys(expected));
    for (const [suite, { baseline, subjects }] of Object.entries(expected)) {
      const ofSuite = rows.filter((row) => row.suite === suite);
      assert.equal(ofSuite.length, subjects.length, `${suite}: ${JSON.stringify(ofSuite)}`);
      subjects.forEach((subject, i) => assert.match(ofSuite[i]!.subject, subject, suite));
      for (const row of ofSuite) {
        assert.deepEqual(Object.keys(row), ['suite', 'case', 'subject', 'opsPerSec', 'p50Us', 'p99Us', 'baseline', 'ratio']);
        assert.match(row.baseline, baseline, suite);
        assert.ok(row.case.length > 0 && row.case === ofSuite[0]!.case, `${suite}: one case`);
        assert.ok(row.opsPerSec > 0 && Number.isInteger(row.opsPerSec), `${suite} ${row.subject}: ops/s ${row.opsPerSec}`);
        assert.ok(row.p50Us > 0 && row.p99Us >= row.p50Us, `${suite} ${row.subject}: p50 ${row.p50Us} p99 ${row.p99Us}`);
        assert.ok(row.ratio > 0, `${suite} ${row.subject}: ratio ${row.ratio}`);
        if (row.subject === row.baseline) assert.equal(row.ratio, 1);
      }
    }
    assert.match(r.stderr, /pg-proxy-\* measure throughput/, 'the notes say how the ratio reads');
  });

  it('without pgbouncer the suite says so and exits 3; in a run of every suite it would be skipped', async () => {
    const r = await lockstep(['bench', '--suite', 'pg-proxy', '--quick'], { PGBOUNCER: '/nonexistent/pgbouncer' });
    assert.equal(r.code, 3, show(r));
    assert.match(r.stderr, /^lockstep bench: suite pg-proxy cannot run here: pgbouncer is not installed \(Debian: apt-get install pgbouncer/m);
    assert.equal(r.stdout, '');
  });
});
