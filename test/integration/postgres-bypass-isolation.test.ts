// Plain-SQL writes made in REPEATABLE READ or SERIALIZABLE transactions (another application's
// choice, not Lockstep's: its own sessions are READ COMMITTED). Their snapshot is taken at their
// first statement, so a tombstone committed after it (Lockstep's delete of the key) is invisible to
// the bypass triggers' reads: an INSERT or a rename onto that key would take a version at or below
// the delete's, and the delete's cached tombstone (or an older cached value) would outlive the
// drainer's invalidateOlder. TRUNCATE, which is not MVCC-safe, would tombstone only the rows of that
// snapshot. Each test: a real engine with a memory cache, a bypass transaction on its own connection,
// then a read after the drainer has passed must return the store's current row.
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { after, describe, it } from 'node:test';
import pg from 'pg';
import { createMemoryCache } from '../../src/cache/memory.js';
import { createWriteThrough, type WriteThrough } from '../../src/compose/write-through.js';
import { createPostgresStore, type PostgresStore } from '../../src/store/postgres.js';
import { DATABASE_URL, needService } from '../helpers/services.js';

const service = await needService('PostgreSQL', DATABASE_URL);
const admin = new pg.Pool({ connectionString: DATABASE_URL, max: 2 });
admin.on('error', () => undefined);
after(() => admin.end());

interface Fixture {
  engine: WriteThrough<string>;
  store: PostgresStore;
  /** Plain SQL on a connection of its own, as another application writes. */
  sql: pg.Client;
  kv: string;
}

async function withEngine(run: (f: Fixture) => Promise<void>): Promise<void> {
  const schema = `lockstep_test_${randomBytes(6).toString('hex')}`;
  const store = createPostgresStore({ connectionString: DATABASE_URL, schema, poolSize: 3 });
  const engine = createWriteThrough<string>({
    store,
    cache: createMemoryCache({ maxEntries: 1_000 }),
    namespace: 'ns',
    journal: { pollInterval: '1h' }, // the test drains when it means to
    metrics: false,
  });
  const sql = new pg.Client({ connectionString: DATABASE_URL });
  sql.on('error', () => undefined);
  await sql.connect();
  try {
    await store.ready();
    await run({ engine, store, sql, kv: `"${schema}".lockstep_kv` });
  } finally {
    await sql.query('ROLLBACK').catch(() => undefined);
    await sql.end().catch(() => undefined);
    await engine.close();
    await store.close();
    await admin.query(`DROP SCHEMA IF EXISTS "${schema}" CASCADE`);
  }
}

/** A serialization failure (the application retries its transaction), or feature_not_supported (TRUNCATE outside READ COMMITTED). */
const REFUSALS = ['40001', '0A000'];

/** Runs the bypass transaction; a serialization failure is a refused write (the caller retries), never a stale one. */
async function commitOrSerializationFailure(sql: pg.Client, statement: string): Promise<'committed' | 'refused'> {
  try {
    await sql.query(statement);
    await sql.query('COMMIT');
    return 'committed';
  } catch (error) {
    await sql.query('ROLLBACK');
    assert.ok(REFUSALS.includes((error as pg.DatabaseError).code ?? ''), `a refusal, not ${String(error)}`);
    return 'refused';
  }
}

/** After the drainer's pass: the engine answers what the store holds. */
async function assertReadsStore(f: Fixture, key: string): Promise<void> {
  await f.engine.drainJournal();
  const stored = await f.store.read('ns', key);
  assert.equal(await f.engine.read(key), stored === undefined ? undefined : JSON.parse(stored.payload), `read of ${key} after the drain`);
}

describe('plain SQL in REPEATABLE READ / SERIALIZABLE transactions (bypass triggers)', { skip: service.skip }, () => {
  for (const level of ['REPEATABLE READ', 'SERIALIZABLE']) {
    it(`${level}: an INSERT of a key Lockstep deleted after the transaction's snapshot is versioned above the delete (or refused)`, () =>
      withEngine(async (f) => {
        await f.engine.write('k', 'v1');
        await f.sql.query(`BEGIN ISOLATION LEVEL ${level}`);
        await f.sql.query('SELECT 1'); // the snapshot
        const deleted = await f.engine.delete('k');
        assert.equal(await f.engine.read('k'), undefined, 'the delete is cached as absent');
        const outcome = await commitOrSerializationFailure(f.sql, `INSERT INTO ${f.kv} (namespace, key, value) VALUES ('ns', 'k', '"sql"')`);
        await assertReadsStore(f, 'k');
        if (outcome === 'committed') {
          const stored = await f.store.read('ns', 'k');
          assert.ok(stored !== undefined && stored.version > deleted.version, `version ${stored?.version} above the delete's ${deleted.version}`);
        }
        assert.ok((await f.engine.write('k', 'v3')).version > deleted.version, "Lockstep's next write goes above the delete");
      }));

    it(`${level}: a rename onto a key Lockstep deleted after the transaction's snapshot is versioned above the delete (or refused)`, () =>
      withEngine(async (f) => {
        await f.engine.write('from', 'a');
        for (let i = 0; i < 3; i++) await f.engine.write('to', `t${i}`);
        await f.sql.query(`BEGIN ISOLATION LEVEL ${level}`);
        await f.sql.query('SELECT 1');
        const deleted = await f.engine.delete('to');
        assert.equal(await f.engine.read('to'), undefined);
        const outcome = await commitOrSerializationFailure(f.sql, `UPDATE ${f.kv} SET key = 'to' WHERE key = 'from'`);
        if (outcome === 'committed') {
          const stored = await f.store.read('ns', 'to');
          assert.ok(stored !== undefined && stored.version > deleted.version, `version ${stored?.version} above the delete's ${deleted.version}`);
        }
        await assertReadsStore(f, 'to');
        await assertReadsStore(f, 'from');
      }));

    it(`${level}: a rename onto a key Lockstep created and deleted after the transaction's snapshot is versioned above the delete (or refused)`, () =>
      withEngine(async (f) => {
        await f.engine.write('from', 'a');
        await f.sql.query(`BEGIN ISOLATION LEVEL ${level}`);
        await f.sql.query('SELECT 1');
        await f.engine.write('to', 't');
        const deleted = await f.engine.delete('to'); // tombstone 2: above what the rename would take (1 + 1)
        assert.equal(await f.engine.read('to'), undefined, 'the delete is cached as absent');
        const outcome = await commitOrSerializationFailure(f.sql, `UPDATE ${f.kv} SET key = 'to' WHERE key = 'from'`);
        await assertReadsStore(f, 'to');
        await assertReadsStore(f, 'from');
        if (outcome === 'committed') {
          const stored = await f.store.read('ns', 'to');
          assert.ok(stored !== undefined && stored.version > deleted.version, `version ${stored?.version} above the delete's ${deleted.version}`);
        }
      }));

    it(`${level}: TRUNCATE after Lockstep wrote keys the transaction's snapshot does not show (or refused)`, () =>
      withEngine(async (f) => {
        await f.engine.write('old', 'o1');
        await f.sql.query(`BEGIN ISOLATION LEVEL ${level}`);
        await f.sql.query('SELECT 1');
        await f.engine.write('old', 'o2'); // a newer version than the snapshot's
        await f.engine.write('new', 'n1'); // a key the snapshot does not have
        assert.equal(await f.engine.read('old'), 'o2');
        assert.equal(await f.engine.read('new'), 'n1');
        await commitOrSerializationFailure(f.sql, `TRUNCATE ${f.kv}`);
        await assertReadsStore(f, 'old');
        await assertReadsStore(f, 'new');
      }));
  }

  it('REPEATABLE READ plain SQL that nothing raced still commits, versioned as in READ COMMITTED; TRUNCATE there is refused with a hint', () =>
    withEngine(async (f) => {
      await f.engine.write('gone', 'g');
      const buried = await f.engine.delete('gone');
      await f.engine.write('from', 'a');
      await f.sql.query('BEGIN ISOLATION LEVEL REPEATABLE READ');
      await f.sql.query('SELECT 1');
      await f.sql.query(`INSERT INTO ${f.kv} (namespace, key, value) VALUES ('ns', 'fresh', '"f"'), ('ns', 'gone', '"back"')`);
      await f.sql.query(`UPDATE ${f.kv} SET key = 'renamed' WHERE key = 'from'`);
      await f.sql.query('COMMIT');
      assert.deepEqual(await f.store.read('ns', 'fresh'), { version: 1, payload: '"f"' });
      assert.deepEqual(await f.store.read('ns', 'gone'), { version: buried.version + 1, payload: '"back"' });
      assert.equal((await f.store.read('ns', 'renamed'))?.payload, '"a"');
      await assertReadsStore(f, 'gone');
      await f.sql.query('BEGIN ISOLATION LEVEL REPEATABLE READ');
      await assert.rejects(f.sql.query(`TRUNCATE ${f.kv}`), (e: pg.DatabaseError) => e.code === '0A000' && /READ COMMITTED/.test(e.message));
      await f.sql.query('ROLLBACK');
      await f.sql.query(`TRUNCATE ${f.kv}`); // READ COMMITTED, autocommit
      await assertReadsStore(f, 'gone');
    }));
});
