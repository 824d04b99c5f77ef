// An entity-store COMMIT that the network holds back past every client-side deadline (a partition
// that heals: TCP delivers it late). The engine answers the writer in time (outcome unknown), its
// lease expires and a reader fills the old value; then the COMMIT reaches the server and commits.
// The store must still deliver that late confirmation to the engine, which fences the late version.
// When the store gave up on the connection instead (released with destroy: pg ends it gracefully,
// after the COMMIT already sent), nothing reached the engine and the old value stayed cached
// (found by a review of the entity stores' client-side deadlines).
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import pg from 'pg';
import { createMemoryCache } from '../../src/cache/memory.js';
import { createWriteThrough } from '../../src/compose/write-through.js';
import { createPostgresEntityStore } from '../../src/store/entity/postgres-entity-store.js';
import { fromCommit, holdRelay } from '../helpers/hold-relay.js';
import { DATABASE_URL, needService } from '../helpers/services.js';
import { until } from '../helpers/until.js';

const service = await needService('PostgreSQL', DATABASE_URL);

describe('an entity-store COMMIT held back by the network past the client deadlines', { skip: service.skip, timeout: 120_000 }, () => {
  const schema = `lockstep_held_commit_${randomBytes(5).toString('hex')}`;
  const admin = new pg.Pool({ connectionString: DATABASE_URL, max: 1 });
  admin.on('error', () => undefined);
  before(async () => {
    await admin.query(`CREATE SCHEMA ${schema}`);
    await admin.query(`CREATE TABLE ${schema}.items (id text PRIMARY KEY, body text NOT NULL, version integer)`);
  });
  after(async () => {
    await admin.query(`DROP SCHEMA ${schema} CASCADE`);
    await admin.end();
  });

  const cases: Array<[string, pg.PoolConfig]> = [
    ['a pool of defaults', {}],
    // pg reads a query's query_timeout 0 as "not given" and falls back to the pool's (found by review).
    ["a pool with its own query_timeout (shorter than the hold)", { query_timeout: 1_500 }],
  ];
  for (const [label, poolOptions] of cases) it(`${label}: once it lands, the engine fences it: the old value filled meanwhile is not served`, async () => {
    const relay = await holdRelay(DATABASE_URL);
    const pool = new pg.Pool({ connectionString: relay.url, max: 2, ...poolOptions });
    pool.on('error', () => undefined);
    // Statement timeout 200 ms: a store that gives up on its connection does so 1.2 s after the COMMIT.
    const store = await createPostgresEntityStore({ pool, schema, table: 'items', notify: false, statementTimeout: '200ms' });
    const engine = createWriteThrough<{ body: string }>({ store, cache: createMemoryCache({ maxEntries: 100 }), namespace: 'items', leaseTtl: '1s', journal: false, metrics: false });
    const stored = async () => (await admin.query(`SELECT body FROM ${schema}.items WHERE id = 'a'`)).rows[0]?.body as string | undefined;
    try {
      await engine.write('a', { body: 'v1' });
      relay.arm(fromCommit);
      await assert.rejects(engine.write('a', { body: 'v2' }), (e: Error & { code?: string }) => e.code === 'E_STORE_OUTCOME_UNKNOWN');
      // The lease expired: a reader filled the old value, and it is served from the cache.
      await until('the old value filled and served from the cache', async () => {
        const entry = await engine.readEntry('a');
        return entry.source === 'hit' && entry.value?.body === 'v1';
      });
      // Past the client deadline a store that gives up on the connection would have (1.2 s), with margin.
      await until('the COMMIT held past every client-side deadline', async () => (relay.heldFor() ?? 0) > 2_500);
      assert.equal(await stored(), 'v1', 'the COMMIT is still held');
      relay.resume();
      await until('the held COMMIT to land', async () => (await stored()) === 'v2');
      await until('the late version fenced: reads answer v2', async () => (await engine.read('a'))?.body === 'v2', 10_000);
    } finally {
      relay.resume();
      await engine.close();
      await store.close();
      await pool.end().catch(() => undefined);
      await relay.close();
    }
  });
});
