// The entity helpers that run DDL on your pg.Pool (addVersionColumn, installEntityTriggers,
// dropEntityTriggers) check a connection out and may wait long on it: ALTER TABLE waits for its
// lock behind the application's transactions. A pg connection checked out of a pool has no 'error'
// listener but its holder's (the pool listens only while it is idle), and a connection whose
// backend is terminated meanwhile (pg_terminate_backend, a failover) emits 'error' once the socket
// closes; an 'error' nobody listens to ends the process. Real parts: a transaction of the test
// holds the table's lock, the helper's backend is terminated while it waits. The call must fail,
// and the process live on (an uncaught exception fails this file).
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import pg from 'pg';
import { addVersionColumn } from '../../src/store/postgres-entity.js';
import { DATABASE_URL, needService } from '../helpers/services.js';

const service = await needService('PostgreSQL', DATABASE_URL);

describe('a DDL helper whose backend is terminated while it waits', { skip: service.skip }, () => {
  const schema = `lockstep_ddl_death_${randomBytes(5).toString('hex')}`;
  const admin = new pg.Client({ connectionString: DATABASE_URL });
  const holder = new pg.Client({ connectionString: DATABASE_URL });

  before(async () => {
    await admin.connect();
    await holder.connect();
    await admin.query(`CREATE SCHEMA ${schema}`);
    await admin.query(`CREATE TABLE ${schema}.items (id integer PRIMARY KEY)`);
  });
  after(async () => {
    await holder.end();
    await admin.query(`DROP SCHEMA ${schema} CASCADE`);
    await admin.end();
  });

  it('fails the call, not the process', async () => {
    const application = `lockstep-ddl-death-${randomBytes(4).toString('hex')}`;
    const pool = new pg.Pool({ connectionString: DATABASE_URL, max: 1, application_name: application });
    pool.on('error', () => undefined); // idle connections: the pool's listener is yours (pg's documentation)
    // A connection the application opened before calling the helper.
    (await pool.connect()).release();
    await holder.query('BEGIN');
    await holder.query(`LOCK TABLE ${schema}.items IN ACCESS SHARE MODE`);
    const adding = addVersionColumn(pool, 'items', { schema });
    const waiting = async () =>
      (await admin.query(`SELECT pid FROM pg_stat_activity WHERE application_name = $1 AND wait_event_type = 'Lock'`, [application])).rows as Array<{ pid: number }>;
    let pids = await waiting();
    while (pids.length === 0) {
      await new Promise((resolve) => setTimeout(resolve, 10));
      pids = await waiting();
    }
    for (const { pid } of pids) await admin.query('SELECT pg_terminate_backend($1)', [pid]);
    await assert.rejects(adding);
    await holder.query('ROLLBACK');
    // The socket's close (and with it the connection's 'error') may come after the query's failure.
    for (let i = 0; i < 20; i++) await new Promise((resolve) => setTimeout(resolve, 5));
    await pool.end();
  });
});
