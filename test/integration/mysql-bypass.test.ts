// Plain SQL that bypasses Lockstep on MariaDB, against the store + a memory cache + the journal
// drainer: every write made in another session (in MariaDB's default REPEATABLE READ, with a
// snapshot older than Lockstep's latest write or delete, through upserts, REPLACE, renames, XA,
// savepoints, TRUNCATE) must, once committed and drained, be what a read returns: never the value
// or absence the cache held before it, never a version at or below a delete it could not see.
// Each test works in a database of its own (lockstep_test_<random>), dropped afterwards.
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { after, describe, it } from 'node:test';
import { Readable } from 'node:stream';
import mysql from 'mysql2/promise';
import { createMemoryCache } from '../../src/cache/memory.js';
import { createWriteThrough, type WriteThrough } from '../../src/compose/write-through.js';
import { InvalidOptionError } from '../../src/errors.js';
import { createMysqlStore, type MysqlPool, type MysqlStore } from '../../src/store/mysql.js';
import { MYSQL_TRIGGERS_VERSION } from '../../src/store/mysql-schema.js';
import { mysqlSchemaV2Ddl } from '../helpers/mysql-schema-v2.js';
import { MYSQL_URL, needService } from '../helpers/services.js';

const service = await needService('MariaDB', MYSQL_URL);
const admin = service.skip ? undefined : mysql.createPool({ uri: MYSQL_URL, connectionLimit: 2 });
after(() => admin?.end());

function uriOf(database: string): string {
  const url = new URL(MYSQL_URL);
  url.pathname = `/${database}`;
  return url.toString();
}

interface Fixture {
  store: MysqlStore;
  engine: WriteThrough<string>;
  database: string;
  /** Plain SQL, as another application would write it: its own connection, default isolation. */
  sql: mysql.Connection;
  /** Another plain-SQL connection. */
  connect: () => Promise<mysql.Connection>;
  /** Drains the journal, then reads through the engine (cache first). */
  readAfterDrain: (key: string) => Promise<string | undefined>;
  stored: (key: string) => Promise<{ version: number; payload: string } | undefined>;
}

async function withEngine(run: (f: Fixture) => Promise<void>, { v2 = false } = {}): Promise<void> {
  const database = `lockstep_test_${randomBytes(6).toString('hex')}`;
  await admin!.query(`CREATE DATABASE \`${database}\``);
  // The schema as the previous release (schema 2) left it: the current store upgrades it on open.
  if (v2) for (const statement of mysqlSchemaV2Ddl(database, 'lockstep_').ddl) await admin!.query(statement);
  const store = createMysqlStore({ uri: uriOf(database), poolSize: 3 });
  const engine = createWriteThrough<string>({
    store,
    cache: createMemoryCache({ maxEntries: 1000 }),
    namespace: 'ns',
    journal: { pollInterval: '1h' }, // drained by hand: the drain bound is "after drainJournal()"
    metrics: false,
  });
  const opened: mysql.Connection[] = [];
  const connect = async () => {
    const c = await mysql.createConnection({ uri: uriOf(database) });
    opened.push(c);
    return c;
  };
  try {
    await store.ready();
    const sql = await connect();
    await run({
      store,
      engine,
      database,
      sql,
      connect,
      readAfterDrain: async (key) => {
        await engine.drainJournal();
        return engine.read(key);
      },
      stored: (key) => store.read('ns', key),
    });
  } finally {
    for (const c of opened) await c.end().catch(() => undefined);
    await engine.close();
    await store.close();
    await admin!.query(`DROP DATABASE IF EXISTS \`${database}\``);
  }
}

/** Caches `key` as written by Lockstep, then deletes it through Lockstep and caches its absence. */
async function cachedAbsence(engine: WriteThrough<string>, key: string): Promise<void> {
  await engine.write(key, 'lockstep');
  assert.equal(await engine.read(key), 'lockstep');
  await engine.delete(key);
  assert.equal(await engine.read(key), undefined);
  assert.equal(await cachedVersion(engine, key) !== undefined, true, 'the absence is cached');
}

/** The version of the value or tombstone the cache holds for `key`. */
async function cachedVersion(engine: WriteThrough<string>, key: string): Promise<number | undefined> {
  const { cache } = await engine.inspect(key);
  return cache?.kind === 'value' ? cache.version : undefined;
}

/** The error `promise` rejects with, or undefined when it resolves. */
function failure(promise: Promise<unknown>): Promise<{ errno?: number } | undefined> {
  return promise.then(
    () => undefined,
    (error: unknown) => error as { errno?: number },
  );
}

const INSERTS: Record<string, string> = {
  INSERT: "INSERT INTO lockstep_kv (namespace, `key`, value) VALUES ('ns', 'k', '\"plain\"')",
  'INSERT … ON DUPLICATE KEY UPDATE': "INSERT INTO lockstep_kv (namespace, `key`, value) VALUES ('ns', 'k', '\"plain\"') ON DUPLICATE KEY UPDATE value = VALUES(value)",
  REPLACE: "REPLACE INTO lockstep_kv (namespace, `key`, value) VALUES ('ns', 'k', '\"plain\"')",
  'INSERT IGNORE': "INSERT IGNORE INTO lockstep_kv (namespace, `key`, value) VALUES ('ns', 'k', '\"plain\"')",
  'INSERT … SELECT': "INSERT INTO lockstep_kv (namespace, `key`, value) SELECT 'ns', 'k', '\"plain\"' FROM DUAL",
  'a rename (UPDATE of the key column)': "UPDATE lockstep_kv SET `key` = 'k', value = '\"plain\"' WHERE namespace = 'ns' AND `key` = 'src'",
};

describe('MariaDB: plain SQL that bypasses Lockstep', { skip: service.skip }, () => {
  describe('REPEATABLE READ (the default) with a snapshot older than a Lockstep delete: the re-created key goes above the delete', () => {
    for (const [name, statement] of Object.entries(INSERTS)) {
      for (const seen of ['the row it saw', 'no row (taken before the key existed)']) {
        it(`${name}, the snapshot showing ${seen}`, () =>
          withEngine(async ({ engine, sql, readAfterDrain, stored }) => {
            await engine.write('src', 'source');
            const [[{ iso }]] = (await sql.query('SELECT @@tx_isolation AS iso')) as unknown as [[{ iso: string }]];
            assert.equal(iso, 'REPEATABLE-READ', "the server's default");
            if (seen.startsWith('no row')) {
              await sql.query('START TRANSACTION WITH CONSISTENT SNAPSHOT');
              await cachedAbsence(engine, 'k');
            } else {
              await engine.write('k', 'lockstep');
              await sql.query('START TRANSACTION WITH CONSISTENT SNAPSHOT');
              assert.equal(((await sql.query("SELECT value FROM lockstep_kv WHERE `key` = 'k'")) as unknown as [unknown[]])[0].length, 1);
              await engine.delete('k');
              assert.equal(await engine.read('k'), undefined);
            }
            const deleted = (await cachedVersion(engine, 'k'))!;
            assert.ok(deleted > 0, 'the delete is cached');
            await sql.query(statement);
            await sql.query('COMMIT');
            const row = await stored('k');
            assert.equal(row?.payload, '"plain"');
            assert.ok(row!.version > deleted, `version ${row!.version} above the delete at ${deleted}`);
            assert.equal(await readAfterDrain('k'), 'plain');
          }));
      }
    }

    it('a multi-row DELETE whose snapshot predates Lockstep overwrites: every key drops out of the cache', () =>
      withEngine(async ({ engine, sql, readAfterDrain }) => {
        for (const key of ['a', 'b', 'c']) await engine.write(key, '1');
        await sql.query('START TRANSACTION WITH CONSISTENT SNAPSHOT');
        await sql.query("SELECT * FROM lockstep_kv WHERE namespace = 'ns'");
        for (const key of ['a', 'b', 'c']) {
          await engine.write(key, '2');
          assert.equal(await engine.read(key), '2');
        }
        await sql.query("DELETE FROM lockstep_kv WHERE namespace = 'ns' AND `key` IN ('a', 'b', 'c')");
        await sql.query('COMMIT');
        for (const key of ['a', 'b', 'c']) assert.equal(await readAfterDrain(key), undefined, key);
      }));

    it('an UPDATE … SET value = value-based expression (a read-modify-write) uses the latest row, and is drained', () =>
      withEngine(async ({ engine, sql, readAfterDrain }) => {
        await engine.write('k', 'a');
        await sql.query('START TRANSACTION WITH CONSISTENT SNAPSHOT');
        await sql.query("SELECT value FROM lockstep_kv WHERE `key` = 'k'");
        await engine.write('k', 'b');
        assert.equal(await engine.read('k'), 'b');
        await sql.query("UPDATE lockstep_kv SET value = CONCAT(LEFT(value, CHAR_LENGTH(value) - 1), '+\"') WHERE `key` = 'k'");
        await sql.query('COMMIT');
        assert.equal(await readAfterDrain('k'), 'b+');
      }));
  });

  describe('transactions: XA, savepoints, statement options, sql_mode', () => {
    it('an XA transaction, prepared then committed, is versioned and drained', () =>
      withEngine(async ({ engine, sql, readAfterDrain }) => {
        await engine.write('k', 'lockstep');
        assert.equal(await engine.read('k'), 'lockstep');
        const xid = `'adv-${randomBytes(4).toString('hex')}'`;
        await sql.query(`XA START ${xid}`);
        await sql.query("UPDATE lockstep_kv SET value = '\"xa\"' WHERE `key` = 'k'");
        await sql.query(`XA END ${xid}`);
        await sql.query(`XA PREPARE ${xid}`);
        await sql.query(`XA COMMIT ${xid}`);
        assert.equal(await readAfterDrain('k'), 'xa');
      }));

    it('ROLLBACK TO SAVEPOINT undoes a journal row with its write; the write after it is journaled, ids in order', () =>
      withEngine(async ({ engine, sql, store, readAfterDrain }) => {
        for (const key of ['a', 'b']) {
          await engine.write(key, 'lockstep');
          assert.equal(await engine.read(key), 'lockstep');
        }
        const head = await store.journalHead();
        await sql.query('START TRANSACTION');
        await sql.query('SAVEPOINT s');
        await sql.query("UPDATE lockstep_kv SET value = '\"undone\"' WHERE `key` = 'a'");
        await sql.query('ROLLBACK TO SAVEPOINT s');
        await sql.query("UPDATE lockstep_kv SET value = '\"kept\"' WHERE `key` = 'b'");
        await sql.query('COMMIT');
        const rows = await store.readJournal(head, 10);
        assert.deepEqual(
          rows.map((r) => [r.id, r.key]),
          [[head + 1, 'b']],
        );
        assert.equal(await readAfterDrain('a'), 'lockstep');
        assert.equal(await readAfterDrain('b'), 'kept');
      }));

    for (const [name, prefix] of [
      ['SET STATEMENT foreign_key_checks = 0, unique_checks = 0', 'SET STATEMENT foreign_key_checks = 0, unique_checks = 0 FOR '],
      ["a permissive sql_mode ('')", "SET STATEMENT sql_mode = '' FOR "],
      ["sql_mode 'ORACLE'", "SET STATEMENT sql_mode = 'ORACLE' FOR "],
    ] as const) {
      it(`statements under ${name} are still versioned and drained`, () =>
        withEngine(async ({ engine, sql, readAfterDrain }) => {
          await engine.write('u', 'lockstep');
          await cachedAbsence(engine, 'i');
          await engine.write('d', 'lockstep');
          for (const key of ['u', 'd']) assert.equal(await engine.read(key), 'lockstep');
          await sql.query(`${prefix}UPDATE lockstep_kv SET value = '"plain"' WHERE \`key\` = 'u'`);
          await sql.query(`${prefix}INSERT INTO lockstep_kv (namespace, \`key\`, value) VALUES ('ns', 'i', '"plain"')`);
          await sql.query(`${prefix}DELETE FROM lockstep_kv WHERE \`key\` = 'd'`);
          assert.equal(await readAfterDrain('u'), 'plain');
          assert.equal(await readAfterDrain('i'), 'plain');
          assert.equal(await readAfterDrain('d'), undefined);
        }));
    }
  });

  describe("the store's own connections", () => {
    it('a pool whose connections run at READ UNCOMMITTED is refused: a read would fill the cache with a write that is then rolled back', async () => {
      const database = `lockstep_test_${randomBytes(6).toString('hex')}`;
      await admin!.query(`CREATE DATABASE \`${database}\``);
      const pool = mysql.createPool({ uri: uriOf(database), connectionLimit: 2 });
      // A pool set up this way by its application, or a server whose transaction_isolation is READ-UNCOMMITTED.
      pool.pool.on('connection', (c) => c.query('SET SESSION TRANSACTION ISOLATION LEVEL READ UNCOMMITTED'));
      const store = createMysqlStore({ pool: pool as unknown as MysqlPool, database });
      const engine = createWriteThrough<string>({ store, cache: createMemoryCache({ maxEntries: 100 }), namespace: 'ns', journal: { pollInterval: '1h' }, metrics: false });
      const sql = await mysql.createConnection({ uri: uriOf(database) });
      try {
        const opened = await store.ready().then(
          () => undefined,
          (error: unknown) => error,
        );
        if (opened === undefined) {
          // What a store that opens on it does: a read during a plain transaction sees its uncommitted write.
          await sql.query("INSERT INTO lockstep_kv (namespace, `key`, value) VALUES ('ns', 'k', '\"committed\"')");
          await sql.query('START TRANSACTION');
          await sql.query("UPDATE lockstep_kv SET value = '\"rolled back\"' WHERE `key` = 'k'");
          const during = await engine.read('k');
          await sql.query('ROLLBACK');
          await engine.drainJournal();
          assert.equal(await engine.read('k'), 'committed', `a value no commit produced (read during the transaction: ${JSON.stringify(during)})`);
        }
        assert.ok(opened instanceof InvalidOptionError && /READ UNCOMMITTED/.test(opened.message), `refused: ${String(opened)}`);
      } finally {
        await sql.end();
        await engine.close();
        await store.close();
        await pool.end();
        await admin!.query(`DROP DATABASE IF EXISTS \`${database}\``);
      }
    });
  });

  describe('LOAD DATA', () => {
    for (const mode of ['REPLACE', 'IGNORE']) {
      it(`LOAD DATA LOCAL INFILE … ${mode}: each row versioned and journaled, above a cached delete`, () =>
        withEngine(async ({ database, engine, readAfterDrain, stored }) => {
          await engine.write('k', 'lockstep');
          assert.equal(await engine.read('k'), 'lockstep');
          await cachedAbsence(engine, 'i');
          const loader = await mysql.createConnection({
            uri: uriOf(database),
            flags: ['+LOCAL_FILES'],
            infileStreamFactory: () => Readable.from([Buffer.from('ns\tk\t"loaded"\nns\ti\t"loaded"\n')]),
          });
          try {
            await loader.query({
              sql: `LOAD DATA LOCAL INFILE 'rows.tsv' ${mode} INTO TABLE lockstep_kv FIELDS TERMINATED BY '\\t' LINES TERMINATED BY '\\n' (namespace, \`key\`, value)`,
            });
          } finally {
            await loader.end();
          }
          assert.ok((await stored('i'))!.version > 2, 'above the delete');
          assert.equal(await readAfterDrain('i'), 'loaded');
          assert.equal(await readAfterDrain('k'), mode === 'REPLACE' ? 'loaded' : 'lockstep');
        }));
    }
  });

  describe('statements that fire no trigger', () => {
    it('TRUNCATE of lockstep_kv is refused: it would remove rows without tombstones or journal rows, and the cache keep them', () =>
      withEngine(async ({ engine, sql, readAfterDrain, stored }) => {
        await engine.write('k', 'lockstep');
        assert.equal(await engine.read('k'), 'lockstep');
        const error = await failure(sql.query('TRUNCATE TABLE lockstep_kv'));
        const truth = await stored('k');
        assert.equal(await readAfterDrain('k'), truth === undefined ? undefined : JSON.parse(truth.payload), 'a read returns what the store holds');
        assert.equal(error?.errno, 1701, 'refused with ER_TRUNCATE_ILLEGAL_FK');
      }));

    it('TRUNCATE of lockstep_tombstones is refused: a key re-created after it would go at or below its cached delete', () =>
      withEngine(async ({ engine, sql, readAfterDrain }) => {
        await engine.write('k', 'v1');
        await engine.write('k', 'v2');
        await engine.delete('k');
        assert.equal(await engine.read('k'), undefined);
        const error = await failure(sql.query('TRUNCATE TABLE lockstep_tombstones'));
        await sql.query("INSERT INTO lockstep_kv (namespace, `key`, value) VALUES ('ns', 'k', '\"plain\"')");
        assert.equal(await readAfterDrain('k'), 'plain');
        assert.equal(error?.errno, 1701, 'refused with ER_TRUNCATE_ILLEGAL_FK');
      }));

    it('TRUNCATE of lockstep_journal is refused: it would lose invalidations the drainer has not read', () =>
      withEngine(async ({ engine, sql, readAfterDrain }) => {
        await engine.write('k', 'lockstep');
        assert.equal(await engine.read('k'), 'lockstep');
        await sql.query("UPDATE lockstep_kv SET value = '\"plain\"' WHERE `key` = 'k'");
        const error = await failure(sql.query('TRUNCATE TABLE lockstep_journal'));
        assert.equal(await readAfterDrain('k'), 'plain');
        assert.equal(error?.errno, 1701, 'refused with ER_TRUNCATE_ILLEGAL_FK');
      }));

    // Left open (docs/operations.md, MariaDB): InnoDB fires no trigger for a row a foreign-key cascade
    // changes. Only a foreign key someone adds to lockstep_kv itself can cascade into it.
    it('a foreign key added from lockstep_kv to another table: its ON DELETE CASCADE removes rows unjournaled', { todo: 'no trigger fires for a cascade; documented' }, () =>
      withEngine(async ({ engine, sql, readAfterDrain, stored }) => {
        await engine.write('k', 'lockstep');
        assert.equal(await engine.read('k'), 'lockstep');
        await sql.query('CREATE TABLE tenants (namespace VARBINARY(64) NOT NULL PRIMARY KEY) ENGINE = InnoDB');
        await sql.query("INSERT INTO tenants VALUES ('ns')");
        await sql.query('ALTER TABLE lockstep_kv ADD CONSTRAINT kv_tenant FOREIGN KEY (namespace) REFERENCES tenants (namespace) ON DELETE CASCADE');
        await sql.query("DELETE FROM tenants WHERE namespace = 'ns'");
        assert.equal(await stored('k'), undefined, 'the cascade removed the row');
        assert.equal(await readAfterDrain('k'), undefined);
      }));

    it('DROP TABLE lockstep_kv is refused too', () =>
      withEngine(async ({ engine, sql }) => {
        await engine.write('k', 'lockstep');
        const error = await failure(sql.query('DROP TABLE lockstep_kv'));
        assert.equal(error?.errno, 1451);
        assert.equal(await engine.read('k'), 'lockstep');
      }));
  });
  describe("Lockstep's writer markers, written by plain SQL", () => {
    const forgeries: Record<string, (sql: mysql.Connection) => Promise<unknown>> = {
      "an UPDATE setting writer = 'lockstep:update' (version left as it was)": (sql) =>
        sql.query("UPDATE lockstep_kv SET value = '\"plain\"', writer = 'lockstep:update' WHERE `key` = 'k'"),
      "an UPDATE setting writer = 'lockstep:update' and the version back to 1": (sql) =>
        sql.query("UPDATE lockstep_kv SET value = '\"plain\"', writer = 'lockstep:update', version = 1 WHERE `key` = 'k'"),
      "INSERT … ON DUPLICATE KEY UPDATE writer = 'lockstep:update'": (sql) =>
        sql.query(
          "INSERT INTO lockstep_kv (namespace, `key`, value) VALUES ('ns', 'k', '\"plain\"') ON DUPLICATE KEY UPDATE value = VALUES(value), writer = 'lockstep:update'",
        ),
      "a call of Lockstep's own write function (not through its package)": (sql) =>
        sql.query("SELECT lockstep_write('ns', 'k', '\"plain\"', 0, NULL, NULL)"),
    };
    for (const [name, forge] of Object.entries(forgeries)) {
      it(`${name}: versioned and journaled, the cached value let go`, () =>
        withEngine(async ({ engine, sql, readAfterDrain, stored }) => {
          await engine.write('k', 'lockstep');
          assert.equal(await engine.read('k'), 'lockstep');
          const before = (await stored('k'))!.version;
          await forge(sql);
          assert.equal((await stored('k'))?.version, before + 1);
          assert.equal(await readAfterDrain('k'), 'plain');
        }));
    }

    it("an INSERT with writer = 'lockstep:insert' over a cached delete: journaled, the cached absence let go", () =>
      withEngine(async ({ engine, sql, readAfterDrain }) => {
        await cachedAbsence(engine, 'k');
        await sql.query("INSERT INTO lockstep_kv (namespace, `key`, value, writer) VALUES ('ns', 'k', '\"plain\"', 'lockstep:insert')");
        assert.equal(await readAfterDrain('k'), 'plain');
      }));

    it("a rename setting writer = 'lockstep:update': the new key goes above its delete, the old key is tombstoned, both journaled", () =>
      withEngine(async ({ engine, sql, readAfterDrain, stored }) => {
        await engine.write('old', 'lockstep');
        await cachedAbsence(engine, 'k');
        assert.equal(await engine.read('old'), 'lockstep');
        await sql.query("UPDATE lockstep_kv SET `key` = 'k', value = '\"plain\"', writer = 'lockstep:update' WHERE `key` = 'old'");
        assert.ok((await stored('k'))!.version > 2, 'above the delete');
        assert.equal(await readAfterDrain('k'), 'plain');
        assert.equal(await readAfterDrain('old'), undefined);
      }));

    it("a DELETE after plain SQL marked the key's tombstone 'lockstep:delete': journaled, the cached value let go", () =>
      withEngine(async ({ engine, sql, readAfterDrain }) => {
        await engine.write('k', 'lockstep');
        assert.equal(await engine.read('k'), 'lockstep');
        await sql.query('START TRANSACTION');
        await sql.query("INSERT INTO lockstep_tombstones (namespace, `key`, version, deleted_at, writer) VALUES ('ns', 'k', 0, 0, 'lockstep:delete') ON DUPLICATE KEY UPDATE writer = VALUES(writer)");
        await sql.query("DELETE FROM lockstep_kv WHERE `key` = 'k'");
        await sql.query('COMMIT');
        assert.equal(await readAfterDrain('k'), undefined);
      }));

    it("a function of the application that goes on after Lockstep's package call failed, then writes a marker in the same statement: journaled", () =>
      withEngine(async ({ database, engine, sql, readAfterDrain }) => {
        await engine.write('k', 'lockstep');
        await engine.write('other', 'lockstep');
        assert.equal(await engine.read('k'), 'lockstep');
        // The package call fails ('other' is not absent); the handler goes on, inside the same top-level statement.
        await sql.query(`CREATE FUNCTION forge() RETURNS INT MODIFIES SQL DATA
          BEGIN
            DECLARE CONTINUE HANDLER FOR SQLEXCEPTION BEGIN END;
            SET @v = \`${database}\`.lockstep_own.\`write\`('ns', 'other', '"x"', 0, 'absent', NULL); -- a package function is named in full
            SET @failed = @v IS NULL;
            UPDATE lockstep_kv SET value = '"plain"', writer = 'lockstep:update' WHERE \`key\` = 'k';
            RETURN 1;
          END`);
        await sql.query('SET @v = NULL, @failed = NULL');
        await sql.query('SELECT forge()');
        const [[flags]] = (await sql.query('SELECT @failed AS failed')) as unknown as [[{ failed: number }]];
        assert.equal(Number(flags.failed), 1, "the package's write was called, and failed");
        assert.equal(await readAfterDrain('k'), 'plain');
        assert.equal(await readAfterDrain('other'), 'lockstep');
      }));

    it("Lockstep's own writes still journal nothing, and leave writer 'lockstep'", () =>
      withEngine(async ({ engine, store, sql }) => {
        const head = await store.journalHead();
        await engine.write('k', 'a');
        await engine.write('k', 'b');
        await engine.delete('k');
        await engine.write('k', 'c');
        assert.equal(await store.journalHead(), head);
        const [rows] = (await sql.query("SELECT writer FROM lockstep_kv WHERE `key` = 'k'")) as unknown as [{ writer: string }[]];
        assert.deepEqual(rows, [{ writer: 'lockstep' }]);
      }));
  });

  describe('opening a schema that is current, or nearly', () => {
    /** information_schema's CREATED of the package and its body (whole seconds). */
    async function packageCreated(sql: mysql.Connection, database: string): Promise<string[]> {
      const [rows] = (await sql.query(
        "SELECT ROUTINE_TYPE AS t, CAST(CREATED AS CHAR) AS c FROM information_schema.ROUTINES WHERE ROUTINE_SCHEMA = ? AND ROUTINE_NAME = 'lockstep_own' ORDER BY ROUTINE_TYPE",
        [database],
      )) as unknown as [{ t: string; c: string }[]];
      return rows.map((r) => `${r.t} ${r.c}`);
    }

    /** Waits (bounded) until the server's clock is past `created`, so that a re-creation would show. */
    async function pastSecond(sql: mysql.Connection, database: string): Promise<void> {
      for (let i = 0; i < 100; i++) {
        const [rows] = (await sql.query(
          "SELECT NOW() > MAX(CREATED) AS past FROM information_schema.ROUTINES WHERE ROUTINE_SCHEMA = ? AND ROUTINE_NAME = 'lockstep_own'",
          [database],
        )) as unknown as [{ past: number }[]];
        if (Number(rows[0]!.past) === 1) return;
        await new Promise((resolve) => setTimeout(resolve, 50));
      }
      throw new Error("the server's clock did not pass the package's creation within 5 s");
    }

    it('a second store, while the triggers version is not yet recorded, does not re-create the package: writes running meanwhile never fail', () =>
      withEngine(async ({ database, sql, store }) => {
        // As during a contended upgrade (or right after a fresh install): the package current, the triggers' version not recorded.
        await sql.query("DELETE FROM lockstep_meta WHERE name = 'triggers'");
        const before = await packageCreated(sql, database);
        assert.equal(before.length, 2);
        await pastSecond(sql, database);
        let stop = false;
        let writes = 0;
        const failures: unknown[] = [];
        const loop = (async () => {
          while (!stop && writes < 100_000) {
            try {
              await store.write('ns', `loop${writes % 10}`, String(writes), { journal: false, deadlineMs: 5000 });
            } catch (error) {
              failures.push(error);
            }
            writes++;
          }
        })();
        const second = createMysqlStore({ uri: uriOf(database), poolSize: 1 });
        try {
          await second.ready();
        } finally {
          stop = true;
          await loop;
          await second.close();
        }
        assert.deepEqual(failures, []);
        assert.ok(writes > 0);
        assert.deepEqual(await packageCreated(sql, database), before, 'the package and its body were not re-created');
        const [meta] = (await sql.query("SELECT value FROM lockstep_meta WHERE name = 'triggers'")) as unknown as [{ value: string }[]];
        assert.deepEqual(meta, [{ value: MYSQL_TRIGGERS_VERSION }], 'the triggers were upgraded');
      }));

    it('a runtime user with only SELECT, INSERT, UPDATE, DELETE and EXECUTE opens a current schema and writes; one that needs upgrading is refused, naming the privileges', () =>
      withEngine(async ({ database, sql }) => {
        const user = `lockstep_fmp_${randomBytes(4).toString('hex')}`;
        const password = randomBytes(12).toString('hex');
        await admin!.query('CREATE USER ?@? IDENTIFIED BY ?', [user, '%', password]);
        try {
          await admin!.query(`GRANT SELECT, INSERT, UPDATE, DELETE, EXECUTE ON \`${database}\`.* TO ?@?`, [user, '%']);
          const url = new URL(uriOf(database));
          url.username = user;
          url.password = password;
          const limited = createMysqlStore({ uri: url.toString(), poolSize: 2 });
          try {
            await limited.ready();
            assert.equal((await limited.write('ns', 'least', '"1"', { journal: false, deadlineMs: 5000 })).version, 1);
            assert.equal((await limited.read('ns', 'least'))?.version, 1);
          } finally {
            await limited.close();
          }
          await sql.query("DELETE FROM lockstep_meta WHERE name = 'triggers'"); // an upgrade is needed now
          /** Opens a store as the limited user on `database`: refused with an error that names the privileges. */
          const assertRefused = async (database: string, reason: RegExp) => {
            const at = new URL(uriOf(database));
            at.username = user;
            at.password = password;
            const store = createMysqlStore({ uri: at.toString(), poolSize: 1 });
            try {
              const error = await store.ready().then(
                () => undefined,
                (e: unknown) => e,
              );
              assert.ok(error instanceof InvalidOptionError, String(error));
              assert.match(error.message, reason);
              assert.match(error.message, /CREATE ROUTINE, ALTER ROUTINE, TRIGGER, CREATE and REFERENCES/);
            } finally {
              await store.close();
            }
          };
          await assertRefused(database, /one-time upgrade/);
          // An empty database: the schema's first creation is refused the same way, not a raw access error.
          const empty = `${database}_e`;
          await admin!.query(`CREATE DATABASE \`${empty}\``);
          try {
            await admin!.query(`GRANT SELECT, INSERT, UPDATE, DELETE, EXECUTE ON \`${empty}\`.* TO ?@?`, [user, '%']);
            await assertRefused(empty, /must be created once, which this user may not do/);
          } finally {
            await admin!.query(`DROP DATABASE \`${empty}\``);
          }
        } finally {
          await admin!.query('DROP USER ?@?', [user, '%']);
        }
      }));
  });

  describe('a schema left by the previous release (schema 2: triggers that honour any marker, no guard)', () => {
    it('is upgraded on open: a forged marker is then journaled, TRUNCATE refused', () =>
      withEngine(
        async ({ engine, sql, readAfterDrain, store }) => {
          const [meta] = (await sql.query("SELECT value FROM lockstep_meta WHERE name = 'triggers'")) as unknown as [{ value: string }[]];
          assert.deepEqual(meta, [{ value: MYSQL_TRIGGERS_VERSION }]);
          await engine.write('k', 'lockstep');
          assert.equal(await engine.read('k'), 'lockstep');
          const head = await store.journalHead();
          await engine.write('k', 'lockstep2');
          assert.equal(await store.journalHead(), head, "Lockstep's own write is not journaled");
          await sql.query("UPDATE lockstep_kv SET value = '\"plain\"', writer = 'lockstep:update' WHERE `key` = 'k'");
          assert.equal(await readAfterDrain('k'), 'plain');
          assert.equal((await failure(sql.query('TRUNCATE TABLE lockstep_kv')))?.errno, 1701);
        },
        { v2: true },
      ));

    it('a plain transaction holding lockstep_kv: the store opens without waiting past the bound, runs, and the next open upgrades', () =>
      withEngine(
        async ({ database, connect }) => {
          // The fixture's store already upgraded: put schema 2's triggers back, as a previous release would find them.
          const old = mysqlSchemaV2Ddl(database, 'lockstep_');
          const holder = await connect();
          await holder.query('DROP TABLE lockstep_guard');
          await holder.query("DELETE FROM lockstep_meta WHERE name = 'triggers'");
          for (const t of old.triggerNames) await holder.query(`DROP TRIGGER \`${database}\`.\`${t}\``);
          for (const statement of old.ddl) await holder.query(statement);
          await holder.query('START TRANSACTION');
          await holder.query('SELECT COUNT(*) FROM lockstep_kv'); // a metadata lock on lockstep_kv until COMMIT
          const store = createMysqlStore({ uri: uriOf(database), poolSize: 2 });
          try {
            const started = performance.now();
            await store.ready();
            const waited = performance.now() - started;
            assert.ok(waited < 1000 + 1500, `opened after ${waited.toFixed(0)} ms`);
            assert.equal((await store.write('ns', 'w', '1', { journal: false, deadlineMs: 5000 })).version, 1);
            const [before] = (await holder.query("SELECT COUNT(*) AS n FROM lockstep_meta WHERE name = 'triggers'")) as unknown as [{ n: number }[]];
            assert.equal(Number(before[0]!.n), 0, 'not upgraded while the table was held');
            await holder.query('COMMIT');
          } finally {
            await store.close();
          }
          const next = createMysqlStore({ uri: uriOf(database), poolSize: 1 });
          try {
            await next.ready();
            const [after] = (await holder.query("SELECT value FROM lockstep_meta WHERE name = 'triggers'")) as unknown as [{ value: string }[]];
            assert.deepEqual(after, [{ value: MYSQL_TRIGGERS_VERSION }]);
            assert.equal((await failure(holder.query('TRUNCATE TABLE lockstep_kv')))?.errno, 1701);
          } finally {
            await next.close();
          }
        },
        { v2: true },
      ));
  });
});
