// A real PostgreSQL failover under a running pg-proxy: a primary and an asynchronous streaming
// replica (pg_basebackup -R) that this test creates, the proxy's upstream at the primary's port. A row
// is cached through the proxy; the replica is stopped, so it misses the next write, made through the
// proxy and cached too; the primary is killed; the replica is started on the primary's port (the
// address a failover moves) and promoted. The proxy's drainer reconnects: the first connection to the
// new primary is a new one, and the transaction ids it reads from may be handed out again. Its first
// pass there reads another incarnation (the timeline), flushes every cached table and replays the
// journal: reads answer the promoted server's row. Without the check (mutant
// `proxy-drainer-ignores-incarnation`) the lost row stays cached until its TTL.
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { after, before, describe, it } from 'node:test';
import pg from 'pg';
import { createMemoryCache } from '../../src/cache/memory.js';
import { journalIdOf } from '../../src/pg-proxy/context.js';
import { PG_BIN, startCluster, startReplica, type Cluster, type Replica } from '../helpers/pg-cluster.js';
import { createProxyDatabase, proxyClients, startTestProxy } from '../helpers/pg-proxy-fixture.js';
import { freePort } from '../helpers/pg-proxy-process.js';
import { needProgram } from '../helpers/services.js';
import { until, untilValue } from '../helpers/until.js';

const program = needProgram('initdb', `${PG_BIN}/initdb`);
const HBA = 'local all all trust\nhost all all 127.0.0.1/32 trust\nlocal replication all trust\nhost replication all 127.0.0.1/32 trust\n';
const READ = 'SELECT val FROM items WHERE id = $1';

describe('pg-proxy: a failover to an asynchronous replica that missed a write', { skip: program.skip || (!existsSync('/usr/sbin/runuser') && 'runuser missing'), timeout: 180_000 }, () => {
  let primary: Cluster | undefined;
  let replica: Replica | undefined;

  before(async () => {
    primary = startCluster(await freePort(), HBA);
    replica = startReplica(primary, await freePort());
  });
  after(() => {
    replica?.remove();
    primary?.stop();
  });

  it("the drainer's first pass on the promoted server flushes the cache: the lost row is not served", async () => {
    const port = primary!.port;
    const db = await createProxyDatabase('failover', 3, `postgres://postgres@127.0.0.1:${port}/postgres`);
    const cache = createMemoryCache({ maxEntries: 1_000 });
    const proxy = await startTestProxy(db, { cache });
    const clients = proxyClients(() => proxy);
    try {
      const reader = await clients.open();
      assert.equal((await clients.untilHit<{ val: string }>(reader, READ, 1)).val, 'v1', 'v1 is cached');
      const journalId = journalIdOf(proxy.cacheScope);
      await proxy.drainer.drain();
      const before = (await cache.loadJournalCursor(journalId))?.incarnation;
      assert.match(before ?? '', /^[0-9a-f]{16}$/, "the cursor is saved with the upstream's incarnation");

      // The replica replays everything so far (the proxy's schema, the row), then is stopped: it misses the write.
      const primaryClient = new pg.Client({ host: '127.0.0.1', port, user: 'postgres', database: 'postgres' });
      await primaryClient.connect();
      const lsn = (await primaryClient.query<{ lsn: string }>('SELECT pg_catalog.pg_current_wal_lsn()::text AS lsn')).rows[0]!.lsn;
      await primaryClient.end();
      await untilValue('the replica replayed the primary', async () => {
        const probe = new pg.Client({ host: '127.0.0.1', port: replica!.port, user: 'postgres', database: 'postgres' });
        try {
          await probe.connect();
          const { rows } = await probe.query<{ done: boolean }>('SELECT pg_catalog.pg_last_wal_replay_lsn() >= $1::pg_lsn AS done', [lsn]);
          return rows[0]?.done === true ? true : undefined;
        } catch {
          return undefined;
        } finally {
          await probe.end().catch(() => undefined);
        }
      });
      replica!.stop();
      await reader.query("UPDATE items SET val = 'lost' WHERE id = 1");
      assert.equal((await clients.untilHit<{ val: string }>(reader, READ, 1)).val, 'lost', 'the lost write is cached');

      // The primary dies; the replica takes its address and is promoted.
      primary!.stop();
      primary = undefined;
      replica!.promoteOn(port);
      // Two passes in a row: the second began after the first ended, so after the promotion (the
      // first may be one that read the old primary before it died).
      await until('two drainer passes on the promoted server', async () => (await proxy.drainer.drain(), await proxy.drainer.drain(), true), 60_000);

      const afterFailover = await clients.open();
      assert.equal((await afterFailover.query<{ val: string }>(READ, [1])).rows[0]!.val, 'v1', "the promoted server's row, not the lost one");
      assert.equal((await clients.untilHit<{ val: string }>(afterFailover, READ, 1)).val, 'v1', "the promoted server's row is what is cached now");
      const saved = (await cache.loadJournalCursor(journalId))?.incarnation;
      assert.ok(saved !== undefined && saved !== before, "the cursor is saved with the promoted server's incarnation");
    } finally {
      await clients.closeAll();
      await proxy.close(1_000);
    }
  });
});
