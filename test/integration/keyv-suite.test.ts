// CI reads node's test runner, and the official @keyv/test-suite is written for vitest: run vitest
// over test/keyv/keyv-suite.spec.ts as a child process, read its JSON report, and fail unless it
// exited 0 with every case passed on each backend (the PostgreSQL + Redis backend may be skipped
// with its reason only when those services are optional).
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { it } from 'node:test';

interface VitestReport {
  success: boolean;
  numTotalTests: number;
  numPassedTests: number;
  numFailedTests: number;
  testResults: Array<{ assertionResults: Array<{ ancestorTitles: string[]; title: string; status: string }> }>;
}

it('the official @keyv/test-suite passes against KeyvLockstep (vitest, JSON report)', () => {
  const dir = mkdtempSync(join(tmpdir(), 'lockstep-vitest-'));
  try {
    const reportPath = join(dir, 'report.json');
    const run = spawnSync(
      'node_modules/.bin/vitest',
      ['run', '--config', 'test/keyv/vitest.config.ts', '--reporter=default', '--reporter=json', `--outputFile.json=${reportPath}`],
      { encoding: 'utf8', timeout: 240_000, env: { ...process.env, NO_COLOR: '1' } },
    );
    assert.equal(run.status, 0, `vitest exited ${run.status}:\n${run.stdout}\n${run.stderr}`);
    const report = JSON.parse(readFileSync(reportPath, 'utf8')) as VitestReport;
    assert.ok(report.success);
    assert.equal(report.numFailedTests, 0);
    assert.ok(report.numPassedTests > 0, 'no test passed');

    const byBackend = new Map<string, Map<string, number>>();
    for (const file of report.testResults) {
      for (const test of file.assertionResults) {
        const backend = test.ancestorTitles[0] ?? '';
        const counts = byBackend.get(backend) ?? new Map<string, number>();
        counts.set(test.status, (counts.get(test.status) ?? 0) + 1);
        byBackend.set(backend, counts);
      }
    }
    const sqlite = byBackend.get('sqlite store + memory cache');
    assert.ok((sqlite?.get('passed') ?? 0) >= 40, `sqlite backend: ${JSON.stringify([...(sqlite ?? [])])}`);
    assert.equal(sqlite?.size, 1, 'every sqlite case passed, none skipped');
    const services = [...byBackend.keys()].find((name) => name.startsWith('postgres store + redis cache'));
    assert.ok(services !== undefined, 'the postgres + redis backend is in the report');
    const counts = byBackend.get(services)!;
    if (process.env.LOCKSTEP_REQUIRE_SERVICES === '1' || !services.includes('skipped')) {
      assert.equal(counts.get('passed'), sqlite?.get('passed'), `postgres + redis backend: ${JSON.stringify([...counts])}`);
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
