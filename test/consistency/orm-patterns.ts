// The ORM integrations (Drizzle, Kysely, TypeORM) as PatternUnderTest (pattern-races.ts): an `items`
// table of their own (text id, name, version) in the run's database, SQLite or PostgreSQL, written
// and read through the integration exactly as an application would (repository.save, findById,
// delete); `seed` is a plain-SQL write on the same database, versioned by the bypass triggers.
import { drizzle as drizzleSqlite } from 'drizzle-orm/better-sqlite3';
import { drizzle as drizzlePg } from 'drizzle-orm/node-postgres';
import { integer as pgInteger, pgSchema, text as pgText } from 'drizzle-orm/pg-core';
import { integer, sqliteTable, text } from 'drizzle-orm/sqlite-core';
import { Kysely, PostgresDialect, SqliteDialect } from 'kysely';
import { DataSource, EntitySchema } from 'typeorm';
import { drizzleTable } from '../../src/integrations/drizzle.js';
import { kyselyTable } from '../../src/integrations/kysely.js';
import { typeormTable } from '../../src/integrations/typeorm.js';
import type { EntityId, Repository } from '../../src/patterns/repository.js';
import type { EngineFixture } from '../helpers/engine-fixture.js';
import { LEASE_MS } from '../helpers/engine-fixture.js';
import type { MakePattern, PatternDatabase, PatternUnderTest } from './pattern-races.js';

interface Item {
  id: string;
  name: string;
  version: number;
}

const DDL = (table: string) => `CREATE TABLE ${table} (id text PRIMARY KEY, name text NOT NULL, version integer NOT NULL DEFAULT 1)`;

async function createItems(db: PatternDatabase): Promise<{ seed(id: string, name: string): Promise<void> }> {
  if (db.dialect === 'sqlite') {
    db.database.exec(DDL('items'));
    const upsert = db.database.prepare('INSERT INTO items (id, name) VALUES (?, ?) ON CONFLICT (id) DO UPDATE SET name = excluded.name');
    return { seed: async (id, name) => void upsert.run(id, name) };
  }
  const table = `${db.schema}.items`;
  await db.pool.query(DDL(table));
  return {
    seed: async (id, name) => void (await db.pool.query(`INSERT INTO ${table} (id, name) VALUES ($1, $2) ON CONFLICT (id) DO UPDATE SET name = excluded.name`, [id, name])),
  };
}

/** The engine options every integration gets: the fixture's cache and clock, its lease, no journal polling. */
const engineOptions = (f: EngineFixture<unknown>) => ({ cache: f.cache, clock: f.clock, leaseTtl: LEASE_MS, journal: false as const }); // no drainer: a bypass seed's NOTIFY would drain at a random moment

function asPattern(
  table: { repository: Repository<Item>; findById(id: EntityId): Promise<Item | undefined>; delete(id: EntityId): Promise<{ version: number }>; close(): Promise<void> },
  seed: (id: string, name: string) => Promise<void>,
  closeMore: () => Promise<void> | void = () => undefined,
): PatternUnderTest {
  return {
    write: async (id, name) => ({ version: (await table.repository.save({ id, name, version: 0 })).version }),
    read: async (id) => (await table.findById(id))?.name,
    delete: (id) => table.delete(id),
    seed,
    cacheKey: (id) => table.repository.keyOf(id),
    async close() {
      await table.close();
      await closeMore();
    },
  };
}

export const drizzlePattern: MakePattern = async (f, db) => {
  const items = await createItems(db);
  if (db.dialect === 'sqlite') {
    const table = sqliteTable('items', { id: text('id').primaryKey(), name: text('name').notNull(), version: integer('version').notNull().default(1) });
    const t = await drizzleTable(drizzleSqlite(db.database), table, { ...engineOptions(f), version: table.version });
    return asPattern(t as never, items.seed);
  }
  const table = pgSchema(db.schema).table('items', { id: pgText('id').primaryKey(), name: pgText('name').notNull(), version: pgInteger('version').notNull().default(1) });
  const t = await drizzleTable(drizzlePg({ client: db.pool }), table, { ...engineOptions(f), version: table.version });
  return asPattern(t as never, items.seed);
};

interface KyselyDb {
  items: Item;
}

export const kyselyPattern: MakePattern = async (f, db) => {
  const items = await createItems(db);
  if (db.dialect === 'sqlite') {
    const kysely = new Kysely<KyselyDb>({ dialect: new SqliteDialect({ database: db.database }) });
    const t = await kyselyTable(kysely, 'items', { ...engineOptions(f), database: db.database });
    return asPattern(t as never, items.seed); // the Kysely instance shares the fixture's connection: not destroyed here
  }
  const kysely = new Kysely<KyselyDb>({ dialect: new PostgresDialect({ pool: db.pool }) });
  const t = await kyselyTable(kysely, 'items', { ...engineOptions(f), pool: db.pool, schema: db.schema });
  return asPattern(t as never, items.seed);
};

const ItemSchema = (schema?: string) =>
  new EntitySchema<Item>({
    name: 'Item',
    tableName: 'items',
    schema,
    columns: { id: { type: String, primary: true }, name: { type: String }, version: { type: Number, version: true } },
  });

export const typeormPattern: MakePattern = async (f, db) => {
  const items = await createItems(db);
  const entity = ItemSchema(db.dialect === 'postgres' ? db.schema : undefined);
  const dataSource =
    db.dialect === 'sqlite'
      ? new DataSource({ type: 'better-sqlite3', database: f.dbPath, entities: [entity] })
      : new DataSource({ type: 'postgres', url: process.env.DATABASE_URL ?? 'postgres://postgres@127.0.0.1:5432/test', schema: db.schema, entities: [entity], poolSize: 4 });
  await dataSource.initialize();
  try {
    const t = await typeormTable(dataSource, entity, engineOptions(f));
    return asPattern(t as never, items.seed, () => dataSource.destroy());
  } catch (error) {
    await dataSource.destroy();
    throw error;
  }
};
