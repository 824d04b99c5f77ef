// A Drizzle ORM table written through Lockstep, on embedded defaults: a SQLite file and an
// in-memory cache. Run: node --import tsx examples/drizzle.ts
import Database from 'better-sqlite3';
import { eq } from 'drizzle-orm';
import { drizzle } from 'drizzle-orm/better-sqlite3';
import { integer, sqliteTable, text } from 'drizzle-orm/sqlite-core';
import { createMemoryCache } from '../src/index.js';
import { drizzleTable } from '../src/integrations/drizzle.js';

const todos = sqliteTable('todos', {
  id: integer('id').primaryKey(),
  title: text('title').notNull(),
  done: integer('done', { mode: 'boolean' }).notNull().default(false),
  version: integer('version').notNull().default(1), // the optimistic-lock column Lockstep raises
});

const sqlite = new Database(process.env.LOCKSTEP_EXAMPLE_DB ?? 'example.db');
sqlite.exec(`CREATE TABLE IF NOT EXISTS todos (id INTEGER PRIMARY KEY, title TEXT NOT NULL,
  done INTEGER NOT NULL DEFAULT 0, version INTEGER NOT NULL DEFAULT 1)`);
const db = drizzle(sqlite);

// Rows of `todos` by primary key, cached as `todos:<id>` for 10 minutes.
const cached = await drizzleTable(db, todos, { version: todos.version, cache: createMemoryCache({ maxEntries: 10_000 }), ttl: '10m' });

console.log('inserted', await cached.insert({ id: 1, title: 'write the README' }));
console.log('updated', await cached.update(1, { done: true }));
console.log('read from', (await cached.repository.engine.readEntry('1')).source);

// A Drizzle write that does not go through the integration is seen by the table's triggers.
db.update(todos).set({ title: 'edited with plain Drizzle' }).where(eq(todos.id, 1)).run();
await cached.repository.engine.drainJournal(); // the poller does this every 100 ms
console.log('after a direct db.update', (await cached.findById(1))?.title);

await cached.delete(1);
console.log('after delete', await cached.findById(1));

await cached.close();
sqlite.close();
