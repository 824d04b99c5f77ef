// Two-phase commit through the proxy, on a cluster of the test's own (the shared server runs with
// max_prepared_transactions = 0, where PREPARE TRANSACTION fails for every transaction and so tests
// nothing). A prepared write to a cached table could be committed from another session, whose fence
// does not see its rows (they are the preparing backend's): the acknowledgement of that
// COMMIT PREPARED would then leave the old row cached. The trigger's NOTIFY makes PostgreSQL refuse
// to prepare such a transaction, for a proxied session as for a direct one; a transaction that wrote
// only other tables can still be prepared and committed through the proxy.
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { after, before, describe, it } from 'node:test';
import pg from 'pg';
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
    proxy = await startTestProxy(db);
  });
  after(async () => {
    await Promise.all(clients.map((c) => c.end().catch(() => undefined)));
    await proxy?.close();
    cluster?.stop();
  });

  it('refuses to prepare a write to a cached table, so no other session can commit it behind the fence', async () => {
    const reader = await connect(proxy.url);
    const read = async () => (await reader.query('SELECT val FROM items WHERE id = $1', [1])).rows[0]?.val as string;
    assert.equal(await read(), 'v1');
    assert.equal(await read(), 'v1'); // cached now

    const writer = await connect(proxy.url);
    await writer.query('BEGIN');
    await writer.query("UPDATE items SET val = 'two-phase' WHERE id = 1");
    await assert.rejects(writer.query("PREPARE TRANSACTION 'lockstep_2pc_cached'"), /cannot PREPARE a transaction that has executed LISTEN, UNLISTEN, or NOTIFY/);
    await writer.query('ROLLBACK').catch(() => undefined);
    assert.equal((await (await connect(db.url)).query("SELECT count(*)::int AS n FROM pg_prepared_xacts WHERE gid = 'lockstep_2pc_cached'")).rows[0].n, 0);
    assert.equal(await read(), 'v1', 'nothing was committed');
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
