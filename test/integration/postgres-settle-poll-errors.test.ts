// A write given up on is settled by polling the database (settle-loop.ts); a poll that could not ask
// it (the database unreachable) was retried silently: nothing told an operator that writes were
// waiting to be settled, nor for how long. Each failed poll is now counted (the store's
// settlePollErrors, `lockstep_settle_poll_errors_total`) and told to the store's onWarning, at most
// once a minute, so a database that stays down does not flood the log. Real parts: PostgreSQL
// behind a relay that holds the write's bytes back and then takes no new connection (the poll's).
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import pg from 'pg';
import { createMemoryCache } from '../../src/cache/memory.js';
import { createWriteThrough } from '../../src/compose/write-through.js';
import { createMetrics } from '../../src/metrics/recorder.js';
import { createPostgresStore } from '../../src/store/postgres.js';
import type { StoreAdapter, StoreStats } from '../../src/types.js';
import { createPostgresEntityStore } from '../../src/store/entity/postgres-entity-store.js';
import { fromCommit, fromNextChunk, holdRelay } from '../helpers/hold-relay.js';
import { DATABASE_URL, needService } from '../helpers/services.js';
import { until } from '../helpers/until.js';

const service = await needService('PostgreSQL', DATABASE_URL);

describe('settling a write while the database cannot be asked', { skip: service.skip, timeout: 120_000 }, () => {
  const schema = `lockstep_settle_errors_${randomBytes(5).toString('hex')}`;
  const admin = new pg.Pool({ connectionString: DATABASE_URL, max: 1 });
  admin.on('error', () => undefined);
  before(async () => {
    await admin.query(`CREATE SCHEMA ${schema}`);
    await admin.query(`CREATE TABLE ${schema}.items (id text PRIMARY KEY, body text NOT NULL, version integer)`);
  });
  after(async () => {
    await admin.query(`DROP SCHEMA ${schema} CASCADE`);
    await admin.end();
  });

  /**
   * A store over PostgreSQL behind a relay (one connection: the settlement's poll needs a new one once
   * the held write's is given up): one write acknowledged, the next held back by the relay (`arm`),
   * which then takes no new connection, so every poll fails to connect. The failed polls must be
   * counted in the store's stats() (and what `counted` checks), and told once to its onWarning.
   */
  async function pollsFailWhileHeld(
    arm: typeof fromNextChunk,
    open: (pool: pg.Pool, onWarning: (message: string) => void) => Promise<{ store: StoreAdapter & { stats(): StoreStats }; namespace: string }>,
    counted: (engine: ReturnType<typeof createWriteThrough<{ body: string }>>) => Promise<void> = async () => undefined,
  ): Promise<void> {
    const relay = await holdRelay(DATABASE_URL);
    const pool = new pg.Pool({ connectionString: relay.url, max: 1 });
    pool.on('error', () => undefined);
    const warnings: string[] = [];
    const { store, namespace } = await open(pool, (message) => warnings.push(message));
    const engine = createWriteThrough<{ body: string }>({
      store,
      cache: createMemoryCache({ maxEntries: 100 }),
      namespace,
      leaseTtl: '1s',
      journal: false,
      metrics: false,
    });
    let closing: Promise<void> | undefined;
    try {
      await engine.write('a', { body: 'v1' });
      assert.equal(store.stats().settlePollErrors, 0);
      relay.arm(arm);
      closing = relay.close(); // from now on no new connection: every poll fails to connect
      await assert.rejects(engine.write('a', { body: 'v2' }), (e: Error & { code?: string }) => e.code === 'E_STORE_OUTCOME_UNKNOWN');
      await until('three failed polls of the settlement', async () => store.stats().settlePollErrors >= 3, 30_000);
      await counted(engine);
      assert.equal(warnings.length, 1, `one warning for the window, to the store's onWarning: ${JSON.stringify(warnings)}`);
      assert.match(warnings[0]!, /could not ask the database about 1 write\(s\) given up on/);
    } finally {
      relay.resume();
      await engine.close();
      await store.close();
      await pool.end().catch(() => undefined);
      await closing;
    }
  }

  it('counts every failed poll, in the store and in the metrics, and warns once per window', async () => {
    await pollsFailWhileHeld(
      fromNextChunk,
      async (pool, onWarning) => ({ store: createPostgresStore({ pool, schema, notify: false, statementTimeout: '200ms', onWarning }), namespace: 'settle' }),
      async (engine) => {
        const metrics = createMetrics();
        metrics.attach(engine);
        assert.ok((await metrics.snapshot()).counters.settle_poll_errors >= 3, 'lockstep_settle_poll_errors_total counts them');
      },
    );
  });

  // The PostgreSQL entity store built its settler with no warning receiver and kept no count: its
  // failed polls went to process.emitWarning whatever the application asked, and its stats() did not exist.
  it('the PostgreSQL entity store: counted in its stats() and told to its onWarning', async () => {
    await pollsFailWhileHeld(fromCommit, async (pool, onWarning) => ({
      store: await createPostgresEntityStore({ pool, schema, table: 'items', notify: false, statementTimeout: '200ms', onWarning }),
      namespace: 'items',
    }));
  });
});
