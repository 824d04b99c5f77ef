// The SQLite store on a connection the application shares (`createSqliteStore({ database })`): the
// application may hold a transaction open on it (its own BEGIN, an ORM's transaction) when Lockstep
// runs. Lockstep's statements must not join it: a write would be a savepoint of the application's
// transaction, published to the cache and then rolled back with it; a cold read would fill the cache
// with a row no commit produced; a journal read would see rows a rollback takes back. They wait
// until the transaction has ended (bounded), then run on their own.
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import Database from 'better-sqlite3';
import { createMemoryCache, createWriteThrough } from '../../src/index.js';
import { createSqliteStore } from '../../src/store/sqlite.js';

const dir = mkdtempSync(join(tmpdir(), 'lockstep-sqlite-shared-'));
after(() => rmSync(dir, { recursive: true, force: true }));

let files = 0;
function setup(options: { leaseTtl?: string; busyTimeout?: string } = {}) {
  const file = join(dir, `shared-${++files}.db`);
  const db = new Database(file);
  const store = createSqliteStore({ database: db, busyTimeout: options.busyTimeout });
  const engine = createWriteThrough<string>({ store, cache: createMemoryCache({ maxEntries: 100 }), namespace: 'ns', leaseTtl: options.leaseTtl });
  /** What another connection sees: only committed rows. */
  const committed = (key: string): string | undefined => {
    const other = new Database(file, { readonly: true });
    try {
      const row = other.prepare('SELECT value FROM lockstep_kv WHERE namespace = ? AND key = ?').get('ns', key) as { value: string } | undefined;
      return row === undefined ? undefined : (JSON.parse(row.value) as string);
    } finally {
      other.close();
    }
  };
  const close = async () => {
    if (db.inTransaction) db.exec('ROLLBACK');
    await engine.close();
    await store.close();
    db.close();
  };
  return { db, store, engine, committed, close };
}

/** Settles the promise's state into a flag, so a test can see that it is still pending. */
function track<T>(promise: Promise<T>): { readonly settled: () => boolean; readonly promise: Promise<T> } {
  let done = false;
  const watched = promise.finally(() => {
    done = true;
  });
  return { settled: () => done, promise: watched };
}

/** Turns of the event loop in which a statement that did not wait would have run and settled. */
async function turns(n: number): Promise<void> {
  for (let i = 0; i < n; i++) await new Promise((resolve) => setTimeout(resolve, 1));
}

describe("SQLite store on a connection shared with the application's transactions", () => {
  it("a write made while the application's transaction is open runs after it and is not rolled back with it", async () => {
    const { db, engine, committed, close } = setup();
    try {
      await engine.write('k', 'v1');
      db.exec('BEGIN');
      db.exec('CREATE TABLE app_rows (x)');
      const write = track(engine.write('k', 'v2'));
      await turns(20);
      assert.equal(write.settled(), false, 'the write waited for the transaction');
      db.exec('ROLLBACK');
      await write.promise;
      assert.equal(committed('k'), 'v2', 'the write committed on its own, after the rollback');
      assert.equal(await engine.read('k'), 'v2');
    } finally {
      await close();
    }
  });

  it("a cold read while the application's transaction holds an uncommitted row fills the committed row, after it", async () => {
    const { db, store, engine, committed, close } = setup();
    try {
      await store.write('ns', 'k', JSON.stringify('v1'), { journal: false, deadlineMs: 5_000 }); // stored, not cached
      db.exec('BEGIN');
      db.prepare('UPDATE lockstep_kv SET value = ? WHERE namespace = ? AND key = ?').run(JSON.stringify('uncommitted'), 'ns', 'k');
      const read = track(engine.read('k'));
      await turns(20);
      assert.equal(read.settled(), false, 'the read waited for the transaction');
      db.exec('ROLLBACK');
      assert.equal(await read.promise, 'v1');
      const again = await engine.readEntry('k');
      assert.deepEqual([again.value, again.source], ['v1', 'hit'], 'and the cache holds the committed row');
      assert.equal(committed('k'), 'v1');
    } finally {
      await close();
    }
  });

  it('a journal read waits too: it never sees a row that the rollback takes back', async () => {
    const { db, store, close } = setup();
    try {
      const head = await store.journalHead();
      db.exec('BEGIN');
      // a plain-SQL write: the trigger journals it inside the application's transaction
      db.prepare("INSERT INTO lockstep_kv (namespace, key, value, version, updated_at) VALUES ('ns', 'plain', '1', 1, 0)").run();
      const journal = track(store.readJournal(head, 100));
      await turns(20);
      assert.equal(journal.settled(), false, 'the journal read waited for the transaction');
      db.exec('ROLLBACK');
      assert.deepEqual(await journal.promise, []);
    } finally {
      await close();
    }
  });

  it('a transaction the application opens in the turn right after Lockstep found the connection free does not take its statement in', async () => {
    const { db, store, committed, close } = setup();
    try {
      db.exec('CREATE TABLE app_rows (x)');
      // The application's continuation is queued before Lockstep's: with an await between Lockstep's
      // check and its statement, the BEGIN would come first and the write would join it.
      const application = (async () => {
        await null;
        db.exec('BEGIN');
        db.exec('INSERT INTO app_rows VALUES (1)');
        await new Promise((resolve) => setTimeout(resolve, 20));
        db.exec('ROLLBACK');
      })();
      const written = await store.write('ns', 'k', JSON.stringify('v1'), { journal: false, deadlineMs: 5_000 });
      await application;
      assert.equal(committed('k'), 'v1', `the acknowledged write (version ${written.version}) was rolled back with the application's transaction`);
    } finally {
      await close();
    }
  });

  it("a transaction that ends only after the write's deadline (the application held the event loop meanwhile): the write is refused, and nothing is written", async () => {
    const { db, store, committed, close } = setup();
    try {
      db.exec('BEGIN');
      const writing = Promise.resolve(store.write('ns', 'k', JSON.stringify('late'), { journal: false, deadlineMs: 100 }));
      // The application's synchronous work inside its transaction outlasts the write's deadline (no
      // timer of the store's wait can run meanwhile), then it commits: the wait ends 300 ms in. A
      // write run then would commit after its deadline, so after its lease, which the store promises never to do.
      const until = performance.now() + 300;
      while (performance.now() < until) {
        // busy: the event loop is held
      }
      db.exec('COMMIT');
      await assert.rejects(writing, /inside a transaction Lockstep did not open/);
      assert.equal(committed('k'), undefined);
    } finally {
      await close();
    }
  });

  it('busyTimeout 0 and no transaction open: every statement runs (none waits, so none is late)', async () => {
    const file = join(dir, `shared-${++files}.db`);
    const db = new Database(file);
    const store = createSqliteStore({ database: db, busyTimeout: '0s' });
    try {
      await store.write('ns', 'k', JSON.stringify('v'), { journal: true, deadlineMs: 1000 });
      assert.equal((await store.readJournal(0, 10)).length, 1);
      assert.equal(await store.journalHead(), 1);
      await store.appendJournal('ns', 'k', 1, 'repair');
      await store.delete('ns', 'k', { journal: false, deadlineMs: 1000 });
      assert.equal(await store.read('ns', 'k'), undefined);
    } finally {
      await store.close();
      db.close();
    }
  });

  it("a transaction that ends past the wait's bound: a read and a journal append still run (only lease-bound writes are refused late)", async () => {
    const { db, store, close } = setup({ busyTimeout: '100ms' });
    try {
      await store.write('ns', 'k', JSON.stringify('v'), { journal: false, deadlineMs: 1000 });
      db.exec('BEGIN');
      const reading = store.readJournal(0, 10);
      const appending = store.appendJournal('ns', 'k', 1, 'repair');
      const until = performance.now() + (store.busyTimeoutMs * 2 + 300);
      while (performance.now() < until) {
        // busy: the event loop is held past both waits' bounds
      }
      db.exec('COMMIT');
      await appending;
      assert.deepEqual((await reading).length, 0);
      assert.equal((await store.readJournal(0, 10)).length, 1, 'the repair row was appended');
    } finally {
      await close();
    }
  });

  it('a transaction that does not end: the write is refused within its bound, and nothing is written', async () => {
    const { db, engine, committed, close } = setup({ leaseTtl: '1s' });
    try {
      await engine.write('k', 'v1');
      db.exec('BEGIN');
      const started = performance.now();
      await assert.rejects(engine.write('k', 'v2'), (error: Error & { code?: string }) => {
        assert.match(error.message, /inside a transaction Lockstep did not open/);
        return true;
      });
      assert.ok(performance.now() - started < 10_000, 'refused within the lease (generous slack)');
      db.exec('ROLLBACK');
      assert.equal(committed('k'), 'v1');
      assert.equal(await engine.read('k'), 'v1');
    } finally {
      await close();
    }
  });
});
