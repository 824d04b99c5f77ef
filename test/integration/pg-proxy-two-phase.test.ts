// Two-phase commit through the proxy, on a cluster of the test's own (the shared server runs with
// max_prepared_transactions = 0, where PREPARE TRANSACTION fails for every transaction and so tests
// nothing). A prepared write to a cached table is committed later, maybe from another session, whose
// fence does not see its rows (they are the preparing backend's, and were not committed when that
// backend's transaction ended): the proxy acknowledges a COMMIT PREPARED it relays only after a pass of
// its drainer that began after the commit. The proxy here polls once a minute and does not LISTEN, so
// nothing but that pass invalidates the row in time. A write straight on PostgreSQL still cannot be
// prepared (its NOTIFY, which wakes the drainers, makes PostgreSQL refuse).
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { after, before, describe, it } from 'node:test';
import pg from 'pg';
import postgres from 'postgres';
import { startCluster, PG_BIN, type Cluster } from '../helpers/pg-cluster.js';
import { createProxyDatabase, startTestProxy, type ProxyDatabase } from '../helpers/pg-proxy-fixture.js';
import { freePort } from '../helpers/pg-proxy-process.js';
import { needProgram } from '../helpers/services.js';
import type { PgProxy } from '../../src/pg-proxy/index.js';

const program = needProgram('initdb', `${PG_BIN}/initdb`);
const HBA = 'local all all trust\nhost all all 127.0.0.1/32 trust\n';

describe('pg-proxy: two-phase commit', { skip: program.skip || (!existsSync('/usr/sbin/runuser') && 'runuser missing'), timeout: 180_000 }, () => {
  let cluster: Cluster;
  let db: ProxyDatabase;
  let proxy: PgProxy & { url: string };
  const clients: pg.Client[] = [];
  const connect = async (url: string): Promise<pg.Client> => {
    const c = new pg.Client({ connectionString: url });
    c.on('error', () => undefined);
    await c.connect();
    clients.push(c);
    return c;
  };

  before(async () => {
    cluster = startCluster(await freePort(), HBA, '-c max_prepared_transactions=4');
    db = await createProxyDatabase('twophase', 5, `postgres://postgres@127.0.0.1:${cluster.port}/postgres`);
    const setup = await connect(db.url);
    await setup.query('CREATE TABLE other (id int PRIMARY KEY, val text NOT NULL)');
    proxy = await startTestProxy(db, { drainPollMs: 60_000, drainListen: false, bypassBoundMs: 600_000 });
  });
  after(async () => {
    await Promise.all(clients.map((c) => c.end().catch(() => undefined)));
    await proxy?.close();
    cluster?.stop();
  });

  it('prepares a write to a cached table through the proxy; a COMMIT PREPARED from another session is acknowledged after the drainer applied it', async () => {
    const reader = await connect(proxy.url);
    const read = async () => (await reader.query('SELECT val FROM items WHERE id = $1', [1])).rows[0]?.val as string;
    assert.equal(await read(), 'v1');
    assert.equal(await read(), 'v1'); // cached now

    const writer = await connect(proxy.url);
    await writer.query('BEGIN');
    await writer.query("UPDATE items SET val = 'two-phase' WHERE id = 1");
    await writer.query("PREPARE TRANSACTION 'lockstep_2pc_cached'");
    assert.equal(await read(), 'v1', 'prepared, not committed');
    assert.equal(await read(), 'v1'); // and cached again (the preparing session's fence invalidated it first)
    const drainedBefore = proxy.metrics.fencesDrained;
    const committer = await connect(proxy.url);
    await committer.query("COMMIT PREPARED 'lockstep_2pc_cached'");
    assert.equal(proxy.metrics.fencesDrained, drainedBefore + 1);
    assert.equal(await read(), 'two-phase');
  });

  it('fences a COMMIT PREPARED sent with the extended protocol too', async () => {
    const reader = await connect(proxy.url);
    const read = async () => (await reader.query('SELECT val FROM items WHERE id = $1', [2])).rows[0]?.val as string;
    assert.equal(await read(), 'v2');
    assert.equal(await read(), 'v2');
    const writer = await connect(proxy.url);
    await writer.query('BEGIN');
    await writer.query("UPDATE items SET val = 'two-phase-extended' WHERE id = 2");
    await writer.query("PREPARE TRANSACTION 'lockstep_2pc_extended'");
    assert.equal(await read(), 'v2');
    const sql = postgres(proxy.url, { max: 1, onnotice: () => undefined });
    try {
      await sql.unsafe("COMMIT PREPARED 'lockstep_2pc_extended'", [], { prepare: true });
    } finally {
      await sql.end({ timeout: 2 });
    }
    assert.equal(await read(), 'two-phase-extended');
  });

  it('a write straight on PostgreSQL still cannot be prepared (its NOTIFY wakes the drainers)', async () => {
    const direct = await connect(db.url);
    await direct.query('BEGIN');
    await direct.query("UPDATE items SET val = 'direct' WHERE id = 3");
    await assert.rejects(direct.query("PREPARE TRANSACTION 'lockstep_2pc_direct'"), /cannot PREPARE a transaction that has executed LISTEN, UNLISTEN, or NOTIFY/);
    await direct.query('ROLLBACK').catch(() => undefined);
  });

  it('prepares and commits, from another session, a transaction that wrote only other tables', async () => {
    const writer = await connect(proxy.url);
    await writer.query('BEGIN');
    await writer.query("INSERT INTO other VALUES (1, 'prepared')");
    await writer.query("PREPARE TRANSACTION 'lockstep_2pc_other'");
    const committer = await connect(proxy.url);
    await committer.query("COMMIT PREPARED 'lockstep_2pc_other'");
    assert.equal((await committer.query('SELECT val FROM other WHERE id = 1')).rows[0].val, 'prepared');
  });
});
