// Proxies that share one cache (Redis) must share answers only when they cache the same tables of the
// same database under the same journal. Cached answers were keyed by the database's name and the
// table's alone: a proxy of another cluster whose database and table have the same names (two
// services' `postgres.public.users` on one Redis) was served the other cluster's rows; and a proxy with
// another schema of its own (--schema) on the same database has its own version sequence, so the
// fence of a write through it — invalidateOlder(key, its version) — left the other proxy's answer of
// a higher version in place, and its own next read returned the row its write had replaced. Keys are
// now scoped by the cluster's system identifier, the database's oid and the proxy's schema.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import pg from 'pg';
import { createMemoryCache } from '../../src/cache/memory.js';
import { createProxyDatabase, startTestProxy, type ProxyDatabase } from '../helpers/pg-proxy-fixture.js';
import { DATABASE_URL, needProgram, needService } from '../helpers/services.js';
import { startCluster, type Cluster } from '../helpers/pg-cluster.js';
import { freePort } from '../helpers/pg-proxy-process.js';
import type { PgProxy } from '../../src/pg-proxy/index.js';

const service = await needService('PostgreSQL', DATABASE_URL);
const program = needProgram('initdb', '/usr/lib/postgresql/15/bin/initdb');
const HBA = 'local all all trust\nhost all all 127.0.0.1/32 trust\n';
const SQL = 'SELECT val FROM items WHERE id = $1';
// No drainer pass but those a test asks for: only a proxy's own fences reach the cache.
const QUIET = { drainListen: false, drainPollMs: 3_600_000, bypassBoundMs: Infinity };

describe('pg-proxy: proxies that share a cache', { skip: service.skip || program.skip, timeout: 180_000 }, () => {
  const proxies: PgProxy[] = [];
  const clients: pg.Client[] = [];
  const databases: ProxyDatabase[] = [];
  let cluster: Cluster | undefined;
  after(async () => {
    for (const c of clients) await c.end().catch(() => undefined);
    for (const p of proxies) await p.close(1000);
    for (const db of databases) await db.drop();
    cluster?.stop();
  });
  const open = async (url: string) => {
    const c = new pg.Client({ connectionString: url });
    await c.connect();
    clients.push(c);
    return c;
  };

  it('two proxy schemas on one database: a write through one is read at once through it, and through the other after its drainer\'s pass', async () => {
    const db = await createProxyDatabase('cachescope', 5);
    databases.push(db);
    const cache = createMemoryCache({ maxEntries: 1_000 });
    const older = await startTestProxy(db, { ...QUIET, cache, schema: 'proxy_old' });
    proxies.push(older);
    // The older proxy's version sequence runs ahead: writes made while only its triggers existed.
    const direct = await open(db.url);
    for (let i = 0; i < 20; i++) await direct.query('UPDATE items SET n = n + 1 WHERE id = 1');
    const newer = await startTestProxy(db, { ...QUIET, cache });
    proxies.push(newer);
    const viaOlder = await open(older.url);
    const viaNewer = await open(newer.url);
    await older.drainer.drain();
    for (let i = 0; i < 3; i++) assert.equal((await viaOlder.query(SQL, [1])).rows[0].val, 'v1');
    assert.ok(older.metrics.hits >= 1, 'cached by the older proxy');
    await viaNewer.query("UPDATE items SET val = 'new' WHERE id = 1");
    assert.equal((await viaNewer.query(SQL, [1])).rows[0].val, 'new');
    // For the older proxy that write went straight to PostgreSQL: its drainer's pass invalidates it.
    await older.drainer.drain();
    assert.equal((await viaOlder.query(SQL, [1])).rows[0].val, 'new');
  });

  it('two clusters with a database and table of the same names: each proxy serves its own cluster\'s rows', async () => {
    cluster = startCluster(await freePort(), HBA);
    const here = await createProxyDatabase('samename', 5);
    const there = await createProxyDatabase('samename', 5, `postgres://postgres@127.0.0.1:${cluster.port}/postgres`);
    databases.push(here, there);
    assert.equal(here.name, there.name);
    const admin = await open(there.url);
    await admin.query("UPDATE items SET val = 'there' WHERE id = 2");
    const cache = createMemoryCache({ maxEntries: 1_000 });
    const proxyHere = await startTestProxy(here, { ...QUIET, cache });
    const proxyThere = await startTestProxy(there, { ...QUIET, cache });
    proxies.push(proxyHere, proxyThere);
    const viaHere = await open(proxyHere.url);
    const viaThere = await open(proxyThere.url);
    for (let i = 0; i < 3; i++) assert.equal((await viaHere.query(SQL, [2])).rows[0].val, 'v2');
    assert.ok(proxyHere.metrics.hits >= 1, 'cached by the first proxy');
    for (let i = 0; i < 3; i++) assert.equal((await viaThere.query(SQL, [2])).rows[0].val, 'there');
  });
});
