// A real PostgreSQL failover under a running Lockstep: a primary and an asynchronous streaming
// replica (pg_basebackup -R) that this test creates; the replica is stopped, so it misses the next
// write made through Lockstep (cached in Redis); the primary is killed; the replica is started on the
// primary's port (the address a failover moves) and promoted. Its journal is exactly the one the
// drainer saw: only its timeline tells it apart (StoreAdapter.incarnation). The drainer's next pass
// must flush the cache: the lost value is no longer served, and a write after the failover, at the
// version the lost one had, is read. Without the check (mutant `store-incarnation-unchecked-per-pass`)
// the lost value stays cached until its TTL.
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { existsSync } from 'node:fs';
import { after, before, describe, it } from 'node:test';
import pg from 'pg';
import { createClient } from 'redis';
import { createRedisCache } from '../../src/cache/redis.js';
import { createWriteThrough } from '../../src/compose/write-through.js';
import { createPostgresStore } from '../../src/store/postgres.js';
import { PG_BIN, startCluster, startReplica, type Cluster, type Replica } from '../helpers/pg-cluster.js';
import { freePort } from '../helpers/pg-proxy-process.js';
import { needProgram, needService, REDIS_URL } from '../helpers/services.js';
import { until, untilValue } from '../helpers/until.js';

const program = needProgram('initdb', `${PG_BIN}/initdb`);
const redisUp = await needService('Redis', REDIS_URL);
const HBA = 'local all all trust\nhost all all 127.0.0.1/32 trust\nlocal replication all trust\nhost replication all 127.0.0.1/32 trust\n';

describe('a PostgreSQL failover to an asynchronous replica that missed a write (PostgreSQL + Redis)', { skip: program.skip || redisUp.skip || (!existsSync('/usr/sbin/runuser') && 'runuser missing'), timeout: 180_000 }, () => {
  let primary: Cluster | undefined;
  let replica: Replica | undefined;
  const keyPrefix = `failover-pg-${randomUUID().slice(0, 8)}:`;

  before(async () => {
    primary = startCluster(await freePort(), HBA);
    replica = startReplica(primary, await freePort());
  });
  after(async () => {
    replica?.remove();
    primary?.stop();
    const client = createClient({ url: REDIS_URL });
    await client.connect();
    for await (const keys of client.scanIterator({ MATCH: `${keyPrefix}*`, COUNT: 100 })) if (keys.length > 0) await client.del(keys);
    await client.quit();
  });

  it('the next pass after the promotion flushes the cache: the lost value is not served, and a write at its version again is read', async () => {
    const port = primary!.port;
    const pool = new pg.Pool({ host: '127.0.0.1', port, user: 'postgres', database: 'postgres', max: 2 });
    pool.on('error', () => undefined); // the primary's connections die with it
    const store = createPostgresStore({ pool, schema: 'kv', notify: false });
    const cache = createRedisCache({ url: REDIS_URL, keyPrefix });
    await cache.connect();
    const engine = createWriteThrough<string>({ store, cache, namespace: 'ns', metrics: false, journal: { pollInterval: '1h' } });
    try {
      await engine.write('k', 'v1');
      await engine.drainJournal(); // the cursor is saved with the primary's incarnation
      assert.ok((await cache.loadJournalCursor(await store.journalId()))?.incarnation !== undefined);
      const timeline = await store.incarnation();

      // The replica has v1, then is stopped: it misses v2.
      await untilValue('the replica has v1', async () => {
        const probe = new pg.Client({ host: '127.0.0.1', port: replica!.port, user: 'postgres', database: 'postgres' });
        try {
          await probe.connect();
          const { rows } = await probe.query("SELECT value FROM kv.lockstep_kv WHERE namespace = 'ns' AND key = 'k'");
          return rows[0]?.value === JSON.stringify('v1') ? true : undefined;
        } catch {
          return undefined;
        } finally {
          await probe.end().catch(() => undefined);
        }
      });
      replica!.stop();
      assert.equal((await engine.write('k', 'v2')).version, 2);
      assert.equal((await engine.readEntry('k')).source, 'hit', 'v2 is cached');

      // The primary dies; the replica takes its address and is promoted.
      primary!.stop();
      primary = undefined;
      replica!.promoteOn(port);
      await until('the store answers from the promoted replica', async () => (await store.incarnation()) !== timeline);

      await until('a journal pass after the failover', async () => (await engine.drainJournal(), true));
      const after = await engine.readEntry('k');
      assert.deepEqual([after.value, after.version], ['v1', 1], "the promoted store's value, not the lost v2");
      const written = await engine.write('k', 'v3');
      assert.equal(written.version, 2, 'the version the lost v2 had, handed out again');
      assert.equal(await engine.read('k'), 'v3');
    } finally {
      await engine.close();
      await cache.close();
      await store.close();
      await pool.end().catch(() => undefined);
    }
  });
});
