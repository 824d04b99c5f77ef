// Many Lockstep processes (child processes, not objects) against one Redis and one PostgreSQL,
// hammering a few hot keys with concurrent writes, deletes and reads. Afterwards: no read returned
// a version older than one acknowledged before it began (the fast check over every process's
// history), and every key is in state A, B or C.
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import { promisify } from 'node:util';
import { after, before, describe, it } from 'node:test';
import pg from 'pg';
import { checkVersions, type HistoryEntry } from '../../src/audit/history.js';
import { openCache, openStore, parseCacheSpec, parseStoreSpec } from '../../src/backend-specs.js';
import { DATABASE_URL, needService, REDIS_URL } from '../helpers/services.js';
import type { WorkerPlan } from '../helpers/instance-worker.js';
import { createWriteThrough } from '../../src/compose/write-through.js';

const run = promisify(execFile);
const PROCESSES = 3;
const schema = `lockstep_many_${randomBytes(4).toString('hex')}`;
const namespace = `many-${randomBytes(4).toString('hex')}`;
const storeSpec = `${DATABASE_URL}?schema=${schema}`;
const keys = ['hot-1', 'hot-2', 'hot-3'];

const redis = await needService('Redis', REDIS_URL);
const postgres = await needService('PostgreSQL', DATABASE_URL);

describe('many instances on one Redis and one PostgreSQL', { skip: redis.skip || postgres.skip }, () => {
  before(async () => {
    const client = new pg.Client({ connectionString: DATABASE_URL });
    await client.connect();
    await client.query(`CREATE SCHEMA IF NOT EXISTS ${schema}`);
    await client.end();
  });
  after(async () => {
    const client = new pg.Client({ connectionString: DATABASE_URL });
    await client.connect();
    await client.query(`DROP SCHEMA IF EXISTS ${schema} CASCADE`);
    await client.end();
  });

  it(`${PROCESSES} processes: no stale read, every key ends in A, B or C`, async () => {
    const plans: WorkerPlan[] = Array.from({ length: PROCESSES }, (_, i) => ({
      id: `p${i}`,
      store: storeSpec,
      cache: REDIS_URL,
      namespace,
      keys,
      operations: 600,
      concurrency: 8,
      seed: 1000 + i,
      ttlMs: 2,
      jitterMs: 5,
    }));
    const outputs = await Promise.all(
      plans.map((plan) =>
        run(process.execPath, ['--import', 'tsx', 'test/helpers/instance-worker.ts', JSON.stringify(plan)], { timeout: 120_000, maxBuffer: 64 * 1024 * 1024 }),
      ),
    );
    const history = outputs.flatMap(({ stdout }) => JSON.parse(stdout) as HistoryEntry[]);
    assert.equal(history.length, PROCESSES * 600);
    const reads = history.filter((e) => e.kind === 'read' && e.outcome === 'ok');
    assert.ok(reads.length > 500, `only ${reads.length} reads completed`);
    assert.ok(history.filter((e) => e.kind === 'write' && e.outcome === 'ok').length > 200);
    assert.deepEqual(checkVersions(history), []);

    // Convergence: once leases have expired, every key is in A, B or C.
    const store = await openStore(parseStoreSpec(storeSpec));
    const cache = await openCache(parseCacheSpec(REDIS_URL));
    const engine = createWriteThrough({ store, cache, namespace, journal: false, metrics: false });
    try {
      let states: string[] = [];
      for (let attempt = 0; attempt < 60; attempt++) {
        states = await Promise.all(keys.map(async (key) => (await engine.inspect(key)).state));
        if (states.every((s) => s === 'A' || s === 'B' || s === 'C')) break;
        await sleep(100);
      }
      assert.deepEqual(states.filter((s) => !['A', 'B', 'C'].includes(s)), []);
    } finally {
      await engine.close();
      await cache.close();
      await store.close();
    }
  });
});
