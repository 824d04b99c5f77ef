// The SQLite store against real database files: the shared conformance suite, then what is SQLite's
// own (pragmas, reopen, an existing connection, SQLITE_BUSY, plain-SQL edge cases, other processes).
import assert from 'node:assert/strict';
import { execFile, spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
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

const sequence = (db: Database.Database) => db.prepare('SELECT version FROM lockstep_sequence').pluck().get() as number;
const journal = (db: Database.Database, afterId = 0) =>
  db.prepare('SELECT id, namespace, key, version, reason FROM lockstep_journal WHERE id > ? ORDER BY id').all(afterId) as JournalEntry[];
const versionOf = (db: Database.Database, key: string) =>
  db.prepare("SELECT version FROM lockstep_kv WHERE namespace = 'ns' AND key = ?").pluck().get(key) as number | undefined;

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
        assert.ok(next.version > d.version, 'the sequence survives reopen');
        const objects = second.database
          .prepare("SELECT type, name FROM sqlite_master WHERE name LIKE 'lockstep%' ORDER BY type, name")
          .all();
        assert.deepEqual(objects, [
          { type: 'index', name: 'lockstep_journal_created_at' },
          { type: 'table', name: 'lockstep_journal' },
          { type: 'table', name: 'lockstep_kv' },
          { type: 'table', name: 'lockstep_sequence' },
          { type: 'trigger', name: 'lockstep_kv_bypass_delete' },
          { type: 'trigger', name: 'lockstep_kv_bypass_insert' },
          { type: 'trigger', name: 'lockstep_kv_bypass_update' },
        ]);
        assert.equal(second.database.prepare('SELECT count(*) FROM lockstep_sequence').pluck().get(), 1);
        assert.equal(sequence(second.database), next.version);
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
        await assert.rejects(store.read('ns', 'k'), ClosedError);
        await assert.rejects(store.write('ns', 'k', '2', PLAIN), ClosedError);
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
          await assert.rejects(store.write('ns', 'k', '"after"', PLAIN), isBusy);
          assert.ok(performance.now() - started >= 40, 'waited for the busy timeout');
          await assert.rejects(store.delete('ns', 'k', PLAIN), isBusy);
        });
        assert.deepEqual(await store.read('ns', 'k'), { version, payload: '"before"' });
        assert.equal(sequence(other), version);
        assert.ok((await store.write('ns', 'k', '"after"', PLAIN)).version > version);
      }, { busyTimeout: '50ms' }));

    it('caps the lock wait at a deadline shorter than the busy timeout, then restores it', () =>
      withFile(async (store, other) => {
        await whileLocked(other, async () => {
          const started = performance.now();
          await assert.rejects(store.write('ns', 'k', '1', { journal: false, deadlineMs: 30 }), isBusy);
          await assert.rejects(store.delete('ns', 'k', { journal: true, deadlineMs: 30 }), isBusy);
          assert.ok(performance.now() - started < 2_000, 'did not wait the 5 s busy timeout');
        });
        assert.equal(store.database.pragma('busy_timeout', { simple: true }), 5_000);
      }, { busyTimeout: '5s' }));

    it('waits the busy timeout, not a longer deadline', () =>
      withFile(async (store, other) => {
        await whileLocked(other, async () => {
          const started = performance.now();
          await assert.rejects(store.write('ns', 'k', '1', { journal: false, deadlineMs: 60_000 }), isBusy);
          const waited = performance.now() - started;
          assert.ok(waited >= 80 && waited < 3_000, `waited ${waited} ms`);
        });
      }, { busyTimeout: '100ms' }));

    it('rolls back the row, the version and the flag when the journal insert fails', () =>
      withFile(async (store, other) => {
        const { version } = await store.write('ns', 'k', '"kept"', PLAIN);
        store.database.exec(
          "CREATE TEMP TRIGGER fail_journal BEFORE INSERT ON main.lockstep_journal BEGIN SELECT RAISE(ABORT, 'journal down'); END",
        );
        await assert.rejects(store.write('ns', 'k', '"lost"', { journal: true, deadlineMs: 1_000 }), /journal down/);
        await assert.rejects(store.delete('ns', 'k', { journal: true, deadlineMs: 1_000 }), /journal down/);
        store.database.exec('DROP TRIGGER temp.fail_journal');
        assert.deepEqual(await store.read('ns', 'k'), { version, payload: '"kept"' });
        assert.equal(sequence(other), version, 'the sequence bump was rolled back');
        // The triggers' flag was rolled back too: a plain-SQL write is still seen.
        other.prepare("UPDATE lockstep_kv SET value = '\"sql\"' WHERE key = 'k'").run();
        assert.deepEqual(journal(other).map((r) => [r.key, r.version, r.reason]), [['k', version + 1, 'trigger']]);
      }));
  });

  describe('plain-SQL writes the triggers must catch', () => {
    it('an UPDATE that bumps version itself, as optimistic locking elsewhere would', () =>
      withFile(async (store, other) => {
        const { version } = await store.write('ns', 'k', '1', PLAIN);
        other.prepare("UPDATE lockstep_kv SET value = '2', version = version + 1 WHERE key = 'k'").run();
        const rows = journal(other);
        assert.deepEqual(rows.map((r) => [r.key, r.reason]), [['k', 'trigger']]);
        assert.ok(rows[0]!.version > version);
        assert.equal(versionOf(other, 'k'), rows[0]!.version);
      }));

    it('a copy of the latest row, version included, to a new key; and INSERT OR REPLACE', () =>
      withFile(async (store, other) => {
        const { version } = await store.write('ns', 'src', '"v"', PLAIN);
        other.exec("INSERT INTO lockstep_kv SELECT namespace, 'copy', value, version, updated_at FROM lockstep_kv WHERE key = 'src'");
        other.exec("INSERT OR REPLACE INTO lockstep_kv (namespace, key, value, version) VALUES ('ns', 'src', '\"r\"', 999999)");
        const rows = journal(other);
        assert.deepEqual(rows.map((r) => [r.key, r.version]), [['copy', version + 1], ['src', version + 2]]);
        assert.deepEqual(await store.read('ns', 'copy'), { version: version + 1, payload: '"v"' });
        assert.deepEqual(await store.read('ns', 'src'), { version: version + 2, payload: '"r"' });
      }));

    it('a multi-row UPDATE in a transaction: each row its own version and journal row', () =>
      withFile(async (store, other) => {
        for (const key of ['a', 'b', 'c']) await store.write('ns', key, '0', PLAIN);
        const before = sequence(other);
        other.exec("BEGIN; UPDATE lockstep_kv SET value = value || '1' WHERE namespace = 'ns'; DELETE FROM lockstep_kv WHERE key = 'c'; COMMIT");
        const rows = journal(other);
        assert.deepEqual(rows.map((r) => [r.key, r.version]), [['a', before + 1], ['b', before + 2], ['c', before + 3], ['c', before + 4]]);
        assert.deepEqual(await store.read('ns', 'a'), { version: before + 1, payload: '01' });
        assert.deepEqual(await store.read('ns', 'b'), { version: before + 2, payload: '01' });
        assert.equal(await store.read('ns', 'c'), undefined);
      }));

    it('a rename of the key journals both keys; recursive_triggers does not loop', () =>
      withFile(async (store, other) => {
        const { version } = await store.write('ns', 'old', '"v"', PLAIN);
        other.pragma('recursive_triggers = ON');
        other.exec("UPDATE lockstep_kv SET key = 'new', version = 10 WHERE key = 'old'");
        assert.deepEqual(journal(other).map((r) => [r.key, r.version]), [['new', version + 1], ['old', version + 1]]);
        assert.equal(await store.read('ns', 'old'), undefined);
        assert.deepEqual(await store.read('ns', 'new'), { version: version + 1, payload: '"v"' });
        assert.equal(sequence(other), version + 1);
      }));

    const shell = spawnSync('sqlite3', ['-version'], { encoding: 'utf8' });
    it('writes from the sqlite3 shell, another process with its own SQLite', { skip: shell.status !== 0 && 'no sqlite3 on PATH' }, () =>
      withFile(async (store, _other, path) => {
        const { version } = await store.write('ns', 'k', '"lockstep"', PLAIN);
        const sql = `UPDATE lockstep_kv SET value = '"shell"' WHERE namespace = 'ns' AND key = 'k';
          INSERT INTO lockstep_kv (namespace, key, value) VALUES ('ns', 'fresh', '1');
          DELETE FROM lockstep_kv WHERE key = 'k';`;
        await promisify(execFile)('sqlite3', [path, sql]);
        const rows = await store.readJournal(0, 10);
        assert.deepEqual(rows.map((r) => [r.key, r.version, r.reason]), [
          ['k', version + 1, 'trigger'],
          ['fresh', version + 2, 'trigger'],
          ['k', version + 3, 'trigger'],
        ]);
        assert.deepEqual(await store.read('ns', 'fresh'), { version: version + 2, payload: '1' });
        assert.ok(Math.abs(rows[0]!.createdAt - Date.now()) < 60_000, 'the shell writes createdAt in epoch ms');
      }));
  });

  it('several processes open a new file at once and write: one schema, unique versions', async () => {
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
    for (const versions of perProcess) versions.forEach((v, i) => i > 0 && assert.ok(v > versions[i - 1]!));
    const all = perProcess.flat();
    assert.equal(new Set(all).size, 160);
    const db = new Database(path, { readonly: true });
    try {
      assert.equal(sequence(db), 160);
      assert.equal(db.prepare("SELECT count(*) FROM sqlite_master WHERE type = 'trigger'").pluck().get(), 3);
      assert.equal(db.prepare("SELECT version FROM lockstep_kv WHERE key = 'shared'").pluck().get(), Math.max(...all.filter((_, i) => i % 40 % 2 === 1)));
    } finally {
      db.close();
    }
  });
});
