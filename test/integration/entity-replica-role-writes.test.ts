// Plain SQL on an entity table under session_replication_role = replica (a logical replication
// subscription's apply worker, some bulk loaders) fires only triggers enabled ALWAYS: the entity
// store's are, so such writes are versioned and journaled like any bypass write. `ALTER TABLE …
// ENABLE TRIGGER ALL` after a bulk load sets them back to origin sessions only; the next open of an
// entity store enables them ALWAYS again. (The end-to-end case, a real subscription:
// test/consistency/logical-replication-writes.test.ts.)
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import pg from 'pg';
import { createPostgresEntityStore } from '../../src/store/entity/postgres-entity-store.js';
import { DATABASE_URL, needService } from '../helpers/services.js';

const postgres = await needService('PostgreSQL', DATABASE_URL);

describe('PostgreSQL entity store: writes under session_replication_role = replica', { skip: postgres.skip }, () => {
  const schema = `lockstep_entity_replica_${randomBytes(4).toString('hex')}`;
  const pool = new pg.Pool({ connectionString: DATABASE_URL, max: 4 });
  pool.on('error', () => undefined);
  before(async () => {
    await pool.query(`CREATE SCHEMA ${schema}`);
    await pool.query(`CREATE TABLE ${schema}.items (id text PRIMARY KEY, body text NOT NULL, version bigint)`);
  });
  after(async () => {
    await pool.query(`DROP SCHEMA ${schema} CASCADE`);
    await pool.end();
  });

  /** Runs `sql` on a connection under session_replication_role = replica. */
  async function asReplica(sql: string): Promise<void> {
    const client = await pool.connect();
    try {
      await client.query('SET session_replication_role = replica');
      await client.query(sql);
    } finally {
      await client.query('RESET session_replication_role');
      client.release();
    }
  }
  const triggerModes = async () =>
    (await pool.query(`SELECT DISTINCT tgenabled FROM pg_trigger WHERE tgrelid = '${schema}.items'::regclass AND NOT tgisinternal`)).rows.map((r) => r.tgenabled as string);

  it('an UPDATE, INSERT and DELETE under it are versioned and journaled; an open enables triggers set back to origin ALWAYS again', async () => {
    let store = await createPostgresEntityStore({ pool, schema, table: 'items', notify: false });
    try {
      const written = (await store.write('items', 'a', JSON.stringify({ id: 'a', body: 'a1' }), { journal: false, deadlineMs: 10_000 })).version;
      const head = await store.journalHead();
      await asReplica(`UPDATE ${schema}.items SET body = 'a2' WHERE id = 'a'`);
      await asReplica(`INSERT INTO ${schema}.items (id, body) VALUES ('b', 'b1')`);
      await asReplica(`DELETE FROM ${schema}.items WHERE id = 'a'`);
      assert.deepEqual(
        (await store.readJournal(head, 10)).map((r) => [r.key, r.version]),
        [['a', written + 1], ['b', 1], ['a', written + 2]],
      );
      assert.deepEqual(await triggerModes(), ['A']);

      // A bulk load's ENABLE TRIGGER ALL: origin only, until an entity store opens.
      await pool.query(`ALTER TABLE ${schema}.items ENABLE TRIGGER ALL`);
      assert.deepEqual(await triggerModes(), ['O']);
      await store.close();
      store = await createPostgresEntityStore({ pool, schema, table: 'items', notify: false });
      assert.deepEqual(await triggerModes(), ['A']);
      const again = await store.journalHead();
      await asReplica(`UPDATE ${schema}.items SET body = 'b2' WHERE id = 'b'`);
      assert.deepEqual((await store.readJournal(again, 10)).map((r) => [r.key, r.version]), [['b', 2]]);
    } finally {
      await store.close();
    }
  });
  it(`a bulk INSERT of more ids than the server's lock table holds (one statement, 20,000 rows): it commits, each row versioned and journaled; a create through Lockstep during it waits, then lands`, async () => {
    // One advisory lock per id ran out of shared memory (max_locks_per_transaction 64 × 100
    // connections = 6,400 by default): past ENTITY_LOCK_ESCALATION ids the transaction locks the entity.
    const store = await createPostgresEntityStore({ pool, schema, table: 'items', notify: false });
    try {
      const head = await store.journalHead();
      const bulk = await pool.connect();
      try {
        await bulk.query('BEGIN');
        await bulk.query(`INSERT INTO ${schema}.items (id, body) SELECT 'bulk' || g, 'x' FROM generate_series(1, 20000) g`);
        // Holding the entity's lock: a create through Lockstep waits for the COMMIT.
        const create = Promise.resolve(store.write('items', 'during', JSON.stringify({ id: 'during', body: 'd' }), { journal: false, deadlineMs: 30_000 }));
        const settled = await Promise.race([create.then(() => 'landed', () => 'failed'), new Promise((resolve) => setTimeout(resolve, 300, 'waiting'))]);
        assert.equal(settled, 'waiting', 'the create waits for the bulk transaction');
        await bulk.query('COMMIT');
        assert.equal((await create).version, 1);
      } finally {
        await bulk.query('ROLLBACK').catch(() => undefined);
        bulk.release();
      }
      const journaled = await pool.query(`SELECT count(*)::int AS n, min(version)::int AS lo, max(version)::int AS hi FROM ${schema}.lockstep_journal WHERE id > $1 AND key LIKE 'bulk%'`, [head]);
      assert.deepEqual(journaled.rows[0], { n: 20000, lo: 1, hi: 1 });
    } finally {
      await store.close();
    }
  });
});
