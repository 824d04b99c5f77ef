// A lost LISTEN connection is replaced 200 ms later. If the proxy closes while the replacement is
// still connecting (a slow network, a server that accepts and then waits), that connection must not
// survive: it used to finish connecting after close(), LISTEN, and stay open for ever (a process
// that cannot exit, a server slot used up), and every NOTIFY then started a drainer pass, which
// opened a drainer connection of its own, after close(). Real parts: the proxy's own database; a
// relay holds the listener's connection back until the proxy has closed.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import pg from 'pg';
import { startAppHoldRelay, type AppHoldRelay } from '../helpers/app-hold-relay.js';
import { createProxyDatabase, startTestProxy, type ProxyDatabase } from '../helpers/pg-proxy-fixture.js';
import { DATABASE_URL, needService } from '../helpers/services.js';

const service = await needService('PostgreSQL', DATABASE_URL);

describe('pg-proxy: a LISTEN connection still connecting when the proxy closes', { skip: service.skip, timeout: 60_000 }, () => {
  let db: ProxyDatabase;
  let relay: AppHoldRelay;
  const admin = new pg.Client({ connectionString: DATABASE_URL });
  before(async () => {
    db = await createProxyDatabase('listenclose', 3);
    relay = await startAppHoldRelay(db.url, 'lockstep pg-proxy listener');
    await admin.connect();
  });
  after(async () => {
    relay?.release();
    await admin.end();
    await relay?.close();
    await db?.drop();
  });

  const backends = async (application: string): Promise<number> =>
    Number((await admin.query(`SELECT count(*) AS n FROM pg_stat_activity WHERE datname = $1 AND application_name = $2`, [db.name, application])).rows[0].n);

  const until = async (what: string, ok: () => Promise<boolean>, boundMs = 10_000): Promise<void> => {
    const deadline = Date.now() + boundMs;
    while (!(await ok())) {
      if (Date.now() > deadline) assert.fail(`${what} (not within ${boundMs} ms)`);
      await new Promise((resolve) => setTimeout(resolve, 20));
    }
  };

  it('ends once it has connected', async () => {
    const proxy = await startTestProxy({ ...db, url: relay.urlFor(db.url) }, { drainPollMs: 3_600_000, bypassBoundMs: Infinity });
    await until('the listener', async () => (await backends('lockstep pg-proxy listener')) === 1);
    // The listener is lost; its replacement's start-up is held by the relay.
    relay.hold();
    const opened = relay.opened;
    await admin.query(`SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = $1 AND application_name = 'lockstep pg-proxy listener'`, [db.name]);
    await until('the replacement is connecting', async () => relay.opened > opened);
    await proxy.close(1000);
    relay.release();
    // Once it could connect, the replacement must end by itself: nothing else will end it.
    await until('every listener connection ended after close()', async () => relay.open === 0);
    await until('no listener backend left', async () => (await backends('lockstep pg-proxy listener')) === 0);
  });
});
