// The RESP front's consistency across a cache outage and a cache restart: two `lockstep serve
// --resp` instances over one PostgreSQL schema and a redis-server of this test's own (no
// persistence), 8 ioredis clients on three keys. Mid-run the Redis process is frozen (SIGSTOP:
// its sockets stay open and nothing answers), until an instance has answered a GET without it; then
// it is killed and started empty on the same port (every lease, tombstone and value gone). The
// history must hold no phantom value and be linearizable per key (no stale read, no lost
// acknowledged write). resp-consistency.test.ts kills a Lockstep instance; this one the cache.
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import { Redis as IORedis } from 'ioredis';
import pg from 'pg';
import { checkVersions, historyNow, type HistoryEntry } from '../../src/audit/history.js';
import { checkLinearizable } from '../../src/audit/linearizability.js';
import { needRedisServer, startRedisServer, type RedisServer } from '../helpers/redis-server.js';
import { freePort, runWorkload, startServer, type ServerProcess } from '../helpers/resp-history.js';
import { DATABASE_URL, needService } from '../helpers/services.js';
import { untilValue } from '../helpers/until.js';

const postgres = await needService('PostgreSQL', DATABASE_URL);
const redisServer = needRedisServer();
const schema = `lockstep_respo_${randomBytes(4).toString('hex')}`;
const keys = ['hot-1', 'hot-2', 'hot-3'];

function summary(history: readonly HistoryEntry[]): string {
  const count = (kind: string, outcome: string) => history.filter((e) => e.kind === kind && e.outcome === outcome).length;
  return `writes ok ${count('write', 'ok')}, unknown ${count('write', 'unknown')}; reads ok ${count('read', 'ok')}, failed ${count('read', 'fail')}; deletes ok ${count('delete', 'ok')}, unknown ${count('delete', 'unknown')}`;
}

describe('RESP front: two instances, many clients, few keys, the cache frozen then restarted empty', { skip: postgres.skip || redisServer.skip }, () => {
  let redis: RedisServer;
  before(async () => {
    const client = new pg.Client({ connectionString: DATABASE_URL });
    await client.connect();
    await client.query(`CREATE SCHEMA IF NOT EXISTS ${schema}`);
    await client.end();
    redis = await startRedisServer();
  });
  after(async () => {
    await redis?.stop();
    const client = new pg.Client({ connectionString: DATABASE_URL });
    await client.connect();
    await client.query(`DROP SCHEMA IF EXISTS ${schema} CASCADE`);
    await client.end();
  });

  it('lockstep serve --resp: 0 phantom values, 0 stale reads (linearizable per key)', { timeout: 300_000 }, async (t) => {
    const namespace = `respo-${randomBytes(3).toString('hex')}`;
    const args = (port: number): string[] => [
      'src/cli/main.ts', 'serve', '--port', '0', '--resp', `127.0.0.1:${port}`, '--store', `${DATABASE_URL}?schema=${schema}`, '--cache', redis.url,
      '--log-level', 'error', '--audit-interval', '0',
    ];
    const ports = [await freePort(), await freePort()];
    const servers: ServerProcess[] = await Promise.all(ports.map((port) => startServer(args(port))));
    const probe = new IORedis({ port: ports[1]!, host: '127.0.0.1', maxRetriesPerRequest: 0, enableOfflineQueue: false, lazyConnect: true });
    probe.on('error', () => undefined);
    await probe.connect();
    let history: HistoryEntry[];
    let frozen = { from: 0, to: 0 };
    try {
      history = await runWorkload({
        ports,
        namespace,
        keys,
        clients: 8,
        before: 500,
        after: 700,
        restart: async () => {
          redis.pause();
          frozen = { from: historyNow(), to: 0 };
          // Frozen until an instance answers a read without the cache (the clients' commands in
          // flight meanwhile wait on it, or fail over to the store).
          await untilValue('a GET answered with the cache frozen', async () => ((await probe.get(`${namespace}:probe`).then(() => true, () => false)) ? true : undefined), 60_000, 100);
          await redis.restart();
          frozen.to = historyNow();
        },
      });
    } finally {
      probe.disconnect();
      await Promise.all(servers.map((server) => server.stop()));
    }
    // The operations that overlapped the outage.
    const during = history.filter((e) => e.invokedAt < frozen.to && e.returnedAt > frozen.from);
    const info = `${summary(history)}; cache frozen then restarted over ${Math.round((frozen.to - frozen.from) / 1e6)} ms, ${during.length} operations overlapped it (${summary(during)})`;
    t.diagnostic(info);
    assert.ok(during.filter((e) => e.outcome === 'ok').length >= 8, info);
    assert.ok(history.filter((e) => e.kind === 'read' && e.outcome === 'ok').length > 200, info);
    assert.ok(history.filter((e) => e.kind === 'write' && e.outcome === 'ok').length > 200, info);
    assert.deepEqual(checkVersions(history), [], info);
    const report = checkLinearizable(history, { deadlineMs: 30_000 });
    assert.equal(report.result, 'ok', `${info}\n${JSON.stringify(report.keys.find((k) => k.result !== 'ok')?.counterexample?.reason)}`);
  });
});
