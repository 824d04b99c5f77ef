// The proxy's bypass drainer keeps one LISTEN connection and replaces it when it is lost. pg reports
// a terminated idle connection twice ('error' for the backend's FATAL message, then again when the
// socket ends), and the drainer replaced the connection once per report: every loss doubled the
// listeners (three pg_terminate_backend: eight connections), none of them ended by close(), until
// the server ran out of connections. Real parts: the proxy's own database, its listener's backend
// terminated again and again; then the proxy closes and no listener may remain.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import pg from 'pg';
import { createProxyDatabase, startTestProxy, type ProxyDatabase } from '../helpers/pg-proxy-fixture.js';
import { DATABASE_URL, needService } from '../helpers/services.js';

const service = await needService('PostgreSQL', DATABASE_URL);
const LOSSES = 3;

describe('pg-proxy: a lost LISTEN connection is replaced by one connection', { skip: service.skip, timeout: 60_000 }, () => {
  let db: ProxyDatabase;
  const admin = new pg.Client({ connectionString: DATABASE_URL });
  before(async () => {
    db = await createProxyDatabase('listenloss', 3);
    await admin.connect();
  });
  after(async () => {
    await admin.end();
    await db?.drop();
  });

  /** The backends of the proxy's listener, in this file's own database. */
  const listeners = async (): Promise<number[]> =>
    (
      await admin.query(`SELECT pid FROM pg_stat_activity WHERE datname = $1 AND application_name = 'lockstep pg-proxy listener'`, [db.name])
    ).rows.map((r: { pid: number }) => r.pid);

  const until = async (what: string, ok: () => Promise<boolean>, boundMs = 10_000): Promise<void> => {
    const deadline = Date.now() + boundMs;
    while (!(await ok())) {
      if (Date.now() > deadline) assert.fail(`${what} (not within ${boundMs} ms)`);
      await new Promise((resolve) => setTimeout(resolve, 20));
    }
  };

  it('after each pg_terminate_backend; close() leaves none', async () => {
    const proxy = await startTestProxy(db);
    let seen = new Set(await listeners());
    assert.equal(seen.size, 1, 'one listener at start');
    for (let loss = 1; loss <= LOSSES; loss++) {
      for (const pid of seen) await admin.query('SELECT pg_terminate_backend($1)', [pid]);
      await until(`a new listener after loss ${loss}`, async () => (await listeners()).some((pid) => !seen.has(pid)));
      seen = new Set(await listeners());
    }
    await proxy.close(1000);
    // Backends of ended connections exit within moments; a leaked listener stays for ever.
    await until('no listener left after close()', async () => (await listeners()).length === 0);
  });
});
