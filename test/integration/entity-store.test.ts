// The store-adapter conformance suite run against the entity stores (SQLite and PostgreSQL). An
// entity store serves one table, one namespace, and rows rather than opaque payloads; so that every
// row of the suite applies, a small router gives each namespace the suite uses its own table
// (id text primary key, body text, version integer), with the bypass triggers installed, and carries
// the suite's payload in `body`. Versions, tombstones, journal rows, scans, concurrency and plain-SQL
// writes are therefore all the entity store's own.
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { randomBytes } from 'node:crypto';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe } from 'node:test';
import Database from 'better-sqlite3';
import pg from 'pg';
import { createPostgresEntityStore } from '../../src/store/entity/postgres-entity-store.js';
import { createSqliteEntityStore } from '../../src/store/entity/sqlite-entity-store.js';
import type { EntityStore } from '../../src/store/entity/spec.js';
import type { StoreAdapter } from '../../src/types.js';
import { runStoreAdapterSuite, type BypassSql } from '../conformance/store-adapter.suite.js';
import { DATABASE_URL, needService } from '../helpers/services.js';

const tableOf = (namespace: string) => `t_${namespace.replace(/[^A-Za-z0-9_]/g, '_')}`;

/** One StoreAdapter over one entity store per namespace, created on first use; the journal is shared by all. */
function router(open: (namespace: string) => Promise<EntityStore>, home: EntityStore): StoreAdapter & { ensure(ns: string): Promise<EntityStore> } {
  const stores = new Map<string, Promise<EntityStore>>([['ns', Promise.resolve(home)]]);
  const ensure = (namespace: string) => {
    let store = stores.get(namespace);
    if (store === undefined) stores.set(namespace, (store = open(namespace)));
    return store;
  };
  const body = (payload: string | undefined) => (payload === undefined ? undefined : (JSON.parse(payload) as { body: string }).body);
  return {
    name: `router(${home.name})`,
    ensure,
    async read(namespace, key) {
      const found = await (await ensure(namespace)).read(namespace, key);
      return found && { version: found.version, payload: body(found.payload)! };
    },
    write: async (namespace, key, payload, options) => (await ensure(namespace)).write(namespace, key, JSON.stringify({ id: key, body: payload }), options),
    delete: async (namespace, key, options) => (await ensure(namespace)).delete(namespace, key, options),
    async scan(namespace, afterKey, limit) {
      const rows = await (await ensure(namespace)).scan(namespace, afterKey, limit);
      return rows.map((row) => ({ ...row, payload: body(row.payload)! }));
    },
    appendJournal: (...args) => home.appendJournal(...args),
    readJournal: (...args) => home.readJournal(...args),
    journalHead: () => home.journalHead(),
    pruneJournal: (before) => home.pruneJournal(before),
    journalId: () => home.journalId(),
    ping: () => home.ping(),
    async close() {
      for (const store of stores.values()) await (await store).close();
    },
  };
}

const dir = mkdtempSync(join(tmpdir(), 'lockstep-entity-conformance-'));
after(() => rmSync(dir, { recursive: true, force: true }));
let files = 0;

runStoreAdapterSuite('sqlite entity store', async () => {
  const db = new Database(join(dir, `store-${++files}.db`));
  const other = new Database(db.name, { timeout: 2_000 });
  const open = async (namespace: string) => {
    db.exec(`CREATE TABLE IF NOT EXISTS "${tableOf(namespace)}" (id TEXT PRIMARY KEY, body TEXT NOT NULL, version INTEGER)`);
    return createSqliteEntityStore({ database: db, table: tableOf(namespace), entity: namespace });
  };
  const store = router(open, await open('ns'));
  const bypass: BypassSql = {
    async upsert(namespace, key, jsonText) {
      await store.ensure(namespace);
      other.prepare(`INSERT INTO "${tableOf(namespace)}" (id, body) VALUES (?, ?) ON CONFLICT (id) DO UPDATE SET body = excluded.body`).run(key, jsonText);
    },
    async update(namespace, key, jsonText) {
      assert.equal(other.prepare(`UPDATE "${tableOf(namespace)}" SET body = ? WHERE id = ?`).run(jsonText, key).changes, 1, 'bypass update of an existing row');
    },
    async remove(namespace, key) {
      other.prepare(`DELETE FROM "${tableOf(namespace)}" WHERE id = ?`).run(key);
    },
  };
  return {
    store,
    bypass,
    async close() {
      await store.close();
      other.close();
      db.close();
    },
  };
});

const postgres = await needService('PostgreSQL', DATABASE_URL);
describe('postgres entity store', { skip: postgres.skip }, () => {
  runStoreAdapterSuite('postgres entity store', async () => {
    const schema = `lockstep_entity_conf_${randomBytes(5).toString('hex')}`;
    const pool = new pg.Pool({ connectionString: DATABASE_URL, max: 8 });
    pool.on('error', () => undefined);
    await pool.query(`CREATE SCHEMA ${schema}`);
    const open = async (namespace: string) => {
      await pool.query(`CREATE TABLE IF NOT EXISTS ${schema}.${tableOf(namespace)} (id text COLLATE "C" PRIMARY KEY, body text NOT NULL, version integer)`);
      return createPostgresEntityStore({ pool, schema, table: tableOf(namespace), entity: namespace, notify: false });
    };
    const store = router(open, await open('ns'));
    const t = (namespace: string) => `${schema}.${tableOf(namespace)}`;
    const bypass: BypassSql = {
      async upsert(namespace, key, jsonText) {
        await store.ensure(namespace);
        await pool.query(`INSERT INTO ${t(namespace)} (id, body) VALUES ($1, $2) ON CONFLICT (id) DO UPDATE SET body = excluded.body`, [key, jsonText]);
      },
      async update(namespace, key, jsonText) {
        const { rowCount } = await pool.query(`UPDATE ${t(namespace)} SET body = $2 WHERE id = $1`, [key, jsonText]);
        assert.equal(rowCount, 1, 'bypass update of an existing row');
      },
      async remove(namespace, key) {
        await pool.query(`DELETE FROM ${t(namespace)} WHERE id = $1`, [key]);
      },
    };
    return {
      store,
      bypass,
      async close() {
        await store.close();
        await pool.query(`DROP SCHEMA ${schema} CASCADE`);
        await pool.end();
      },
    };
  });
});
