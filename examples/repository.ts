// Repository<T> over your own table, on embedded defaults: a SQLite file and an in-memory cache.
// Run: node --import tsx examples/repository.ts
import Database from 'better-sqlite3';
import { createMemoryCache, createRepository, VersionConflictError } from '../src/index.js';
import { addVersionColumn, createSqliteEntityStore } from '../src/store/sqlite-entity.js';

interface User {
  id: number;
  name: string;
  email: string;
  version?: number;
}

const db = new Database(process.env.LOCKSTEP_EXAMPLE_DB ?? 'example.db');
db.exec('CREATE TABLE IF NOT EXISTS users (id INTEGER PRIMARY KEY, name TEXT NOT NULL, email TEXT NOT NULL)');
addVersionColumn(db, 'users'); // migration helper: adds `version` once, a no-op afterwards

// Cache keys are `users:<id>`; values live 10 minutes. The entity store also installs the triggers
// that version and journal plain-SQL writes to `users`.
const users = createRepository<User>({
  entities: createSqliteEntityStore({ database: db, table: 'users' }),
  cache: createMemoryCache({ maxEntries: 10_000 }),
  ttl: '10m',
});

const ada = await users.save({ id: 1, name: 'Ada', email: 'ada@example.com' });
console.log('saved', users.keyOf(1), 'at version', ada.version);
console.log('found', await users.findById(1));

// Optimistic locking with the version column: the second save read a stale version.
const renamed = await users.save({ ...ada, name: 'Ada Lovelace' }, { expectedVersion: ada.version });
try {
  await users.save({ ...ada, name: 'stale' }, { expectedVersion: ada.version });
} catch (error) {
  if (!(error instanceof VersionConflictError)) throw error;
  console.log('conflict: expected', error.expectedVersion, 'but the table has', error.actualVersion);
}

// Someone else writes the table with plain SQL: the trigger versions and journals it, and the
// journal drainer (every 100 ms by default; here at once) invalidates the cached row.
db.prepare("UPDATE users SET email = 'ada@lovelace.org' WHERE id = 1").run();
await users.engine.drainJournal();
const fresh = await users.findById(1);
console.log('after plain SQL', fresh?.email, 'version', fresh?.version, '>', renamed.version);

await users.save({ id: 2, name: 'Grace', email: 'grace@example.com' });
console.log('findMany', (await users.findMany([1, 2, 3])).map((u) => u?.name ?? null));

await users.delete(1);
await users.delete(2);
console.log('after delete', await users.findById(1));

await users.close();
db.close();
