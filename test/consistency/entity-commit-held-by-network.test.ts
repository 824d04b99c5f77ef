// An entity-store COMMIT that the network holds back past every client-side deadline (a partition
// that heals: TCP delivers it late). The engine answers the writer in time (outcome unknown), its
// lease expires and a reader fills the old value. The store gives up on the connection, but pg ends
// it gracefully, after the COMMIT already sent: delivered, it would commit with no confirmation
// left for the engine, and the old value stayed cached (found by a review of the entity stores'
// client-side deadlines). The store then waited for every COMMIT until the server or the kernel
// answered, which held the pool slot ~15 minutes when no answer ever came; now it gives the COMMIT
// up at its deadline and settles it: it ends that server session from another connection and the
// engine fences the key once it is gone. Whichever way the COMMIT went, reads answer what the table
// holds, and the pool slot is free at once (a pool of one connection keeps serving).
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import pg from 'pg';
import { createMemoryCache } from '../../src/cache/memory.js';
import { createWriteThrough } from '../../src/compose/write-through.js';
import { createPostgresEntityStore } from '../../src/store/entity/postgres-entity-store.js';
import { fromCommit, holdRelay } from '../helpers/hold-relay.js';
import { DATABASE_URL, needService } from '../helpers/services.js';
import { heldWrite } from '../helpers/held-write.js';

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
  for (const [label, poolOptions] of cases) it(`${label}: the old value filled meanwhile is not served once the COMMIT is settled, and the pool slot is free`, async () => {
    const relay = await holdRelay(DATABASE_URL);
    const pool = new pg.Pool({ connectionString: relay.url, max: 1, ...poolOptions });
    pool.on('error', () => undefined);
    // Statement timeout 200 ms: a store that gives up on its connection does so 1.2 s after the COMMIT.
    const store = await createPostgresEntityStore({ pool, schema, table: 'items', notify: false, statementTimeout: '200ms' });
    const engine = createWriteThrough<{ body: string }>({ store, cache: createMemoryCache({ maxEntries: 100 }), namespace: 'items', leaseTtl: '1s', journal: false, metrics: false });
    const stored = async () => (await admin.query(`SELECT body FROM ${schema}.items WHERE id = 'a'`)).rows[0]?.body as string | undefined;
    try {
      await heldWrite(engine, relay, {
        holdFrom: fromCommit,
        stored,
        whileHeld: async () => {
          assert.equal(await stored(), 'v1', 'the COMMIT is still held');
          // The only connection of the pool is not held by the COMMIT given up on.
          await engine.write('b', { body: 'written while the COMMIT is held' });
        },
      });
    } finally {
      relay.resume();
      await engine.close();
      await store.close();
      await pool.end().catch(() => undefined);
      await relay.close();
    }
  });
});
