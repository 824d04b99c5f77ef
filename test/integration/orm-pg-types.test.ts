// Adversarial checks of PostgreSQL column types through the Kysely and TypeORM integrations: an
// update through the integration that changes one column must leave every other column as stored,
// and a read through it must equal the ORM's own select, in any process time zone. An update writes
// only the columns it changes (before, it wrote the cached row merged with the changes, so any column
// whose cached form the database reads back differently was changed by an update of another column).
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { after, describe, it } from 'node:test';
import { drizzle } from 'drizzle-orm/node-postgres';
import { integer, jsonb, pgSchema, text } from 'drizzle-orm/pg-core';
import { Kysely, PostgresDialect } from 'kysely';
import { DataSource, EntitySchema } from 'typeorm';
import pg from 'pg';
import { createMemoryCache } from '../../src/cache/memory.js';
import { drizzleTable } from '../../src/integrations/drizzle.js';
import { kyselyTable } from '../../src/integrations/kysely.js';
import { typeormTable } from '../../src/integrations/typeorm.js';
import { DATABASE_URL, needService } from '../helpers/services.js';

const postgres = await needService('PostgreSQL', DATABASE_URL);
const admin = new pg.Pool({ connectionString: DATABASE_URL, max: 2 });
admin.on('error', () => undefined);
after(() => admin.end());
const freshSchema = async () => {
  const schema = `lockstep_adv_pgt_${randomBytes(5).toString('hex')}`;
  await admin.query(`CREATE SCHEMA ${schema}`);
  return { schema, drop: () => admin.query(`DROP SCHEMA ${schema} CASCADE`) };
};
const cache = () => createMemoryCache({ maxEntries: 10 });
/** The column as PostgreSQL prints it. */
const printed = async (schema: string, table: string) => (await admin.query(`SELECT v::text AS v FROM ${schema}.${table} WHERE id = 1`)).rows[0]?.v as string;

/** Runs `body` with the process in another time zone (Node re-reads TZ when it is assigned). */
async function inTimeZone<T>(zone: string, body: () => Promise<T>): Promise<T> {
  const before = process.env.TZ;
  process.env.TZ = zone;
  try {
    return await body();
  } finally {
    if (before === undefined) delete process.env.TZ;
    else process.env.TZ = before;
  }
}

describe('Kysely on PostgreSQL: an update of one column keeps the others', { skip: postgres.skip }, () => {
  const cases: Array<[string, string, string, string, string?]> = [
    // [name, type, literal, printed, time zone]
    ['date in UTC+9', 'date', `'2024-02-29'`, '2024-02-29', 'Asia/Tokyo'],
    ['timestamp in UTC+9', 'timestamp', `'2024-01-02 03:04:05.678'`, '2024-01-02 03:04:05.678', 'Asia/Tokyo'],
    ['interval', 'interval', `'1 day'`, '1 day'],
    ['jsonb holding an array', 'jsonb', `'[1, 2]'`, '[1, 2]'],
    ['point', 'point', `'(1,2)'`, '(1,2)'],
    ['jsonb holding a string', 'jsonb', `'"s"'`, '"s"'],
  ];
  for (const [name, type, literal, expected, zone] of cases) {
    // A jsonb string: pg reads it as a JS string, which Kysely binds as JSON text ('s' is no JSON): written back, it was refused.
    it(`${name}`, async () => {
      const { schema, drop } = await freshSchema();
      await admin.query(`CREATE TABLE ${schema}.t (id integer PRIMARY KEY, v ${type}, title text, version integer NOT NULL DEFAULT 1);
        INSERT INTO ${schema}.t (id, v, title) VALUES (1, ${literal}, 'a')`);
      const pool = new pg.Pool({ connectionString: DATABASE_URL, max: 4 });
      const db = new Kysely<any>({ dialect: new PostgresDialect({ pool }) });
      const table = await kyselyTable(db, 't', { pool, schema, cache: cache(), journal: false });
      try {
        await inTimeZone(zone ?? 'UTC', async () => {
          await table.update(1, { title: 'b' });
          assert.equal(await printed(schema, 't'), expected);
        });
      } finally {
        await table.close();
        await db.destroy();
        await drop();
      }
    });
  }
});

describe('TypeORM on PostgreSQL: an update of one column keeps the others, and a hit equals findOneBy', { skip: postgres.skip }, () => {
  const cases: Array<[string, Record<string, unknown>, unknown, string, string?, string?]> = [
    // [name, column options, value, printed, time zone, todo]
    ['jsonb holding an object', { type: 'jsonb', nullable: true }, { a: 1, b: [1, 'x'] }, '{"a": 1, "b": [1, "x"]}'],
    ['jsonb holding a string', { type: 'jsonb', nullable: true }, 'just a string', '"just a string"'],
    ['json holding an object', { type: 'json', nullable: true }, { z: 1, a: 2 }, '{"z":1,"a":2}'],
    ['date', { type: 'date', nullable: true }, '2024-02-29', '2024-02-29'],
    ['date in UTC+9', { type: 'date', nullable: true }, '2024-02-29', '2024-02-29', 'Asia/Tokyo'],
    ['interval', { type: 'interval', nullable: true }, '1 day', '1 day', undefined, 'a hit is the string PostgreSQL prints, findOneBy a PostgresInterval'],
  ];
  for (const [name, column, value, expected, zone, todo] of cases) {
    it(name, todo === undefined ? {} : { todo }, async () => {
      const { schema, drop } = await freshSchema();
      const entity = new EntitySchema<any>({
        name: 'Typed',
        tableName: 't',
        schema,
        columns: { id: { type: Number, primary: true }, v: column as never, title: { type: String }, version: { type: Number, version: true } },
      });
      const dataSource = new DataSource({ type: 'postgres', url: DATABASE_URL, schema, entities: [entity], synchronize: true, poolSize: 4 });
      await dataSource.initialize();
      const table = await typeormTable(dataSource, entity, { cache: cache(), journal: false });
      const cold = await typeormTable(dataSource, entity, { cache: cache(), journal: false });
      try {
        await inTimeZone(zone ?? 'UTC', async () => {
          const written = await table.insert({ id: 1, v: value, title: 'a' });
          assert.equal(await printed(schema, 't'), expected, 'the insert');
          const fromOrm = await dataSource.getRepository(entity).findOneBy({ id: 1 });
          assert.deepEqual(written, fromOrm, 'insert resolves with the row as findOneBy reads it');
          assert.deepEqual(await table.findById(1), fromOrm, 'a hit');
          assert.deepEqual(await cold.findById(1), fromOrm, 'a fill');
          await table.update(1, { title: 'b' });
          assert.equal(await printed(schema, 't'), expected, 'an update of another column');
          assert.deepEqual(await table.findById(1), await dataSource.getRepository(entity).findOneBy({ id: 1 }), 'a hit after the update');
        });
      } finally {
        await table.close();
        await cold.close();
        await dataSource.destroy();
        await drop();
      }
    });
  }

  it('interval: an update of another column keeps it (its JSON, {"days":1}, read back as one second)', async () => {
    const { schema, drop } = await freshSchema();
    const entity = new EntitySchema<any>({
      name: 'Typed',
      tableName: 't',
      schema,
      columns: { id: { type: Number, primary: true }, v: { type: 'interval', nullable: true }, title: { type: String }, version: { type: Number, version: true } },
    });
    const dataSource = new DataSource({ type: 'postgres', url: DATABASE_URL, schema, entities: [entity], synchronize: true, poolSize: 4 });
    await dataSource.initialize();
    const table = await typeormTable(dataSource, entity, { cache: cache(), journal: false });
    try {
      await table.insert({ id: 1, v: '1 day', title: 'a' });
      await table.update(1, { title: 'b' });
      assert.equal(await printed(schema, 't'), '1 day');
      await admin.query(`UPDATE ${schema}.t SET v = '2 hours 3 minutes' WHERE id = 1`);
      await table.repository.engine.drainJournal();
      await table.update(1, { title: 'c' });
      assert.equal(await printed(schema, 't'), '02:03:00', 'a row filled from the table, then updated');
    } finally {
      await table.close();
      await dataSource.destroy();
      await drop();
    }
  });

  it('a select: false column (a password hash) is not returned by findById, as findOneBy does not return it', { todo: 'the integration selects and caches every column, select: false ones included' }, async () => {
    const { schema, drop } = await freshSchema();
    const entity = new EntitySchema<any>({
      name: 'Account',
      tableName: 'accounts',
      schema,
      columns: { id: { type: Number, primary: true }, passwordHash: { type: String, select: false }, version: { type: Number, version: true } },
    });
    const dataSource = new DataSource({ type: 'postgres', url: DATABASE_URL, schema, entities: [entity], synchronize: true, poolSize: 4 });
    await dataSource.initialize();
    const table = await typeormTable(dataSource, entity, { cache: cache(), journal: false });
    try {
      await table.insert({ id: 1, passwordHash: 'secret-hash' });
      const fromOrm = await dataSource.getRepository(entity).findOneBy({ id: 1 });
      assert.equal(fromOrm?.passwordHash, undefined);
      assert.deepEqual(await table.findById(1), fromOrm);
    } finally {
      await table.close();
      await dataSource.destroy();
      await drop();
    }
  });
});

// pg reads a jsonb 'null' and an SQL NULL alike (null): an update that wrote the whole row back made the JSON null an SQL NULL.
describe("a jsonb column holding JSON null ('null', not SQL NULL): an update of another column keeps it", { skip: postgres.skip }, () => {
  const setUp = async () => {
    const { schema, drop } = await freshSchema();
    await admin.query(`CREATE TABLE ${schema}.t (id integer PRIMARY KEY, v jsonb, title text NOT NULL, version integer NOT NULL DEFAULT 1);
      INSERT INTO ${schema}.t (id, v, title) VALUES (1, 'null', 'a')`);
    const isSqlNull = async () => (await admin.query(`SELECT v IS NULL AS n FROM ${schema}.t WHERE id = 1`)).rows[0]?.n as boolean;
    assert.equal(await isSqlNull(), false);
    return { schema, drop, isSqlNull };
  };

  it('Drizzle', async () => {
    const { schema, drop, isSqlNull } = await setUp();
    const pool = new pg.Pool({ connectionString: DATABASE_URL, max: 4 });
    const t = pgSchema(schema).table('t', { id: integer('id').primaryKey(), v: jsonb('v'), title: text('title').notNull(), version: integer('version').notNull() });
    const table = await drizzleTable(drizzle(pool), t, { version: t.version, cache: cache(), journal: false });
    try {
      await table.update(1, { title: 'b' });
      assert.equal(await isSqlNull(), false, 'the JSON null is still a JSON null');
    } finally {
      await table.close();
      await pool.end();
      await drop();
    }
  });

  it('Kysely', async () => {
    const { schema, drop, isSqlNull } = await setUp();
    const pool = new pg.Pool({ connectionString: DATABASE_URL, max: 4 });
    const db = new Kysely<any>({ dialect: new PostgresDialect({ pool }) });
    const table = await kyselyTable(db, 't', { pool, schema, cache: cache(), journal: false });
    try {
      await table.update(1, { title: 'b' });
      assert.equal(await isSqlNull(), false, 'the JSON null is still a JSON null');
    } finally {
      await table.close();
      await db.destroy();
      await drop();
    }
  });

  it('TypeORM', async () => {
    const { schema, drop, isSqlNull } = await setUp();
    const entity = new EntitySchema<any>({
      name: 'T',
      tableName: 't',
      schema,
      columns: { id: { type: Number, primary: true }, v: { type: 'jsonb', nullable: true }, title: { type: String }, version: { type: Number, version: true } },
    });
    const dataSource = new DataSource({ type: 'postgres', url: DATABASE_URL, entities: [entity], poolSize: 4 });
    await dataSource.initialize();
    const table = await typeormTable(dataSource, entity, { cache: cache(), journal: false });
    try {
      await table.update(1, { title: 'b' });
      assert.equal(await isSqlNull(), false, 'the JSON null is still a JSON null');
    } finally {
      await table.close();
      await dataSource.destroy();
      await drop();
    }
  });
});
