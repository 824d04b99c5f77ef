// The SQLite store against real database files: the shared conformance suite, then what is SQLite's
// own (pragmas, reopen, an existing connection, SQLITE_BUSY, plain-SQL edge cases, other processes).
import assert from 'node:assert/strict';
import { execFile, spawnSync } from 'node:child_process';
import { mkdtempSync, openSync, readSync, closeSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { pathToFileURL } from 'node:url';
import { promisify } from 'node:util';
import Database from 'better-sqlite3';
import { ClosedError, InvalidOptionError } from '../../src/errors.js';
import { createSqliteStore, type SqliteStore, type SqliteStoreOptions } from '../../src/store/sqlite.js';
import type { JournalEntry, StoreWriteOptions } from '../../src/types.js';
import { runStoreAdapterSuite, type BypassSql } from '../conformance/store-adapter.suite.js';

const PLAIN: StoreWriteOptions = { journal: false, deadlineMs: 10_000 };
const dir = mkdtempSync(join(tmpdir(), 'lockstep-sqlite-'));
after(() => rmSync(dir, { recursive: true, force: true }));
let files = 0;
const freshPath = () => join(dir, `store-${++files}.sqlite`);

/** A second connection that writes with plain SQL, as another service would. */
function bypassOn(db: Database.Database): BypassSql {
  const upsert = db.prepare(
    'INSERT INTO lockstep_kv (namespace, key, value) VALUES (?, ?, ?) ON CONFLICT (namespace, key) DO UPDATE SET value = excluded.value',
  );
  const update = db.prepare('UPDATE lockstep_kv SET value = ? WHERE namespace = ? AND key = ?');
  const remove = db.prepare('DELETE FROM lockstep_kv WHERE namespace = ? AND key = ?');
  return {
    async upsert(namespace, key, jsonText) {
      upsert.run(namespace, key, jsonText);
    },
    async update(namespace, key, jsonText) {
      assert.equal(update.run(jsonText, namespace, key).changes, 1, 'bypass update of an existing row');
    },
    async remove(namespace, key) {
      remove.run(namespace, key);
    },
  };
}

runStoreAdapterSuite('sqlite', async () => {
  const path = freshPath();
  const store = createSqliteStore({ path });
  const other = new Database(path, { timeout: 2_000 });
  return {
    store,
    bypass: bypassOn(other),
    async close() {
      other.close();
      await store.close();
    },
  };
});

/** Opens a store on a fresh file and a second connection to it; closes both afterwards. */
async function withFile(
  run: (store: SqliteStore, other: Database.Database, path: string) => Promise<void>,
  options: Omit<SqliteStoreOptions, 'path' | 'database'> = {},
): Promise<void> {
  const path = freshPath();
  const store = createSqliteStore({ path, ...options });
  const other = new Database(path, { timeout: 2_000 });
  try {
    await run(store, other, path);
  } finally {
    other.close();
    await store.close();
  }
}

const journal = (db: Database.Database, afterId = 0) =>
  db.prepare('SELECT id, namespace, key, version, reason FROM lockstep_journal WHERE id > ? ORDER BY id').all(afterId) as JournalEntry[];
const versionOf = (db: Database.Database, key: string) =>
  db.prepare("SELECT version FROM lockstep_kv WHERE namespace = 'ns' AND key = ?").pluck().get(key) as number | undefined;
const tombstones = (db: Database.Database) =>
  db.prepare('SELECT namespace, key, version FROM lockstep_tombstones ORDER BY namespace, key').all() as Array<{ namespace: string; key: string; version: number }>;
const tombstoneOf = (db: Database.Database, key: string) =>
  db.prepare("SELECT version FROM lockstep_tombstones WHERE namespace = 'ns' AND key = ?").pluck().get(key) as number | undefined;

/**
 * The pages the next commits write, read from the WAL file itself (no trigger, no SQLite counter):
 * checkpoints and truncates the WAL, runs `commit`, then lists the page number of every WAL frame.
 */
async function pagesWrittenBy(db: Database.Database, path: string, commit: () => unknown): Promise<number[]> {
  const [checkpoint] = db.pragma('wal_checkpoint(TRUNCATE)') as Array<{ busy: number }>;
  assert.equal(checkpoint?.busy, 0, 'the WAL could be checkpointed and truncated');
  assert.equal(statSync(`${path}-wal`).size, 0);
  await commit();
  const pageSize = db.pragma('page_size', { simple: true }) as number;
  const size = statSync(`${path}-wal`).size;
  const frames = (size - 32) / (24 + pageSize);
  assert.ok(Number.isInteger(frames), `the WAL holds whole frames (${size} bytes)`);
  const fd = openSync(`${path}-wal`, 'r');
  try {
    const header = Buffer.alloc(4);
    return Array.from({ length: frames }, (_, i) => {
      readSync(fd, header, 0, 4, 32 + i * (24 + pageSize));
      return header.readUInt32BE(0);
    });
  } finally {
    closeSync(fd);
  }
}
const rootPage = (db: Database.Database, table: string) =>
  db.prepare("SELECT rootpage FROM sqlite_master WHERE type = 'table' AND name = ?").pluck().get(table) as number;

describe('sqlite store', () => {
  describe('options and pragmas', () => {
    it('opens in WAL mode with synchronous=FULL and a 2 s busy timeout by default', () =>
      withFile(async (store) => {
        assert.equal(store.name, 'sqlite');
        assert.equal(store.database.pragma('journal_mode', { simple: true }), 'wal');
        assert.equal(store.database.pragma('synchronous', { simple: true }), 2);
        assert.equal(store.database.pragma('busy_timeout', { simple: true }), 2_000);
        assert.equal(store.busyTimeoutMs, 2_000);
      }));

    it('honours synchronous and busyTimeout', async () => {
      await withFile(async (store) => {
        assert.equal(store.database.pragma('synchronous', { simple: true }), 1);
        assert.equal(store.database.pragma('busy_timeout', { simple: true }), 250);
      }, { synchronous: 'NORMAL', busyTimeout: '250ms' });
      await withFile(async (store) => {
        assert.equal(store.database.pragma('synchronous', { simple: true }), 0);
        assert.equal(store.busyTimeoutMs, 0);
      }, { synchronous: 'OFF', busyTimeout: 0 });
    });

    it('rejects invalid options with InvalidOptionError', () => {
      const closed = new Database(':memory:');
      closed.close();
      const readonlyPath = freshPath();
      new Database(readonlyPath).close();
      const readonly = new Database(readonlyPath, { readonly: true });
      const cases: Array<[unknown, RegExp]> = [
        [undefined, /must be an object/],
        [{}, /exactly one of `path`/],
        [{ path: freshPath(), database: new Database(':memory:') }, /exactly one of `path`/],
        [{ path: '' }, /path must be a non-empty/],
        [{ path: 42 }, /path must be a non-empty/],
        [{ path: freshPath(), synchronous: 'EXTRA' }, /synchronous must be one of FULL, NORMAL, OFF/],
        [{ path: freshPath(), busyTimeout: 'soon' }, /busyTimeout must be/],
        [{ path: freshPath(), busyTimeout: -1 }, /busyTimeout must be/],
        [{ database: { prepare: 1 } }, /better-sqlite3 Database/],
        [{ database: closed }, /must be open/],
        [{ database: readonly }, /must be writable/],
      ];
      try {
        for (const [options, message] of cases) {
          assert.throws(
            () => createSqliteStore(options as SqliteStoreOptions),
            (error: unknown) => error instanceof InvalidOptionError && error.code === 'E_INVALID_OPTION' && message.test(error.message),
            `${JSON.stringify(options)} must be rejected with ${message}`,
          );
        }
      } finally {
        readonly.close();
      }
    });
  });

  describe('schema and reopen', () => {
    it('creates the schema once and keeps data and versions across reopen', async () => {
      const path = freshPath();
      const first = createSqliteStore({ path });
      const a = await first.write('ns', 'a', '"a"', PLAIN);
      const d = await first.delete('ns', 'b', PLAIN);
      await first.close();

      const second = createSqliteStore({ path });
      const third = createSqliteStore({ path });
      try {
        assert.deepEqual(await second.read('ns', 'a'), { version: a.version, payload: '"a"' });
        const next = await third.write('ns', 'b', '"b"', PLAIN);
        assert.ok(next.version > d.version, 'the tombstone survives reopen');
        const objects = second.database
          .prepare("SELECT type, name FROM sqlite_master WHERE name LIKE 'lockstep%' ORDER BY type, name")
          .all();
        assert.deepEqual(objects, [
          { type: 'index', name: 'lockstep_journal_created_at' },
          { type: 'table', name: 'lockstep_journal' },
          { type: 'table', name: 'lockstep_kv' },
          { type: 'table', name: 'lockstep_meta' },
          { type: 'table', name: 'lockstep_tombstones' },
          { type: 'trigger', name: 'lockstep_kv_bypass_delete' },
          { type: 'trigger', name: 'lockstep_kv_bypass_insert' },
          { type: 'trigger', name: 'lockstep_kv_bypass_rename' },
          { type: 'trigger', name: 'lockstep_kv_bypass_replace' },
          { type: 'trigger', name: 'lockstep_kv_bypass_update' },
        ]);
        assert.deepEqual(tombstones(second.database), [], 're-creating b removed its tombstone');
        assert.equal(versionOf(second.database, 'b'), next.version);
      } finally {
        await second.close();
        await third.close();
      }
    });

    it('accepts an existing connection, sets it up, and leaves it open on close()', async () => {
      const db = new Database(freshPath());
      db.defaultSafeIntegers(true);
      const store = createSqliteStore({ database: db, synchronous: 'NORMAL' });
      try {
        assert.equal(store.database, db);
        assert.equal(db.pragma('journal_mode', { simple: true }), 'wal');
        assert.equal(db.pragma('synchronous', { simple: true }), 1n);
        const { version } = await store.write('ns', 'k', '1', PLAIN);
        assert.equal(typeof version, 'number', 'numbers even with defaultSafeIntegers');
        assert.deepEqual(await store.read('ns', 'k'), { version, payload: '1' });
        assert.equal(await store.journalHead(), 0);
        await store.close();
        assert.equal(db.open, true, 'close() must not close a connection it did not open');
        assert.equal(db.prepare('SELECT value FROM lockstep_kv').pluck().get(), '1');
        await assert.rejects(Promise.resolve(store.read('ns', 'k')), ClosedError); // rejected, not thrown
        await assert.rejects(Promise.resolve(store.write('ns', 'k', '2', PLAIN)), ClosedError); // rejected, not thrown
      } finally {
        db.close();
      }
    });

    it('closes the connection it opened itself', async () => {
      const store = createSqliteStore({ path: freshPath() });
      await store.close();
      assert.equal(store.database.open, false);
      await store.close();
      await assert.rejects(store.ping(), ClosedError);
    });

    it('refuses a file created by the earlier schema (one global sequence) with a clear error, and changes nothing', () => {
      const legacy = [
        // The previous schema: a global sequence row with the in_write flag, lockstep_kv without `writer`.
        `CREATE TABLE lockstep_sequence (id INTEGER PRIMARY KEY CHECK (id = 1), version INTEGER NOT NULL, in_write INTEGER NOT NULL DEFAULT 0);
         INSERT INTO lockstep_sequence VALUES (1, 7, 0);
         CREATE TABLE lockstep_kv (namespace TEXT NOT NULL, key TEXT NOT NULL, value TEXT NOT NULL, version INTEGER DEFAULT NULL,
           updated_at INTEGER, PRIMARY KEY (namespace, key)) WITHOUT ROWID;
         INSERT INTO lockstep_kv VALUES ('ns', 'k', '1', 7, 0);`,
        // Only the table, without the sequence: still not this schema.
        `CREATE TABLE lockstep_kv (namespace TEXT NOT NULL, key TEXT NOT NULL, value TEXT NOT NULL, version INTEGER DEFAULT NULL,
           updated_at INTEGER, PRIMARY KEY (namespace, key)) WITHOUT ROWID;`,
      ];
      for (const ddl of legacy) {
        const path = freshPath();
        const setup = new Database(path);
        setup.exec(ddl);
        const before = setup.prepare("SELECT type, name FROM sqlite_master ORDER BY name").all();
        setup.close();
        const outdated = (error: unknown) =>
          error instanceof InvalidOptionError && /created by an earlier Lockstep schema/.test(error.message) && error.message.includes(path);
        assert.throws(() => createSqliteStore({ path }), outdated);
        const db = new Database(path);
        try {
          assert.throws(() => createSqliteStore({ database: db }), outdated);
          assert.equal(db.open, true, 'a connection passed in stays open');
          assert.deepEqual(db.prepare("SELECT type, name FROM sqlite_master ORDER BY name").all(), before, 'no table or trigger added');
        } finally {
          db.close();
        }
      }
    });
  });

  describe('transactions, locks and deadlines', () => {
    /** Holds the write lock from the second connection while `run` runs. */
    async function whileLocked(other: Database.Database, run: () => Promise<void>): Promise<void> {
      other.exec('BEGIN IMMEDIATE');
      try {
        await run();
      } finally {
        other.exec('ROLLBACK');
      }
    }
    const isBusy = (error: unknown) => error instanceof Database.SqliteError && error.code === 'SQLITE_BUSY';

    it('surfaces SQLITE_BUSY with its code after the busy timeout, and changes nothing', () =>
      withFile(async (store, other) => {
        const { version } = await store.write('ns', 'k', '"before"', PLAIN);
        await whileLocked(other, async () => {
          const started = performance.now();
          await assert.rejects(Promise.resolve(store.write('ns', 'k', '"after"', PLAIN)), isBusy);
          assert.ok(performance.now() - started >= 40, 'waited for the busy timeout');
          await assert.rejects(store.delete('ns', 'k', PLAIN), isBusy);
        });
        assert.deepEqual(await store.read('ns', 'k'), { version, payload: '"before"' });
        assert.deepEqual(tombstones(other), []);
        assert.equal((await store.write('ns', 'k', '"after"', PLAIN)).version, version + 1);
      }, { busyTimeout: '50ms' }));

    it('caps the lock wait at a deadline shorter than the busy timeout, then restores it', () =>
      withFile(async (store, other) => {
        await whileLocked(other, async () => {
          const started = performance.now();
          await assert.rejects(Promise.resolve(store.write('ns', 'k', '1', { journal: false, deadlineMs: 30 })), isBusy);
          await assert.rejects(store.delete('ns', 'k', { journal: true, deadlineMs: 30 }), isBusy);
          assert.ok(performance.now() - started < 2_000, 'did not wait the 5 s busy timeout');
        });
        assert.equal(store.database.pragma('busy_timeout', { simple: true }), 5_000);
      }, { busyTimeout: '5s' }));

    it('waits the busy timeout, not a longer deadline', () =>
      withFile(async (store, other) => {
        await whileLocked(other, async () => {
          const started = performance.now();
          await assert.rejects(Promise.resolve(store.write('ns', 'k', '1', { journal: false, deadlineMs: 60_000 })), isBusy);
          const waited = performance.now() - started;
          assert.ok(waited >= 80 && waited < 3_000, `waited ${waited} ms`);
        });
      }, { busyTimeout: '100ms' }));

    it('rolls back the row, its version, its writer mark and the tombstone when the journal insert fails', () =>
      withFile(async (store, other) => {
        const { version } = await store.write('ns', 'k', '"kept"', PLAIN);
        await store.delete('ns', 'gone', PLAIN);
        const gone = tombstoneOf(other, 'gone');
        store.database.exec(
          "CREATE TEMP TRIGGER fail_journal BEFORE INSERT ON main.lockstep_journal BEGIN SELECT RAISE(ABORT, 'journal down'); END",
        );
        const journaled = { journal: true, deadlineMs: 1_000 };
        await assert.rejects(Promise.resolve(store.write('ns', 'k', '"lost"', journaled)), /journal down/);
        await assert.rejects(store.delete('ns', 'k', journaled), /journal down/);
        await assert.rejects(Promise.resolve(store.write('ns', 'gone', '"lost"', journaled)), /journal down/);
        await assert.rejects(store.delete('ns', 'gone', journaled), /journal down/);
        store.database.exec('DROP TRIGGER temp.fail_journal');
        assert.deepEqual(await store.read('ns', 'k'), { version, payload: '"kept"' });
        assert.equal(await store.read('ns', 'gone'), undefined);
        assert.deepEqual(tombstones(other), [{ namespace: 'ns', key: 'gone', version: gone }]);
        // The delete mark was rolled back too: plain-SQL writes are still seen.
        other.prepare("UPDATE lockstep_kv SET value = '\"sql\"' WHERE key = 'k'").run();
        other.prepare("DELETE FROM lockstep_kv WHERE key = 'k'").run();
        assert.deepEqual(journal(other).map((r) => [r.key, r.version, r.reason]), [
          ['k', version + 1, 'trigger'],
          ['k', version + 2, 'trigger'],
        ]);
      }));
  });

  describe('versions per key and the pages a write costs', () => {
    it('a write of an existing key writes one page, the row\'s own, and never touches the tombstone table', () =>
      withFile(async (store, _other, path) => {
        const db = store.database;
        for (const key of ['a', 'b', 'c']) await store.write('ns', key, `"${key}"`, PLAIN);
        await store.delete('ns', 'gone', PLAIN); // a tombstone of another key lives next to it
        const kv = rootPage(db, 'lockstep_kv');
        assert.notEqual(kv, rootPage(db, 'lockstep_tombstones'));
        assert.deepEqual(await pagesWrittenBy(db, path, () => store.write('ns', 'b', '"b2"', PLAIN)), [kv]);
        // Twenty writes in a row: one frame each, the same page (the WAL appends a frame per commit).
        const twenty = await pagesWrittenBy(db, path, async () => {
          for (let i = 0; i < 20; i++) await store.write('ns', 'abc'[i % 3]!, String(i), PLAIN);
        });
        assert.deepEqual(twenty, Array(20).fill(kv));
        // A new key that was never deleted: also the row's page only (no tombstone to remove).
        assert.deepEqual(await pagesWrittenBy(db, path, () => store.write('ns', 'new', '1', PLAIN)), [kv]);
        assert.deepEqual(tombstones(db), [{ namespace: 'ns', key: 'gone', version: 1 }]);
        // A re-create removes the tombstone: that page too, only then.
        const recreate = await pagesWrittenBy(db, path, () => store.write('ns', 'gone', '1', PLAIN));
        assert.deepEqual([...recreate].sort(), [kv, rootPage(db, 'lockstep_tombstones')].sort());
        assert.deepEqual(tombstones(db), []);
      }));

    it('a write of an existing key does not even read the tombstone table', () =>
      withFile(async (store, other) => {
        await store.write('ns', 'k', '1', PLAIN);
        // Out of reach under another name (ALTER TABLE rewrites the triggers' references, and back).
        other.exec('ALTER TABLE lockstep_tombstones RENAME TO lockstep_tombstones_away');
        try {
          assert.equal((await store.write('ns', 'k', '2', PLAIN)).version, 2);
          assert.equal((await store.write('ns', 'k', '3', { journal: true, deadlineMs: 1_000 })).version, 3);
          await assert.rejects(Promise.resolve(store.write('ns', 'new', '1', PLAIN)), /no such table: lockstep_tombstones/, 'the check can fail');
          await assert.rejects(store.delete('ns', 'k', PLAIN), /no such table: lockstep_tombstones/);
        } finally {
          other.exec('ALTER TABLE lockstep_tombstones_away RENAME TO lockstep_tombstones');
        }
        assert.deepEqual(await store.read('ns', 'k'), { version: 3, payload: '3' });
        assert.equal((await store.write('ns', 'new', '1', PLAIN)).version, 1);
      }));

    it("a write of an existing key changes one row, and Lockstep's writes and deletes journal nothing", () =>
      withFile(async (store, other) => {
        const db = store.database;
        await store.write('ns', 'k', '1', PLAIN);
        const changes = () => db.prepare('SELECT total_changes()').pluck().get() as number;
        const before = changes();
        await store.write('ns', 'k', '2', PLAIN);
        assert.equal(changes() - before, 1, 'the row, and no row of any other table');
        await store.delete('ns', 'k', PLAIN);
        await store.delete('ns', 'k', PLAIN);
        await store.write('ns', 'k', '3', PLAIN);
        await store.write('ns', 'k', '4', PLAIN);
        other.prepare("INSERT INTO lockstep_kv (namespace, key, value) VALUES ('ns', 'sql', '1')").run();
        const afterBypass = journal(other).length;
        await store.write('ns', 'sql', '2', PLAIN); // a row the trigger last wrote
        await store.delete('ns', 'sql', PLAIN);
        await store.write('ns', 'sql', '3', PLAIN);
        assert.equal(journal(other).length, afterBypass, 'no journal row for Lockstep');
        assert.equal(afterBypass, 1);
      }));

    it("journals nothing for Lockstep's own writes on a connection with recursive_triggers on", async () => {
      const db = new Database(freshPath());
      db.pragma('recursive_triggers = ON');
      const store = createSqliteStore({ database: db });
      try {
        assert.equal((await store.write('ns', 'k', '1', PLAIN)).version, 1);
        assert.equal((await store.write('ns', 'k', '2', PLAIN)).version, 2);
        assert.deepEqual(await store.delete('ns', 'k', PLAIN), { version: 3, existed: true });
        assert.equal((await store.write('ns', 'k', '3', PLAIN)).version, 4);
        assert.deepEqual(await store.delete('ns', 'missing', PLAIN), { version: 1, existed: false });
        assert.deepEqual(journal(db), []);
        db.exec("UPDATE lockstep_kv SET value = '4'");
        assert.deepEqual(journal(db).map((r) => [r.key, r.version]), [['k', 5]], 'one row: the trigger did not re-fire itself');
      } finally {
        await store.close();
        db.close();
      }
    });

    it('numbers versions per key: overwrite +1, delete +1, re-create above the tombstone, missing key from its tombstone', () =>
      withFile(async (store, other) => {
        assert.equal((await store.write('ns', 'a', '1', PLAIN)).version, 1);
        assert.equal((await store.write('ns', 'b', '1', PLAIN)).version, 1, 'another key starts at 1 too');
        assert.equal((await store.write('ns', 'a', '2', PLAIN)).version, 2);
        assert.deepEqual(await store.delete('ns', 'a', PLAIN), { version: 3, existed: true });
        assert.equal(tombstoneOf(other, 'a'), 3);
        assert.deepEqual(await store.delete('ns', 'a', PLAIN), { version: 4, existed: false });
        assert.equal((await store.write('ns', 'a', '3', PLAIN)).version, 5);
        assert.equal(tombstoneOf(other, 'a'), undefined, 'the re-create removed the tombstone');
        assert.deepEqual(await store.delete('ns', 'never', PLAIN), { version: 1, existed: false });
        assert.deepEqual(await store.delete('other', 'a', PLAIN), { version: 1, existed: false }, 'namespaces apart');
        assert.deepEqual(tombstones(other).map((t) => [t.namespace, t.key, t.version]), [['ns', 'never', 1], ['other', 'a', 1]]);
      }));

    it('pruneJournal also prunes the tombstones of keys deleted before the cutoff, and keeps newer ones', () =>
      withFile(async (store, other) => {
        await store.write('ns', 'old', '1', PLAIN);
        await store.delete('ns', 'old', PLAIN);
        await store.delete('ns', 'recent', PLAIN);
        other.prepare("UPDATE lockstep_tombstones SET deleted_at = deleted_at - 7200000 WHERE key = 'old'").run();
        await store.write('ns', 'j', '1', { journal: true, deadlineMs: 1_000 });
        assert.equal(await store.pruneJournal(Date.now() - 3_600_000), 0, 'returns the journal rows pruned');
        assert.deepEqual(tombstones(other).map((t) => t.key), ['recent']);
        // A key whose tombstone is gone starts again at 1 (safe once no cache can still hold its versions).
        assert.equal((await store.write('ns', 'old', '1', PLAIN)).version, 1);
        assert.equal(await store.pruneJournal(Date.now() + 60_000), 1);
        assert.deepEqual(tombstones(other), []);
      }));
  });

  describe('plain-SQL writes the triggers must catch', () => {
    it('an UPDATE that bumps version itself, as optimistic locking elsewhere would', () =>
      withFile(async (store, other) => {
        const { version } = await store.write('ns', 'k', '1', PLAIN);
        other.prepare("UPDATE lockstep_kv SET value = '2', version = version + 1 WHERE key = 'k'").run();
        assert.deepEqual(journal(other).map((r) => [r.key, r.version, r.reason]), [['k', version + 1, 'trigger']]);
        assert.equal(versionOf(other, 'k'), version + 1);
        // Only the version, the value left alone: still a write of the row, still journaled.
        other.prepare("UPDATE lockstep_kv SET version = version + 1 WHERE key = 'k'").run();
        assert.deepEqual(journal(other).map((r) => [r.key, r.version]), [['k', version + 1], ['k', version + 2]]);
        assert.equal(versionOf(other, 'k'), version + 2);
        assert.equal((await store.write('ns', 'k', '3', PLAIN)).version, version + 3);
        assert.equal(journal(other).length, 2);
      }));

    it('an UPDATE that sets version back, or to NULL, still goes up by one', () =>
      withFile(async (store, other) => {
        await store.write('ns', 'k', '1', PLAIN);
        const { version } = await store.write('ns', 'k', '2', PLAIN);
        other.prepare("UPDATE lockstep_kv SET version = 0 WHERE key = 'k'").run();
        other.prepare("UPDATE lockstep_kv SET version = NULL, value = '3' WHERE key = 'k'").run();
        assert.deepEqual(journal(other).map((r) => [r.key, r.version]), [['k', version + 1], ['k', version + 2]]);
        assert.deepEqual(await store.read('ns', 'k'), { version: version + 2, payload: '3' });
      }));

    it('a copy of a row, writer column included, to a new key and to a deleted key; and INSERT OR REPLACE', () =>
      withFile(async (store, other) => {
        const { version } = await store.write('ns', 'src', '"v"', PLAIN);
        await store.write('ns', 'dead', '1', PLAIN);
        const dead = (await store.delete('ns', 'dead', PLAIN)).version;
        // Everything copied, Lockstep's own writer column too: still a plain-SQL write.
        other.exec("INSERT INTO lockstep_kv SELECT namespace, 'copy', value, version, updated_at, writer FROM lockstep_kv WHERE key = 'src'");
        other.exec("INSERT INTO lockstep_kv SELECT namespace, 'dead', value, version, updated_at, writer FROM lockstep_kv WHERE key = 'src'");
        other.exec("INSERT OR REPLACE INTO lockstep_kv (namespace, key, value, version) VALUES ('ns', 'src', '\"r\"', 999999)");
        const rows = journal(other);
        assert.deepEqual(rows.map((r) => [r.key, r.version]), [['copy', 1], ['dead', dead + 1], ['src', version + 1]]);
        assert.deepEqual(await store.read('ns', 'copy'), { version: 1, payload: '"v"' });
        assert.deepEqual(await store.read('ns', 'dead'), { version: dead + 1, payload: '"v"' });
        assert.deepEqual(await store.read('ns', 'src'), { version: version + 1, payload: '"r"' });
        assert.deepEqual(tombstones(other), [], 'no tombstone is left beside a live row');
        // A backup of a deleted row put back, writer column and old version included.
        const backup = other.prepare("SELECT * FROM lockstep_kv WHERE key = 'copy'").get() as Record<string, unknown>;
        await store.delete('ns', 'copy', PLAIN);
        other.prepare('INSERT INTO lockstep_kv (namespace, key, value, version, updated_at, writer) VALUES (?, ?, ?, ?, ?, ?)').run(
          ...['namespace', 'key', 'value', 'version', 'updated_at', 'writer'].map((c) => backup[c]),
        );
        assert.deepEqual(journal(other, rows.at(-1)!.id).map((r) => [r.key, r.version]), [['copy', 3]]);
      }));

    it('an upsert or INSERT OR IGNORE that meets the row, with recursive_triggers off and on', () => {
      const run = (recursive: boolean) =>
        withFile(async (store, other) => {
          other.pragma(`recursive_triggers = ${recursive ? 'ON' : 'OFF'}`);
          const { version } = await store.write('ns', 'k', '1', PLAIN);
          other.exec("INSERT INTO lockstep_kv (namespace, key, value) VALUES ('ns', 'k', '2') ON CONFLICT (namespace, key) DO UPDATE SET value = excluded.value");
          other.exec("INSERT OR IGNORE INTO lockstep_kv (namespace, key, value) VALUES ('ns', 'k', '3')");
          assert.deepEqual(journal(other).map((r) => [r.key, r.version]), [['k', version + 1]], 'the ignored insert changed nothing');
          assert.deepEqual(await store.read('ns', 'k'), { version: version + 1, payload: '2' });
          // Whatever INSERT OR IGNORE left in the tombstone table, the key's versions keep rising.
          assert.equal((await store.write('ns', 'k', '4', PLAIN)).version, version + 2);
          assert.deepEqual(await store.delete('ns', 'k', PLAIN), { version: version + 3, existed: true });
          assert.equal((await store.write('ns', 'k', '5', PLAIN)).version, version + 4);
          // INSERT OR REPLACE: with recursive_triggers the replaced row's DELETE is journaled too.
          other.exec("INSERT OR REPLACE INTO lockstep_kv (namespace, key, value) VALUES ('ns', 'k', '6')");
          const replaced = journal(other).slice(1).map((r) => [r.key, r.version]);
          assert.deepEqual(replaced, recursive ? [['k', version + 5], ['k', version + 6]] : [['k', version + 5]]);
          assert.equal(versionOf(other, 'k'), replaced.at(-1)![1]);
          assert.deepEqual(tombstones(other), []);
        });
      return run(false).then(() => run(true));
    });

    it('a multi-row UPDATE in a transaction: each row its own version and journal row', () =>
      withFile(async (store, other) => {
        for (const key of ['a', 'b', 'c']) await store.write('ns', key, '0', PLAIN);
        await store.write('ns', 'b', '0', PLAIN);
        other.exec("BEGIN; UPDATE lockstep_kv SET value = value || '1' WHERE namespace = 'ns'; DELETE FROM lockstep_kv WHERE key = 'c'; COMMIT");
        const rows = journal(other);
        assert.deepEqual(rows.map((r) => [r.key, r.version]), [['a', 2], ['b', 3], ['c', 2], ['c', 3]]);
        assert.deepEqual(await store.read('ns', 'a'), { version: 2, payload: '01' });
        assert.deepEqual(await store.read('ns', 'b'), { version: 3, payload: '01' });
        assert.equal(await store.read('ns', 'c'), undefined);
        assert.equal(tombstoneOf(other, 'c'), 3);
        assert.equal((await store.write('ns', 'c', '2', PLAIN)).version, 4);
      }));

    it('a rename of the key journals both keys; recursive_triggers does not loop', () =>
      withFile(async (store, other) => {
        const { version } = await store.write('ns', 'old', '"v"', PLAIN);
        other.pragma('recursive_triggers = ON');
        other.exec("UPDATE lockstep_kv SET key = 'new', version = 10 WHERE key = 'old'");
        assert.deepEqual(journal(other).map((r) => [r.key, r.version]), [['new', version + 1], ['old', version + 1]]);
        assert.equal(await store.read('ns', 'old'), undefined);
        assert.deepEqual(await store.read('ns', 'new'), { version: version + 1, payload: '"v"' });
        assert.equal(tombstoneOf(other, 'old'), version + 1, 'the old key is deleted: it has a tombstone');
        assert.equal((await store.write('ns', 'old', '"again"', PLAIN)).version, version + 2);
      }));

    it('a rename onto a deleted key continues above its tombstone, and a rename across namespaces', () =>
      withFile(async (store, other) => {
        for (let i = 0; i < 4; i++) await store.write('ns', 'target', String(i), PLAIN);
        const dead = (await store.delete('ns', 'target', PLAIN)).version;
        await store.write('ns', 'src', '"v"', PLAIN);
        other.exec("UPDATE lockstep_kv SET key = 'target' WHERE key = 'src'");
        assert.deepEqual(journal(other).map((r) => [r.key, r.version]), [['target', dead + 1], ['src', dead + 1]]);
        assert.deepEqual(await store.read('ns', 'target'), { version: dead + 1, payload: '"v"' });
        other.exec("UPDATE lockstep_kv SET namespace = 'ns2' WHERE key = 'target'");
        assert.deepEqual(journal(other).slice(2).map((r) => [r.namespace, r.key, r.version]), [['ns2', 'target', dead + 2], ['ns', 'target', dead + 2]]);
        assert.deepEqual(tombstones(other).map((t) => [t.namespace, t.key, t.version]), [['ns', 'src', dead + 1], ['ns', 'target', dead + 2]]);
      }));

    it('UPDATE OR REPLACE renaming onto a live key continues above the row it replaced', () => {
      const run = (recursive: boolean) =>
        withFile(async (store, other) => {
          other.pragma(`recursive_triggers = ${recursive ? 'ON' : 'OFF'}`);
          for (let i = 0; i < 6; i++) await store.write('ns', 'target', String(i), PLAIN);
          await store.write('ns', 'src', '"v"', PLAIN);
          other.exec("UPDATE OR REPLACE lockstep_kv SET key = 'target' WHERE key = 'src'");
          const rows = journal(other).map((r) => [r.key, r.version]);
          // recursive_triggers fires the DELETE trigger for the replaced row (target 6 → 7) first.
          assert.deepEqual(rows, recursive ? [['target', 7], ['target', 8], ['src', 8]] : [['target', 7], ['src', 7]]);
          assert.deepEqual(await store.read('ns', 'target'), { version: rows.at(-1)![1], payload: '"v"' });
          assert.deepEqual(tombstones(other).map((t) => [t.key, t.version]), [['src', rows.at(-1)![1]]]);
        });
      return run(false).then(() => run(true));
    });

    const shell = spawnSync('sqlite3', ['-version'], { encoding: 'utf8' });
    it('writes from the sqlite3 shell, another process with its own SQLite', { skip: shell.status !== 0 && 'no sqlite3 on PATH' }, () =>
      withFile(async (store, _other, path) => {
        const { version } = await store.write('ns', 'k', '"lockstep"', PLAIN);
        await store.delete('ns', 'dead', PLAIN);
        const sql = `UPDATE lockstep_kv SET value = '"shell"' WHERE namespace = 'ns' AND key = 'k';
          INSERT INTO lockstep_kv (namespace, key, value) VALUES ('ns', 'fresh', '1');
          DELETE FROM lockstep_kv WHERE key = 'k';
          INSERT INTO lockstep_kv (namespace, key, value) VALUES ('ns', 'dead', '2');
          INSERT OR REPLACE INTO lockstep_kv (namespace, key, value) VALUES ('ns', 'dead', '3');`;
        await promisify(execFile)('sqlite3', [path, sql]);
        const rows = await store.readJournal(0, 10);
        assert.deepEqual(rows.map((r) => [r.key, r.version, r.reason]), [
          ['k', version + 1, 'trigger'],
          ['fresh', 1, 'trigger'],
          ['k', version + 2, 'trigger'],
          ['dead', 2, 'trigger'],
          ['dead', 3, 'trigger'],
        ]);
        assert.deepEqual(await store.read('ns', 'fresh'), { version: 1, payload: '1' });
        assert.deepEqual(await store.read('ns', 'dead'), { version: 3, payload: '3' });
        assert.ok(Math.abs(rows[0]!.createdAt - Date.now()) < 60_000, 'the shell writes createdAt in epoch ms');
        assert.equal((await store.write('ns', 'k', '"back"', PLAIN)).version, version + 3);
      }));
  });

  it('several processes open a new file at once and write: one schema, versions unique and rising per key', async () => {
    const path = freshPath();
    const url = pathToFileURL(join(import.meta.dirname, '../../src/store/sqlite.ts')).href;
    const child = `
      const { createSqliteStore } = await import(${JSON.stringify(url)});
      const store = createSqliteStore({ path: ${JSON.stringify(path)}, busyTimeout: '10s' });
      const versions = [];
      for (let i = 0; i < 40; i++) versions.push((await store.write('ns', i % 2 ? 'shared' : 'own-' + process.pid, String(i), { journal: false, deadlineMs: 10000 })).version);
      await store.close();
      console.log(JSON.stringify(versions));`;
    const run = () =>
      promisify(execFile)(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', child], { cwd: import.meta.dirname });
    const outputs = await Promise.all(Array.from({ length: 4 }, run));
    const perProcess = outputs.map((o) => JSON.parse(o.stdout) as number[]);
    const shared: number[] = [];
    for (const versions of perProcess) {
      const own = versions.filter((_, i) => i % 2 === 0);
      const mine = versions.filter((_, i) => i % 2 === 1);
      assert.deepEqual(own, Array.from({ length: 20 }, (_, i) => i + 1), 'a key only this process writes: 1, 2, 3 …');
      mine.forEach((v, i) => i > 0 && assert.ok(v > mine[i - 1]!, 'the shared key rises in each process'));
      shared.push(...mine);
    }
    assert.deepEqual([...shared].sort((a, b) => a - b), Array.from({ length: 80 }, (_, i) => i + 1), 'the shared key: each version once');
    const db = new Database(path, { readonly: true });
    try {
      assert.equal(db.prepare("SELECT count(*) FROM sqlite_master WHERE type = 'trigger'").pluck().get(), 5);
      assert.equal(db.prepare("SELECT version FROM lockstep_kv WHERE key = 'shared'").pluck().get(), 80);
      assert.equal(db.prepare('SELECT count(*) FROM lockstep_journal').pluck().get(), 0);
    } finally {
      db.close();
    }
  });
});
