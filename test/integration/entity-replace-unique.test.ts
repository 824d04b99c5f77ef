// SQLite's REPLACE conflict resolution on an entity table with another unique key than the id
// (email TEXT UNIQUE, a NOCASE one, a composite one, the rowid of a table keyed by text): the row of
// a DIFFERENT id that holds the conflicting value is deleted without DELETE triggers (the bypass
// connection does not set recursive_triggers). Whether the REPLACE comes from plain SQL (INSERT OR
// REPLACE, UPDATE OR REPLACE, REPLACE INTO) or from a constraint declared ON CONFLICT REPLACE (then
// Lockstep's own write replaces too), the deleted row must be tombstoned and journaled: after a
// drain no read serves it. INSERT OR IGNORE deletes nothing and must tombstone nothing.
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import Database from 'better-sqlite3';
import { createMemoryCache } from '../../src/cache/memory.js';
import { createWriteThrough, type WriteThrough } from '../../src/compose/write-through.js';
import { createSqliteEntityStore } from '../../src/store/entity/sqlite-entity-store.js';
import { resolveEntitySpec, type EntityStore } from '../../src/store/entity/spec.js';
import { otherUniqueKeys, sqliteEntityTriggersSql } from '../../src/store/sqlite-entity.js';
import { InvalidOptionError } from '../../src/errors.js';
import { until } from '../helpers/until.js';

type Row = Record<string, string | number | null>;
interface Fixture {
  db: Database.Database;
  /** Another connection, as a program that bypasses Lockstep (no recursive_triggers). */
  sql: Database.Database;
  store: EntityStore;
  engine: WriteThrough<Row>;
}

const dir = mkdtempSync(join(tmpdir(), 'lockstep-entity-replace-'));
after(() => rmSync(dir, { recursive: true, force: true }));
let files = 0;

async function withTable(columns: string, run: (f: Fixture) => Promise<void>, indexes = ''): Promise<void> {
  const file = join(dir, `app-${++files}.db`);
  const db = new Database(file);
  db.exec(`CREATE TABLE users (${columns}); ${indexes}`);
  const store = createSqliteEntityStore({ database: db, table: 'users' });
  const engine = createWriteThrough<Row>({ store, cache: createMemoryCache({ maxEntries: 100 }), namespace: 'users', journal: { pollInterval: '1h' }, metrics: false });
  const sql = new Database(file, { timeout: 2_000 });
  try {
    await run({ db, sql, store, engine });
  } finally {
    sql.close();
    await engine.close();
    await store.close();
    db.close();
  }
}

/** Waits (bounded) until, after a drain, each id reads through Lockstep as the table holds it. */
async function assertServedAsStored(f: Fixture, ids: readonly string[]): Promise<void> {
  let stale: string[] = [];
  try {
    await until('reads to follow the table', async () => {
      await f.engine.drainJournal();
      stale = [];
      for (const id of ids) {
        const stored = await f.store.read('users', id);
        const read = await f.engine.read(id);
        const expected = stored === undefined ? undefined : JSON.parse(stored.payload);
        if (JSON.stringify(read) !== JSON.stringify(expected)) stale.push(`${id}: read ${JSON.stringify(read)}, table ${JSON.stringify(expected)}`);
      }
      return stale.length === 0;
    }, 5_000);
  } catch {
    assert.fail(`served after the drain: ${stale.join('; ')}`);
  }
}

const EMAIL = 'id TEXT PRIMARY KEY, email TEXT UNIQUE, name TEXT, version INTEGER';

describe('entity store on SQLite: REPLACE of a row of another id through another unique key', () => {
  it('INSERT OR REPLACE of a new id with a taken email: the row that held it is no longer served', () =>
    withTable(EMAIL, async (f) => {
      await f.engine.write('a', { id: 'a', email: 'x@example.com', name: 'A' });
      assert.equal((await f.engine.read('a'))?.name, 'A');
      f.sql.prepare("INSERT OR REPLACE INTO users (id, email, name) VALUES ('b', 'x@example.com', 'B')").run();
      await assertServedAsStored(f, ['a', 'b']);
      assert.equal(await f.engine.read('a'), undefined);
      assert.ok((await f.engine.read('b')) !== undefined);
    }));

  it('REPLACE INTO of several rows, each replacing another id (and one its own id)', () =>
    withTable(EMAIL, async (f) => {
      for (const id of ['a', 'c', 'd']) await f.engine.write(id, { id, email: `${id}@example.com`, name: id });
      for (const id of ['a', 'c', 'd']) await f.engine.read(id);
      f.sql.exec("REPLACE INTO users (id, email, name) VALUES ('b', 'a@example.com', 'B'), ('e', 'c@example.com', 'E'), ('d', 'd@example.com', 'D2')");
      await assertServedAsStored(f, ['a', 'b', 'c', 'd', 'e']);
      assert.equal(await f.engine.read('a'), undefined);
      assert.equal(await f.engine.read('c'), undefined);
      assert.equal((await f.engine.read('d'))?.name, 'D2');
    }));

  it('whatever order the triggers were made in (the bypass INSERT trigger re-created after the others: its version fix-up runs first)', () =>
    withTable(EMAIL, async (f) => {
      f.db.exec('DROP TRIGGER lockstep_users_bypass_insert');
      const again = createSqliteEntityStore({ database: f.db, table: 'users' }); // re-creates it, the newest
      await again.close();
      await f.engine.write('a', { id: 'a', email: 'x@example.com', name: 'A' });
      await f.engine.read('a');
      f.sql.prepare("INSERT OR REPLACE INTO users (id, email, name) VALUES ('b', 'x@example.com', 'B')").run();
      await assertServedAsStored(f, ['a', 'b']);
      assert.equal(await f.engine.read('a'), undefined);
    }));

  it('UPDATE OR REPLACE that moves a taken email onto another row', () =>
    withTable(EMAIL, async (f) => {
      await f.engine.write('a', { id: 'a', email: 'x@example.com', name: 'A' });
      await f.engine.write('b', { id: 'b', email: 'y@example.com', name: 'B' });
      await f.engine.read('a');
      await f.engine.read('b');
      f.sql.prepare("UPDATE OR REPLACE users SET email = 'x@example.com' WHERE id = 'b'").run();
      await assertServedAsStored(f, ['a', 'b']);
      assert.equal(await f.engine.read('a'), undefined);
    }));

  it('a unique index of its own collation (NOCASE) and a composite one', () =>
    withTable('id TEXT PRIMARY KEY, email TEXT, org TEXT, slug TEXT, version INTEGER', async (f) => {
      f.db.exec('CREATE UNIQUE INDEX users_email ON users (email COLLATE NOCASE); CREATE UNIQUE INDEX users_slug ON users (org, slug)');
      // The index came after the store opened: a store opened now re-derives the triggers.
      const again = createSqliteEntityStore({ database: f.db, table: 'users' });
      await again.close();
      await f.engine.write('a', { id: 'a', email: 'X@Example.com', org: 'o', slug: 's1' });
      await f.engine.write('c', { id: 'c', email: 'c@example.com', org: 'o', slug: 's2' });
      await f.engine.read('a');
      await f.engine.read('c');
      f.sql.exec("INSERT OR REPLACE INTO users (id, email, org, slug) VALUES ('b', 'x@example.com', 'p', 's'), ('d', 'd@example.com', 'o', 's2')");
      await assertServedAsStored(f, ['a', 'b', 'c', 'd']);
      assert.equal(await f.engine.read('a'), undefined);
      assert.equal(await f.engine.read('c'), undefined);
    }));

  it('an explicit rowid that another id holds (a table keyed by text)', () =>
    withTable(EMAIL, async (f) => {
      await f.engine.write('a', { id: 'a', email: 'a@example.com', name: 'A' });
      await f.engine.read('a');
      const { rowid } = f.sql.prepare("SELECT rowid FROM users WHERE id = 'a'").get() as { rowid: number };
      f.sql.prepare("INSERT OR REPLACE INTO users (rowid, id, email, name) VALUES (?, 'b', 'b@example.com', 'B')").run(rowid);
      await assertServedAsStored(f, ['a', 'b']);
      assert.equal(await f.engine.read('a'), undefined);
    }));

  it("UNIQUE … ON CONFLICT REPLACE: a plain INSERT and Lockstep's own write replace the row that held the email", () =>
    withTable('id TEXT PRIMARY KEY, email TEXT UNIQUE ON CONFLICT REPLACE, name TEXT, version INTEGER', async (f) => {
      await f.engine.write('a', { id: 'a', email: 'x@example.com', name: 'A' });
      await f.engine.read('a');
      f.sql.prepare("INSERT INTO users (id, email, name) VALUES ('b', 'x@example.com', 'B')").run();
      await assertServedAsStored(f, ['a', 'b']);
      assert.equal(await f.engine.read('a'), undefined);
      await f.engine.read('b');
      // Lockstep's own insert of a new id, and its own update of an existing one.
      await f.engine.write('c', { id: 'c', email: 'x@example.com', name: 'C' });
      await f.engine.write('d', { id: 'd', email: 'd@example.com', name: 'D' });
      await f.engine.read('d');
      await f.engine.write('c', { id: 'c', email: 'd@example.com', name: 'C2' });
      await assertServedAsStored(f, ['a', 'b', 'c', 'd']);
      assert.equal(await f.engine.read('b'), undefined);
      assert.equal(await f.engine.read('d'), undefined);
      assert.equal((await f.engine.read('c'))?.name, 'C2');
    }));

  it("a REPLACE whose delete sets off a foreign key's SET NULL on another row of the table (its own unique key changes): the replaced row is still buried", () =>
    withTable('id TEXT PRIMARY KEY, slug TEXT UNIQUE ON CONFLICT REPLACE, parent TEXT REFERENCES users(id) ON DELETE SET NULL, pos INT, version INTEGER, UNIQUE (parent, pos)', async (f) => {
      f.db.pragma('foreign_keys = ON');
      f.sql.pragma('foreign_keys = ON');
      await f.engine.write('a', { id: 'a', slug: 'x', parent: null, pos: null });
      await f.engine.write('c', { id: 'c', slug: 'y', parent: 'a', pos: 1 });
      await f.engine.read('a');
      await f.engine.read('c');
      // Lockstep's own write of b takes a's slug: REPLACE deletes a, whose delete sets c.parent to NULL
      // (an UPDATE of c's unique key, whose note triggers run before b's AFTER trigger buries a).
      await f.engine.write('b', { id: 'b', slug: 'x', parent: null, pos: null });
      await assertServedAsStored(f, ['a', 'b', 'c']);
      assert.equal(await f.engine.read('a'), undefined);
      // The same through plain SQL on another connection.
      await f.engine.write('d', { id: 'd', slug: 'z', parent: null, pos: null });
      await f.engine.write('e', { id: 'e', slug: 'w', parent: 'd', pos: 1 });
      await f.engine.read('d');
      f.sql.prepare("INSERT OR REPLACE INTO users (id, slug) VALUES ('g', 'z')").run();
      await assertServedAsStored(f, ['d', 'e', 'g']);
      assert.equal(await f.engine.read('d'), undefined);
    }));

  it("a migration's own copy of the triggers (sqliteEntityTriggersSql) needs the unique keys, and with them buries a REPLACEd row", () =>
    withTable(EMAIL, async (f) => {
      const spec = resolveEntitySpec({ table: 'users' });
      // Called as earlier releases did (no unique keys): refused, not a copy without the REPLACE triggers.
      assert.throws(() => (sqliteEntityTriggersSql as (s: typeof spec) => string)(spec), InvalidOptionError);
      const sql = sqliteEntityTriggersSql(spec, otherUniqueKeys(f.db, 'users', 'id').keys);
      assert.match(sql, /replaced_bury_insert/);
      f.db.exec(sql); // idempotent beside the store's own
      await f.engine.write('a', { id: 'a', email: 'x@example.com', name: 'A' });
      await f.engine.read('a');
      f.sql.prepare("INSERT OR REPLACE INTO users (id, email, name) VALUES ('b', 'x@example.com', 'B')").run();
      await assertServedAsStored(f, ['a', 'b']);
      assert.equal(await f.engine.read('a'), undefined);
    }));

  it('a unique index on an expression, whose REPLACE the triggers cannot see, is named in a warning at open', async () => {
    const warnings: string[] = [];
    const listen = (w: Error) => (w.name === 'LockstepWarning' ? warnings.push(w.message) : undefined);
    process.on('warning', listen);
    try {
      await withTable(EMAIL, async () => {
        await until('the warning', async () => warnings.length > 0, 5_000);
      }, 'CREATE UNIQUE INDEX users_lower_email ON users (lower(email));');
      assert.match(warnings[0]!, /unique indexes on expressions \(users_lower_email\)/);
    } finally {
      process.off('warning', listen);
    }
  });

  it('INSERT OR IGNORE, a failed INSERT and a row only like a partial index entry delete nothing: no tombstone, no journal row, the row is still served', () =>
    withTable(
      EMAIL,
      async (f) => {
        await f.engine.write('a', { id: 'a', email: 'x@example.com', name: 'A' });
        const journaled = () => (f.sql.prepare("SELECT count(*) AS n FROM lockstep_journal WHERE key = 'a'").get() as { n: number }).n;
        const before = journaled();
        f.sql.prepare("INSERT OR IGNORE INTO users (id, email, name) VALUES ('b', 'x@example.com', 'B')").run();
        assert.throws(() => f.sql.prepare("INSERT INTO users (id, email, name) VALUES ('b', 'x@example.com', 'B')").run(), /UNIQUE/);
        f.sql.prepare("INSERT INTO users (id, email, name) VALUES ('c', 'c@example.com', 'C')").run();
        // 'a' holds name 'A' outside the partial index: noted as a candidate, not replaced.
        f.sql.prepare("INSERT OR REPLACE INTO users (id, email, name) VALUES ('e', 'e@example.com', 'A')").run();
        await f.engine.write('d', { id: 'd', email: 'd@example.com', name: 'D' });
        assert.equal(journaled(), before, 'nothing journaled for a');
        assert.equal((f.sql.prepare("SELECT count(*) AS n FROM lockstep_tombstones WHERE key = 'a'").get() as { n: number }).n, 0);
        await assertServedAsStored(f, ['a', 'b', 'c', 'd', 'e']);
        assert.equal((await f.engine.read('a'))?.name, 'A');
        assert.equal((await f.store.read('users', 'a'))?.version, 1);
      },
      "CREATE UNIQUE INDEX users_name ON users (name) WHERE name <> 'A'",
    ));
});
