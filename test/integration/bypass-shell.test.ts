// A write made in the database's own shell (psql, mariadb), bypassing Lockstep, is invalidated in
// Redis: the store's triggers journal it and the engine's drainer (LISTEN/NOTIFY for PostgreSQL,
// polling for MariaDB) fences the cached value out. The bound published in the README comes from
// `npm run bench:bypass`; this test only waits, boundedly, for the invalidation to happen.
import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import { after, describe, it } from 'node:test';
import mysql from 'mysql2/promise';
import pg from 'pg';
import { createRedisCache } from '../../src/cache/redis.js';
import { createMysqlStore } from '../../src/store/mysql.js';
import { createPostgresStore } from '../../src/store/postgres.js';
import type { StoreAdapter } from '../../src/types.js';
import { DATABASE_URL, MYSQL_URL, needService, REDIS_URL } from '../helpers/services.js';
import { type WriteThrough, createWriteThrough } from '../../src/compose/write-through.js';

const scratch = `lockstep_shell_${randomBytes(4).toString('hex')}`;
const installed = (command: string) => spawnSync(command, ['--version'], { stdio: 'ignore' }).status === 0;
const cleanups: Array<() => Promise<void>> = [];
after(async () => {
  for (const cleanup of cleanups.reverse()) await cleanup();
});

async function invalidatedBy(engine: WriteThrough<string>, key: string, shell: () => void, expected: string | undefined): Promise<void> {
  await engine.write(key, 'through lockstep');
  assert.equal((await engine.readEntry(key)).source, 'hit');
  shell();
  const deadline = Date.now() + 15_000;
  while ((await engine.read(key)) !== expected) {
    assert.ok(Date.now() < deadline, `the shell write to ${key} was not invalidated within 15 s`);
    await sleep(10);
  }
  assert.equal((await engine.inspect(key)).state, expected === undefined ? 'A' : 'C');
}

async function engineOver(store: StoreAdapter): Promise<WriteThrough<string>> {
  const cache = createRedisCache({ url: REDIS_URL });
  await cache.connect();
  // A namespace of its own: a cache must never hold another store's versions of the same keys.
  const engine = createWriteThrough<string>({ store, cache, namespace: `shell-${randomBytes(4).toString('hex')}`, metrics: false });
  cleanups.push(async () => {
    await engine.close();
    await cache.close();
    await store.close();
  });
  return engine;
}

describe('shell writes that bypass Lockstep are invalidated in Redis', () => {
  it('psql: UPDATE and DELETE', async (t) => {
    for (const [name, url] of [['PostgreSQL', DATABASE_URL], ['Redis', REDIS_URL]] as const) {
      const { skip } = await needService(name, url);
      if (skip) return t.skip(skip);
    }
    if (!installed('psql')) return t.skip('psql is not installed');
    const admin = new pg.Client({ connectionString: DATABASE_URL });
    await admin.connect();
    await admin.query(`CREATE SCHEMA ${scratch}`);
    cleanups.push(async () => {
      await admin.query(`DROP SCHEMA ${scratch} CASCADE`);
      await admin.end();
    });
    const store = createPostgresStore({ connectionString: DATABASE_URL, schema: scratch });
    const engine = await engineOver(store);
    const psql = (sql: string) => () => execFileSync('psql', [DATABASE_URL, '-v', 'ON_ERROR_STOP=1', '-qc', sql], { timeout: 10_000 });
    await invalidatedBy(engine, 'a', psql(`UPDATE ${scratch}.lockstep_kv SET value = '"from psql"' WHERE namespace = '${engine.namespace}' AND key = 'a'`), 'from psql');
    await invalidatedBy(engine, 'b', psql(`DELETE FROM ${scratch}.lockstep_kv WHERE namespace = '${engine.namespace}' AND key = 'b'`), undefined);
  });

  it('mariadb: UPDATE and DELETE', async (t) => {
    for (const [name, url] of [['MariaDB', MYSQL_URL], ['Redis', REDIS_URL]] as const) {
      const { skip } = await needService(name, url);
      if (skip) return t.skip(skip);
    }
    if (!installed('mariadb')) return t.skip('the mariadb client is not installed');
    const admin = await mysql.createConnection(MYSQL_URL);
    await admin.query(`CREATE DATABASE ${scratch}`);
    cleanups.push(async () => {
      await admin.query(`DROP DATABASE ${scratch}`);
      await admin.end();
    });
    const url = new URL(MYSQL_URL);
    url.pathname = `/${scratch}`;
    const engine = await engineOver(createMysqlStore({ uri: url.toString() }));
    const shell = (sql: string) => () =>
      execFileSync('mariadb', ['-h', url.hostname, '-P', url.port || '3306', '-u', decodeURIComponent(url.username) || 'root', scratch, '-e', sql], { timeout: 10_000 });
    await invalidatedBy(engine, 'a', shell(`UPDATE lockstep_kv SET value = '"from mariadb"' WHERE namespace = '${engine.namespace}' AND \`key\` = 'a'`), 'from mariadb');
    await invalidatedBy(engine, 'b', shell(`DELETE FROM lockstep_kv WHERE namespace = '${engine.namespace}' AND \`key\` = 'b'`), undefined);
  });
});
