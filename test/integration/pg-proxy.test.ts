// The PostgreSQL proxy against real PostgreSQL with real clients: pg (extended and simple protocol),
// porsager's postgres (pipelined), raw frames compared byte for byte with PostgreSQL's own answers,
// writes through and around the proxy, DDL, transactions, COPY, LISTEN/NOTIFY, cancel, and another
// database passing through.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import pg from 'pg';
import postgres from 'postgres';
import { createProxyDatabase, startTestProxy, type ProxyDatabase } from '../helpers/pg-proxy-fixture.js';
import { raw, rawConnect } from '../helpers/pg-raw.js';
import { DATABASE_URL, needService } from '../helpers/services.js';
import type { PgProxy } from '../../src/pg-proxy/index.js';

const service = await needService('PostgreSQL', DATABASE_URL);

async function waitFor(what: string, check: () => Promise<boolean>, timeoutMs = 10_000): Promise<number> {
  const started = performance.now();
  while (!(await check())) {
    if (performance.now() - started > timeoutMs) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 5));
  }
  return performance.now() - started;
}

describe('pg-proxy', { skip: service.skip, timeout: 120_000 }, () => {
  let db: ProxyDatabase;
  let proxy: PgProxy & { url: string };
  const clients: pg.Client[] = [];
  async function client(url = proxy.url): Promise<pg.Client> {
    const c = new pg.Client({ connectionString: url });
    await c.connect();
    clients.push(c);
    return c;
  }

  before(async () => {
    db = await createProxyDatabase('it', 20);
    proxy = await startTestProxy(db);
  });
  after(async () => {
    for (const c of clients) await c.end().catch(() => undefined);
    await proxy?.close(1000);
    await db?.drop();
  });

  it('serves repeated extended-protocol point reads from the cache, and SELECT * is the table as it is', async () => {
    const c = await client();
    const direct = await client(db.url);
    const hitsBefore = proxy.metrics.hits;
    const first = await c.query('SELECT * FROM items WHERE id = $1', [3]);
    const second = await c.query('SELECT * FROM items WHERE id = $1', [3]);
    const straight = await direct.query('SELECT * FROM items WHERE id = $1', [3]);
    assert.deepEqual(second.rows, straight.rows);
    assert.deepEqual(first.rows, straight.rows);
    assert.deepEqual(second.fields.map((f) => f.name), ['id', 'val', 'n', 'at', 'price']);
    assert.equal(proxy.metrics.hits, hitsBefore + 1);
  });

  it('a write acknowledged through one connection is seen by a read on another, at once', async () => {
    const writer = await client();
    const reader = await client();
    await reader.query('SELECT val FROM items WHERE id = $1', [4]);
    await reader.query('SELECT val FROM items WHERE id = $1', [4]); // cached now
    for (let i = 0; i < 20; i++) {
      const { rows } = await writer.query('UPDATE items SET val = $2, n = n + 1 WHERE id = $1 RETURNING n', [4, `w${i}`]);
      const seen = await reader.query('SELECT val, n FROM items WHERE id = $1', [4]);
      assert.deepEqual(seen.rows[0], { val: `w${i}`, n: rows[0].n });
      await reader.query('SELECT val, n FROM items WHERE id = $1', [4]); // fill again
    }
  });

  it('explicit transactions: reads inside pass through; the commit is fenced before it is acknowledged', async () => {
    const writer = await client();
    const reader = await client();
    await reader.query('SELECT val FROM items WHERE id = 5');
    await reader.query('SELECT val FROM items WHERE id = 5');
    await writer.query('BEGIN');
    await writer.query("UPDATE items SET val = 'in-tx' WHERE id = 5");
    assert.equal((await writer.query('SELECT val FROM items WHERE id = $1', [5])).rows[0].val, 'in-tx');
    assert.equal((await reader.query('SELECT val FROM items WHERE id = 5')).rows[0].val, 'v5');
    await writer.query('COMMIT');
    assert.equal((await reader.query('SELECT val FROM items WHERE id = 5')).rows[0].val, 'in-tx');
    await writer.query('BEGIN');
    await writer.query("UPDATE items SET val = 'rolled-back' WHERE id = 5");
    await writer.query('ROLLBACK');
    assert.equal((await reader.query('SELECT val FROM items WHERE id = 5')).rows[0].val, 'in-tx');
  });

  it('simple protocol with a literal key is cached; a non-canonical key passes through', async () => {
    const c = await client();
    const hits = proxy.metrics.hits;
    await c.query('SELECT id, val FROM items WHERE id = 6');
    const again = await c.query('SELECT id, val FROM items WHERE id = 6');
    assert.deepEqual(again.rows, [{ id: 6, val: 'v6' }]);
    assert.equal(proxy.metrics.hits, hits + 1);
    const keyForm = proxy.metrics.passThrough['key-form'];
    assert.deepEqual((await c.query("SELECT id FROM items WHERE id = '06'")).rows, [{ id: 6 }]);
    assert.equal(proxy.metrics.passThrough['key-form'], keyForm + 1);
    assert.deepEqual((await c.query('SELECT id FROM items WHERE id = 999')).rows, []);
    assert.deepEqual((await c.query('SELECT id FROM items WHERE id = 999')).rows, []);
  });

  it('a hit is byte-identical to PostgreSQL’s answer (text and binary, with and without Parse)', async () => {
    const viaProxy = await rawConnect('127.0.0.1', proxy.port, 'postgres', db.name);
    const direct = await rawConnect('127.0.0.1', Number(new URL(db.url).port || 5432), 'postgres', db.name);
    const key = Buffer.alloc(4);
    key.writeInt32BE(14); // one answer shape per row is cached: each batch reads its own row
    const batches = [
      [raw.parse('', 'SELECT * FROM items WHERE id = $1'), raw.bind('', '', Buffer.from('7'), 0, 0), raw.describePortal(''), raw.execute(''), raw.sync()],
      [raw.parse('', 'SELECT * FROM items WHERE id = $1', [23]), raw.bind('', '', key, 1, 1), raw.describePortal(''), raw.execute(''), raw.sync()],
      [raw.query('SELECT val, at, price FROM items WHERE id = 15')],
    ];
    try {
      for (const batch of batches) {
        const expected = Buffer.concat((await direct.exchange(batch)).map((m) => m.raw));
        const hits = proxy.metrics.hits;
        const fill = Buffer.concat((await viaProxy.exchange(batch)).map((m) => m.raw));
        const hit = Buffer.concat((await viaProxy.exchange(batch)).map((m) => m.raw));
        assert.equal(proxy.metrics.hits, hits + 1, 'the second is a hit');
        assert.deepEqual(fill, expected);
        assert.deepEqual(hit, expected);
      }
      // Named statement: Parse once (passes through), then Bind-only batches are cached.
      await viaProxy.exchange([raw.parse('s1', 'SELECT val FROM items WHERE id = $1'), raw.sync()]);
      await direct.exchange([raw.parse('s1', 'SELECT val FROM items WHERE id = $1'), raw.sync()]);
      const bindOnly = [raw.bind('', 's1', Buffer.from('8'), 0, 0), raw.execute(''), raw.sync()];
      const expected = Buffer.concat((await direct.exchange(bindOnly)).map((m) => m.raw));
      await viaProxy.exchange(bindOnly);
      const hits = proxy.metrics.hits;
      assert.deepEqual(Buffer.concat((await viaProxy.exchange(bindOnly)).map((m) => m.raw)), expected);
      assert.equal(proxy.metrics.hits, hits + 1);
      // After a hit skipped the server, the unnamed statement is re-created before it is bound alone.
      await viaProxy.exchange(batches[0]!);
      const reuse = [raw.bind('', '', Buffer.from('9'), 0, 0), raw.execute(''), raw.sync()];
      await direct.exchange(batches[0]!);
      assert.deepEqual(Buffer.concat((await viaProxy.exchange(reuse)).map((m) => m.raw)), Buffer.concat((await direct.exchange(reuse)).map((m) => m.raw)));
    } finally {
      viaProxy.close();
      direct.close();
    }
  });

  it('answers are cached per output settings: another TimeZone gets its own rendering', async () => {
    const a = await client();
    const b = await client();
    await b.query("SET TimeZone = 'Asia/Tokyo'");
    const direct = await client(db.url);
    await direct.query("SET TimeZone = 'Asia/Tokyo'");
    const q = { text: 'SELECT at FROM items WHERE id = $1', values: [10], rowMode: 'array' as const, types: { getTypeParser: () => (v: string) => v } };
    await a.query(q);
    await a.query(q);
    const tokyo = await b.query(q);
    assert.deepEqual(tokyo.rows, (await direct.query(q)).rows);
    assert.match(String(tokyo.rows[0]?.[0]), /\+09$/);
  });

  it('a write straight to PostgreSQL (bypass) is invalidated by the drainer within the bound', async () => {
    const c = await client();
    const direct = await client(db.url);
    await c.query('SELECT val FROM items WHERE id = $1', [11]);
    await c.query('SELECT val FROM items WHERE id = $1', [11]);
    await direct.query("UPDATE items SET val = 'bypass' WHERE id = 11");
    const ms = await waitFor('the bypass write to show', async () => (await c.query('SELECT val FROM items WHERE id = $1', [11])).rows[0].val === 'bypass', 5_000);
    assert.ok(ms < 5_000);
  });

  it('DDL (through the proxy or straight) and TRUNCATE flush the table: SELECT * shows the new column; truncated rows are gone', async () => {
    const c = await client();
    const direct = await client(db.url);
    await c.query('SELECT * FROM items WHERE id = $1', [12]);
    await c.query('SELECT * FROM items WHERE id = $1', [12]);
    await c.query('ALTER TABLE items ADD COLUMN extra int NOT NULL DEFAULT 7');
    const after = await c.query('SELECT * FROM items WHERE id = $1', [12]);
    assert.equal(after.rows[0].extra, 7);
    await c.query('ALTER TABLE items DROP COLUMN extra');
    assert.equal((await c.query('SELECT * FROM items WHERE id = $1', [12])).rows[0].extra, undefined);
    // DDL straight on PostgreSQL: the event trigger journals a flush.
    await c.query('SELECT * FROM items WHERE id = $1', [12]);
    await direct.query('ALTER TABLE items ADD COLUMN bypass_col int NOT NULL DEFAULT 9');
    await waitFor('bypass DDL to flush', async () => (await c.query('SELECT * FROM items WHERE id = $1', [12])).rows[0].bypass_col === 9, 5_000);
    await direct.query('ALTER TABLE items DROP COLUMN bypass_col');
    await waitFor('bypass DDL to flush again', async () => !('bypass_col' in (await c.query('SELECT * FROM items WHERE id = $1', [12])).rows[0]), 5_000);
    await c.query('SELECT * FROM items WHERE id = $1', [13]);
    await direct.query('CREATE TABLE IF NOT EXISTS scratch_copy AS SELECT * FROM items');
    await direct.query('TRUNCATE items');
    await waitFor('TRUNCATE to flush', async () => (await c.query('SELECT * FROM items WHERE id = $1', [13])).rows.length === 0, 5_000);
    await direct.query('INSERT INTO items SELECT * FROM scratch_copy');
    await waitFor('re-inserted rows', async () => (await c.query('SELECT * FROM items WHERE id = $1', [13])).rows.length === 1, 5_000);
  });

  it('postgres (porsager) pipelines many queries on one connection; answers stay in order', async () => {
    const sql = postgres(proxy.url, { max: 1, onnotice: () => undefined });
    try {
      const ids = Array.from({ length: 200 }, (_, i) => 1 + (i % 10));
      const results = await Promise.all(ids.map((id) => sql`SELECT id, val FROM items WHERE id = ${id}`));
      results.forEach((rows, i) => assert.equal(rows[0]?.id, ids[i]));
      await sql`UPDATE items SET n = n + 1 WHERE id = 1`;
      const [row] = await sql`SELECT n FROM items WHERE id = ${1}`;
      const [straight] = await sql.unsafe('SELECT n FROM items WHERE id = 1 AND random() >= 0');
      assert.equal(row!.n, straight!.n);
      // Cancel relayed to the right backend.
      const started = Date.now();
      const slow = sql`SELECT pg_sleep(10)`;
      setTimeout(() => slow.cancel(), 200);
      await assert.rejects(slow, (e: { code?: string }) => e.code === '57014');
      assert.ok(Date.now() - started < 8_000);
    } finally {
      await sql.end({ timeout: 2 });
    }
  });

  it('errors, notices, COPY and LISTEN/NOTIFY pass through unchanged', async () => {
    const c = await client();
    await assert.rejects(c.query('SELECT * FROM no_such_table WHERE id = 1'), (e: { code?: string }) => e.code === '42P01');
    await assert.rejects(c.query('SELECT * FROM items WHERE id = $1', ['x']), (e: { code?: string }) => e.code === '22P02');
    assert.equal((await c.query('SELECT 1 AS one')).rows[0].one, 1);
    const notices: string[] = [];
    c.on('notice', (n) => notices.push(n.message ?? ''));
    await c.query("DO $$ BEGIN RAISE NOTICE 'hello'; END $$");
    assert.deepEqual(notices, ['hello']);
    const listener = await client();
    const got = new Promise<string>((resolve) => listener.on('notification', (n) => resolve(n.payload ?? '')));
    await listener.query('LISTEN chan');
    await c.query("NOTIFY chan, 'ping'");
    assert.equal(await got, 'ping');
    // COPY out and in (COPY … FROM STDIN via psql is in pg-proxy-psql.test.ts).
    await c.query('CREATE TABLE copy_src AS SELECT g AS a FROM generate_series(1, 3) g');
    const sql = postgres(proxy.url, { max: 1 });
    try {
      const rows: string[] = [];
      for await (const chunk of await sql`COPY (SELECT a FROM copy_src ORDER BY a) TO STDOUT`.readable()) rows.push(String(chunk));
      assert.equal(rows.join(''), '1\n2\n3\n');
      await sql`CREATE TEMP TABLE u (a int)`;
      const writable = await sql`COPY u FROM STDIN`.writable();
      await new Promise<void>((resolve, reject) => writable.end('4\n5\n', (e?: Error | null) => (e ? reject(e) : resolve())));
      await waitFor('COPY to finish', async () => (await sql`SELECT count(*)::int AS n FROM u`)[0]!.n === 2, 5_000);
    } finally {
      await sql.end({ timeout: 2 });
    }
  });

  it('sessions to another database pass through untouched', async () => {
    const url = new URL(proxy.url);
    url.pathname = '/test';
    const c = await client(url.toString());
    assert.equal((await c.query('SELECT current_database() AS d')).rows[0].d, 'test');
    assert.ok(proxy.metrics.passThrough['other-database'] >= 1);
  });
});
