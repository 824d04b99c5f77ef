// A Kysely table written through Lockstep, on embedded defaults: a SQLite file and an in-memory
// cache. ESM with top-level await (a "type": "module" project, or a .mts file).
// Run: node --import tsx examples/kysely.ts
import Database from 'better-sqlite3';
import { Kysely, SqliteDialect, type Generated } from 'kysely';
import { createMemoryCache } from '../src/index.js';
import { kyselyTable } from '../src/integrations/kysely.js';

interface DB {
  todos: { id: number; title: string; done: number; version: Generated<number> };
}

const sqlite = new Database(process.env.LOCKSTEP_EXAMPLE_DB ?? 'example.db');
sqlite.exec(`CREATE TABLE IF NOT EXISTS todos (id INTEGER PRIMARY KEY, title TEXT NOT NULL,
  done INTEGER NOT NULL DEFAULT 0, version INTEGER NOT NULL DEFAULT 1)`);
const db = new Kysely<DB>({ dialect: new SqliteDialect({ database: sqlite }) });

// Rows of `todos` by primary key, cached as `todos:<id>` for 10 minutes. Kysely does not expose its
// connection, so give the one its dialect runs on (here `database`; PostgreSQL: `pool`).
const cached = await kyselyTable(db, 'todos', { database: sqlite, cache: createMemoryCache({ maxEntries: 10_000 }), ttl: '10m' });

console.log('inserted', await cached.insert({ id: 1, title: 'write the README', done: 0 }));
console.log('updated', await cached.update(1, { done: 1 }));
console.log('read from', (await cached.repository.engine.readEntry('1')).source);

// A Kysely write that does not go through the integration is seen by the table's triggers.
await db.updateTable('todos').set({ title: 'edited with plain Kysely' }).where('id', '=', 1).execute();
await cached.repository.engine.drainJournal(); // the poller does this every 100 ms
console.log('after a direct updateTable', (await cached.findById(1))?.title);

await cached.delete(1);
console.log('after delete', await cached.findById(1));

await cached.close();
await db.destroy(); // closes the SQLite database too
