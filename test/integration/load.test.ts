// The shortened load test (CI): `lockstep serve` as a child process under autocannon, 90/10
// read/write over a pre-populated key set, 3 s at 16 connections, on SQLite + memory and on
// PostgreSQL + Redis. No timing is asserted: zero connection errors, zero non-2xx, every answer
// well-formed (JSON of the documented shape, with an X-Request-Id), and a clean exit on SIGTERM.
// The 30 s measurement is `npm run bench:load` (figures in the README).
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { runScenario, type BackendName } from '../../bench/load/scenario.js';
import { DATABASE_URL, needService, REDIS_URL } from '../helpers/services.js';

const NEEDS: Record<BackendName, ReadonlyArray<readonly [string, string]>> = {
  'sqlite+memory': [],
  'postgres+redis': [
    ['PostgreSQL', DATABASE_URL],
    ['Redis', REDIS_URL],
  ],
};

describe('load (shortened)', () => {
  for (const backend of ['sqlite+memory', 'postgres+redis'] as const) {
    it(`${backend}: 3 s at c16, no errors, no non-2xx, every answer well-formed`, async (t) => {
      for (const [name, url] of NEEDS[backend]) {
        const { skip } = await needService(name, url);
        if (skip) return t.skip(skip);
      }
      const { mix, exitCode, rssSamples } = await runScenario({ backend, server: 'lockstep', connections: 16, durationSeconds: 3, keys: 200 });
      t.diagnostic(`${backend}: ${mix.requests} requests, ${mix.requestsPerSecond.toFixed(0)}/s, p99 ${mix.p99Ms} ms`);
      assert.ok(mix.requests > 0, 'requests were made');
      assert.ok(mix.reads > 0 && mix.writes > 0, 'both reads and writes were sent');
      assert.equal(mix.errors, 0, 'connection errors');
      assert.equal(mix.timeouts, 0, 'timeouts');
      assert.equal(mix.status5xx, 0, '5xx answers');
      assert.equal(mix.non2xx, 0, 'non-2xx answers');
      assert.equal(mix.malformed, 0, `malformed answers: ${mix.malformedExamples.join(' | ')}`);
      assert.equal(exitCode, 0, 'the server drained and exited 0');
      assert.ok(rssSamples.length >= 2, 'the server RSS was sampled');
    });
  }
});
