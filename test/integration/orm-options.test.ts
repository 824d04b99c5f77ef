// The engine options docs/orm.md tells ORM users to pass must be options the engine reads: the
// integrations spread every other key into the engine's options, and a key it does not know is
// ignored at run time (a JavaScript caller, or TypeScript without an object literal, gets no error).
// `policy: 'strict'`, as the page said, left a write acknowledged while the cache was down.
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { describe, it } from 'node:test';
import Database from 'better-sqlite3';
import { drizzle } from 'drizzle-orm/better-sqlite3';
import { integer, sqliteTable, text } from 'drizzle-orm/sqlite-core';
import { createRedisCache } from '../../src/cache/redis.js';
import { CacheUnavailableError } from '../../src/errors.js';
import { drizzleTable } from '../../src/integrations/drizzle.js';

const root = new URL('../../', import.meta.url);

describe('docs/orm.md: the engine options it names', () => {
  it('are options of the engine (src/options.ts)', () => {
    const page = readFileSync(new URL('docs/orm.md', root), 'utf8');
    const list = /every engine\s+option \(([^)]*)\)/.exec(page);
    assert.ok(list, 'the list of engine options is on the page');
    const named = [...list[1]!.matchAll(/`([A-Za-z]+)`/g)].map((m) => m[1]!);
    assert.ok(named.length >= 3);
    const options = readFileSync(new URL('src/options.ts', root), 'utf8');
    const declared = new Set([...options.matchAll(/^\s+(?:readonly\s+)?([A-Za-z]+)\??:/gm)].map((m) => m[1]!));
    for (const name of named) assert.ok(declared.has(name), `docs/orm.md names the engine option \`${name}\`, which src/options.ts does not declare`);
  });
});

/** A port where nothing answers: a server is bound to find a free port, then closed. */
async function deadPort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as { port: number };
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}

describe("failurePolicy 'strict' through an ORM integration with the cache down", () => {
  it('refuses the insert with E_CACHE_UNAVAILABLE and writes nothing', async () => {
    const sqlite = new Database(':memory:');
    sqlite.exec('CREATE TABLE notes (id INTEGER PRIMARY KEY, title TEXT, version INTEGER NOT NULL DEFAULT 1)');
    const notes = sqliteTable('notes', { id: integer('id').primaryKey(), title: text('title'), version: integer('version').notNull().default(1) });
    const cache = createRedisCache({ url: `redis://127.0.0.1:${await deadPort()}` });
    const table = await drizzleTable(drizzle(sqlite), notes, { version: notes.version, cache, failurePolicy: 'strict', journal: false });
    try {
      await assert.rejects(table.insert({ id: 1, title: 'a' }), CacheUnavailableError);
      assert.deepEqual(sqlite.prepare('SELECT * FROM notes').all(), [], 'nothing written');
    } finally {
      await table.close();
      await cache.close();
    }
  });
});
