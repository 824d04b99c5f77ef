// An application's own table, as the inline helper and decorator patterns meet it: `app_users`
// with a version column. Versions come from one sequence row bumped in the same transaction, so
// per key they increase in commit order across delete and re-create (consistency-protocol.md,
// "Versions"). better-sqlite3 is synchronous: each call is one committed transaction.
import type Database from 'better-sqlite3';

export interface UserRow {
  readonly id: string;
  readonly name: string;
  readonly version: number;
}

export interface UserTable {
  save(id: string, name: string): UserRow;
  remove(id: string): { version: number; existed: boolean };
  find(id: string): UserRow | undefined;
}

export function createUserTable(db: Database.Database): UserTable {
  db.exec(`
    CREATE TABLE IF NOT EXISTS app_users (id TEXT PRIMARY KEY, name TEXT NOT NULL, version INTEGER NOT NULL);
    CREATE TABLE IF NOT EXISTS app_version_seq (id INTEGER PRIMARY KEY CHECK (id = 1), value INTEGER NOT NULL);
    INSERT OR IGNORE INTO app_version_seq (id, value) VALUES (1, 0);`);
  const nextVersion = db.prepare('UPDATE app_version_seq SET value = value + 1 WHERE id = 1 RETURNING value').pluck();
  const upsert = db.prepare(
    'INSERT INTO app_users (id, name, version) VALUES (?, ?, ?) ON CONFLICT (id) DO UPDATE SET name = excluded.name, version = excluded.version RETURNING id, name, version',
  );
  const remove = db.prepare('DELETE FROM app_users WHERE id = ?');
  const find = db.prepare('SELECT id, name, version FROM app_users WHERE id = ?');
  return {
    save: db.transaction((id: string, name: string) => upsert.get(id, name, nextVersion.get()) as UserRow),
    remove: db.transaction((id: string) => {
      const version = nextVersion.get() as number;
      return { version, existed: remove.run(id).changes > 0 };
    }),
    find: (id) => find.get(id) as UserRow | undefined,
  };
}
