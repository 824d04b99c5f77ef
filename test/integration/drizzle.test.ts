// The Drizzle integration on real SQLite (drizzle-orm/better-sqlite3) and PostgreSQL
// (drizzle-orm/node-postgres, a schema per test, dropped after): Drizzle's column types survive the
// cache, inserts apply Drizzle's client-side defaults, updates are whole-row writes guarded by the
// version they read (retried on a concurrent change), and reads by primary key are cache hits.
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import Database from 'better-sqlite3';
import { sql, type Table } from 'drizzle-orm';
import { drizzle as drizzleSqlite } from 'drizzle-orm/better-sqlite3';
import { drizzle as drizzlePg } from 'drizzle-orm/node-postgres';
import { boolean, integer as pgInteger, jsonb, pgSchema, text as pgText, timestamp } from 'drizzle-orm/pg-core';
import { integer, sqliteTable, text } from 'drizzle-orm/sqlite-core';
import pg from 'pg';
import { createMemoryCache } from '../../src/cache/memory.js';
import { ChaosStore } from '../../src/chaos/chaos-store.js';
import { createGate } from '../../src/chaos/faults.js';
import { InvalidOptionError, InvalidValueError, VersionConflictError } from '../../src/errors.js';
import { drizzleTable, type DrizzleTable, type DrizzleTableOptions } from '../../src/integrations/drizzle.js';
import { DATABASE_URL, needService } from '../helpers/services.js';

const dir = mkdtempSync(join(tmpdir(), 'lockstep-drizzle-'));
after(() => rmSync(dir, { recursive: true, force: true }));
let files = 0;

interface Backend {
  /** A value of the stamp column (SQLite: text; PostgreSQL: timestamptz). */
  readonly stamp: unknown;
  /** A notes table behind Lockstep, and a plain Drizzle handle for the same database. */
  open(options?: Partial<DrizzleTableOptions>): Promise<{ notes: DrizzleTable<Table>; another(options?: Partial<DrizzleTableOptions>): Promise<DrizzleTable<Table>>; close(): Promise<void> }>;
}

const sqliteBackend: Backend = {
  stamp: '2024-01-02 03:04:05',
  async open(options = {}) {
    const notes = sqliteTable('notes', {
      id: integer('id').primaryKey(),
      title: text('title').notNull(),
      meta: text('meta', { mode: 'json' }).$type<{ tags: string[] }>(),
      createdAt: integer('created_at', { mode: 'timestamp_ms' }).notNull().$defaultFn(() => new Date(1_700_000_000_123)),
      done: integer('done', { mode: 'boolean' }).notNull().default(false),
      stamp: text('stamp').default(sql`CURRENT_TIMESTAMP`),
      version: integer('version').notNull().default(1),
    });
    const sqlite = new Database(join(dir, `notes-${++files}.db`));
    sqlite.exec(`CREATE TABLE notes (id INTEGER PRIMARY KEY, title TEXT NOT NULL, meta TEXT, created_at INTEGER NOT NULL,
      done INTEGER NOT NULL DEFAULT 0, stamp TEXT DEFAULT CURRENT_TIMESTAMP, version INTEGER NOT NULL DEFAULT 1)`);
    const db = drizzleSqlite(sqlite);
    const tables: Array<DrizzleTable<Table>> = [];
    const cache = createMemoryCache({ maxEntries: 100 }); // one cache in front of the table, as in production
    const make = async (more: Partial<DrizzleTableOptions> = {}) => {
      const t = await drizzleTable(db, notes, { cache, journal: false, version: notes.version, ...options, ...more });
      tables.push(t as unknown as DrizzleTable<Table>);
      return t as unknown as DrizzleTable<Table>;
    };
    return {
      notes: await make(),
      another: make,
      async close() {
        for (const t of tables) await t.close();
        sqlite.close();
      },
    };
  },
};

const postgres = await needService('PostgreSQL', DATABASE_URL);
let schemas = 0;
const postgresBackend: Backend = {
  stamp: new Date('2024-01-02T03:04:05.000Z'),
  async open(options = {}) {
    const schema = `lockstep_drizzle_${process.pid}_${++schemas}`;
    const notes = pgSchema(schema).table('notes', {
      id: pgInteger('id').primaryKey(),
      title: pgText('title').notNull(),
      meta: jsonb('meta').$type<{ tags: string[] }>(),
      createdAt: timestamp('created_at', { withTimezone: true }).notNull().$defaultFn(() => new Date(1_700_000_000_123)),
      done: boolean('done').notNull().default(false),
      stamp: timestamp('stamp', { withTimezone: true }).defaultNow(),
      version: pgInteger('version').notNull().default(1),
    });
    const pool = new pg.Pool({ connectionString: DATABASE_URL, max: 6 });
    pool.on('error', () => undefined);
    await pool.query(`CREATE SCHEMA ${schema}`);
    await pool.query(`CREATE TABLE ${schema}.notes (id int PRIMARY KEY, title text NOT NULL, meta jsonb, created_at timestamptz NOT NULL,
      done boolean NOT NULL DEFAULT false, stamp timestamptz DEFAULT now(), version int NOT NULL DEFAULT 1)`);
    const db = drizzlePg({ client: pool });
    const tables: Array<DrizzleTable<Table>> = [];
    const cache = createMemoryCache({ maxEntries: 100 }); // one cache in front of the table, as in production
    const make = async (more: Partial<DrizzleTableOptions> = {}) => {
      const t = await drizzleTable(db, notes, { cache, journal: false, version: notes.version, ...options, ...more });
      tables.push(t as unknown as DrizzleTable<Table>);
      return t as unknown as DrizzleTable<Table>;
    };
    return {
      notes: await make(),
      another: make,
      async close() {
        for (const t of tables) await t.close();
        await pool.query(`DROP SCHEMA ${schema} CASCADE`);
        await pool.end();
      },
    };
  },
};


for (const [name, backend, skip] of [['SQLite', sqliteBackend, false], ['PostgreSQL', postgresBackend, postgres.skip]] as const) {
  describe(`Drizzle integration on ${name}`, { skip }, () => {
    const { stamp } = backend;
    it("inserts with Drizzle's defaults; a row read from the cache equals the row read from the table", async () => {
      const b = await backend.open();
      try {
        const inserted = await b.notes.insert({ id: 1, title: 'first', meta: { tags: ['a'] }, stamp });
        const expected = { id: 1, title: 'first', meta: { tags: ['a'] }, createdAt: new Date(1_700_000_000_123), done: false, stamp, version: 1 };
        assert.deepEqual(inserted, expected);
        assert.deepEqual(await b.notes.findById(1), expected, 'from the cache');
        const engine = b.notes.repository.engine;
        assert.equal((await engine.readEntry('1')).source, 'hit');
        const cold = await b.another({ cache: createMemoryCache({ maxEntries: 10 }) });
        assert.deepEqual(await cold.findById(1), expected, 'from the table, through the ORM select');
        assert.equal(cold.repository.engine.counters.cacheMisses, 1);
      } finally {
        await b.close();
      }
    });

    it('refuses an insert of an existing id, and one that leaves out a column only the database can default', async () => {
      const b = await backend.open();
      try {
        await b.notes.insert({ id: 1, title: 'x', stamp });
        await assert.rejects(b.notes.insert({ id: 1, title: 'dup', stamp }), VersionConflictError);
        await assert.rejects(b.notes.insert({ id: 2, title: 'no stamp' }), (e: unknown) => e instanceof InvalidValueError && /notes\.stamp/.test(e.message));
        assert.equal(await b.notes.findById(2), undefined);
      } finally {
        await b.close();
      }
    });

    it('updates the given columns (the whole row is published), undefined for a missing row, conflicts on a stale version', async () => {
      const b = await backend.open();
      try {
        await b.notes.insert({ id: 1, title: 'x', meta: { tags: [] }, stamp });
        const updated = await b.notes.update(1, { done: true });
        assert.deepEqual(updated, { id: 1, title: 'x', meta: { tags: [] }, createdAt: new Date(1_700_000_000_123), done: true, stamp, version: 2 });
        assert.deepEqual(await b.notes.findById(1), updated);
        assert.equal(await b.notes.update(9, { title: 'none' }), undefined);
        await assert.rejects(b.notes.update(1, { title: 'stale' }, { expectedVersion: 1 }), VersionConflictError);
        assert.equal(((await b.notes.findById(1)) as { title: string }).title, 'x');
        assert.deepEqual(await b.notes.delete(1), { version: 3, existed: true });
        assert.equal(await b.notes.findById(1), undefined);
        assert.deepEqual((await b.notes.findMany([1, 9])).length, 2);
      } finally {
        await b.close();
      }
    });

    it('an update that meets a concurrent change is retried on the fresh row: neither change is lost', async () => {
      const b = await backend.open();
      let slow: ChaosStore | undefined;
      try {
        await b.notes.insert({ id: 1, title: 'x', stamp });
        const writer = await b.another({ wrapStore: (s) => (slow = new ChaosStore(s)) });
        const gate = createGate();
        slow!.faults.next('write', { kind: 'pause', when: 'before', gate });
        const first = writer.update(1, { title: 'renamed' }); // read v1, held before its write
        await gate.reached;
        await b.notes.update(1, { done: true }); // v2
        gate.release();
        const merged = (await first) as { title: string; done: boolean; version: number };
        assert.deepEqual([merged.title, merged.done, merged.version], ['renamed', true, 3]);
        assert.deepEqual(await b.notes.findById(1), await writer.findById(1));
      } finally {
        await b.close();
      }
    });
  });
}

describe('Drizzle integration options', () => {
  it('refuses a database that is not drizzle-orm/better-sqlite3 or node-postgres, and a version column of another table', async () => {
    const notes = sqliteTable('notes', { id: integer('id').primaryKey(), version: integer('version').notNull() });
    const other = sqliteTable('other', { id: integer('id').primaryKey(), version: integer('version').notNull() });
    const cache = createMemoryCache({ maxEntries: 10 });
    await assert.rejects(drizzleTable({ $client: {} }, notes, { cache, version: notes.version }), InvalidOptionError);
    await assert.rejects(drizzleTable({ $client: {} }, notes, { cache, version: other.version }), /version must be a column of notes/);
  });

  it('a table that was never created is an option error naming it, not a raw SqliteError', async () => {
    const todos = sqliteTable('todos', { id: integer('id').primaryKey(), version: integer('version').notNull() });
    const database = new Database(':memory:');
    try {
      await assert.rejects(drizzleTable(drizzleSqlite(database), todos, { cache: createMemoryCache({ maxEntries: 10 }), version: todos.version }), (error: unknown) => {
        assert.ok(error instanceof InvalidOptionError);
        assert.equal(error.message, 'table "todos" does not exist');
        return true;
      });
    } finally {
      database.close();
    }
  });
});
