// Row-level security enabled on a cached table after the proxy started. Tables with RLS are refused at
// start (a policy can depend on anything: a custom setting, a function), but `ALTER TABLE … ENABLE ROW
// LEVEL SECURITY` later only flushed the table: the next fill cached an answer that depends on the
// filling session's custom setting, and a session of the same role with another setting was served it.
// The fill checks, in its own snapshot, that the table has no row-level security.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import pg from 'pg';
import { createProxyDatabase, proxyClients, startTestProxy, type ProxyDatabase } from '../helpers/pg-proxy-fixture.js';
import { needProgram } from '../helpers/services.js';
import { startCluster, type Cluster } from '../helpers/pg-cluster.js';
import { freePort } from '../helpers/pg-proxy-process.js';
import type { PgProxy } from '../../src/pg-proxy/index.js';

// Roles are the cluster's, and every proxy's drainer flushes its cached tables when they change: on
// the shared PostgreSQL this test's roles would flush the caches of the proxy tests running beside it.
const program = needProgram('initdb', '/usr/lib/postgresql/15/bin/initdb');
const HBA = 'local all all trust\nhost all all 127.0.0.1/32 trust\n';
const TENANT = `lockstep_tenant_${process.pid}`;

describe('pg-proxy: row-level security enabled while the proxy runs', { skip: program.skip, timeout: 180_000 }, () => {
  let db: ProxyDatabase;
  let cluster: Cluster;
  /** The cluster's own `postgres` database: roles are created and dropped there. */
  let clusterUrl: string;
  let proxy: PgProxy & { url: string };
  const clients = proxyClients(() => proxy);

  before(async () => {
    cluster = startCluster(await freePort(), HBA);
    clusterUrl = `postgres://postgres@127.0.0.1:${cluster.port}/postgres`;
    db = await createProxyDatabase('rlsrun', 20, clusterUrl);
    const admin = new pg.Client({ connectionString: db.url });
    await admin.connect();
    await admin.query(`DROP ROLE IF EXISTS ${TENANT}; CREATE ROLE ${TENANT} LOGIN; GRANT SELECT ON items TO ${TENANT}`);
    await admin.end();
    proxy = await startTestProxy(db);
  });
  after(async () => {
    await clients.closeAll();
    await proxy?.close(1000);
    await db?.drop();
    cluster?.stop(); // its roles go with it
  });

  it("a session is never served another session's answer that its policy hides", async () => {
    const owner = await clients.open();
    await owner.query("CREATE POLICY by_n ON items USING (n = coalesce(nullif(current_setting('app.n', true), ''), '0')::int)");
    await owner.query('ALTER TABLE items ENABLE ROW LEVEL SECURITY');
    const url = new URL(proxy.url);
    url.username = TENANT;
    const a = await clients.open(url.toString());
    const b = await clients.open(url.toString());
    await b.query("SET app.n = '1'");
    const sql = 'SELECT id, val FROM items WHERE id = $1';
    // Session a sees row 6 (n = 0); read it several times, as a cache would serve it.
    for (let i = 0; i < 3; i++) assert.deepEqual((await a.query(sql, [6])).rows, [{ id: 6, val: 'v6' }]);
    assert.deepEqual((await b.query(sql, [6])).rows, [], 'the policy hides row 6 from session b');
    assert.deepEqual((await b.query('SELECT id, val FROM items WHERE id = 6')).rows, [], 'simple protocol too');
  });
});
