// An entity write whose row the table does not keep (an application's BEFORE INSERT trigger that
// drops it: RAISE(IGNORE) on SQLite, RETURN NULL on PostgreSQL). The write reads its row back in its
// own transaction and the cache publishes that; with no row there, it must be refused and nothing
// published (publishing the given values cached a row no commit holds: a phantom served to every
// reader until its TTL).
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import Database from 'better-sqlite3';
import pg from 'pg';
import { createMemoryCache, createWriteThrough } from '../../src/index.js';
import { createPostgresEntityStore } from '../../src/store/entity/postgres-entity-store.js';
import { createSqliteEntityStore } from '../../src/store/entity/sqlite-entity-store.js';
import type { StoreAdapter } from '../../src/types.js';
import { DATABASE_URL, needService } from '../helpers/services.js';

const postgres = await needService('PostgreSQL', DATABASE_URL);

interface Item {
  readonly id: string;
  readonly body: string;
}

/** A write the table drops is refused, and no read serves it; a kept one is served as usual. */
async function droppedRowIsRefused(store: StoreAdapter): Promise<void> {
  const engine = createWriteThrough<Item>({ store, cache: createMemoryCache({ maxEntries: 100 }), namespace: 'items' });
  try {
    await assert.rejects(engine.write('1', { id: '1', body: 'drop' }), (error: Error & { code?: string }) => {
      assert.equal(error.code, 'E_STORE_WRITE', String(error));
      assert.match(error.message, /was not kept by/);
      return true;
    });
    assert.equal(await engine.read('1'), undefined, 'no row: nothing served');
    await engine.write('2', { id: '2', body: 'keep' });
    assert.deepEqual(await engine.read('2'), { id: '2', body: 'keep' });
  } finally {
    await engine.close();
  }
}

describe('an entity row the table does not keep', () => {
  it('SQLite: a BEFORE INSERT trigger that drops it (RAISE(IGNORE)): the write is refused, nothing is cached', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'lockstep-entity-dropped-'));
    const db = new Database(join(dir, 'app.db'));
    try {
      db.exec('CREATE TABLE items (id TEXT PRIMARY KEY, body TEXT NOT NULL, version INTEGER)');
      db.exec("CREATE TRIGGER app_drops BEFORE INSERT ON items WHEN NEW.body = 'drop' BEGIN SELECT RAISE(IGNORE); END");
      const store = createSqliteEntityStore({ database: db, table: 'items', entity: 'items' });
      try {
        await droppedRowIsRefused(store);
      } finally {
        await store.close();
      }
    } finally {
      db.close();
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('PostgreSQL: a BEFORE INSERT trigger that returns NULL: the write is refused, nothing is cached', { skip: postgres.skip }, async () => {
    const schema = `lockstep_entity_dropped_${randomBytes(4).toString('hex')}`;
    const pool = new pg.Pool({ connectionString: DATABASE_URL, max: 4 });
    pool.on('error', () => undefined);
    try {
      await pool.query(`CREATE SCHEMA ${schema}`);
      await pool.query(`CREATE TABLE ${schema}.items (id text COLLATE "C" PRIMARY KEY, body text NOT NULL, version integer)`);
      await pool.query(
        `CREATE FUNCTION ${schema}.app_drops() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN IF NEW.body = 'drop' THEN RETURN NULL; END IF; RETURN NEW; END $$`,
      );
      await pool.query(`CREATE TRIGGER app_drops BEFORE INSERT ON ${schema}.items FOR EACH ROW EXECUTE FUNCTION ${schema}.app_drops()`);
      const store = await createPostgresEntityStore({ pool, schema, table: 'items', entity: 'items', notify: false });
      try {
        await droppedRowIsRefused(store);
      } finally {
        await store.close();
      }
    } finally {
      await pool.query(`DROP SCHEMA IF EXISTS ${schema} CASCADE`).catch(() => undefined);
      await pool.end();
    }
  });
});
