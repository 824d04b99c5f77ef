// The MariaDB store against a real server: the shared conformance suite, then what is MariaDB's own
// (options, schema creation, pools, round trips, concurrency, plain-SQL edge cases, the mariadb CLI,
// journal commit order, timeouts, lost connections, driver errors). Every test works in a database
// of its own (lockstep_test_<random>), dropped afterwards: other engineers share the server.
import assert from 'node:assert/strict';
import { execFile, spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { after, describe, it } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { promisify } from 'node:util';
import mysql from 'mysql2/promise';
import { ClosedError, InvalidOptionError, StoreOutcomeUnknownError } from '../../src/errors.js';
import { budgetMs, createMysqlStore, type MysqlPool, type MysqlStore, type MysqlStoreOptions } from '../../src/store/mysql.js';
import type { StoreWriteOptions } from '../../src/types.js';
import { runStoreAdapterSuite, type BypassSql } from '../conformance/store-adapter.suite.js';
import { MYSQL_SCHEMA_VERSION } from '../../src/store/mysql-schema.js';
import { MYSQL_URL, needService } from '../helpers/services.js';

const service = await needService('MariaDB', MYSQL_URL);
const PLAIN: StoreWriteOptions = Object.freeze({ journal: false, deadlineMs: 10_000 });
const JOURNALED: StoreWriteOptions = Object.freeze({ journal: true, deadlineMs: 10_000 });
const cli = spawnSync('mariadb', ['--version'], { encoding: 'utf8' });

/** MYSQL_URL with another database. */
function uriOf(database: string): string {
  const url = new URL(MYSQL_URL);
  url.pathname = `/${database}`;
  return url.toString();
}

// One admin pool for the DDL the tests do themselves and for dropping databases.
const admin = service.skip ? undefined : mysql.createPool({ uri: MYSQL_URL, connectionLimit: 3 });
const databases = new Set<string>();
after(async () => {
  for (const database of databases) await dropDatabase(database).catch(() => undefined);
  await admin?.end();
});

async function freshDatabase(): Promise<string> {
  const database = `lockstep_test_${randomBytes(6).toString('hex')}`;
  databases.add(database);
  await admin!.query(`CREATE DATABASE \`${database}\``);
  return database;
}

async function dropDatabase(database: string): Promise<void> {
  await admin!.query(`DROP DATABASE IF EXISTS \`${database}\``);
  databases.delete(database);
}

/** A connection of its own, for plain SQL as another service would write it. */
function connect(database: string): Promise<mysql.Connection> {
  return mysql.createConnection({ uri: uriOf(database) });
}

function bypassOn(connection: mysql.Connection): BypassSql {
  return {
    async upsert(namespace, key, jsonText) {
      await connection.execute(
        'INSERT INTO lockstep_kv (namespace, `key`, value) VALUES (?, ?, ?) ON DUPLICATE KEY UPDATE value = VALUES(value)',
        [namespace, key, jsonText],
      );
    },
    async update(namespace, key, jsonText) {
      const [result] = await connection.execute<mysql.ResultSetHeader>('UPDATE lockstep_kv SET value = ? WHERE namespace = ? AND `key` = ?', [
        jsonText,
        namespace,
        key,
      ]);
      assert.equal(result.affectedRows, 1, 'bypass update of an existing row');
    },
    async remove(namespace, key) {
      await connection.execute('DELETE FROM lockstep_kv WHERE namespace = ? AND `key` = ?', [namespace, key]);
    },
  };
}

interface JournalRow {
  id: number;
  namespace: string;
  key: string;
  version: number;
  reason: string;
}

interface Fixture {
  store: MysqlStore;
  /** A second connection: plain SQL. */
  sql: mysql.Connection;
  database: string;
  journal: (afterId?: number) => Promise<JournalRow[]>;
  versionOf: (key: string, namespace?: string) => Promise<number | undefined>;
  tombstoneOf: (key: string, namespace?: string) => Promise<number | undefined>;
}

async function rows<T>(connection: mysql.Connection | mysql.Pool, sql: string, values: unknown[] = []): Promise<T[]> {
  const [result] = await connection.query(sql, values);
  return result as T[];
}

/** A store on a fresh database and a second connection to it; closes both and drops the database afterwards. */
async function withStore(run: (f: Fixture) => Promise<void>, options: Partial<MysqlStoreOptions> = {}): Promise<void> {
  const database = await freshDatabase();
  const store = createMysqlStore({ uri: uriOf(database), poolSize: 4, ...options } as MysqlStoreOptions);
  const sql = await connect(database);
  const fixture: Fixture = {
    store,
    sql,
    database,
    journal: (afterId = 0) =>
      rows<JournalRow>(
        sql,
        'SELECT id, CAST(namespace AS CHAR) AS namespace, CAST(`key` AS CHAR) AS `key`, version, reason FROM lockstep_journal WHERE id > ? ORDER BY id',
        [afterId],
      ).then((list) => list.map((r) => ({ ...r }))),
    versionOf: async (key, namespace = 'ns') =>
      (await rows<{ version: number }>(sql, 'SELECT version FROM lockstep_kv WHERE namespace = ? AND `key` = ?', [namespace, key]))[0]?.version,
    tombstoneOf: async (key, namespace = 'ns') =>
      (await rows<{ version: number }>(sql, 'SELECT version FROM lockstep_tombstones WHERE namespace = ? AND `key` = ?', [namespace, key]))[0]
        ?.version,
  };
  try {
    await store.ready();
    await run(fixture);
  } finally {
    await sql.end().catch(() => undefined);
    await store.close();
    await dropDatabase(database);
  }
}

/** Wraps a mysql2 pool to log every statement the store sends (its first words, after any SET STATEMENT … FOR). */
function loggingPool(inner: mysql.Pool): { pool: MysqlPool; log: string[]; connections: () => number } {
  const log: string[] = [];
  let connections = 0;
  const words = (sql: string) => sql.replace(/^SET STATEMENT .*? FOR /s, '').trim().split(/\s+/).slice(0, 2).join(' ');
  const pool: MysqlPool = {
    async getConnection() {
      connections++;
      const connection = await inner.getConnection();
      return {
        execute(options, values) {
          log.push(words(options.sql));
          return connection.execute(options, values);
        },
        query(options) {
          log.push(words(options.sql));
          return connection.query(options);
        },
        release: () => connection.release(),
        destroy: () => connection.destroy(),
        // The same at every checkout: the store learns the server connection behind it once.
        connection: connection.connection,
      };
    },
    end: () => inner.end(),
  };
  return { pool, log, connections: () => connections };
}

interface ServerError {
  code?: string;
  errno: number;
  sqlState: string;
  sqlMessage: string;
}

async function rejection(promise: Promise<unknown>): Promise<unknown> {
  try {
    await promise;
  } catch (error) {
    return error;
  }
  assert.fail('expected a rejection');
}

function serverErrorOf(error: unknown): ServerError {
  const e = error as Partial<ServerError>;
  assert.ok(typeof e?.errno === 'number' && typeof e.sqlState === 'string' && typeof e.sqlMessage === 'string', `expected a mysql2 server error, got ${String(error)}`);
  return e as ServerError;
}

describe('MariaDB store', { skip: service.skip }, () => {
  runStoreAdapterSuite('mariadb', async () => {
    const database = await freshDatabase();
    const store = createMysqlStore({ uri: uriOf(database), poolSize: 4 });
    await store.ready(); // the tables exist before the first plain-SQL write
    const other = await connect(database);
    return {
      store,
      bypass: bypassOn(other),
      async close() {
        await other.end();
        await store.close();
        await dropDatabase(database);
      },
    };
  });

  describe('options', () => {
    it('defaults: prefix lockstep_, a 2 s statement timeout; nothing connects before first use', async () => {
      const inner = mysql.createPool({ uri: MYSQL_URL, connectionLimit: 1 });
      const { pool, connections } = loggingPool(inner);
      const store = createMysqlStore({ pool });
      assert.equal(store.name, 'mysql');
      assert.equal(store.tablePrefix, 'lockstep_');
      assert.equal(store.statementTimeoutMs, 2_000);
      assert.equal(store.pool, pool);
      assert.equal(connections(), 0);
      await store.close();
      await inner.end();
      const other = createMysqlStore({ uri: 'mariadb://nobody@127.0.0.1:1/none', statementTimeout: '750ms', tablePrefix: 'app_ls_' });
      assert.equal(other.statementTimeoutMs, 750);
      assert.equal(other.tablePrefix, 'app_ls_');
      await other.close();
    });

    it('rejects invalid options with InvalidOptionError', async () => {
      const pool = mysql.createPool({ uri: MYSQL_URL });
      const bad: unknown[] = [
        undefined,
        null,
        'mysql://x',
        {},
        { uri: '' },
        { uri: 42 },
        { uri: 'postgres://root@127.0.0.1/test' },
        { uri: MYSQL_URL, pool },
        { pool: {} },
        { pool: { getConnection: () => undefined } },
        { pool, poolSize: 3 },
        { uri: MYSQL_URL, poolSize: 0 },
        { uri: MYSQL_URL, poolSize: 2.5 },
        { uri: MYSQL_URL, poolSize: '4' },
        { uri: MYSQL_URL, tablePrefix: '' },
        { uri: MYSQL_URL, tablePrefix: 'has-dash' },
        { uri: MYSQL_URL, tablePrefix: '1digit' },
        { uri: MYSQL_URL, tablePrefix: 'back`tick' },
        { uri: MYSQL_URL, tablePrefix: 'x'.repeat(33) },
        { uri: MYSQL_URL, database: '' },
        { uri: MYSQL_URL, database: 'a`; DROP DATABASE test; --' },
        { uri: MYSQL_URL, database: 'x'.repeat(65) },
        { uri: MYSQL_URL, database: 'dot.ted' },
        { uri: MYSQL_URL, statementTimeout: 0 },
        { uri: MYSQL_URL, statementTimeout: -5 },
        { uri: MYSQL_URL, statementTimeout: 5 },
        { uri: MYSQL_URL, statementTimeout: 'soon' },
        { uri: MYSQL_URL, statementTimeout: '2d' },
      ];
      for (const options of bad) {
        assert.throws(() => createMysqlStore(options as MysqlStoreOptions), InvalidOptionError, JSON.stringify(options, (_, v) => (v === pool ? '[pool]' : v)));
      }
      for (const tablePrefix of ['x'.repeat(32), 'Mixed_Case_1', '_under']) {
        assert.equal(createMysqlStore({ pool, tablePrefix }).tablePrefix, tablePrefix);
      }
      await pool.end();
    });

    it('rounds a short deadline down to a few fixed budgets, so prepared statements are reused', () => {
      assert.equal(budgetMs(4_900, 2_000), 2_000);
      assert.equal(budgetMs(2_000, 2_000), 2_000);
      assert.equal(budgetMs(1_999, 2_000), 1_750);
      assert.equal(budgetMs(260, 2_000), 250);
      assert.equal(budgetMs(249, 2_000), 100);
      assert.equal(budgetMs(60, 2_000), 50);
      assert.equal(budgetMs(10, 2_000), 10);
      assert.equal(budgetMs(9, 2_000), undefined);
      assert.equal(budgetMs(-3, 2_000), undefined);
    });

    it('a pool without a current database and no `database` option: InvalidOptionError at first use', async () => {
      const inner = mysql.createPool({ uri: uriOf('').replace(/\/$/, ''), connectionLimit: 1 });
      const store = createMysqlStore({ pool: inner });
      try {
        await assert.rejects(store.read('ns', 'k'), InvalidOptionError);
      } finally {
        await store.close();
        await inner.end();
      }
    });
  });

  describe('schema and pools', () => {
    it('creates the schema once when several processes start at once', async () => {
      const database = await freshDatabase();
      const stores = Array.from({ length: 5 }, () => createMysqlStore({ uri: uriOf(database), poolSize: 2 }));
      try {
        const versions = await Promise.all(stores.map((store, i) => store.write('ns', `k${i}`, String(i), PLAIN)));
        assert.deepEqual(versions, Array.from({ length: 5 }, () => ({ version: 1 })));
        const objects = await rows<{ kind: string; name: string }>(
          admin!,
          `SELECT 'table' AS kind, TABLE_NAME AS name FROM information_schema.TABLES WHERE TABLE_SCHEMA = ?
           UNION ALL SELECT 'trigger', TRIGGER_NAME FROM information_schema.TRIGGERS WHERE TRIGGER_SCHEMA = ?
           UNION ALL SELECT 'function', ROUTINE_NAME FROM information_schema.ROUTINES WHERE ROUTINE_SCHEMA = ?
           ORDER BY kind, name`,
          [database, database, database],
        );
        assert.deepEqual(
          objects.map((o) => `${o.kind} ${o.name}`),
          [
            'function lockstep_delete',
            'function lockstep_own',
            'function lockstep_own',
            'function lockstep_write',
            'table lockstep_guard',
            'table lockstep_journal',
            'table lockstep_journal_lock',
            'table lockstep_kv',
            'table lockstep_meta',
            'table lockstep_tombstones',
            'trigger lockstep_journal_before_insert',
            'trigger lockstep_kv_after_delete',
            'trigger lockstep_kv_after_insert',
            'trigger lockstep_kv_after_update',
            'trigger lockstep_kv_before_insert',
            'trigger lockstep_kv_before_update',
          ],
        );
        assert.deepEqual(await rows(admin!, `SELECT id, head FROM \`${database}\`.lockstep_journal_lock`), [{ id: 1, head: 0 }]);
        // A store that starts later finds the schema complete and runs no DDL.
        const { pool, log } = loggingPool(mysql.createPool({ uri: uriOf(database), connectionLimit: 1 }));
        const late = createMysqlStore({ pool });
        await late.ready();
        assert.ok(!log.some((l) => /^CREATE|^SET SESSION|GET_LOCK/.test(l)), log.join('\n'));
        await late.close();
        await pool.end();
      } finally {
        await Promise.all(stores.map((s) => s.close()));
        await dropDatabase(database);
      }
    });

    it('keeps stores with two table prefixes in one database apart; `database` qualifies every name', async () => {
      const database = await freshDatabase();
      // The pool's default database is another one: names are qualified with `database`.
      const pool = mysql.createPool({ uri: MYSQL_URL, connectionLimit: 2 });
      const a = createMysqlStore({ pool, database, tablePrefix: 'a_' });
      const b = createMysqlStore({ pool, database, tablePrefix: 'b_' });
      try {
        assert.equal((await a.write('ns', 'k', '"a"', PLAIN)).version, 1);
        assert.equal((await a.write('ns', 'k', '"a2"', PLAIN)).version, 2);
        assert.equal((await b.write('ns', 'k', '"b"', PLAIN)).version, 1);
        assert.deepEqual(await a.read('ns', 'k'), { version: 2, payload: '"a2"' });
        assert.deepEqual(await b.read('ns', 'k'), { version: 1, payload: '"b"' });
        await rows(admin!, `UPDATE \`${database}\`.b_kv SET value = '"sql"'`);
        assert.deepEqual((await b.readJournal(0, 10)).map((r) => [r.key, r.version, r.reason]), [['k', 2, 'trigger']]);
        assert.deepEqual(await a.readJournal(0, 10), []);
        const tables = await rows<{ name: string }>(admin!, 'SELECT TABLE_NAME AS name FROM information_schema.TABLES WHERE TABLE_SCHEMA = ? ORDER BY 1', [
          database,
        ]);
        assert.equal(tables.filter((t) => t.name.startsWith('a_')).length, 6);
        assert.equal(tables.filter((t) => t.name.startsWith('b_')).length, 6);
      } finally {
        await a.close();
        await b.close();
        await pool.end();
        await dropDatabase(database);
      }
    });

    it('refuses a kv table it did not create, and functions of another schema version', async () => {
      const database = await freshDatabase();
      try {
        await rows(admin!, `CREATE TABLE \`${database}\`.lockstep_kv (namespace VARCHAR(64), \`key\` VARCHAR(64), value TEXT, PRIMARY KEY (namespace, \`key\`))`);
        const store = createMysqlStore({ uri: uriOf(database), poolSize: 1 });
        await assert.rejects(store.ready(), (e: unknown) => e instanceof InvalidOptionError && /lacks version, writer, updated_at/.test(e.message));
        await store.close();
        const other = createMysqlStore({ uri: uriOf(database), poolSize: 1, tablePrefix: 'v_' });
        await other.ready();
        await rows(admin!, `ALTER FUNCTION \`${database}\`.v_write COMMENT 'lockstep:mysql-schema:0: old'`);
        const again = createMysqlStore({ uri: uriOf(database), poolSize: 1, tablePrefix: 'v_' });
        await assert.rejects(again.ready(), (e: unknown) => e instanceof InvalidOptionError && /another schema version/.test(e.message));
        await again.close();
        await other.close();
      } finally {
        await dropDatabase(database);
      }
    });

    it('replaces the functions of schema version 1 (before conditional writes) in place', async () => {
      const database = await freshDatabase();
      try {
        const first = createMysqlStore({ uri: uriOf(database), poolSize: 1, tablePrefix: 'u_' });
        await first.write('ns', 'k', '"kept"', PLAIN);
        await first.close();
        for (const fn of ['u_write', 'u_delete']) {
          await rows(admin!, `ALTER FUNCTION \`${database}\`.${fn} COMMENT 'lockstep:mysql-schema:1: before preconditions'`);
        }
        const upgraded = createMysqlStore({ uri: uriOf(database), poolSize: 1, tablePrefix: 'u_' });
        try {
          await upgraded.ready();
          const comments = await rows<{ c: string }>(admin!, "SELECT ROUTINE_COMMENT AS c FROM information_schema.ROUTINES WHERE ROUTINE_SCHEMA = ? AND ROUTINE_TYPE = 'FUNCTION' ORDER BY 1", [database]);
          assert.deepEqual(comments.map((r) => r.c.split(':').slice(0, 3).join(':')), [MYSQL_SCHEMA_VERSION, MYSQL_SCHEMA_VERSION]);
          assert.deepEqual(await upgraded.read('ns', 'k'), { version: 1, payload: '"kept"' });
          assert.equal((await upgraded.write('ns', 'k', '"next"', { ...PLAIN, precondition: { kind: 'version', version: 1 } })).version, 2);
        } finally {
          await upgraded.close();
        }
      } finally {
        await dropDatabase(database);
      }
    });

    it('leaves an existing pool open on close(), ends a pool it created, and refuses calls after close()', async () => {
      const database = await freshDatabase();
      const pool = mysql.createPool({ uri: uriOf(database), connectionLimit: 2 });
      try {
        const borrowed = createMysqlStore({ pool });
        await borrowed.write('ns', 'k', '1', PLAIN);
        await borrowed.close();
        await borrowed.close(); // twice is fine
        assert.deepEqual(await rows(pool, 'SELECT 1 AS one'), [{ one: 1 }], 'the pool passed in is still open');
        await assert.rejects(borrowed.read('ns', 'k'), ClosedError);
        await assert.rejects(borrowed.write('ns', 'k', '2', PLAIN), ClosedError);
        const owned = createMysqlStore({ uri: uriOf(database), poolSize: 1 });
        await owned.ping();
        await owned.close();
        await assert.rejects((owned.pool as unknown as mysql.Pool).query('SELECT 1'), /Pool is closed/);
        await assert.rejects(owned.ping(), ClosedError);
      } finally {
        await pool.end();
        await dropDatabase(database);
      }
    });
  });

  describe('round trips', () => {
    it('a write (new key or existing), a journaled write, a delete and a read are one statement each', async () => {
      const database = await freshDatabase();
      const inner = mysql.createPool({ uri: uriOf(database), connectionLimit: 1 });
      const { pool, log } = loggingPool(inner);
      const store = createMysqlStore({ pool });
      try {
        await store.ready();
        const measure = async (op: () => Promise<unknown>) => {
          log.length = 0;
          await op();
          return [...log];
        };
        // A connection's first checkout also learns the server connection behind it (to settle a write
        // given up on: mysql-settle.ts), once; the connection that created the schema was destroyed.
        assert.deepEqual(await measure(() => store.write('ns', 'k', '1', PLAIN)), ['SELECT ID,', 'SELECT `' + database + '`.`lockstep_own`.`write`(?,']);
        assert.deepEqual(await measure(() => store.write('ns', 'k', '2', PLAIN)), ['SELECT `' + database + '`.`lockstep_own`.`write`(?,']);
        assert.equal((await measure(() => store.write('ns', 'k', '3', JOURNALED))).length, 1);
        assert.equal((await measure(() => store.delete('ns', 'k', PLAIN))).length, 1);
        assert.equal((await measure(() => store.delete('ns', 'k', JOURNALED))).length, 1);
        assert.equal((await measure(() => store.read('ns', 'k'))).length, 1);
        assert.equal((await measure(() => store.appendJournal('ns', 'k', 9, 'repair'))).length, 1);
        // The server agrees: one client statement per write, and no new PREPARE once warm (one connection).
        // A re-prepare is the server's own (another session's DDL on any routine or table invalidates
        // the statement's metadata; CI's other files run DDL meanwhile): it counts in COM_STMT_PREPARE
        // too, so the client's prepares are PREPARE minus REPREPARE.
        const status = async () => {
          const list = await rows<{ name: string; value: string }>(
            inner,
            "SELECT VARIABLE_NAME AS name, VARIABLE_VALUE AS value FROM information_schema.SESSION_STATUS WHERE VARIABLE_NAME IN ('QUESTIONS', 'COM_STMT_PREPARE', 'COM_STMT_REPREPARE')",
          );
          return Object.fromEntries(list.map((r) => [r.name, Number(r.value)]));
        };
        await store.write('ns', 'warm', '0', PLAIN);
        const before = await status();
        for (let i = 0; i < 20; i++) await store.write('ns', 'warm', String(i), PLAIN);
        const afterWrites = await status();
        assert.equal(afterWrites.QUESTIONS! - before.QUESTIONS!, 20 + 1, 'twenty writes, plus the status query itself');
        const clientPrepares = (counts: Record<string, number>) => counts.COM_STMT_PREPARE! - counts.COM_STMT_REPREPARE!;
        assert.equal(clientPrepares(afterWrites), clientPrepares(before), 'the write statement was prepared once');
      } finally {
        await store.close();
        await inner.end();
        await dropDatabase(database);
      }
    });
  });

  describe('versions under concurrency', () => {
    it('200 concurrent writes of one key over 8 connections: versions 1..200, the last one kept', () =>
      withStore(
        async ({ store, journal }) => {
          const results = await Promise.all(Array.from({ length: 200 }, (_, i) => store.write('ns', 'hot', String(i), PLAIN)));
          const versions = results.map((r) => r.version).sort((a, b) => a - b);
          assert.deepEqual(versions, Array.from({ length: 200 }, (_, i) => i + 1));
          const winner = results.findIndex((r) => r.version === 200);
          assert.deepEqual(await store.read('ns', 'hot'), { version: 200, payload: String(winner) });
          assert.deepEqual(await journal(), []);
        },
        { poolSize: 8 },
      ));

    it('creates, deletes and deletes of a missing key racing on new keys: distinct versions per key, the highest one is the state', () =>
      withStore(
        async ({ store, tombstoneOf }) => {
          const ops = Array.from({ length: 240 }, (_, i) => ({ key: `k${i % 6}`, del: i % 3 === 1, payload: String(i) }));
          const results = await Promise.all(
            ops.map(async (op) => (op.del ? (await store.delete('race', op.key, PLAIN)).version : (await store.write('race', op.key, op.payload, PLAIN)).version)),
          );
          for (const key of new Set(ops.map((o) => o.key))) {
            const mine = ops.map((o, i) => ({ ...o, version: results[i]! })).filter((o) => o.key === key);
            assert.equal(new Set(mine.map((o) => o.version)).size, mine.length, `distinct versions for ${key}`);
            const last = mine.reduce((a, b) => (b.version > a.version ? b : a));
            const read = await store.read('race', key);
            if (last.del) {
              assert.equal(read, undefined, `${key} ends deleted`);
              assert.equal(await tombstoneOf(key, 'race'), last.version);
            } else {
              assert.deepEqual(read, { version: last.version, payload: last.payload });
              assert.equal(await tombstoneOf(key, 'race'), undefined, 'a live key keeps no tombstone');
            }
          }
        },
        { poolSize: 8 },
      ));

    it('bypass INSERTs racing deletes of the missing key: distinct versions, the later one above', () =>
      withStore(
        async ({ store, database, journal }) => {
          const others = await Promise.all(Array.from({ length: 4 }, () => connect(database)));
          try {
            for (let round = 0; round < 15; round++) {
              const key = `r${round}`;
              await store.delete('ns', key, PLAIN);
              const [deleted, inserted] = await Promise.all([
                store.delete('ns', key, PLAIN),
                others[round % 4]!.execute('INSERT INTO lockstep_kv (namespace, `key`, value) VALUES (?, ?, ?)', ['ns', key, '"sql"']).then(
                  async () => (await journal()).filter((r) => r.key === key).at(-1)!.version,
                ),
              ]);
              assert.notEqual(deleted.version, inserted);
              const read = await store.read('ns', key);
              if (inserted > deleted.version) assert.deepEqual(read, { version: inserted, payload: '"sql"' });
              else assert.equal(read, undefined, 'the delete came after the insert: it removed the row');
            }
          } finally {
            await Promise.all(others.map((o) => o.end()));
          }
        },
        { poolSize: 4 },
      ));
  });

  describe('plain-SQL writes the triggers must catch', () => {
    it('an UPDATE that bumps version itself, or sets it back, still goes up by exactly one', () =>
      withStore(async ({ store, sql, journal }) => {
        const v = (await store.write('ns', 'k', '1', PLAIN)).version;
        await sql.query("UPDATE lockstep_kv SET version = version + 1 WHERE `key` = 'k'");
        await sql.query("UPDATE lockstep_kv SET version = 1, value = '2' WHERE `key` = 'k'");
        await sql.query("UPDATE lockstep_kv SET version = 999 WHERE `key` = 'k'");
        assert.deepEqual((await journal()).map((r) => r.version), [v + 1, v + 2, v + 3]);
        assert.deepEqual(await store.read('ns', 'k'), { version: v + 3, payload: '2' });
      }));

    it('an INSERT with a version or a writer of its own still gets 1 + tombstone and is journaled; only the exact marker is Lockstep', () =>
      withStore(async ({ store, sql, journal }) => {
        await store.write('ns', 'k', '1', PLAIN);
        const deleted = (await store.delete('ns', 'k', PLAIN)).version;
        await sql.query("INSERT INTO lockstep_kv (namespace, `key`, value, version, writer) VALUES ('ns', 'k', '\"x\"', 1000, 'lockstep')");
        await sql.query("INSERT INTO lockstep_kv (namespace, `key`, value, version) SELECT namespace, 'copy', value, version FROM lockstep_kv WHERE `key` = 'k'");
        assert.deepEqual(
          (await journal()).map((r) => [r.key, r.version]),
          [
            ['k', deleted + 1],
            ['copy', 1],
          ],
        );
        const [row] = await rows<{ writer: string | null }>(sql, "SELECT writer FROM lockstep_kv WHERE `key` = 'k'");
        assert.equal(row!.writer, null, 'a plain-SQL write leaves writer NULL');
        await store.write('ns', 'k', '2', PLAIN);
        const [again] = await rows<{ writer: string | null }>(sql, "SELECT writer FROM lockstep_kv WHERE `key` = 'k'");
        assert.equal(again!.writer, 'lockstep', 'no committed row holds a marker');
      }));

    it('INSERT IGNORE on a live key changes nothing and journals nothing; ON DUPLICATE KEY UPDATE journals once', () =>
      withStore(async ({ store, sql, journal, tombstoneOf }) => {
        const v = (await store.write('ns', 'k', '1', PLAIN)).version;
        await sql.query("INSERT IGNORE INTO lockstep_kv (namespace, `key`, value) VALUES ('ns', 'k', '2')");
        assert.deepEqual(await store.read('ns', 'k'), { version: v, payload: '1' });
        assert.deepEqual(await journal(), []);
        assert.ok(((await tombstoneOf('k')) ?? 0) <= v, 'a leftover anchor is never above the row');
        await sql.query("INSERT INTO lockstep_kv (namespace, `key`, value) VALUES ('ns', 'k', '3') ON DUPLICATE KEY UPDATE value = VALUES(value)");
        assert.deepEqual((await journal()).map((r) => [r.key, r.version]), [['k', v + 1]]);
        // Lockstep's delete and re-create go on above everything.
        const d = await store.delete('ns', 'k', PLAIN);
        assert.deepEqual(d, { version: v + 2, existed: true });
        assert.equal((await store.write('ns', 'k', '4', PLAIN)).version, v + 3);
      }));

    it('REPLACE of a live key: deleted and re-inserted above it, both journaled', () =>
      withStore(async ({ store, sql, journal }) => {
        const v = (await store.write('ns', 'k', '1', PLAIN)).version;
        await sql.query("REPLACE INTO lockstep_kv (namespace, `key`, value) VALUES ('ns', 'k', '\"replaced\"')");
        assert.deepEqual((await journal()).map((r) => [r.key, r.version]), [['k', v + 1], ['k', v + 2]]);
        assert.deepEqual(await store.read('ns', 'k'), { version: v + 2, payload: '"replaced"' });
        await sql.query("REPLACE INTO lockstep_kv (namespace, `key`, value) VALUES ('ns', 'new', '1')");
        assert.deepEqual(await store.read('ns', 'new'), { version: 1, payload: '1' });
      }));

    it('a REPLACE in a transaction whose snapshot is older still lands above the latest version (triggers read current rows)', () =>
      withStore(async ({ store, database, journal }) => {
        await store.write('ns', 'k', '1', PLAIN);
        const t = await connect(database);
        try {
          await t.query('START TRANSACTION WITH CONSISTENT SNAPSHOT'); // REPEATABLE READ: its reads see this moment
          assert.deepEqual(await rows(t, "SELECT version FROM lockstep_kv WHERE namespace = 'ns' AND `key` = 'k'"), [{ version: 1 }]);
          for (let i = 0; i < 3; i++) await store.write('ns', 'k', String(i), PLAIN);
          await t.query("REPLACE INTO lockstep_kv (namespace, `key`, value) VALUES ('ns', 'k', '\"replaced\"')");
          await t.query('COMMIT');
          assert.deepEqual((await journal()).map((r) => [r.key, r.version]), [['k', 5], ['k', 6]]);
          assert.deepEqual(await store.read('ns', 'k'), { version: 6, payload: '"replaced"' });
        } finally {
          await t.end();
        }
      }));

    it('refuses to commit a row at or below its tombstone (the invariant guard), with SQLSTATE 45000', () =>
      withStore(async ({ store, sql }) => {
        // Only a hand-made change can get there: a trigger that computes no version.
        await sql.query('DROP TRIGGER lockstep_kv_before_insert');
        await store.delete('ns', 'k', PLAIN);
        const error = serverErrorOf(await rejection(sql.query("INSERT INTO lockstep_kv (namespace, `key`, value, version) VALUES ('ns', 'k', '1', 1)")));
        assert.equal(error.sqlState, '45000');
        assert.match(error.sqlMessage, /at or below its key's tombstone/);
        assert.equal(await store.read('ns', 'k'), undefined);
      }));

    it('a multi-row UPDATE in a transaction: each row its own version and journal row', () =>
      withStore(async ({ store, sql, journal }) => {
        for (const key of ['a', 'b', 'c']) await store.write('ns', key, '1', PLAIN);
        await store.write('ns', 'b', '2', PLAIN);
        await sql.query('START TRANSACTION');
        await sql.query("UPDATE lockstep_kv SET value = CONCAT(value, '0') WHERE namespace = 'ns'");
        await sql.query('COMMIT');
        assert.deepEqual((await journal()).map((r) => [r.key, r.version]), [['a', 2], ['b', 3], ['c', 2]]);
      }));

    it("a rename journals both keys, continues above the new key's tombstone and tombstones the old key", () =>
      withStore(async ({ store, sql, journal, tombstoneOf }) => {
        await store.write('ns', 'old', '1', PLAIN);
        for (let i = 0; i < 4; i++) await store.write('ns', 'new', String(i), PLAIN);
        const gone = (await store.delete('ns', 'new', PLAIN)).version; // 5
        await sql.query("UPDATE lockstep_kv SET `key` = 'new' WHERE `key` = 'old'");
        assert.deepEqual(
          (await journal()).map((r) => [r.key, r.version]),
          [
            ['new', gone + 1],
            ['old', gone + 1],
          ],
        );
        assert.equal(await tombstoneOf('new'), undefined);
        assert.equal(await tombstoneOf('old'), gone + 1);
        assert.equal((await store.write('ns', 'old', '"back"', PLAIN)).version, gone + 2);
      }));

    it('an INSERT, UPDATE and DELETE of one key in one transaction: each journaled, the tombstone kept', () =>
      withStore(async ({ store, sql, journal, tombstoneOf }) => {
        await sql.query('START TRANSACTION');
        await sql.query("INSERT INTO lockstep_kv (namespace, `key`, value) VALUES ('ns', 't', '1')");
        await sql.query("UPDATE lockstep_kv SET value = '2' WHERE `key` = 't'");
        await sql.query("DELETE FROM lockstep_kv WHERE `key` = 't'");
        await sql.query('COMMIT');
        assert.deepEqual((await journal()).map((r) => [r.key, r.version]), [['t', 1], ['t', 2], ['t', 3]]);
        assert.equal(await tombstoneOf('t'), 3);
        assert.equal((await store.write('ns', 't', '4', PLAIN)).version, 4);
      }));

    it('keeps scan order in bytes (VARBINARY keys), trailing spaces and case significant', () =>
      withStore(async ({ store }) => {
        const keys = ['b', 'B', 'a ', 'a', 'é', 'z', '~', '\u00ff', '🔑', 'a\u0000'];
        for (const key of keys) await store.write('scan', key, '1', PLAIN);
        const scanned = (await store.scan('scan', undefined, 100)).map((r) => r.key);
        assert.deepEqual(scanned, [...keys].sort((x, y) => Buffer.compare(Buffer.from(x), Buffer.from(y))));
        assert.equal(new Set(scanned).size, keys.length, "'a' and 'a ' are different keys");
      }));

    it('a key longer than 512 bytes fails cleanly with the server error intact', () =>
      withStore(async ({ store }) => {
        const error = serverErrorOf(await rejection(store.write('ns', 'x'.repeat(513), '1', PLAIN)));
        assert.equal(error.code, 'ER_DATA_TOO_LONG');
        assert.equal(error.errno, 1406);
        assert.equal(error.sqlState, '22001');
        assert.match(error.sqlMessage, /p_key/);
        assert.equal((await store.write('ns', 'x'.repeat(512), '1', PLAIN)).version, 1, '512 bytes fit');
      }));

    it('pruneJournal also prunes old tombstones, and keeps newer ones', () =>
      withStore(async ({ store, sql, tombstoneOf }) => {
        await store.write('ns', 'a', '1', JOURNALED);
        await store.delete('ns', 'a', PLAIN);
        await store.delete('ns', 'b', JOURNALED);
        await sql.query("UPDATE lockstep_tombstones SET deleted_at = deleted_at - 3600000 WHERE `key` = 'a'");
        await sql.query("UPDATE lockstep_journal SET created_at = created_at - 3600000 WHERE `key` = 'a'");
        assert.equal(await store.pruneJournal(Date.now() - 60_000), 1);
        assert.equal(await tombstoneOf('a'), undefined);
        assert.equal(await tombstoneOf('b'), 1);
        assert.deepEqual((await store.readJournal(0, 10)).map((r) => r.key), ['b']);
      }));

    it(
      'writes from the mariadb CLI, another process: INSERT, UPDATE, SET version = version + 1, rename, DELETE',
      { skip: cli.status !== 0 && 'the mariadb client is not on PATH' },
      () =>
        withStore(async ({ store, database, journal }) => {
          const w = (await store.write('ns', 'k', '"lockstep"', PLAIN)).version;
          const url = new URL(MYSQL_URL);
          const args = ['-h', url.hostname, '-P', url.port || '3306', '-u', decodeURIComponent(url.username || 'root'), database, '-e'];
          if (url.password) args.unshift(`-p${decodeURIComponent(url.password)}`);
          const script = [
            "INSERT INTO lockstep_kv (namespace, `key`, value) VALUES ('ns', 'new', '\"cli\"');",
            "UPDATE lockstep_kv SET value = '\"cli\"' WHERE namespace = 'ns' AND `key` = 'k';",
            "UPDATE lockstep_kv SET version = version + 1 WHERE namespace = 'ns' AND `key` = 'k';",
            "UPDATE lockstep_kv SET `key` = 'renamed' WHERE namespace = 'ns' AND `key` = 'new';",
            "DELETE FROM lockstep_kv WHERE namespace = 'ns' AND `key` = 'renamed';",
          ].join(' ');
          await promisify(execFile)('mariadb', [...args, script], { timeout: 20_000 });
          assert.deepEqual(
            (await journal()).map((r) => [r.key, r.version, r.reason]),
            [
              ['new', 1, 'trigger'],
              ['k', w + 1, 'trigger'],
              ['k', w + 2, 'trigger'],
              ['renamed', 2, 'trigger'],
              ['new', 2, 'trigger'],
              ['renamed', 3, 'trigger'],
            ],
          );
          assert.deepEqual(await store.read('ns', 'k'), { version: w + 2, payload: '"cli"' });
          assert.equal(await store.read('ns', 'renamed'), undefined);
          assert.equal(await store.read('ns', 'new'), undefined);
        }),
    );
  });

  describe('journal ids in commit order', () => {
    it('a transaction that journals first and commits last holds back the next one: its row is never skipped', () =>
      withStore(async ({ store, database }) => {
        await store.write('ns', 'early', '1', PLAIN);
        await store.write('ns', 'late', '1', PLAIN);
        const t1 = await connect(database);
        const t2 = await connect(database);
        try {
          await t1.query('START TRANSACTION');
          await t1.query("UPDATE lockstep_kv SET value = '2' WHERE namespace = 'ns' AND `key` = 'early'"); // journals first
          await t2.query('START TRANSACTION');
          let t2Done = false;
          const second = t2.query("UPDATE lockstep_kv SET value = '2' WHERE namespace = 'ns' AND `key` = 'late'").then(() => (t2Done = true));
          await sleep(300);
          assert.equal(t2Done, false, 'the second journaling transaction waits for the first one to end');
          assert.deepEqual(await store.readJournal(0, 100), [], 'nothing is visible yet');
          await t1.query('COMMIT');
          await second;
          const first = await store.readJournal(0, 100);
          assert.deepEqual(first.map((r) => r.key), ['early'], 'the drainer sees the first commit');
          const cursor = first.at(-1)!.id;
          await t2.query('COMMIT');
          const next = await store.readJournal(cursor, 100);
          assert.deepEqual(next.map((r) => r.key), ['late'], 'the later commit is above the cursor');
          assert.equal(next[0]!.id, cursor + 1);
          assert.equal(await store.journalHead(), next[0]!.id);
        } finally {
          await t1.end();
          await t2.end();
        }
      }));

    it('teeth: with ids drawn at INSERT (AUTO_INCREMENT, no lock), the lower id commits later and the drainer skips it', () =>
      withStore(async ({ store, database, sql }) => {
        await sql.query('DROP TRIGGER lockstep_journal_before_insert');
        await store.write('ns', 'early', '1', PLAIN);
        await store.write('ns', 'late', '1', PLAIN);
        const t1 = await connect(database);
        try {
          await t1.query('START TRANSACTION');
          await t1.query("UPDATE lockstep_kv SET value = '2' WHERE namespace = 'ns' AND `key` = 'early'");
          await sql.query("UPDATE lockstep_kv SET value = '2' WHERE namespace = 'ns' AND `key` = 'late'");
          const seen = await store.readJournal(0, 100);
          assert.deepEqual(seen.map((r) => r.key), ['late']);
          await t1.query('COMMIT');
          const all = await store.readJournal(0, 100);
          assert.deepEqual(all.map((r) => r.key), ['early', 'late'], 'early holds the lower id but committed later');
          assert.deepEqual(await store.readJournal(seen.at(-1)!.id, 100), [], 'a drainer past "late" never sees "early"');
        } finally {
          await t1.end();
        }
      }));

    it('a drainer polling during many concurrent journaling transactions and repair writes never skips a row', () =>
      withStore(
        async ({ store, database }) => {
          const writers = 5;
          const each = 10;
          for (let i = 0; i < writers; i++) await store.write('ns', `k${i}`, '0', PLAIN);
          const connections = await Promise.all(Array.from({ length: writers }, () => connect(database)));
          const seen: number[] = [];
          let cursor = await store.journalHead();
          let running = true;
          const drainer = (async () => {
            while (running) {
              const page = await store.readJournal(cursor, 7);
              for (const row of page) seen.push(row.id);
              if (page.length > 0) cursor = page.at(-1)!.id;
              else await sleep(1);
            }
          })();
          try {
            await Promise.all([
              ...connections.map(async (connection, i) => {
                for (let n = 0; n < each; n++) {
                  await connection.query('START TRANSACTION');
                  await connection.query("UPDATE lockstep_kv SET value = ? WHERE namespace = 'ns' AND `key` = ?", [String(n), `k${i}`]);
                  await connection.query('DO SLEEP(?)', [Math.random() * 0.01]);
                  await connection.query('COMMIT');
                }
              }),
              (async () => {
                for (let n = 0; n < each; n++) await store.write('ns', `repair${n % 3}`, String(n), JOURNALED);
              })(),
            ]);
          } finally {
            running = false;
            await drainer;
            await Promise.all(connections.map((c) => c.end()));
          }
          for (;;) {
            const page = await store.readJournal(cursor, 100);
            if (page.length === 0) break;
            seen.push(...page.map((r) => r.id));
            cursor = page.at(-1)!.id;
          }
          const all = (await store.readJournal(0, 10_000)).map((r) => r.id);
          assert.equal(all.length, writers * each + each);
          assert.deepEqual(seen, all, 'the drainer saw every row, once, in id order');
          assert.deepEqual(all, Array.from({ length: all.length }, (_, i) => i + 1), 'ids have no gaps');
        },
        { poolSize: 4 },
      ));
  });

  describe('timeouts, lost connections and driver errors', () => {
    /** Holds the row lock of ns/k on a connection of its own until release() is called. */
    async function holdRow(database: string, key = 'k') {
      const holder = await connect(database);
      await holder.query('START TRANSACTION');
      await holder.query("UPDATE lockstep_kv SET value = 'held' WHERE namespace = 'ns' AND `key` = ?", [key]);
      return {
        async release() {
          await holder.query('ROLLBACK');
          await holder.end();
        },
      };
    }

    it('a lock wait past the statement timeout fails cleanly with ER_STATEMENT_TIMEOUT, and nothing is committed', () =>
      withStore(
        async ({ store, database, journal }) => {
          const v = (await store.write('ns', 'k', '1', PLAIN)).version;
          const held = await holdRow(database);
          try {
            const started = performance.now();
            for (const attempt of [() => store.write('ns', 'k', '2', JOURNALED), () => store.delete('ns', 'k', JOURNALED)]) {
              const error = await rejection(attempt());
              assert.ok(!(error instanceof StoreOutcomeUnknownError), 'a timeout is a clean failure');
              const e = serverErrorOf(error);
              assert.equal(e.errno, 1969);
              assert.equal(e.sqlState, '70100');
              assert.match(e.sqlMessage, /max_statement_time/);
            }
            const elapsed = performance.now() - started;
            assert.ok(elapsed > 2 * 250 && elapsed < 2 * 1500, `two waits of about 300 ms (${Math.round(elapsed)} ms)`);
          } finally {
            await held.release();
          }
          assert.deepEqual(await store.read('ns', 'k'), { version: v, payload: '1' });
          assert.deepEqual(await journal(), []);
          assert.equal((await store.write('ns', 'k', '3', PLAIN)).version, v + 1);
        },
        { statementTimeout: '300ms' },
      ));

    it('a deadline below the statement timeout caps that write only', () =>
      withStore(async ({ store, database }) => {
        await store.write('ns', 'k', '1', PLAIN);
        const held = await holdRow(database);
        try {
          const started = performance.now();
          const error = serverErrorOf(await rejection(store.write('ns', 'k', '2', { journal: false, deadlineMs: 400 })));
          const elapsed = performance.now() - started;
          assert.equal(error.errno, 1969);
          assert.ok(elapsed >= 240 && elapsed < 1_500, `ended near its 250 ms budget (${Math.round(elapsed)} ms)`);
          await assert.rejects(store.write('ns', 'k', '2', { journal: false, deadlineMs: 5 }), /deadline \(5 ms\) ran out/);
        } finally {
          await held.release();
        }
        assert.equal((await store.read('ns', 'k'))?.payload, '1');
      }));

    it('a connection killed during a write: StoreOutcomeUnknownError with the mysql2 error as cause', () =>
      withStore(async ({ store, database }) => {
        await store.write('ns', 'k', '1', PLAIN);
        const held = await holdRow(database);
        try {
          const pending = rejection(store.write('ns', 'k', '2', PLAIN));
          let id: number | undefined;
          for (let i = 0; i < 100 && id === undefined; i++) {
            await sleep(20);
            const [found] = await rows<{ ID: number }>(
              admin!,
              // The function's current statement shows: its UPDATE of the held row.
              "SELECT ID FROM information_schema.PROCESSLIST WHERE DB = ? AND COMMAND = 'Execute' AND INFO LIKE 'UPDATE %lockstep_kv%'",
              [database],
            );
            id = found?.ID;
          }
          assert.ok(id !== undefined, 'found the waiting write');
          await admin!.query(`KILL CONNECTION ${Number(id)}`);
          const error = await pending;
          assert.ok(error instanceof StoreOutcomeUnknownError, `expected StoreOutcomeUnknownError, got ${String(error)}`);
          assert.equal(error.code, 'E_STORE_OUTCOME_UNKNOWN');
          assert.equal((error.cause as { code?: string }).code, 'PROTOCOL_CONNECTION_LOST');
        } finally {
          await held.release();
        }
        // The store goes on with a new connection; the killed write did not commit.
        assert.equal((await store.read('ns', 'k'))?.payload, '1');
        assert.equal((await store.write('ns', 'k', '3', PLAIN)).version, 2);
      }));

    it("keeps the database's error intact: code, errno, sqlState, sqlMessage", () =>
      withStore(async ({ store, sql }) => {
        await store.write('ns', 'k', '1', PLAIN);
        await sql.query('DROP TABLE lockstep_guard, lockstep_journal'); // the guard's foreign key refuses the journal's alone
        const error = await rejection(store.readJournal(0, 10));
        const e = serverErrorOf(error);
        assert.equal(e.code, 'ER_NO_SUCH_TABLE');
        assert.equal(e.errno, 1146);
        assert.equal(e.sqlState, '42S02');
        assert.match(e.sqlMessage, /lockstep_journal/);
        const journaled = serverErrorOf(await rejection(store.write('ns', 'k', '2', JOURNALED)));
        assert.equal(journaled.errno, 1146, 'a journaled write fails whole');
        assert.deepEqual(await store.read('ns', 'k'), { version: 1, payload: '1' }, 'and commits nothing');
      }));

    it('an unreachable server fails cleanly (nothing was sent), not as an unknown outcome', async () => {
      const store = createMysqlStore({ uri: 'mysql://root@127.0.0.1:1/none', poolSize: 1 });
      try {
        const error = await rejection(store.write('ns', 'k', '1', PLAIN));
        assert.ok(!(error instanceof StoreOutcomeUnknownError));
        assert.equal((error as { code?: string }).code, 'ECONNREFUSED');
      } finally {
        await store.close();
      }
    });
  });
});
