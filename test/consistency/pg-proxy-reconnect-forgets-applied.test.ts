// The race: the drainer skips the journal rows its last pass applied (a long transaction holds the
// snapshot's xmin back, so they come again). Row ids are the database's: a new connection may reach
// a different database under the same name (a promoted replica that lost the old primary's last
// commits, a restore), which hands out the same ids again, for other writes. The drainer decides
// its start again on a new connection, but kept the ids of the old database's last pass, and so
// skipped the new database's rows that reused them: bypass writes never invalidated. Here the
// journal's id sequence is set back while the drainer's connection is lost, as a failover to a
// replica that missed the last row would.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import pg from 'pg';
import { createProxyDatabase, startTestProxy, type ProxyDatabase } from '../helpers/pg-proxy-fixture.js';
import { DATABASE_URL, needService } from '../helpers/services.js';

const service = await needService('PostgreSQL', DATABASE_URL);

describe('pg-proxy: a drainer on a new connection forgets the row ids of the old one', { skip: service.skip, timeout: 60_000 }, () => {
  let db: ProxyDatabase;
  const admin = new pg.Client({ connectionString: DATABASE_URL });
  before(async () => {
    db = await createProxyDatabase('reconnectapplied', 3);
    await admin.connect();
  });
  after(async () => {
    await admin.end();
    await db?.drop();
  });

  it('a reused journal id is replayed', async () => {
    // No poll, no LISTEN: the test runs each pass itself.
    const proxy = await startTestProxy(db, { drainListen: false, drainPollMs: 3_600_000, bypassBoundMs: Infinity });
    const session = new pg.Client({ connectionString: proxy.url });
    await session.connect();
    const direct = new pg.Client({ connectionString: db.url });
    await direct.connect();
    const read = async (id: number) => (await session.query('SELECT val FROM items WHERE id = $1', [id])).rows[0]?.val as string;
    try {
      for (const id of [1, 2]) {
        assert.equal(await read(id), `v${id}`);
        const hits = proxy.metrics.hits;
        assert.equal(await read(id), `v${id}`);
        assert.equal(proxy.metrics.hits, hits + 1, `row ${id} is cached`);
      }
      // The old database's last row, applied by the drainer's last pass there.
      await direct.query("UPDATE items SET val = 'old-primary' WHERE id = 1");
      await proxy.drainer.drain();
      const { id: lastId } = (await direct.query('SELECT max(id)::int AS id FROM lockstep_proxy.journal')).rows[0] as { id: number };
      // The failover: the connection is lost, and the new database never had that row; it hands the id out again.
      await admin.query(`SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = $1 AND application_name = 'lockstep pg-proxy drainer'`, [db.name]);
      await direct.query('DELETE FROM lockstep_proxy.journal WHERE id = $1', [lastId]);
      await direct.query(`SELECT setval(pg_get_serial_sequence('lockstep_proxy.journal', 'id'), $1, false)`, [lastId]);
      await direct.query("UPDATE items SET val = 'new-primary' WHERE id = 2");
      const { id: reused } = (await direct.query('SELECT max(id)::int AS id FROM lockstep_proxy.journal')).rows[0] as { id: number };
      assert.equal(reused, lastId, 'the id was handed out again');
      // Passes until one succeeds on a new connection.
      const deadline = performance.now() + 10_000;
      for (;;) {
        try {
          await proxy.drainer.drain();
          break;
        } catch (error) {
          if (performance.now() > deadline) throw error;
        }
      }
      assert.equal(await read(2), 'new-primary', 'the bypass write whose journal id the old database had used was skipped: the old row is served');
    } finally {
      await session.end();
      await direct.end();
      await proxy.close(1000);
    }
  });
});
