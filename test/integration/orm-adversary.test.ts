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
