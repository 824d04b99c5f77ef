// The inline helper: the application's own table and SQL, run inside Lockstep's protocol.
// Run: node --import tsx examples/inline.ts
import Database from 'better-sqlite3';
import { createMemoryCache, createWriteThrough } from '../src/index.js';
import { createSqliteStore } from '../src/store/sqlite.js';

interface User {
  id: string;
  name: string;
  email: string;
  version: number;
}

// The app's own table, with a version column. Versions come from one counter bumped in the same
// transaction, so per key they only grow, also across delete and re-create.
const db = new Database(process.env.LOCKSTEP_EXAMPLE_DB ?? 'example-inline.db');
const store = createSqliteStore({ database: db }); // Lockstep's own tables (its repair journal) in the same file
db.exec(`
  CREATE TABLE IF NOT EXISTS users (id TEXT PRIMARY KEY, name TEXT NOT NULL, email TEXT NOT NULL, version INTEGER NOT NULL);
  CREATE TABLE IF NOT EXISTS version_counter (id INTEGER PRIMARY KEY CHECK (id = 1), value INTEGER NOT NULL);
  INSERT OR IGNORE INTO version_counter VALUES (1, 0);`);
const nextVersion = db.prepare('UPDATE version_counter SET value = value + 1 WHERE id = 1 RETURNING value').pluck();
const upsert = db.prepare(`INSERT INTO users (id, name, email, version) VALUES (?, ?, ?, ?)
  ON CONFLICT (id) DO UPDATE SET name = excluded.name, email = excluded.email, version = excluded.version RETURNING *`);
const saveUser = db.transaction((id: string, name: string, email: string) => upsert.get(id, name, email, nextVersion.get()) as User);
const deleteUser = db.transaction((id: string) => {
  const version = nextVersion.get() as number; // a delete gets its own, newer version
  db.prepare('DELETE FROM users WHERE id = ?').run(id);
  return { version };
});
const findUser = db.prepare('SELECT * FROM users WHERE id = ?');

const cache = createMemoryCache({ maxEntries: 10_000 });
const lockstep = createWriteThrough({ store, cache, namespace: 'app', ttl: '10m' });

// Write: lease the key, run the step (it commits), publish its value fenced by its version.
const saved = await lockstep.writeThrough('user:42', async () => {
  const row = saveUser('42', 'Ada', 'ada@example.com');
  return { value: row, version: row.version };
});
console.log('written at version', saved.version);

// Read: cache-aside over the app's own loader; a miss fills under a read lease.
let loads = 0;
const loadUser = async () => {
  loads++;
  const row = findUser.get('42') as User | undefined;
  return row && { value: row, version: row.version };
};
console.log('read', await lockstep.readThrough('user:42', loadUser), 'loader calls', loads);

// Delete: the app's DELETE, then a tombstone at the delete's version ("not found" from the cache).
const deleted = await lockstep.deleteThrough('user:42', async () => deleteUser('42'));
console.log('deleted at version', deleted.version, 'then read', await lockstep.readThrough('user:42', loadUser), 'loader calls', loads);

await lockstep.close();
await store.close();
db.close();
