// The proxy reads SQL with libpg-query, PostgreSQL 18's grammar; the server may be older. Since
// PostgreSQL 16 `0x10`, `0o20`, `0b10000` and `1_6` are integer literals (16); PostgreSQL 15 refuses them
// ("trailing junk after numeric literal"), and older versions never read them as one number. They
// normalize to the same shape as `16`, so once `WHERE id = 16` was cached, `WHERE id = 0x10` was
// served row 16 where PostgreSQL 15 sends an error. Every spelling must get what this server sends.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import pg from 'pg';
import { createProxyDatabase, proxyClients, startTestProxy, type ProxyDatabase } from '../helpers/pg-proxy-fixture.js';
import { DATABASE_URL, needService } from '../helpers/services.js';
import type { PgProxy } from '../../src/pg-proxy/index.js';

const service = await needService('PostgreSQL', DATABASE_URL);

describe('pg-proxy: integer literals the server may not read as the proxy does', { skip: service.skip, timeout: 120_000 }, () => {
  let db: ProxyDatabase;
  let proxy: PgProxy & { url: string };
  let direct: pg.Client;
  const clients = proxyClients(() => proxy);

  before(async () => {
    db = await createProxyDatabase('literals', 20);
    proxy = await startTestProxy(db);
    direct = new pg.Client({ connectionString: db.url });
    await direct.connect();
  });
  after(async () => {
    await clients.closeAll();
    await direct?.end();
    await proxy?.close(1000);
    await db?.drop();
  });

  const outcome = (c: pg.Client, sql: string) =>
    c.query(sql).then(
      (r) => JSON.stringify(r.rows),
      (e: { code?: string }) => `error ${e.code}`,
    );

  it('a cached row is not served for a spelling this server does not read as its key', async () => {
    const reader = await clients.open();
    const sql = (literal: string) => `SELECT id, val FROM items WHERE id = ${literal}`;
    let hit = false;
    for (let i = 0; i < 10 && !hit; i++) {
      const hits = proxy.metrics.hits;
      assert.equal(await outcome(reader, sql('16')), JSON.stringify([{ id: 16, val: 'v16' }]));
      hit = proxy.metrics.hits === hits + 1;
    }
    assert.ok(hit, 'row 16 was cached');
    for (const literal of ['0x10', '0X10', '0o20', '0b10000', '1_6', '016', '(16)', '- -16']) {
      assert.equal(await outcome(reader, sql(literal)), await outcome(direct, sql(literal)), `WHERE id = ${literal}`);
    }
    // The canonical spelling is still a hit.
    const hits = proxy.metrics.hits;
    await outcome(reader, sql('16'));
    assert.equal(proxy.metrics.hits, hits + 1);
  });
});
