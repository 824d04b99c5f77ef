// The PostgreSQL journal's LISTEN connection, when an ORM integration (or a store given a pool) runs
// on the application's pg.Pool: it is held for as long as the store is open, so taken from the
// application's pool it starves it. With one cached table per pool connection (a pool of 2 and two
// tables here; TypeORM's and pg's default of 10 and ten tables), every connection LISTENs for ever:
// the application's own queries wait for a connection (pg.Pool waits without end unless given
// connectionTimeoutMillis), and Lockstep's writes fail with E_STORE_OUTCOME_UNKNOWN.
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { describe, it } from 'node:test';
import { drizzle } from 'drizzle-orm/node-postgres';
import { integer, pgSchema, text } from 'drizzle-orm/pg-core';
import pg from 'pg';
import { createMemoryCache } from '../../src/cache/memory.js';
import { drizzleTable } from '../../src/integrations/drizzle.js';
import { existsSync } from 'node:fs';
import { createPostgresStore } from '../../src/store/postgres.js';
import { PG_BIN, startCluster } from '../helpers/pg-cluster.js';
import { freePort } from '../helpers/pg-proxy-process.js';
import { DATABASE_URL, needProgram, needService } from '../helpers/services.js';
import { until } from '../helpers/until.js';

const postgres = await needService('PostgreSQL', DATABASE_URL);

/** Resolves with the promise's value, or rejects once `ms` have passed. */
function within<T>(ms: number, what: string, promise: Promise<T>): Promise<T> {
  const late = new Promise<never>((_, reject) => {
    setTimeout(() => reject(new Error(`${what}: no answer within ${ms} ms`)), ms).unref();
  });
  return Promise.race([promise, late]);
}

describe("the journal's LISTEN connection and the application's pool", { skip: postgres.skip }, () => {
  it('two cached tables on a pool of two leave the pool serving the application and Lockstep', async () => {
    const tag = randomBytes(5).toString('hex');
    const schema = `lockstep_adv_lp_${tag}`;
    const applicationName = `adv-orm-listen-${tag}`;
    const admin = new pg.Pool({ connectionString: DATABASE_URL, max: 1 });
    await admin.query(`CREATE SCHEMA ${schema};
      CREATE TABLE ${schema}.a (id integer PRIMARY KEY, title text, version integer NOT NULL DEFAULT 1);
      CREATE TABLE ${schema}.b (id integer PRIMARY KEY, title text, version integer NOT NULL DEFAULT 1)`);
    const pool = new pg.Pool({ connectionString: DATABASE_URL, max: 2, application_name: applicationName });
    const db = drizzle(pool);
    const s = pgSchema(schema);
    const a = s.table('a', { id: integer('id').primaryKey(), title: text('title'), version: integer('version').notNull().default(1) });
    const b = s.table('b', { id: integer('id').primaryKey(), title: text('title'), version: integer('version').notNull().default(1) });
    const tables = [
      await drizzleTable(db, a, { version: a.version, cache: createMemoryCache({ maxEntries: 10 }) }),
      await drizzleTable(db, b, { version: b.version, cache: createMemoryCache({ maxEntries: 10 }) }),
    ];
    try {
      // Both journals listen (the default: LISTEN/NOTIFY wakes the drainers).
      const listening = async () =>
        Number(
          (await admin.query(`SELECT count(*) AS n FROM pg_stat_activity WHERE application_name = $1 AND query LIKE 'LISTEN%'`, [applicationName])).rows[0].n,
        );
      await until('both journals LISTEN', async () => (await listening()) === 2);
      assert.deepEqual((await within(3000, "the application's query", pool.query('SELECT 1 AS one'))).rows, [{ one: 1 }]);
      assert.equal((await within(8000, 'a write through Lockstep', tables[0]!.insert({ id: 1, title: 'x' }))).version, 1);
    } finally {
      for (const table of tables) await table.close();
      await pool.end();
      await admin.query(`DROP SCHEMA ${schema} CASCADE`);
      await admin.end();
    }
  });

  // Found by review: the pool beside was made from the pool's enumerable options, and pg-pool keeps
  // the password out of them: on a server that asks for one, the LISTEN connection failed to log in
  // for ever (notifications silently stopped; drains fell back to polling).
  const initdb = needProgram('initdb', `${PG_BIN}/initdb`);
  it('a pool that logs in with a password (a function here) gives it to the LISTEN connection: a plain-SQL write notifies', { skip: initdb.skip || (!existsSync('/usr/sbin/runuser') && 'runuser missing'), timeout: 120_000 }, async () => {
    const cluster = startCluster(await freePort(), 'local all all trust\nhost all postgres 127.0.0.1/32 trust\nhost all app 127.0.0.1/32 scram-sha-256\n');
    try {
      const admin = new pg.Client({ host: '127.0.0.1', port: cluster.port, user: 'postgres', database: 'postgres' });
      await admin.connect();
      await admin.query("SET password_encryption = 'scram-sha-256'");
      await admin.query("CREATE ROLE app LOGIN PASSWORD 'app-secret'");
      await admin.query('CREATE SCHEMA kv AUTHORIZATION app');
      const pool = new pg.Pool({ host: '127.0.0.1', port: cluster.port, user: 'app', database: 'postgres', password: async () => 'app-secret', max: 2 });
      const store = createPostgresStore({ pool, schema: 'kv' });
      let woken = 0;
      try {
        await store.write('ns', 'k', '1', { journal: false, deadlineMs: 10_000 });
        store.onJournal!(() => void woken++);
        await until('the LISTEN connection is in place', async () =>
          Number((await admin.query("SELECT count(*) AS n FROM pg_stat_activity WHERE usename = 'app' AND query LIKE 'LISTEN%'")).rows[0].n) === 1,
        );
        await admin.query("UPDATE kv.lockstep_kv SET value = '2' WHERE key = 'k'");
        await until('the plain-SQL write notified the store', async () => woken > 0);
      } finally {
        await store.close();
        await pool.end();
        await admin.end();
      }
    } finally {
      cluster.stop();
    }
  });
});
