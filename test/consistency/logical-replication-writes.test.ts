// Writes that a logical replication subscription applies to a cached table are writes that bypass
// Lockstep. PostgreSQL's apply worker runs them under session_replication_role = replica, where a
// trigger enabled the default way (for origin sessions) does not fire: before the bypass triggers
// were enabled ALWAYS, such a write appended no journal row, and the value cached before it was
// served until its TTL (here: for ever). This test makes a cluster of its own (wal_level = logical:
// the shared server is not), a publishing database and a subscribing one, and caches the
// subscriber's table three ways: the key/value store's table, an entity store's table (the library)
// and the proxy's table. A write on the publisher must reach every reader within the drainer's bound.
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { after, before, describe, it } from 'node:test';
import pg from 'pg';
import { createMemoryCache } from '../../src/cache/memory.js';
import { createWriteThrough } from '../../src/compose/write-through.js';
import type { PgProxy } from '../../src/pg-proxy/index.js';
import { addVersionColumn } from '../../src/store/entity/postgres-entity-schema.js';
import { createPostgresEntityStore } from '../../src/store/entity/postgres-entity-store.js';
import { createPostgresStore } from '../../src/store/postgres.js';
import { PG_BIN, startCluster, type Cluster } from '../helpers/pg-cluster.js';
import { createProxyDatabase, proxyClients, startTestProxy, type ProxyDatabase } from '../helpers/pg-proxy-fixture.js';
import { freePort } from '../helpers/pg-proxy-process.js';
import { needProgram } from '../helpers/services.js';
import { until, untilValue } from '../helpers/until.js';

const program = needProgram('initdb', `${PG_BIN}/initdb`);
const HBA = 'local all all trust\nhost all all 127.0.0.1/32 trust\nlocal replication all trust\nhost replication all 127.0.0.1/32 trust\n';

/** Runs `statements` on `url`, one after another, on a connection of their own. */
async function run(url: string, ...statements: string[]): Promise<void> {
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  try {
    for (const statement of statements) await client.query(statement);
  } finally {
    await client.end();
  }
}

async function valueOf(url: string, sql: string): Promise<unknown> {
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  try {
    return Object.values((await client.query(sql)).rows[0] ?? {})[0];
  } finally {
    await client.end();
  }
}

describe('writes a logical replication subscription applies to a cached table', { skip: program.skip || (!existsSync('/usr/sbin/runuser') && 'runuser missing'), timeout: 180_000 }, () => {
  let cluster: Cluster | undefined;
  let publisher: ProxyDatabase;
  let subscriber: ProxyDatabase;

  before(async () => {
    cluster = startCluster(await freePort(), HBA, '-c wal_level=logical');
    const adminUrl = `postgres://postgres@127.0.0.1:${cluster.port}/postgres`;
    // Both have items (id, val, …) with rows 1..3; the subscription copies nothing, they start equal.
    publisher = await createProxyDatabase('lrpub', 3, adminUrl);
    subscriber = await createProxyDatabase('lrsub', 3, adminUrl);
    const tables = ['CREATE TABLE docs (id text PRIMARY KEY, body text NOT NULL)', "INSERT INTO docs VALUES ('a', 'a1')"];
    await run(publisher.url, ...tables, 'CREATE SCHEMA kv', "CREATE TABLE kv.lockstep_kv (namespace text COLLATE \"C\", key text COLLATE \"C\", value text NOT NULL, PRIMARY KEY (namespace, key))");
    await run(subscriber.url, ...tables);
    // The key/value store's own table on the subscriber, with a row written through Lockstep first.
    const kvStore = createPostgresStore({ connectionString: subscriber.url, schema: 'kv', notify: false });
    await kvStore.write('ns', 'k', JSON.stringify('k1'), { journal: false, deadlineMs: 10_000 });
    await kvStore.close();
    await run(publisher.url, `INSERT INTO kv.lockstep_kv VALUES ('ns', 'k', '"k1"')`, 'CREATE PUBLICATION lockstep_test FOR TABLE items, docs, kv.lockstep_kv');
    // A slot made beforehand: CREATE SUBSCRIPTION to a database of the same cluster cannot make its own.
    await run(publisher.url, "SELECT pg_catalog.pg_create_logical_replication_slot('lockstep_test', 'pgoutput')");
    const source = `host=127.0.0.1 port=${cluster.port} user=postgres dbname=${publisher.name}`;
    await run(subscriber.url, `CREATE SUBSCRIPTION lockstep_test CONNECTION '${source}' PUBLICATION lockstep_test WITH (create_slot = false, slot_name = 'lockstep_test', copy_data = false)`);
  });
  after(async () => {
    cluster?.stop();
  });

  /** Writes `sql` on the publisher and waits until the subscriber shows `check`'s value. */
  async function replicate(sql: string, check: string, expected: unknown): Promise<void> {
    await run(publisher.url, sql);
    await until(`the subscriber applied: ${sql}`, async () => (await valueOf(subscriber.url, check)) === expected);
  }

  it("the key/value store's table: the value cached before the replicated write is not served after it", async () => {
    const store = createPostgresStore({ connectionString: subscriber.url, schema: 'kv' });
    const engine = createWriteThrough<string>({ store, cache: createMemoryCache({ maxEntries: 100 }), namespace: 'ns', metrics: false, journal: { pollInterval: '50ms' } });
    try {
      assert.equal((await engine.read('k')), 'k1');
      assert.equal((await engine.readEntry('k')).source, 'hit');
      await replicate(`UPDATE kv.lockstep_kv SET value = '"k2"' WHERE key = 'k'`, "SELECT value FROM kv.lockstep_kv WHERE key = 'k'", '"k2"');
      assert.equal(await untilValue('the replicated value is read', async () => ((await engine.read('k')) === 'k2' ? 'k2' : undefined), 10_000), 'k2');
    } finally {
      await engine.close();
      await store.close();
    }
  });

  it("an entity store's table (the library on the application's table)", async () => {
    const pool = new pg.Pool({ connectionString: subscriber.url, max: 4 });
    await addVersionColumn(pool, 'docs'); // the subscriber's own column: the publisher's table has none
    const store = await createPostgresEntityStore({ pool, schema: 'public', table: 'docs' });
    const engine = createWriteThrough<{ id: string; body: string }>({ store, cache: createMemoryCache({ maxEntries: 100 }), namespace: 'docs', metrics: false, journal: { pollInterval: '50ms' } });
    try {
      assert.equal((await engine.read('a'))?.body, 'a1');
      assert.equal((await engine.readEntry('a')).source, 'hit');
      await replicate("UPDATE docs SET body = 'a2' WHERE id = 'a'", "SELECT body FROM docs WHERE id = 'a'", 'a2');
      assert.equal(await untilValue('the replicated row is read', async () => ((await engine.read('a'))?.body === 'a2' ? 'a2' : undefined), 10_000), 'a2');
      await replicate("DELETE FROM docs WHERE id = 'a'", "SELECT count(*)::int FROM docs WHERE id = 'a'", 0);
      await until('the replicated delete is read', async () => (await engine.read('a')) === undefined, 10_000);
    } finally {
      await engine.close();
      await store.close();
      await pool.end();
    }
  });

  it("a subscription's initial copy of 10,000 rows into an entity store's table commits (more ids than the lock table holds)", async () => {
    // The copy is one transaction: one advisory lock per id would run out of shared memory
    // (max_locks_per_transaction 64 × 100 connections) and the copy retry for ever.
    await run(publisher.url, 'CREATE TABLE bulk (id text PRIMARY KEY, body text NOT NULL)', "INSERT INTO bulk SELECT 'b' || g, 'x' FROM generate_series(1, 10000) g");
    await run(subscriber.url, 'CREATE TABLE bulk (id text PRIMARY KEY, body text NOT NULL)');
    const pool = new pg.Pool({ connectionString: subscriber.url, max: 4 });
    await addVersionColumn(pool, 'bulk');
    const store = await createPostgresEntityStore({ pool, schema: 'public', table: 'bulk' });
    try {
      await run(publisher.url, 'ALTER PUBLICATION lockstep_test ADD TABLE bulk');
      await run(subscriber.url, 'ALTER SUBSCRIPTION lockstep_test REFRESH PUBLICATION WITH (copy_data = true)');
      await until('the initial copy landed', async () => (await valueOf(subscriber.url, 'SELECT count(*)::int FROM bulk')) === 10_000, 60_000);
      assert.equal(await valueOf(subscriber.url, "SELECT count(*)::int FROM lockstep_journal WHERE namespace = 'bulk'"), 10_000, 'every copied row journaled');
    } finally {
      await store.close();
      await pool.end();
    }
  });

  it('the proxy on the subscriber: a cached point read answers the replicated row', async () => {
    let proxy: (PgProxy & { url: string }) | undefined;
    const clients = proxyClients(() => proxy!);
    proxy = await startTestProxy(subscriber);
    try {
      const reader = await clients.open();
      const read = 'SELECT val FROM items WHERE id = $1';
      assert.equal((await clients.untilHit<{ val: string }>(reader, read, 2)).val, 'v2');
      await replicate("UPDATE items SET val = 'replicated' WHERE id = 2", 'SELECT val FROM items WHERE id = 2', 'replicated');
      await until('the proxy answers the replicated row', async () => (await reader.query(read, [2])).rows[0]?.val === 'replicated', 10_000);
      await replicate('TRUNCATE items', 'SELECT count(*)::int FROM items', 0);
      await until('the proxy answers the replicated TRUNCATE', async () => (await reader.query(read, [2])).rows.length === 0, 10_000);
    } finally {
      await clients.closeAll();
      await proxy.close(1_000);
    }
  });
});
