// A Repository (or a Drizzle table) over a real `users` table in SQLite or PostgreSQL, with the
// engine's store and cache wrapped in chaos wrappers and time on a manual clock, as
// engine-fixture.ts does for the key/value store. Each fixture has its own SQLite file or its own
// PostgreSQL schema (dropped on close).
import Database from 'better-sqlite3';
import { drizzle as drizzleSqlite } from 'drizzle-orm/better-sqlite3';
import { drizzle as drizzlePg } from 'drizzle-orm/node-postgres';
import { integer as pgInteger, pgSchema, text as pgText } from 'drizzle-orm/pg-core';
import { integer, sqliteTable, text } from 'drizzle-orm/sqlite-core';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';
import { createMemoryCache } from '../../src/cache/memory.js';
import { ChaosCache } from '../../src/chaos/chaos-cache.js';
import { ChaosStore } from '../../src/chaos/chaos-store.js';
import { createManualClock, type ManualClock } from '../../src/clock.js';
import type { DeleteResult, KeyState, ReadEntry } from '../../src/engine/api.js';
import { drizzleTable } from '../../src/integrations/drizzle.js';
import { createRepository } from '../../src/patterns/repository.js';
import { createPostgresEntityStore } from '../../src/store/entity/postgres-entity-store.js';
import { createSqliteEntityStore } from '../../src/store/entity/sqlite-entity-store.js';
import type { EntityRow, EntityStore } from '../../src/store/entity/spec.js';
import { DATABASE_URL } from './services.js';
import { LEASE_MS } from './engine-fixture.js';
import { type WriteThrough, type WriteThroughOptions } from '../../src/compose/write-through.js';

export { LEASE_MS };
export type Dialect = 'sqlite' | 'postgres';
export type Via = 'repository' | 'drizzle';

export interface User {
  id: number;
  name: string;
  version?: number;
}

/** One writer/reader of users, whichever way it goes through Lockstep. */
export interface UserSubject {
  save(id: number, name: string): Promise<{ version: number }>;
  find(id: number): Promise<User | undefined>;
  findMany(ids: number[]): Promise<Array<User | undefined>>;
  remove(id: number): Promise<DeleteResult>;
  readonly engine: WriteThrough<EntityRow>;
}

export interface EntityFixture {
  readonly subject: UserSubject;
  readonly clock: ManualClock;
  readonly cache: ChaosCache;
  readonly store: ChaosStore;
  readonly entities: EntityStore;
  /** Another subject over the same table, store and cache (another writer or reader). */
  another(): Promise<UserSubject>;
  /** A row written through the entity store alone (the cache does not hear of it). */
  seed(id: number, name: string): Promise<number>;
  state(id: number): Promise<KeyState>;
  readEntry(id: number): Promise<ReadEntry<EntityRow>>;
  /** Plain SQL on another connection, as another service would write. */
  bypass: { update(id: number, name: string): Promise<void>; remove(id: number): Promise<void>; insert(id: number, name: string): Promise<void> };
  /** PostgreSQL: the fixture's schema, which is also the application_name of its connections. */
  readonly schema: string | undefined;
  close(): Promise<void>;
}

export interface EntityFixtureOptions {
  dialect: Dialect;
  via: Via;
  engine?: Partial<WriteThroughOptions>;
}

let fixtures = 0;
const DDL = 'CREATE TABLE users (id integer PRIMARY KEY, name text NOT NULL, version integer NOT NULL DEFAULT 1)';

export async function createEntityFixture(options: EntityFixtureOptions): Promise<EntityFixture> {
  const clock = createManualClock(1_000);
  const cache = new ChaosCache(createMemoryCache({ maxEntries: 1_000, clock }));
  const closers: Array<() => Promise<void> | void> = [];
  const stores: ChaosStore[] = [];
  const engineOptions = (): Omit<WriteThroughOptions, 'store' | 'namespace'> => ({
    cache,
    clock,
    leaseTtl: LEASE_MS,
    journal: { pollInterval: '1h' }, // tests drain explicitly
    ...options.engine,
  });
  const wrap = (entities: EntityStore) => {
    const store = new ChaosStore(entities);
    // Tests drain explicitly: PostgreSQL's NOTIFY must not wake the drainer behind their back
    // (race f asserts the cache still serves the old row until the drain).
    store.pushJournal = false;
    stores.push(store);
    return store;
  };

  let makeSubject: () => Promise<{ subject: UserSubject; entities: EntityStore }>;
  let bypass: EntityFixture['bypass'];
  let pgSchemaName: string | undefined;
  if (options.dialect === 'sqlite') {
    const dir = mkdtempSync(join(tmpdir(), 'lockstep-entity-'));
    const path = join(dir, 'store.db');
    const db = new Database(path);
    db.exec(DDL);
    const raw = new Database(path);
    raw.pragma('busy_timeout = 2000');
    closers.push(
      () => void raw.close(),
      () => void db.close(),
      () => rmSync(dir, { recursive: true, force: true }),
    );
    bypass = {
      update: async (id, name) => void raw.prepare('UPDATE users SET name = ? WHERE id = ?').run(name, id),
      remove: async (id) => void raw.prepare('DELETE FROM users WHERE id = ?').run(id),
      insert: async (id, name) => void raw.prepare('INSERT INTO users (id, name) VALUES (?, ?)').run(id, name),
    };
    if (options.via === 'repository') {
      makeSubject = async () => repositorySubject(createSqliteEntityStore({ database: db, table: 'users' }));
    } else {
      const users = sqliteTable('users', { id: integer('id').primaryKey(), name: text('name').notNull(), version: integer('version').notNull().default(1) });
      const orm = drizzleSqlite(db);
      makeSubject = async () => drizzleSubject(await drizzleTable(orm, users, { ...engineOptions(), version: users.version, wrapStore: wrap }));
    }
  } else {
    const schema = `lockstep_entity_${process.pid}_${++fixtures}`;
    pgSchemaName = schema;
    // Tagged with the schema's name, so that close() can find this fixture's connections.
    const pool = new pg.Pool({ connectionString: DATABASE_URL, max: 6, application_name: schema });
    pool.on('error', () => undefined);
    await pool.query(`CREATE SCHEMA ${schema}`);
    await pool.query(DDL.replace('TABLE users', `TABLE ${schema}.users`));
    closers.push(() => closePostgres(pool, schema));
    bypass = {
      update: async (id, name) => void (await pool.query(`UPDATE ${schema}.users SET name = $1 WHERE id = $2`, [name, id])),
      remove: async (id) => void (await pool.query(`DELETE FROM ${schema}.users WHERE id = $1`, [id])),
      insert: async (id, name) => void (await pool.query(`INSERT INTO ${schema}.users (id, name) VALUES ($1, $2)`, [id, name])),
    };
    if (options.via === 'repository') {
      makeSubject = async () => repositorySubject(await createPostgresEntityStore({ pool, schema, table: 'users' }));
    } else {
      const users = pgSchema(schema).table('users', {
        id: pgInteger('id').primaryKey(),
        name: pgText('name').notNull(),
        version: pgInteger('version').notNull().default(1),
      });
      const orm = drizzlePg({ client: pool });
      makeSubject = async () => drizzleSubject(await drizzleTable(orm, users, { ...engineOptions(), version: users.version, wrapStore: wrap }));
    }
  }

  const subjects: Array<{ close(): Promise<void> }> = [];
  function repositorySubject(entities: EntityStore) {
    const repo = createRepository<User>({ ...engineOptions(), entities, store: wrap(entities) });
    subjects.push({ close: async () => (await repo.close(), await entities.close()) });
    const subject: UserSubject = {
      engine: repo.engine,
      save: async (id, name) => ({ version: (await repo.save({ id, name })).version! }),
      find: (id) => repo.findById(id),
      findMany: (ids) => repo.findMany(ids),
      remove: (id) => repo.delete(id),
    };
    return { subject, entities };
  }
  function drizzleSubject(table: Awaited<ReturnType<typeof drizzleTable>>) {
    subjects.push(table);
    const subject: UserSubject = {
      engine: table.repository.engine,
      // Through the integration's own write paths: update by primary key, or insert when there is no row.
      async save(id, name) {
        const row = (await table.update(id, { name })) ?? (await table.insert({ id, name }));
        return { version: Number((row as { version: number }).version) };
      },
      find: (id) => table.findById(id) as Promise<User | undefined>,
      findMany: (ids) => table.findMany(ids) as Promise<Array<User | undefined>>,
      remove: (id) => table.delete(id),
    };
    return { subject, entities: table.entities };
  }

  const first = await makeSubject();
  let closed = false;
  return {
    subject: first.subject,
    clock,
    cache,
    store: stores[0]!,
    entities: first.entities,
    another: async () => (await makeSubject()).subject,
    seed: async (id, name) =>
      (await first.entities.write('users', String(id), JSON.stringify({ id, name }), { journal: false, deadlineMs: 2_000 })).version,
    state: async (id) => (await first.subject.engine.inspect(String(id))).state,
    readEntry: (id) => first.subject.engine.readEntry(String(id)),
    bypass,
    schema: pgSchemaName,
    async close() {
      if (closed) return;
      closed = true;
      // Writes left hanging by a simulated crash (or by a failed test's closed gate) never settle: do not wait for them.
      await Promise.race([Promise.allSettled(subjects.map((s) => s.close())), delay(100)]);
      for (const close of closers) await close();
    },
  };
}

/**
 * Drops the schema and ends the pool in bounded time, whatever a failed test left behind. A write
 * held at a gate keeps its client checked out, maybe inside a transaction: its locks would block
 * DROP SCHEMA, and pool.end() waits for every client to come back — so a failed PostgreSQL test
 * used to leave the file hanging forever. Its connections are terminated first, on the server.
 */
async function closePostgres(pool: pg.Pool, schema: string): Promise<void> {
  const admin = new pg.Client({ connectionString: DATABASE_URL, statement_timeout: 10_000, connectionTimeoutMillis: 10_000 });
  admin.on('error', () => undefined);
  try {
    await admin.connect();
    await admin.query('SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = $1 AND pid <> pg_backend_pid()', [schema]);
    await admin.query(`DROP SCHEMA IF EXISTS ${schema} CASCADE`);
  } finally {
    await admin.end().catch(() => undefined);
    // The terminated clients are gone on the server; a checked-out one is never returned, so do not wait for it.
    await Promise.race([pool.end().catch(() => undefined), delay(2_000)]);
  }
}

const delay = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));
