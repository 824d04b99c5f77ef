// The Kysely integration on real SQLite (SqliteDialect over better-sqlite3) and PostgreSQL
// (PostgresDialect over a pg.Pool, a schema per test, dropped after): rows read the same from the
// cache and from the table, inserts must name every column, updates are whole-row writes guarded by
// the version they read, and Kysely's own UPDATE outside Lockstep is versioned by the triggers and
// invalidated by the journal drainer.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import Database from 'better-sqlite3';
import { Kysely, PostgresDialect, SqliteDialect, type Generated } from 'kysely';
import pg from 'pg';
import { createMemoryCache } from '../../src/cache/memory.js';
import { InvalidOptionError, InvalidValueError, VersionConflictError } from '../../src/errors.js';
import { kyselyTable, type KyselyTable, type KyselyTableOptions } from '../../src/integrations/kysely.js';
import { DATABASE_URL, needService } from '../helpers/services.js';

interface NotesTable {
  id: number;
  title: string;
  meta: string | null;
  version: Generated<number>;
}
interface DB {
  notes: NotesTable;
}

const DDL = (table: string) => `CREATE TABLE ${table} (id integer PRIMARY KEY, title text NOT NULL, meta text, version integer NOT NULL DEFAULT 1)`;
let opened = 0;

async function open(dialect: 'sqlite' | 'postgres') {
  const cache = createMemoryCache({ maxEntries: 100 });
  const tables: Array<KyselyTable<DB, 'notes'>> = [];
  let db: Kysely<DB>;
  let connection: Partial<KyselyTableOptions>;
  let close: () => Promise<void>;
  if (dialect === 'sqlite') {
    const database = new Database(':memory:');
    database.exec(DDL('notes'));
    db = new Kysely<DB>({ dialect: new SqliteDialect({ database }) });
    connection = { database };
    close = () => db.destroy(); // closes the database too
  } else {
    const schema = `lockstep_kysely_${process.pid}_${++opened}`;
    const pool = new pg.Pool({ connectionString: DATABASE_URL, max: 6 });
    await pool.query(`CREATE SCHEMA ${schema}`);
    await pool.query(DDL(`${schema}.notes`));
    db = new Kysely<DB>({ dialect: new PostgresDialect({ pool }) }).withSchema(schema);
    connection = { pool, schema };
    close = async () => {
      await pool.query(`DROP SCHEMA ${schema} CASCADE`);
      await db.destroy(); // ends the pool
    };
  }
  const make = async (more: Partial<KyselyTableOptions> = {}) => {
    const t = await kyselyTable(db, 'notes', { cache, journal: { pollInterval: '1h' }, ...connection, ...more });
    tables.push(t);
    return t;
  };
  return {
    db,
    notes: await make(),
    another: make,
    async close() {
      for (const t of tables) await t.close();
      await close();
    },
  };
}

const postgres = await needService('PostgreSQL', DATABASE_URL);
for (const [dialect, skip] of [['sqlite', false], ['postgres', postgres.skip]] as const) {
  describe(`Kysely integration on ${dialect}`, { skip }, () => {
    it('a row read from the cache equals the row read from the table through the Kysely select', async () => {
      const b = await open(dialect);
      try {
        const inserted = await b.notes.insert({ id: 1, title: 'first', meta: '{"tags":["a"]}' });
        assert.deepEqual(inserted, { id: 1, title: 'first', meta: '{"tags":["a"]}', version: 1 });
        assert.deepEqual(await b.notes.findById(1), inserted);
        assert.equal((await b.notes.repository.engine.readEntry('1')).source, 'hit');
        const cold = await b.another({ cache: createMemoryCache({ maxEntries: 10 }) });
        assert.deepEqual(await cold.findById(1), inserted);
        assert.equal(cold.repository.engine.counters.cacheMisses, 1);
        assert.deepEqual(await b.db.selectFrom('notes').selectAll().where('id', '=', 1).executeTakeFirst(), inserted);
      } finally {
        await b.close();
      }
    });

    it('refuses a duplicate id and a missing column; updates whole rows; conflicts on a stale version; deletes', async () => {
      const b = await open(dialect);
      try {
        await b.notes.insert({ id: 1, title: 'x', meta: null });
        await assert.rejects(b.notes.insert({ id: 1, title: 'dup', meta: null }), VersionConflictError);
        await assert.rejects(b.notes.insert({ id: 2, title: 'no meta' }), (e: unknown) => e instanceof InvalidValueError && /missing: meta/.test(e.message));
        assert.deepEqual(await b.notes.update(1, { title: 'y' }), { id: 1, title: 'y', meta: null, version: 2 });
        assert.equal(await b.notes.update(9, { title: 'none' }), undefined);
        await assert.rejects(b.notes.update(1, { title: 'stale' }, { expectedVersion: 1 }), VersionConflictError);
        assert.deepEqual(await b.notes.delete(1), { version: 3, existed: true });
        assert.equal(await b.notes.findById(1), undefined);
        assert.deepEqual((await b.notes.insert({ id: 1, title: 're', meta: null })).version, 4, 'a re-created id continues above its delete');
      } finally {
        await b.close();
      }
    });

    it("Kysely's own UPDATE outside Lockstep is versioned above the cached row and invalidated by the drainer", async () => {
      const b = await open(dialect);
      try {
        await b.notes.repository.engine.drainJournal();
        const cached = await b.notes.insert({ id: 1, title: 'lockstep', meta: null });
        await b.db.updateTable('notes').set({ title: 'plain kysely' }).where('id', '=', 1).execute();
        assert.equal((await b.notes.findById(1))?.title, 'lockstep', 'served from the cache until the journal is drained');
        assert.equal(await b.notes.repository.engine.drainJournal(), 1);
        const fresh = await b.notes.findById(1);
        assert.equal(fresh?.title, 'plain kysely');
        assert.ok(fresh!.version > cached.version);
      } finally {
        await b.close();
      }
    });
  });
}

describe('Kysely integration options', () => {
  it('needs exactly one connection, an existing table with its version column, and a Kysely of the connection\'s dialect', async () => {
    const cache = createMemoryCache({ maxEntries: 10 });
    const database = new Database(':memory:');
    database.exec('CREATE TABLE notes (id integer PRIMARY KEY, title text)');
    const db = new Kysely<DB>({ dialect: new SqliteDialect({ database }) });
    try {
      await assert.rejects(kyselyTable(db, 'notes', { cache }), /database \(a better-sqlite3 Database\) or pool/);
      await assert.rejects(kyselyTable(db, 'notes', { cache, database }), (e: unknown) => e instanceof InvalidOptionError && /no column "version"/.test(e.message));
      const pgKysely = new Kysely<DB>({ dialect: new PostgresDialect({ pool: new pg.Pool({ max: 1 }) }) });
      database.exec('ALTER TABLE notes ADD COLUMN version integer NOT NULL DEFAULT 1');
      await assert.rejects(kyselyTable(pgKysely, 'notes', { cache, database }), /does not run on the given connection/);
      await pgKysely.destroy();
    } finally {
      await db.destroy();
    }
  });
});
