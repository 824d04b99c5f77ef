// ALTER TABLE … RENAME of a cached SQLite table: SQLite moves the table's triggers along, under
// their old names (lockstep_<old name>_…). An entity store then opened on the new name must not add
// a second set beside them: two bypass triggers each fix up a plain INSERT's version, and the later
// one, which reads the row as inserted, set it back below the id's tombstone (a re-created id at or
// below its delete: the order of versions the cache relies on is broken).
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import Database from 'better-sqlite3';
import { createMemoryCache } from '../../src/cache/memory.js';
import { createWriteThrough } from '../../src/compose/write-through.js';
import { createSqliteEntityStore } from '../../src/store/entity/sqlite-entity-store.js';
import { until } from '../helpers/until.js';

const dir = mkdtempSync(join(tmpdir(), 'lockstep-entity-rename-'));
after(() => rmSync(dir, { recursive: true, force: true }));

describe('entity store on SQLite: the cached table renamed', () => {
  it('the store opened on the new name keeps one set of triggers; a plain INSERT of a deleted id lands above its tombstone and is served', async () => {
    const file = join(dir, 'app.db');
    const db = new Database(file);
    const sql = new Database(file, { timeout: 2_000 });
    try {
      db.exec('CREATE TABLE users (id TEXT PRIMARY KEY, name TEXT, version INTEGER)');
      const first = createSqliteEntityStore({ database: db, table: 'users', entity: 'people' });
      const before = createWriteThrough<{ id: string; name: string }>({ store: first, cache: createMemoryCache({ maxEntries: 10 }), namespace: 'people', journal: { pollInterval: '1h' }, metrics: false });
      await before.write('a', { id: 'a', name: 'A' });
      await before.write('a', { id: 'a', name: 'A2' });
      const deleted = await before.delete('a');
      await before.close();
      await first.close();

      db.exec('ALTER TABLE users RENAME TO members');
      const store = createSqliteEntityStore({ database: db, table: 'members', entity: 'people' });
      const engine = createWriteThrough<{ id: string; name: string }>({ store, cache: createMemoryCache({ maxEntries: 10 }), namespace: 'people', journal: { pollInterval: '1h' }, metrics: false });
      try {
        assert.equal(await engine.read('a'), undefined);
        sql.prepare("INSERT INTO members (id, name) VALUES ('a', 'plain SQL')").run();
        const stored = await store.read('people', 'a');
        assert.ok(stored !== undefined && stored.version > deleted.version, `re-created above its tombstone (${String(stored?.version)} > ${deleted.version})`);
        await until('the re-created row to be served', async () => {
          await engine.drainJournal();
          return (await engine.read('a'))?.name === 'plain SQL';
        }, 5_000);
        const triggers = (db.prepare("SELECT name FROM sqlite_master WHERE type = 'trigger' AND tbl_name = 'members' ORDER BY name").all() as Array<{ name: string }>).map((t) => t.name);
        assert.deepEqual(triggers.filter((name) => !name.startsWith('lockstep_members_')), [], 'no trigger of the old name is left beside the new ones');
      } finally {
        await engine.close();
        await store.close();
      }
    } finally {
      sql.close();
      db.close();
    }
  });
});
