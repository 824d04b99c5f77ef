// Adversarial checks of the ORM integrations' value mapping: what a write through the integration
// stores must be what the application gave, and what a read through it returns must equal what the
// ORM's own select returns for the row. Binary columns (PostgreSQL bytea, SQLite BLOB), Drizzle's
// `timestamp()` without time zone, Drizzle's `casing` option, and an update that names a new id.
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { after, describe, it } from 'node:test';
import Database from 'better-sqlite3';
import { eq } from 'drizzle-orm';
import { drizzle as drizzleSqlite } from 'drizzle-orm/better-sqlite3';
import { drizzle as drizzlePg } from 'drizzle-orm/node-postgres';
import { customType, integer as pgInteger, pgSchema, text as pgText, timestamp } from 'drizzle-orm/pg-core';
import { integer, sqliteTable, text } from 'drizzle-orm/sqlite-core';
import { Kysely, PostgresDialect, SqliteDialect } from 'kysely';
import { DataSource, EntitySchema } from 'typeorm';
import pg from 'pg';
import { createMemoryCache } from '../../src/cache/memory.js';
import { InvalidValueError } from '../../src/errors.js';
import { drizzleTable } from '../../src/integrations/drizzle.js';
import { kyselyTable } from '../../src/integrations/kysely.js';
import { typeormTable } from '../../src/integrations/typeorm.js';
import { DATABASE_URL, needService } from '../helpers/services.js';

const postgres = await needService('PostgreSQL', DATABASE_URL);
const admin = new pg.Pool({ connectionString: DATABASE_URL, max: 2 });
admin.on('error', () => undefined);
after(() => admin.end());
const freshSchema = async () => {
  const schema = `lockstep_adv_rt_${randomBytes(5).toString('hex')}`;
  await admin.query(`CREATE SCHEMA ${schema}`);
  return { schema, drop: () => admin.query(`DROP SCHEMA ${schema} CASCADE`) };
};
const cache = () => createMemoryCache({ maxEntries: 10 });
const BYTES = Buffer.from([1, 2, 255]);

describe('binary columns on PostgreSQL (bytea): the bytes stored are the bytes given', { skip: postgres.skip }, () => {
  const storedBytes = async (schema: string, table: string) => (await admin.query(`SELECT data FROM ${schema}.${table} WHERE id = 1`)).rows[0]?.data as Buffer;

  it('Drizzle (a bytea customType): insert, then an update of another column', async () => {
    const { schema, drop } = await freshSchema();
    await admin.query(`CREATE TABLE ${schema}.blobs (id integer PRIMARY KEY, data bytea, title text, version integer NOT NULL DEFAULT 1)`);
    const bytea = customType<{ data: Buffer; driverData: Buffer }>({ dataType: () => 'bytea' });
    const blobs = pgSchema(schema).table('blobs', { id: pgInteger('id').primaryKey(), data: bytea('data'), title: pgText('title'), version: pgInteger('version').notNull().default(1) });
    const pool = new pg.Pool({ connectionString: DATABASE_URL, max: 4 });
    const db = drizzlePg(pool);
    const table = await drizzleTable(db, blobs, { version: blobs.version, cache: cache(), journal: false });
    try {
      await table.insert({ id: 1, data: BYTES, title: 'a' });
      assert.deepEqual(await storedBytes(schema, 'blobs'), BYTES, 'the insert stored the bytes given');
      await table.update(1, { title: 'b' });
      assert.deepEqual(await storedBytes(schema, 'blobs'), BYTES, 'an update of another column left the bytes alone');
      const [fromOrm] = await db.select().from(blobs).where(eq(blobs.id, 1));
      assert.deepEqual(await table.findById(1), fromOrm, 'a hit equals the ORM select');
    } finally {
      await table.close();
      await pool.end();
      await drop();
    }
  });

  it('Kysely: insert, then an update of another column', async () => {
    const { schema, drop } = await freshSchema();
    await admin.query(`CREATE TABLE ${schema}.blobs (id integer PRIMARY KEY, data bytea, title text, version integer NOT NULL DEFAULT 1)`);
    const pool = new pg.Pool({ connectionString: DATABASE_URL, max: 4 });
    const db = new Kysely<any>({ dialect: new PostgresDialect({ pool }) });
    const table = await kyselyTable(db, 'blobs', { pool, schema, cache: cache(), journal: false });
    try {
      await table.insert({ id: 1, data: BYTES, title: 'a' });
      assert.deepEqual(await storedBytes(schema, 'blobs'), BYTES, 'the insert stored the bytes given');
      await table.update(1, { title: 'b' });
      assert.deepEqual(await storedBytes(schema, 'blobs'), BYTES, 'an update of another column left the bytes alone');
    } finally {
      await table.close();
      await db.destroy();
      await drop();
    }
  });

  it('TypeORM: insert, then an update of another column; a hit equals findOneBy', async () => {
    const { schema, drop } = await freshSchema();
    interface Blob { id: number; data: Buffer | null; title: string; version: number }
    const BlobEntity = new EntitySchema<Blob>({
      name: 'Blob',
      tableName: 'blobs',
      schema,
      columns: { id: { type: Number, primary: true }, data: { type: 'bytea', nullable: true }, title: { type: String }, version: { type: Number, version: true } },
    });
    await admin.query(`CREATE TABLE ${schema}.blobs (id integer PRIMARY KEY, data bytea, title varchar NOT NULL, version integer NOT NULL DEFAULT 1)`);
    const dataSource = new DataSource({ type: 'postgres', url: DATABASE_URL, entities: [BlobEntity] });
    await dataSource.initialize();
    const table = await typeormTable(dataSource, BlobEntity, { cache: cache(), journal: false });
    try {
      await table.insert({ id: 1, data: BYTES, title: 'a' });
      assert.deepEqual(await storedBytes(schema, 'blobs'), BYTES, 'the insert stored the bytes given');
      await table.update(1, { title: 'b' });
      assert.deepEqual(await storedBytes(schema, 'blobs'), BYTES, 'an update of another column left the bytes alone');
      assert.deepEqual(await table.findById(1), await dataSource.getRepository(BlobEntity).findOneBy({ id: 1 }), 'a hit equals findOneBy');
    } finally {
      await table.close();
      await dataSource.destroy();
      await drop();
    }
  });
});

describe('binary columns on SQLite (BLOB): a row with bytes can be read and updated', () => {
  it('Kysely: a fill returns the Buffer the database holds, and an update of another column keeps the bytes', async () => {
    const database = new Database(':memory:');
    database.exec("CREATE TABLE blobs (id INTEGER PRIMARY KEY, data BLOB, title TEXT, version INTEGER NOT NULL DEFAULT 1); INSERT INTO blobs (id, data, title) VALUES (1, x'0102ff', 'a')");
    const db = new Kysely<any>({ dialect: new SqliteDialect({ database }) });
    const table = await kyselyTable(db, 'blobs', { database, cache: cache(), journal: false });
    try {
      assert.deepEqual(await table.findById(1), await db.selectFrom('blobs').selectAll().where('id', '=', 1).executeTakeFirst(), 'a fill equals the ORM select');
      await table.update(1, { title: 'b' });
      assert.deepEqual(database.prepare('SELECT data, title FROM blobs WHERE id = 1').get(), { data: BYTES, title: 'b' });
    } finally {
      await table.close();
      await db.destroy();
    }
  });

  it('TypeORM: an update of another column keeps the bytes', async () => {
    interface Blob { id: number; data: Buffer | null; title: string; version: number }
    const BlobEntity = new EntitySchema<Blob>({
      name: 'Blob',
      tableName: 'blobs',
      columns: { id: { type: Number, primary: true }, data: { type: 'blob', nullable: true }, title: { type: String }, version: { type: Number, version: true } },
    });
    const dataSource = new DataSource({ type: 'better-sqlite3', database: ':memory:', entities: [BlobEntity], synchronize: true });
    await dataSource.initialize();
    const table = await typeormTable(dataSource, BlobEntity, { cache: cache(), journal: false });
    try {
      await table.insert({ id: 1, data: BYTES, title: 'a' });
      await table.update(1, { title: 'b' });
      const fromOrm = await dataSource.getRepository(BlobEntity).findOneBy({ id: 1 });
      assert.deepEqual(fromOrm?.data, BYTES);
      assert.deepEqual(await table.findById(1), fromOrm, 'a hit equals findOneBy');
    } finally {
      await table.close();
      await dataSource.destroy();
    }
  });
});

describe("Drizzle on PostgreSQL: timestamp() without time zone (mode 'date', the default)", { skip: postgres.skip }, () => {
  it('insert and update succeed, and a hit and a fill equal the ORM select', async () => {
    const { schema, drop } = await freshSchema();
    await admin.query(`CREATE TABLE ${schema}.events (id integer PRIMARY KEY, at timestamp, title text, version integer NOT NULL DEFAULT 1)`);
    const events = pgSchema(schema).table('events', { id: pgInteger('id').primaryKey(), at: timestamp('at'), title: pgText('title'), version: pgInteger('version').notNull().default(1) });
    const pool = new pg.Pool({ connectionString: DATABASE_URL, max: 4 });
    const db = drizzlePg(pool);
    const table = await drizzleTable(db, events, { version: events.version, cache: cache(), journal: false });
    const cold = await drizzleTable(db, events, { version: events.version, cache: cache(), journal: false });
    try {
      const written = await table.insert({ id: 1, at: new Date('2024-01-02T03:04:05.678Z'), title: 'a' });
      const [selected] = await db.select().from(events).where(eq(events.id, 1));
      assert.equal(selected!.at!.toISOString(), '2024-01-02T03:04:05.678Z');
      assert.deepEqual(written, selected, 'the insert resolves with the row as the ORM reads it');
      assert.deepEqual(await table.findById(1), selected, 'a hit');
      assert.deepEqual(await cold.findById(1), selected, 'a fill');
      const updated = await table.update(1, { title: 'b' });
      const [after] = await db.select().from(events).where(eq(events.id, 1));
      assert.equal(after!.at!.toISOString(), '2024-01-02T03:04:05.678Z', 'an update of another column keeps the time');
      assert.deepEqual(updated, after, 'the update');
    } finally {
      await table.close();
      await cold.close();
      await pool.end();
      await drop();
    }
  });
});

describe("Drizzle's casing option (columns named by their keys, renamed by the database's casing)", () => {
  it("SQLite: opening the integration does not break the application's own writes, and its writes reach the columns", async () => {
    const sqlite = new Database(':memory:');
    sqlite.exec('CREATE TABLE cased (id INTEGER PRIMARY KEY, display_name TEXT, row_version INTEGER NOT NULL DEFAULT 1)');
    const cased = sqliteTable('cased', { id: integer().primaryKey(), displayName: text(), rowVersion: integer().notNull().default(1) });
    const db = drizzleSqlite(sqlite, { casing: 'snake_case' });
    const table = await drizzleTable(db, cased, { version: cased.rowVersion, cache: cache(), journal: false }).catch((error: unknown) => error);
    try {
      // The application's own Drizzle write, after the integration was opened on its table.
      db.insert(cased).values({ id: 5, displayName: 'direct' }).run();
      assert.deepEqual(db.select().from(cased).where(eq(cased.id, 5)).get(), { id: 5, displayName: 'direct', rowVersion: 1 });
      assert.ok(!(table instanceof Error), `the integration opens on a cased table: ${String(table)}`);
      const t = table as Awaited<ReturnType<typeof drizzleTable<typeof cased>>>;
      await t.insert({ id: 1, displayName: 'through lockstep' });
      await t.update(1, { displayName: 'updated' });
      assert.deepEqual(sqlite.prepare('SELECT * FROM cased WHERE id = 1').get(), { id: 1, display_name: 'updated', row_version: 2 });
      assert.deepEqual(await t.findById(1), db.select().from(cased).where(eq(cased.id, 1)).get());
    } finally {
      if (!(table instanceof Error)) await (table as { close(): Promise<void> }).close();
    }
  });

  it('PostgreSQL: a write through the integration reaches the cased column', { skip: postgres.skip }, async () => {
    const { schema, drop } = await freshSchema();
    await admin.query(`CREATE TABLE ${schema}.cased (id integer PRIMARY KEY, display_name text, version integer NOT NULL DEFAULT 1)`);
    const cased = pgSchema(schema).table('cased', { id: pgInteger().primaryKey(), displayName: pgText(), version: pgInteger().notNull().default(1) });
    const pool = new pg.Pool({ connectionString: DATABASE_URL, max: 4 });
    const db = drizzlePg(pool, { casing: 'snake_case' });
    const table = await drizzleTable(db, cased, { version: cased.version, cache: cache(), journal: false });
    try {
      await table.insert({ id: 1, displayName: 'through lockstep' });
      await table.update(1, { displayName: 'updated' });
      assert.deepEqual((await admin.query(`SELECT * FROM ${schema}.cased`)).rows, [{ id: 1, display_name: 'updated', version: 2 }]);
      const [fromOrm] = await db.select().from(cased).where(eq(cased.id, 1));
      assert.deepEqual(await table.findById(1), fromOrm);
    } finally {
      await table.close();
      await pool.end();
      await drop();
    }
  });
});

describe('update(id, changes) where the changes name another id', () => {
  it('is refused with InvalidValueError (it used to succeed, ignoring the new id)', async () => {
    const sqlite = new Database(':memory:');
    sqlite.exec('CREATE TABLE notes (id INTEGER PRIMARY KEY, title TEXT, version INTEGER NOT NULL DEFAULT 1)');
    const notes = sqliteTable('notes', { id: integer('id').primaryKey(), title: text('title'), version: integer('version').notNull().default(1) });
    const table = await drizzleTable(drizzleSqlite(sqlite), notes, { version: notes.version, cache: cache(), journal: false });
    try {
      await table.insert({ id: 1, title: 'a' });
      await assert.rejects(table.update(1, { id: 2, title: 'b' }), InvalidValueError);
      assert.deepEqual(sqlite.prepare('SELECT * FROM notes').all(), [{ id: 1, title: 'a', version: 1 }], 'nothing written');
      assert.deepEqual(await table.update(1, { id: 1, title: 'c' }), { id: 1, title: 'c', version: 2 }, 'the same id is accepted');
    } finally {
      await table.close();
    }
  });
});
