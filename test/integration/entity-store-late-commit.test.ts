// A write the engine gave up on (its deadline passed, outcome unknown) may still commit later; the
// engine then fences the late version (a repair row in the journal, an invalidation). If the store
// was closed meanwhile (the application shutting down), appending the repair row fails: that must
// not end the process. The entity stores refuse a call after close() by throwing at once (not by
// returning a rejected promise), and the late fence was a `.then` callback whose rejection nobody
// handled: an unhandled rejection, which ends a Node process. Real parts: a pg.Pool of one
// connection, held by the test while the engine's write waits for it, so that the write commits
// only after the engine gave up and the store was closed.
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import pg from 'pg';
import { createMemoryCache } from '../../src/cache/memory.js';
import { createWriteThrough } from '../../src/compose/write-through.js';
import { StoreOutcomeUnknownError } from '../../src/errors.js';
import { createPostgresEntityStore } from '../../src/store/entity/postgres-entity-store.js';
import { DATABASE_URL, needService } from '../helpers/services.js';

const service = await needService('PostgreSQL', DATABASE_URL);

describe('a write that commits after the engine gave up and the entity store closed', { skip: service.skip }, () => {
  const schema = `lockstep_late_${randomBytes(5).toString('hex')}`;
  const admin = new pg.Pool({ connectionString: DATABASE_URL, max: 1 });
  admin.on('error', () => undefined);
  const unhandled: unknown[] = [];
  const onUnhandled = (reason: unknown) => unhandled.push(reason);

  before(async () => {
    await admin.query(`CREATE SCHEMA ${schema}`);
    await admin.query(`CREATE TABLE ${schema}.items (id text PRIMARY KEY, body text NOT NULL, version integer)`);
    process.on('unhandledRejection', onUnhandled);
  });
  after(async () => {
    process.off('unhandledRejection', onUnhandled);
    await admin.query(`DROP SCHEMA ${schema} CASCADE`);
    await admin.end();
  });

  it('fences it without an unhandled rejection', async () => {
    const pool = new pg.Pool({ connectionString: DATABASE_URL, max: 1 });
    pool.on('error', () => undefined);
    const store = await createPostgresEntityStore({ pool, schema, table: 'items', notify: false });
    const engine = createWriteThrough<{ body: string }>({ store, cache: createMemoryCache({ maxEntries: 100 }), namespace: 'items', leaseTtl: '300ms', journal: false, metrics: false });
    // The pool's only connection is ours: the engine's write waits for it past its deadline.
    const held = await pool.connect();
    await assert.rejects(engine.write('a', { body: 'late' }), StoreOutcomeUnknownError);
    await engine.close();
    await store.close();
    held.release(); // now the write gets the connection and commits, after all
    const committed = async () => (await admin.query(`SELECT version FROM ${schema}.items WHERE id = 'a'`)).rows.length === 1;
    // Bounded: a write that never lands fails the test instead of hanging it (no timeout is set above).
    const deadline = Date.now() + 30_000;
    while (!(await committed())) {
      assert.ok(Date.now() < deadline, 'the held write never committed: the late fence was not exercised');
      await new Promise((resolve) => setTimeout(resolve, 10));
    }
    // The late confirmation runs its fence on the next turns of the event loop; let them pass.
    for (let i = 0; i < 5; i++) await new Promise((resolve) => setImmediate(resolve));
    await pool.end();
    assert.deepEqual(unhandled, []);
  });
});
