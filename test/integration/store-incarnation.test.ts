// StoreAdapter.incarnation on the real servers: what names the store's line of history, read by the
// journal drainer on every pass (docs/protocol.md, "A store that goes back"). PostgreSQL: the
// cluster's system identifier and its current timeline; MariaDB: the server answering. The change
// itself (a promotion) is tested for real in test/consistency/store-failover-postgres.test.ts.
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { after, describe, it } from 'node:test';
import mysql from 'mysql2/promise';
import pg from 'pg';
import { createMysqlStore } from '../../src/store/mysql.js';
import { createPostgresStore } from '../../src/store/postgres.js';
import { DATABASE_URL, MYSQL_URL, needService } from '../helpers/services.js';

const postgres = await needService('PostgreSQL', DATABASE_URL);
const mariadb = await needService('MariaDB', MYSQL_URL);

describe('the store incarnation', () => {
  it('PostgreSQL: system identifier / timeline, the same on every call', { skip: postgres.skip }, async () => {
    const schema = `incarnation_${randomBytes(4).toString('hex')}`;
    const store = createPostgresStore({ connectionString: DATABASE_URL, schema, notify: false });
    const admin = new pg.Client({ connectionString: DATABASE_URL });
    await admin.connect();
    try {
      const { rows } = await admin.query(
        "SELECT (SELECT system_identifier FROM pg_control_system())::text AS system, substr(pg_walfile_name(pg_current_wal_lsn()), 1, 8) AS timeline",
      );
      const expected = `postgres:${rows[0].system}/${rows[0].timeline}`;
      assert.match(expected, /^postgres:\d+\/[0-9A-F]{8}$/);
      assert.equal(await store.incarnation(), expected);
      assert.equal(await store.incarnation(), expected);
    } finally {
      await store.close();
      await admin.query(`DROP SCHEMA IF EXISTS ${schema} CASCADE`);
      await admin.end();
    }
  });

  it('MariaDB: the server_id of the server answering', { skip: mariadb.skip }, async () => {
    const database = `lockstep_test_${randomBytes(6).toString('hex')}`;
    const admin = mysql.createPool({ uri: MYSQL_URL, connectionLimit: 1 });
    after(async () => {
      await admin.query(`DROP DATABASE IF EXISTS \`${database}\``);
      await admin.end();
    });
    await admin.query(`CREATE DATABASE \`${database}\``);
    const url = new URL(MYSQL_URL);
    url.pathname = `/${database}`;
    const store = createMysqlStore({ uri: url.toString() });
    try {
      const [rows] = await admin.query('SELECT @@server_id AS id');
      assert.equal(await store.incarnation(), `mysql:${(rows as Array<{ id: number }>)[0]!.id}`);
    } finally {
      await store.close();
    }
  });
});
