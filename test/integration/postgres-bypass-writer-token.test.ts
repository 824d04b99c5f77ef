// The `writer` column tells Lockstep's writes from plain SQL: an UPDATE that sets it to a token of
// its own transaction is Lockstep's, and no trigger runs. So the bypass triggers must never leave
// such a token in a row written by plain SQL: a later statement of that transaction that copies the
// row's writer onto another row (an ORM's full-row copy, as in postgres-store.test.ts) would pass
// its UPDATE off as Lockstep's: not versioned, not journaled, the old value cached for good. A
// re-created key whose tombstone is read only after the key is held (a delete in the same statement,
// or one that committed while the INSERT waited for the key) is where the INSERT trigger fixes its
// version up with a second UPDATE.
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { after, describe, it } from 'node:test';
import pg from 'pg';
import { createMemoryCache } from '../../src/cache/memory.js';
import { createWriteThrough } from '../../src/compose/write-through.js';
import { createPostgresStore } from '../../src/store/postgres.js';
import { DATABASE_URL, needService } from '../helpers/services.js';

const service = await needService('PostgreSQL', DATABASE_URL);
const admin = new pg.Pool({ connectionString: DATABASE_URL, max: 2 });
admin.on('error', () => undefined);
after(() => admin.end());

describe('bypass triggers leave no writer token of the plain transaction', { skip: service.skip }, () => {
  it('a key deleted and re-inserted in one statement, then its row (writer included) copied onto another key in the same transaction: the copy is versioned and journaled', async () => {
    const schema = `lockstep_test_${randomBytes(6).toString('hex')}`;
    const kv = `"${schema}".lockstep_kv`;
    const store = createPostgresStore({ connectionString: DATABASE_URL, schema, poolSize: 3 });
    const engine = createWriteThrough<string>({ store, cache: createMemoryCache({ maxEntries: 100 }), namespace: 'ns', journal: { pollInterval: '1h' }, metrics: false });
    const sql = new pg.Client({ connectionString: DATABASE_URL });
    sql.on('error', () => undefined);
    await sql.connect();
    try {
      await engine.write('k', 'k1');
      const other = (await engine.write('other', 'o1')).version;
      assert.equal(await engine.read('other'), 'o1', 'cached');
      await sql.query('BEGIN');
      const xact = (await sql.query('SELECT pg_current_xact_id()::text AS x')).rows[0].x as string;
      // Replace the row in one statement: the INSERT's BEFORE trigger runs before the DELETE's
      // AFTER trigger buries the key, so the INSERT's AFTER trigger has to lift it above that tombstone.
      await sql.query(`WITH d AS (DELETE FROM ${kv} WHERE namespace = 'ns' AND key = 'k' RETURNING namespace, key)
        INSERT INTO ${kv} (namespace, key, value) SELECT namespace, key, '"k2"' FROM d`);
      const writer = (await sql.query(`SELECT writer FROM ${kv} WHERE key = 'k'`)).rows[0].writer as string | null;
      assert.ok(!(writer ?? '').startsWith(`lockstep:${xact}:`), `no token of this transaction in the row (${writer})`);
      await sql.query(`UPDATE ${kv} o SET value = k.value, writer = k.writer FROM ${kv} k WHERE o.key = 'other' AND k.key = 'k'`);
      await sql.query('COMMIT');
      assert.ok((await store.read('ns', 'other'))!.version > other, 'the copy is versioned');
      await engine.drainJournal();
      assert.equal(await engine.read('other'), 'k2', 'the copy is read after the drain');
      assert.equal(await engine.read('k'), 'k2');
    } finally {
      await sql.query('ROLLBACK').catch(() => undefined);
      await sql.end();
      await engine.close();
      await store.close();
      await admin.query(`DROP SCHEMA IF EXISTS "${schema}" CASCADE`);
    }
  });
});
