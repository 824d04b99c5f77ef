// The ORM integrations used the way applications use them, and abused: writes and reads inside the
// ORM's own transactions on the shared SQLite connection, values the database normalizes (numeric
// scale, generated columns, a trigger of the application's own), the ORM's own writes that bypass
// Lockstep (by a non-key filter, upserts, renames of the key, delete then re-insert, raw SQL), and a
// `lockstep.writing` mark set by plain SQL on PostgreSQL. After each, a read through Lockstep must
// equal what the database returns for the row (or refuse), never a row no commit produced.
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { after, describe, it } from 'node:test';
import Database from 'better-sqlite3';
import { eq, gt, sql } from 'drizzle-orm';
import { drizzle as drizzleSqlite } from 'drizzle-orm/better-sqlite3';
import { drizzle as drizzlePg } from 'drizzle-orm/node-postgres';
import { integer as pgInteger, numeric, pgSchema, text as pgText } from 'drizzle-orm/pg-core';
import { integer, sqliteTable, text } from 'drizzle-orm/sqlite-core';
import { Kysely, SqliteDialect, type Generated } from 'kysely';
import pg from 'pg';
import { createMemoryCache } from '../../src/cache/memory.js';
import { drizzleTable } from '../../src/integrations/drizzle.js';
import { kyselyTable } from '../../src/integrations/kysely.js';
import { createRepository } from '../../src/patterns/repository.js';
import { createPostgresEntityStore } from '../../src/store/entity/postgres-entity-store.js';
import { createSqliteEntityStore } from '../../src/store/entity/sqlite-entity-store.js';
import { DATABASE_URL, needService } from '../helpers/services.js';

interface DB {
  notes: { id: number; title: string; version: Generated<number> };
}

/** A Kysely over one better-sqlite3 connection, and the integration on the same connection. */
async function kyselyOnSqlite() {
  const database = new Database(':memory:');
  database.exec('CREATE TABLE notes (id INTEGER PRIMARY KEY, title TEXT NOT NULL, version INTEGER NOT NULL DEFAULT 1)');
  const db = new Kysely<DB>({ dialect: new SqliteDialect({ database }) });
  const notes = await kyselyTable(db, 'notes', { database, cache: createMemoryCache({ maxEntries: 100 }), journal: { pollInterval: '1h' }, timeout: '300ms' });
  const stored = () => database.prepare('SELECT id, title, version FROM notes WHERE id = 1').get();
  const others: Array<Awaited<ReturnType<typeof kyselyTable<DB, 'notes'>>>> = [];
  return {
    db,
    notes,
    stored,
    async another() {
      const other = await kyselyTable(db, 'notes', { database, cache: createMemoryCache({ maxEntries: 100 }), journal: { pollInterval: '1h' }, timeout: '300ms' });
      others.push(other);
      return other;
    },
    async close() {
      for (const other of others) await other.close();
      await notes.close();
      await db.destroy();
    },
  };
}

describe('the integration called inside an ORM transaction on the same SQLite connection', () => {
  it('a write inside a transaction that rolls back is refused: it never publishes a row no commit produced', async () => {
    const k = await kyselyOnSqlite();
    try {
      await k.notes.insert({ id: 1, title: 'committed' });
      const inside = k.db.transaction().execute(async () => {
        await assert.rejects(k.notes.update(1, { title: 'rolled back' }), /inside a transaction/);
        throw new Error('the application aborts its transaction');
      });
      await assert.rejects(inside, /the application aborts/);
      assert.deepEqual(k.stored(), { id: 1, title: 'committed', version: 1 });
      await k.notes.repository.engine.drainJournal();
      // The cache must hold no row the database does not have.
      assert.deepEqual(await k.notes.findById(1), { id: 1, title: 'committed', version: 1 });
    } finally {
      await k.close();
    }
  });

  it('a journal drain inside a transaction that rolls back does not pass over the id a later commit reuses', async () => {
    const k = await kyselyOnSqlite();
    try {
      await k.notes.insert({ id: 1, title: 'committed' });
      await assert.rejects(
        k.db.transaction().execute(async (trx) => {
          await trx.updateTable('notes').set({ title: 'uncommitted' }).where('id', '=', 1).execute();
          await k.notes.repository.engine.drainJournal().catch(() => undefined);
          throw new Error('the application aborts its transaction');
        }),
      );
      assert.deepEqual(await k.notes.findById(1), { id: 1, title: 'committed', version: 1 }, 'filled again');
      // A plain write that commits: its journal row takes the id the rolled-back one had.
      await k.db.updateTable('notes').set({ title: 'bypass' }).where('id', '=', 1).execute();
      assert.deepEqual(k.stored(), { id: 1, title: 'bypass', version: 2 });
      await k.notes.repository.engine.drainJournal();
      assert.deepEqual(await k.notes.findById(1), { id: 1, title: 'bypass', version: 2 });
    } finally {
      await k.close();
    }
  });

  it('a read inside a transaction that wrote the row (rolled back after) fills no uncommitted row', async () => {
    const k = await kyselyOnSqlite();
    try {
      await k.notes.insert({ id: 1, title: 'committed' });
      // A second instance on the same connection, its cache cold: its read inside the transaction misses.
      const cold = await k.another();
      await assert.rejects(
        k.db.transaction().execute(async (trx) => {
          await trx.updateTable('notes').set({ title: 'uncommitted' }).where('id', '=', 1).execute();
          await cold.findById(1).catch(() => undefined);
          throw new Error('the application aborts its transaction');
        }),
      );
      assert.deepEqual(k.stored(), { id: 1, title: 'committed', version: 1 });
      await cold.repository.engine.drainJournal();
      assert.deepEqual(await cold.findById(1), { id: 1, title: 'committed', version: 1 });
    } finally {
      await k.close();
    }
  });
});

const postgres = await needService('PostgreSQL', DATABASE_URL);
const admin = new pg.Pool({ connectionString: DATABASE_URL, max: 4 });
admin.on('error', () => undefined);
after(() => admin.end());
const freshSchema = async () => {
  const schema = `lockstep_adv_orm_${randomBytes(5).toString('hex')}`;
  await admin.query(`CREATE SCHEMA ${schema}`);
  return { schema, drop: () => admin.query(`DROP SCHEMA ${schema} CASCADE`) };
};

describe('the cached row is the row the database stored', () => {
  it('Drizzle on SQLite: a generated column is cached as the database computes it, not as null', async () => {
    const people = sqliteTable('people', {
      id: integer('id').primaryKey(),
      first: text('first').notNull(),
      last: text('last').notNull(),
      full: text('full').generatedAlwaysAs(sql`first || ' ' || last`),
      version: integer('version').notNull().default(1),
    });
    const sqlite = new Database(':memory:');
    sqlite.exec(`CREATE TABLE people (id INTEGER PRIMARY KEY, first TEXT NOT NULL, last TEXT NOT NULL,
      full TEXT GENERATED ALWAYS AS (first || ' ' || last) VIRTUAL, version INTEGER NOT NULL DEFAULT 1)`);
    const db = drizzleSqlite(sqlite);
    const table = await drizzleTable(db, people, { version: people.version, cache: createMemoryCache({ maxEntries: 10 }), journal: false });
    try {
      await table.insert({ id: 1, first: 'Ada', last: 'Lovelace' });
      const fromDb = db.select().from(people).where(eq(people.id, 1)).get();
      assert.equal(fromDb?.full, 'Ada Lovelace');
      assert.deepEqual(await table.findById(1), fromDb, 'after the insert');
      await table.update(1, { last: 'Byron' });
      assert.deepEqual(await table.findById(1), db.select().from(people).where(eq(people.id, 1)).get(), 'after the update');
      assert.equal((await table.repository.engine.readEntry('1')).source, 'hit');
    } finally {
      await table.close();
      sqlite.close();
    }
  });

  it('Drizzle on PostgreSQL: a numeric(10,2) is cached as the database rounded it', { skip: postgres.skip }, async () => {
    const { schema, drop } = await freshSchema();
    const pool = new pg.Pool({ connectionString: DATABASE_URL, max: 4 });
    const s = pgSchema(schema);
    const prices = s.table('prices', { id: pgInteger('id').primaryKey(), amount: numeric('amount', { precision: 10, scale: 2 }).notNull(), version: pgInteger('version').notNull().default(1) });
    await admin.query(`CREATE TABLE ${schema}.prices (id integer PRIMARY KEY, amount numeric(10,2) NOT NULL, version integer NOT NULL DEFAULT 1)`);
    const db = drizzlePg(pool);
    const table = await drizzleTable(db, prices, { version: prices.version, cache: createMemoryCache({ maxEntries: 10 }), journal: false });
    try {
      await table.insert({ id: 1, amount: '1.005' });
      const [fromDb] = await db.select().from(prices).where(eq(prices.id, 1));
      assert.equal(fromDb?.amount, '1.01');
      assert.deepEqual(await table.findById(1), fromDb, 'after the insert');
      await table.update(1, { amount: '2.999' });
      assert.deepEqual(await table.findById(1), (await db.select().from(prices).where(eq(prices.id, 1)))[0], 'after the update');
    } finally {
      await table.close();
      await pool.end();
      await drop();
    }
  });

  it("the repository on PostgreSQL: a column the application's own trigger sets is cached as stored", { skip: postgres.skip }, async () => {
    const { schema, drop } = await freshSchema();
    const pool = new pg.Pool({ connectionString: DATABASE_URL, max: 4 });
    await admin.query(`CREATE TABLE ${schema}.users (id integer PRIMARY KEY, email text NOT NULL, version bigint NOT NULL DEFAULT 1);
      CREATE FUNCTION ${schema}.lower_email() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN NEW.email := lower(NEW.email); RETURN NEW; END $$;
      CREATE TRIGGER lower_email BEFORE INSERT OR UPDATE ON ${schema}.users FOR EACH ROW EXECUTE FUNCTION ${schema}.lower_email();`);
    const entities = await createPostgresEntityStore({ pool, schema, table: 'users' });
    const users = createRepository<{ id: number; email: string; version?: number }>({ entities, cache: createMemoryCache({ maxEntries: 10 }), journal: false });
    try {
      await users.save({ id: 1, email: 'Ada@Example.COM' });
      const stored = (await admin.query(`SELECT id, email, version FROM ${schema}.users WHERE id = 1`)).rows[0];
      assert.equal(stored.email, 'ada@example.com');
      const cached = await users.findById(1);
      assert.equal(cached?.email, stored.email);
    } finally {
      await users.close();
      await entities.close();
      await pool.end();
      await drop();
    }
  });
});
