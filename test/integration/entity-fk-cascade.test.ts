// Foreign-key actions into cached entity tables (SQLite with PRAGMA foreign_keys=ON, PostgreSQL):
// ON DELETE CASCADE / SET NULL / SET DEFAULT, ON UPDATE CASCADE (into a plain column, and into a
// child's id column, which renames the child), and a self-referencing table. The change the action
// makes to the child rows must be versioned and journaled whoever made the parent's change: plain
// SQL, or Lockstep's own write or delete of the parent (whose bypass mark must not cover the rows it
// cascades into: before the mark named the row, every cascaded change of Lockstep's transaction was
// taken for Lockstep's own and the cache kept serving deleted or changed children).
// After each action and a drain, every cached row read through Lockstep equals the table's row.
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import Database from 'better-sqlite3';
import pg from 'pg';
import { createMemoryCache } from '../../src/cache/memory.js';
import { createWriteThrough, type WriteThrough } from '../../src/compose/write-through.js';
import { createPostgresEntityStore } from '../../src/store/entity/postgres-entity-store.js';
import { createSqliteEntityStore } from '../../src/store/entity/sqlite-entity-store.js';
import type { EntityStore } from '../../src/store/entity/spec.js';
import { DATABASE_URL, needService } from '../helpers/services.js';
import { until } from '../helpers/until.js';

const postgres = await needService('PostgreSQL', DATABASE_URL);

type Row = Record<string, string | null>;
const TABLES = {
  parents: 'id TEXT PRIMARY KEY, code TEXT UNIQUE, version INTEGER',
  kids: 'id TEXT PRIMARY KEY, parent TEXT REFERENCES parents(id) ON DELETE CASCADE ON UPDATE CASCADE, version INTEGER',
  wards: 'id TEXT PRIMARY KEY, parent TEXT REFERENCES parents(id) ON DELETE SET NULL ON UPDATE SET NULL, version INTEGER',
  orphans: "id TEXT PRIMARY KEY, parent TEXT DEFAULT 'root' REFERENCES parents(id) ON DELETE SET DEFAULT ON UPDATE SET DEFAULT, version INTEGER",
  tags: 'id TEXT PRIMARY KEY, code TEXT REFERENCES parents(code) ON UPDATE CASCADE ON DELETE CASCADE, version INTEGER',
  pets: 'id TEXT PRIMARY KEY REFERENCES parents(id) ON UPDATE CASCADE ON DELETE CASCADE, version INTEGER',
  nodes: 'id TEXT PRIMARY KEY, up TEXT REFERENCES nodes(id) ON DELETE CASCADE, version INTEGER',
} as const;
type Table = keyof typeof TABLES;

interface Db {
  /** Plain SQL on another connection (foreign keys on). */
  exec(sql: string): Promise<void>;
  open(table: Table): Promise<EntityStore>;
  close(): Promise<void>;
}

interface Fixture {
  sql: Db['exec'];
  engines: Record<Table, WriteThrough<Row>>;
  stores: Record<Table, EntityStore>;
}

async function withTables(db: Db, run: (f: Fixture) => Promise<void>): Promise<void> {
  const stores = {} as Record<Table, EntityStore>;
  const engines = {} as Record<Table, WriteThrough<Row>>;
  try {
    for (const table of Object.keys(TABLES) as Table[]) {
      stores[table] = await db.open(table);
      engines[table] = createWriteThrough<Row>({ store: stores[table], cache: createMemoryCache({ maxEntries: 100 }), namespace: table, journal: { pollInterval: '1h' }, metrics: false });
    }
    await engines.parents.write('root', { id: 'root', code: 'R' });
    await engines.parents.write('p', { id: 'p', code: 'P' });
    await engines.kids.write('k', { id: 'k', parent: 'p' });
    await engines.wards.write('w', { id: 'w', parent: 'p' });
    await engines.orphans.write('o', { id: 'o', parent: 'p' });
    await engines.tags.write('t', { id: 't', code: 'P' });
    await engines.pets.write('p', { id: 'p' });
    await engines.nodes.write('n1', { id: 'n1', up: null });
    await engines.nodes.write('n2', { id: 'n2', up: 'n1' });
    await engines.nodes.write('n3', { id: 'n3', up: 'n2' });
    await run({ sql: db.exec, engines, stores });
  } finally {
    for (const engine of Object.values(engines)) await engine.close();
    for (const store of Object.values(stores)) await store.close();
    await db.close();
  }
}

/** Every id ever written: read through Lockstep (cached first) and compared with the table after a drain. */
const IDS: Record<Table, string[]> = { parents: ['root', 'p', 'q'], kids: ['k'], wards: ['w'], orphans: ['o'], tags: ['t'], pets: ['p', 'q'], nodes: ['n1', 'n2', 'n3'] };

async function cacheEveryRow(f: Fixture): Promise<void> {
  for (const table of Object.keys(IDS) as Table[]) for (const id of IDS[table]) await f.engines[table].read(id);
}

/** Waits (bounded) until every row read through Lockstep after a drain is the table's row; names the ones that are not. */
async function assertCacheFollowsTable(f: Fixture): Promise<void> {
  let stale: string[] = [];
  try {
    await until('cached rows to follow the table', async () => {
      stale = [];
      for (const table of Object.keys(IDS) as Table[]) {
        await f.engines[table].drainJournal();
        for (const id of IDS[table]) {
          const stored = await f.stores[table].read(table, id);
          const read = await f.engines[table].read(id);
          const expected = stored === undefined ? undefined : JSON.parse(stored.payload);
          if (JSON.stringify(read) !== JSON.stringify(expected)) stale.push(`${table}:${id} read ${JSON.stringify(read)}, table ${JSON.stringify(expected)}`);
        }
      }
      return stale.length === 0;
    }, 5_000);
  } catch {
    assert.fail(`stale after the drain: ${stale.join('; ')}`);
  }
}

function cases(open: () => Promise<Db>): void {
  const scenario = (name: string, act: (f: Fixture) => Promise<void>, check?: (f: Fixture) => Promise<void>) =>
    it(name, async () =>
      withTables(await open(), async (f) => {
        await cacheEveryRow(f);
        await act(f);
        await assertCacheFollowsTable(f);
        await check?.(f);
      }),
    );

  scenario("Lockstep's delete of a parent: CASCADE, SET NULL, SET DEFAULT and the pet keyed by it follow", async (f) => {
    await f.engines.parents.delete('p');
  }, async (f) => {
    assert.equal(await f.engines.kids.read('k'), undefined);
    assert.equal(await f.engines.tags.read('t'), undefined);
    assert.equal(await f.engines.pets.read('p'), undefined);
    assert.deepEqual(await f.engines.wards.read('w'), { id: 'w', parent: null });
    assert.deepEqual(await f.engines.orphans.read('o'), { id: 'o', parent: 'root' });
  });

  scenario("Lockstep's write of a parent's referenced column: ON UPDATE CASCADE into the child follows", async (f) => {
    await f.engines.parents.write('p', { id: 'p', code: 'P2' });
  }, async (f) => {
    assert.deepEqual(await f.engines.tags.read('t'), { id: 't', code: 'P2' });
  });

  scenario("Lockstep's delete of a node of a self-referencing table: its descendants follow", async (f) => {
    await f.engines.nodes.delete('n1');
  }, async (f) => {
    assert.equal(await f.engines.nodes.read('n2'), undefined);
    assert.equal(await f.engines.nodes.read('n3'), undefined);
  });

  scenario('plain SQL deletes a parent: CASCADE, SET NULL, SET DEFAULT follow', async (f) => {
    await f.sql("DELETE FROM parents WHERE id = 'p'");
  });

  scenario("plain SQL renames a parent: ON UPDATE CASCADE renames the child keyed by it (old id gone, new id served)", async (f) => {
    await f.sql("UPDATE parents SET id = 'q', code = 'Q' WHERE id = 'p'");
  }, async (f) => {
    assert.equal(await f.engines.pets.read('p'), undefined);
    assert.deepEqual(await f.engines.pets.read('q'), { id: 'q' });
    assert.deepEqual(await f.engines.kids.read('k'), { id: 'k', parent: 'q' });
    assert.deepEqual(await f.engines.tags.read('t'), { id: 't', code: 'Q' });
    assert.ok((await f.stores.pets.read('pets', 'q'))!.version > 1, 'the renamed child is versioned above its old row');
  });
}

describe('entity stores: foreign-key actions into cached tables', () => {
  describe('SQLite (foreign_keys=ON)', () => {
    const dir = mkdtempSync(join(tmpdir(), 'lockstep-entity-fk-'));
    after(() => rmSync(dir, { recursive: true, force: true }));
    let files = 0;
    cases(async () => {
      const file = join(dir, `app-${++files}.db`);
      const db = new Database(file);
      db.pragma('foreign_keys = ON');
      for (const [table, columns] of Object.entries(TABLES)) db.exec(`CREATE TABLE ${table} (${columns})`);
      const other = new Database(file, { timeout: 2_000 });
      other.pragma('foreign_keys = ON');
      return {
        exec: async (sql) => void other.exec(sql),
        open: async (table) => createSqliteEntityStore({ database: db, table }),
        close: async () => {
          other.close();
          db.close();
        },
      };
    });
  });

  describe('PostgreSQL', { skip: postgres.skip }, () => {
    const pool = new pg.Pool({ connectionString: DATABASE_URL, max: 4 });
    pool.on('error', () => undefined);
    after(() => pool.end());
    cases(async () => {
      const schema = `lockstep_entity_fk_${randomBytes(4).toString('hex')}`;
      await pool.query(`CREATE SCHEMA ${schema}`);
      for (const [table, columns] of Object.entries(TABLES)) {
        await pool.query(`SET search_path = ${schema}; CREATE TABLE ${table} (${columns.replaceAll('TEXT', 'text COLLATE "C"')}); RESET search_path`);
      }
      return {
        exec: async (sql) => void (await pool.query(`SET search_path = ${schema}; ${sql}; RESET search_path`)),
        open: async (table) => createPostgresEntityStore({ pool, schema, table, notify: false }),
        close: async () => void (await pool.query(`DROP SCHEMA ${schema} CASCADE`)),
      };
    });
  });
});
