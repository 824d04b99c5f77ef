// An application caches several tables over one pg.Pool (or opens and closes an integration on it
// over time): each open must not leave one more 'error' listener on the pool's connections. Every
// store made on the pool used to add its own listener to each connection it checked out first, never
// removed: with 11 tables on a pool, Node warned of a leak (MaxListenersExceededWarning), and an
// integration opened and closed again and again grew each connection's listeners without bound.
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { describe, it } from 'node:test';
import { drizzle } from 'drizzle-orm/node-postgres';
import { integer, pgSchema, text } from 'drizzle-orm/pg-core';
import pg from 'pg';
import { createMemoryCache } from '../../src/cache/memory.js';
import { drizzleTable } from '../../src/integrations/drizzle.js';
import { DATABASE_URL, needService } from '../helpers/services.js';

const postgres = await needService('PostgreSQL', DATABASE_URL);

describe('integrations opened again and again on one pool', { skip: postgres.skip }, () => {
  it("leave the pool's connection with a bounded number of 'error' listeners", async () => {
    const schema = `lockstep_adv_pl_${randomBytes(5).toString('hex')}`;
    const pool = new pg.Pool({ connectionString: DATABASE_URL, max: 1 });
    await pool.query(`CREATE SCHEMA ${schema}; CREATE TABLE ${schema}.notes (id integer PRIMARY KEY, title text, version integer NOT NULL DEFAULT 1)`);
    const notes = pgSchema(schema).table('notes', { id: integer('id').primaryKey(), title: text('title'), version: integer('version').notNull().default(1) });
    const db = drizzle(pool);
    const warnings: string[] = [];
    const onWarning = (warning: Error) => warnings.push(`${warning.name}: ${warning.message}`);
    process.on('warning', onWarning);
    try {
      for (let i = 0; i < 15; i++) {
        const table = await drizzleTable(db, notes, { version: notes.version, cache: createMemoryCache({ maxEntries: 10 }), journal: false });
        await table.insert({ id: i, title: 'x' });
        await table.close();
      }
      const client = await pool.connect();
      try {
        assert.ok(client.listenerCount('error') <= 3, `the connection has ${client.listenerCount('error')} 'error' listeners after 15 opens`);
      } finally {
        client.release();
      }
      assert.deepEqual(warnings.filter((w) => w.startsWith('MaxListenersExceededWarning')), []);
    } finally {
      process.off('warning', onWarning);
      await pool.query(`DROP SCHEMA ${schema} CASCADE`);
      await pool.end();
    }
  });
});
