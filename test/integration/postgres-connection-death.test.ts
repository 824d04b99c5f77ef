// A backend terminated right after start-up must not crash the process. Found by the chaos harness
// (scenario pg-terminate-backend, under load): when the backend's ReadyForQuery and its FATAL error
// arrive in one socket read, pg emits 'error' on the new connection in the same tick as the pool
// hands it out, before the store's code attaches a listener, and an 'error' without a listener ends
// the process. A relay in front of the real server sends exactly that, for every connection: each
// operation must fail with an error, and the process must live on (an uncaught exception fails this
// file). The stores now give each new connection of a pool a listener at birth
// (src/store/postgres-connection-errors.ts).
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import pg from 'pg';
import { createPostgresStore } from '../../src/store/postgres.js';
import { createPostgresEntityStore } from '../../src/store/entity/postgres-entity-store.js';
import { DATABASE_URL, needService } from '../helpers/services.js';
import { startFatalAfterStartupRelay, type FatalAfterStartupRelay } from '../helpers/pg-fatal-after-startup-relay.js';

const service = await needService('PostgreSQL', DATABASE_URL);
const ROUNDS = 20;

describe('PostgreSQL: a backend terminated as it starts fails the operation, not the process', { skip: service.skip }, () => {
  let relay: FatalAfterStartupRelay;
  const schema = `lockstep_death_${randomBytes(5).toString('hex')}`;
  const admin = new pg.Pool({ connectionString: DATABASE_URL, max: 1 });
  admin.on('error', () => undefined);

  before(async () => {
    relay = await startFatalAfterStartupRelay(DATABASE_URL);
    // The schema is created through a healthy connection: only the operations go through the relay.
    const store = createPostgresStore({ connectionString: DATABASE_URL, schema });
    await store.ready();
    await store.close();
    await admin.query('CREATE TABLE ' + schema + '.users (id int PRIMARY KEY, name text, version bigint NOT NULL DEFAULT 0)');
  });
  after(async () => {
    await relay?.close();
    await admin.query(`DROP SCHEMA IF EXISTS ${schema} CASCADE`).catch(() => undefined);
    await admin.end();
  });

  async function everyOperationFails(operation: () => Promise<unknown>): Promise<void> {
    const before = relay.terminated;
    for (let i = 0; i < ROUNDS; i++) await assert.rejects(operation, Error);
    assert.ok(relay.terminated - before >= ROUNDS, `the relay terminated ${relay.terminated - before} connections, expected ${ROUNDS}: the fault was not injected`);
  }

  it('a store that owns its pool (connectionString)', async () => {
    const store = createPostgresStore({ connectionString: relay.urlFor(DATABASE_URL), schema, poolSize: 2, statementTimeout: 2_000 });
    try {
      await everyOperationFails(() => store.read('ns', 'k'));
      await everyOperationFails(() => store.write('ns', 'k', '"v"', { journal: false, deadlineMs: 1_000 }));
    } finally {
      await store.close();
    }
  });

  it('a pool you pass (the store and the entity store on it)', async () => {
    const pool = new pg.Pool({ connectionString: relay.urlFor(DATABASE_URL), max: 2 });
    pool.on('error', () => undefined); // the idle connections' listener is the pool owner's, as pg documents
    try {
      const store = createPostgresStore({ pool, schema, statementTimeout: 2_000 });
      await everyOperationFails(() => store.read('ns', 'k'));
      await store.close();
      await everyOperationFails(() => createPostgresEntityStore({ pool, schema, table: 'users', idColumn: 'id', bypassTriggers: false }));
    } finally {
      await pool.end();
    }
  });
});
