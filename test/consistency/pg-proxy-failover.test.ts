// A real PostgreSQL failover under a running pg-proxy: a primary and an asynchronous streaming
// replica (pg_basebackup -R) that this test creates, the proxy's upstream at the primary's port. A row
// is cached through the proxy; the replica is stopped, so it misses the next write, made through the
// proxy and cached too; the primary is killed; the replica is started on the primary's port (the
// address a failover moves) and promoted. The proxy's drainer reconnects: the first connection to the
// new primary is a new one, and the transaction ids it reads from may be handed out again. Its first
// pass there reads another incarnation (the timeline), flushes every cached table and replays the
// journal: reads answer the promoted server's row. Without the check (mutant
// `proxy-drainer-ignores-incarnation`) the lost row stays cached until its TTL. The second case
// closes the proxy before the failover and starts another on the same cache after it, as a role that
// is not a superuser (no event trigger: its install journals no flush of its tables, which would
// hide the bug), after other transactions on the promoted server took its transaction ids past the
// saved cursor: only the saved cursor's incarnation tells (mutant `proxy-drainer-ignores-saved-incarnation`).
// The third has the drainer's replay after the change fail: its connection is ended by the server
// (pg_terminate_backend, sent the moment the drainer sends that pass's query: a hook on the driver's
// query, the fault itself real); the next connection must not trust the cursor saved on the old
// server, but replay from the start (mutant `proxy-drainer-trusts-cursor-after-failed-replay`).
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { describe, it } from 'node:test';
import pg from 'pg';
import { randomUUID } from 'node:crypto';
import { createClient } from 'redis';
import { createMemoryCache } from '../../src/cache/memory.js';
import { createRedisCache } from '../../src/cache/redis.js';
import { journalIdOf } from '../../src/pg-proxy/context.js';
import type { PgProxy } from '../../src/pg-proxy/index.js';
import { PG_BIN, startCluster, startReplica, type Cluster, type Replica } from '../helpers/pg-cluster.js';
import { createProxyDatabase, proxyClients, startTestProxy } from '../helpers/pg-proxy-fixture.js';
import { freePort } from '../helpers/pg-proxy-process.js';
import { needProgram, needService, REDIS_URL } from '../helpers/services.js';
import { until, untilValue } from '../helpers/until.js';

const program = needProgram('initdb', `${PG_BIN}/initdb`);
const redisUp = await needService('Redis', REDIS_URL);

async function dropKeys(prefix: string): Promise<void> {
  const client = createClient({ url: REDIS_URL });
  await client.connect();
  for await (const keys of client.scanIterator({ MATCH: `${prefix}*`, COUNT: 100 })) if (keys.length > 0) await client.del(keys);
  await client.quit();
}
const HBA = 'local all all trust\nhost all all 127.0.0.1/32 trust\nlocal replication all trust\nhost replication all 127.0.0.1/32 trust\n';
const READ = 'SELECT val FROM items WHERE id = $1';

const PASS_QUERY = 'j.xid >= $1::xid8';

/**
 * Ends the drainer's backend (pg_terminate_backend, from `admin()`'s connection) when it sends its
 * first pass query from transaction id 0 — the replay after a failover — and records whether a pass
 * from 0 completed after that. Returns the uninstall function and what was seen.
 */
function interruptFirstReplay(admin: () => pg.Client): { restore(): void; seen: { interrupted: boolean; replayedAfter: boolean } } {
  const seen = { interrupted: false, replayedAfter: false };
  const original = pg.Client.prototype.query;
  const hooked = function (this: pg.Client, config: unknown, values?: unknown, callback?: unknown): unknown {
    const fromZero = typeof config === 'string' && config.includes(PASS_QUERY) && Array.isArray(values) && values[0] === '0';
    if (!fromZero) return (original as (...args: unknown[]) => unknown).call(this, config, values, callback);
    if (!seen.interrupted) {
      seen.interrupted = true;
      const pid = (this as unknown as { processID: number }).processID;
      return admin()
        .query('SELECT pg_catalog.pg_terminate_backend($1)', [pid])
        .then(() => (original as (...args: unknown[]) => Promise<unknown>).call(this, config, values));
    }
    const result = (original as (...args: unknown[]) => Promise<unknown>).call(this, config, values);
    return result.then((r) => ((seen.replayedAfter = true), r));
  };
  pg.Client.prototype.query = hooked as typeof pg.Client.prototype.query;
  return { restore: () => void (pg.Client.prototype.query = original), seen };
}

/**
 * A primary with a replica, a row and then a write the replica misses cached through a proxy, a
 * failover; `restart`: a new proxy on the same cache after it, the upstream role not a superuser;
 * `interrupt`: the drainer's replay after the failover fails once (its connection ended).
 */
async function failover(restart: boolean, interrupt = false): Promise<void> {
  const primary: Cluster = startCluster(await freePort(), HBA);
  let primaryUp = true;
  let replica: Replica | undefined;
  // A shared cache for the interrupted replay: an in-process one is empty after the flush, and a
  // drainer may then start at the head; Redis cannot tell it is empty, so the cursor is what counts.
  const redis = interrupt ? createRedisCache({ url: REDIS_URL, keyPrefix: `pg-proxy-failover-${randomUUID().slice(0, 8)}:` }) : undefined;
  await redis?.connect();
  const cache = redis ?? createMemoryCache({ maxEntries: 1_000 });
  let proxy: (PgProxy & { url: string }) | undefined;
  const clients = proxyClients(() => proxy!);
  try {
    replica = startReplica(primary, await freePort());
    const port = primary.port;
    const created = await createProxyDatabase('failover', 3, `postgres://postgres@127.0.0.1:${port}/postgres`);
    let db = created;
    if (restart) {
      const admin = new pg.Client({ connectionString: created.url });
      await admin.connect();
      await admin.query('CREATE ROLE app LOGIN NOSUPERUSER');
      await admin.query(`ALTER DATABASE ${created.name} OWNER TO app`);
      await admin.query('ALTER TABLE items OWNER TO app');
      await admin.end();
      const url = new URL(created.url);
      url.username = 'app';
      db = { ...created, url: url.toString() };
    }
    proxy = await startTestProxy(db, { cache });
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
    replica.stop();
    await reader.query("UPDATE items SET val = 'lost' WHERE id = 1");
    assert.equal((await clients.untilHit<{ val: string }>(reader, READ, 1)).val, 'lost', 'the lost write is cached');
    if (restart) {
      await clients.closeAll();
      await proxy.close(1_000);
    }

    // The primary dies; the replica takes its address and is promoted.
    primary.stop();
    primaryUp = false;
    replica.promoteOn(port);
    // Other clients' transactions on the promoted server while no proxy ran: its transaction ids pass
    // the saved cursor (which is then no longer impossible there, only from another incarnation).
    const promoted = new pg.Client({ host: '127.0.0.1', port, user: 'postgres', database: 'postgres' });
    await promoted.connect();
    for (let i = 0; i < 8; i++) await promoted.query('SELECT pg_catalog.pg_current_xact_id()');
    const next = (await promoted.query<{ next: string }>('SELECT pg_catalog.pg_snapshot_xmax(pg_catalog.pg_current_snapshot())::text AS next')).rows[0]!.next;
    if (restart || interrupt) {
      const saved = (await cache.loadJournalCursor(journalId))!.id;
      assert.ok(saved <= Number(next), `the saved cursor (${saved}) is a possible one on the promoted server (next xid ${next})`);
    }
    if (restart) proxy = await startTestProxy(db, { cache });
    const hook = interrupt ? interruptFirstReplay(() => promoted) : undefined;
    try {
      // Two passes in a row: the second began after the first ended, so after the promotion (the
      // first may be one that read the old primary before it died).
      await until('two drainer passes on the promoted server', async () => (await proxy!.drainer.drain(), await proxy!.drainer.drain(), true), 60_000);
      if (hook !== undefined) {
        await until('a replay from the start after the interrupted one', async () => hook.seen.replayedAfter || (await proxy!.drainer.drain().catch(() => 0), false), 30_000);
        assert.ok(hook.seen.interrupted, 'the replay after the failover was interrupted');
      }
    } finally {
      hook?.restore();
      await promoted.end();
    }

    const afterFailover = await clients.open();
    assert.equal((await afterFailover.query<{ val: string }>(READ, [1])).rows[0]!.val, 'v1', "the promoted server's row, not the lost one");
    assert.equal((await clients.untilHit<{ val: string }>(afterFailover, READ, 1)).val, 'v1', "the promoted server's row is what is cached now");
    const saved = (await cache.loadJournalCursor(journalId))?.incarnation;
    assert.ok(saved !== undefined && saved !== before, "the cursor is saved with the promoted server's incarnation");
  } finally {
    await clients.closeAll();
    await proxy?.close(1_000);
    replica?.remove();
    if (primaryUp) primary.stop();
    if (redis !== undefined) await dropKeys(redis.keyPrefix);
    await cache.close();
  }
}

describe('pg-proxy: a failover to an asynchronous replica that missed a write', { skip: program.skip || (!existsSync('/usr/sbin/runuser') && 'runuser missing'), timeout: 180_000 }, () => {
  it("the drainer's first pass on the promoted server flushes the cache: the lost row is not served", async () => {
    await failover(false);
  });

  it("a proxy started after the failover on the same cache checks the saved cursor's incarnation: the lost row is not served", async () => {
    await failover(true);
  });

  it('a replay after the failover that fails (its connection ended): the next connection replays from the start, not from the cursor saved on the old server', { skip: redisUp.skip }, async () => {
    await failover(false, true);
  });
});
