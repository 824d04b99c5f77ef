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
import { bigint as pgBigint, boolean as pgBoolean, date as pgDate, integer as pgInteger, jsonb, numeric, pgSchema, real, text as pgText, timestamp } from 'drizzle-orm/pg-core';
import { integer, sqliteTable, text } from 'drizzle-orm/sqlite-core';
import { Kysely, SqliteDialect, type Generated } from 'kysely';
import { DataSource, EntitySchema } from 'typeorm';
import pg from 'pg';
import { createMemoryCache } from '../../src/cache/memory.js';
import { InvalidOptionError } from '../../src/errors.js';
import { drizzleTable } from '../../src/integrations/drizzle.js';
import { kyselyTable } from '../../src/integrations/kysely.js';
import { typeormTable } from '../../src/integrations/typeorm.js';
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

  it("TypeORM: a write inside the data source's own transaction that rolls back is refused, nothing published", async () => {
    interface Note {
      id: number;
      title: string;
      version: number;
    }
    const entity = new EntitySchema<Note>({
      name: 'Note',
      tableName: 'notes',
      columns: { id: { type: Number, primary: true }, title: { type: String }, version: { type: Number, version: true } },
    });
    const dataSource = new DataSource({ type: 'better-sqlite3', database: ':memory:', entities: [entity], synchronize: true });
    await dataSource.initialize();
    const notes = await typeormTable<Note>(dataSource, entity, { cache: createMemoryCache({ maxEntries: 10 }), journal: { pollInterval: '1h' }, timeout: '300ms' });
    try {
      await notes.insert({ id: 1, title: 'committed' });
      await assert.rejects(
        dataSource.transaction(async (manager) => {
          await manager.getRepository(entity).update({ id: 1 }, { title: 'uncommitted' });
          await assert.rejects(notes.update(1, { title: 'rolled back' }), /inside a transaction/);
          throw new Error('the application aborts its transaction');
        }),
        /the application aborts/,
      );
      await notes.repository.engine.drainJournal();
      assert.deepEqual(await notes.findById(1), { id: 1, title: 'committed', version: 1 });
      assert.deepEqual(await dataSource.getRepository(entity).findOneBy({ id: 1 }), { id: 1, title: 'committed', version: 1 });
    } finally {
      await notes.close();
      await dataSource.destroy();
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
      const inserted = await table.insert({ id: 1, amount: '1.005' });
      const [fromDb] = await db.select().from(prices).where(eq(prices.id, 1));
      assert.equal(fromDb?.amount, '1.01');
      assert.deepEqual(inserted, fromDb, 'insert resolves with the row as stored');
      assert.deepEqual(await table.findById(1), fromDb, 'after the insert');
      await table.update(1, { amount: '2.999' });
      assert.deepEqual(await table.findById(1), (await db.select().from(prices).where(eq(prices.id, 1)))[0], 'after the update');
    } finally {
      await table.close();
      await pool.end();
      await drop();
    }
  });

  // bigint in mode 'bigint' is refused (the JSON codec has no BigInt: docs/library.md).
  it('Drizzle on PostgreSQL: every type reads back the same from the write, a hit, a fill and the ORM select', { skip: postgres.skip }, async () => {
    const { schema, drop } = await freshSchema();
    const pool = new pg.Pool({ connectionString: DATABASE_URL, max: 4 });
    const things = pgSchema(schema).table('things', {
      id: pgInteger('id').primaryKey(),
      bigNumber: pgBigint('big_number', { mode: 'number' }),
      flag: pgBoolean('flag'),
      day: pgDate('day'),
      at: timestamp('at', { withTimezone: true, precision: 0 }),
      local: timestamp('local', { mode: 'string' }),
      ratio: real('ratio'),
      doc: jsonb('doc'),
      note: pgText('note'),
      version: pgInteger('version').notNull().default(1),
    });
    await admin.query(`CREATE TABLE ${schema}.things (id integer PRIMARY KEY, big_number bigint, flag boolean, day date,
      at timestamptz(0), local timestamp, ratio real, doc jsonb, note text, version integer NOT NULL DEFAULT 1)`);
    const db = drizzlePg(pool);
    const table = await drizzleTable(db, things, { version: things.version, cache: createMemoryCache({ maxEntries: 10 }), journal: false });
    const cold = await drizzleTable(db, things, { version: things.version, cache: createMemoryCache({ maxEntries: 10 }), journal: false });
    try {
      const given = {
        id: 1,
        bigNumber: 42,
        flag: true,
        day: '2024-02-29',
        at: new Date('2024-01-02T03:04:05.678Z'), // timestamptz(0): the database rounds to the second
        local: '2024-01-02 03:04:05.123456',
        ratio: 0.1,
        doc: { b: 1, a: [1, 'x', null], nested: { z: true } },
        note: null,
      };
      const written = await table.insert(given);
      const [selected] = await db.select().from(things).where(eq(things.id, 1));
      assert.equal(selected!.at!.toISOString(), '2024-01-02T03:04:06.000Z');
      assert.deepEqual(written, selected, 'the write');
      assert.deepEqual(await table.findById(1), selected, 'a hit');
      assert.equal((await table.repository.engine.readEntry('1')).source, 'hit');
      assert.deepEqual(await cold.findById(1), selected, 'a fill');
      const updated = await table.update(1, { note: 'x', doc: null });
      const [after] = await db.select().from(things).where(eq(things.id, 1));
      assert.deepEqual(updated, after, 'the update');
      assert.deepEqual(await table.findById(1), after, 'a hit after the update');
    } finally {
      await table.close();
      await cold.close();
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
      assert.equal((await users.save({ id: 1, email: 'Ada@Example.COM' })).email, 'ada@example.com', 'save resolves with the row as stored');
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

describe("PostgreSQL: a `lockstep.writing` mark set by plain SQL", { skip: postgres.skip }, () => {
  const cases = [
    ['a session-level SET left on a pooled connection', (c: pg.PoolClient) => c.query(`SET lockstep.writing = 'on'`)],
    ["Lockstep's own set_config copied into a transaction", (c: pg.PoolClient) => c.query(`SELECT set_config('lockstep.writing', 'on', true)`)],
  ] as const;
  for (const [how, forge] of cases) {
    it(`${how}: the ORM's own UPDATE is still versioned, journaled and invalidated`, async () => {
      const { schema, drop } = await freshSchema();
      const pool = new pg.Pool({ connectionString: DATABASE_URL, max: 4 });
      const s = pgSchema(schema);
      const notes = s.table('notes', { id: pgInteger('id').primaryKey(), title: pgText('title').notNull(), version: pgInteger('version').notNull().default(1) });
      await admin.query(`CREATE TABLE ${schema}.notes (id integer PRIMARY KEY, title text NOT NULL, version integer NOT NULL DEFAULT 1)`);
      const db = drizzlePg(pool);
      const table = await drizzleTable(db, notes, { version: notes.version, cache: createMemoryCache({ maxEntries: 10 }), journal: { pollInterval: '1h' } });
      const plain = await pool.connect();
      try {
        await table.insert({ id: 1, title: 'through Lockstep' });
        await table.update(1, { title: 'through Lockstep' });
        assert.equal((await table.findById(1))?.title, 'through Lockstep');
        const triggered = async () => Number((await admin.query(`SELECT count(*) AS n FROM ${schema}.lockstep_journal WHERE reason = 'trigger'`)).rows[0].n);
        assert.equal(await triggered(), 0, "Lockstep's own writes run no trigger");
        await plain.query('BEGIN');
        await forge(plain);
        await drizzlePg(plain).update(notes).set({ title: 'plain SQL' }).where(eq(notes.id, 1));
        await plain.query('COMMIT');
        const [stored] = await db.select().from(notes).where(eq(notes.id, 1));
        assert.deepEqual(stored, { id: 1, title: 'plain SQL', version: 3 }, 'versioned by the trigger');
        assert.equal(await triggered(), 1, 'journaled by the trigger');
        await table.repository.engine.drainJournal();
        assert.deepEqual(await table.findById(1), stored, 'invalidated by the drainer');
      } finally {
        plain.release(true);
        await table.close();
        await pool.end();
        await drop();
      }
    });
  }
});

describe("the ORM's own writes that bypass Lockstep are versioned by the triggers and invalidated", () => {
  // One body for both dialects: Drizzle's query builders have the same shape on both, not the same types.
  // eslint-disable-next-line @typescript-eslint/no-explicit-any
  type Loose = any;
  const open = async (dialect: 'sqlite' | 'postgres') => {
    if (dialect === 'sqlite') {
      const notes = sqliteTable('notes', { id: integer('id').primaryKey(), title: text('title').notNull(), version: integer('version').notNull().default(1) });
      const sqlite = new Database(':memory:');
      sqlite.exec('CREATE TABLE notes (id INTEGER PRIMARY KEY, title TEXT NOT NULL, version INTEGER NOT NULL DEFAULT 1)');
      const db = drizzleSqlite(sqlite);
      const table = await drizzleTable(db, notes, { version: notes.version, cache: createMemoryCache({ maxEntries: 100 }), journal: { pollInterval: '1h' } });
      return {
        table: table as Loose,
        db: db as Loose,
        notes: notes as Loose,
        raw: async (query: ReturnType<typeof sql>) => void db.run(query),
        /** A transaction that writes, then throws (better-sqlite3's transactions are synchronous). */
        rolledBack: async (write: (tx: Loose) => unknown) =>
          db.transaction((tx) => {
            write(tx);
            throw new Error('abort');
          }),
        select: async (id: number) => db.select().from(notes).where(eq(notes.id, id)).get(),
        async close() {
          await table.close();
          sqlite.close();
        },
      };
    }
    const { schema, drop } = await freshSchema();
    const pool = new pg.Pool({ connectionString: DATABASE_URL, max: 4 });
    const notes = pgSchema(schema).table('notes', { id: pgInteger('id').primaryKey(), title: pgText('title').notNull(), version: pgInteger('version').notNull().default(1) });
    await admin.query(`CREATE TABLE ${schema}.notes (id integer PRIMARY KEY, title text NOT NULL, version integer NOT NULL DEFAULT 1)`);
    const db = drizzlePg(pool);
    const table = await drizzleTable(db, notes, { version: notes.version, cache: createMemoryCache({ maxEntries: 100 }), journal: { pollInterval: '1h' } });
    return {
      table: table as Loose,
      db: db as Loose,
      notes: notes as Loose,
      raw: async (query: ReturnType<typeof sql>) => void (await db.execute(query)),
      rolledBack: (write: (tx: Loose) => unknown) =>
        db.transaction(async (tx) => {
          await write(tx);
          throw new Error('abort');
        }),
      select: async (id: number) => (await db.select().from(notes).where(eq(notes.id, id)))[0],
      async close() {
        await table.close();
        await pool.end();
        await drop();
      },
    };
  };
  for (const dialect of ['sqlite', 'postgres'] as const) {
    it(`${dialect}: a filter update, an upsert, a key rename, delete and re-insert, raw SQL, a rolled-back transaction`, { skip: dialect === 'postgres' && postgres.skip }, async () => {
      const b = await open(dialect);
      const n = b.notes;
      const check = async (ids: number[], step: string) => {
        await b.table.repository.engine.drainJournal();
        for (const id of ids) assert.deepEqual(await b.table.findById(id), await b.select(id), `${step}: row ${id}`);
      };
      try {
        for (const id of [1, 2, 3]) await b.table.insert({ id, title: `t${id}` });
        for (const id of [1, 2, 3]) assert.equal((await b.table.findById(id)).title, `t${id}`); // cached
        await b.db.update(n).set({ title: 'many' }).where(gt(n.id, 1));
        await check([1, 2, 3], 'update by a non-key filter');
        await b.db.insert(n).values({ id: 1, title: 'upserted' }).onConflictDoUpdate({ target: n.id, set: { title: 'upserted' } });
        await check([1], 'upsert');
        await b.db.update(n).set({ id: 4 }).where(eq(n.id, 3));
        await check([3, 4], 'primary key changed');
        await b.db.delete(n).where(eq(n.id, 2));
        await check([2], 'deleted');
        await b.db.insert(n).values({ id: 2, title: 're-created' });
        await check([2], 're-created');
        assert.ok((await b.select(2))!.version > 2, 're-created above its tombstone');
        await b.raw(sql`update ${n} set ${sql.identifier('title')} = ${'raw'} where ${n.id} = ${1}`);
        await check([1], 'raw SQL');
        await assert.rejects(b.rolledBack((tx) => tx.update(n).set({ title: 'rolled back' }).where(eq(n.id, 1)).run?.() ?? tx.update(n).set({ title: 'rolled back' }).where(eq(n.id, 1))), /abort/);
        await check([1], 'a rolled-back transaction');
        assert.equal((await b.table.findById(1)).title, 'raw');
      } finally {
        await b.close();
      }
    });
  }
});

describe('an id column that is not unique (one column of a composite primary key)', () => {
  const harm = 'one delete by id removed the rows of both tenants';
  it('SQLite: the entity store refuses it at start-up', async () => {
    const sqlite = new Database(':memory:');
    sqlite.exec(`CREATE TABLE items (tenant INTEGER NOT NULL, id INTEGER NOT NULL, title TEXT NOT NULL, version INTEGER NOT NULL DEFAULT 1, PRIMARY KEY (tenant, id));
      INSERT INTO items (tenant, id, title) VALUES (1, 1, 'of tenant 1'), (2, 1, 'of tenant 2')`);
    try {
      let entities;
      try {
        entities = createSqliteEntityStore({ database: sqlite, table: 'items' });
      } catch (error) {
        assert.ok(error instanceof InvalidOptionError, String(error));
        assert.match(error.message, /unique/);
        return;
      }
      const items = createRepository({ entities, cache: createMemoryCache({ maxEntries: 10 }), journal: false });
      await items.delete(1);
      assert.equal(sqlite.prepare('SELECT count(*) FROM items').pluck().get(), 1, harm);
    } finally {
      sqlite.close();
    }
  });

  it('PostgreSQL: the entity store refuses it at start-up; a unique index on the column alone is accepted', { skip: postgres.skip }, async () => {
    const { schema, drop } = await freshSchema();
    const pool = new pg.Pool({ connectionString: DATABASE_URL, max: 4 });
    await admin.query(`CREATE TABLE ${schema}.items (tenant integer NOT NULL, id integer NOT NULL, title text NOT NULL, version integer NOT NULL DEFAULT 1, PRIMARY KEY (tenant, id));
      INSERT INTO ${schema}.items (tenant, id, title) VALUES (1, 1, 'of tenant 1'), (2, 1, 'of tenant 2')`);
    try {
      let entities;
      try {
        entities = await createPostgresEntityStore({ pool, schema, table: 'items' });
      } catch (error) {
        assert.ok(error instanceof InvalidOptionError, String(error));
        assert.match(error.message, /unique/);
        await admin.query(`CREATE TABLE ${schema}.keyed (id integer NOT NULL, title text NOT NULL, version integer NOT NULL DEFAULT 1);
          CREATE UNIQUE INDEX keyed_id ON ${schema}.keyed (id)`);
        const accepted = await createPostgresEntityStore({ pool, schema, table: 'keyed' });
        await accepted.close();
        return;
      }
      const items = createRepository({ entities, cache: createMemoryCache({ maxEntries: 10 }), journal: false });
      await items.delete(1);
      await entities.close();
      assert.equal(Number((await admin.query(`SELECT count(*) AS n FROM ${schema}.items`)).rows[0].n), 1, harm);
    } finally {
      await pool.end();
      await drop();
    }
  });
});

describe('an id written in another spelling of the same row (01 for 1, an upper-case uuid)', () => {
  it('SQLite: delete("01") and save({ id: "01" }) are refused, and the row cached under 1 stays the database\'s', async () => {
    const sqlite = new Database(':memory:');
    sqlite.exec('CREATE TABLE items (id INTEGER PRIMARY KEY, title TEXT NOT NULL, version INTEGER NOT NULL DEFAULT 1)');
    const entities = createSqliteEntityStore({ database: sqlite, table: 'items' });
    const items = createRepository<{ id: number | string; title: string; version?: number }>({ entities, cache: createMemoryCache({ maxEntries: 10 }), journal: false });
    const stored = () => sqlite.prepare('SELECT id, title, version FROM items WHERE id = 1').get();
    try {
      await items.save({ id: 1, title: 'one' });
      assert.deepEqual(await items.findById(1), { id: 1, title: 'one', version: 1 });
      await items.save({ id: '01', title: 'aliased' }).catch(() => undefined);
      assert.deepEqual(await items.findById(1), stored() ?? undefined, 'after save of "01"');
      await items.delete('01').catch(() => undefined);
      assert.deepEqual(await items.findById(1), stored() ?? undefined, 'after delete of "01"');
      await assert.rejects(items.delete('1.0'), /spell/);
    } finally {
      await items.close();
      await entities.close();
      sqlite.close();
    }
  });

  it('PostgreSQL: a uuid id in upper case is refused for writes and deletes', { skip: postgres.skip }, async () => {
    const { schema, drop } = await freshSchema();
    const pool = new pg.Pool({ connectionString: DATABASE_URL, max: 4 });
    await admin.query(`CREATE TABLE ${schema}.items (id uuid PRIMARY KEY, title text NOT NULL, version integer NOT NULL DEFAULT 1)`);
    const entities = await createPostgresEntityStore({ pool, schema, table: 'items' });
    const items = createRepository<{ id: string; title: string; version?: number }>({ entities, cache: createMemoryCache({ maxEntries: 10 }), journal: false });
    const id = 'a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11';
    const stored = async () => (await admin.query(`SELECT id, title, version FROM ${schema}.items WHERE id = $1`, [id])).rows[0];
    try {
      await items.save({ id, title: 'one' });
      assert.deepEqual(await items.findById(id), await stored());
      await items.save({ id: id.toUpperCase(), title: 'aliased' }).catch(() => undefined);
      assert.deepEqual(await items.findById(id), await stored(), 'after save of the upper-case id');
      await items.delete(id.toUpperCase()).catch(() => undefined);
      assert.deepEqual(await items.findById(id), await stored(), 'after delete of the upper-case id');
      await assert.rejects(items.delete(id.toUpperCase()), /spell/);
    } finally {
      await items.close();
      await entities.close();
      await pool.end();
      await drop();
    }
  });
});

describe('PostgreSQL: opening an entity store while a transaction holds the table', { skip: postgres.skip }, () => {
  /** Resolves with what `work` resolved with, or 'still waiting' after `ms`. */
  const within = <T>(ms: number, work: Promise<T>) => {
    let timer: NodeJS.Timeout | undefined;
    const late = new Promise<'still waiting'>((resolve) => (timer = setTimeout(() => resolve('still waiting'), ms)));
    return Promise.race([work, late]).finally(() => clearTimeout(timer));
  };
  it("does not queue for the table's lock when its triggers are current, and keeps an earlier release's triggers when the lock is busy", async () => {
    const { schema, drop } = await freshSchema();
    const pool = new pg.Pool({ connectionString: DATABASE_URL, max: 6 });
    await admin.query(`CREATE TABLE ${schema}.items (id integer PRIMARY KEY, title text NOT NULL, version integer NOT NULL DEFAULT 1)`);
    const open = () => createPostgresEntityStore({ pool, schema, table: 'items', statementTimeout: '2s' });
    const blocker = new pg.Client({ connectionString: DATABASE_URL });
    blocker.on('error', () => undefined);
    await blocker.connect();
    const stores: Array<Awaited<ReturnType<typeof open>>> = [];
    try {
      stores.push(await open()); // installs the triggers
      const oids = async () => (await admin.query(`SELECT array_agg(oid ORDER BY tgname) AS o FROM pg_trigger WHERE tgrelid = '${schema}.items'::regclass`)).rows[0].o;
      const installed = await oids();
      stores.push(await open());
      assert.deepEqual(await oids(), installed, 'current triggers are not re-created (that takes the ACCESS EXCLUSIVE lock)');
      await blocker.query('BEGIN');
      await blocker.query(`SELECT * FROM ${schema}.items`); // a reader's open transaction: ACCESS SHARE until it ends
      const second = await within(10_000, open());
      assert.notEqual(second, 'still waiting', 'a second open queued behind the open transaction');
      stores.push(second as Awaited<ReturnType<typeof open>>);

      // An earlier release's triggers (the mark compared with 'on', no digest comment), the table still held.
      const { postgresEntityTriggersSql } = await import('../../src/store/entity/postgres-entity-schema.js');
      const spec = { table: 'items', idColumn: 'id', versionColumn: 'version', entity: 'items' };
      await blocker.query('ROLLBACK');
      await admin.query(postgresEntityTriggersSql(schema, spec).replaceAll('pg_catalog.pg_current_xact_id()::text', "'on'"));
      await blocker.query('BEGIN');
      await blocker.query(`SELECT * FROM ${schema}.items`);
      const third = await within(10_000, open());
      assert.notEqual(third, 'still waiting', 'an open queued behind the open transaction to upgrade the triggers');
      const entities = third as Awaited<ReturnType<typeof open>>;
      stores.push(entities);
      const items = createRepository<{ id: number; title: string; version?: number }>({ entities, cache: createMemoryCache({ maxEntries: 10 }), journal: { pollInterval: '1h' } });
      try {
        await items.save({ id: 1, title: 'through Lockstep' });
        await admin.query(`UPDATE ${schema}.items SET title = 'plain SQL' WHERE id = 1`);
        await items.engine.drainJournal();
        const stored = (await admin.query(`SELECT id, title, version FROM ${schema}.items WHERE id = 1`)).rows[0];
        assert.deepEqual(await items.findById(1), stored, "with an earlier release's triggers");
      } finally {
        await items.close();
      }
      await blocker.query('ROLLBACK');
      stores.push(await open()); // upgrades them now
      const comments = await admin.query(
        `SELECT count(*) AS n FROM pg_trigger WHERE tgrelid = '${schema}.items'::regclass AND obj_description(oid, 'pg_trigger') IS NOT NULL`,
      );
      assert.equal(Number(comments.rows[0].n), 6, 'upgraded once the table was free');
    } finally {
      await blocker.end();
      for (const store of stores) await store.close();
      await pool.end();
      await drop();
    }
  });
});
