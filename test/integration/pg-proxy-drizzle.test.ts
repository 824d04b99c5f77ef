// An unchanged Drizzle (node-postgres) app pointed at the proxy instead of PostgreSQL: its
// primary-key selects are served from the cache, and its own updates are visible at once.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { eq, sql } from 'drizzle-orm';
import { drizzle } from 'drizzle-orm/node-postgres';
import { doublePrecision, integer, pgTable, text, timestamp } from 'drizzle-orm/pg-core';
import pg from 'pg';
import { createProxyDatabase, startTestProxy, type ProxyDatabase } from '../helpers/pg-proxy-fixture.js';
import { DATABASE_URL, needService } from '../helpers/services.js';
import type { PgProxy } from '../../src/pg-proxy/index.js';

const service = await needService('PostgreSQL', DATABASE_URL);

const items = pgTable('items', {
  id: integer('id').primaryKey(),
  val: text('val').notNull(),
  n: integer('n').notNull(),
  at: timestamp('at', { withTimezone: true }).notNull(),
  price: doublePrecision('price').notNull(),
});

describe('pg-proxy under Drizzle', { skip: service.skip, timeout: 60_000 }, () => {
  let db: ProxyDatabase;
  let proxy: PgProxy & { url: string };
  let pool: pg.Pool;
  before(async () => {
    db = await createProxyDatabase('drizzle', 5);
    proxy = await startTestProxy(db);
    pool = new pg.Pool({ connectionString: proxy.url, max: 4 });
    pool.on('error', () => undefined); // an idle client told that the proxy shuts down at the end
  });
  after(async () => {
    await pool?.end();
    await proxy?.close(1000);
    await db?.drop();
  });

  it('selects by primary key hit the cache; updates, inserts, deletes and transactions are seen at once', async () => {
    const orm = drizzle(pool);
    const first = await orm.select().from(items).where(eq(items.id, 1));
    const hits = proxy.metrics.hits;
    const second = await orm.select().from(items).where(eq(items.id, 1));
    assert.deepEqual(second, first);
    assert.equal(proxy.metrics.hits, hits + 1);
    const [updated] = await orm.update(items).set({ val: 'drizzle', n: sql`${items.n} + 1` }).where(eq(items.id, 1)).returning();
    assert.deepEqual(await orm.select().from(items).where(eq(items.id, 1)), [updated]);
    await orm.transaction(async (tx) => {
      await tx.update(items).set({ val: 'in-tx' }).where(eq(items.id, 2));
    });
    assert.equal((await orm.select().from(items).where(eq(items.id, 2)))[0]?.val, 'in-tx');
    await orm.select().from(items).where(eq(items.id, 3));
    await orm.delete(items).where(eq(items.id, 3));
    assert.deepEqual(await orm.select().from(items).where(eq(items.id, 3)), []);
    await orm.insert(items).values({ id: 3, val: 'back', n: 0, at: new Date(0), price: 2 });
    assert.equal((await orm.select().from(items).where(eq(items.id, 3)))[0]?.val, 'back');
  });
});
