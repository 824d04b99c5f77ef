// A PostgreSQL entity store (the ORM integrations' store) over a pg.Pool whose server stops
// answering. The key/value store gives every wait a client-side deadline and destroys a connection
// it gave up on; the entity store must too: otherwise each call stuck on a silent connection keeps
// that connection checked out for as long as the silence lasts. When the old connections are lost
// without a trace (the server's host died, or a failover moved its address: no FIN or RST ever
// comes) while a new connection would work, a pool whose every connection is stuck never serves
// again: each read waits for a connection that never comes back.
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import pg from 'pg';
import { createMemoryCache } from '../../src/cache/memory.js';
import { createWriteThrough } from '../../src/compose/write-through.js';
import { createPostgresEntityStore } from '../../src/store/entity/postgres-entity-store.js';
import { DATABASE_URL, needService } from '../helpers/services.js';
import { startStallRelay, type StallRelay } from '../helpers/stall-relay.js';

const service = await needService('PostgreSQL', DATABASE_URL);
const STATEMENT_MS = 500;
const LEASE_MS = 1_000;

describe('a PostgreSQL entity store whose connections go silent', { skip: service.skip, timeout: 60_000 }, () => {
  const schema = `lockstep_estall_${randomBytes(5).toString('hex')}`;
  const admin = new pg.Pool({ connectionString: DATABASE_URL, max: 1 });
  admin.on('error', () => undefined);
  let relay: StallRelay;

  before(async () => {
    await admin.query(`CREATE SCHEMA ${schema}`);
    await admin.query(`CREATE TABLE ${schema}.items (id text PRIMARY KEY, body text NOT NULL, version integer)`);
    relay = await startStallRelay(DATABASE_URL);
  });
  after(async () => {
    await relay?.close();
    await admin.query(`DROP SCHEMA ${schema} CASCADE`);
    await admin.end();
  });

  for (const warm of [false, true]) {
    it(`an open on a server that accepts and never answers fails within its bound and keeps no connection (${warm ? 'a connection already in the pool' : 'a new connection'})`, async () => {
      const pool = new pg.Pool({ connectionString: relay.urlFor(DATABASE_URL), max: 2 });
      pool.on('error', () => undefined);
      if (warm) await pool.query('SELECT 1');
      relay.stall();
      const started = performance.now();
      try {
        const opened = createPostgresEntityStore({ pool, schema, table: 'items', notify: false, statementTimeout: `${STATEMENT_MS}ms` });
        const outcome = await Promise.race([
          opened.then(
            () => 'opened',
            (error: Error) => error.message,
          ),
          new Promise<string>((resolve) => setTimeout(() => resolve('still opening after 20 s'), 20_000).unref()),
        ]);
        const ms = performance.now() - started;
        assert.match(outcome, warm ? /Query read timeout/ : /PostgreSQL: no connection within 1500 ms/);
        // One step's bound (statement timeout + 1 s), with 3× slack.
        assert.ok(ms < 3 * (STATEMENT_MS + 1_000), `the open failed after ${Math.round(ms)} ms`);
        // A connection the pool is still opening stays the pool's (pg has no way to abort it: its
        // connectionTimeoutMillis does, docs/orm.md); one that was handed out must not stay out.
        if (warm) assert.equal(pool.totalCount - pool.idleCount, 0, 'no connection is left checked out');
      } finally {
        relay.abandon();
        void pool.end().catch(() => undefined);
      }
    });
  }

  it('gives up on a silent connection and serves again through a new one', async () => {
    const pool = new pg.Pool({ connectionString: relay.urlFor(DATABASE_URL), max: 2 });
    pool.on('error', () => undefined);
    const store = await createPostgresEntityStore({ pool, schema, table: 'items', notify: false, statementTimeout: `${STATEMENT_MS}ms` });
    const engine = createWriteThrough<{ body: string }>({ store, cache: createMemoryCache({ maxEntries: 100 }), namespace: 'items', leaseTtl: `${LEASE_MS}ms`, journal: false, metrics: false });
    try {
      await engine.write('a', { body: 'one' });
      relay.stall();
      // Every connection of the pool gets stuck: reads of uncached keys and a write.
      const stuck = await Promise.allSettled([engine.read('b'), engine.read('c'), engine.write('a', { body: 'two' })]);
      assert.ok(stuck.every((s) => s.status === 'rejected'), 'the engine gave up on every call');
      // The old connections are lost for good; a new one reaches the server.
      relay.abandon();
      const started = performance.now();
      let answered = false;
      while (!answered && performance.now() - started < 20_000) {
        try {
          await engine.read('d');
          answered = true;
        } catch {
          // still stuck: the engine gave up on this read too
        }
      }
      assert.ok(answered, `no read answered within 20 s of the failover (the pool's ${pool.totalCount} connections stay checked out)`);
    } finally {
      relay.abandon();
      await engine.close();
      await store.close();
      // A pool whose connections never come back cannot end: do not wait for it.
      void pool.end().catch(() => undefined);
    }
  });
});
