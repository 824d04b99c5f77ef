// Operating the proxy: /metrics and /healthz on its HTTP port, and SIGTERM draining — new sessions
// refused, idle ones closed at once, a transaction in flight allowed to commit, exit within the grace.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import pg from 'pg';
import { createProxyDatabase, type ProxyDatabase } from '../helpers/pg-proxy-fixture.js';
import { freePort, spawnProxy } from '../helpers/pg-proxy-process.js';
import { DATABASE_URL, needService } from '../helpers/services.js';

const service = await needService('PostgreSQL', DATABASE_URL);

describe('pg-proxy operations', { skip: service.skip, timeout: 120_000 }, () => {
  let db: ProxyDatabase;
  before(async () => {
    db = await createProxyDatabase('ops', 5);
  });
  after(async () => {
    await db?.drop();
  });

  it('serves /metrics and /healthz, and drains on SIGTERM', async () => {
    const [port, httpPort] = [await freePort(), await freePort()];
    const proxy = await spawnProxy(['--listen', `127.0.0.1:${port}`, '--upstream', db.url, '--table', 'items', '--http-port', String(httpPort), '--grace', '20s']);
    const url = new URL(db.url);
    url.host = `127.0.0.1:${port}`;
    const idle = new pg.Client({ connectionString: url.toString() });
    const busy = new pg.Client({ connectionString: url.toString() });
    idle.on('error', () => undefined);
    busy.on('error', () => undefined);
    try {
      await idle.connect();
      await busy.connect();
      await idle.query('SELECT * FROM items WHERE id = $1', [1]);
      await idle.query('SELECT * FROM items WHERE id = $1', [1]);
      const health = await fetch(`http://127.0.0.1:${httpPort}/healthz`);
      assert.equal(health.status, 200);
      const metrics = await (await fetch(`http://127.0.0.1:${httpPort}/metrics`)).text();
      assert.match(metrics, /^lockstep_pgproxy_hits_total 1$/m);
      assert.match(metrics, /^lockstep_pgproxy_misses_total 1$/m);
      assert.match(metrics, /^lockstep_pgproxy_sessions 2$/m);
      assert.match(metrics, /lockstep_pgproxy_pass_through_total\{reason="variant"\} 0/);

      await busy.query('BEGIN');
      await busy.query("UPDATE items SET val = 'drained' WHERE id = 2");
      const started = Date.now();
      proxy.child.kill('SIGTERM');
      // The idle session is closed; the transaction in flight may still commit.
      await assert.rejects(async () => {
        for (let i = 0; i < 200; i++) {
          await idle.query('SELECT 1');
          await new Promise((r) => setTimeout(r, 20));
        }
      });
      const refused = new pg.Client({ connectionString: url.toString(), connectionTimeoutMillis: 3_000 });
      refused.on('error', () => undefined);
      await assert.rejects(refused.connect());
      await busy.query('COMMIT');
      assert.equal(await proxy.exited, 0);
      assert.ok(Date.now() - started < 15_000, 'drained long before the grace ran out');
      const direct = new pg.Client({ connectionString: db.url });
      await direct.connect();
      assert.equal((await direct.query('SELECT val FROM items WHERE id = 2')).rows[0].val, 'drained');
      await direct.end();
    } finally {
      proxy.child.kill('SIGKILL');
      await idle.end().catch(() => undefined);
      await busy.end().catch(() => undefined);
    }
  });
});
