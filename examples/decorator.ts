// Decorators: a service whose methods hold the app's own SQL; Lockstep wraps them in the protocol.
// TypeScript 5 standard decorators (no `experimentalDecorators`). Run: node --import tsx examples/decorator.ts
import Database from 'better-sqlite3';
import { cachedRead, createMemoryCache, createWriteThrough, deletesThrough, writesThrough, type InlineLockstep } from '../src/index.js';
import { createSqliteStore } from '../src/store/sqlite.js';

interface User {
  id: string;
  name: string;
  version: number;
}

class UserService {
  reads = 0;

  // The decorators find Lockstep in this public `lockstep` property (or pass `lockstep: (self) => …`).
  constructor(
    readonly lockstep: InlineLockstep,
    private readonly db: Database.Database,
  ) {
    db.exec(`
      CREATE TABLE IF NOT EXISTS users (id TEXT PRIMARY KEY, name TEXT NOT NULL, version INTEGER NOT NULL);
      CREATE TABLE IF NOT EXISTS version_counter (id INTEGER PRIMARY KEY CHECK (id = 1), value INTEGER NOT NULL);
      INSERT OR IGNORE INTO version_counter VALUES (1, 0);`);
  }

  /** One committed transaction; the row's version comes from the same commit. */
  @writesThrough({ key: (id) => `user:${id}`, version: (user) => user.version })
  async rename(id: string, name: string): Promise<User> {
    return this.db.transaction(() =>
      this.db
        .prepare(`INSERT INTO users (id, name, version) VALUES (?, ?, ?)
          ON CONFLICT (id) DO UPDATE SET name = excluded.name, version = excluded.version RETURNING *`)
        .get(id, name, this.nextVersion()),
    )() as User;
  }

  /** The loader of a cache-aside read: runs on a miss only; undefined means "not found". */
  @cachedRead({ key: (id) => `user:${id}`, version: (user) => user.version })
  async find(id: string): Promise<User | undefined> {
    this.reads++;
    return this.db.prepare('SELECT * FROM users WHERE id = ?').get(id) as User | undefined;
  }

  /** A delete gets its own, newer version: the cache keeps a tombstone at it. */
  @deletesThrough({ key: (id) => `user:${id}`, version: (result) => result.version })
  async remove(id: string): Promise<{ version: number }> {
    return this.db.transaction(() => {
      const version = this.nextVersion();
      this.db.prepare('DELETE FROM users WHERE id = ?').run(id);
      return { version };
    })();
  }

  /** Versions from one counter bumped inside the transaction: per key they only grow, across delete and re-create. */
  private nextVersion(): number {
    return this.db.prepare('UPDATE version_counter SET value = value + 1 WHERE id = 1 RETURNING value').pluck().get() as number;
  }
}

const db = new Database(process.env.LOCKSTEP_EXAMPLE_DB ?? 'example-decorator.db');
const store = createSqliteStore({ database: db }); // Lockstep's repair journal, in the same file
const lockstep = createWriteThrough({ store, cache: createMemoryCache({ maxEntries: 10_000 }), namespace: 'app' });
const users = new UserService(lockstep, db);

const ada = await users.rename('7', 'Ada');
console.log('renamed at version', ada.version);
console.log('find', await users.find('7'), 'method ran', users.reads, 'times');
await users.rename('7', 'Ada Lovelace');
console.log('find after rename', (await users.find('7'))?.name, 'method ran', users.reads, 'times');
console.log('find a user never written', await users.find('8'), 'method ran', users.reads, 'times');
const removed = await users.remove('7');
console.log('removed at version', removed.version, 'then find', await users.find('7'), 'method ran', users.reads, 'times');

await lockstep.close();
await store.close();
db.close();
